-- A CEO reads only their own live account (id = their uid, not soft-deleted); agents read no user, and only service_role creates or changes accounts (they hold password hashes, which no client reads: hidden).
-- Callers (CEOs and agents): see the agentflow section of strata.policy_kit.
local NULL = require("cjson").null
local af = require("strata.policy_kit").agentflow

local C = "cccccccc-0000-4000-8000-000000000001"
local G = "99999999-0000-4000-8000-000000000001"

return {
  -- seed 004 soft-deletes this table: DELETE stamps deleted_at (cascades: sql/155).
  soft_delete = "deleted_at",
  -- A password hash is for the server's sign-in check only, even its owner's.
  hidden = { "password_hash" },
  select = af.for_ceo(function(uid) return { id = uid, deleted_at = NULL } end),
  examples = {
    { action = "select", ctx = { role = "authenticated", uid = C, claims = { sub = C } }, expect = { id = C, deleted_at = NULL } },
    { action = "select", ctx = { role = "authenticated", uid = G, claims = { sub = G, agent_id = G } }, expect = false },
    { action = "select", ctx = { role = "anon", claims = {} }, expect = false },
  },
}
