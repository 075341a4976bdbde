-- Every path that changes an agentflow task's status follows
-- lua/rules/transitions.lua: /rest/v1 and strata.data writes of `status`
-- are refused with the route to use (lua/validators/agentflow/tasks.lua),
-- and sql/156's trigger refuses raw SQL by the API roles a move outside the
-- machine (agentflow_system.task_transitions, written from the rule file)
-- or, for anon / authenticated, any move the workflow did not make.
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")
local F = require("fixtures.flows")

local lit = h.lit

local ROUTE = "POST /v1/agentflow/tasks/:id/transition"

describe("agentflow task status outside the workflow #server", function()
  local server, c, api

  setup(function()
    server = srv.start({ STRATA_JWT_SECRET = F.SECRET })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 10)), server.log())
    c = F.company()
    api = srv.rest_client(server.port, F.token("--sub " .. c.ceo), { ["Accept-Profile"] = "agentflow",
      ["Content-Profile"] = "agentflow", Prefer = "return=representation" })
    -- a first workflow step writes this server's rule file into the database
    local a = F.agent(c)
    local code, body = F.post(server.port, F.agent_token(a), "/v1/agentflow/tasks/" .. F.task(c, { status = "assigned",
      agent = a }) .. "/transition", { to = "in_progress" })
    assert.equal(200, code, cjson.encode(body))
  end)

  teardown(function()
    server.stop()
    server.cleanup()
  end)

  local function status(id) return h.scalar("select status from agentflow.tasks where id = " .. lit(id)) end

  it("refuses a PATCH of status through /rest/v1 with 422 naming the route", function()
    local id = F.task(c)
    local code, body = api.patch("tasks?id=eq." .. id, { status = "completed" })
    assert.equal(422, code, cjson.encode(body))
    assert.equal("/status", body.details[1].path)
    assert.matches(ROUTE, body.details[1].message, 1, true)
    assert.equal("backlog", status(id))
    -- other columns still change through /rest/v1
    code, body = api.patch("tasks?id=eq." .. id, { title = "Renamed" })
    assert.equal(200, code, cjson.encode(body))
    assert.equal("Renamed", body[1].title)
  end)

  it("lets a new task start in the backlog only", function()
    local n = math.random(1, 1e9)
    local code, body = api.post("tasks", { project_id = c.project, title = "Done already", status = "completed",
      github_issue_id = n, github_issue_number = n })
    assert.equal(422, code, cjson.encode(body))
    assert.matches("starts in the backlog", body.details[1].message, 1, true)
    code, body = api.post("tasks", { project_id = c.project, title = "New", status = "backlog",
      github_issue_id = n, github_issue_number = n })
    assert.equal(201, code, cjson.encode(body))
    assert.equal("backlog", body[1].status)
  end)

  it("refuses a raw UPDATE by service_role that jumps the machine, naming from and to", function()
    local id = F.task(c)
    local err = h.refuses("23514", "set role service_role; update agentflow.tasks set status = 'completed' where id = "
      .. lit(id))
    assert.matches("cannot move from backlog to completed", err.raw, 1, true)
    assert.equal("backlog", status(id))
    h.accepts("set role service_role; update agentflow.tasks set status = 'cancelled' where id = " .. lit(id))
  end)

  it("refuses an authenticated raw UPDATE of status that the workflow did not make", function()
    local id = F.task(c)
    local as_ceo = ("set role authenticated; select set_config('request.jwt.claims', %s, false);"):format(
      lit(cjson.encode({ sub = c.ceo, role = "authenticated" })))
    local err = h.refuses("42501", as_ceo .. " update agentflow.tasks set status = 'assigned' where id = " .. lit(id))
    assert.matches("moves through the task workflow", err.raw, 1, true)
    -- with the workflow's mark, a move outside the machine is still refused
    h.refuses("23514", as_ceo .. " select set_config('strata.task_move', 'on', false);"
      .. " update agentflow.tasks set status = 'completed' where id = " .. lit(id))
    assert.equal("backlog", status(id))
  end)

  it("moves through the route as before, with its event", function()
    local a = F.agent(c)
    local id = F.task(c)
    local ceo = F.token("--sub " .. c.ceo)
    local code, task = F.post(server.port, ceo, "/v1/agentflow/tasks/" .. id .. "/transition", { to = "assigned",
      agent_id = a })
    assert.equal(200, code, cjson.encode(task))
    assert.equal("assigned", task.status)
    assert.same({ "task_assigned" }, (F.task_events(id)))
  end)
end)

describe("agentflow task moves with rest_rls on #server", function()
  local server

  setup(function()
    server = srv.start({ STRATA_JWT_SECRET = F.SECRET, STRATA_REST_RLS = "true" })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 10)), server.log())
  end)

  teardown(function()
    server.stop()
    server.cleanup()
  end)

  it("moves a task as the authenticated role through the workflow, whose transaction the trigger lets through", function()
    local c = F.company()
    local a = F.agent(c)
    local id = F.task(c, { status = "assigned", agent = a })
    local code, task = F.post(server.port, F.agent_token(a), "/v1/agentflow/tasks/" .. id .. "/transition",
      { to = "in_progress" })
    assert.equal(200, code, cjson.encode(task))
    assert.equal("in_progress", h.scalar("select status from agentflow.tasks where id = " .. lit(id)))
    code, task = F.post(server.port, F.agent_token(a), "/v1/agentflow/tasks/" .. id .. "/transition",
      { to = "assigned" })
    assert.equal(409, code, cjson.encode(task))
  end)
end)
