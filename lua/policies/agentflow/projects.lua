-- A CEO reads (the GitHub webhook secret included), creates, changes and deletes the projects of workspaces they own; an organization-level agent reads the live projects of its workspace (never the webhook secret) and a project-level agent only its own project.
-- Callers (CEOs and agents): see the agentflow section of strata.policy_kit.
local NULL = require("cjson").null
local af = require("strata.policy_kit").agentflow
local agent_id, sel, live = af.agent_id, af.sel, af.live

local owned = af.for_ceo(function(uid) return { workspace_id = af.owned_workspaces(uid) } end)

local function visible_to_agent(aid)
  return { deleted_at = NULL, ["$or"] = {
    { workspace_id = sel("agents", "workspace_id", af.org_agent(aid)) },
    { id = sel("agents", "project_id", live(aid)) },
  } }
end

local C = "cccccccc-0000-4000-8000-000000000001"
local G = "99999999-0000-4000-8000-000000000001"

return {
  -- seed 004 soft-deletes this table: DELETE stamps deleted_at (cascades: sql/155).
  soft_delete = "deleted_at",
  -- The GitHub webhook secret (sql/153) is the server's to check and the
  -- CEO's to set and read (their projects only, by select below); no
  -- agent or anonymous caller reads it.
  hidden = function(ctx)
    if agent_id(ctx) or not (ctx.role == "authenticated" and ctx.uid) then return { "github_webhook_secret" } end
    return {}
  end,
  select = function(ctx)
    local aid = agent_id(ctx)
    if aid then return visible_to_agent(aid) end
    return owned(ctx)
  end,
  insert = owned,
  update = owned,
  delete = owned,
  examples = {
    { action = "insert", ctx = { role = "authenticated", uid = C, claims = {} },
      expect = { workspace_id = { "in_select", "workspaces", "id", { owner_id = C } } } },
    { action = "select", ctx = { role = "authenticated", uid = G, claims = { agent_id = G } }, expect = { deleted_at = NULL, ["$or"] = {
      { workspace_id = { "in_select", "agents", "workspace_id",
        { id = G, deleted_at = NULL, status = { "neq", "terminated" }, agent_level = "organization" } } },
      { id = { "in_select", "agents", "project_id", { id = G, deleted_at = NULL, status = { "neq", "terminated" } } } } } } },
    { action = "delete", ctx = { role = "authenticated", uid = G, claims = { agent_id = G } }, expect = false },
    { action = "select", ctx = { role = "anon", claims = {} }, expect = false },
  },
}
