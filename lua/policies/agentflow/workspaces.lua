-- A CEO reads, creates, changes and deletes only the workspaces they own (owner_id = their uid); an agent reads only its own live workspace.
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
  return { owner_id = uid }
end

local function live(aid) return { id = aid, deleted_at = NULL, status = { "neq", "terminated" } } end

local C = "cccccccc-0000-4000-8000-000000000001"
local G = "99999999-0000-4000-8000-000000000001"

return {
  select = function(ctx)
    local aid = agent_id(ctx)
    if aid then return { id = sel("agents", "workspace_id", live(aid)), deleted_at = NULL } end
    return owned(ctx)
  end,
  insert = owned,
  update = owned,
  delete = owned,
  examples = {
    { action = "select", ctx = { role = "authenticated", uid = C, claims = { sub = C } }, expect = { owner_id = C } },
    { action = "select", ctx = { role = "authenticated", uid = G, claims = { agent_id = G } },
      expect = { id = { "in_select", "agents", "workspace_id", { id = G, deleted_at = NULL, status = { "neq", "terminated" } } },
        deleted_at = NULL } },
    { action = "update", ctx = { role = "authenticated", uid = G, claims = { agent_id = G } }, expect = false },
    { action = "insert", ctx = { role = "anon", claims = {} }, expect = false },
  },
}
