-- Signed-in users read tasks they created, are assigned to, that sit in a project they created or belong to, or that are flagged authenticated_read; the creator or assignee changes a task, only the creator deletes it, and tasks are only created or kept in such projects.

local kit = require("strata.policy_kit")

-- project_id NULL, or a project the user created or is a member of.
local function my_project_or_none(uid)
  return { ["$or"] = {
    { project_id = { "is", nil } },
    { project_id = { "in_select", "projects", "id", { created_by = uid } } },
    { project_id = { "in_select", "user_projects", "project_id", { user_id = uid } } },
  } }
end

local A = "aaaaaaaa-0000-4000-8000-000000000001"

return {
  select = kit.for_user(function(uid)
    return { ["$or"] = {
      { user_id = uid },
      { assignee_id = uid },
      { authenticated_read = true },
      { project_id = { "in_select", "projects", "id", { created_by = uid } } },
      { project_id = { "in_select", "user_projects", "project_id", { user_id = uid } } },
    } }
  end),
  insert = kit.for_user(function(uid) return { user_id = uid, ["$and"] = { my_project_or_none(uid) } } end),
  update = kit.for_user(function(uid)
    return { ["$and"] = { { ["$or"] = { { user_id = uid }, { assignee_id = uid } } }, my_project_or_none(uid) } }
  end),
  delete = kit.own("user_id"),
  examples = {
    { action = "delete", ctx = { role = "authenticated", uid = A }, expect = { user_id = A } },
    { action = "insert", ctx = { role = "authenticated", uid = A }, expect = { user_id = A, ["$and"] = { { ["$or"] = {
      { project_id = { "is" } },
      { project_id = { "in_select", "projects", "id", { created_by = A } } },
      { project_id = { "in_select", "user_projects", "project_id", { user_id = A } } } } } } } },
    { action = "select", ctx = { role = "anon" }, expect = false },
  },
}
