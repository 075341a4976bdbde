-- AgentFlow sessions and agent events (lua/routes/agentflow_sessions.lua):
-- start pulls the updates since the last session into session_start, log
-- and stop, event content validated, review_response recalculating KPIs.
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")
local F = require("fixtures.flows")

local lit = h.lit

describe("agentflow sessions #server", function()
  local server, port, c, a, tok

  setup(function()
    server = srv.start({ STRATA_JWT_SECRET = F.SECRET })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 10)), server.log())
    port = server.port
    c = F.company()
    a = F.agent(c)
    tok = F.agent_token(a)
  end)

  teardown(function()
    server.stop()
    server.cleanup()
  end)

  local function post(path, body) return F.post(port, tok, path, body) end

  it("starts, logs and stops a session, with its events in the same transactions", function()
    local code, s = post("/v1/agentflow/sessions", { project_id = c.project })
    assert.equal(201, code, cjson.encode(s))
    assert.equal("started", s.status)
    assert.equal(409, (post("/v1/agentflow/sessions", { project_id = c.project }))) -- one open session per agent
    local ev
    code, ev = post("/v1/agentflow/sessions/" .. s.id .. "/log", { message = "Implemented authentication flow",
      context = { file = "src/auth.ts", progress = 50 } })
    assert.equal(201, code, cjson.encode(ev))
    assert.equal(a, ev.author_id)
    assert.equal("session_log", ev.type)
    code, ev = post("/v1/agentflow/sessions/" .. s.id .. "/log", { context = {} })
    assert.equal(422, code)
    assert.equal("/content/message", ev.details[1].path)
    local stopped
    code, stopped = post("/v1/agentflow/sessions/" .. s.id .. "/stop")
    assert.equal(200, code, cjson.encode(stopped))
    assert.equal("stopped", stopped.status)
    assert.is_number(stopped.duration_seconds)
    assert.equal(404, (post("/v1/agentflow/sessions/" .. s.id .. "/stop")))
    local types = h.query("select type, author_id from agentflow.events where session_id = " .. lit(s.id) .. " order by type")
    assert.same({ { type = "session_log", author_id = a }, { type = "session_start" }, { type = "session_stop" } }, types)
  end)

  it("pulls what happened since the last session into session_start", function()
    -- after the first session stopped: a task assigned to the agent, an approved wiki entry, another agent's event
    local t = F.task(c, { status = "assigned", agent = a })
    h.accepts(([[insert into agentflow.wiki_entries(workspace_id, status, title, slug, content, approved_by, approved_at)
        values (%s, 'approved', 'Style', %s, 'tabs', %s, now() + interval '1 second');
      insert into agentflow.events(type, author_id, project_id, content, "timestamp")
        values ('advice_given', %s, %s, '{"text": "use tabs"}', now() + interval '1 second');
      update agentflow.tasks set updated_at = now() + interval '1 second' where id = %s;]]):format(
      lit(c.workspace), lit("style-" .. t:sub(1, 8)), lit(c.ceo), lit(F.agent(c)), lit(c.project), lit(t)))
    local code, s = post("/v1/agentflow/sessions", { project_id = c.project })
    assert.equal(201, code, cjson.encode(s))
    local u = s.pulled_updates
    assert.equal(1, u.tasks)
    assert.same({ t }, u.assigned_tasks)
    assert.equal(1, u.wiki)
    assert.equal(1, u.messages)
    local stored = cjson.decode(h.scalar("select content::text from agentflow.events where type = 'session_start' "
      .. "and session_id = " .. lit(s.id)))
    assert.same(u, stored.pulled_updates)
    assert.equal(200, (post("/v1/agentflow/sessions/" .. s.id .. "/stop")))
  end)

  it("refuses an event whose content does not have its type's shape, and writes nothing", function()
    local before = h.scalar("select count(*) from agentflow.events")
    local code, err = post("/v1/agentflow/events", { type = "task_assigned", project_id = c.project,
      content = { title = "x", priority = "P9" } })
    assert.equal(422, code)
    local paths = {}
    for _, d in ipairs(err.details) do paths[#paths + 1] = d.path end
    table.sort(paths)
    assert.same({ "/content/priority", "/content/taskId" }, paths)
    assert.equal(before, h.scalar("select count(*) from agentflow.events"))
    -- the same through /rest/v1
    code = srv.rest_client(port, tok, { ["Content-Profile"] = "agentflow" }).post("events",
      { type = "session_log", author_id = a, content = { context = {} } })
    assert.equal(422, code)
  end)

  it("recalculates KPIs and trust after a review_response", function()
    local b = F.agent(c)
    local code, ev = F.post(port, F.agent_token(b), "/v1/agentflow/events", { type = "review_response",
      project_id = c.project, content = { approved = false, comment = "needs tests" } })
    assert.equal(201, code, cjson.encode(ev))
    assert.equal("49.00", h.scalar("select trust_score from agentflow.agents where id = " .. lit(b))) -- 50 + 1 - 2 (rejected)
    assert.equal("review answered", h.scalar("select content->>'changeReason' from agentflow.events where type = 'kpi_updated' "
      .. "and " .. lit(b) .. " = any(mentions)"))
  end)
end)
