-- A CEO reads (all but api_key_hash), hires, changes and retires the agents of workspaces they own; an organization-level agent reads every live agent of its workspace (seed 004) and a project-level agent itself and the live agents of its project.
-- Callers (CEOs and agents): see the agentflow section of strata.policy_kit.
local NULL = require("cjson").null
local af = require("strata.policy_kit").agentflow
local agent_id, sel, live = af.agent_id, af.sel, af.live

local owned = af.for_ceo(function(uid) return { workspace_id = af.owned_workspaces(uid) } end)

local function visible_to_agent(aid)
  return { deleted_at = NULL, ["$or"] = {
    { workspace_id = sel("agents", "workspace_id", af.org_agent(aid)) },
    { id = sel("agents", "id", live(aid)) },
    { project_id = sel("agents", "project_id", live(aid)) },
  } }
end

local C = "cccccccc-0000-4000-8000-000000000001"
local G = "99999999-0000-4000-8000-000000000001"

return {
  -- seed 004 soft-deletes this table: DELETE stamps deleted_at (cascades: sql/155).
  soft_delete = "deleted_at",
  -- Agents never write here: status, trust_score and api_key_hash are the
  -- CEO's and the system's.
  -- The bcrypt of the agent's API key is the server's to check (seed 004:
  -- "never store plaintext"); no client reads it, not even the owning CEO.
  hidden = { "api_key_hash" },
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
