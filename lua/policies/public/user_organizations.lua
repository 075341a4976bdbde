-- Users read their own memberships and the creator of an organization reads, adds and removes its members; a member may also leave (delete their own row); nobody edits a membership in place.

local function me(ctx) return ctx.role == "authenticated" and ctx.uid or nil end

local function created_orgs(uid) return { "in_select", "organizations", "id", { created_by = uid } } end

local A = "aaaaaaaa-0000-4000-8000-000000000001"

local function own_or_managed(ctx)
  local uid = me(ctx)
  if not uid then return false end
  return { ["$or"] = { { user_id = uid }, { org_id = created_orgs(uid) } } }
end

return {
  select = own_or_managed,
  insert = function(ctx)
    local uid = me(ctx)
    if not uid then return false end
    return { org_id = created_orgs(uid) }
  end,
  delete = own_or_managed,
  examples = {
    { action = "insert", ctx = { role = "authenticated", uid = A },
      expect = { org_id = { "in_select", "organizations", "id", { created_by = A } } } },
    { action = "delete", ctx = { role = "authenticated", uid = A }, expect = { ["$or"] = {
      { user_id = A }, { org_id = { "in_select", "organizations", "id", { created_by = A } } } } } },
    { action = "insert", ctx = { role = "anon" }, expect = false },
  },
}
