-- AI execution routes (/v1/ai, issue 13): render a prompt, start a run,
-- execute a message (streamed or not), cancel a task.  The work is in
-- lua/strata/ai/; these handlers check the body, read what they need as
-- the caller (strata.data: the row policies decide which runs, chats and
-- prompts are theirs) and map errors to answers.
local cjson = require("cjson")
local data = require("strata.data")
local db = require("strata.db")
local input = require("strata.ai.input")
local render = require("strata.ai.render")
local execute = require("strata.ai.execute")
local json = require("strata.ai.json")

local NULL = cjson.null
local type, pairs, concat = type, pairs, table.concat

local SOURCE_TYPES = { prompt = true, chat = true, applet = true, cockpit = true, workflow = true, custom = true }
local DEFAULT_AGENT = "chat_model_agent"

-- An error value ({ status, code, message, details }) as the answer.
local function fail(err)
  return json.answer(err.status or 500, { code = err.code or "error", message = err.message or "failed",
    details = err.details or NULL, hint = err.hint or NULL })
end

local function body_of(req)
  if type(req.json) ~= "table" then
    return nil, { status = 400, code = "invalid_input", message = "a JSON object body is required" }
  end
  return req.json
end

local function signed_in(req)
  if req.auth.role ~= "authenticated" or not req.auth.uid then
    return nil, { status = 401, code = "unauthorized", message = "sign in to run AI work" }
  end
  return req.auth.uid
end

-- The rendered messages of a body ({prompt_id | messages, variables, context}).
local function rendered(req, body)
  local src, err = input.source(body)
  if not src then return nil, err end
  local ctx
  ctx, err = input.context(body.context)
  if not ctx then return nil, err end
  local vars
  vars, err = input.variables(body.variables)
  if not vars then return nil, err end
  local out
  out, err = render.render({ messages = src.messages, defaults = src.defaults, client = vars, context = ctx,
    uid = req.auth.uid })
  if not out then return nil, err end
  return out, src, ctx
end

local function post_render(req)
  local body, err = body_of(req)
  if not body then return fail(err) end
  local out
  out, err = rendered(req, body)
  if not out then return fail(err) end
  return json.answer(200, { messages = out.messages, provenance = out.provenance, missing = json.array(out.missing) })
end

-- The values a render used, split as ai_runs keeps them.
local function recorded(provenance)
  local vars, brokers = {}, {}
  for name, p in pairs(provenance) do
    if p.source == "broker" then brokers[name] = { value = p.value, scope = p.scope }
    else vars[name] = p.value end
  end
  return vars, brokers
end

local function post_run(req)
  local uid, err = signed_in(req)
  if not uid then return fail(err) end
  local body
  body, err = body_of(req)
  if not body then return fail(err) end
  local row = { user_id = uid, name = type(body.name) == "string" and body.name or nil,
    source_type = body.source_type or "prompt" }
  if not SOURCE_TYPES[row.source_type] then
    return fail({ status = 400, code = "invalid_input", message = "source_type: must be one of prompt, chat, applet, cockpit, workflow, custom" })
  end
  if body.chat_id ~= nil and body.chat_id ~= NULL then
    local chat
    chat, err = input.uuid(body.chat_id, "chat_id")
    if not chat then return fail(err) end
    local rows
    rows, err = data.select("Chat", { select = "id", id = "eq." .. chat })
    if not rows then return fail(err) end
    if not rows[1] then return fail({ status = 404, code = "not_found", message = "chat_id: no chat with this id" }) end
    row.source_type, row.source_id = "chat", chat
  elseif body.source_id ~= nil and body.source_id ~= NULL then
    row.source_id, err = input.uuid(body.source_id, "source_id")
    if not row.source_id then return fail(err) end
  end
  local ctx
  ctx, err = input.context(body.context)
  if not ctx then return fail(err) end
  local settings = { context = ctx }
  if body.prompt_id ~= nil or body.messages ~= nil then
    local out, src = rendered(req, body)
    if not out then return fail(src) end
    if #out.missing > 0 and not src.allow_missing then
      return fail({ status = 422, code = "missing_variables", message = "no value for: " .. concat(out.missing, ", "),
        details = { missing = out.missing } })
    end
    row.messages = out.messages
    row.variable_values, row.broker_values = recorded(out.provenance)
    settings.prompt_id, settings.allow_missing = src.prompt_id, src.allow_missing
    row.source_id = row.source_id or src.prompt_id
  end
  row.settings = settings
  local rows
  rows, err = data.insert("ai_runs", row, { single = true })
  if not rows then return fail(err) end
  return json.answer(201, rows)
end

-- The agent type a request names (its body's agent_type), for the agent
-- rate limits lua/ratelimits.lua applies before the handler; a bad one
-- counts as the default, and the handler refuses it.
local function agent_type_of(req)
  local a = type(req.json) == "table" and req.json.agent_type
  if type(a) == "string" and #a <= 50 and a:match("^[%a_]+$") then return a end
  return DEFAULT_AGENT
end

local function wants_stream(req, body)
  if body.stream == false then return false end
  local accept = req.headers["accept"] or ""
  return accept:find("text/event-stream", 1, true) ~= nil
end

local function invalid(message) return nil, { status = 400, code = "invalid_input", message = message } end

-- The checked parts of an execution request: { content, agent_type,
-- variables, key, run_id }, or nil, err.
local function message_input(req)
  local body, err = body_of(req)
  if not body then return nil, err end
  if type(body.content) ~= "string" or body.content == "" then return invalid("content: must be a non-empty string") end
  local m = { body = body, content = body.content, agent_type = body.agent_type or DEFAULT_AGENT }
  if type(m.agent_type) ~= "string" or #m.agent_type > 50 or not m.agent_type:match("^[%a_]+$") then
    return invalid("agent_type: must be a name such as chat_model_agent")
  end
  m.variables, err = input.variables(body.variables)
  if not m.variables then return nil, err end
  m.key = req.headers["idempotency-key"]
  if m.key and (#m.key == 0 or #m.key > 255) then return invalid("Idempotency-Key: 1 to 255 characters") end
  m.run_id, err = input.uuid(req.params.id, "id")
  if not m.run_id then return nil, err end
  return m
end

local FINAL = { completed = true, failed = true, cancelled = true }
local IN_PROGRESS = "the task of this Idempotency-Key is still running"

-- A JSON answer holding the task row as PostgreSQL wrote it (`fields`:
-- the other members, encoded here).
local function with_task(status, fields, task_json)
  local text = json.encode(fields)
  return status, text:sub(1, -2) .. (text == "{}" and "" or ",") .. '"task":' .. task_json .. "}",
    { ["Content-Type"] = "application/json" }
end

-- The answer to a retry with a known Idempotency-Key: the first task as it
-- is now; while that one still runs, 409 (or an error event) saying so.
local function replay(res, stream, out)
  local running = not FINAL[out.task.status]
  if stream then
    res.sse("task", { task_id = out.task.task_id })
    if running then res.sse("error", { code = "idempotency_in_progress", message = IN_PROGRESS })
    else res.sse("done", '{"task":' .. out.json .. "}") end
    return
  end
  if running then
    return with_task(409, { code = "idempotency_in_progress", message = IN_PROGRESS, details = NULL, hint = NULL }, out.json)
  end
  return with_task(200, { text = out.task.response_text }, out.json)
end

local function post_message(req, res)
  local uid, err = signed_in(req)
  if not uid then return fail(err) end
  local m
  m, err = message_input(req)
  if not m then return fail(err) end
  local runs
  runs, err = data.select("ai_runs", { select = "id,messages,settings,source_type,source_id", id = "eq." .. m.run_id })
  if not runs then return fail(err) end
  local run = runs[1]
  if not run then return fail({ status = 404, code = "not_found", message = "no run with this id" }) end
  local settings = type(run.settings) == "table" and run.settings or {}

  local stream = wants_stream(req, m.body)
  local emit = stream and function(event, payload) return res.sse(event, payload) end or nil
  local out
  out, err = execute.run({ uid = uid, run = run, agent_type = m.agent_type, content = m.content,
    variables = m.variables, context = type(settings.context) == "table" and settings.context or {},
    allow_missing = settings.allow_missing == true, idempotency_key = m.key, emit = emit,
    model_id = type(m.body.model_id) == "string" and m.body.model_id or nil })
  if not out then return fail(err) end -- refused before anything was sent
  if out.replayed then return replay(res, stream, out) end
  if stream then return end
  if out.error then
    return with_task(out.status == "cancelled" and 409 or 502, { code = out.error.code, message = out.error.message,
      details = NULL, hint = NULL }, out.json)
  end
  return with_task(201, { text = out.task.response_text }, out.json)
end

local CANCEL_SQL = [[update public.ai_tasks
  set response_metadata = coalesce(response_metadata, '{}'::jsonb) || '{"cancel_requested": true}'::jsonb
  where task_id = $1 and status in ('pending', 'streaming')
  returning task_id]]

local function post_cancel(req)
  local uid, err = signed_in(req)
  if not uid then return fail(err) end
  local id
  id, err = input.uuid(req.params.task_id, "task_id")
  if not id then return fail(err) end
  local rows
  rows, err = data.select("ai_tasks", { select = "task_id,status", task_id = "eq." .. id })
  if not rows then return fail(err) end
  local task = rows[1]
  if not task then return fail({ status = 404, code = "not_found", message = "no task with this id" }) end
  -- The task is the caller's (their policy let them read it); the flag is
  -- the server's to set, read by the request running the task.
  local marked
  marked, err = db.query_as_service(CANCEL_SQL, id)
  if not marked then return fail({ status = err.status or 500, code = err.code, message = err.message }) end
  if not marked[1] then
    return json.answer(409, { code = "task_finished", message = "the task is " .. task.status, details = NULL,
      hint = NULL, task_id = id, status = task.status })
  end
  execute.cancel(id) -- the provider call stops now if it runs in this process (else the flag is read)
  return json.answer(202, { task_id = id, status = "cancelling" })
end

return {
  { method = "POST", path = "/v1/ai/render", handler = post_render },
  { method = "POST", path = "/v1/ai/runs", handler = post_run },
  { method = "POST", path = "/v1/ai/runs/:id/messages", agent_type = DEFAULT_AGENT, agent_type_of = agent_type_of,
    handler = post_message },
  { method = "POST", path = "/v1/ai/tasks/:task_id/cancel", handler = post_cancel },
}
