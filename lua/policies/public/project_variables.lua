-- Members of a project (a user_projects row for their uid) read its variables, as seed 001's RLS says; only service_role writes them.

local function me(ctx) return ctx.role == "authenticated" and ctx.uid or nil end

local A = "aaaaaaaa-0000-4000-8000-000000000001"

return {
  select = function(ctx)
    local uid = me(ctx)
    if not uid then return false end
    return { project_id = { "in_select", "user_projects", "project_id", { user_id = uid } } }
  end,
  examples = {
    { action = "select", ctx = { role = "authenticated", uid = A },
      expect = { project_id = { "in_select", "user_projects", "project_id", { user_id = A } } } },
    { action = "select", ctx = { role = "anon" }, expect = false },
  },
}
