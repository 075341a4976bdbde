-- AgentFlow wiki versions (lua/routes/agentflow_wiki.lua, sql/154): an
-- edit of an approved entry is a new draft version of the same slug,
-- approval makes it the one current version, search finds current entries.
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")
local F = require("fixtures.flows")
local af = require("fixtures.agentflow")

local lit = h.lit

describe("agentflow wiki #server", function()
  local server, port, c, cto, cto_tok, ceo, v1

  setup(function()
    server = srv.start({ STRATA_JWT_SECRET = F.SECRET })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 10)), server.log())
    port = server.port
    c = F.company()
    cto, v1 = h.uuid(), h.uuid()
    h.accepts(([[insert into agentflow.agents(id, workspace_id, agent_level, agent_code, name, role_title, api_key_hash)
        values (%s, %s, 'organization', 'cto', 'Ada', 'CTO', %s);
      insert into agentflow.wiki_entries(id, workspace_id, proposed_by_agent_id, status, title, slug, content, approved_by,
        approved_at) values (%s, %s, %s, 'approved', 'Token rotation', 'token-rotation', 'Rotate refresh tokens daily', %s, now());
    ]]):format(lit(cto), lit(c.workspace), lit(af.HASH), lit(v1), lit(c.workspace), lit(cto), lit(c.ceo)))
    cto_tok = F.agent_token(cto)
    ceo = F.token("--sub " .. c.ceo)
  end)

  teardown(function()
    server.stop()
    server.cleanup()
  end)

  local function entries()
    return h.query(([[select version, status, is_current::text as cur, parent_entry_id as parent, content
      from agentflow.wiki_entries where slug = 'token-rotation' and workspace_id = %s order by version]]):format(lit(c.workspace)))
  end

  it("makes an edit of an approved entry a new draft version of the same slug, seen by its proposer only", function()
    local code, v2 = F.post(port, cto_tok, "/v1/agentflow/wiki/" .. v1 .. "/versions", { content = "Rotate refresh tokens hourly" })
    assert.equal(201, code, cjson.encode(v2))
    assert.same({ version = 2, status = "draft", slug = "token-rotation", parent_entry_id = v1 },
      { version = v2.version, status = v2.status, slug = v2.slug, parent_entry_id = v2.parent_entry_id })
    local api = srv.rest_client(port, ceo, { ["Accept-Profile"] = "agentflow" })
    local _, rows = api.get("wiki_entries?slug=eq.token-rotation&select=version")
    assert.same({ { version = 1 } }, rows)
    assert.equal("draft", h.scalar("select content->>'status' from agentflow.events where type = 'wiki_contribution' "
      .. "and content->>'entryId' = " .. lit(v2.id)))
  end)

  it("approves a submitted version, which becomes the slug's only current version", function()
    local v2 = h.scalar("select id from agentflow.wiki_entries where slug = 'token-rotation' and version = 2 "
      .. "and workspace_id = " .. lit(c.workspace))
    assert.equal(403, (F.post(port, cto_tok, "/v1/agentflow/wiki/" .. v2 .. "/approve")))
    assert.equal(404, (F.post(port, ceo, "/v1/agentflow/wiki/" .. v2 .. "/approve"))) -- a draft is its proposer's
    assert.equal(200, (F.post(port, cto_tok, "/v1/agentflow/wiki/" .. v2 .. "/submit")))
    local code, e = F.post(port, ceo, "/v1/agentflow/wiki/" .. v2 .. "/approve")
    assert.equal(200, code, cjson.encode(e))
    assert.equal(c.ceo, e.approved_by)
    assert.same({
      { version = "1", status = "approved", cur = "false", content = "Rotate refresh tokens daily" },
      { version = "2", status = "approved", cur = "true", parent = v1, content = "Rotate refresh tokens hourly" },
    }, entries())
    code, e = F.post(port, ceo, "/v1/agentflow/wiki/" .. v2 .. "/approve")
    assert.equal(409, code)
    assert.same({ from = "approved", to = "approved" }, e.details)
  end)

  it("rejects a submitted version with its reason", function()
    local code, v3 = F.post(port, cto_tok, "/v1/agentflow/wiki/" .. v1 .. "/versions", { content = "Never rotate", submit = true })
    assert.equal(201, code, cjson.encode(v3))
    assert.equal(3, v3.version)
    assert.equal(400, (F.post(port, ceo, "/v1/agentflow/wiki/" .. v3.id .. "/reject", {})))
    local e
    code, e = F.post(port, ceo, "/v1/agentflow/wiki/" .. v3.id .. "/reject", { reason = "unsafe" })
    assert.equal(200, code, cjson.encode(e))
    assert.same({ "rejected", "unsafe" }, { e.status, e.rejection_reason })
  end)

  it("searches the current approved entries (rpc agentflow.search_wiki) and counts views", function()
    local api = srv.rest_client(port, cto_tok, { ["Content-Profile"] = "agentflow" })
    local code, rows = api.rpc("search_wiki", { p_query = "rotate tokens" })
    assert.equal(200, code, cjson.encode(rows))
    assert.equal(1, #rows)
    assert.equal("Rotate refresh tokens hourly", rows[1].content)
    code, rows = api.rpc("search_wiki", { p_query = "daily" })
    assert.same({}, rows) -- version 1 is no longer current
    local e
    for i = 1, 2 do
      code, e = srv.rest(port, "GET", "/v1/agentflow/wiki/" .. v1, nil, { Authorization = "Bearer " .. cto_tok })
      assert.equal(200, code)
      assert.equal(i, e.view_count)
      assert.is_string(e.last_viewed_at)
    end
  end)
end)
