-- AgentFlow wiki (seed 004): versions, approval, views.  Each request is
-- one transaction with the wiki_contribution event it causes.
--
--   POST /v1/agentflow/wiki/:id/versions  { title?, content?, tags?, submit? } -> 201 a new version of entry :id
--        (same slug, version + 1, parent_entry_id = :id), a draft, or pending_approval with submit = true
--   POST /v1/agentflow/wiki/:id/submit    draft -> pending_approval (its proposer)
--   POST /v1/agentflow/wiki/:id/approve   pending_approval (or the CEO's own draft) -> approved, now the
--        slug's current version (sql/154); the workspace's CEO
--   POST /v1/agentflow/wiki/:id/reject    { reason } -> rejected; the workspace's CEO
--   GET  /v1/agentflow/wiki/:id           the entry, its view_count + 1 and last_viewed_at now
-- Full-text search is the rpc agentflow.search_wiki.  Who may read,
-- propose and approve what is lua/policies/agentflow/wiki_entries.lua's.

local cjson = require("cjson")
local data = require("strata.data")
local af = require("strata.agentflow")

local NULL = cjson.null
local type, next = type, next

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

local problem = af.problem

local function entry(id)
  local rows, err = data.select("agentflow.wiki_entries", { id = "eq." .. id })
  if not rows then return nil, err end
  if not rows[1] then return af.fail(404, "PGRST116", "wiki entry " .. id .. " not found") end
  return rows[1]
end

local function contribution(tx, e, mention)
  return af.emit(tx, "wiki_contribution", { project_id = e.project_id ~= NULL and e.project_id or nil,
    mentions = mention and { mention } or nil,
    content = { entryId = e.id, title = e.title, content = e.content, status = e.status } })
end

local function with_id(req, fn, ok)
  local id = req.params.id
  if not id:find(UUID) then return problem(400, "22P02", "wiki entry id must be a UUID") end
  return af.step(function(tx) return fn(tx, id) end, ok)
end

local function new_version(req)
  local body = req.json
  if type(body) ~= "table" then return problem(400, "PGRST102", "the body must be a JSON object") end
  local aid = af.agent_id(req)
  return with_id(req, function(tx, id)
    local old, err = entry(id)
    if not old then return nil, err end
    local rows
    rows, err = af.query(tx, "select agentflow_system.wiki_next_version($1, $2, $3) as v", old.workspace_id,
      old.project_id, old.slug)
    if not rows then return nil, err end
    local tags = body.tags or old.tags
    if type(tags) == "table" and next(tags) == nil then tags = nil end -- cjson would send {}: the default is '{}'
    rows, err = data.insert("agentflow.wiki_entries", {
      workspace_id = old.workspace_id, project_id = old.project_id, slug = old.slug, version = rows[1].v,
      parent_entry_id = old.id, title = body.title or old.title, content = body.content or old.content,
      tags = tags, status = body.submit == true and "pending_approval" or "draft",
      proposed_by_agent_id = aid or NULL })
    if not rows then return nil, err end
    local ok
    ok, err = contribution(tx, rows[1], aid)
    if not ok then return nil, err end
    return rows[1]
  end, 201)
end

-- Moves entry id from one of `from` to `patch.status`, with its event.
local function decide(id, from, patch, tx)
  local rows, err = data.update("agentflow.wiki_entries", { id = "eq." .. id, status = "in.(" .. from .. ")" }, patch)
  if not rows then return nil, err end
  if not rows[1] then
    local now = entry(id)
    if now then
      return af.fail(409, "PGRST409", ("wiki entry %s cannot move from %s to %s"):format(id, now.status, patch.status),
        { from = now.status, to = patch.status })
    end
    return af.fail(404, "PGRST116", "wiki entry " .. id .. " not found")
  end
  local ok
  ok, err = contribution(tx, rows[1], rows[1].proposed_by_agent_id ~= NULL and rows[1].proposed_by_agent_id or nil)
  if not ok then return nil, err end
  return rows[1]
end

local function ceo_only(req)
  if af.agent_id(req) or not (req.auth and req.auth.uid) then
    return problem(403, "42501", "only the workspace's CEO approves or rejects wiki entries")
  end
end

local function submit(req)
  return with_id(req, function(tx, id) return decide(id, "draft", { status = "pending_approval" }, tx) end)
end

local function approve(req)
  local refused, body = ceo_only(req)
  if refused then return refused, body end
  return with_id(req, function(tx, id)
    local now, err = af.query(tx, "select localtimestamp::text as t")
    if not now then return nil, err end
    return decide(id, "draft,pending_approval", { status = "approved", approved_by = req.auth.uid,
      approved_at = now[1].t, rejection_reason = NULL }, tx)
  end)
end

local function reject(req)
  local refused, body = ceo_only(req)
  if refused then return refused, body end
  local reason = type(req.json) == "table" and req.json.reason
  if type(reason) ~= "string" or reason == "" then return problem(400, "PGRST102", "body.reason is required") end
  return with_id(req, function(tx, id)
    return decide(id, "draft,pending_approval", { status = "rejected", rejection_reason = reason }, tx)
  end)
end

local function view(req)
  return with_id(req, function(tx, id)
    local e, err = entry(id)
    if not e then return nil, err end
    local ok
    ok, err = af.query(tx, "select agentflow_system.wiki_viewed($1)", id)
    if not ok then return nil, err end
    return entry(id)
  end)
end

return {
  { method = "POST", path = "/v1/agentflow/wiki/:id/versions", handler = new_version },
  { method = "POST", path = "/v1/agentflow/wiki/:id/submit", handler = submit },
  { method = "POST", path = "/v1/agentflow/wiki/:id/approve", handler = approve },
  { method = "POST", path = "/v1/agentflow/wiki/:id/reject", handler = reject },
  { method = "GET", path = "/v1/agentflow/wiki/:id", handler = view },
}
