-- Users read, create, change and delete only their own chats (user_id = their uid) and admins may also read every chat, as seed 003's RLS says; anon gets nothing.

-- The caller's auth uid when it is a signed-in user, else nil.
local function me(ctx) return ctx.role == "authenticated" and ctx.uid or nil end

local function own(ctx)
  local uid = me(ctx)
  if not uid then return false end
  return { user_id = uid }
end

local A = "aaaaaaaa-0000-4000-8000-000000000001"

return {
  select = function(ctx)
    if me(ctx) and ctx.is_admin then return true end
    return own(ctx)
  end,
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
