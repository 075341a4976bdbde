-- sql/140_ai_execution.sql against the test database (no server): the
-- cost to the last digit in numeric, a task's start with its
-- Idempotency-Key, its completion writing the task, the run's messages and
-- aggregates, the bound Chat's messages and totals and usage_logs in one
-- go, once; and 50 completions of one run's tasks at the same time losing
-- nothing.
local cjson = require("cjson")
local h = require("helpers")

local L = h.lit

local function sh(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function cost(tin, tout, pin, pout)
  return h.scalar(("select public.ai_cost(%d, %d, %s, %s)::text"):format(tin, tout, pin, pout))
end

describe("ai cost and usage (sql/140) #pg", function()
  describe("ai_cost", function()
    it("is exact to the last digit, rounded once half away from zero", function()
      -- 1,234,567 x 2.5 / 10^6 = 3.0864175; 7,654,321 x 10 / 10^6 = 76.54321; sum 79.6296275
      assert.equal("79.629628", cost(1234567, 7654321, "2.5000", "10.0000"))
      assert.equal("0.000001", cost(7, 0, "0.0750", "0"))     -- 0.000000525
      assert.equal("0.000000", cost(6, 0, "0.0750", "0"))     -- 0.00000045
      assert.equal("0.000375", cost(1000, 1000, "0.0750", "0.3000"))
      assert.equal("5.250000", cost(3000000, 300000, "1.2500", "5.0000"))
    end)

    it("prices the seed's models from model_config", function()
      assert.equal("0.003375", h.scalar([[select public.ai_cost(15000, 7500, input_pricing_per_million_tokens,
        output_pricing_per_million_tokens)::text from public.model_config where model_id = 'gemini-2.0-flash']]))
    end)
  end)

  -- A user, a chat, a run bound to it; the model gpt-4o (2.5 / 10 per million).
  local function world(n)
    local w = { user = h.user(), chat = h.uuid(), run = h.uuid() }
    h.accepts(table.concat({
      ("insert into \"Chat\"(id, title, user_id) values (%s, 't', %s)"):format(L(w.chat), L(w.user)),
      ("insert into ai_runs(id, user_id, source_type, source_id) values (%s, %s, 'chat', %s)"):format(L(w.run), L(w.user), L(w.chat)),
    }, ";\n"))
    w.model = h.scalar("select id from model_config where model_id = 'gpt-4o'")
    w.tasks = {}
    for i = 1, n or 1 do
      local row = h.query(("select task::text as t, replayed from public.ai_task_begin(%s, %s, %s, %s)"):format(
        L(w.user), L(w.run), L(nil), L(cjson.encode({ provider = "openai", model = "gpt-4o", model_id = w.model }))))[1]
      w.tasks[i] = cjson.decode(row.t).task_id
    end
    return w
  end

  local function complete(task, result)
    return h.scalar(("select public.ai_task_complete(%s, %s)::text"):format(L(task), L(cjson.encode(result))))
  end

  describe("ai_task_begin", function()
    it("answers the first task again for a repeated Idempotency-Key", function()
      local w = world(0)
      local sql = ("select task->>'task_id' as id, replayed from public.ai_task_begin(%s, %s, 'key-1', '{}')"):format(L(w.user), L(w.run))
      local a, b = h.query(sql)[1], h.query(sql)[1]
      assert.equal("f", a.replayed)
      assert.equal("t", b.replayed)
      assert.equal(a.id, b.id)
      assert.equal("1", h.scalar("select count(*) from ai_tasks where run_id = " .. L(w.run)))
      -- Another user's same key is another task.
      local other = h.user()
      h.accepts(("insert into ai_runs(id, user_id, source_type) values (%s, %s, 'prompt')"):format(L(h.uuid()), L(other)))
      local c = h.query(("select task->>'task_id' as id, replayed from public.ai_task_begin(%s, (select id from ai_runs where user_id = %s), 'key-1', '{}')")
        :format(L(other), L(other)))[1]
      assert.equal("f", c.replayed)
      assert.are_not.equal(a.id, c.id)
    end)
  end)

  describe("ai_task_complete", function()
    it("records the task, the run, the chat and usage in one go, and only once", function()
      local w = world(1)
      local result = { status = "completed", tokens_input = 1234567, tokens_output = 765432, response_text = "hello",
        provider = "openai", model = "gpt-4o", agent_type = "chat_model_agent", time_to_first_token = 12, total_time = 40,
        user_message = { role = "user", content = "hi" },
        attempts = { { provider = "google", model = "gemini-2.0-flash", status = "failed", error = { code = "upstream_5xx" }, duration_ms = 3 } } }
      local t = cjson.decode(complete(w.tasks[1], result))
      -- 1234567 x 2.5e-6 + 765432 x 10e-6 = 3.0864175 + 7.65432 = 10.7407375
      assert.equal(10.740738, t.cost)
      assert.equal("completed", t.status)
      assert.equal(1999999, t.tokens_total)
      local run = h.query("select total_cost::text, total_tokens, task_count, message_count, messages::text from ai_runs where id = " .. L(w.run))[1]
      assert.same({ "10.740738", "1999999", "1", "2" }, { run.total_cost, run.total_tokens, run.task_count, run.message_count })
      local msgs = cjson.decode(run.messages)
      assert.same({ role = "user", content = "hi" }, msgs[1])
      assert.equal("hello", msgs[2].content)
      local chat = h.query(("select total_input_tokens, total_output_tokens, total_cost::text from \"Chat\" where id = %s"):format(L(w.chat)))[1]
      assert.same({ "1234567", "765432", "10.740738" }, { chat.total_input_tokens, chat.total_output_tokens, chat.total_cost })
      local m = h.query(("select role, parts::text, cost::text, model_used from \"Message_v2\" where \"chatId\" = %s order by \"createdAt\""):format(L(w.chat)))
      assert.equal(2, #m)
      assert.same({ "user", "assistant" }, { m[1].role, m[2].role })
      assert.equal('[{"type" : "text", "text" : "hello"}]', m[2].parts)
      assert.equal("10.740738", m[2].cost)
      local u = h.query(("select provider, total_cost::text, input_cost::text, output_cost::text, input_tokens, chat_id, metadata->>'status' as status from usage_logs where user_id = %s order by provider"):format(L(w.user)))
      assert.equal(2, #u)
      assert.same({ "google", "0.000000", "failed" }, { u[1].provider, u[1].total_cost, u[1].status })
      assert.same({ "openai", "10.740738", "3.086418", "7.654320", "1234567", w.chat, "completed" },
        { u[2].provider, u[2].total_cost, u[2].input_cost, u[2].output_cost, u[2].input_tokens, u[2].chat_id, u[2].status })
      -- Again: nothing more is charged or written.
      complete(w.tasks[1], result)
      assert.equal("10.740738", h.scalar("select total_cost::text from \"Chat\" where id = " .. L(w.chat)))
      assert.equal("2", h.scalar("select count(*) from usage_logs where user_id = " .. L(w.user)))
      -- What the user's usage summary answers.
      local s = h.query("select total_calls, total_tokens, total_cost::text from public.get_current_user_usage_summary()",
        ("set local role authenticated; select set_config('request.jwt.claims', %s, true)")
          :format(L(cjson.encode({ sub = w.user, role = "authenticated" }))))[1]
      assert.same({ "2", "1999999", "10.740738" }, { s.total_calls, s.total_tokens, s.total_cost })
    end)

    it("records a failed call without appending messages", function()
      local w = world(1)
      local t = cjson.decode(complete(w.tasks[1], { status = "failed", response_errors = { code = "upstream_5xx" } }))
      assert.equal("failed", t.status)
      assert.equal(0, t.cost)
      assert.equal("0", h.scalar("select message_count from ai_runs where id = " .. L(w.run)))
      assert.equal("0", h.scalar("select count(*) from \"Message_v2\" where \"chatId\" = " .. L(w.chat)))
    end)

    it("refuses an unknown status", function()
      local w = world(1)
      h.refuses("22023", ("select public.ai_task_complete(%s, '{\"status\":\"streaming\"}')"):format(L(w.tasks[1])))
    end)

    it("loses no update when 50 tasks of one run complete at once", function()
      local w = world(50)
      local files = {}
      for i, task in ipairs(w.tasks) do
        local f = os.tmpname()
        local fh = assert(io.open(f, "w"))
        fh:write(("select public.ai_task_complete(%s, %s);\n"):format(L(task), L(cjson.encode({
          status = "completed", tokens_input = 1000 + i, tokens_output = 333 * i, response_text = "r" .. i,
          user_message = { role = "user", content = "q" .. i } }))))
        fh:close()
        files[i] = f
      end
      local cmds = {}
      for i, f in ipairs(files) do
        cmds[i] = ("psql -X -q -v ON_ERROR_STOP=1 -d %s -f %s >/dev/null 2>%s.err &"):format(sh(h.url), f, f)
      end
      assert(os.execute("{ " .. table.concat(cmds, " ") .. " wait; }"))
      for _, f in ipairs(files) do
        local e = io.open(f .. ".err"):read("a")
        assert.equal("", e)
        os.remove(f); os.remove(f .. ".err")
      end
      local sums = h.query(("select sum(cost)::text as cost, sum(tokens_total) as tokens, sum(tokens_input) as tin, sum(tokens_output) as tout, count(*) filter (where status = 'completed') as done from ai_tasks where run_id = %s"):format(L(w.run)))[1]
      assert.equal("50", sums.done)
      local run = h.query("select total_cost::text, total_tokens, task_count, message_count from ai_runs where id = " .. L(w.run))[1]
      assert.same({ sums.cost, sums.tokens, "50", "100" }, { run.total_cost, run.total_tokens, run.task_count, run.message_count })
      local chat = h.query(("select total_input_tokens, total_output_tokens, total_cost::text from \"Chat\" where id = %s"):format(L(w.chat)))[1]
      assert.same({ sums.tin, sums.tout, sums.cost }, { chat.total_input_tokens, chat.total_output_tokens, chat.total_cost })
      assert.equal("50", h.scalar("select count(*) from usage_logs where user_id = " .. L(w.user)))
      assert.equal(sums.cost, h.scalar("select sum(total_cost)::text from usage_logs where user_id = " .. L(w.user)))
      assert.equal("100", h.scalar("select count(*) from \"Message_v2\" where \"chatId\" = " .. L(w.chat)))
    end)
  end)
end)
