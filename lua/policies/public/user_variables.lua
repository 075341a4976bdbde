-- Users read and change only their own variables (user_id = their uid), as seed 001's RLS says; the system (service_role) creates and deletes them ("auto-populated by system").

local kit = require("strata.policy_kit")

local own = kit.own("user_id")

local A = "aaaaaaaa-0000-4000-8000-000000000001"

return {
  select = own,
  -- The same predicate checks the new row, so a variable cannot be handed
  -- over to another user.
  update = own,
  examples = {
    { action = "select", ctx = { role = "authenticated", uid = A }, expect = { user_id = A } },
    { action = "update", ctx = { role = "authenticated", uid = A }, expect = { user_id = A } },
    { action = "select", ctx = { role = "anon" }, expect = false },
  },
}
