-- A CEO reads, creates, changes and deletes the tasks of projects of workspaces they own; an agent reads the live tasks of projects it can see and updates only the live tasks assigned to it, which must stay assigned to it.
-- Callers: a CEO is an authenticated token whose sub is their agentflow.users.id
-- and which carries no agent_id claim; an agent is an authenticated token whose
-- claims.agent_id is its agentflow.agents.id (it acts only while that agent is
-- neither soft-deleted nor terminated).  Anon and other roles get nothing.
local NULL = require("cjson").null

local function claimed_agent(ctx) return type(ctx.claims) == "table" and ctx.claims.agent_id or nil end

local function agent_id(ctx)
  local id = ctx.role == "authenticated" and claimed_agent(ctx)
  if type(id) == "string" and id ~= "" then return id end
  return nil
end

local function ceo(ctx)
  if ctx.role ~= "authenticated" or claimed_agent(ctx) ~= nil then return nil end
  return ctx.uid
end

local function sel(tbl, col, filter) return { "in_select", tbl, col, filter } end

local function live(aid) return { id = aid, deleted_at = NULL, status = { "neq", "terminated" } } end

local function visible_projects(aid)
  local org_agent = live(aid)
  org_agent.agent_level = "organization"
  return sel("projects", "id", { deleted_at = NULL, ["$or"] = {
    { workspace_id = sel("agents", "workspace_id", org_agent) },
    { id = sel("agents", "project_id", live(aid)) },
  } })
end

local function owned(ctx)
  local uid = ceo(ctx)
  if not uid then return false end
  return { project_id = sel("projects", "id", { workspace_id = sel("workspaces", "id", { owner_id = uid }) }) }
end

local C = "cccccccc-0000-4000-8000-000000000001"
local G = "99999999-0000-4000-8000-000000000001"

return {
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
