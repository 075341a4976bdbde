-- The REST catalog follows schema changes without a reload, and
-- POST /admin/policy/explain shows which policy decides and the SQL it gives.
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")

local SECRET = "catalog-spec-secret"

local function token(role, sub)
  return srv.token(SECRET, ("--sub %s --role %s"):format(sub or h.uuid(), role))
end

describe("REST catalog and policy explain #server", function()
  local server, service

  setup(function()
    -- A function of another exposed schema that shares a name rpc.lua lists
    -- bare (public.get_user_role, signed-in users): that entry is not its.
    h.accepts([[create or replace function orchestrator.get_user_role() returns text
      language sql stable as $$ select 'orchestrator' $$]])
    server = srv.start({ STRATA_JWT_SECRET = SECRET })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 10)), server.log())
    service = { Authorization = "Bearer " .. token("service_role"), ["Content-Type"] = "application/json" }
  end)

  teardown(function()
    assert.equal(0, server.stop(), server.log())
    server.cleanup()
    h.exec("drop function if exists orchestrator.get_user_role()")
  end)

  it("serves a table created after the server started, without a reload", function()
    local name = "catalog_spec_" .. h.uuid():sub(1, 8)
    -- Read the catalog once so that it is cached.
    assert.equal(404, (srv.http(server.port, "GET", "/rest/v1/" .. name, nil, service)))
    h.accepts(("create table public.%s (id int primary key, label text); insert into public.%s values (1, 'one')")
      :format(name, name))
    local code, body
    for _ = 1, 100 do
      code, body = srv.http(server.port, "GET", "/rest/v1/" .. name .. "?select=id,label", nil, service)
      if code == 200 then break end
      srv.sleep(0.05)
    end
    h.accepts("drop table public." .. name)
    assert.equal(200, code, body)
    assert.same({ { id = 1, label = "one" } }, cjson.decode(body))
  end)

  it("explains a filter policy: the file, the answer and the SQL predicate", function()
    local uid = h.uuid()
    local code, body = srv.http(server.port, "POST", "/admin/policy/explain",
      cjson.encode({ role = "authenticated", uid = uid, table = "Chat", action = "select" }), service)
    assert.equal(200, code, body)
    local doc = cjson.decode(body)
    assert.equal("policies/public/Chat.lua", doc.file)
    assert.same({ user_id = uid }, doc.decision)
    assert.equal('("user_id" = $1)', doc.predicate)
    assert.same({ uid }, doc.params)
  end)

  it("explains a denial and a table without policy", function()
    local _, body = srv.http(server.port, "POST", "/admin/policy/explain",
      cjson.encode({ role = "anon", table = "Chat", action = "select" }), service)
    local doc = cjson.decode(body)
    assert.is_false(doc.decision)
    assert.equal("no row", doc.effect)
    _, body = srv.http(server.port, "POST", "/admin/policy/explain",
      cjson.encode({ role = "authenticated", uid = h.uuid(), table = "strata_reloads" }), service)
    doc = cjson.decode(body)
    assert.equal("none", doc.decision)
  end)

  it("lists the columns the policy hides from the imagined caller", function()
    local _, body = srv.http(server.port, "POST", "/admin/policy/explain",
      cjson.encode({ role = "authenticated", uid = h.uuid(), schema = "agentflow", table = "agents" }), service)
    assert.same({ "api_key_hash" }, cjson.decode(body).hidden_columns)
    _, body = srv.http(server.port, "POST", "/admin/policy/explain",
      cjson.encode({ role = "service_role", schema = "agentflow", table = "agents" }), service)
    assert.equal(cjson.null, cjson.decode(body).hidden_columns)
  end)

  it("explains an rpc decision", function()
    local _, body = srv.http(server.port, "POST", "/admin/policy/explain",
      cjson.encode({ role = "anon", ["function"] = "purge_old_activity_logs", args = {} }), service)
    assert.is_false(cjson.decode(body).allowed)
  end)

  it("decides an rpc as /rest/v1/rpc does: a bare name in rpc.lua is the public schema's function only", function()
    local uid = h.uuid()
    local user = { Authorization = "Bearer " .. token("authenticated", uid) }
    local function explain(schema)
      local code, body = srv.http(server.port, "POST", "/admin/policy/explain",
        cjson.encode({ role = "authenticated", uid = uid, schema = schema, ["function"] = "get_user_role" }), service)
      assert.equal(200, code, body)
      return cjson.decode(body)
    end
    local doc = explain("public")
    assert.equal("get_user_role", doc.entry)
    assert.is_true(doc.allowed)
    local code, body = srv.http(server.port, "GET", "/rest/v1/rpc/get_user_role", nil, user)
    assert.equal(200, code, body)
    doc = explain("orchestrator")
    assert.equal("*", doc.entry, "rpc.lua's catch-all decides, not the public function's entry")
    assert.is_false(doc.allowed)
    user["Accept-Profile"] = "orchestrator"
    code, body = srv.http(server.port, "GET", "/rest/v1/rpc/get_user_role", nil, user)
    assert.equal(403, code, body)
    assert.equal("42501", cjson.decode(body).code)
    user.Authorization = "Bearer " .. token("service_role")
    code, body = srv.http(server.port, "GET", "/rest/v1/rpc/get_user_role", nil, user)
    assert.equal(200, code, body)
    assert.equal("orchestrator", cjson.decode(body))
  end)

  it("answers only the service_role", function()
    local code = srv.http(server.port, "POST", "/admin/policy/explain", cjson.encode({ table = "Chat" }),
      { Authorization = "Bearer " .. token("authenticated"), ["Content-Type"] = "application/json" })
    assert.equal(403, code)
  end)
end)
