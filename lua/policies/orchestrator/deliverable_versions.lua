-- Users read, add, change and delete only the versions of their own deliverables (deliverable_id of a deliverable with user_id = their uid).
-- Identity: orchestrator.users.id is the auth uid (the JWT sub) of the signed-in user; seed 002 says "filter by user_id".

local kit = require("strata.policy_kit")

local own = kit.for_user(function(uid) return { deliverable_id = kit.sel("deliverables", "id", { user_id = uid }) } end)

local A = "aaaaaaaa-0000-4000-8000-000000000001"

return {
  select = own,
  insert = own,
  update = own,
  delete = own,
  examples = {
    { action = "insert", ctx = { role = "authenticated", uid = A },
      expect = { deliverable_id = { "in_select", "deliverables", "id", { user_id = A } } } },
    { action = "select", ctx = { role = "anon" }, expect = false },
  },
}
