-- Credentials are never readable or writable through the API (seed 004: "never expose credential hashes via API"), not even an agent's own: only service_role reads or writes them.
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

-- Rows hold credential_hash and salt, and row policies cannot hide columns,
-- so no client role gets any row; the server (service_role, which bypasses
-- this function) issues, checks and rotates credentials.  select answers
-- false for every client rather than being left out only so that the rule
-- has examples; insert, update and delete are left out (403 / 401).
local C = "cccccccc-0000-4000-8000-000000000001"
local G = "99999999-0000-4000-8000-000000000001"

return {
  select = function(ctx) return ctx.role == "service_role" end,
  examples = {
    { action = "select", ctx = { role = "service_role", claims = {} }, expect = true },
    { action = "select", ctx = { role = "authenticated", uid = G, claims = { agent_id = G } }, expect = false },
    { action = "select", ctx = { role = "authenticated", uid = C, claims = { sub = C } }, expect = false },
    { action = "select", ctx = { role = "authenticated", uid = C, is_admin = true, claims = {} }, expect = false },
    { action = "select", ctx = { role = "anon", claims = {} }, expect = false },
  },
}
