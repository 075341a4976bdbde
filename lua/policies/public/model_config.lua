-- Every signed-in user reads model_config and only admins create, change or delete models, as seed 003's RLS says; anon reads nothing.

local function signed_in(ctx) return ctx.role == "authenticated" and ctx.uid ~= nil end
local function admin(ctx) return signed_in(ctx) and ctx.is_admin == true end

local A = "aaaaaaaa-0000-4000-8000-000000000001"

return {
  select = signed_in,
  insert = admin,
  update = admin,
  delete = admin,
  examples = {
    { action = "select", ctx = { role = "authenticated", uid = A }, expect = true },
    { action = "update", ctx = { role = "authenticated", uid = A, is_admin = true }, expect = true },
    { action = "select", ctx = { role = "anon" }, expect = false },
    { action = "update", ctx = { role = "authenticated", uid = A }, expect = false },
  },
}
