-- An agent reads only its own KPIs and a CEO the KPIs of agents of workspaces they own; only the system (service_role) records KPIs.
-- Callers (CEOs and agents): see the agentflow section of strata.policy_kit.
local NULL = require("cjson").null
local af = require("strata.policy_kit").agentflow
local agent_id, ceo, sel, live = af.agent_id, af.ceo, af.sel, af.live

local C = "cccccccc-0000-4000-8000-000000000001"
local G = "99999999-0000-4000-8000-000000000001"

return {
  select = function(ctx)
    local aid = agent_id(ctx)
    if aid then return { agent_id = sel("agents", "id", live(aid)) } end
    local uid = ceo(ctx)
    if not uid then return false end
    return { agent_id = sel("agents", "id", { workspace_id = af.owned_workspaces(uid) }) }
  end,
  examples = {
    { action = "select", ctx = { role = "authenticated", uid = G, claims = { agent_id = G } },
      expect = { agent_id = { "in_select", "agents", "id", { id = G, deleted_at = NULL, status = { "neq", "terminated" } } } } },
    { action = "select", ctx = { role = "authenticated", uid = C, claims = {} }, expect = { agent_id = { "in_select", "agents", "id",
      { workspace_id = { "in_select", "workspaces", "id", { owner_id = C } } } } } },
    { action = "select", ctx = { role = "anon", claims = {} }, expect = false },
  },
}
