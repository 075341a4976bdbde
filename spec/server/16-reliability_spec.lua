-- Reliability under bad clients and bad handlers: an error answered before
-- the request was read whole reaches the client whatever it is still
-- sending (lingering close, core/net/conn.c), and a handler that allocates
-- without bound is stopped by lua_memory_limit_mb while others are served.
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")

local MB = 1024 * 1024

-- Sends `bytes` in one go on a new connection, then reads one answer.
-- Returns the send's error (nil when all was sent), status, headers, body.
local function send_all_then_read(port, bytes)
  local c = srv.connect(port)
  c:settimeout(20)
  local _, err = c:send(bytes)
  local status, headers, body = srv.read_response(c)
  return err, status, headers, body, c
end

describe("lingering close #server", function()
  local server

  setup(function()
    server = srv.start({ STRATA_LINGERING_TIMEOUT_MS = "3000", STRATA_LINGERING_MAX_BYTES = tostring(32 * MB) })
    assert.equal(200, (srv.await(server.port, "/health", 200, 10)), server.log())
  end)

  teardown(function()
    assert.equal(0, server.stop(), server.log())
    server.cleanup()
  end)

  it("answers 431 to a 2 MB header block, read in full by the client, not a reset", function()
    local err, status, headers, body, c = send_all_then_read(server.port,
      "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " .. string.rep("h", 2 * MB) .. "\r\n\r\n")
    c:close()
    assert.is_nil(err)
    assert.equal(431, status)
    assert.equal("close", headers.connection)
    assert.equal("headers_too_large", cjson.decode(body).code)
  end)

  it("answers 413 to a 20 MB body over max_body_bytes, read in full by the client", function()
    local err, status, _, body, c = send_all_then_read(server.port,
      "POST /v1/hello/x HTTP/1.1\r\nHost: x\r\nContent-Length: " .. 20 * MB .. "\r\n\r\n"
      .. string.rep("b", 20 * MB))
    c:close()
    assert.is_nil(err)
    assert.equal(413, status)
    assert.equal("body_too_large", cjson.decode(body).code)
  end)

  it("answers 414 and 400 the same way when more follows the bad request", function()
    local tail = string.rep("z", 4 * MB)
    local err, status, _, body, c = send_all_then_read(server.port,
      "GET /" .. string.rep("u", 10000) .. " HTTP/1.1\r\nHost: x\r\n\r\n" .. tail)
    c:close()
    assert.is_nil(err)
    assert.equal(414, status)
    assert.equal("uri_too_long", cjson.decode(body).code)
    err, status, _, body, c = send_all_then_read(server.port, "GET /health HTTP/1.1\r\nBad Header: x\r\n\r\n" .. tail)
    c:close()
    assert.is_nil(err)
    assert.equal(400, status)
    assert.equal("bad_request", cjson.decode(body).code)
  end)

  it("closes the connection once the client closes its side", function()
    local c = srv.connect(server.port)
    assert(c:send("GET /health HTTP/1.1\r\nBad Header: x\r\n\r\n"))
    assert.equal(400, (srv.read_response(c)))
    c:shutdown("send")
    c:settimeout(10)
    local data, err = c:receive("*a") -- returns at the server's close
    c:close()
    assert.equal("", data or "")
    assert.is_not.equal("timeout", err)
  end)

  it("closes a connection whose client keeps it open after lingering_timeout_ms", function()
    local c = srv.connect(server.port)
    assert(c:send("GET /health HTTP/1.1\r\nBad Header: x\r\n\r\n"))
    assert.equal(400, (srv.read_response(c)))
    c:settimeout(20)
    local data, err = c:receive("*a") -- the server's FIN came with the answer; then it waits for ours
    assert.equal("", data or "")
    assert.is_not.equal("timeout", err)
    -- Its socket is gone after the timeout: the server's count of open connections drops.
    local metrics
    for _ = 1, 100 do
      metrics = select(2, srv.http(server.port, "GET", "/metrics"))
      if metrics:match("strata_open_connections 1\n") then break end
      srv.sleep(0.1)
    end
    c:close()
    assert.matches("strata_open_connections 1\n", metrics)
  end)

  it("stops reading after lingering_max_bytes", function()
    local s = srv.start({ STRATA_LINGERING_MAX_BYTES = tostring(MB), STRATA_WORKERS = "1" })
    srv.await(s.port, "/health", 200, 10)
    local c = srv.connect(s.port)
    c:settimeout(20)
    local _, err = c:send("GET /health HTTP/1.1\r\nX-Big: " .. string.rep("h", 64 * MB) .. "\r\n\r\n")
    c:close()
    local code = srv.http(s.port, "GET", "/health")
    s.stop()
    s.cleanup()
    assert.is_not_nil(err) -- cut after 1 MB: the client cannot send the rest
    assert.equal(200, code)
  end)
end)

local HOG = [[
local kept = {} -- a cache that only grows
return {
  { method = "GET", path = "/v1/spec/keep", handler = function()
      while true do kept[#kept + 1] = string.rep("k", 4096) .. #kept end
    end },
  { method = "GET", path = "/v1/spec/kept", handler = function() return 200, { n = #kept } end },
  { method = "GET", path = "/v1/spec/hog", handler = function()
      local t = {}
      while true do t[#t + 1] = string.rep("x", 4096) .. #t end
    end },
  { method = "GET", path = "/v1/spec/caught", handler = function()
      local ok, err = pcall(function()
        local t = {}
        while true do t[#t + 1] = string.rep("y", 4096) .. #t end
      end)
      return 200, { ok = ok, err = tostring(err) }
    end },
  { method = "GET", path = "/v1/spec/alloc/:mb", handler = function(req)
      local t = {}
      for i = 1, tonumber(req.params.mb) * 256 do t[i] = string.rep("z", 4096) .. i end
      return 200, { n = #t }
    end },
}]]

describe("lua_memory_limit_mb #server", function()
  local server, dir

  setup(function()
    dir = srv.lua_dir({ ["routes/spec_hog.lua"] = HOG })
    server = srv.start({ STRATA_LUA_DIR = dir, STRATA_WORKERS = "1", STRATA_LUA_MEMORY_LIMIT_MB = "64",
      STRATA_LUA_TIME_LIMIT_MS = "20000" })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 20)), server.log())
  end)

  teardown(function()
    assert.equal(0, server.stop(), server.log())
    server.cleanup()
    os.execute("rm -rf " .. srv.quote(dir))
  end)

  it("answers 500 with lua_memory_limit and an error_logs row, then serves others from the same state", function()
    local rid = h.uuid()
    local code, body = srv.http(server.port, "GET", "/v1/spec/hog", nil, { ["X-Request-Id"] = rid })
    assert.equal(500, code, body)
    assert.equal("lua_memory_limit", cjson.decode(body).code)
    -- The one worker's state was collected: a request needing 24 MB fits again, twice.
    for _ = 1, 2 do
      code, body = srv.http(server.port, "GET", "/v1/spec/alloc/24")
      assert.equal(200, code, body)
      assert.equal(24 * 256, cjson.decode(body).n)
    end
    assert.equal(200, (srv.http(server.port, "GET", "/v1/hello/after")))
    local n
    for _ = 1, 150 do
      n = tonumber(h.scalar("select count(*) from public.error_logs where error_category = 'lua_memory_limit' "
        .. "and error_details->>'request_id' = " .. h.lit(rid)))
      if n > 0 then break end
      srv.sleep(0.1)
    end
    assert.equal(1, n)
    assert.matches("not enough memory", server.log())
    local _, ready = srv.http(server.port, "GET", "/ready")
    assert.equal(1, cjson.decode(ready).lua.generation) -- recovered in place, not replaced
  end)

  it("lets a handler that catches the memory error answer on its own", function()
    local code, body = srv.http(server.port, "GET", "/v1/spec/caught")
    assert.equal(200, code, body)
    local doc = cjson.decode(body)
    assert.is_false(doc.ok)
    assert.matches("not enough memory", doc.err)
    -- Its garbage does not count against the next request.
    code, body = srv.http(server.port, "GET", "/v1/spec/alloc/24")
    assert.equal(200, code, body)
  end)

  it("replaces a state that keeps what it grew (a reload builds a fresh one)", function()
    local code, body = srv.http(server.port, "GET", "/v1/spec/keep")
    assert.equal(500, code, body)
    assert.equal("lua_memory_limit", cjson.decode(body).code)
    local n
    for _ = 1, 100 do
      _, body = srv.http(server.port, "GET", "/v1/spec/kept") -- the first one asks for the replacement
      n = cjson.decode(body).n
      if n == 0 then break end
      srv.sleep(0.1)
    end
    assert.equal(0, n)
    local _, ready = srv.http(server.port, "GET", "/ready")
    assert.equal(2, cjson.decode(ready).lua.generation)
    assert.matches('"trigger":"lua_memory_limit"', server.log())
  end)
end)
