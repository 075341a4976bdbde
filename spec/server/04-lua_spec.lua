-- Lua routes: captures, JSON in and out, query and headers, errors that
-- never take a worker down, the instruction limit.
local cjson = require("cjson")
local srv = require("server_helpers")

local ROUTES = [=[
local log = require("strata.log")
local http = require("strata.http")
return {
  { method = "POST", path = "/v1/echo", handler = function(req)
      return 200, { json = req.json, body = req.body, query = req.query, id = req.id,
                    ct = req.headers["content-type"], role = req.auth.role, method = req.method }
    end },
  { method = "GET", path = "/v1/items/:id/parts/:part", handler = function(req) return 200, req.params end },
  { method = "GET", path = "/v1/files/*rest", handler = function(req) return 200, { rest = req.params.rest } end },
  { method = "GET", path = "/v1/text", handler = function()
      return 201, "a,b\n", { ["Content-Type"] = "text/csv", ["X-Custom"] = "yes" }
    end },
  { method = "GET", path = "/v1/empty", handler = function() return 204 end },
  { method = "GET", path = "/v1/boom", handler = function() error("kaboom") end },
  { method = "GET", path = "/v1/spin", handler = function() while true do end end },
  { method = "GET", path = "/v1/bad-status", handler = function() return "x" end },
  { method = "GET", path = "/v1/bad-header", handler = function() return 200, "x", { ["X-Evil"] = "a\r\nb" } end },
  { method = "GET", path = "/v1/log", handler = function(req)
      log.warn("from lua", { who = req.query.who })
      return 200, { encoded = http.url_encode("a b/c"), reason = http.reason(404) }
    end },
}
]=]

describe("Lua routes #server", function()
  local server, dir

  setup(function()
    dir = srv.lua_dir({ ["routes/spec.lua"] = ROUTES })
    server = srv.start({ STRATA_LUA_DIR = dir, STRATA_LUA_TIME_LIMIT_MS = "200" })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 10)), server.log())
  end)

  teardown(function()
    assert.equal(0, server.stop(), server.log())
    server.cleanup()
    os.execute("rm -rf " .. srv.quote(dir))
  end)

  it("passes method, JSON body, decoded query, headers and the auth context to the handler", function()
    local code, body = srv.http(server.port, "POST", "/v1/echo?a=1&b=x%20y&b=z&c=a+b", '{"n":[1,2],"s":"t"}',
      { ["Content-Type"] = "application/json", ["X-Request-Id"] = "echo-1" })
    assert.equal(200, code, body)
    local doc = cjson.decode(body)
    assert.same({ n = { 1, 2 }, s = "t" }, doc.json)
    assert.equal('{"n":[1,2],"s":"t"}', doc.body)
    assert.same({ a = "1", b = { "x y", "z" }, c = "a b" }, doc.query)
    assert.equal("application/json", doc.ct)
    assert.equal("echo-1", doc.id)
    assert.equal("anon", doc.role)
    assert.equal("POST", doc.method)
  end)

  it("passes path captures, decoded", function()
    local code, body = srv.http(server.port, "GET", "/v1/items/42/parts/a%2Fb")
    assert.equal(200, code)
    assert.same({ id = "42", part = "a/b" }, cjson.decode(body))
    code, body = srv.http(server.port, "GET", "/v1/files/x/y/z.txt")
    assert.equal(200, code)
    assert.same({ rest = "x/y/z.txt" }, cjson.decode(body))
  end)

  it("sends a string body with the handler's status and headers", function()
    local code, body, h = srv.http(server.port, "GET", "/v1/text")
    assert.equal(201, code)
    assert.equal("a,b\n", body)
    assert.equal("text/csv", h["content-type"])
    assert.equal("yes", h["x-custom"])
  end)

  it("sends no body and no content type for a nil body", function()
    local code, body, h = srv.http(server.port, "GET", "/v1/empty")
    assert.equal(204, code)
    assert.equal("", body)
    assert.is_nil(h["content-type"])
  end)

  it("answers 400 naming the problem when a JSON body does not parse", function()
    local code, body = srv.http(server.port, "POST", "/v1/echo", "{not json", { ["Content-Type"] = "application/json" })
    assert.equal(400, code)
    local doc = cjson.decode(body)
    assert.equal("invalid_json", doc.code)
    assert.matches("not valid JSON", doc.message)
  end)

  it("answers 500 with the request id when a handler raises, logs the traceback, and keeps serving", function()
    local code, body = srv.http(server.port, "GET", "/v1/boom", nil, { ["X-Request-Id"] = "boom-1" })
    assert.equal(500, code)
    local doc = cjson.decode(body)
    assert.equal("internal_error", doc.code)
    assert.equal("boom-1", doc.request_id)
    assert.is_nil(body:find("kaboom"), "the error text stays in the log")
    local log = server.log()
    assert.matches('spec.lua:%d+: kaboom', log)
    assert.matches("stack traceback", log)
    assert.matches('"request_id":"boom%-1"', log)
    for _ = 1, 4 do assert.equal(200, (srv.http(server.port, "GET", "/v1/hello/after"))) end
  end)

  it("stops a handler that loops forever at the time limit, and keeps serving", function()
    local code, body = srv.http(server.port, "GET", "/v1/spin")
    assert.equal(500, code)
    assert.equal("lua_budget_exceeded", cjson.decode(body).code)
    assert.equal(200, (srv.http(server.port, "GET", "/v1/hello/after")))
    local _, metrics = srv.http(server.port, "GET", "/metrics")
    assert.matches("strata_lua_budget_exceeded_total 1", metrics)
  end)

  it("answers 500 when a handler returns an invalid status or header", function()
    assert.equal(500, (srv.http(server.port, "GET", "/v1/bad-status")))
    assert.matches("invalid status", server.log())
    assert.equal(500, (srv.http(server.port, "GET", "/v1/bad-header")))
    assert.matches("invalid header", server.log())
  end)

  it("gives scripts strata.log and strata.http", function()
    local code, body = srv.http(server.port, "GET", "/v1/log?who=me")
    assert.equal(200, code, body)
    assert.same({ encoded = "a%20b%2Fc", reason = "Not Found" }, cjson.decode(body))
    assert.matches('"level":"warn","msg":"from lua","fields":{"who":"me"}', server.log())
  end)

  it("answers 405 for a known path with another method, 404 for an unknown one", function()
    assert.equal(405, (srv.http(server.port, "DELETE", "/v1/echo")))
    assert.equal(404, (srv.http(server.port, "GET", "/v1/nothing/here")))
  end)
end)

describe("Lua route loading #server", function()
  it("refuses colliding routes from two files, naming both", function()
    local dir = srv.lua_dir({
      ["routes/a.lua"] = 'return {{ method = "GET", path = "/v1/x/:id", handler = function() return 200 end }}',
      ["routes/b.lua"] = 'return {{ method = "GET", path = "/v1/x/:other", handler = function() return 200 end }}',
    })
    local s = srv.start({ STRATA_LUA_DIR = dir })
    srv.await(s.port, "/health", 200, 10)
    local code, body = srv.http(s.port, "GET", "/ready")
    local rcode = srv.http(s.port, "GET", "/v1/hello/x")
    s.stop()
    s.cleanup()
    os.execute("rm -rf " .. srv.quote(dir))
    assert.equal(503, code)
    local err = cjson.decode(body).lua.error
    assert.matches("routes/a.lua", err)
    assert.matches("routes/b.lua", err)
    assert.matches("collides", err)
    assert.equal(503, rcode)
  end)

  it("refuses a route file that returns something other than a list of routes", function()
    local dir = srv.lua_dir({ ["routes/bad.lua"] = 'return {{ method = "GET", path = "no-slash", handler = print }}' })
    local s = srv.start({ STRATA_LUA_DIR = dir })
    srv.await(s.port, "/health", 200, 10)
    local _, body = srv.http(s.port, "GET", "/ready")
    s.stop()
    s.cleanup()
    os.execute("rm -rf " .. srv.quote(dir))
    assert.matches("routes/bad.lua: route 1: path must be a string starting with /", cjson.decode(body).lua.error)
  end)
end)
