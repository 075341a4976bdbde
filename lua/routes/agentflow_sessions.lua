-- AgentFlow sessions and events (seed 004), with an agent's token.  Each
-- request is one transaction with the events it causes.
--
--   POST /v1/agentflow/sessions               { project_id } -> 201 the session; its session_start
--        event (automatic) carries pulled_updates: what happened since the agent's last session
--        (events it can see, tasks assigned to it, approved wiki entries), counted and listed (50 each)
--   POST /v1/agentflow/sessions/:id/log       { message, context? } -> 201 the session_log event (by the agent)
--   POST /v1/agentflow/sessions/:id/stop      -> 200 the session, duration computed; a session_stop event
--   POST /v1/agentflow/events                 an event by the agent (validated like /rest/v1's); a
--        review_response recalculates the author's KPIs and trust (content.approved: false for a rejection)
--
-- Which sessions, projects and events are the agent's is the row policies'.

local cjson = require("cjson")
local data = require("strata.data")
local af = require("strata.agentflow")

local NULL = cjson.null
local type, ipairs = type, ipairs

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"
local PULL_LIMIT = 50

local problem = af.problem

local function ids(rows)
  if #rows == 0 then return nil end -- absent rather than {} (cjson would write an object)
  local out = {}
  for i, r in ipairs(rows) do out[i] = r.id end
  return out
end

-- Rows and their total (count = "exact"), the newest PULL_LIMIT of them.
local function pulled(tbl, query)
  query.select, query.limit = "id", PULL_LIMIT
  local rows, meta = data.select(tbl, query, { count = "exact" })
  if not rows then return nil, meta end
  return rows, meta.count or #rows
end

-- What the agent missed since its last session stopped (or ever).
local function updates_since(aid, since)
  local after = since and ("gt." .. since) or nil
  local events, n_events = pulled("agentflow.events", { timestamp = after, author_id = "neq." .. aid,
    order = "timestamp.desc" })
  if not events then return nil, n_events end
  local tasks, n_tasks = pulled("agentflow.tasks", { assigned_agent_id = "eq." .. aid, updated_at = after,
    status = "in.(assigned,in_progress,blocked)", order = "updated_at.desc" })
  if not tasks then return nil, n_tasks end
  local wiki, n_wiki = pulled("agentflow.wiki_entries", { status = "eq.approved", approved_at = after,
    order = "approved_at.desc" })
  if not wiki then return nil, n_wiki end
  local roles, n_roles = pulled("agentflow.events", { type = "eq.trust_score_changed", timestamp = after,
    mentions = "cs.{" .. aid .. "}" })
  if not roles then return nil, n_roles end
  return { tasks = n_tasks, messages = n_events, role_changes = n_roles, wiki = n_wiki,
    events = ids(events), assigned_tasks = ids(tasks), wiki_entries = ids(wiki) }
end

local function start(req)
  local aid = af.agent_id(req)
  if not aid then return problem(403, "42501", "only an agent's token starts a session") end
  local body = req.json
  if type(body) ~= "table" or type(body.project_id) ~= "string" or not body.project_id:find(UUID) then
    return problem(400, "PGRST102", "body.project_id must be a project's UUID")
  end
  return af.step(function(tx)
    local last, err = data.select("agentflow.sessions", { agent_id = "eq." .. aid, status = "eq.stopped",
      order = "stopped_at.desc", limit = 1, select = "stopped_at" })
    if not last then return nil, err end
    local updates
    updates, err = updates_since(aid, last[1] and last[1].stopped_at)
    if not updates then return nil, err end
    local rows
    rows, err = data.insert("agentflow.sessions", { agent_id = aid, project_id = body.project_id })
    if not rows then return nil, err end
    local session = rows[1]
    local ok
    ok, err = af.emit(tx, "session_start", { project_id = session.project_id, session_id = session.id,
      mentions = { aid }, content = { pulled_updates = updates } })
    if not ok then return nil, err end
    session.pulled_updates = updates
    return session
  end, 201)
end

local function log_entry(req)
  local aid = af.agent_id(req)
  if not aid then return problem(403, "42501", "only an agent's token writes to a session") end
  local id, body = req.params.id, req.json
  if not id:find(UUID) then return problem(400, "22P02", "session id must be a UUID") end
  if type(body) ~= "table" then return problem(400, "PGRST102", "the body must be a JSON object") end
  return af.step(function()
    local rows, err = data.update("agentflow.sessions", { id = "eq." .. id, status = "neq.stopped" },
      { status = "logging" })
    if not rows then return nil, err end
    if not rows[1] then return af.fail(404, "PGRST116", "no open session " .. id .. " of this agent") end
    rows, err = data.insert("agentflow.events", { type = "session_log", author_id = aid, session_id = id,
      project_id = rows[1].project_id, content = { message = body.message, context = body.context } })
    if not rows then return nil, err end
    return rows[1]
  end, 201)
end

local function stop(req)
  if not af.agent_id(req) then return problem(403, "42501", "only an agent's token stops a session") end
  local id = req.params.id
  if not id:find(UUID) then return problem(400, "22P02", "session id must be a UUID") end
  return af.step(function(tx)
    local now, err = af.query(tx, "select localtimestamp::text as t")
    if not now then return nil, err end
    local rows
    rows, err = data.update("agentflow.sessions", { id = "eq." .. id, status = "neq.stopped" },
      { status = "stopped", stopped_at = now[1].t })
    if not rows then return nil, err end
    local session = rows[1]
    if not session then return af.fail(404, "PGRST116", "no open session " .. id .. " of this agent") end
    local ok
    ok, err = af.emit(tx, "session_stop", { project_id = session.project_id, session_id = session.id,
      mentions = { session.agent_id }, content = { duration_seconds = session.duration_seconds } })
    if not ok then return nil, err end
    return session
  end)
end

local function append(req)
  local aid = af.agent_id(req)
  if not aid then return problem(403, "42501", "only an agent's token appends events") end
  local body = req.json
  if type(body) ~= "table" or type(body.type) ~= "string" then
    return problem(400, "PGRST102", "the body must be an event object with a type")
  end
  body.author_id = aid
  return af.step(function(tx)
    local rows, err = data.insert("agentflow.events", body)
    if not rows then return nil, err end
    local event = rows[1]
    if event.type == "review_response" then
      local ok
      ok, err = af.recalculate(tx, aid, { kind = "review_response",
        approved = type(event.content) == "table" and event.content.approved ~= false },
        "review answered", event.project_id ~= NULL and event.project_id or nil)
      if not ok then return nil, err end
    end
    return event
  end, 201)
end

return {
  { method = "POST", path = "/v1/agentflow/sessions", handler = start },
  { method = "POST", path = "/v1/agentflow/sessions/:id/log", handler = log_entry },
  { method = "POST", path = "/v1/agentflow/sessions/:id/stop", handler = stop },
  { method = "POST", path = "/v1/agentflow/events", handler = append },
}
