-- AgentFlow agent API keys: a CEO creates a key for one of their agents
-- (shown once); the agent trades it at /auth/v1/token?grant_type=agent_key.
-- See lua/auth/agent_keys.lua.
return {
  { method = "POST", path = "/v1/agentflow/agents/:id/keys",
    handler = function(req) return require("auth.agent_keys").create(req) end },
}
