-- Orchestrator workflows (seed 002; sql/151, lua/routes/orchestrator_deliverables.lua):
-- deliverable versions under concurrency, step dependencies, the project
-- hierarchy, the timeout job and the two RPCs against hand-written SQL.
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")
local F = require("fixtures.flows")

local lit = h.lit

local function client(port, tok)
  return srv.rest_client(port, tok, { ["Accept-Profile"] = "orchestrator", ["Content-Profile"] = "orchestrator" })
end

-- A user with a conversation: uid, conversation id.
local function user()
  local uid, conv = h.uuid(), h.uuid()
  h.accepts(([[insert into orchestrator.users(id, email) values (%s, %s);
    insert into orchestrator.agent_conversations(id, user_id, agent_name, agent_type) values (%s, %s, 'writer', 'chat');
  ]]):format(lit(uid), lit(uid .. "@example.test"), lit(conv), lit(uid)))
  return uid, conv
end

describe("orchestrator workflows #server", function()
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

  describe("deliverable versions", function()
    local uid, tok, d

    setup(function()
      uid = user()
      tok = F.token("--sub " .. uid)
      d = h.uuid()
      h.accepts(("insert into orchestrator.deliverables(id, user_id, title, type) values (%s, %s, 'Report', 'document')")
        :format(lit(d), lit(uid)))
    end)

    it("numbers 20 concurrent versions 1..20 and keeps exactly one current", function()
      local tokens = {}
      for i = 1, 20 do tokens[i] = tok end
      local answers = F.concurrent_posts(port, "/v1/orchestrator/deliverables/" .. d .. "/versions", tokens,
        cjson.encode({ content = "draft", format = "markdown" }))
      local seen = {}
      for _, a in ipairs(answers) do
        assert.equal(201, a.status, cjson.encode(a.body))
        assert.is_nil(seen[a.body.version_number])
        seen[a.body.version_number] = true
      end
      for n = 1, 20 do assert.is_true(seen[n], "version " .. n .. " missing") end
      assert.equal("20", h.scalar(("select version_number from orchestrator.deliverable_versions where deliverable_id = %s "
        .. "and is_current_version"):format(lit(d))))
      assert.equal("1", h.scalar(("select count(*) from orchestrator.deliverable_versions where deliverable_id = %s "
        .. "and is_current_version"):format(lit(d))))
    end)

    it("makes another version current and unsets the previous one in the same step", function()
      local code, v = F.post(port, tok, "/v1/orchestrator/deliverables/" .. d .. "/versions/3/current")
      assert.equal(200, code, cjson.encode(v))
      assert.is_true(v.is_current_version)
      assert.equal("3", h.scalar(("select string_agg(version_number::text, ',') from orchestrator.deliverable_versions "
        .. "where deliverable_id = %s and is_current_version"):format(lit(d))))
      code, v = F.post(port, tok, "/v1/orchestrator/deliverables/" .. d .. "/versions", { content = "x", make_current = false })
      assert.equal(201, code)
      assert.equal(21, v.version_number)
      assert.is_false(v.is_current_version)
    end)

    it("answers 404 for a deliverable of another user, and writes nothing", function()
      local other = user()
      local code = F.post(port, F.token("--sub " .. other), "/v1/orchestrator/deliverables/" .. d .. "/versions", { content = "x" })
      assert.equal(404, code)
      assert.equal("21", h.scalar("select count(*) from orchestrator.deliverable_versions where deliverable_id = " .. lit(d)))
    end)
  end)

  describe("project steps", function()
    local uid, conv, api, p

    setup(function()
      uid, conv = user()
      api = client(port, F.token("--sub " .. uid))
      local code, rows = api.post("projects", { conversation_id = conv, name = "Launch" })
      assert.equal(201, code, cjson.encode(rows))
      p = rows[1].id
    end)

    local function step(id, deps)
      local body = cjson.encode({ project_id = p, step_id = id, step_index = 0, step_type = "llm", step_name = id })
      -- cjson would write an empty list as {}
      body = body:sub(1, -2) .. ',"dependencies":[' .. (#deps > 0 and ('"' .. table.concat(deps, '","') .. '"') or "") .. "]}"
      return api.post("project_steps", body)
    end

    it("refuses a dependency on a step the project does not have, and a cycle", function()
      local c0, e0 = step("research", {})
      assert.equal(201, c0, cjson.encode(e0))
      assert.equal(201, (step("draft", { "research" })))
      local code, err = step("edit", { "proofread" })
      assert.equal(409, code)
      assert.matches("depends on proofread", err.message)
      assert.equal(201, (step("review", { "draft" })))
      code, err = api.patch("project_steps?project_id=eq." .. p .. "&step_id=eq.research", { dependencies = { "review" } })
      assert.equal(400, code)
      assert.matches("lead back to it", err.message)
    end)

    it("starts a step only once its dependencies completed, and the project's current step follows", function()
      local code, err = api.patch("project_steps?project_id=eq." .. p .. "&step_id=eq.draft", { status = "running" })
      assert.equal(400, code)
      assert.matches("before step research completed", err.message)
      assert.equal(200, (api.patch("project_steps?project_id=eq." .. p .. "&step_id=eq.research", { status = "running" })))
      assert.equal("research", h.scalar("select current_step_id from orchestrator.projects where id = " .. lit(p)))
      assert.equal(200, (api.patch("project_steps?project_id=eq." .. p .. "&step_id=eq.research", { status = "completed" })))
      local rows
      code, rows = api.patch("project_steps?project_id=eq." .. p .. "&step_id=eq.draft", { status = "running" })
      assert.equal(200, code)
      assert.is_string(rows[1].started_at)
      assert.equal("draft", h.scalar("select current_step_id from orchestrator.projects where id = " .. lit(p)))
    end)
  end)

  describe("project hierarchy", function()
    it("keeps hierarchy_level and subproject_count true and refuses cycles", function()
      local uid, conv = user()
      local api = client(port, F.token("--sub " .. uid))
      local function project(parent)
        local code, rows = api.post("projects", { conversation_id = conv, parent_project_id = parent,
          subproject_count = 99, hierarchy_level = 7 })
        assert.equal(201, code, cjson.encode(rows))
        return rows[1].id
      end
      local function row(id)
        return h.query("select hierarchy_level as l, subproject_count as n from orchestrator.projects where id = " .. lit(id))[1]
      end
      local a = project(nil)
      local b = project(a)
      local c1, c2 = project(b), project(b)
      assert.same({ l = "0", n = "1" }, row(a))
      assert.same({ l = "1", n = "2" }, row(b))
      assert.same({ l = "2", n = "0" }, row(c1))
      local code, err = api.patch("projects?id=eq." .. a, { parent_project_id = c1 })
      assert.equal(400, code)
      assert.matches("cycle", err.message)
      local top = project(nil)
      assert.equal(200, (api.patch("projects?id=eq." .. b, { parent_project_id = top })))
      local z = project(c2)
      assert.equal(200, (api.patch("projects?id=eq." .. top, { parent_project_id = a })))
      assert.same({ l = "1", n = "1" }, row(top))
      assert.same({ l = "2", n = "2" }, row(b))
      assert.same({ l = "4", n = "0" }, row(z))
      assert.equal(204, (api.delete("projects?id=eq." .. c1, { Prefer = "return=minimal" })))
      assert.same({ l = "2", n = "1" }, row(b))
    end)
  end)

  describe("timeout job", function()
    it("ends running tasks past timeout_seconds with status timeout, and is service_role's alone", function()
      local uid = user()
      local late, fresh = h.uuid(), h.uuid()
      h.accepts(([[insert into orchestrator.tasks(id, user_id, method, prompt, status, timeout_seconds) values
        (%s, %s, 'm', 'p', 'running', 60), (%s, %s, 'm', 'p', 'running', 3600);
        update orchestrator.tasks set started_at = now() - interval '2 minutes' where id in (%s, %s);
      ]]):format(lit(late), lit(uid), lit(fresh), lit(uid), lit(late), lit(fresh)))
      local code = client(port, F.token("--sub " .. uid)).rpc("expire_timed_out_tasks")
      assert.is_true(code == 403 or code == 401)
      local service = client(port, F.token("--role service_role"))
      local n
      code, n = service.rpc("expire_timed_out_tasks")
      assert.equal(200, code, cjson.encode(n))
      assert.equal("number", type(n)) -- the scheduled job (lua/jobs.lua) may have ended it first
      local rows = h.query(("select id, status, error_code, completed_at is not null as done from orchestrator.tasks "
        .. "where id in (%s, %s) order by status"):format(lit(late), lit(fresh)))
      assert.same({ id = fresh, status = "running", done = "f" }, rows[1])
      assert.same({ id = late, status = "timeout", error_code = "timeout", done = "t" }, rows[2])
    end)
  end)

  describe("RPCs against hand-written SQL on random data", function()
    local users = {}

    setup(function()
      -- A new seed per run: the suite runs the #server specs twice on one database.
      local seed = os.time()
      print("random data seed " .. seed)
      math.randomseed(seed)
      local sql = {}
      local statuses = { "pending", "running", "completed", "failed" }
      for u = 1, 3 do
        local uid = user()
        users[u] = uid
        local convs = {}
        for c = 1, 4 do
          local id = h.uuid()
          convs[c] = id
          sql[#sql + 1] = ("insert into orchestrator.agent_conversations(id, user_id, agent_name, agent_type, started_at) "
            .. "values (%s, %s, %s, 'chat', now() - make_interval(days => %d));"):format(lit(id), lit(uid),
            lit("agent-" .. math.random(1, 3)), math.random(0, 12))
        end
        for _ = 1, 3 do
          local p, conv = h.uuid(), convs[math.random(1, 4)]
          sql[#sql + 1] = ("insert into orchestrator.projects(id, conversation_id, name) values (%s, %s, 'p');")
            :format(lit(p), lit(conv))
          for s = 1, math.random(0, 4) do
            local sid = h.uuid()
            sql[#sql + 1] = ("insert into orchestrator.project_steps(id, project_id, step_id, step_index, step_type, "
              .. "step_name, status) values (%s, %s, %s, %d, 't', 'n', %s);"):format(lit(sid), lit(p), lit("s" .. s), s,
              lit(math.random(2) == 1 and "completed" or "pending"))
            if math.random(2) == 1 then
              local d = h.uuid()
              sql[#sql + 1] = ("insert into orchestrator.deliverables(id, user_id, title, type, project_step_id) "
                .. "values (%s, %s, 't', 'doc', %s);"):format(lit(d), lit(uid), lit(sid))
              if math.random(2) == 1 then
                sql[#sql + 1] = ("insert into orchestrator.deliverable_versions(deliverable_id, version_number, "
                  .. "is_current_version) values (%s, 1, true);"):format(lit(d))
              end
            end
          end
          for _ = 1, math.random(0, 6) do
            sql[#sql + 1] = ("insert into orchestrator.tasks(user_id, agent_conversation_id, method, prompt, status, "
              .. "metadata, created_at) values (%s, %s, 'm', 'p', %s, %s, now() - make_interval(days => %d));"):format(
              lit(uid), math.random(4) == 1 and "null" or lit(convs[math.random(1, 4)]),
              lit(statuses[math.random(1, 4)]), lit(cjson.encode({ project_id = p })), math.random(0, 12))
          end
        end
      end
      h.accepts(table.concat(sql, "\n"))
    end)

    it("agent_activity_summary equals the seed's query pattern per user and window", function()
      for _, uid in ipairs(users) do
        for _, days in ipairs({ 1, 7, 30 }) do
          local code, got = client(port, F.token("--sub " .. uid)).rpc("agent_activity_summary", { p_days = days })
          assert.equal(200, code, cjson.encode(got))
          local want = h.query(([[
            select name, sum(convs) as convs, sum(tasks) as tasks, sum(done) as done from (
              select agent_name as name, 1 as convs, 0 as tasks, 0 as done from orchestrator.agent_conversations
                where user_id = %s and started_at >= now() - interval '%d days'
              union all
              select coalesce(c.agent_name, ''), 0, 1, case when t.status = 'completed' then 1 else 0 end
                from orchestrator.tasks t left join orchestrator.agent_conversations c on c.id = t.agent_conversation_id
                where t.user_id = %s and t.created_at >= now() - interval '%d days') x
            group by name order by tasks desc, name]]):format(lit(uid), days, lit(uid), days))
          assert.equal(#want, #got)
          for i, w in ipairs(want) do
            assert.same({ agent_name = w.name, conversation_count = tonumber(w.convs), task_count = tonumber(w.tasks),
              completed_count = tonumber(w.done) }, got[i])
          end
        end
      end
    end)

    it("project_progress equals hand-written counts, and answers nothing for another user's project", function()
      for u, uid in ipairs(users) do
        local api = client(port, F.token("--sub " .. uid))
        local projects = h.query(("select p.id from orchestrator.projects p join orchestrator.agent_conversations c "
          .. "on c.id = p.conversation_id where c.user_id = %s"):format(lit(uid)))
        for _, p in ipairs(projects) do
          local code, got = api.rpc("project_progress", { p_project_id = p.id })
          assert.equal(200, code, cjson.encode(got))
          local want = h.query(([[select
              (select count(*) from orchestrator.tasks where metadata->>'project_id' = %s) as tasks,
              (select coalesce(json_object_agg(status, n), '{}')::text from (select status, count(*) n from orchestrator.tasks
                 where metadata->>'project_id' = %s group by status) s) as by_status,
              (select count(*) from orchestrator.deliverables d, orchestrator.project_steps s where s.id = d.project_step_id
                 and s.project_id = %s) as dels,
              (select count(distinct d.id) from orchestrator.deliverables d, orchestrator.project_steps s,
                 orchestrator.deliverable_versions v where s.id = d.project_step_id and s.project_id = %s
                 and v.deliverable_id = d.id and v.is_current_version) as cur,
              (select count(*) filter (where status = 'completed') from orchestrator.project_steps where project_id = %s) as done,
              (select count(*) from orchestrator.project_steps where project_id = %s) as total]]):format(
            lit(p.id), lit(p.id), lit(p.id), lit(p.id), lit(p.id), lit(p.id)))[1]
          local g = got[1]
          assert.equal(tonumber(want.tasks), g.task_count)
          assert.same(cjson.decode(want.by_status), g.tasks_by_status)
          assert.equal(tonumber(want.dels), g.deliverable_count)
          assert.equal(tonumber(want.cur), g.deliverables_with_current_version)
          assert.equal(tonumber(want.done), g.steps_completed)
          assert.equal(tonumber(want.total), g.steps_total)
          local other = client(port, F.token("--sub " .. users[u % #users + 1]))
          code, got = other.rpc("project_progress", { p_project_id = p.id })
          assert.equal(200, code)
          assert.same({}, got)
        end
      end
    end)
  end)
end)
