-- The HTTP core: keep-alive, pipelining, chunked bodies, request ids, CORS,
-- the built-in endpoints.
local cjson = require("cjson")
local srv = require("server_helpers")

describe("HTTP core #server", function()
  local server

  setup(function()
    server = srv.start()
    assert.equal(200, (srv.await(server.port, "/health", 200, 10)), server.log())
  end)

  teardown(function()
    assert.equal(0, server.stop(), server.log())
    server.cleanup()
  end)

  it("answers several requests on one keep-alive connection", function()
    local c = srv.connect(server.port)
    for i = 1, 3 do
      assert(c:send("GET /v1/hello/k" .. i .. " HTTP/1.1\r\nHost: x\r\n\r\n"))
      local status, headers, body = srv.read_response(c)
      assert.equal(200, status)
      assert.equal("application/json", headers["content-type"])
      assert.same({ hello = "k" .. i }, cjson.decode(body))
    end
    c:close()
  end)

  it("answers pipelined requests in order", function()
    local c = srv.connect(server.port)
    assert(c:send("GET /v1/hello/one HTTP/1.1\r\nHost: x\r\n\r\n"
      .. "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
      .. "GET /v1/hello/three HTTP/1.1\r\nHost: x\r\n\r\n"))
    local _, _, b1 = srv.read_response(c)
    local _, _, b2 = srv.read_response(c)
    local _, _, b3 = srv.read_response(c)
    c:close()
    assert.same({ hello = "one" }, cjson.decode(b1))
    assert.same({ status = "ok" }, cjson.decode(b2))
    assert.same({ hello = "three" }, cjson.decode(b3))
  end)

  it("closes after answering when the client asks for Connection: close", function()
    local c = srv.connect(server.port)
    assert(c:send("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    local status, headers = srv.read_response(c)
    assert.equal(200, status)
    assert.equal("close", headers.connection)
    local rest, err = c:receive("*a")
    assert.equal("", rest or "", err)
    c:close()
  end)

  it("closes an HTTP/1.0 connection unless it asks for keep-alive", function()
    local c = srv.connect(server.port)
    assert(c:send("GET /health HTTP/1.0\r\n\r\n"))
    local status, headers = srv.read_response(c)
    assert.equal(200, status)
    assert.equal("close", headers.connection)
    c:close()
  end)

  it("echoes the client's X-Request-Id and generates one otherwise", function()
    local _, _, h = srv.http(server.port, "GET", "/health", nil, { ["X-Request-Id"] = "abc-123" })
    assert.equal("abc-123", h["x-request-id"])
    local _, _, h1 = srv.http(server.port, "GET", "/health")
    local _, _, h2 = srv.http(server.port, "GET", "/health")
    assert.matches("^%x+$", h1["x-request-id"])
    assert.are_not.equal(h1["x-request-id"], h2["x-request-id"])
    -- An id with characters that could forge a header is replaced.
    local _, _, h3 = srv.http(server.port, "GET", "/health", nil, { ["X-Request-Id"] = "a b<c>" })
    assert.matches("^%x+$", h3["x-request-id"])
  end)

  it("answers HEAD without a body but with the length", function()
    local c = srv.connect(server.port)
    assert(c:send("HEAD /v1/hello/abc HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n"))
    local line = c:receive("*l")
    assert.matches("^HTTP/1.1 200", line)
    local len
    repeat
      local h = c:receive("*l")
      len = len or h:match("^Content%-Length: (%d+)")
    until h == ""
    assert.equal("15", len)
    -- The next bytes are the second response, not a body.
    assert.matches("^HTTP/1.1 200", c:receive("*l"))
    c:close()
  end)

  it("answers a CORS preflight and adds CORS headers to the answer", function()
    local code, _, h = srv.http(server.port, "OPTIONS", "/rest/v1/chats", nil,
      { Origin = "http://app.test", ["Access-Control-Request-Method"] = "POST" })
    assert.equal(204, code)
    assert.equal("*", h["access-control-allow-origin"])
    assert.matches("POST", h["access-control-allow-methods"])
    assert.matches("apikey", h["access-control-allow-headers"])
    code, _, h = srv.http(server.port, "GET", "/v1/hello/x", nil, { Origin = "http://app.test" })
    assert.equal(200, code)
    assert.equal("*", h["access-control-allow-origin"])
    assert.matches("x%-request%-id", h["access-control-expose-headers"])
  end)

  it("refuses a preflight from an origin that is not allowed", function()
    local s = srv.start({ STRATA_CORS_ORIGINS = nil }, "-c " .. srv.quote(srv.conf_file({ cors_origins = { "https://ok.test" } })))
    srv.await(s.port, "/health", 200, 10)
    local code, body = srv.http(s.port, "OPTIONS", "/v1/hello/x", nil,
      { Origin = "https://evil.test", ["Access-Control-Request-Method"] = "GET" })
    local code2, _, h2 = srv.http(s.port, "GET", "/v1/hello/x", nil, { Origin = "https://ok.test" })
    s.stop()
    s.cleanup()
    assert.equal(403, code)
    assert.equal("cors_origin_not_allowed", cjson.decode(body).code)
    assert.equal(200, code2)
    assert.equal("https://ok.test", h2["access-control-allow-origin"])
  end)

  it("serves Prometheus metrics with requests by route and status", function()
    srv.http(server.port, "GET", "/v1/hello/metric")
    srv.http(server.port, "GET", "/no/such/route")
    local code, body, h = srv.http(server.port, "GET", "/metrics")
    assert.equal(200, code)
    assert.matches("^text/plain", h["content-type"])
    assert.matches('strata_http_requests_total{route="/v1/hello/:name",status="200"} %d+', body)
    assert.matches('strata_http_requests_total{route="%(none%)",status="404"} %d+', body)
    assert.matches('strata_http_request_duration_seconds_bucket{le="%+Inf"} %d+', body)
    assert.matches("strata_open_connections %d+", body)
    assert.matches('strata_lua_reloads_total{result="ok"} 1', body)
  end)

  it("writes one JSON access-log line per request", function()
    srv.http(server.port, "GET", "/v1/hello/logged", nil, { ["X-Request-Id"] = "log-me-1" })
    local line
    for _ = 1, 50 do
      line = server.log():match('[^\n]*"id":"log%-me%-1"[^\n]*')
      if line then break end
      srv.sleep(0.05)
    end
    assert.is_not_nil(line, server.log())
    local e = cjson.decode(line)
    assert.equal("GET", e.method)
    assert.equal("/v1/hello/logged", e.path)
    assert.equal(200, e.status)
    assert.equal(18, e.bytes)
    assert.is_number(e.duration_us)
    assert.equal(cjson.null, e.uid)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT", e.time)
  end)
end)
