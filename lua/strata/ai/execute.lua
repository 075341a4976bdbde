-- strata.ai.execute: one message of a run, end to end.  Picks the provider
-- and model (strata.ai.select, fail closed), renders the message, starts
-- the ai_tasks row (sql/140 ai_task_begin: an Idempotency-Key seen before
-- answers that task, and nothing is called or charged again), calls the
-- provider through strata.http.request and hands each event to `emit` as
-- it arrives, falls back to the next enabled provider when the call fails
-- before its first token (connect error, timeout, 5xx, 429), and records
-- everything in one transaction (ai_task_complete: task, cost, run
-- messages and aggregates, Chat, usage_logs).
--
-- emit(event, data) -> true | nil when the client is gone: "task"
-- {task_id}, "delta" {text}, "tool_call" {id, name, arguments},
-- "tool_result" {id, name, result}, "usage" {tokens_input, tokens_output},
-- "done" {task}, "error" {code, message}.  Without emit (a JSON answer) the text
-- is collected.  A client gone (emit fails, or the core cancels the
-- transfer because the connection closed) stops the upstream call and
-- the task ends "cancelled" with what was received, streamed or not; so
-- does a cancel asked through POST /v1/ai/tasks/{task_id}/cancel (M.cancel:
-- the upstream call is stopped at once on this worker, within about a
-- second on the process's other workers, and a strata process elsewhere
-- finds the flag the route set as chunks arrive, at most once a second).
--
--   execute.run(o) -> { task, json (the task row's JSON text), replayed, error, status }
--                     | nil, err (refused before any task: 4xx)

local cjson = require("cjson")
local http = require("strata.http")
local config = require("strata.config")
local db = require("strata.db")
local pg = require("strata.pg")
local request = require("strata.request")
local stream = require("strata.stream")
local aimetrics = require("strata.aimetrics")
local log = require("strata.log")
local select_provider = require("strata.ai.select")
local render = require("strata.ai.render")

local type, ipairs, pairs, pcall, tostring, error = type, ipairs, pairs, pcall, tostring, error
local floor, concat = math.floor, table.concat
local encode = cjson.encode

local M = {}

local TIMEOUT_MS, CONNECT_TIMEOUT_MS = 120000, 10000
local CANCEL_POLL_MS = 1000 -- how often a stream asks the database whether another process cancelled it
local MAX_ROUNDS = 4 -- provider calls of one task when the model calls tools
local ROLES = { system = true, user = true, assistant = true }
-- Transport failures that let the next provider answer (before the first token).
local RETRYABLE = { connect = true, dns = true, timeout = true, tls = true, http = true }

local function now() return request.elapsed_ms() or 0 end

-- The cancel key of a task's provider calls (strata.http's cancel_key).
local function cancel_key(task_id) return "ai_task:" .. task_id end

--- Stops the provider call of a running task wherever it runs in this
-- process (its caller has checked the task is theirs and set the flag that
-- other processes read).
function M.cancel(task_id)
  http.cancel(cancel_key(task_id))
end

local function ms(x) return x and floor(x + 0.5) or nil end

-- The conversation sent: the agent's system prompt, the run's messages, the new one.
local function conversation(cfg, run, content)
  local msgs = {}
  if type(cfg) == "table" and type(cfg.systemPrompt) == "string" and cfg.systemPrompt ~= "" then
    msgs[1] = { role = "system", content = cfg.systemPrompt }
  end
  for _, m in ipairs(type(run.messages) == "table" and run.messages or {}) do
    if type(m) == "table" and ROLES[m.role] and type(m.content) == "string" then
      msgs[#msgs + 1] = { role = m.role, content = m.content }
    end
  end
  msgs[#msgs + 1] = { role = "user", content = content }
  return msgs
end

local CANCEL_SQL = "select coalesce((response_metadata ->> 'cancel_requested')::boolean, false) as c from public.ai_tasks where task_id = $1"

-- Whether a cancel was asked for the task through another strata process
-- (this process's cancel route stops the call itself: M.cancel); one
-- query a second at most.
local function cancel_asked(task_id, st)
  -- Each stream on its own clock: a thousand streams started together do
  -- not all ask at the same second's turn.
  local t = now()
  if t - (st.checked or 0) < CANCEL_POLL_MS then return false end
  st.checked = t
  local rows = pg.query(CANCEL_SQL, task_id)
  return rows and rows[1] and rows[1].c == true
end

-- The tools offered to the model: those the agent configuration lists (and
-- does not disable) that have a file lua/tools/<agent_type>/<tool>.lua.
-- A tool file returns { description, parameters (JSON schema), run(args,
-- ctx) -> result | nil, err }.
local function tools_for(agent_type, cfg)
  local list, by_name, names = {}, {}, {}
  if type(cfg) ~= "table" or type(cfg.tools) ~= "table" then return list, by_name end
  for name, t in pairs(cfg.tools) do
    if type(name) == "string" and name:match("^[%w_]+$") and not (type(t) == "table" and t.enabled == false) then
      names[#names + 1] = name
    end
  end
  table.sort(names)
  for _, name in ipairs(names) do
    local ok, mod = pcall(require, "tools." .. agent_type .. "." .. name)
    if ok and type(mod) == "table" and type(mod.run) == "function" then
      by_name[name] = mod
      local t = cfg.tools[name]
      list[#list + 1] = { name = name, parameters = mod.parameters,
        description = type(t) == "table" and type(t.description) == "string" and t.description or mod.description }
    end
  end
  return list, by_name
end

-- Runs one tool call as the caller (strata.data inside acts as the
-- request's caller, under the row policies); the result sent back to the
-- model, an error included.
local function run_tool(mod, call, ctx)
  if not mod then return { error = "no tool named " .. tostring(call.name) } end
  local ok, result, err = pcall(mod.run, type(call.arguments) == "table" and call.arguments or {}, ctx)
  if not ok then return { error = "the tool failed: " .. tostring(result) } end
  if result == nil then
    return { error = type(err) == "table" and (err.message or err.code) or tostring(err) }
  end
  return result
end

-- Sends an event while the client is there; st.gone once it is not.
local function send(emit, st, event, payload)
  if emit and not st.gone and not emit(event, payload) then st.gone = true end
end

-- One call to one provider.  st: { gone, cancelled } shared by the attempts.
local function attempt(cand, msgs, st, emit, task_id, tools)
  local name = cand.provider
  local adapter = require("providers." .. name)
  local cfg = type(cand.config) == "table" and cand.config or {}
  local call = adapter.request({ base_url = config.provider_base_url(name), api_key = config.api_key(name),
    model = cand.model.model_id, messages = msgs, max_tokens = math.tointeger(cfg.maxOutputTokens), tools = tools })
  local parser, t0 = adapter.stream(), now()
  local a = { provider = name, model = cand.model.model_id, model_id = cand.model.id, text = {}, calls = {} }
  st.current = a -- what arrived, should the handler be stopped in the call

  local function handle(ev)
    if ev.type == "delta" then
      if not a.first then
        a.first = now()
        if not st.first then st.first = true; aimetrics.first_token(floor(a.first)) end
      end
      a.text[#a.text + 1] = ev.text
      -- The event's JSON built here: one delta per upstream chunk, for every open stream.
      if emit then send(emit, st, "delta", '{"text":' .. encode(ev.text) .. "}") end
    elseif ev.type == "usage" then
      a.tin, a.tout = ev.input or a.tin, ev.output or a.tout
    elseif ev.type == "tool_call" then
      a.calls[#a.calls + 1] = ev
    elseif ev.type == "error" then
      a.error = a.error or { code = ev.code, message = ev.message, retryable = ev.code == "upstream_unavailable" }
    end
  end

  local key = cancel_key(task_id)
  local status, headers, body = http.request({ method = call.method, url = call.url, headers = call.headers,
    body = call.body, cancel_key = key, timeout_ms = math.tointeger(cfg.timeoutMs) or TIMEOUT_MS, connect_timeout_ms = CONNECT_TIMEOUT_MS,
    on_chunk = function(chunk)
      parser:each(chunk, handle)
      if st.gone or a.error then return false end
      if cancel_asked(task_id, st) then st.cancelled = true; return false end
    end })
  a.duration = now() - t0
  if status == nil then
    local err = headers
    if not a.error and not st.gone and not st.cancelled then
      if err.code == "cancelled" and http.cancelled(key) then
        st.cancelled = true -- M.cancel
      elseif err.code == "cancelled" then
        st.gone = true -- the core stopped the transfer: the client left, or a reload
      else
        a.error = { code = "upstream_" .. err.code, message = ("%s: %s"):format(name, err.message),
          retryable = RETRYABLE[err.code] or false }
      end
    end
  elseif status < 200 or status > 299 then
    a.error = adapter.error(status, body)
  else
    for _, ev in ipairs(parser:close()) do handle(ev) end
  end
  if a.error and a.first then a.error.retryable = false end -- text was sent: no second answer
  return a
end

-- The conversation with one provider: a call, and while the model calls
-- tools (and rounds are left), the tools' results sent back in another.
-- Answers the last call and the rounds before it.
local function converse(cand, o, content, st, task_id, ctx)
  local list, tools = tools_for(o.agent_type, cand.config)
  local msgs = conversation(cand.config, o.run, content)
  local rounds, a = {}, nil
  for round = 1, MAX_ROUNDS do
    a = attempt(cand, msgs, st, o.emit, task_id, list)
    if a.error or st.gone or st.cancelled or #a.calls == 0 or round == MAX_ROUNDS then break end
    rounds[#rounds + 1] = a
    msgs[#msgs + 1] = { role = "assistant", content = concat(a.text), tool_calls = a.calls }
    for _, c in ipairs(a.calls) do
      send(o.emit, st, "tool_call", { id = c.id, name = c.name, arguments = c.arguments })
      local result = run_tool(tools[c.name], c, ctx)
      ctx.updates[#ctx.updates + 1] = { id = c.id, name = c.name, arguments = c.arguments, result = result }
      send(o.emit, st, "tool_result", { id = c.id, name = c.name, result = result })
      msgs[#msgs + 1] = { role = "tool", tool_call_id = c.id, name = c.name, content = cjson.encode(result) }
    end
  end
  return a, rounds
end

-- The task row as PostgreSQL writes it (json: the text, exact numerics and
-- empty lists kept) and decoded (task: for Lua).
local BEGIN_SQL = "select task::text as json, replayed from public.ai_task_begin($1, $2, $3, $4::jsonb)"
-- Streaming also records which process runs the task (sql/141), so that
-- the next start of this instance fails it if this process dies first.
local STREAMING_SQL = "with s as (update public.ai_tasks set status = 'streaming' where task_id = $1 and status = 'pending') "
  .. "insert into public.strata_ai_task_runs (task_id, instance, boot_id) values ($1, $2, $3)"
local COMPLETE_SQL = "with r as (delete from public.strata_ai_task_runs where task_id = $1) "
  .. "select public.ai_task_complete($1, $2::jsonb)::text as json"

-- The message to send (rendered) and the providers to try, or nil, err.
local function prepare(o)
  local cands, err = select_provider.candidates(o.agent_type, o.model_id)
  if not cands then return nil, err end
  local out
  out, err = render.render({ messages = { { role = "user", content = o.content } }, client = o.variables,
    context = o.context, uid = o.uid })
  if not out then return nil, err end
  if #out.missing > 0 and not o.allow_missing then
    return nil, { status = 422, code = "missing_variables", message = "no value for: " .. concat(out.missing, ", "),
      details = { missing = out.missing } }
  end
  return out.messages[1].content, cands
end

-- What ai_task_complete records: the last call `a`, the tool rounds before
-- it and the failed attempts (each a usage_logs row); tokens and text are
-- the totals of all calls.
local function outcome(o, st, a, rounds, attempts, start, ctx, content)
  local status = (st.gone or st.cancelled) and "cancelled" or (a and not a.error and not st.failed) and "completed"
    or "failed"
  local result = { status = status, agent_type = o.agent_type, user_message = { role = "user", content = content },
    total_time = ms(now() - start), tool_updates = #ctx.updates > 0 and ctx.updates or nil }
  local texts, tin, tout, first = {}, nil, nil, nil
  local calls = {}
  for _, r in ipairs(rounds) do
    calls[#calls + 1] = r
    attempts[#attempts + 1] = { provider = r.provider, model = r.model, status = "tool_round",
      duration_ms = ms(r.duration), tokens_input = r.tin, tokens_output = r.tout }
  end
  calls[#calls + 1] = a
  for _, c in ipairs(calls) do
    texts[#texts + 1] = concat(c.text)
    if c.tin then tin = (tin or 0) + c.tin end
    if c.tout then tout = (tout or 0) + c.tout end
    first = first or c.first
  end
  result.attempts = #attempts > 0 and attempts or nil
  if a then
    result.provider, result.model, result.model_id = a.provider, a.model, a.model_id
    result.tokens_input, result.tokens_output, result.response_text = tin, tout, concat(texts)
    result.time_to_first_token = first and ms(first - start)
    result.duration_ms = ms(a.duration)
    if a.error then result.response_errors = { code = a.error.code, message = a.error.message } end
  end
  if st.failed then
    result.response_errors = { code = "internal", message = st.failed }
  elseif st.gone and not a then
    result.response_errors = { code = "client_gone", message = "the client went away" }
  end
  return result
end

-- The last events of a stream: usage, then done or error.
local function report(emit, st, task, task_json, result)
  if not emit or st.gone then return end
  if task.tokens_input ~= cjson.null or task.tokens_output ~= cjson.null then
    emit("usage", { tokens_input = task.tokens_input, tokens_output = task.tokens_output })
  end
  if result.status == "completed" then
    emit("done", '{"task":' .. task_json .. "}")
  elseif result.status == "cancelled" then
    emit("error", { code = "cancelled", message = "the task was cancelled" })
  else
    emit("error", { code = result.response_errors.code, message = result.response_errors.message })
  end
end

-- agent_activity_logs (seed 003; logging_settings and lua/logging.lua
-- decide): the execution, then each tool call, under the request's
-- correlation id, so that the user's message and the agent work it caused
-- are found together.  Off the request's path (strata.log queues them).
local OPERATION = { document_agent = "document_generation", mermaid_agent = "diagram_generation",
  python_agent = "code_generation" }
local function num(v) return v ~= cjson.null and v or nil end
local function log_activity(o, task, result, ctx)
  local err = result.response_errors
  log.agent_activity({ agent_type = o.agent_type,
    operation_type = OPERATION[o.agent_type] or (o.emit and "streaming" or "initialization"),
    operation_category = "ai_execution", resource_type = "ai_tasks", resource_id = task.task_id,
    model_id = result.model, provider = result.provider, input_tokens = num(task.tokens_input),
    output_tokens = num(task.tokens_output), total_cost = num(task.cost), duration_ms = result.total_time,
    retry_count = #(result.attempts or {}), success = result.status == "completed",
    error_type = err and err.code, error_message = err and err.message,
    metadata = { run_id = ctx.run_id, status = result.status } })
  for _, u in ipairs(ctx.updates) do
    local failed = type(u.result) == "table" and u.result.error
    log.agent_activity({ agent_type = o.agent_type, operation_type = "tool_invocation", operation_category = u.name,
      resource_type = "ai_tasks", resource_id = task.task_id, success = not failed,
      error_message = failed and tostring(failed) or nil, metadata = { tool = u.name, call_id = u.id } })
  end
end

-- The providers in turn until one answers (or fails after its first
-- token, or the client or a cancel stops it): the last call and its tool
-- rounds; each failed attempt is added to `attempts`.
local function call_providers(cands, o, content, st, task_id, ctx, attempts)
  local a, rounds
  for i, cand in ipairs(cands) do
    if st.gone then break end
    a, rounds = converse(cand, o, content, st, task_id, ctx)
    if not (a.error and a.error.retryable and #rounds == 0 and i < #cands) or st.gone or st.cancelled then break end
    attempts[#attempts + 1] = { provider = a.provider, model = a.model, status = "failed", duration_ms = ms(a.duration),
      error = { code = a.error.code, message = a.error.message } }
  end
  return a, rounds or {}
end

-- /metrics' open streams: one more until the value returned is closed
-- (however M.run is left).
local STREAM_GUARD = setmetatable({}, { __close = function() aimetrics.stream(-1) end })
local function open_stream()
  aimetrics.stream(1)
  return STREAM_GUARD
end

--- o: uid, run (its row), agent_type, content, variables, context,
-- model_id, idempotency_key, allow_missing, emit (nil: no stream).
function M.run(o)
  local content, cands = prepare(o)
  if not content then return nil, cands end
  local lead = cands[1]
  local rows, err = db.query_as_service(BEGIN_SQL, o.uid, o.run.id, o.idempotency_key, {
    provider = lead.provider, model = lead.model.model_id, model_id = lead.model.id, service = o.agent_type,
    task_name = "message", request_data = { agent_type = o.agent_type, content = o.content, stream = o.emit ~= nil } })
  if not rows then return nil, { status = err.status or 500, code = err.code, message = err.message } end
  local task_json = rows[1].json
  local task = cjson.decode(task_json)
  if rows[1].replayed then return { task = task, json = task_json, replayed = true } end
  local task_id = task.task_id
  local streaming <close> = o.emit and open_stream() or nil
  -- Only a label until the completion: a task that stays "pending" is still completed.
  if not db.query_as_service(STREAMING_SQL, task_id, config.instance, config.boot_id) then
    log.warn("ai task not marked streaming", { task_id = task_id })
  end

  local start, attempts = now(), {}
  local st = { checked = start }
  send(o.emit, st, "task", { task_id = task_id })
  local ctx = { uid = o.uid, run_id = o.run.id, task_id = task_id, agent_type = o.agent_type, updates = {},
    chat_id = o.run.source_type == "chat" and o.run.source_id ~= cjson.null and o.run.source_id or nil }
  -- Protected: a handler answering in JSON is stopped at its next step
  -- when its client leaves (lua_host.c), by an error raised in here.  The
  -- task is then recorded as cancelled all the same: the statement below
  -- runs in PostgreSQL before the handler is stopped again on its way back.
  local ok, a, rounds = pcall(call_providers, cands, o, content, st, task_id, ctx, attempts)
  local raised
  if not ok then
    raised = a
    if stream.gone() then st.gone = true else st.failed = tostring(raised) end
    a, rounds = st.current, {}
  end
  local result = outcome(o, st, a, rounds, attempts, start, ctx, content)
  -- Counted before the statement: a JSON handler whose client left is stopped right after it.
  aimetrics.execution(result.provider or lead.provider, result.status, result.tokens_input, result.tokens_output)
  rows, err = db.query_as_service(COMPLETE_SQL, task_id, result)
  if not rows then
    -- The answer was sent but could not be recorded: say so, the task stays unfinished.
    log.error("ai task not recorded", { task_id = task_id, code = err.code, message = err.message })
    send(o.emit, st, "error", { code = "not_recorded", message = "the answer could not be recorded" })
    if o.emit then return { task = task, json = task_json, status = "failed", error = { code = "not_recorded" } } end
    return nil, { status = err.status or 500, code = err.code, message = err.message }
  end
  if raised and not st.gone then error(raised, 0) end -- recorded as failed; the error is the handler's
  task_json = rows[1].json
  task = cjson.decode(task_json)
  log_activity(o, task, result, ctx)
  report(o.emit, st, task, task_json, result)
  return { task = task, json = task_json, error = result.response_errors, status = result.status }
end

return M
