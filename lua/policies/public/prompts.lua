-- Users read, create, change and delete only their own prompts (user_id = their uid); ownerless prompts are service_role's.

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
