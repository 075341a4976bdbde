-- /v1/ai/runs and /v1/ai/runs/{id}/messages against bin/strata and the
-- fake providers (spec/fakes/providers.py, each provider's wire format):
-- streamed and JSON answers, the task, cost and usage recorded, a Chat's
-- messages and totals, Idempotency-Key, the agent configuration (disabled,
-- missing: 403 naming the key; perMinute: 429), fallback to the next
-- provider, upstream errors (429, truncated, hung), cancel by a client that
-- leaves (the upstream connection is closed) and by the cancel route.
-- Scenarios that need their own admin_config use their own agent types
-- (python_agent: disabled; mermaid_agent: a low perMinute;
-- provider_tools_agent: three providers to fall back on; git_mcp_agent: a
-- short timeoutMs), set before the server starts and restored after; a
-- made-up agent type has no configuration (the runtime serves only rows
-- lua/validators/admin_config.lua accepts).
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")
local fakes = require("fakes.providers")

local SECRET = "ai-execute-spec-secret"
local L = h.lit

-- The SSE events of a streamed answer's text: a list of { event, data }.
local function events(text)
  local out = {}
  for block in text:gmatch("(.-)\n\n") do
    local ev = block:match("^event: ([^\n]+)")
    local d = block:match("data: ([^\n]*)")
    if ev and d then out[#out + 1] = { event = ev, data = cjson.decode(d) } end
  end
  return out
end

local function names(evs)
  local out = {}
  for i, e in ipairs(evs) do out[i] = e.event end
  return out
end

describe("AI execution #server", function()
  local s, fake
  local TOUCHED = { "python_agent_google", "mermaid_agent_google", "provider_tools_agent_google",
    "provider_tools_agent_openai", "provider_tools_agent_anthropic", "git_mcp_agent_google" }
  local saved = {}

  local function agent(key, cfg)
    return ("insert into admin_config(config_key, config_data) values (%s, %s) on conflict (config_key) do update set config_data = excluded.config_data")
      :format(L(key), L(cjson.encode(cfg)))
  end

  local function user()
    local id = h.user()
    return id, srv.token(SECRET, "--sub " .. id .. " --role authenticated")
  end

  local function call(tok, method, path, body, extra)
    local hs = { ["Content-Type"] = "application/json", Authorization = "Bearer " .. tok }
    for k, v in pairs(extra or {}) do hs[k] = v end
    return srv.rest(s.port, method, path, body, hs)
  end

  local function new_run(tok, body)
    local code, run = call(tok, "POST", "/v1/ai/runs", body or { name = "spec" })
    assert.equal(201, code, cjson.encode(run))
    return run
  end

  local function stream(tok, run, body, extra)
    local hs = { Accept = "text/event-stream" }
    for k, v in pairs(extra or {}) do hs[k] = v end
    local code, _, headers, raw = call(tok, "POST", "/v1/ai/runs/" .. run.id .. "/messages", body, hs)
    return code, events(raw), headers, raw
  end

  local function task(task_id)
    return h.query(("select status, provider, model, tokens_input, tokens_output, cost::text, response_text, response_errors::text as errors, response_metadata::text as meta, time_to_first_token, total_time from ai_tasks where task_id = %s"):format(L(task_id)))[1]
  end

  -- A streamed execution on a connection of its own, read up to its first
  -- delta: the connection and the task id.
  local function open_until_delta(port, tok, run, content)
    local c = srv.connect(port)
    local body = cjson.encode({ content = content })
    assert(c:send(("POST /v1/ai/runs/%s/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nAccept: text/event-stream\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s")
      :format(run.id, tok, #body, body)))
    local seen, task_id = "", nil
    while not seen:find("event: delta", 1, true) do
      local line = assert(c:receive("*l"))
      seen = seen .. line .. "\n"
      task_id = task_id or line:match('"task_id":"([%x%-]+)"')
    end
    return c, task_id
  end

  local function await_status(task_id, want)
    local t
    for _ = 1, 100 do
      t = task(task_id)
      if t and t.status == want then return t end
      srv.sleep(0.05)
    end
    return t
  end

  setup(function()
    fake = fakes.start()
    for _, key in ipairs(TOUCHED) do
      saved[key] = h.scalar(("select config_data::text from admin_config where config_key = %s"):format(L(key)))
    end
    local base = { systemPrompt = "You are a spec.", rateLimit = { perMinute = 100, perHour = 1000, perDay = 10000 },
      tools = { spec = { enabled = true } } }
    local function with(t) local c = {}; for k, v in pairs(base) do c[k] = v end; for k, v in pairs(t) do c[k] = v end; return c end
    h.accepts(table.concat({
      agent("python_agent_google", with({ enabled = false })),
      agent("provider_tools_agent_google", with({ enabled = true })),
      agent("provider_tools_agent_openai", with({ enabled = true, systemPrompt = "openai spec" })),
      agent("provider_tools_agent_anthropic", with({ enabled = true, systemPrompt = "anthropic spec" })),
      agent("mermaid_agent_google", with({ enabled = true, rateLimit = { perMinute = 2, perHour = 10, perDay = 10 } })),
      agent("git_mcp_agent_google", with({ enabled = true, timeoutMs = 1000 })),
    }, ";\n"))
    s = srv.start({ STRATA_JWT_SECRET = SECRET, STRATA_GOOGLE_BASE_URL = fake.url, STRATA_OPENAI_BASE_URL = fake.url,
      STRATA_ANTHROPIC_BASE_URL = fake.url, STRATA_GOOGLE_API_KEY = "google-secret-key-1",
      STRATA_OPENAI_API_KEY = "openai-secret-key-2", STRATA_ANTHROPIC_API_KEY = "anthropic-secret-key-3" })
    assert.equal(200, (srv.await(s.port, "/ready", 200, 20)), s.log())
  end)

  teardown(function()
    if s then s.stop(); s.cleanup() end
    if fake then fake.stop() end
    for key, data in pairs(saved) do
      h.accepts(("update admin_config set config_data = %s::jsonb where config_key = %s"):format(L(data), L(key)))
    end
  end)

  before_each(function() fake.fail({}) end)

  it("creates a run from a prompt, recording the values it used", function()
    local uid, tok = user()
    local code, run = call(tok, "POST", "/v1/ai/runs", { name = "r", messages = { { role = "system", content = "Hi {{who}}, {{x}}" } },
      variables = { who = "Ann" }, variable_defaults = { { name = "x", defaultValue = "dflt" } } })
    assert.equal(201, code, cjson.encode(run))
    assert.equal(uid, run.user_id)
    assert.same({ { role = "system", content = "Hi Ann, dflt" } }, run.messages)
    assert.same({ who = "Ann", x = "dflt" }, run.variable_values)
    code, run = call(tok, "POST", "/v1/ai/runs", { messages = { { role = "user", content = "{{nope}}" } } })
    assert.equal(422, code)
    assert.same({ missing = { "nope" } }, run.details)
  end)

  it("streams task, deltas, usage and done, and records the task, its cost and the usage", function()
    local uid, tok = user()
    local run = new_run(tok)
    local code, evs, headers, raw = stream(tok, run, { content = "Say hello" })
    assert.equal(200, code)
    -- The done event carries the row as PostgreSQL wrote it: exact cost, empty lists.
    assert.matches('"cost": 0.000194', raw, 1, true)
    assert.matches('"attempts": []', raw, 1, true)
    assert.matches("text/event%-stream", headers["content-type"])
    assert.same({ "task", "delta", "delta", "delta", "delta", "usage", "done" }, names(evs))
    local text = ""
    for _, e in ipairs(evs) do if e.event == "delta" then text = text .. e.data.text end end
    assert.equal("Hello from google!", text)
    assert.same({ tokens_input = 1200, tokens_output = 345 }, evs[6].data)
    local t = task(evs[1].data.task_id)
    -- gemini-2.0-flash: 1200 x 0.075 / 10^6 + 345 x 0.3 / 10^6 = 0.0001935 -> 0.000194
    assert.same({ "completed", "google", "gemini-2.0-flash", "1200", "345", "0.000194", "Hello from google!" },
      { t.status, t.provider, t.model, t.tokens_input, t.tokens_output, t.cost, t.response_text })
    assert.truthy(tonumber(t.time_to_first_token) and tonumber(t.total_time))
    assert.equal("completed", evs[7].data.task.status)
    local r = h.query("select message_count, task_count, total_tokens, total_cost::text from ai_runs where id = " .. L(run.id))[1]
    assert.same({ "2", "1", "1545", "0.000194" }, { r.message_count, r.task_count, r.total_tokens, r.total_cost })
    local u = h.query("select provider, model_used, agent_type, total_cost::text, input_tokens from usage_logs where user_id = " .. L(uid))
    assert.same({ { provider = "google", model_used = "gemini-2.0-flash", agent_type = "chat_model_agent",
      total_cost = "0.000194", input_tokens = "1200" } }, u)
    -- What the provider was sent: the key in its header, the system prompt, the message.
    local reqs = fake.requests()
    local last = reqs[#reqs]
    assert.equal("google-secret-key-1", last.headers["x-goog-api-key"])
    assert.matches("/v1beta/models/gemini%-2%.0%-flash:streamGenerateContent%?alt=sse$", last.path)
    assert.equal("Say hello", last.body.contents[#last.body.contents].parts[1].text)
    assert.truthy(last.body.systemInstruction)
    -- The key is in no answer and no log line.
    assert.is_nil(s.log():find("google-secret-key-1", 1, true))
  end)

  it("writes the execution to agent_activity_logs when logging_settings turn it on", function()
    local saved_logging = h.scalar("select config_data::text from admin_config where config_key = 'logging_settings'")
    h.accepts([[update admin_config set config_data = config_data || '{"agent_activity_logging_enabled": true}'::jsonb
      || jsonb_build_object('category_toggles', config_data->'category_toggles' || '{"log_ai_operations": true}'::jsonb)
      || jsonb_build_object('performance_settings', config_data->'performance_settings'
           || '{"batch_interval_ms": 100, "sampling_enabled": false}'::jsonb)
      where config_key = 'logging_settings']])
    local uid, tok = user()
    local run = new_run(tok)
    -- The settings reach the log writer by NOTIFY: execute until one is logged.
    local row
    for _ = 1, 20 do
      local _, evs = stream(tok, run, { content = "Say hello" })
      local task_id = evs[1].data.task_id
      for _ = 1, 20 do
        row = h.query(("select user_id::text, operation_type, provider, model_id, input_tokens, output_tokens, total_cost::text,"
          .. " success from agent_activity_logs where resource_id = %s"):format(L(task_id)))[1]
        if row then break end
        srv.sleep(0.05)
      end
      if row then break end
    end
    h.accepts("update admin_config set config_data = " .. L(saved_logging) .. "::jsonb where config_key = 'logging_settings'")
    assert.same({ uid, "streaming", "google", "gemini-2.0-flash", "1200", "345", "0.000194", "t" },
      { row.user_id, row.operation_type, row.provider, row.model_id, row.input_tokens, row.output_tokens, row.total_cost,
        row.success })
  end)

  it("answers one JSON document without streaming, and sends the history next time", function()
    local _, tok = user()
    local run = new_run(tok)
    local code, body = call(tok, "POST", "/v1/ai/runs/" .. run.id .. "/messages", { content = "first" })
    assert.equal(201, code, cjson.encode(body))
    assert.equal("Hello from google!", body.text)
    assert.equal("completed", body.task.status)
    call(tok, "POST", "/v1/ai/runs/" .. run.id .. "/messages", { content = "second", stream = false })
    local reqs = fake.requests()
    local contents = reqs[#reqs].body.contents
    assert.same({ "first", "Hello from google!", "second" },
      { contents[1].parts[1].text, contents[2].parts[1].text, contents[3].parts[1].text })
    assert.same({ "user", "model", "user" }, { contents[1].role, contents[2].role, contents[3].role })
  end)

  it("writes Message_v2 rows and the Chat's totals for a run bound to a chat", function()
    local uid, tok = user()
    local chat = h.uuid()
    h.accepts(("insert into \"Chat\"(id, title, user_id) values (%s, 'c', %s)"):format(L(chat), L(uid)))
    local run = new_run(tok, { chat_id = chat })
    assert.same({ "chat", chat }, { run.source_type, run.source_id })
    stream(tok, run, { content = "one" })
    stream(tok, run, { content = "two" })
    local c = h.query(("select total_input_tokens, total_output_tokens, total_cost::text from \"Chat\" where id = %s"):format(L(chat)))[1]
    assert.same({ "2400", "690", "0.000388" }, { c.total_input_tokens, c.total_output_tokens, c.total_cost })
    assert.equal("4", h.scalar(("select count(*) from \"Message_v2\" where \"chatId\" = %s"):format(L(chat))))
    assert.equal(c.total_cost, h.scalar(("select sum(total_cost)::text from usage_logs where chat_id = %s"):format(L(chat))))
    -- Another user's chat cannot be bound.
    local _, other = user()
    local code = call(other, "POST", "/v1/ai/runs", { chat_id = chat })
    assert.equal(404, code)
  end)

  it("keeps the run's totals equal to its tasks' under 50 executions at once", function()
    local uid, tok = user()
    local run = new_run(tok)
    local body = srv.quote(cjson.encode({ content = "x", agent_type = "provider_tools_agent", stream = false }))
    local cmds = {}
    for i = 1, 50 do
      cmds[i] = ("curl -s -o /dev/null -m 20 -X POST -H 'Content-Type: application/json' -H %s --data-binary %s %s &")
        :format(srv.quote("Authorization: Bearer " .. tok), body,
          srv.quote(("http://127.0.0.1:%d/v1/ai/runs/%s/messages"):format(s.port, run.id)))
    end
    assert(os.execute("{ " .. table.concat(cmds, " ") .. " wait; }"))
    local sums = h.query(("select count(*) filter (where status = 'completed') as done, sum(cost)::text as cost, sum(tokens_total) as tokens from ai_tasks where run_id = %s"):format(L(run.id)))[1]
    assert.equal("50", sums.done, cjson.encode(h.query(("select status, response_errors::text as e, count(*) from ai_tasks where run_id = %s group by 1, 2"):format(L(run.id)))))
    local r = h.query("select task_count, message_count, total_tokens, total_cost::text from ai_runs where id = " .. L(run.id))[1]
    assert.same({ "50", "100", sums.tokens, sums.cost }, { r.task_count, r.message_count, r.total_tokens, r.total_cost })
    assert.equal(sums.cost, h.scalar("select sum(total_cost)::text from usage_logs where user_id = " .. L(uid)))
  end)

  it("answers the same task for a repeated Idempotency-Key without calling the provider again", function()
    local _, tok = user()
    local run = new_run(tok)
    local key = { ["Idempotency-Key"] = "spec-" .. h.uuid() }
    local _, first = stream(tok, run, { content = "once" }, key)
    local before = fake.stats().requests
    local _, again = stream(tok, run, { content = "once" }, key)
    assert.same({ "task", "done" }, names(again))
    assert.equal(first[1].data.task_id, again[1].data.task_id)
    local code, body = call(tok, "POST", "/v1/ai/runs/" .. run.id .. "/messages", { content = "once", stream = false },
      key)
    assert.equal(200, code)
    assert.equal(first[1].data.task_id, body.task.task_id)
    assert.equal(before, fake.stats().requests)
    assert.equal("1", h.scalar("select task_count from ai_runs where id = " .. L(run.id)))
    -- While the first is still running, a retry is told so.
    local slow = { ["Idempotency-Key"] = "spec-" .. h.uuid() }
    local c = srv.connect(s.port)
    local b = cjson.encode({ content = "x #mode=slow #chunks=20" })
    assert(c:send(("POST /v1/ai/runs/%s/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nIdempotency-Key: %s\r\nAccept: text/event-stream\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s")
      :format(run.id, tok, slow["Idempotency-Key"], #b, b)))
    while not assert(c:receive("*l")):find("event: delta", 1, true) do end
    code, body = call(tok, "POST", "/v1/ai/runs/" .. run.id .. "/messages", { content = "x", stream = false }, slow)
    c:close()
    assert.equal(409, code)
    assert.equal("idempotency_in_progress", body.code)
  end)

  it("refuses, naming the key, an agent whose configuration is disabled or missing", function()
    local _, tok = user()
    local run = new_run(tok)
    local code, body = call(tok, "POST", "/v1/ai/runs/" .. run.id .. "/messages", { content = "x", agent_type = "python_agent" })
    assert.equal(403, code)
    assert.equal("admin_config python_agent_google is not enabled", body.message)
    code, body = call(tok, "POST", "/v1/ai/runs/" .. run.id .. "/messages", { content = "x", agent_type = "spec_missing_agent" })
    assert.equal(403, code)
    assert.equal("admin_config spec_missing_agent_google is missing", body.message)
    assert.equal("0", h.scalar("select count(*) from ai_tasks where run_id = " .. L(run.id)))
  end)

  it("answers 429 past the agent's perMinute", function()
    local _, tok = user()
    local run = new_run(tok)
    local codes = {}
    for i = 1, 3 do
      codes[i] = (call(tok, "POST", "/v1/ai/runs/" .. run.id .. "/messages", { content = "x", agent_type = "mermaid_agent" }))
    end
    assert.same({ 201, 201, 429 }, codes)
  end)

  it("falls back to the next enabled provider when the active one fails before its first token", function()
    local uid, tok = user()
    local run = new_run(tok)
    fake.fail({ google = 500 })
    local _, evs = stream(tok, run, { content = "x", agent_type = "provider_tools_agent" })
    assert.same({ "task", "delta", "delta", "delta", "delta", "usage", "done" }, names(evs))
    local t = task(evs[1].data.task_id)
    assert.same({ "completed", "openai", "gpt-4o", "Hello from openai!" }, { t.status, t.provider, t.model, t.response_text })
    local attempts = cjson.decode(t.meta).attempts
    assert.equal(1, #attempts)
    assert.same({ "google", "upstream_unavailable" }, { attempts[1].provider, attempts[1].error.code })
    local reqs = fake.requests()
    assert.equal("Bearer openai-secret-key-2", reqs[#reqs].headers.authorization)
    assert.equal("openai spec", reqs[#reqs].body.messages[1].content)
    assert.equal("2", h.scalar("select count(*) from usage_logs where user_id = " .. L(uid)))
  end)

  it("falls back twice, to anthropic's messages stream", function()
    local _, tok = user()
    local run = new_run(tok)
    fake.fail({ google = 500, openai = 429 })
    local _, evs = stream(tok, run, { content = "x", agent_type = "provider_tools_agent" })
    assert.equal("done", evs[#evs].event)
    local t = task(evs[1].data.task_id)
    -- claude-3-5-sonnet: 1500 x 3 / 10^6 + 250 x 15 / 10^6 = 0.00825
    assert.same({ "completed", "anthropic", "claude-3-5-sonnet-20241022", "Hello from anthropic!", "1500", "250", "0.008250" },
      { t.status, t.provider, t.model, t.response_text, t.tokens_input, t.tokens_output, t.cost })
    assert.equal(2, #cjson.decode(t.meta).attempts)
    local reqs = fake.requests()
    local last = reqs[#reqs]
    assert.same({ "anthropic-secret-key-3", "2023-06-01", "anthropic spec" },
      { last.headers["x-api-key"], last.headers["anthropic-version"], last.body.system })
  end)

  it("runs document_agent's tools as the caller and continues the conversation", function()
    local uid, tok = user()
    local run = new_run(tok)
    local _, evs = stream(tok, run, { agent_type = "document_agent",
      content = 'Write the plan #tool=create:{"title":"Plan","content":"Step 1"}' })
    assert.same({ "task", "tool_call", "tool_result", "delta", "delta", "delta", "delta", "usage", "done" }, names(evs))
    assert.same({ title = "Plan", content = "Step 1" }, evs[2].data.arguments)
    local doc = evs[3].data.result
    assert.same({ "Plan", 1 }, { doc.title, doc.version_number })
    local row = h.query(("select title, content, user_id, version_number from \"Document\" where id = %s"):format(L(doc.id)))[1]
    assert.same({ "Plan", "Step 1", uid, "1" }, { row.title, row.content, row.user_id, row.version_number })
    -- The second call carried the tool's result.
    local reqs = fake.requests()
    local parts = reqs[#reqs].body.contents[#reqs[#reqs].body.contents].parts
    assert.equal("create", parts[1].functionResponse.name)
    assert.same({ "create", "update" }, { reqs[#reqs].body.tools[1].functionDeclarations[1].name,
      reqs[#reqs].body.tools[1].functionDeclarations[2].name })
    -- Two calls: the task has their totals, usage_logs a row each adding up to its cost.
    local t = task(evs[1].data.task_id)
    -- 2400 x 0.075 / 10^6 + 690 x 0.3 / 10^6 = 0.000387 (rows: 0.000194 + 0.000193)
    assert.same({ "2400", "690", "0.000387" }, { t.tokens_input, t.tokens_output, t.cost })
    local u = h.query(("select total_cost::text as c from usage_logs where metadata->>'task_id' = %s order by total_cost desc"):format(L(evs[1].data.task_id)))
    assert.same({ { c = "0.000194" }, { c = "0.000193" } }, u)
    -- update: a new version of the caller's document; another user's is not found.
    _, evs = stream(tok, run, { agent_type = "document_agent",
      content = ('Revise #tool=update:{"id":"%s","content":"Step 2"}'):format(doc.id) })
    assert.same({ doc.id, 2 }, { evs[3].data.result.id, evs[3].data.result.version_number })
    assert.equal("Step 2", h.scalar(("select content from \"Document\" where id = %s and version_number = 2"):format(L(doc.id))))
    local _, other = user()
    local orun = new_run(other)
    _, evs = stream(other, orun, { agent_type = "document_agent",
      content = ('Revise #tool=update:{"id":"%s","content":"stolen"}'):format(doc.id) })
    assert.equal("no document " .. doc.id, evs[3].data.result.error)
    assert.equal("2", h.scalar(("select count(*) from \"Document\" where id = %s"):format(L(doc.id))))
  end)

  it("reports an upstream 429 and a truncated stream as errors, the task failed", function()
    local _, tok = user()
    local run = new_run(tok)
    local _, evs = stream(tok, run, { content = "x #mode=429" })
    assert.same({ "task", "error" }, names(evs))
    assert.equal("upstream_rate_limited", evs[2].data.code)
    assert.equal("failed", task(evs[1].data.task_id).status)
    _, evs = stream(tok, run, { content = "x #mode=truncate" })
    assert.equal("error", evs[#evs].event)
    assert.equal("failed", task(evs[1].data.task_id).status)
    assert.equal("0", h.scalar("select message_count from ai_runs where id = " .. L(run.id)))
  end)

  it("gives up on a hung upstream after the agent's timeoutMs", function()
    local _, tok = user()
    local run = new_run(tok)
    local _, evs = stream(tok, run, { content = "x #mode=hang", agent_type = "git_mcp_agent" })
    assert.same({ "task", "error" }, names(evs))
    assert.equal("upstream_timeout", evs[2].data.code)
  end)

  it("cancels the upstream call when the client goes away", function()
    local _, tok = user()
    local run = new_run(tok)
    local before = fake.stats().held_closed
    -- Deltas keep coming after the client leaves (the next write fails, or
    -- the reset wakes the connection's close watch).
    local c, task_id = open_until_delta(s.port, tok, run, "x #mode=slow #chunks=40")
    c:close()
    local st = fake.await(function(x) return x.held_closed > before end)
    assert.equal(before + 1, st.held_closed, s.log())
    local t = await_status(task_id, "cancelled")
    assert.equal("cancelled", t.status)
    -- What was relayed before strata saw the client leave: some of the 40 deltas.
    assert.matches("^x+$", t.response_text)
    assert.truthy(#t.response_text < 40, t.response_text)
  end)

  it("cancels the upstream call when the client resets the connection of a silent stream", function()
    local _, tok = user()
    local run = new_run(tok)
    local before = fake.stats().held_closed
    -- One delta, then the upstream says nothing: only the reset itself can
    -- tell strata the client left (epoll reports it as HUP/ERR, not RDHUP).
    local c, task_id = open_until_delta(s.port, tok, run, "x #mode=hold")
    assert(c:setoption("linger", { on = true, timeout = 0 }))
    c:close() -- RST
    local st = fake.await(function(x) return x.held_closed > before end)
    assert.equal(before + 1, st.held_closed, s.log())
    assert.equal("cancelled", await_status(task_id, "cancelled").status)
  end)

  it("fails at the next start the task a killed process left streaming", function()
    local _, tok = user()
    local run = new_run(tok)
    local env = { STRATA_JWT_SECRET = SECRET, STRATA_GOOGLE_BASE_URL = fake.url, STRATA_JOBS_TICK_MS = "100" }
    local a = srv.start(env)
    assert.equal(200, (srv.await(a.port, "/ready", 200, 20)), a.log())
    local c, task_id = open_until_delta(a.port, tok, run, "x #mode=hold")
    assert.equal(137, a.stop("KILL"))
    c:close()
    assert.equal("streaming", task(task_id).status)
    -- The same instance (host and listen address) starts again.
    env.port = a.port
    local b = srv.start(env)
    assert.equal(200, (srv.await(b.port, "/ready", 200, 20)), b.log())
    local t = await_status(task_id, "failed")
    assert.equal(0, b.stop(), b.log())
    a.cleanup()
    b.cleanup()
    assert.equal("failed", t.status)
    assert.equal("interrupted", cjson.decode(t.errors).code)
    assert.equal("0", h.scalar("select count(*) from strata_ai_task_runs where task_id = " .. L(task_id)))
  end)

  it("cancels a running task through POST /v1/ai/tasks/{id}/cancel", function()
    local _, tok = user()
    local run = new_run(tok)
    local c = srv.connect(s.port)
    local body = cjson.encode({ content = "x #mode=slow #chunks=40" })
    assert(c:send(("POST /v1/ai/runs/%s/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nAccept: text/event-stream\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s")
      :format(run.id, tok, #body, body)))
    local task_id
    while not task_id do task_id = assert(c:receive("*l")):match('"task_id":"([%x%-]+)"') end
    local code, ans = call(tok, "POST", "/v1/ai/tasks/" .. task_id .. "/cancel", {})
    assert.equal(202, code, cjson.encode(ans))
    local rest = {}
    while true do
      local line = c:receive("*l")
      if not line then break end
      rest[#rest + 1] = line
      if line:find('"code":"cancelled"', 1, true) then break end
    end
    c:close()
    assert.matches('"code":"cancelled"', table.concat(rest, "\n"))
    local t = await_status(task_id, "cancelled")
    assert.equal("cancelled", t.status)
    assert.truthy(#t.response_text < 40)
    code = call(tok, "POST", "/v1/ai/tasks/" .. task_id .. "/cancel", {})
    assert.equal(409, code)
    local _, other = user()
    code = call(other, "POST", "/v1/ai/tasks/" .. task_id .. "/cancel", {})
    assert.equal(404, code)
  end)

  -- Sends an execution on a connection of its own and answers it.
  local function send_message(tok, run, body, sse)
    local c = srv.connect(s.port)
    local raw = cjson.encode(body)
    assert(c:send(("POST /v1/ai/runs/%s/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s")
      :format(run.id, tok, sse and "Accept: text/event-stream\r\n" or "", #raw, raw)))
    return c
  end

  it("cancels a JSON execution's upstream call when its client leaves, and records the task cancelled", function()
    local _, tok = user()
    local run = new_run(tok)
    local before = fake.stats()
    local c = send_message(tok, run, { content = "x #mode=hold", stream = false }, false)
    -- The upstream has sent its deltas and holds: strata waits for the rest.
    assert.truthy(fake.await(function(x) return x.held_open > before.held_open end).held_open > before.held_open)
    c:close()
    local st = fake.await(function(x) return x.held_closed > before.held_closed end)
    assert.equal(before.held_closed + 1, st.held_closed, s.log())
    local task_id = h.scalar("select task_id from ai_tasks where run_id = " .. L(run.id))
    local t = await_status(task_id, "cancelled")
    assert.equal("cancelled", t.status, s.log())
    -- What had arrived when the client left: a start of what the fake sent.
    assert.truthy(("Hello from google"):sub(1, #t.response_text) == t.response_text, t.response_text)
    assert.equal("0", h.scalar("select message_count from ai_runs where id = " .. L(run.id)))
  end)

  it("stops a silent upstream as soon as the task is cancelled through the route", function()
    local _, tok = user()
    local run = new_run(tok)
    local before = fake.stats()
    local c = send_message(tok, run, { content = "x #mode=hold" }, true)
    local task_id
    while true do
      local line = assert(c:receive("*l"))
      task_id = task_id or line:match('"task_id":"([%x%-]+)"')
      if line == 'data: {"text":" google"}' then break end -- the last delta before the fake holds
    end
    assert.truthy(fake.await(function(x) return x.held_open > before.held_open end).held_open > before.held_open)
    -- The upstream sends nothing more: only the cancel can end the call
    -- (before the agent's 120 s timeout).
    local code, ans = call(tok, "POST", "/v1/ai/tasks/" .. task_id .. "/cancel", {})
    assert.equal(202, code, cjson.encode(ans))
    local rest = {}
    while true do
      local line = c:receive("*l")
      if not line then break end
      rest[#rest + 1] = line
      if line:find('"code":"cancelled"', 1, true) then break end
    end
    c:close()
    -- The events after the last delta (read as lines, the chunked coding's lines among them).
    local evs, name = {}, nil
    for _, line in ipairs(rest) do
      name = line:match("^event: (.+)") or name
      local d = line:match("^data: (.+)")
      if d then evs[#evs + 1] = { event = name, data = cjson.decode(d) } end
    end
    assert.same({ "usage", "error" }, names(evs), cjson.encode(rest))
    assert.equal("cancelled", evs[2].data.code)
    local st = fake.await(function(x) return x.held_closed > before.held_closed end)
    assert.equal(before.held_closed + 1, st.held_closed, s.log())
    local t = await_status(task_id, "cancelled")
    assert.equal("Hello from google", t.response_text)
  end)

  it("counts executions, tokens, first tokens and open streams in /metrics", function()
    local function metric(series)
      local code, body = srv.http(s.port, "GET", "/metrics")
      assert.equal(200, code)
      return tonumber(body:match("\n" .. series:gsub("%p", "%%%0") .. " (%d+)\n"))
    end
    local OK = 'strata_ai_executions_total{provider="google",outcome="completed"}'
    local CANCELLED = 'strata_ai_executions_total{provider="google",outcome="cancelled"}'
    local TIN = 'strata_ai_tokens_total{provider="google",direction="input"}'
    local TOUT = 'strata_ai_tokens_total{provider="google",direction="output"}'
    local TTFT = "strata_ai_time_to_first_token_seconds_count"
    local OPEN = "strata_ai_open_streams"
    local before = { ok = metric(OK), cancelled = metric(CANCELLED), tin = metric(TIN), tout = metric(TOUT),
      ttft = metric(TTFT) }
    assert.equal(0, metric(OPEN))
    local _, tok = user()
    local run = new_run(tok)
    local _, evs = stream(tok, run, { content = "hi" })
    assert.equal("done", evs[#evs].event)
    assert.equal(before.ok + 1, metric(OK))
    assert.equal(before.tin + 1200, metric(TIN)) -- the fake's google usage
    assert.equal(before.tout + 345, metric(TOUT))
    assert.equal(before.ttft + 1, metric(TTFT))
    -- A stream counts as open until its execution ends.
    local held = fake.stats().held_open
    local c = send_message(tok, run, { content = "x #mode=hold" }, true)
    fake.await(function(x) return x.held_open > held end)
    assert.equal(1, metric(OPEN))
    local task_id
    while not task_id do task_id = assert(c:receive("*l")):match('"task_id":"([%x%-]+)"') end
    assert.equal(202, (call(tok, "POST", "/v1/ai/tasks/" .. task_id .. "/cancel", {})))
    c:close()
    for _ = 1, 100 do
      if metric(OPEN) == 0 then break end
      srv.sleep(0.05)
    end
    assert.equal(0, metric(OPEN))
    assert.equal(before.cancelled + 1, metric(CANCELLED))
  end)

  it("answers 401 to anon, 404 for another user's run, 400 for a bad body", function()
    local _, tok = user()
    local run = new_run(tok)
    local code = srv.rest(s.port, "POST", "/v1/ai/runs/" .. run.id .. "/messages", { content = "x" },
      { ["Content-Type"] = "application/json" })
    assert.equal(401, code)
    local _, other = user()
    code = call(other, "POST", "/v1/ai/runs/" .. run.id .. "/messages", { content = "x" })
    assert.equal(404, code)
    local body
    code, body = call(tok, "POST", "/v1/ai/runs/" .. run.id .. "/messages", { content = "" })
    assert.equal(400, code)
    assert.equal("content: must be a non-empty string", body.message)
    code, body = call(tok, "POST", "/v1/ai/runs/" .. run.id .. "/messages", { content = "hi {{nobody_has_this}}" })
    assert.equal(422, code)
    assert.same({ missing = { "nobody_has_this" } }, body.details)
    assert.equal("0", h.scalar("select count(*) from ai_tasks where run_id = " .. L(run.id)))
  end)

  it("sends a message with an unfilled name as written when the run's prompt allows it", function()
    local uid, tok = user()
    local prompt = h.uuid()
    h.accepts(("insert into prompts(id, user_id, name, messages, settings) values (%s, %s, 'p', '[{\"role\":\"system\",\"content\":\"be {{mood}}\"}]', '{\"allow_missing_variables\": true}')")
      :format(L(prompt), L(uid)))
    local run = new_run(tok, { prompt_id = prompt })
    assert.same({ { role = "system", content = "be {{mood}}" } }, run.messages)
    local code, body = call(tok, "POST", "/v1/ai/runs/" .. run.id .. "/messages", { content = "hi {{later}}" })
    assert.equal(201, code, cjson.encode(body))
    local reqs = fake.requests()
    local contents = reqs[#reqs].body.contents
    assert.equal("hi {{later}}", contents[#contents].parts[1].text)
  end)
end)
