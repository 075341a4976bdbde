-- Users read, connect, change and remove only their own GitHub repositories (user_id = their uid), as seed 003's RLS says.

local kit = require("strata.policy_kit")

local own = kit.own("user_id")

local A = "aaaaaaaa-0000-4000-8000-000000000001"

return {
  select = own,
  insert = own,
  update = own,
  delete = own,
  examples = {
    { action = "insert", ctx = { role = "authenticated", uid = A }, expect = { user_id = A } },
    { action = "select", ctx = { role = "anon" }, expect = false },
  },
}
