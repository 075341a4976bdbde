-- Users read, start, change and delete only their own agent conversations (user_id = their uid), as seed 002's "filter by user_id" says.
-- Identity: orchestrator.users.id is the auth uid (the JWT sub) of the signed-in user; seed 002 says "filter by user_id".

local kit = require("strata.policy_kit")

local own = kit.own("user_id")

local A = "aaaaaaaa-0000-4000-8000-000000000001"

return {
  select = own,
  insert = own,
  update = own,
  delete = own,
  examples = {
    { action = "select", ctx = { role = "authenticated", uid = A }, expect = { user_id = A } },
    { action = "insert", ctx = { role = "anon" }, expect = false },
  },
}
