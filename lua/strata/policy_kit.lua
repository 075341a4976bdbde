-- strata.policy_kit: the pieces the row policies (lua/policies/**) share:
-- who the caller is, the ready-made "own rows only", "admins too" and
-- "signed-in users read, admins write" rules, in_select filters, and the
-- agentflow callers (M.agentflow).  It lives outside lua/policies/ because
-- every file there is loaded as a policy.  Every function that answers a
-- filter builds a fresh table, so a policy may add keys to what it gets.

local NULL = require("cjson").null
local type = type

local M = {}

--- The caller's auth uid when it is a signed-in user, else nil.
function M.uid(ctx) return ctx.role == "authenticated" and ctx.uid or nil end

--- True for a signed-in user, false otherwise (as a policy: every row or none).
function M.signed_in(ctx) return ctx.role == "authenticated" and ctx.uid ~= nil end

--- True for a signed-in admin; an admin flag on any other token counts for nothing.
function M.admin(ctx) return M.signed_in(ctx) and ctx.is_admin == true end

--- A policy that answers false to every client (service_role alone gets through).
function M.nobody() return false end

--- The filter value `IN (SELECT col FROM tbl WHERE filter)` (same schema).
function M.sel(tbl, col, filter) return { "in_select", tbl, col, filter } end

--- A policy answering build(uid, ctx) to signed-in users and false to everyone else.
function M.for_user(build)
  return function(ctx)
    local uid = M.uid(ctx)
    if not uid then return false end
    return build(uid, ctx)
  end
end

--- A policy answering { [column] = uid } to signed-in users ("own rows only") and false to everyone else.
function M.own(column)
  return M.for_user(function(uid) return { [column] = uid } end)
end

--- A policy answering true to signed-in admins, { [column] = uid } to other signed-in users, false to anyone else.
function M.own_or_admin(column)
  return M.for_user(function(uid, ctx)
    if ctx.is_admin then return true end
    return { [column] = uid }
  end)
end

--- The policy "every signed-in user reads, only admins create, change or delete", with the file's examples.
function M.signed_in_reads_admins_write(examples)
  return { select = M.signed_in, insert = M.admin, update = M.admin, delete = M.admin, examples = examples }
end

-- agentflow callers: a CEO is an authenticated token whose sub is their
-- agentflow.users.id and which carries no agent_id claim; an agent is an
-- authenticated token whose claims.agent_id is its agentflow.agents.id (it
-- acts only while that agent is neither soft-deleted nor terminated).  Anon
-- and other roles get nothing.
local A = {}
M.agentflow = A

--- The token's agent_id claim as given (any type), or nil.
function A.claimed_agent(ctx) return type(ctx.claims) == "table" and ctx.claims.agent_id or nil end

--- The calling agent's id (a non-empty string claim of an authenticated token), or nil.
function A.agent_id(ctx)
  local id = ctx.role == "authenticated" and A.claimed_agent(ctx)
  if type(id) == "string" and id ~= "" then return id end
  return nil
end

--- The calling CEO's uid (an authenticated token without an agent_id claim), or nil.
function A.ceo(ctx)
  if ctx.role ~= "authenticated" or A.claimed_agent(ctx) ~= nil then return nil end
  return ctx.uid
end

--- The filter value `IN (SELECT col FROM tbl WHERE filter)` (M.sel).
A.sel = M.sel

--- The agents filter for agent aid while it is live (not soft-deleted, not terminated).
function A.live(aid) return { id = aid, deleted_at = NULL, status = { "neq", "terminated" } } end

--- The agents filter for agent aid while it is live and organization-level.
function A.org_agent(aid)
  local f = A.live(aid)
  f.agent_level = "organization"
  return f
end

--- The ids of the live projects agent aid can see: its workspace's if organization-level, else its own project.
function A.visible_projects(aid)
  return M.sel("projects", "id", { deleted_at = NULL, ["$or"] = {
    { workspace_id = M.sel("agents", "workspace_id", A.org_agent(aid)) },
    { id = M.sel("agents", "project_id", A.live(aid)) },
  } })
end

--- The ids of the workspaces CEO uid owns.
function A.owned_workspaces(uid) return M.sel("workspaces", "id", { owner_id = uid }) end

--- A policy answering build(uid, ctx) to a CEO and false to everyone else.
function A.for_ceo(build)
  return function(ctx)
    local uid = A.ceo(ctx)
    if not uid then return false end
    return build(uid, ctx)
  end
end

return M
