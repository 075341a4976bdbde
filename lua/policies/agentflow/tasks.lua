-- A CEO reads, creates, changes and deletes the tasks of projects of workspaces they own; an agent reads the live tasks of projects it can see and updates only the live tasks assigned to it, which must stay assigned to it.
-- Callers (CEOs and agents): see the agentflow section of strata.policy_kit.
local NULL = require("cjson").null
local af = require("strata.policy_kit").agentflow
local agent_id, sel, live, visible_projects = af.agent_id, af.sel, af.live, af.visible_projects

local owned = af.for_ceo(function(uid)
  return { project_id = sel("projects", "id", { workspace_id = af.owned_workspaces(uid) }) }
end)

local C = "cccccccc-0000-4000-8000-000000000001"
local G = "99999999-0000-4000-8000-000000000001"

return {
  -- seed 004 soft-deletes this table: DELETE stamps deleted_at (cascades: sql/155).
  soft_delete = "deleted_at",
  select = function(ctx)
    local aid = agent_id(ctx)
    if aid then return { deleted_at = NULL, project_id = visible_projects(aid) } end
    return owned(ctx)
  end,
  insert = owned,
  update = function(ctx)
    local aid = agent_id(ctx)
    if aid then
      return { deleted_at = NULL, assigned_agent_id = sel("agents", "id", live(aid)), project_id = visible_projects(aid) }
    end
    return owned(ctx)
  end,
  delete = owned,
  examples = {
    { action = "delete", ctx = { role = "authenticated", uid = C, claims = {} }, expect = { project_id = { "in_select", "projects",
      "id", { workspace_id = { "in_select", "workspaces", "id", { owner_id = C } } } } } },
    { action = "update", ctx = { role = "authenticated", uid = G, claims = { agent_id = G } }, expect = { deleted_at = NULL,
      assigned_agent_id = { "in_select", "agents", "id", { id = G, deleted_at = NULL, status = { "neq", "terminated" } } },
      project_id = visible_projects(G) } },
    { action = "delete", ctx = { role = "authenticated", uid = G, claims = { agent_id = G } }, expect = false },
    { action = "select", ctx = { role = "anon", claims = {} }, expect = false },
  },
}
