-- A CEO reads, creates, changes and deletes only the workspaces they own (owner_id = their uid); an agent reads only its own live workspace.
-- Callers (CEOs and agents): see the agentflow section of strata.policy_kit.
local NULL = require("cjson").null
local af = require("strata.policy_kit").agentflow
local agent_id, sel, live = af.agent_id, af.sel, af.live

local owned = af.for_ceo(function(uid) return { owner_id = uid } end)

local C = "cccccccc-0000-4000-8000-000000000001"
local G = "99999999-0000-4000-8000-000000000001"

return {
  -- seed 004 soft-deletes this table: DELETE stamps deleted_at (cascades: sql/155).
  soft_delete = "deleted_at",
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
