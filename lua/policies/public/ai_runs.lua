-- Users read, start, change and delete only their own AI runs (user_id = their uid).

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
    { action = "select", ctx = { role = "authenticated", uid = A, is_admin = true }, expect = { user_id = A } },
    { action = "insert", ctx = { role = "anon" }, expect = false },
  },
}
