-- An agent reads its own sessions and starts or updates them only as itself and in projects it can see; a CEO reads the sessions in projects of workspaces they own; nobody but service_role deletes a session.
-- Callers (CEOs and agents): see the agentflow section of strata.policy_kit.
local NULL = require("cjson").null
local af = require("strata.policy_kit").agentflow
local agent_id, ceo, sel, live, visible_projects = af.agent_id, af.ceo, af.sel, af.live, af.visible_projects

local function own_session(ctx)
  local aid = agent_id(ctx)
  if not aid then return false end
  return { agent_id = sel("agents", "id", live(aid)), project_id = visible_projects(aid) }
end

local C = "cccccccc-0000-4000-8000-000000000001"
local G = "99999999-0000-4000-8000-000000000001"

return {
  select = function(ctx)
    local aid = agent_id(ctx)
    if aid then return { agent_id = sel("agents", "id", live(aid)) } end
    local uid = ceo(ctx)
    if not uid then return false end
    return { project_id = sel("projects", "id", { workspace_id = af.owned_workspaces(uid) }) }
  end,
  insert = own_session,
  -- A stopped session is frozen by a trigger; the check keeps the session
  -- the agent's own.
  update = own_session,
  examples = {
    { action = "select", ctx = { role = "authenticated", uid = G, claims = { agent_id = G } },
      expect = { agent_id = { "in_select", "agents", "id", { id = G, deleted_at = NULL, status = { "neq", "terminated" } } } } },
    { action = "select", ctx = { role = "authenticated", uid = C, claims = {} }, expect = { project_id = { "in_select",
      "projects", "id", { workspace_id = { "in_select", "workspaces", "id", { owner_id = C } } } } } },
    { action = "insert", ctx = { role = "authenticated", uid = C, claims = {} }, expect = false },
    { action = "select", ctx = { role = "anon", claims = {} }, expect = false },
  },
}
