-- AgentFlow's task workflow (lua/routes/agentflow_tasks.lua): the priority
-- queue, the status machine of lua/rules/transitions.lua, the automatic
-- events and the KPI / trust recalculation, each step one transaction.
local h = require("helpers")
local srv = require("server_helpers")
local F = require("fixtures.flows")

local lit = h.lit

local function scalar(sql) return h.scalar(sql) end

describe("agentflow tasks #server", function()
  local server, port

  setup(function()
    server = srv.start({ STRATA_JWT_SECRET = F.SECRET })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 10)), server.log())
    port = server.port
  end)

  teardown(function()
    server.stop()
    server.cleanup()
  end)

  describe("claim", function()
    it("hands out P0 first, then the earliest deadline, then the oldest, then answers 204", function()
      local c = F.company()
      local a = F.agent(c)
      local tok = F.agent_token(a)
      local old = F.task(c, { priority = "P1", age = 100 })
      local young = F.task(c, { priority = "P1", age = 10 })
      local due = F.task(c, { priority = "P1", age = 1, deadline = "now() + interval '1 day'" })
      local critical = F.task(c, { priority = "P0" })
      local p3 = F.task(c, { priority = "P3", age = 1000 })
      local order = {}
      for _ = 1, 5 do
        local code, task = F.post(port, tok, "/v1/agentflow/tasks/claim")
        assert.equal(200, code)
        assert.equal("assigned", task.status)
        assert.equal(a, task.assigned_agent_id)
        order[#order + 1] = task.id
      end
      assert.same({ critical, due, old, young, p3 }, order)
      local code, body = F.post(port, tok, "/v1/agentflow/tasks/claim")
      assert.equal(204, code)
      assert.is_nil(body)
      local types, rows = F.task_events(critical)
      assert.same({ "task_assigned" }, types)
      assert.is_nil(rows[1].author_id) -- an automatic event
    end)

    it("never gives a P0 to an agent on probation, and refuses tokens without an agent", function()
      local c = F.company()
      local a = F.agent(c, { status = "probation" })
      F.task(c, { priority = "P0" })
      local p2 = F.task(c, { priority = "P2" })
      local code, task = F.post(port, F.agent_token(a), "/v1/agentflow/tasks/claim")
      assert.equal(200, code)
      assert.equal(p2, task.id)
      assert.equal(204, (F.post(port, F.agent_token(a), "/v1/agentflow/tasks/claim")))
      assert.equal(403, (F.post(port, F.token("--sub " .. c.ceo), "/v1/agentflow/tasks/claim")))
    end)

    it("gives 20 agents claiming 20 tasks at once 20 different tasks", function()
      local c = F.company()
      local tokens, agents, tasks = {}, {}, {}
      for i = 1, 20 do
        agents[i] = F.agent(c)
        tokens[i] = F.agent_token(agents[i])
        tasks[F.task(c, { priority = ({ "P0", "P1", "P2", "P3" })[i % 4 + 1], age = i })] = true
      end
      local answers = F.concurrent_posts(port, "/v1/agentflow/tasks/claim", tokens)
      local got, by = {}, {}
      for i, ans in ipairs(answers) do
        assert.equal(200, ans.status, require("cjson").encode(ans.body))
        assert.is_true(tasks[ans.body.id] ~= nil)
        assert.is_nil(got[ans.body.id], "task handed out twice")
        got[ans.body.id] = true
        by[ans.body.id] = agents[i]
      end
      for id, agent in pairs(by) do
        assert.equal(agent, scalar("select assigned_agent_id from agentflow.tasks where id = " .. lit(id)))
      end
      assert.equal("20", scalar(("select count(*) from agentflow.events e join agentflow.tasks t on t.id::text = "
        .. "e.content->>'taskId' where e.type = 'task_assigned' and t.project_id = %s"):format(lit(c.project))))
    end)
  end)

  describe("transitions", function()
    local c, a, ceo, tok

    setup(function()
      c = F.company()
      a = F.agent(c)
      ceo = F.token("--sub " .. c.ceo)
      tok = F.agent_token(a)
    end)

    local function move(t, id, to, extra)
      local body = { to = to }
      for k, v in pairs(extra or {}) do body[k] = v end
      return F.post(port, t, "/v1/agentflow/tasks/" .. id .. "/transition", body)
    end

    it("walks backlog -> assigned -> in_progress -> blocked -> in_progress -> completed with stamps and events", function()
      local id = F.task(c, { priority = "P1" })
      local stranger = F.agent(F.company())
      assert.equal(422, (move(ceo, id, "assigned", { agent_id = stranger }))) -- not an agent of this project
      local code, task = move(ceo, id, "assigned", { agent_id = a })
      assert.equal(200, code)
      assert.equal(a, task.assigned_agent_id)
      code, task = move(tok, id, "in_progress")
      assert.equal(200, code)
      assert.is_string(task.started_at)
      local started = task.started_at
      code, task = move(tok, id, "blocked", { reason = "waiting for the API keys" })
      assert.equal(200, code)
      code, task = move(tok, id, "in_progress")
      assert.equal(started, task.started_at) -- stamped once
      assert.is_true(task.completed_at == require("cjson").null)
      code, task = move(tok, id, "completed")
      assert.equal(200, code)
      assert.is_string(task.completed_at)
      assert.same({ "task_assigned", "task_blocked", "task_completed" }, (F.task_events(id)))
      assert.equal("waiting for the API keys", scalar("select content->>'reason' from agentflow.events where "
        .. "type = 'task_blocked' and content->>'taskId' = " .. lit(id)))
    end)

    it("refuses a move the rules do not allow with 409 naming from and to, and writes nothing", function()
      local id = F.task(c)
      local before = scalar("select count(*) from agentflow.events")
      local code, err = move(ceo, id, "completed")
      assert.equal(409, code)
      assert.matches("from backlog to completed", err.message)
      assert.same({ from = "backlog", to = "completed", allowed = { "assigned", "cancelled" } }, err.details)
      assert.equal("backlog", scalar("select status from agentflow.tasks where id = " .. lit(id)))
      assert.equal(before, scalar("select count(*) from agentflow.events"))
      assert.equal(400, (move(ceo, id, "done")))
    end)

    it("takes the whole step back when a trigger refuses it: no task change, no event", function()
      local p = F.agent(c, { status = "probation" })
      local id = F.task(c, { priority = "P0" })
      local code, err = move(ceo, id, "assigned", { agent_id = p })
      assert.equal(400, code, require("cjson").encode(err)) -- PostgREST's status for a raised exception
      assert.matches("probation", err.message)
      assert.equal("backlog", scalar("select status from agentflow.tasks where id = " .. lit(id)))
      assert.same({}, (F.task_events(id)))
    end)

    it("lets only the row policy's callers move a task", function()
      local other = F.agent(c)
      local id = F.task(c, { status = "assigned", agent = a })
      assert.equal(403, (move(F.agent_token(other), id, "in_progress")))
      local stranger = F.company()
      assert.equal(404, (move(F.token("--sub " .. stranger.ceo), id, "in_progress")))
      assert.equal("assigned", scalar("select status from agentflow.tasks where id = " .. lit(id)))
    end)

    it("records a KPI and moves the trust score after a completion, with kpi_updated and trust_score_changed", function()
      local b = F.agent(c)
      local btok = F.agent_token(b)
      local id = F.task(c, { status = "in_progress", agent = b })
      assert.equal(200, (move(btok, id, "completed")))
      local kpi = assert(h.query("select metrics->>'tasksCompleted' as done, trend_data->>'overallTrend' as trend "
        .. "from agentflow.kpis where agent_id = " .. lit(b)))
      assert.equal(1, #kpi)
      assert.equal("1", kpi[1].done)
      assert.equal("52.00", scalar("select trust_score from agentflow.agents where id = " .. lit(b)))
      local ev = assert(h.query("select type, author_id, content->>'previousScore' as prev, content->>'newScore' as new, "
        .. "content->>'reason' as reason from agentflow.events where type in ('kpi_updated', 'trust_score_changed') "
        .. "and " .. lit(b) .. " = any(mentions) order by type"))
      assert.equal(2, #ev)
      assert.equal("kpi_updated", ev[1].type)
      assert.equal("trust_score_changed", ev[2].type)
      assert.is_nil(ev[2].author_id)
      assert.equal("50", ev[2].prev)
      assert.equal("52", ev[2].new)
      assert.equal("task completed", ev[2].reason)
    end)

    it("puts an agent whose trust falls below 30 on probation (lua/rules/status.lua)", function()
      local b = F.agent(c, { trust = "30.5" })
      local id = F.task(c, { status = "in_progress", agent = b })
      assert.equal(200, (move(F.agent_token(b), id, "blocked")))
      assert.equal("29.50", scalar("select trust_score from agentflow.agents where id = " .. lit(b)))
      assert.equal("probation", scalar("select status from agentflow.agents where id = " .. lit(b)))
      assert.equal("probation", scalar("select content->>'newStatus' from agentflow.events where type = "
        .. "'trust_score_changed' and " .. lit(b) .. " = any(mentions)"))
    end)
  end)

  describe("blocked too long", function()
    it("recalculates the assignee once for a task blocked past the rules' limit (a service_role job)", function()
      local c = F.company()
      local b = F.agent(c)
      local old, fresh = F.task(c, { status = "blocked", agent = b }), F.task(c, { status = "blocked", agent = b })
      h.accepts(("alter table agentflow.tasks disable trigger update_tasks_updated_at; "
        .. "update agentflow.tasks set updated_at = now() - interval '2 days' where id = %s; "
        .. "alter table agentflow.tasks enable trigger update_tasks_updated_at"):format(lit(old)))
      assert.equal(403, (F.post(port, F.token("--sub " .. c.ceo), "/v1/agentflow/jobs/blocked-tasks")))
      local service = F.token("--role service_role")
      local code, res = F.post(port, service, "/v1/agentflow/jobs/blocked-tasks")
      assert.equal(200, code, require("cjson").encode(res))
      assert.is_number(res.recalculated) -- the scheduled job (lua/jobs.lua) may have taken it first
      assert.equal("48.00", scalar("select trust_score from agentflow.agents where id = " .. lit(b))) -- 50 - 2
      assert.equal("task blocked too long", scalar("select content->>'reason' from agentflow.events where "
        .. "type = 'trust_score_changed' and " .. lit(b) .. " = any(mentions)"))
      assert.is_nil(scalar("select metadata->>'blocked_too_long_at' from agentflow.tasks where id = " .. lit(fresh)))
      F.post(port, service, "/v1/agentflow/jobs/blocked-tasks")
      assert.equal("48.00", scalar("select trust_score from agentflow.agents where id = " .. lit(b))) -- once only
    end)
  end)

  describe("KPI trend", function()
    it("compares the latest record with the average of the ones before (rpc agentflow.kpi_trend)", function()
      local c = F.company()
      local b = F.agent(c)
      h.accepts(([[insert into agentflow.kpis(agent_id, recorded_at, metrics) values
        (%s, now() - interval '3 hours', '{"tasksCompleted": 1, "codeQualityScore": 80}'),
        (%s, now() - interval '2 hours', '{"tasksCompleted": 3, "codeQualityScore": 60}'),
        (%s, now() - interval '1 hour', '{"tasksCompleted": 4, "codeQualityScore": 70}')]]):format(lit(b), lit(b), lit(b)))
      local client = srv.rest_client(port, F.agent_token(b), { ["Content-Profile"] = "agentflow",
        ["Accept-Profile"] = "agentflow" })
      local code, rows = client.rpc("kpi_trend", { p_agent_id = b, p_window = 5 })
      assert.equal(200, code, require("cjson").encode(rows))
      assert.same({
        { metric = "codeQualityScore", latest = 70, previous_average = 70, trend = "stable" },
        { metric = "tasksCompleted", latest = 4, previous_average = 2, trend = "up" },
      }, rows)
      local other = srv.rest_client(port, F.agent_token(F.agent(c)), { ["Content-Profile"] = "agentflow" })
      code, rows = other.rpc("kpi_trend", { p_agent_id = b })
      assert.equal(200, code)
      assert.same({}, rows) -- row level security: another agent's KPIs are not theirs to read
    end)
  end)
end)
