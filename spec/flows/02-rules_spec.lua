-- The workflow rule files (lua/rules/*.lua) change while the server runs:
-- the next request follows them, without a restart; a rule file whose
-- examples fail is not swapped in.
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")
local F = require("fixtures.flows")

local lit = h.lit

describe("workflow rules changed at run time #server", function()
  local server, dir, c, ceo

  setup(function()
    dir = srv.lua_dir()
    server = srv.start({ STRATA_JWT_SECRET = F.SECRET, STRATA_LUA_DIR = dir, STRATA_RELOAD_WATCH = "false" })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 10)), server.log())
    c = F.company()
    ceo = F.token("--sub " .. c.ceo)
  end)

  teardown(function()
    server.stop()
    server.cleanup()
    os.execute("rm -rf " .. srv.quote(dir))
    -- the next server writes its own machine at its first step; until then, seed 004's
    h.accepts("delete from agentflow_system.task_transitions where from_status = 'backlog' and to_status = 'completed'")
  end)

  local function complete(agent)
    local id = F.task(c, { status = "in_progress", agent = agent })
    return F.post(server.port, F.agent_token(agent), "/v1/agentflow/tasks/" .. id .. "/transition", { to = "completed" })
  end

  local function trust(agent) return h.scalar("select trust_score from agentflow.agents where id = " .. lit(agent)) end

  it("applies a new trust formula to the next event", function()
    local a = F.agent(c)
    assert.equal(200, (complete(a)))
    assert.equal("52.00", trust(a))
    srv.write(dir .. "/rules/trust.lua", [[
      return {
        score = function(facts, metrics, action) return facts.trust_score + 10 * metrics.tasksCompleted end,
        examples = { { fn = "score", args = { { trust_score = 1 }, { tasksCompleted = 2 }, {} }, expect = 21 } },
      }]])
    assert.equal(200, (srv.http(server.port, "POST", "/admin/reload")))
    assert.equal(200, (complete(a)))
    assert.equal("72.00", trust(a)) -- 52 + 10 * 2 completed tasks
    assert.equal("72", h.scalar("select content->>'newScore' from agentflow.events where type = 'trust_score_changed' "
      .. "and " .. lit(a) .. " = any(mentions) order by created_at desc limit 1"))
  end)

  it("bounds the score to 0..100 whatever the formula answers", function()
    srv.write(dir .. "/rules/trust.lua", "return { score = function() return 1000 end }")
    assert.equal(200, (srv.http(server.port, "POST", "/admin/reload")))
    local a = F.agent(c)
    assert.equal(200, (complete(a)))
    assert.equal("100.00", trust(a))
  end)

  it("follows a new status machine at once", function()
    local id = F.task(c)
    assert.equal(409, (F.post(server.port, ceo, "/v1/agentflow/tasks/" .. id .. "/transition", { to = "completed" })))
    local text = assert(io.open("lua/rules/transitions.lua")):read("a")
    text = text:gsub("backlog = { assigned = true, cancelled = true }", "backlog = { assigned = true, cancelled = true, completed = true }")
    -- its own example said the opposite
    text = text:gsub('args = { "backlog", "completed" }, expect = false', 'args = { "backlog", "completed" }, expect = true')
    srv.write(dir .. "/rules/transitions.lua", text)
    assert.equal(200, (srv.http(server.port, "POST", "/admin/reload")))
    assert.equal(200, (F.post(server.port, ceo, "/v1/agentflow/tasks/" .. id .. "/transition", { to = "completed" })))
    -- the database's machine (sql/156's trigger) followed the file
    assert.equal("1", h.scalar("select count(*) from agentflow_system.task_transitions "
      .. "where from_status = 'backlog' and to_status = 'completed'"))
  end)

  it("keeps the previous rules when a rule file's examples fail", function()
    srv.write(dir .. "/rules/status.lua", [[
      return {
        next = function(status, trust) return "terminated" end,
        examples = { { fn = "next", args = { "active", 90 }, expect = "active" } },
      }]])
    local code, body = srv.http(server.port, "POST", "/admin/reload")
    assert.equal(422, code)
    assert.matches("rules/status.lua: example 1: expected active, got terminated", cjson.decode(body).error)
    local a = F.agent(c)
    assert.equal(200, (complete(a)))
    assert.equal("active", h.scalar("select status from agentflow.agents where id = " .. lit(a)))
  end)
end)
