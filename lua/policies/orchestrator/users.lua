-- Signed-in users read only their own profile row (id = their uid); roles, namespace access and status are the server's (service_role) to write.
-- Identity: orchestrator.users.id is the auth uid (the JWT sub) of the signed-in user; seed 002 says "filter by user_id".

local kit = require("strata.policy_kit")

local A = "aaaaaaaa-0000-4000-8000-000000000001"

return {
  -- No update for users themselves: the row carries role, roles,
  -- namespace_access and status, which a user must not grant themselves.
  select = kit.own("id"),
  examples = {
    { action = "select", ctx = { role = "authenticated", uid = A }, expect = { id = A } },
    { action = "select", ctx = { role = "anon" }, expect = false },
  },
}
