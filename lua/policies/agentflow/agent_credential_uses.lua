-- A CEO reads the log of their agents' API-key exchanges (who, when, from where, result); nobody writes it through the API (the server does, lua/auth/agent_keys.lua).
-- Callers (CEOs and agents): see the agentflow section of strata.policy_kit.
local af = require("strata.policy_kit").agentflow

local C = "cccccccc-0000-4000-8000-000000000001"
local G = "99999999-0000-4000-8000-000000000001"

local function of_owned_agents(uid)
  return { agent_id = af.sel("agents", "id", { workspace_id = af.owned_workspaces(uid) }) }
end

return {
  select = af.for_ceo(of_owned_agents),
  examples = {
    { action = "select", ctx = { role = "authenticated", uid = C, claims = { sub = C } }, expect = of_owned_agents(C) },
    { action = "select", ctx = { role = "authenticated", uid = G, claims = { agent_id = G } }, expect = false },
    { action = "select", ctx = { role = "anon", claims = {} }, expect = false },
  },
}
