-- Users read, create, change and delete only their own prompts (user_id = their uid); ownerless prompts are service_role's.

local function me(ctx) return ctx.role == "authenticated" and ctx.uid or nil end

local function own(ctx)
  local uid = me(ctx)
  if not uid then return false end
  return { user_id = uid }
end

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
