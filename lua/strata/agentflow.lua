-- strata.agentflow: the pieces the AgentFlow workflow routes
-- (lua/routes/agentflow*.lua) share: one transaction per workflow step,
-- automatic events (author_id NULL) validated by
-- lua/validators/agentflow/events.lua and written in the step's
-- transaction, and the KPI / trust / status recalculation after a
-- significant action, decided by the hot-reloaded rule files lua/rules/
-- kpis.lua, trust.lua and status.lua.  The system's writes go through
-- the SQL functions of schema agentflow_system (sql/150), which no client
-- reaches; everything else goes through strata.data as the caller.
--
--   af.step(fn[, ok[, handle]]) -> status, body: runs fn(tx) in one transaction
--   af.query(tx, sql, ...)      -> rows | nil, err (with the status PostgREST would answer)
--   af.emit(tx, type, fields)   -> event row | nil, err
--   af.recalculate(tx, agent_id, action, reason, project_id) -> true | nil, err
--   af.after_move(tx, task[, reason])  -> true | nil, err: the events and recalculation of a task's new status
--   af.set_status(tx, handle, task, patch) -> rows | nil, err: the one write of a task's status (see below)
--   af.moving()                 -> true inside af.set_status's write (lua/validators/agentflow/tasks.lua)
--   af.blocked_too_long(tx)     -> { recalculated = n } | nil, err: the blocked-tasks job's work
--   af.fail(status, code, message[, details]) -> nil, err (for fn to return)
--   af.problem(status, code, message) -> status, body (for a route to answer)

local cjson = require("cjson")
local data = require("strata.data")
local db = require("strata.db")
local errors = require("strata.rest.errors")
local schema = require("strata.schema")

local NULL = cjson.null
local type, tostring, concat, pcall, pairs, ipairs = type, tostring, table.concat, pcall, pairs, ipairs
local running = coroutine.running

local M = {}

--- nil and an error value a step answers with (status and body).
function M.fail(status, code, message, details)
  return nil, { status = status, code = code, message = message, details = details or NULL, hint = NULL }
end

--- A route's error answer: status, { code, message, details, hint }.
function M.problem(status, code, message)
  return errors.new(status, code, message)
end

--- tx.query that answers nil, err in the shape of a step's errors (the
-- status PostgREST would give the SQLSTATE).
function M.query(tx, sql, ...)
  local rows, err = tx.query(sql, ...)
  if rows then return rows end
  local status, body = errors.from_db(err)
  body.status = status
  return nil, body
end

-- The rule file's machine as sql/156's sync_task_transitions takes it
-- ([[from, to], ...]), and the last one this Lua state wrote (a reload
-- builds a new state, so the first step after it writes the reloaded
-- file's machine).
local synced

local function machine()
  local rules = require("rules.transitions")
  local out = {}
  for _, from in ipairs({ "backlog", "assigned", "in_progress", "blocked", "completed", "cancelled" }) do
    for _, to in ipairs(rules.next(from)) do out[#out + 1] = { from, to } end
  end
  return cjson.encode(out)
end

--- Makes agentflow_system.task_transitions (the trigger of sql/156 reads
-- it) hold lua/rules/transitions.lua's machine, once per Lua state.
function M.sync_transitions()
  local want = machine()
  if synced == want then return true end
  local rows, err = db.query_as_service("select agentflow_system.sync_task_transitions($1::jsonb) as changed", want)
  if not rows then return nil, err end
  synced = want
  return true
end

--- Runs fn(tx) in one transaction and answers the route's status and
-- body: fn's value with status `ok` (default 200; cjson.null: 204), or its
-- error.  As the caller, or as `handle` (data.as_service()) for trusted
-- server work.
function M.step(fn, ok, handle)
  local done, serr = M.sync_transitions()
  if not done then
    local status, body = errors.from_db(serr)
    return status, body
  end
  local res, err = (handle or data).transaction(fn)
  if res == nil then
    err = err or {}
    return errors.new(err.status or 500, err.code, err.message, err.details, err.hint)
  end
  if res == NULL then return 204, nil end
  return ok or 200, res
end

local function uuid_array(list)
  if list == nil or #list == 0 then return "{}" end
  return "{" .. concat(list, ",") .. "}"
end

--- Writes an automatic event (author_id NULL) in tx after checking its
-- content with the events validator.  fields: project_id, session_id,
-- content, mentions (list of agent ids), metadata.
function M.emit(tx, etype, fields)
  local row = { type = etype, content = fields.content }
  local bad = schema.check_rows("agentflow.events", { row }, { action = "insert", schema = "agentflow",
    table = "events" })
  if bad then
    return M.fail(500, "23514", ("automatic event %s failed validation (%s)"):format(etype, bad.file), bad.errors)
  end
  local rows, err = M.query(tx, "select * from agentflow_system.emit_event($1, $2, $3, $4::jsonb, $5::uuid[], $6::jsonb)",
    etype, fields.project_id or NULL, fields.session_id or NULL, fields.content, uuid_array(fields.mentions),
    fields.metadata or {})
  if not rows then return nil, err end
  return rows[1]
end

local function round2(x) return math.floor(x * 100 + 0.5) / 100 end

-- A rule file's function, freshly required (a reload builds a new state).
local function rule(file, fn)
  local ok, mod = pcall(require, "rules." .. file)
  if not ok or type(mod) ~= "table" or type(mod[fn]) ~= "function" then
    error(("lua/rules/%s.lua has no function %s: %s"):format(file, fn, tostring(mod)), 0)
  end
  return mod[fn]
end

--- After a significant action of agent_id: a new KPI record (rules/kpis),
-- the trust score (rules/trust, bounded 0..100) and status (rules/status),
-- and their kpi_updated / trust_score_changed events, all in tx.
-- action: { kind = "task_completed" | ..., late, approved }.
function M.recalculate(tx, agent_id, action, reason, project_id)
  local rows, err = M.query(tx, "select agentflow_system.agent_facts($1) as f", agent_id)
  if not rows then return nil, err end
  local facts = rows[1].f
  if facts == NULL then return M.fail(404, "PGRST116", "agent " .. tostring(agent_id) .. " not found") end
  local metrics, trend = rule("kpis", "compute")(facts, action)
  rows, err = M.query(tx, "select id from agentflow_system.record_kpi($1, $2::jsonb, $3::jsonb)", agent_id, metrics, trend)
  if not rows then return nil, err end
  local previous = facts.latest_metrics
  local ok
  ok, err = M.emit(tx, "kpi_updated", { project_id = project_id, mentions = { agent_id },
    content = { agentId = agent_id, previousKPIs = previous, newKPIs = metrics, changeReason = reason } })
  if not ok then return nil, err end

  local old_score = tonumber(facts.trust_score)
  local score = tonumber(rule("trust", "score")(facts, metrics, action))
  if score == nil or score ~= score then error("lua/rules/trust.lua: score answered no number", 0) end
  score = round2(math.max(0, math.min(100, score)))
  local status = rule("status", "next")(facts.status, score)
  if score == old_score and status == facts.status then return true end
  rows, err = M.query(tx, "select id from agentflow_system.set_agent_standing($1, $2, $3)", agent_id, score, status)
  if not rows then return nil, err end
  ok, err = M.emit(tx, "trust_score_changed", { project_id = project_id, mentions = { agent_id },
    content = { agentId = agent_id, previousScore = old_score, newScore = score, reason = reason,
      previousStatus = facts.status, newStatus = status } })
  if not ok then return nil, err end
  return true
end

local function nullable(v) if v == nil then return NULL end return v end

--- The content of a task event (validators/agentflow/events.lua's shapes).
function M.task_content(task, extra)
  local c = { taskId = task.id, title = task.title, description = nullable(task.description),
    priority = task.priority, deadline = nullable(task.deadline) }
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

--- What a task's arrival in its new status causes, in tx (task: the row
-- as /rest/v1 answers it): the event lua/rules/transitions.lua names, and
-- after a significant arrival the assignee's recalculation.
function M.after_move(tx, task, reason)
  local rules = require("rules.transitions")
  local etype = rules.events[task.status]
  if etype then
    local ok, err = M.emit(tx, etype, { project_id = task.project_id,
      mentions = task.assigned_agent_id ~= NULL and { task.assigned_agent_id } or nil,
      content = M.task_content(task, etype == "task_blocked" and { reason = reason } or nil) })
    if not ok then return nil, err end
  end
  local why = rules.significant[task.status]
  if why and task.assigned_agent_id ~= NULL then
    local late = task.status == "completed" and task.deadline ~= NULL and task.completed_at > task.deadline
    return M.recalculate(tx, task.assigned_agent_id, { kind = "task_" .. task.status, late = late },
      reason or why, task.project_id)
  end
  return true
end

-- The coroutines inside set_status's write: the tasks validator lets
-- their status through (any other /rest/v1 or strata.data write of it is
-- refused with the route to use).
local moving = setmetatable({}, { __mode = "k" })

function M.moving() return moving[running()] == true end

--- The one way the workflows change a task's status: patch (with status)
-- written through `handle` (strata.data or data.as_service()) only if the
-- task still has the status read (task.status), in tx, with
-- strata.task_move on (sql/156's trigger refuses API roles a status change
-- without it).  rows (empty when the task changed meanwhile or the policy
-- hides it) | nil, err.  The caller then runs after_move.
function M.set_status(tx, handle, task, patch)
  local rows, err = M.query(tx, "select set_config('strata.task_move', 'on', true)")
  if not rows then return nil, err end
  local co = running()
  moving[co] = true
  local ok
  ok, rows, err = pcall(handle.update, "agentflow.tasks", { id = "eq." .. task.id, status = "eq." .. task.status },
    patch)
  moving[co] = nil
  if not ok then error(rows, 0) end
  return rows, err
end

--- The blocked-tasks job (lua/jobs.lua; tx as the service): each task
-- blocked, unchanged, for longer than lua/rules/transitions.lua's
-- blocked_too_long_seconds and not counted yet recalculates its assignee
-- once, reason "task blocked too long"; the task's metadata records it
-- (blocked_too_long_at).
function M.blocked_too_long(tx)
  local limit = require("rules.transitions").blocked_too_long_seconds
  local rows, e = M.query(tx, [[select id, assigned_agent_id, project_id from agentflow.tasks
    where status = 'blocked' and deleted_at is null and assigned_agent_id is not null
      and updated_at < localtimestamp - make_interval(secs => $1) and not metadata ? 'blocked_too_long_at'
    for update skip locked]], limit)
  if not rows then return nil, e end
  for _, t in ipairs(rows) do
    local ok
    ok, e = M.recalculate(tx, t.assigned_agent_id, { kind = "task_blocked_too_long" }, "task blocked too long",
      t.project_id)
    if not ok then return nil, e end
    ok, e = M.query(tx, [[update agentflow.tasks set metadata = metadata
      || jsonb_build_object('blocked_too_long_at', localtimestamp) where id = $1]], t.id)
    if not ok then return nil, e end
  end
  return { recalculated = #rows }
end

--- The calling agent's id (the token's agent_id claim), or nil.
function M.agent_id(req)
  local claims = req.auth and req.auth.claims
  local id = req.auth and req.auth.role == "authenticated" and type(claims) == "table" and claims.agent_id
  if type(id) == "string" and id ~= "" then return id end
  return nil
end

return M
