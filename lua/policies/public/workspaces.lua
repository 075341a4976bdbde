-- Members and the creator of the workspace's organization read it; only the organization's creator creates, changes or deletes its workspaces, and a parent workspace must be in an organization they created too.

local kit = require("strata.policy_kit")

local function created_orgs(uid) return kit.sel("organizations", "id", { created_by = uid }) end

local managed = kit.for_user(function(uid)
  return {
    organization_id = created_orgs(uid),
    -- The broker resolution walks parent_workspace_id upwards: a parent in
    -- someone else's organization would pull their values into ours.
    ["$or"] = {
      { parent_workspace_id = { "is", nil } },
      { parent_workspace_id = kit.sel("workspaces", "id", { organization_id = created_orgs(uid) }) },
    },
  }
end)

local A = "aaaaaaaa-0000-4000-8000-000000000001"

return {
  select = kit.for_user(function(uid)
    return { ["$or"] = {
      { organization_id = created_orgs(uid) },
      { organization_id = kit.sel("user_organizations", "org_id", { user_id = uid }) },
    } }
  end),
  insert = managed,
  update = managed,
  delete = managed,
  examples = {
    { action = "select", ctx = { role = "authenticated", uid = A }, expect = { ["$or"] = {
      { organization_id = { "in_select", "organizations", "id", { created_by = A } } },
      { organization_id = { "in_select", "user_organizations", "org_id", { user_id = A } } } } } },
    { action = "insert", ctx = { role = "authenticated", uid = A }, expect = {
      organization_id = { "in_select", "organizations", "id", { created_by = A } },
      ["$or"] = { { parent_workspace_id = { "is" } }, { parent_workspace_id = { "in_select", "workspaces", "id",
        { organization_id = { "in_select", "organizations", "id", { created_by = A } } } } } } } },
    { action = "delete", ctx = { role = "anon" }, expect = false },
  },
}
