-- A CEO reads only their own live account (id = their uid, not soft-deleted); agents read no user, and only service_role creates or changes accounts (they hold password hashes).
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

local C = "cccccccc-0000-4000-8000-000000000001"
local G = "99999999-0000-4000-8000-000000000001"

return {
  select = function(ctx)
    local uid = ceo(ctx)
    if not uid then return false end
    return { id = uid, deleted_at = NULL }
  end,
  examples = {
    { action = "select", ctx = { role = "authenticated", uid = C, claims = { sub = C } }, expect = { id = C, deleted_at = NULL } },
    { action = "select", ctx = { role = "authenticated", uid = G, claims = { sub = G, agent_id = G } }, expect = false },
    { action = "select", ctx = { role = "anon", claims = {} }, expect = false },
  },
}
