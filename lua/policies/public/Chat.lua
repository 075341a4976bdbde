-- Users read, create, change and delete only their own chats (user_id = their uid) and admins may also read every chat, as seed 003's RLS says; anon gets nothing.

local kit = require("strata.policy_kit")

local own = kit.own("user_id")

local A = "aaaaaaaa-0000-4000-8000-000000000001"

return {
  select = kit.own_or_admin("user_id"),
  insert = own,
  update = own,
  delete = own,
  examples = {
    { action = "select", ctx = { role = "authenticated", uid = A }, expect = { user_id = A } },
    { action = "select", ctx = { role = "authenticated", uid = A, is_admin = true }, expect = true },
    { action = "select", ctx = { role = "anon" }, expect = false },
    { action = "update", ctx = { role = "authenticated", uid = A, is_admin = true }, expect = { user_id = A } },
    { action = "insert", ctx = { role = "anon", is_admin = true }, expect = false },
  },
}
