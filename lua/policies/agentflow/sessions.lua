-- An agent reads its own sessions and starts or updates them only as itself and in projects it can see; a CEO reads the sessions in projects of workspaces they own; nobody but service_role deletes a session.
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
    return { project_id = sel("projects", "id", { workspace_id = sel("workspaces", "id", { owner_id = uid }) }) }
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
