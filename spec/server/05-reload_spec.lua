-- Hot reload: file changes, SIGHUP and /admin/reload swap the scripts in
-- without a restart; scripts that fail to load or check never replace the
-- ones serving; every attempt is recorded; rollback returns to the last
-- good scripts.  And shutdown lets an in-flight request finish.
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")

local function version_route(v)
  return ('return {{ method = "GET", path = "/v1/version", handler = function() return 200, { v = %q } end }}'):format(v)
end

-- Polls /v1/version until it answers v (or 5 s pass); the last answer.
local function await_version(port, v)
  local got
  for _ = 1, 100 do
    local code, body = srv.http(port, "GET", "/v1/version")
    got = code == 200 and cjson.decode(body).v or code
    if got == v then break end
    srv.sleep(0.05)
  end
  return got
end

describe("hot reload #server", function()
  local server, dir

  before_each(function()
    dir = srv.lua_dir({ ["routes/version.lua"] = version_route("one") })
    server = srv.start({ STRATA_LUA_DIR = dir, STRATA_RELOAD_DEBOUNCE_MS = "50" })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 10)), server.log())
  end)

  after_each(function()
    assert.equal(0, server.stop(), server.log())
    server.cleanup()
    os.execute("rm -rf " .. srv.quote(dir))
  end)

  it("swaps in a changed route file without a restart", function()
    assert.equal("one", await_version(server.port, "one"))
    srv.write(dir .. "/routes/version.lua", version_route("two"))
    assert.equal("two", await_version(server.port, "two"))
    local _, body = srv.http(server.port, "GET", "/ready")
    assert.equal(2, cjson.decode(body).lua.generation)
  end)

  it("keeps serving the old scripts when a file fails to load, says why, and recovers once fixed", function()
    srv.write(dir .. "/routes/version.lua", "return {{ method = 'GET', path = '/v1/version', handler = function() return 200, { v = 'x' } end }")
    local body
    for _ = 1, 100 do
      _, body = srv.http(server.port, "GET", "/ready")
      if cjson.decode(body).lua.error then break end
      srv.sleep(0.05)
    end
    local code
    code, body = srv.http(server.port, "GET", "/ready")
    assert.equal(200, code, "serving on the old scripts is still ready")
    local doc = cjson.decode(body)
    assert.equal(1, doc.lua.generation)
    assert.matches("routes/version.lua:1:", doc.lua.error)
    assert.equal("one", await_version(server.port, "one"))
    local _, metrics = srv.http(server.port, "GET", "/metrics")
    assert.matches('strata_lua_reloads_total{result="error"} [1-9]', metrics)
    assert.matches('"msg":"Lua reload failed"', server.log())

    srv.write(dir .. "/routes/version.lua", version_route("fixed"))
    assert.equal("fixed", await_version(server.port, "fixed"))
    _, body = srv.http(server.port, "GET", "/ready")
    assert.is_nil(cjson.decode(body).lua.error)
  end)

  it("refuses scripts whose policy examples fail, and those with a bad policy shape", function()
    srv.write(dir .. "/policies/public/things.lua", [[
      return {
        select = function(ctx) return ctx.role == "authenticated" end,
        examples = { { action = "select", ctx = { role = "anon" }, expect = true } },
      }]])
    local code, body = srv.http(server.port, "POST", "/admin/reload")
    assert.equal(422, code)
    assert.matches("policies/public/things.lua: example 1: expected true, got false", cjson.decode(body).error)
    srv.write(dir .. "/policies/public/things.lua", "return { selekt = function() return true end }")
    code, body = srv.http(server.port, "POST", "/admin/reload")
    assert.equal(422, code)
    assert.matches("'selekt' is not a policy action", cjson.decode(body).error)
    srv.write(dir .. "/policies/public/things.lua", [[
      return {
        select = function(ctx) return ctx.role == "authenticated" end,
        examples = { { action = "select", ctx = { role = "anon" }, expect = false } },
      }]])
    code = srv.http(server.port, "POST", "/admin/reload")
    assert.equal(200, code)
  end)

  it("refuses a validator without a validate function, or whose examples fail", function()
    srv.write(dir .. "/validators/thing.lua", "return { check = function() return true end }")
    local code, body = srv.http(server.port, "POST", "/admin/reload")
    assert.equal(422, code)
    assert.matches("validators/thing.lua: a validator must return a table with a validate function", cjson.decode(body).error)
    srv.write(dir .. "/validators/thing.lua", [[
      return {
        validate = function(v) if type(v) == "number" then return true end return nil, { "not a number" } end,
        examples = { { input = 1, valid = true }, { input = "x", errors = { "not a number" } } },
      }]])
    assert.equal(200, (srv.http(server.port, "POST", "/admin/reload")))
  end)

  it("reloads on SIGHUP", function()
    local s = srv.start({ STRATA_LUA_DIR = dir, STRATA_RELOAD_WATCH = "false" })
    srv.await(s.port, "/ready", 200, 10)
    srv.write(dir .. "/routes/version.lua", version_route("hup"))
    srv.sleep(0.3)
    local before = await_version(s.port, "one")
    os.execute(("pkill -HUP -P %d"):format(s.shell_pid))
    local after = await_version(s.port, "hup")
    s.stop()
    s.cleanup()
    assert.equal("one", before, "without the watch, a change alone does nothing")
    assert.equal("hup", after)
  end)

  it("lists reload attempts, records them in strata_reloads, and rolls back", function()
    local t0 = h.scalar("select now()")
    local count_sql = ("select count(*) from strata_reloads where trigger in ('watch', 'rollback') and at >= %s")
      :format(h.lit(t0))
    srv.write(dir .. "/routes/version.lua", version_route("two"))
    assert.equal("two", await_version(server.port, "two"))
    local code, body = srv.http(server.port, "GET", "/admin/reloads")
    assert.equal(200, code)
    local list = cjson.decode(body)
    assert.equal("ok", list[1].result)
    assert.equal("watch", list[1].trigger)
    assert.equal(2, list[1].generation)
    assert.same({ path = "routes/version.lua", change = "modified" },
      { path = list[1].files[1].path, change = list[1].files[1].change })
    assert.matches("^%x+$", list[1].files[1].hash)
    assert.equal("start", list[#list].trigger)

    code, body = srv.http(server.port, "POST", "/admin/rollback")
    assert.equal(200, code, body)
    assert.equal(1, cjson.decode(body).generation)
    assert.equal("one", await_version(server.port, "one"))

    local rows
    for _ = 1, 50 do
      rows = tonumber(h.scalar(count_sql))
      if rows >= 2 then break end
      srv.sleep(0.1)
    end
    assert.equal(2, rows)
    assert.equal("rollback", h.scalar("select trigger from strata_reloads order by id desc limit 1"))
  end)

  it("answers admin endpoints only on the right methods", function()
    assert.equal(405, (srv.http(server.port, "GET", "/admin/reload")))
    assert.equal(404, (srv.http(server.port, "GET", "/admin/nothing")))
  end)
end)

describe("reload off the workers #server", function()
  it("answers a worker's other requests while POST /admin/reload builds the new scripts", function()
    -- One worker, and scripts whose loading takes a while (a loop at the
    -- top of a route file): the reload builds them twice (validation, then
    -- the worker's generation), on the reload's thread, never the worker's.
    local slow = "local x = 0 for i = 1, 2e7 do x = x + i end\n" .. version_route("slow")
    local dir = srv.lua_dir({ ["routes/version.lua"] = slow })
    local server = srv.start({ STRATA_LUA_DIR = dir, STRATA_WORKERS = "1", STRATA_RELOAD_WATCH = "false" })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 30)), server.log())
    local out = server.dir .. "/reload.out"
    os.execute(("(curl -s -o /dev/null -w '%%{http_code}' -X POST http://127.0.0.1:%d/admin/reload > %s.tmp; mv %s.tmp %s) &")
      :format(server.port, srv.quote(out), srv.quote(out), srv.quote(out)))
    srv.sleep(0.05) -- let the reload begin
    local code, body = srv.http(server.port, "GET", "/v1/version")
    local reloaded_first = io.open(out) ~= nil
    assert.equal(200, code)
    assert.equal("slow", cjson.decode(body).v)
    assert.is_false(reloaded_first, "the worker waited for the reload before answering")
    local status
    for _ = 1, 600 do
      local f = io.open(out)
      if f then status = f:read("a"); f:close(); break end
      srv.sleep(0.05)
    end
    assert.equal("200", status, server.log())
    assert.equal(0, server.stop(), server.log())
    server.cleanup()
    os.execute("rm -rf " .. srv.quote(dir))
  end)
end)

describe("shutdown #server", function()
  it("lets an in-flight request finish on SIGTERM, then exits 0", function()
    local dir = srv.lua_dir({ ["routes/slow.lua"] = [[
      return {{ method = "GET", path = "/v1/slow", handler = function()
        local t = os.clock()
        while os.clock() - t < 0.8 do end
        return 200, { done = true }
      end }}]] })
    -- The handler spins for 0.8 s of CPU: well inside a generous time limit.
    local s = srv.start({ STRATA_LUA_DIR = dir, STRATA_WORKERS = "1", STRATA_LUA_TIME_LIMIT_MS = "20000" })
    srv.await(s.port, "/ready", 200, 10)
    local c = srv.connect(s.port)
    assert(c:send("GET /v1/slow HTTP/1.1\r\nHost: x\r\n\r\n"))
    srv.sleep(0.2)
    os.execute(("pkill -TERM -P %d"):format(s.shell_pid))
    local status, headers, body = srv.read_response(c)
    c:close()
    local exit = s.wait(10)
    local after = srv.http(s.port, "GET", "/health")
    s.cleanup()
    os.execute("rm -rf " .. srv.quote(dir))
    assert.equal(200, status)
    assert.same({ done = true }, cjson.decode(body))
    assert.is_not_nil(headers["x-request-id"])
    assert.equal(0, exit)
    assert.equal(0, after, "no longer accepting")
  end)
end)
