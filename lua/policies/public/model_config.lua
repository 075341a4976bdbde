-- Every signed-in user reads model_config and only admins create, change or delete models, as seed 003's RLS says; anon reads nothing.

local kit = require("strata.policy_kit")

local A = "aaaaaaaa-0000-4000-8000-000000000001"

return kit.signed_in_reads_admins_write({
  { action = "select", ctx = { role = "authenticated", uid = A }, expect = true },
  { action = "update", ctx = { role = "authenticated", uid = A, is_admin = true }, expect = true },
  { action = "select", ctx = { role = "anon" }, expect = false },
  { action = "update", ctx = { role = "authenticated", uid = A }, expect = false },
})
