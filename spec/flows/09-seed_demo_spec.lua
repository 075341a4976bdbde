-- scripts/db seed-demo: AgentFlow's demo data (sql/demo/agentflow.sql),
-- applied on demand, again without change; an agent of it claims a task.
local h = require("helpers")
local srv = require("server_helpers")
local F = require("fixtures.flows")

local function seed()
  local p = assert(io.popen(("DATABASE_URL=%s scripts/db seed-demo 2>&1; echo \"status=$?\""):format(srv.quote(h.url))))
  local out = p:read("a")
  p:close()
  return tonumber(out:match("status=(%d+)")), out
end

local COUNTS = [[select (select count(*) from agentflow.agents where workspace_id = 'd0000000-0000-4000-8000-000000000010')
  || '/' || (select count(*) from agentflow.wiki_entries where workspace_id = 'd0000000-0000-4000-8000-000000000010' and is_current)
  || '/' || (select count(*) from agentflow.tasks where project_id = 'd0000000-0000-4000-8000-000000000020')]]

describe("scripts/db seed-demo #server", function()
  it("inserts the demo CEO, workspace, agents, wiki categories and tasks, and changes nothing the second time", function()
    local st, out = seed()
    assert.equal(0, st, out)
    assert.matches("agent token:", out)
    assert.equal("6/4/3", h.scalar(COUNTS))
    st, out = seed()
    assert.equal(0, st, out)
    assert.equal("6/4/3", h.scalar(COUNTS))
  end)

  it("lets the demo developer claim the P0 task", function()
    -- (the suite runs this file twice on one database: the first run claimed it)
    h.accepts("update agentflow.tasks set status = 'backlog', assigned_agent_id = null "
      .. "where id = 'd0000000-0000-4000-8000-000000000401'")
    local server = srv.start({ STRATA_JWT_SECRET = F.SECRET })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 10)), server.log())
    local code, task = F.post(server.port, F.agent_token("d0000000-0000-4000-8000-000000000201"), "/v1/agentflow/tasks/claim")
    server.stop()
    server.cleanup()
    assert.equal(200, code)
    assert.equal("Set up continuous integration", task.title)
  end)
end)
