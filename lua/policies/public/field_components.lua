-- Every signed-in user reads the field components of data brokers; only admins create, change or delete them; anon gets nothing.

local kit = require("strata.policy_kit")

local A = "aaaaaaaa-0000-4000-8000-000000000001"

return kit.signed_in_reads_admins_write({
  { action = "select", ctx = { role = "authenticated", uid = A }, expect = true },
  { action = "insert", ctx = { role = "authenticated", uid = A, is_admin = true }, expect = true },
  { action = "insert", ctx = { role = "authenticated", uid = A }, expect = false },
  { action = "select", ctx = { role = "anon" }, expect = false },
})
