-- Only admins (user_metadata.role = 'admin') read, create, change and delete admin_config rows, as seed 003's RLS says; other users and anon get nothing.

local kit = require("strata.policy_kit")

local admin = kit.admin

local A = "aaaaaaaa-0000-4000-8000-000000000001"

return {
  select = admin,
  insert = admin,
  update = admin,
  delete = admin,
  examples = {
    { action = "select", ctx = { role = "authenticated", uid = A, is_admin = true }, expect = true },
    { action = "update", ctx = { role = "authenticated", uid = A, is_admin = true }, expect = true },
    { action = "select", ctx = { role = "authenticated", uid = A }, expect = false },
    { action = "update", ctx = { role = "authenticated", uid = A, is_admin = false }, expect = false },
    -- An admin flag on a token that is not a signed-in user counts for nothing.
    { action = "insert", ctx = { role = "anon", is_admin = true }, expect = false },
  },
}
