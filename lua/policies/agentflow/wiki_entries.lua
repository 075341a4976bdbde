-- Drafts are visible only to their proposer (seed 004): an agent reads its own proposals and the approved live entries of its workspace or project, and proposes or edits only its own drafts or pending entries; a CEO reads every non-draft entry (and their own drafts) of workspaces they own, writes entries there and approves them in their own name.
-- Callers (CEOs and agents): see the agentflow section of strata.policy_kit.
local NULL = require("cjson").null
local af = require("strata.policy_kit").agentflow
local agent_id, ceo, sel, live = af.agent_id, af.ceo, af.sel, af.live

local function own_proposal(aid) return sel("agents", "id", live(aid)) end

-- The entries a CEO may see in their workspaces: everything but agents'
-- drafts.  An entry with no proposing agent was written by the CEO.
local function ceo_entries(uid)
  return {
    workspace_id = af.owned_workspaces(uid),
    ["$or"] = { { status = { "neq", "draft" } }, { proposed_by_agent_id = NULL } },
  }
end

local function ceo_writes(uid)
  local f = ceo_entries(uid)
  -- Approval is recorded in the CEO's own name only.
  f["$and"] = { { ["$or"] = { { approved_by = NULL }, { approved_by = uid } } } }
  return f
end

local function agent_proposal(aid)
  return {
    proposed_by_agent_id = own_proposal(aid),
    status = { "in", { "draft", "pending_approval" } },
    approved_by = NULL,
    workspace_id = sel("agents", "workspace_id", live(aid)),
  }
end

local function agent_reads(aid)
  return { ["$or"] = {
    { proposed_by_agent_id = own_proposal(aid) },
    { status = "approved", deleted_at = NULL, ["$or"] = {
      { project_id = NULL, workspace_id = sel("agents", "workspace_id", live(aid)) },
      { project_id = sel("agents", "project_id", live(aid)) },
      { workspace_id = sel("agents", "workspace_id", af.org_agent(aid)) },
    } },
  } }
end

local C = "cccccccc-0000-4000-8000-000000000001"
local G = "99999999-0000-4000-8000-000000000001"

return {
  -- seed 004 soft-deletes this table: DELETE stamps deleted_at (cascades: sql/155).
  soft_delete = "deleted_at",
  select = function(ctx)
    local aid = agent_id(ctx)
    if aid then return agent_reads(aid) end
    local uid = ceo(ctx)
    if not uid then return false end
    return ceo_entries(uid)
  end,
  insert = function(ctx)
    local aid = agent_id(ctx)
    if aid then return agent_proposal(aid) end
    local uid = ceo(ctx)
    if not uid then return false end
    local f = ceo_writes(uid)
    f.proposed_by_agent_id = NULL
    return f
  end,
  update = function(ctx)
    local aid = agent_id(ctx)
    if aid then return agent_proposal(aid) end
    local uid = ceo(ctx)
    if not uid then return false end
    return ceo_writes(uid)
  end,
  delete = function(ctx)
    local aid = agent_id(ctx)
    if aid then return { proposed_by_agent_id = own_proposal(aid), status = "draft" } end
    local uid = ceo(ctx)
    if not uid then return false end
    return ceo_entries(uid)
  end,
  examples = {
    { action = "select", ctx = { role = "authenticated", uid = C, claims = {} }, expect = {
      workspace_id = { "in_select", "workspaces", "id", { owner_id = C } },
      ["$or"] = { { status = { "neq", "draft" } }, { proposed_by_agent_id = NULL } } } },
    { action = "delete", ctx = { role = "authenticated", uid = G, claims = { agent_id = G } }, expect = {
      proposed_by_agent_id = { "in_select", "agents", "id", { id = G, deleted_at = NULL, status = { "neq", "terminated" } } },
      status = "draft" } },
    { action = "select", ctx = { role = "authenticated", uid = G, claims = { agent_id = G } }, expect = agent_reads(G) },
    { action = "insert", ctx = { role = "anon", claims = {} }, expect = false },
    { action = "update", ctx = { role = "authenticated", claims = { agent_id = 42 } }, expect = false },
  },
}
