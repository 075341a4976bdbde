-- Users read only their own activity logs and admins read all of them, as seed 003's RLS says; only service_role (the server, seed 003's "System") writes them.

local kit = require("strata.policy_kit")

-- Seed 003's "System can insert ... true" is not given to clients: in strata
-- the system is the server itself (service_role or Lua routes), and a client
-- that could insert here could forge another user's history and costs.
local A = "aaaaaaaa-0000-4000-8000-000000000001"

return {
  select = kit.own_or_admin("user_id"),
  examples = {
    { action = "select", ctx = { role = "authenticated", uid = A }, expect = { user_id = A } },
    { action = "select", ctx = { role = "authenticated", uid = A, is_admin = true }, expect = true },
    { action = "select", ctx = { role = "anon" }, expect = false },
  },
}
