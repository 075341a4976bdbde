-- Soft deletes of AgentFlow (policies' soft_delete, sql/155): DELETE
-- through /rest/v1 stamps deleted_at, reads hide those rows unless a
-- filter asks for them, and the seed's ON DELETE rules hold.
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")
local F = require("fixtures.flows")

local lit = h.lit

describe("agentflow soft deletes #server", function()
  local server, c, api

  setup(function()
    server = srv.start({ STRATA_JWT_SECRET = F.SECRET })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 10)), server.log())
    c = F.company()
    api = srv.rest_client(server.port, F.token("--sub " .. c.ceo), { ["Accept-Profile"] = "agentflow",
      ["Content-Profile"] = "agentflow" })
  end)

  teardown(function()
    server.stop()
    server.cleanup()
  end)

  it("stamps deleted_at on DELETE and hides the row unless deleted_at is filtered on", function()
    local id = F.task(c)
    local code, rows = api.delete("tasks?id=eq." .. id)
    assert.equal(200, code, cjson.encode(rows))
    assert.equal(1, #rows)
    assert.is_string(rows[1].deleted_at)
    assert.equal("1", h.scalar("select count(*) from agentflow.tasks where deleted_at is not null and id = " .. lit(id)))
    code, rows = api.get("tasks?id=eq." .. id)
    assert.same({ 200, {} }, { code, rows })
    code, rows = api.get("tasks?id=eq." .. id .. "&deleted_at=not.is.null")
    assert.equal(200, code)
    assert.equal(id, rows[1].id)
    -- deleting it again changes nothing
    code, rows = api.delete("tasks?id=eq." .. id)
    assert.same({ 200, {} }, { code, rows })
    -- an agent, whose policy reads live rows only, does not get it even when asking
    local a = F.agent(c)
    local agent = srv.rest_client(server.port, F.agent_token(a), { ["Accept-Profile"] = "agentflow" })
    code, rows = agent.get("tasks?id=eq." .. id .. "&deleted_at=not.is.null")
    assert.same({ 200, {} }, { code, rows })
  end)

  it("hides a soft-deleted child in an embed unless the embed's filter asks for it", function()
    local c2 = F.company()
    local ceo2 = srv.rest_client(server.port, F.token("--sub " .. c2.ceo), { ["Accept-Profile"] = "agentflow",
      ["Content-Profile"] = "agentflow" })
    local live, gone = F.task(c2), F.task(c2)
    assert.equal(200, (ceo2.delete("tasks?id=eq." .. gone)))
    local code, rows = ceo2.get("projects?select=id,tasks(id)&id=eq." .. c2.project)
    assert.equal(200, code, cjson.encode(rows))
    assert.same({ { id = c2.project, tasks = { { id = live } } } }, rows)
    code, rows = ceo2.get("projects?select=id,tasks(id)&tasks.deleted_at=not.is.null&id=eq." .. c2.project)
    assert.equal(200, code, cjson.encode(rows))
    assert.same({ { id = c2.project, tasks = { { id = gone } } } }, rows)
    -- !inner: a parent whose only children are deleted drops out
    assert.equal(200, (ceo2.delete("tasks?id=eq." .. live)))
    code, rows = ceo2.get("projects?select=id,tasks!inner(id)&id=eq." .. c2.project)
    assert.same({ 200, {} }, { code, rows })
  end)

  it("puts a deleted agent's open tasks back in the backlog, unassigned", function()
    local a = F.agent(c)
    local open, done = F.task(c, { status = "in_progress", agent = a }), F.task(c, { status = "completed", agent = a })
    assert.equal(200, (api.delete("agents?id=eq." .. a)))
    assert.same({ status = "backlog" }, h.query("select status, assigned_agent_id from agentflow.tasks where id = " .. lit(open))[1])
    assert.equal(a, h.scalar("select assigned_agent_id from agentflow.tasks where id = " .. lit(done)))
  end)

  it("takes a project's agents, tasks and wiki entries, and a workspace's projects and agents, with it", function()
    local a, t = F.agent(c), F.task(c)
    local w = h.uuid()
    h.accepts(([[insert into agentflow.wiki_entries(id, workspace_id, project_id, title, slug, content)
      values (%s, %s, %s, 'Notes', %s, 'x')]]):format(lit(w), lit(c.workspace), lit(c.project), lit("notes-" .. w:sub(1, 8))))
    assert.equal(200, (api.delete("projects?id=eq." .. c.project)))
    for _, q in ipairs({ "agents where id = " .. lit(a), "tasks where id = " .. lit(t), "wiki_entries where id = " .. lit(w) }) do
      assert.equal("t", h.scalar("select deleted_at = (select deleted_at from agentflow.projects where id = "
        .. lit(c.project) .. ") from agentflow." .. q))
    end
    local org = h.uuid()
    h.accepts(([[insert into agentflow.agents(id, workspace_id, agent_level, agent_code, name, role_title, api_key_hash)
      values (%s, %s, 'organization', 'cto', 'Ada', 'CTO', %s)]]):format(lit(org), lit(c.workspace),
      lit(require("fixtures.agentflow").HASH)))
    assert.equal(200, (api.delete("workspaces?id=eq." .. c.workspace)))
    assert.is_string(h.scalar("select deleted_at from agentflow.agents where id = " .. lit(org)))
    -- soft: the row is still there
    assert.equal("1", h.scalar("select count(*) from agentflow.workspaces where id = " .. lit(c.workspace)))
  end)
end)
