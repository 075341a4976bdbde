-- strata.db: non-blocking queries from handlers, type mapping, errors with
-- SQLSTATE, transactions, the pool's limits and its recovery.
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")

local ROUTES = [===[
local db = require("strata.db")
local cjson = require("cjson")
return {
  { method = "GET", path = "/v1/db/types", handler = function()
      local rows = assert(db.query([==[select 1::int2 as i2, 7::int4 as i4, 9007199254740993::int8 as i8,
        1.5::float4 as f4, 2.5::float8 as f8, 2.25::numeric as n, 2.25::numeric::text as n_text,
        true as b, false as bf, '{"a":[1,2],"b":null}'::jsonb as jb, '[1,"x"]'::json as js,
        array[1,2,3] as ai, array['a,b','c"d',null] as at, array[[1,2],[3,4]] as a2,
        null::text as nul, '2026-01-01T00:00:00Z'::timestamptz as ts,
        'b0f1a4c2-5d8e-4b7a-9c3d-2e1f0a9b8c7d'::uuid as u, 'héllo'::text as t]==]))
      local r = rows[1]
      return 200, { r = r, i8_is_integer = math.type(r.i8) == "integer", i8_exact = r.i8 == 9007199254740993,
                    nul_is_null = r.nul == cjson.null, f4_type = math.type(r.f4), n_type = math.type(r.n) }
    end },
  { method = "POST", path = "/v1/db/echo", handler = function(req)
      local rows, err = db.query("select $1::text as s, $2::int as i, $3::bool as b, $4::jsonb as j, $5::text as n, $6::float8 as f",
        req.json.s, req.json.i, req.json.b, req.json.j, nil, req.json.f)
      if not rows then return 400, err end
      return 200, rows[1]
    end },
  { method = "POST", path = "/v1/db/raw", handler = function(req)
      local rows, err = db.query(req.json.sql, table.unpack(req.json.params or {}))
      if not rows then return 422, err end
      return 200, rows
    end },
  { method = "POST", path = "/v1/db/tx", handler = function(req)
      local mode = req.json.mode
      local ok, res, err = pcall(db.transaction, function(tx)
        assert(tx.query("insert into strata_spec_tx(tag) values ($1)", req.json.tag))
        if mode == "raise" then error("boom") end
        if mode == "nil_err" then return nil, { code = "custom", message = "refused by the rule" } end
        local who = assert(tx.query("select current_setting('request.jwt.claims', true) as claims, auth.role() as role, current_user as sql_role"))
        return who[1]
      end)
      -- strata.pg.query: a statement without the request's settings.
      local after = assert(require("strata.pg").query("select coalesce(current_setting('request.jwt.claims', true), '') as claims"))
      return 200, { ok = ok, res = res, err = err, leaked = after[1].claims }
    end },
  { method = "GET", path = "/v1/db/whoami", handler = function()
      local rows = assert(db.query([==[select auth.uid()::text as uid, auth.role() as role, current_user as sql_role,
        current_setting('request.jwt.claims', true)::jsonb ->> 'sub' as claims_sub,
        current_setting('request.jwt.claim.sub', true) as legacy_sub,
        current_setting('request.method', true) as method, current_setting('request.path', true) as path,
        current_setting('request.headers', true)::jsonb ->> 'x-probe' as probe]==]))
      local after = assert(require("strata.pg").query(
        "select coalesce(current_setting('request.jwt.claims', true), '') as claims"))
      rows[1].leaked = after[1].claims
      return 200, rows[1]
    end },
  { method = "GET", path = "/v1/db/sleep", handler = function(req)
      local rows = assert(db.query("select pg_sleep($1::float8) is null as slept", tonumber(req.query.s or "0.01")))
      return 200, rows[1]
    end },
  { method = "GET", path = "/v1/db/as_service", handler = function()
      local sql = [==[select auth.role() as role, current_user as sql_role, auth.uid()::text as uid,
        current_setting('request.jwt.claims', true) as claims, current_setting('request.path', true) as path]==]
      local one = assert(db.query_as_service(sql))
      local tx = assert(db.transaction(function(t) return assert(t.query(sql))[1] end, { as_service = true }))
      local caller = assert(db.query(sql))
      return 200, { one = one[1], tx = tx, caller = caller[1] }
    end },
  { method = "GET", path = "/v1/db/pipe/:k/:x", handler = function(req)
      -- The SQL text is new to the connection for each k: its first runs
      -- share a Parse still in flight.
      local rows, err = db.query("select $1::int * 2 as v, $2::text as k /* pipe " .. req.params.k .. " */",
        tonumber(req.params.x), req.params.k)
      if not rows then return 422, err end
      return 200, rows[1]
    end },
  { method = "GET", path = "/v1/db/pipe_fail/:x", handler = function(req)
      local rows, err = db.query("select 1 / ($1::int - $1::int) as v", tonumber(req.params.x))
      if not rows then return 422, err end
      return 200, rows[1]
    end },
  { method = "POST", path = "/v1/db/slow_tx", handler = function(req)
      return 200, assert(db.transaction(function(tx)
        assert(tx.query("insert into strata_spec_tx(tag) values ($1)", req.query.tag))
        assert(tx.query("select pg_sleep(0.5)"))
        assert(tx.query("insert into strata_spec_tx(tag) values ($1)", req.query.tag))
        return { ok = true }
      end))
    end },
  { method = "POST", path = "/v1/db/write", handler = function(req)
      assert(db.query("insert into strata_spec_writes(tag) values ($1)", req.query.tag))
      return 201, { ok = true }
    end },
}
]===]

local SECRET = "db-spec-secret-0123456789abcdef0123"

local function start(env)
  local dir = srv.lua_dir({ ["routes/db.lua"] = ROUTES })
  env = env or {}
  env.STRATA_LUA_DIR = dir
  env.STRATA_JWT_SECRET = env.STRATA_JWT_SECRET or SECRET
  local s = srv.start(env)
  assert.equal(200, (srv.await(s.port, "/ready", 200, 10)), s.log())
  local cleanup = s.cleanup
  s.cleanup = function() cleanup(); os.execute("rm -rf " .. srv.quote(dir)) end
  return s
end

local function post(s, path, doc, headers)
  headers = headers or {}
  headers["Content-Type"] = "application/json"
  local code, body, rheaders = srv.http(s.port, "POST", path, cjson.encode(doc), headers)
  return code, body ~= "" and cjson.decode(body) or nil, rheaders
end

describe("strata.db #server", function()
  local server

  setup(function()
    assert(h.exec("create table if not exists strata_spec_tx (id serial primary key, tag text not null)"))
    -- Its own grants and no RLS: `scripts/db rls` (another spec runs it)
    -- revokes the API roles' privileges on tables without a policy file and
    -- turns row level security on for every table of the exposed schemas.
    assert(h.exec("grant all on strata_spec_tx to anon, authenticated; grant usage on sequence strata_spec_tx_id_seq to anon, authenticated"))
    assert(h.exec("alter table strata_spec_tx disable row level security"))
    server = start()
  end)

  teardown(function()
    assert.equal(0, server.stop(), server.log())
    server.cleanup()
  end)

  it("maps every type to Lua and back to JSON", function()
    local code, body = srv.http(server.port, "GET", "/v1/db/types")
    assert.equal(200, code, body)
    local doc = cjson.decode(body)
    local r = doc.r
    assert.equal(1, r.i2)
    assert.equal(7, r.i4)
    assert.is_true(doc.i8_is_integer)
    assert.is_true(doc.i8_exact, "int8 stays an exact Lua integer")
    assert.equal("float", doc.f4_type)
    assert.equal(2.5, r.f8)
    assert.equal("float", doc.n_type)
    assert.equal(2.25, r.n)
    assert.equal("2.25", r.n_text)
    assert.is_true(r.b)
    assert.is_false(r.bf)
    assert.same({ a = { 1, 2 }, b = cjson.null }, r.jb)
    assert.same({ 1, "x" }, r.js)
    assert.same({ 1, 2, 3 }, r.ai)
    assert.same({ "a,b", 'c"d', cjson.null }, r.at)
    assert.same({ { 1, 2 }, { 3, 4 } }, r.a2)
    assert.is_true(doc.nul_is_null)
    assert.equal(cjson.null, r.nul)
    assert.equal("2026-01-01 00:00:00+00", r.ts)
    assert.equal("b0f1a4c2-5d8e-4b7a-9c3d-2e1f0a9b8c7d", r.u)
    assert.equal("héllo", r.t)
  end)

  it("passes parameters as values, never as SQL", function()
    local code, doc = post(server, "/v1/db/echo", { s = "'); drop table strata_spec_tx; --", i = 42, b = true, j = { k = { 1, "two" } }, f = 0.125 })
    assert.equal(200, code)
    assert.same({ s = "'); drop table strata_spec_tx; --", i = 42, b = true, j = { k = { 1, "two" } }, n = cjson.null, f = 0.125 }, doc)
    assert.equal("0", h.scalar("select count(*) from strata_spec_tx where false"), "the table is still there")
  end)

  it("stops a handler whose client went away at its next step: its transaction rolls back", function()
    -- The client gives up during pg_sleep; when the statement ends, the
    -- handler does not go on to its second insert and nothing commits.
    local run = tostring(math.random(1, 1e9)) -- the table outlives this run
    os.execute(("curl -s -o /dev/null --max-time 0.1 -X POST 'http://127.0.0.1:%d/v1/db/slow_tx?tag=gone%s' >/dev/null 2>&1")
      :format(server.port, run))
    local log
    for _ = 1, 100 do
      log = server.log()
      if log:find("the client went away", 1, true) then break end
      srv.sleep(0.05)
    end
    assert.matches("handler stopped, the client went away", log)
    assert.equal("0", h.scalar("select count(*) from strata_spec_tx where tag = 'gone" .. run .. "'"))
    -- The worker and the pool go on as before.
    local code = srv.http(server.port, "POST", "/v1/db/slow_tx?tag=stays" .. run)
    assert.equal(200, code)
    assert.equal("2", h.scalar("select count(*) from strata_spec_tx where tag = 'stays" .. run .. "'"))
  end)

  it("runs statements as the service when asked, and as the caller otherwise", function()
    local code, body = srv.http(server.port, "GET", "/v1/db/as_service", nil,
      { Authorization = "Bearer " .. srv.token(SECRET, "--sub 6f1c0d1e-9c1b-4a55-9b7a-0d3a2d9b5e11 --role authenticated") })
    assert.equal(200, code, body)
    local doc = cjson.decode(body)
    for _, k in ipairs({ "one", "tx" }) do
      assert.equal("service_role", doc[k].role, k)
      assert.equal("service_role", doc[k].sql_role, k)
      assert.equal(cjson.null, doc[k].uid, k)
      assert.equal('{"role":"service_role"}', doc[k].claims, k)
      assert.equal("/v1/db/as_service", doc[k].path, k)
    end
    assert.equal("authenticated", doc.caller.sql_role)
    assert.equal("6f1c0d1e-9c1b-4a55-9b7a-0d3a2d9b5e11", doc.caller.uid)
  end)

  it("refuses a string parameter holding a NUL byte", function()
    local code, doc = post(server, "/v1/db/echo", { s = "a\0b", i = 1, b = false, j = {}, f = 1 })
    assert.equal(400, code)
    assert.equal("22021", doc.code)
    assert.matches("NUL", doc.message)
  end)

  it("answers errors with their SQLSTATE, message, detail and hint", function()
    local slug = "s-" .. h.uuid():sub(1, 8)
    -- anon may not create organizations (row level security, sql/120);
    -- service_role may.
    local code, doc = post(server, "/v1/db/raw", { sql = "insert into organizations(name, slug) values ('a', $1)", params = { slug } })
    assert.equal(422, code)
    assert.equal("42501", doc.code)
    local function svc(path, d)
      return post(server, path, d, { Authorization = "Bearer " .. srv.token(SECRET, "--role service_role") })
    end
    code, doc = svc("/v1/db/raw", { sql = "insert into organizations(name, slug) values ('a', $1)", params = { slug } })
    assert.equal(200, code)
    code, doc = svc("/v1/db/raw", { sql = "insert into organizations(name, slug) values ('a', $1)", params = { slug } })
    assert.equal(422, code)
    assert.equal("23505", doc.code)
    assert.matches("duplicate key", doc.message)
    assert.matches("already exists", doc.detail)
    code, doc = svc("/v1/db/raw", { sql = "insert into organizations(name, slug) values ('a', 'Not A Slug')" })
    assert.equal("23514", doc.code)
    code, doc = svc("/v1/db/raw", { sql = "insert into workspaces(organization_id, name) values ($1, 'w')", params = { h.uuid() } })
    assert.equal("23503", doc.code)
    code, doc = post(server, "/v1/db/raw", { sql = "selec 1" })
    assert.equal("42601", doc.code)
  end)

  it("commits a transaction that returns, with the caller's identity set inside it only", function()
    local tag = h.uuid()
    local code, doc = post(server, "/v1/db/tx", { tag = tag, mode = "ok" })
    assert.equal(200, code)
    assert.is_true(doc.ok)
    assert.equal('{"role":"anon"}', doc.res.claims)
    assert.equal("anon", doc.res.role)
    assert.equal("anon", doc.res.sql_role)
    assert.equal("", doc.leaked, "the settings do not outlive the transaction")
    assert.equal("1", h.scalar("select count(*) from strata_spec_tx where tag = " .. h.lit(tag)))
  end)

  it("gives a single statement the caller's claims and PostgREST's request settings, for that statement only", function()
    local uid = h.uuid()
    local tok = srv.token(SECRET, "--sub " .. uid .. " --role authenticated")
    local code, body = srv.http(server.port, "GET", "/v1/db/whoami", nil,
      { Authorization = "Bearer " .. tok, ["X-Probe"] = "it's (me), \"quoted\"" })
    assert.equal(200, code, body)
    local doc = cjson.decode(body)
    assert.equal(uid, doc.uid)
    assert.equal("authenticated", doc.role)
    assert.equal("authenticated", doc.sql_role, "the statement runs as the API role")
    assert.equal(uid, doc.claims_sub)
    assert.equal(uid, doc.legacy_sub)
    assert.equal("GET", doc.method)
    assert.equal("/v1/db/whoami", doc.path)
    assert.equal("it's (me), \"quoted\"", doc.probe)
    assert.equal("", doc.leaked, "the settings end with their statement")
    code, body = srv.http(server.port, "GET", "/v1/db/whoami")
    doc = cjson.decode(body)
    assert.equal(200, code)
    assert.equal("anon", doc.role)
    assert.equal("anon", doc.sql_role)
    assert.equal(cjson.null, doc.uid)
    tok = srv.token(SECRET, "--sub " .. uid .. " --role supabase_admin")
    code, body = srv.http(server.port, "GET", "/v1/db/whoami", nil, { Authorization = "Bearer " .. tok })
    assert.equal(200, code, body)
    assert.equal("authenticated", cjson.decode(body).sql_role, "a role the database does not know is not the session's")
  end)

  it("answers a statement that fails on its first run, and runs it again once the values allow", function()
    local sql = "select 10 / $1::int as x -- " .. h.uuid()
    local code, doc = post(server, "/v1/db/raw", { sql = sql, params = { 0 } })
    assert.equal(422, code)
    assert.equal("22012", doc.code)
    code, doc = post(server, "/v1/db/raw", { sql = sql, params = { 5 } })
    assert.equal(200, code)
    assert.equal(2, doc[1].x)
    local bad = "selec 2 -- " .. h.uuid()
    for _ = 1, 2 do
      code, doc = post(server, "/v1/db/raw", { sql = bad })
      assert.equal("42601", doc.code, "a statement that does not parse is not cached")
    end
  end)

  it("rolls back a transaction that raises, leaving no row behind", function()
    local tag = h.uuid()
    local code, doc = post(server, "/v1/db/tx", { tag = tag, mode = "raise" })
    assert.equal(200, code)
    assert.is_false(doc.ok)
    assert.matches("boom", doc.res)
    assert.equal("0", h.scalar("select count(*) from strata_spec_tx where tag = " .. h.lit(tag)))
  end)

  it("rolls back a transaction that returns nil, err and returns the error", function()
    local tag = h.uuid()
    local code, doc = post(server, "/v1/db/tx", { tag = tag, mode = "nil_err" })
    assert.equal(200, code)
    assert.is_true(doc.ok)
    assert.equal(cjson.null, doc.res or cjson.null)
    assert.same({ code = "custom", message = "refused by the rule" }, doc.err)
    assert.equal("0", h.scalar("select count(*) from strata_spec_tx where tag = " .. h.lit(tag)))
  end)

  it("finishes 200 concurrent handlers on 4 connections", function()
    local s = start({ STRATA_WORKERS = "2", STRATA_DB_POOL_MAX = "2", STRATA_DB_POOL_MIN = "2" })
    local urls = {}
    for i = 1, 200 do
      urls[i] = srv.quote(("http://127.0.0.1:%d/v1/db/sleep?s=0.02&n=%d"):format(s.port, i)) .. " -o /dev/null"
    end
    local p = io.popen("curl -s --no-progress-meter --parallel --parallel-immediate --parallel-max 200 -m 30 -w '%{http_code}\\n' "
      .. table.concat(urls, " "))
    local codes = {}
    for line in p:lines() do codes[line] = (codes[line] or 0) + 1 end
    p:close()
    local _, metrics = srv.http(s.port, "GET", "/metrics")
    s.stop()
    s.cleanup()
    assert.same({ ["200"] = 200 }, codes)
    assert.matches('strata_db_connections{state="open"} 4', metrics)
    assert.matches("strata_db_waits_total [1-9]", metrics)
  end)

  it("keeps each request's answer its own when many share one connection, failures among them", function()
    -- One worker, one connection: concurrent statements follow each other
    -- on it (each its own implicit transaction); a failing one (division
    -- by zero) must not take its neighbours' answers or statements, nor
    -- one with a header that is not UTF-8 (request.headers gets U+FFFD).
    local s = start({ STRATA_WORKERS = "1", STRATA_DB_POOL_MIN = "1", STRATA_DB_POOL_MAX = "1" })
    local k = tostring(math.random(1, 1e9))
    local dir = s.dir .. "/pipe"
    assert(os.execute("mkdir -p " .. srv.quote(dir)))
    local args = {}
    for i = 1, 60 do
      local url
      if i % 5 == 0 then
        url = ("http://127.0.0.1:%d/v1/db/pipe_fail/%d"):format(s.port, i)
      else
        url = ("http://127.0.0.1:%d/v1/db/pipe/%s/%d"):format(s.port, k, i)
      end
      local bad = i % 7 == 0 and " -H $'X-Bad: \xff\xfe'" or ""
      args[#args + 1] = ("%s -o %s/%d -w '%%{http_code}\n'%s"):format(srv.quote(url), dir, i, bad)
    end
    local p = io.popen("bash -c " .. srv.quote("curl -s --parallel --parallel-immediate --parallel-max 60 "
      .. table.concat(args, " --next -s ")) .. " 2>/dev/null")
    p:read("a")
    p:close()
    for i = 1, 60 do
      local f = assert(io.open(("%s/%d"):format(dir, i)))
      local doc = cjson.decode(f:read("a"))
      f:close()
      if i % 5 == 0 then
        assert.equal("22012", doc.code, "request " .. i .. ": division by zero")
      else
        assert.same({ v = 2 * i, k = k }, doc, "request " .. i)
      end
    end
    assert.equal(0, s.stop(), s.log())
    s.cleanup()
  end)

  it("answers 503 with Retry-After when no connection frees up within the wait timeout", function()
    -- (no scheduled jobs: their tick would wait for the one connection too)
    local s = start({ STRATA_WORKERS = "1", STRATA_DB_POOL_MAX = "1", STRATA_DB_WAIT_TIMEOUT_MS = "200",
      STRATA_JOBS_TICK_MS = "0" })
    local slow = io.popen(("curl -s -m 10 -o /dev/null -w '%%{http_code}' 'http://127.0.0.1:%d/v1/db/sleep?s=1.5'"):format(s.port))
    srv.sleep(0.3)
    local code, body, headers = srv.http(s.port, "GET", "/v1/db/sleep?s=0")
    local slow_code = slow:read("a")
    slow:close()
    local _, metrics = srv.http(s.port, "GET", "/metrics")
    s.stop()
    s.cleanup()
    assert.equal("200", slow_code)
    assert.equal(503, code, body)
    assert.equal("pool_timeout", cjson.decode(body).code)
    assert.equal("1", headers["retry-after"])
    assert.matches("strata_db_wait_timeouts_total 1", metrics)
  end)
end)

describe("strata.db across a database restart #server", function()
  local var = os.getenv("STRATA_TEST_VAR_DIR")

  it("answers 503 while the database is down, heals by itself, and loses no acknowledged write", function()
    assert.is_not_nil(var, "needs the embedded test cluster (scripts/test without DATABASE_URL)")
    assert(h.exec("create table if not exists strata_spec_writes (id serial primary key, tag text not null)"))
    -- As strata_spec_tx above: its own grants, RLS off.
    assert(h.exec("grant all on strata_spec_writes to anon, authenticated; "
      .. "grant usage on sequence strata_spec_writes_id_seq to anon, authenticated; "
      .. "alter table strata_spec_writes disable row level security"))
    local secret = "spec-db-down-secret-0123456789abcdef"
    local s = start({ STRATA_WORKERS = "2", STRATA_DB_POOL_MIN = "1", STRATA_DB_POOL_MAX = "2",
      STRATA_JWT_SECRET = secret })
    local service = { Authorization = "Bearer " .. srv.token(secret, "--role service_role") }
    local tag = h.uuid()
    -- Stop the database 0.5 s into the traffic, start it again 1.5 s later.
    os.execute(("(sleep 0.5; STRATA_VAR_DIR=%s scripts/db stop >/dev/null 2>&1; sleep 1.5; "
      .. "STRATA_VAR_DIR=%s scripts/db start >/dev/null 2>&1) &"):format(srv.quote(var), srv.quote(var)))
    local ok2xx, unavailable, rest_unavailable, other = 0, 0, 0, {}
    local t0 = require("socket").gettime()
    while require("socket").gettime() - t0 < 5 do
      local code, body, headers = srv.http(s.port, "POST", "/v1/db/write?tag=" .. tag, "")
      if code >= 200 and code < 300 then
        ok2xx = ok2xx + 1
      elseif code == 503 and cjson.decode(body).code and headers["retry-after"] == "1" then
        unavailable = unavailable + 1
      else
        other[#other + 1] = code .. " " .. body
      end
      -- A REST read answers its own 503 (not a raised error): Retry-After too.
      local rcode, rbody, rheaders = srv.http(s.port, "GET", "/rest/v1/strata_spec_writes?select=id&limit=1", nil, service)
      if rcode == 503 then
        rest_unavailable = rest_unavailable + 1
        if rheaders["retry-after"] ~= "1" then other[#other + 1] = "REST 503 without Retry-After: " .. rbody end
      elseif rcode ~= 200 then
        other[#other + 1] = "REST " .. rcode .. " " .. rbody
      end
      srv.sleep(0.02)
    end
    -- Healed: ready again and writing, without a restart of strata.
    local ready = srv.await(s.port, "/ready", 200, 15)
    local code
    for _ = 1, 100 do
      code = srv.http(s.port, "POST", "/v1/db/write?tag=" .. tag, "")
      if code == 201 then ok2xx = ok2xx + 1 break end
      srv.sleep(0.1)
    end
    local rows = tonumber(h.scalar("select count(*) from strata_spec_writes where tag = " .. h.lit(tag)))
    local _, metrics = srv.http(s.port, "GET", "/metrics")
    assert.equal(0, s.stop(), s.log())
    s.cleanup()
    assert.same({}, other)
    assert.is_true(unavailable > 0, "some requests met the database down")
    assert.is_true(rest_unavailable > 0, "some REST reads met the database down")
    assert.equal(200, ready)
    assert.equal(201, code)
    assert.equal(ok2xx, rows, "every 2xx write is in the table")
    assert.matches("strata_db_reconnects_total [1-9]", metrics)
  end)
end)
