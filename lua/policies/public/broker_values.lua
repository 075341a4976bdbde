-- Signed-in users read global values and values at scopes they can see (their user, organizations and projects they created or belong to, those organizations' workspaces, their tasks, AI runs and AI tasks); they write values only at scopes they own (their user, organizations and projects they created and those organizations' workspaces, their tasks, runs and AI tasks), never global ones.

local kit = require("strata.policy_kit")

local sel = kit.sel

local function member_orgs(uid) return sel("user_organizations", "org_id", { user_id = uid }) end
local function created_orgs(uid) return sel("organizations", "id", { created_by = uid }) end

local function readable(uid)
  return { ["$or"] = {
    { is_global = true },
    { user_id = uid },
    { organization_id = created_orgs(uid) },
    { organization_id = member_orgs(uid) },
    { workspace_id = sel("workspaces", "id", { ["$or"] = {
      { organization_id = created_orgs(uid) }, { organization_id = member_orgs(uid) } } }) },
    { project_id = sel("projects", "id", { created_by = uid }) },
    { project_id = sel("user_projects", "project_id", { user_id = uid }) },
    { task_id = sel("tasks", "id", { ["$or"] = { { user_id = uid }, { assignee_id = uid } } }) },
    { ai_runs_id = sel("ai_runs", "id", { user_id = uid }) },
    { ai_tasks_id = sel("ai_tasks", "id", { user_id = uid }) },
  } }
end

-- Exactly one scope column is set (a CHECK in SQL), so one owned scope
-- suffices; a global row (all scope columns NULL) matches none of these.
local function writable(uid)
  return {
    ["$or"] = {
      { user_id = uid },
      { organization_id = created_orgs(uid) },
      { workspace_id = sel("workspaces", "id", { organization_id = created_orgs(uid) }) },
      { project_id = sel("projects", "id", { created_by = uid }) },
      { task_id = sel("tasks", "id", { user_id = uid }) },
      { ai_runs_id = sel("ai_runs", "id", { user_id = uid }) },
      { ai_tasks_id = sel("ai_tasks", "id", { user_id = uid }) },
    },
    ["$and"] = { { ["$or"] = { { created_by = { "is", nil } }, { created_by = uid } } } },
  }
end

local A = "aaaaaaaa-0000-4000-8000-000000000001"

return {
  select = kit.for_user(readable),
  insert = kit.for_user(writable),
  update = kit.for_user(writable),
  delete = kit.for_user(writable),
  examples = {
    { action = "select", ctx = { role = "authenticated", uid = A }, expect = readable(A) },
    { action = "insert", ctx = { role = "authenticated", uid = A }, expect = writable(A) },
    { action = "select", ctx = { role = "anon" }, expect = false },
    { action = "delete", ctx = { role = "anon" }, expect = false },
  },
}
