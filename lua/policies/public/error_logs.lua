-- Users read only their own error logs, admins read all of them and mark them resolved, as seed 003's RLS says; only service_role (the server) records or deletes errors.

local kit = require("strata.policy_kit")

-- Seed 003's "System can insert error_logs (true)" is not given to clients:
-- the server records errors (service_role or Lua routes).
local A = "aaaaaaaa-0000-4000-8000-000000000001"

return {
  select = kit.own_or_admin("user_id"),
  update = kit.admin,
  examples = {
    { action = "select", ctx = { role = "authenticated", uid = A }, expect = { user_id = A } },
    { action = "select", ctx = { role = "authenticated", uid = A, is_admin = true }, expect = true },
    { action = "update", ctx = { role = "authenticated", uid = A, is_admin = true }, expect = true },
    { action = "update", ctx = { role = "authenticated", uid = A }, expect = false },
    { action = "select", ctx = { role = "anon" }, expect = false },
  },
}
