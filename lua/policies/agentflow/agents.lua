-- A CEO reads, hires, changes and retires the agents of workspaces they own; an organization-level agent reads every live agent of its workspace (seed 004) and a project-level agent itself and the live agents of its project.
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

local function owned(ctx)
  local uid = ceo(ctx)
  if not uid then return false end
  return { workspace_id = sel("workspaces", "id", { owner_id = uid }) }
end

local function live(aid) return { id = aid, deleted_at = NULL, status = { "neq", "terminated" } } end

local function visible_to_agent(aid)
  local org_agent = live(aid)
  org_agent.agent_level = "organization"
  return { deleted_at = NULL, ["$or"] = {
    { workspace_id = sel("agents", "workspace_id", org_agent) },
    { id = sel("agents", "id", live(aid)) },
    { project_id = sel("agents", "project_id", live(aid)) },
  } }
end

local C = "cccccccc-0000-4000-8000-000000000001"
local G = "99999999-0000-4000-8000-000000000001"

return {
  -- Agents never write here: status, trust_score and api_key_hash are the
  -- CEO's and the system's.
  select = function(ctx)
    local aid = agent_id(ctx)
    if aid then return visible_to_agent(aid) end
    return owned(ctx)
  end,
  insert = owned,
  update = owned,
  delete = owned,
  examples = {
    { action = "update", ctx = { role = "authenticated", uid = C, claims = { sub = C } },
      expect = { workspace_id = { "in_select", "workspaces", "id", { owner_id = C } } } },
    { action = "select", ctx = { role = "authenticated", uid = G, claims = { agent_id = G } }, expect = visible_to_agent(G) },
    { action = "update", ctx = { role = "authenticated", uid = G, claims = { agent_id = G } }, expect = false },
    { action = "select", ctx = { role = "anon", claims = {} }, expect = false },
  },
}
