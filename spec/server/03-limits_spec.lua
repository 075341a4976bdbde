-- Every limit answers its status with a JSON error body, and no client can
-- hold a worker.
local cjson = require("cjson")
local srv = require("server_helpers")

local function code_of(body)
  return cjson.decode(body).code
end

describe("limits #server", function()
  local server

  setup(function()
    server = srv.start({
      STRATA_MAX_BODY_BYTES = "1000",
      STRATA_MAX_HEADER_BYTES = "2048",
      STRATA_MAX_HEADERS = "20",
      STRATA_MAX_URI_BYTES = "256",
      STRATA_READ_TIMEOUT_MS = "400",
      STRATA_IDLE_TIMEOUT_MS = "600",
    })
    assert.equal(200, (srv.await(server.port, "/health", 200, 10)), server.log())
  end)

  teardown(function()
    assert.equal(0, server.stop(), server.log())
    server.cleanup()
  end)

  it("answers 413 to a Content-Length over max_body_bytes", function()
    local status, headers, body = srv.raw(server.port,
      "POST /v1/hello/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n")
    assert.equal(413, status)
    assert.equal("body_too_large", code_of(body))
    assert.equal("close", headers.connection)
  end)

  it("answers 413 to a chunked body that grows past max_body_bytes", function()
    local chunk = string.rep("a", 600)
    local status, _, body = srv.raw(server.port,
      "POST /v1/hello/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      .. "258\r\n" .. chunk .. "\r\n258\r\n" .. chunk .. "\r\n0\r\n\r\n")
    assert.equal(413, status)
    assert.equal("body_too_large", code_of(body))
  end)

  it("accepts a body of exactly max_body_bytes", function()
    local status = srv.raw(server.port,
      "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" .. string.rep("b", 1000))
    assert.equal(405, status) -- read whole, then answered by the endpoint
  end)

  it("answers 431 to headers over max_header_bytes", function()
    local status, _, body = srv.raw(server.port,
      "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " .. string.rep("h", 3000) .. "\r\n\r\n")
    assert.equal(431, status)
    assert.equal("headers_too_large", code_of(body))
  end)

  it("answers 431 to more than max_headers header fields", function()
    local hs = {}
    for i = 1, 21 do hs[i] = "X-H" .. i .. ": v\r\n" end
    local status, _, body = srv.raw(server.port, "GET /health HTTP/1.1\r\n" .. table.concat(hs) .. "\r\n")
    assert.equal(431, status)
    assert.equal("headers_too_large", code_of(body))
  end)

  it("answers 414 to a request target over max_uri_bytes", function()
    local status, _, body = srv.raw(server.port, "GET /" .. string.rep("u", 300) .. " HTTP/1.1\r\nHost: x\r\n\r\n")
    assert.equal(414, status)
    assert.equal("uri_too_long", code_of(body))
  end)

  it("answers 400 to a malformed request and 505 to an unknown HTTP version", function()
    local status, _, body = srv.raw(server.port, "GET /health HTTP/1.1\r\nBad Header: x\r\n\r\n")
    assert.equal(400, status)
    assert.equal("bad_request", code_of(body))
    status = srv.raw(server.port, "GET /health HTTP/2.0\r\nHost: x\r\n\r\n")
    assert.equal(505, status)
  end)

  it("answers 501 to a transfer coding other than chunked", function()
    local status, _, body = srv.raw(server.port,
      "POST /v1/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n")
    assert.equal(501, status)
    assert.equal("not_implemented", code_of(body))
  end)

  it("answers 408 to a client that sends one byte at a time too slowly, and serves others meanwhile", function()
    local c = srv.connect(server.port)
    local request = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    local status, body
    for i = 1, #request do
      local ok = c:send(request:sub(i, i))
      -- Meanwhile the server answers other clients at once.
      if i == 3 then assert.equal(200, (srv.http(server.port, "GET", "/health"))) end
      if not ok then break end
      srv.sleep(0.1)
      c:settimeout(0)
      local line = c:receive("*l")
      c:settimeout(5)
      if line then
        status = tonumber(line:match("^HTTP/1%.1 (%d+)"))
        repeat local h = c:receive("*l") until h == "" or h == nil
        body = c:receive("*a")
        break
      end
    end
    c:close()
    assert.equal(408, status)
    assert.equal("timeout", code_of(body))
  end)

  it("closes an idle keep-alive connection after idle_timeout_ms", function()
    local c = srv.connect(server.port)
    assert(c:send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert.equal(200, (srv.read_response(c)))
    c:settimeout(3)
    local data, err = c:receive("*a") -- returns when the server closes
    c:close()
    assert.equal("", data or "")
    assert.is_not.equal("timeout", err)
  end)

  it("refuses new connections past max_connections with 503 and keeps serving open ones", function()
    local s = srv.start({ STRATA_MAX_CONNECTIONS = "3", STRATA_WORKERS = "1" })
    srv.await(s.port, "/health", 200, 10)
    local held = {}
    for i = 1, 3 do
      held[i] = srv.connect(s.port)
      assert(held[i]:send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"))
      assert.equal(200, (srv.read_response(held[i])))
    end
    local status, _, body = srv.raw(s.port, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    -- An open connection is still served.
    assert(held[1]:send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"))
    local again = srv.read_response(held[1])
    for _, c in ipairs(held) do c:close() end
    local _, metrics = srv.await(s.port, "/metrics", 200, 10)
    s.stop()
    s.cleanup()
    assert.equal(503, status)
    assert.equal("too_many_connections", code_of(body))
    assert.equal(200, again)
    assert.matches("strata_refused_connections_total [1-9]", metrics)
  end)
end)
