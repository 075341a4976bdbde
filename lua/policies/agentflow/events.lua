-- The timeline is append-only: an agent reads the events it wrote or that belong to projects it can see and appends events only as their author (in its own sessions, in projects it can see); a CEO reads the events of projects and agents of workspaces they own; nobody changes or deletes an event.
-- Callers (CEOs and agents): see the agentflow section of strata.policy_kit.
local NULL = require("cjson").null
local af = require("strata.policy_kit").agentflow
local agent_id, ceo, sel, live, visible_projects = af.agent_id, af.ceo, af.sel, af.live, af.visible_projects

local C = "cccccccc-0000-4000-8000-000000000001"
local G = "99999999-0000-4000-8000-000000000001"

return {
  select = function(ctx)
    local aid = agent_id(ctx)
    if aid then
      return { ["$or"] = { { author_id = sel("agents", "id", live(aid)) }, { project_id = visible_projects(aid) } } }
    end
    local uid = ceo(ctx)
    if not uid then return false end
    local owned = af.owned_workspaces(uid)
    return { ["$or"] = {
      { project_id = sel("projects", "id", { workspace_id = owned }) },
      { author_id = sel("agents", "id", { workspace_id = owned }) },
    } }
  end,
  -- Only agents append: an event with no author is an automatic (system)
  -- event, which only the server (service_role) records.
  insert = function(ctx)
    local aid = agent_id(ctx)
    if not aid then return false end
    return {
      author_id = sel("agents", "id", live(aid)),
      ["$and"] = {
        { ["$or"] = { { session_id = NULL }, { session_id = sel("sessions", "id", { agent_id = aid }) } } },
        { ["$or"] = { { project_id = NULL }, { project_id = visible_projects(aid) } } },
      },
    }
  end,
  examples = {
    { action = "insert", ctx = { role = "authenticated", uid = G, claims = { agent_id = G } }, expect = {
      author_id = { "in_select", "agents", "id", { id = G, deleted_at = NULL, status = { "neq", "terminated" } } },
      ["$and"] = {
        { ["$or"] = { { session_id = NULL }, { session_id = { "in_select", "sessions", "id", { agent_id = G } } } } },
        { ["$or"] = { { project_id = NULL }, { project_id = visible_projects(G) } } },
      } } },
    { action = "insert", ctx = { role = "authenticated", uid = C, claims = {} }, expect = false },
    { action = "select", ctx = { role = "anon", claims = {} }, expect = false },
  },
}
