-- Versioned documents (seed 003; sql/152): a new version keeps the id,
-- gets a new createdAt, version_number + 1 and its parent version; revert
-- and applied suggestions make new versions.  Through /rest/v1.
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")
local F = require("fixtures.flows")

local lit = h.lit

describe("document versions #server", function()
  local server, uid, api

  setup(function()
    server = srv.start({ STRATA_JWT_SECRET = F.SECRET })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 10)), server.log())
    uid = h.user()
    api = srv.rest_client(server.port, F.token("--sub " .. uid))
  end)

  teardown(function()
    server.stop()
    server.cleanup()
  end)

  local function versions(id)
    return h.query(([[select version_number as n, "createdAt"::text as at, parent_version_id as parent,
      "parentCreatedAt"::text as parent_at, content from public."Document" where id = %s order by version_number]])
      :format(lit(id)))
  end

  it("gives a new version the same id, a later createdAt, version_number + 1 and its parent version", function()
    local code, rows = api.post("Document", { title = "Plan", content = "one", user_id = uid })
    assert.equal(201, code, cjson.encode(rows))
    local id = rows[1].id
    assert.equal(1, rows[1].version_number)
    for _, text in ipairs({ "two", "three" }) do
      code, rows = api.post("Document", { id = id, title = "Plan", content = text, user_id = uid, version_number = 99 })
      assert.equal(201, code, cjson.encode(rows))
    end
    local v = versions(id)
    assert.equal(3, #v)
    assert.same({ "1", "2", "3" }, { v[1].n, v[2].n, v[3].n })
    assert.is_nil(v[1].parent)
    assert.same({ id, v[1].at }, { v[2].parent, v[2].parent_at })
    assert.same({ id, v[2].at }, { v[3].parent, v[3].parent_at })
    assert.is_true(v[1].at < v[2].at and v[2].at < v[3].at)
  end)

  it("numbers versions written in one transaction one after the other", function()
    local id = h.uuid()
    h.accepts(([[insert into public."Document"(id, title, content, user_id) values (%s, 't', 'a', %s);
      insert into public."Document"(id, title, content, user_id) values (%s, 't', 'b', %s);]]):format(
      lit(id), lit(uid), lit(id), lit(uid)))
    local v = versions(id)
    assert.same({ "1", "2" }, { v[1].n, v[2].n })
    assert.equal(v[1].at, v[2].parent_at)
  end)

  it("reverts by making a new version equal to an older one", function()
    local _, rows = api.post("Document", { title = "Notes", content = "first", user_id = uid })
    local id = rows[1].id
    api.post("Document", { id = id, title = "Notes", content = "second", user_id = uid })
    local code, doc = api.rpc("revert_document", { p_document_id = id, p_version_number = 1 })
    assert.equal(200, code, cjson.encode(doc))
    assert.equal(3, doc.version_number)
    assert.equal("first", doc.content)
    assert.same({ updateType = "revert", revertedTo = 1 }, doc.metadata)
    assert.equal(3, #versions(id))
  end)

  it("refuses a new version of another user's document", function()
    local _, rows = api.post("Document", { title = "Mine", content = "x", user_id = uid })
    local other = h.user()
    local code = srv.rest_client(server.port, F.token("--sub " .. other)).post("Document",
      { id = rows[1].id, title = "Mine", content = "defaced", user_id = other })
    assert.equal(403, code)
    assert.equal(1, #versions(rows[1].id))
  end)

  it("applies a suggestion as a new version and records which version it produced", function()
    local _, rows = api.post("Document", { title = "Essay", content = "The quick brown fox.", user_id = uid })
    local doc = rows[1]
    local code, sug = api.post("Suggestion", { documentId = doc.id, documentCreatedAt = doc.createdAt,
      originalText = "quick", suggestedText = "slow", user_id = uid })
    assert.equal(201, code, cjson.encode(sug))
    local new
    code, new = api.rpc("apply_suggestion", { p_suggestion_id = sug[1].id })
    assert.equal(200, code, cjson.encode(new))
    assert.equal("The slow brown fox.", new.content)
    assert.equal(2, new.version_number)
    local s = h.query(([[select "isResolved"::text as done, "resolvedVersionCreatedAt" = %s as points from public."Suggestion"
      where id = %s]]):format(("(select \"createdAt\" from public.\"Document\" where id = %s and version_number = 2)")
      :format(lit(doc.id)), lit(sug[1].id)))[1]
    assert.same({ done = "true", points = "t" }, s)
    code = api.rpc("apply_suggestion", { p_suggestion_id = sug[1].id })
    assert.equal(400, code)
    assert.equal(2, #versions(doc.id))
  end)
end)
