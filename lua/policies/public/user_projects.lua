-- Users read their own project memberships and the creator of a project reads, adds and removes its members; a member may also leave (delete their own row); nobody edits a membership in place.

local kit = require("strata.policy_kit")

local function created_projects(uid) return kit.sel("projects", "id", { created_by = uid }) end

local A = "aaaaaaaa-0000-4000-8000-000000000001"

local own_or_managed = kit.for_user(function(uid) return { ["$or"] = { { user_id = uid }, { project_id = created_projects(uid) } } } end)

return {
  select = own_or_managed,
  insert = kit.for_user(function(uid) return { project_id = created_projects(uid) } end),
  delete = own_or_managed,
  examples = {
    { action = "insert", ctx = { role = "authenticated", uid = A },
      expect = { project_id = { "in_select", "projects", "id", { created_by = A } } } },
    { action = "select", ctx = { role = "anon" }, expect = false },
  },
}
