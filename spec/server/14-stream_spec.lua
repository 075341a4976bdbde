-- Streamed answers: res.start / res.write / res.sse, the chunked coding,
-- keep-alive and pipelining after a stream, HEAD, HTTP/1.0, the access
-- log, back-pressure on a client that does not read, a client that goes
-- away in the middle of a relayed upstream stream.
local cjson = require("cjson")
local srv = require("server_helpers")
local upstream = require("fake_upstream")

local ROUTES = [=[
local http = require("strata.http")
local db = require("strata.db")
local UP = "@UP@"
local last = {} -- what the last flood / relay saw (one worker: one Lua state)

return {
  { method = "GET", path = "/v1/sse", handler = function(req, res)
      for i = 1, tonumber(req.query.n or "2") do res.sse("tick", { i = i }) end
      res.sse("done", "bye\nnow")
      res.sse(nil, "anonymous")
      return 500, "ignored: the answer was streamed"
    end },
  { method = "GET", path = "/v1/write", handler = function(req, res)
      assert(res.start(201, { ["Content-Type"] = "text/csv", ["X-Stream"] = "yes" }))
      assert(res.write("a,b\n"))
      assert(res.write(""))
      assert(res.write("c,d\n"))
    end },
  { method = "GET", path = "/v1/write-default", handler = function(req, res)
      res.write("hello ")
      res.write("world")
    end },
  { method = "GET", path = "/v1/flood", handler = function(req, res)
      local piece = ("z"):rep(tonumber(req.query.size))
      last.flood = { written = 0 }
      for _ = 1, tonumber(req.query.n) do
        local ok, err = res.write(piece)
        if not ok then last.flood.err = err; return end
        last.flood.written = last.flood.written + 1
      end
    end },
  { method = "GET", path = "/v1/relay", handler = function(req, res)
      last.relay = { chunks = 0 }
      local status, err = http.request{ url = UP .. req.query.path, on_chunk = function(chunk)
          last.relay.chunks = last.relay.chunks + 1
          if req.query.db then -- on_chunk may wait for the database too
            chunk = assert(db.query("select $1::text || '!' as t", chunk))[1].t
          end
          res.sse("chunk", chunk)
        end }
      last.relay.err = err and err.code
      last.relay.status = status
      local ok, werr = res.sse("end", "x")
      last.relay.final_write = ok or werr
    end },
  { method = "GET", path = "/v1/boom", handler = function(req, res)
      res.write("partial")
      error("boom after the head")
    end },
  { method = "GET", path = "/v1/last", handler = function() return 200, last end },
  { method = "GET", path = "/v1/cheap", handler = function() return 200, "cheap" end },
}
]=]

-- Reads one response from a raw connection, de-chunking a chunked body:
-- status, headers, body.  HTTP/1.0 close-delimited bodies: read to the end.
local function read_response(c)
  local line, err = c:receive("*l")
  if not line then return nil, err end
  local status = tonumber(line:match("^HTTP/1%.%d (%d%d%d)"))
  local headers = {}
  while true do
    local h = assert(c:receive("*l"))
    if h == "" then break end
    local k, v = h:match("^([^:]+):%s*(.*)$")
    headers[k:lower()] = v
  end
  if headers["transfer-encoding"] == "chunked" then
    local parts = {}
    while true do
      local size = tonumber(assert(c:receive("*l")), 16)
      if size == 0 then assert(c:receive("*l")); break end
      parts[#parts + 1] = assert(c:receive(size))
      assert.equal("", (assert(c:receive("*l"))))
    end
    return status, headers, table.concat(parts)
  end
  if headers["content-length"] then
    local n = tonumber(headers["content-length"])
    return status, headers, n > 0 and assert(c:receive(n)) or ""
  end
  local rest, _, partial = c:receive("*a")
  return status, headers, rest or partial
end

local function get_last(port)
  local _, body = srv.http(port, "GET", "/v1/last")
  return cjson.decode(body)
end

describe("streamed answers #server", function()
  local up, server, dir, logfile

  setup(function()
    up = upstream.start()
    dir = srv.lua_dir({ ["routes/spec.lua"] = ROUTES:gsub("@UP@", up.url) })
    logfile = os.tmpname()
    server = srv.start({ STRATA_LUA_DIR = dir, STRATA_WORKERS = "1", STRATA_ACCESS_LOG = logfile,
      STRATA_STREAM_BUFFER_MAX = "65536", STRATA_STREAM_TIMEOUT_MS = "300" })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 10)), server.log())
  end)

  teardown(function()
    up.stop() -- first: an assertion failing below must not leave it running
    local status, log = server.stop(), server.log()
    server.cleanup()
    os.execute("rm -rf " .. srv.quote(dir))
    os.remove(logfile)
    assert.equal(0, status, log)
  end)

  it("res.sse: 200 text/event-stream, no-cache, one event per call; the return value is ignored", function()
    local code, body, headers = srv.http(server.port, "GET", "/v1/sse?n=2")
    assert.equal(200, code)
    assert.equal("text/event-stream", headers["content-type"])
    assert.equal("no-cache", headers["cache-control"])
    assert.equal("chunked", headers["transfer-encoding"])
    assert.is_string(headers["ratelimit-policy"]) -- the rate limit's headers go with a stream's head too
    assert.equal('event: tick\ndata: {"i":1}\n\nevent: tick\ndata: {"i":2}\n\n'
      .. "event: done\ndata: bye\ndata: now\n\ndata: anonymous\n\n", body)
  end)

  it("res.start sets status and headers; res.write sends chunks (an empty one is skipped)", function()
    local code, body, headers = srv.http(server.port, "GET", "/v1/write")
    assert.equal(201, code)
    assert.equal("text/csv", headers["content-type"])
    assert.equal("yes", headers["x-stream"])
    assert.equal("a,b\nc,d\n", body)
  end)

  it("res.write without res.start answers 200 text/plain", function()
    local code, body, headers = srv.http(server.port, "GET", "/v1/write-default")
    assert.equal(200, code)
    assert.equal("text/plain; charset=utf-8", headers["content-type"])
    assert.equal("hello world", body)
  end)

  it("keeps the connection alive after a stream, and answers pipelined requests in order", function()
    local c = srv.connect(server.port)
    assert(c:send("GET /v1/write HTTP/1.1\r\nHost: x\r\n\r\n"))
    local status, _, body = read_response(c)
    assert.equal(201, status)
    assert.equal("a,b\nc,d\n", body)
    assert(c:send("GET /v1/sse?n=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/cheap HTTP/1.1\r\nHost: x\r\n\r\n"
      .. "GET /v1/write-default HTTP/1.1\r\nHost: x\r\n\r\n"))
    status, _, body = read_response(c)
    assert.equal(200, status)
    assert.matches("^event: tick", body)
    status, _, body = read_response(c)
    assert.same({ 200, "cheap" }, { status, body })
    status, _, body = read_response(c)
    assert.same({ 200, "hello world" }, { status, body })
    c:close()
  end)

  it("HEAD on a streaming route: the head only, and the connection goes on", function()
    local c = srv.connect(server.port)
    assert(c:send("HEAD /v1/sse HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/cheap HTTP/1.1\r\nHost: x\r\n\r\n"))
    local line = assert(c:receive("*l"))
    assert.equal("HTTP/1.1 200 OK", line)
    repeat line = assert(c:receive("*l")) until line == ""
    local status, _, body = srv.read_response(c)
    assert.same({ 200, "cheap" }, { status, body })
    c:close()
  end)

  it("HTTP/1.0: the body is not chunked and the close ends it", function()
    local c = srv.connect(server.port)
    assert(c:send("GET /v1/write HTTP/1.0\r\n\r\n"))
    local status, headers, body = read_response(c)
    c:close()
    assert.equal(201, status)
    assert.is_nil(headers["transfer-encoding"])
    assert.equal("close", headers.connection)
    assert.equal("a,b\nc,d\n", body)
  end)

  it("logs a streamed answer with its status and body bytes", function()
    srv.http(server.port, "GET", "/v1/write")
    local line
    for _ = 1, 50 do
      local f = io.open(logfile)
      for l in f:lines() do if l:find('"path":"/v1/write"', 1, true) then line = l end end
      f:close()
      if line then break end
      srv.sleep(0.1)
    end
    assert.is_string(line)
    local entry = cjson.decode(line)
    assert.equal(201, entry.status)
    assert.equal(8, entry.bytes)
  end)

  it("waits for a client that reads, and delivers everything", function()
    local c = srv.connect(server.port)
    assert(c:send("GET /v1/flood?n=64&size=65536 HTTP/1.1\r\nHost: x\r\n\r\n"))
    local status, _, body = read_response(c)
    c:close()
    assert.equal(200, status)
    assert.equal(64 * 65536, #body)
    assert.same({ written = 64 }, get_last(server.port).flood)
  end)

  it("cuts the stream of a client that stops reading (slow client) and goes on serving", function()
    local c = srv.connect(server.port)
    assert(c:send("GET /v1/flood?n=2000&size=65536 HTTP/1.1\r\nHost: x\r\n\r\n"))
    local flood
    for _ = 1, 100 do
      flood = get_last(server.port).flood
      if flood and flood.err then break end
      srv.sleep(0.1)
    end
    assert.equal("slow client", flood.err)
    assert.is_true(flood.written < 2000)
    -- What was buffered arrives, then the close: the body ends short.
    c:settimeout(5)
    local got = 0
    while true do
      local data, err, partial = c:receive(65536)
      got = got + #(data or partial or "")
      if err == "closed" then break end
      assert.is_nil(err)
    end
    c:close()
    assert.is_true(got < 2000 * 65536)
    local code, body = srv.http(server.port, "GET", "/v1/cheap")
    assert.same({ 200, "cheap" }, { code, body })
  end)

  it("relays an upstream stream as events, and cancels it when the client goes away", function()
    local before = up.stats().hang_closed
    local c = srv.connect(server.port)
    assert(c:send("GET /v1/relay?path=/stream-hang HTTP/1.1\r\nHost: x\r\n\r\n"))
    repeat local line = assert(c:receive("*l")) until line == ""
    assert.equal(#"event: chunk\ndata: first\n\n", tonumber(assert(c:receive("*l")), 16))
    assert.equal("event: chunk", (assert(c:receive("*l"))))
    assert.equal("data: first", (assert(c:receive("*l"))))
    c:close()
    local st = up.await(function(s) return s.hang_closed == before + 1 end)
    assert.equal(before + 1, st.hang_closed)
    local relay
    for _ = 1, 50 do
      relay = get_last(server.port).relay
      if relay.final_write then break end
      srv.sleep(0.1)
    end
    assert.same({ chunks = 1, err = "cancelled", final_write = "closed" }, relay)
  end)

  it("relays an upstream stream whose on_chunk waits for the database between pieces", function()
    local code, body, headers = srv.http(server.port, "GET", "/v1/relay?db=1&path=" .. "%2Fchunks%3Fn%3D3%26size%3D2%26ms%3D30")
    assert.equal(200, code)
    assert.equal("text/event-stream", headers["content-type"])
    local text = {}
    for data in body:gmatch("event: chunk\ndata: ([^\n]*)\n\n") do text[#text + 1] = data end
    assert.equal("001122", (table.concat(text):gsub("!", "")))
    assert.equal(#text, select(2, table.concat(text):gsub("!", ""))) -- each piece went through the database
    assert.matches('event: end\ndata: x\n\n$', body)
    assert.same({ chunks = #text, status = 200, final_write = true }, get_last(server.port).relay)
  end)

  it("a handler failing after the head cuts the stream (no last chunk) and the worker goes on", function()
    local c = srv.connect(server.port)
    assert(c:send("GET /v1/boom HTTP/1.1\r\nHost: x\r\n\r\n"))
    repeat local line = assert(c:receive("*l")) until line == ""
    local rest, err, partial = c:receive("*a")
    c:close()
    assert.equal("7\r\npartial\r\n", rest or partial)
    assert.is_nil(rest and err)
    local code, body = srv.http(server.port, "GET", "/v1/cheap")
    assert.same({ 200, "cheap" }, { code, body })
  end)
end)

describe("a stream waiting for a slow client at shutdown #server", function()
  it("is ended by the shutdown deadline, and the server exits cleanly", function()
    local dir = srv.lua_dir({ ["routes/spec.lua"] = ROUTES:gsub("@UP@", "http://127.0.0.1:1") })
    local server = srv.start({ STRATA_LUA_DIR = dir, STRATA_WORKERS = "1", STRATA_STREAM_BUFFER_MAX = "65536",
      STRATA_STREAM_TIMEOUT_MS = "600000", STRATA_SHUTDOWN_TIMEOUT_MS = "300" })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 10)), server.log())
    local c = srv.connect(server.port)
    assert(c:send("GET /v1/flood?n=2000&size=65536 HTTP/1.1\r\nHost: x\r\n\r\n"))
    -- The writer waits once the socket and the stream's buffer are full.
    local seen, flood = -1, nil
    for _ = 1, 100 do
      srv.sleep(0.2)
      flood = get_last(server.port).flood
      if flood and flood.written == seen then break end
      seen = flood and flood.written or -1
    end
    assert.is_true(flood.written > 0 and flood.written < 2000)
    assert.equal(0, server.stop(), server.log())
    c:close()
    server.cleanup()
    os.execute("rm -rf " .. srv.quote(dir))
  end)
end)
