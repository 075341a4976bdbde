-- Users read only their own rate-limit counters, as seed 003's RLS says; only service_role (the server, seed 003's "System can manage") writes them.

local kit = require("strata.policy_kit")

-- Seed 003's "System can manage rate_limits (ALL, true)" is not given to
-- clients: a user who could write here could reset their own limits.
local A = "aaaaaaaa-0000-4000-8000-000000000001"

return {
  select = kit.own("user_id"),
  examples = {
    { action = "select", ctx = { role = "authenticated", uid = A }, expect = { user_id = A } },
    { action = "select", ctx = { role = "authenticated", uid = A, is_admin = true }, expect = { user_id = A } },
    { action = "select", ctx = { role = "anon" }, expect = false },
  },
}
