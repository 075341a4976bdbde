-- strata.http.request: outbound HTTP from handlers, on the worker's event
-- loop, against a local fake upstream (spec/fixtures/fake_upstream.py):
-- answers, every error code, streaming with on_chunk, many transfers at
-- once on one worker, cancellation (client gone, reload, shutdown), TLS.
local cjson = require("cjson")
local srv = require("server_helpers")
local upstream = require("fake_upstream")

local ROUTES = [=[
local http = require("strata.http")
local UP = "@UP@"

local function num(v) return v and tonumber(v) end

return {
  { method = "GET", path = "/v1/fetch", handler = function(req)
      local q = req.query
      local status, headers, body = http.request{ url = (q.url or UP) .. (q.path or ""),
        timeout_ms = num(q.timeout_ms), connect_timeout_ms = num(q.connect_timeout_ms), max_bytes = num(q.max_bytes) }
      if not status then return 502, headers end
      return 200, { status = status, headers = headers, body = body }
    end },
  { method = "POST", path = "/v1/put", handler = function(req)
      local status, _, body = http.request{ method = "PUT", url = UP .. "/echo?x=1", body = req.body,
        headers = { ["content-type"] = "text/plain", ["x-test"] = "yes" } }
      return 200, { status = status, echo = require("cjson").decode(body) }
    end },
  { method = "GET", path = "/v1/chunks", handler = function(req)
      local got, calls = {}, 0
      local stop = num(req.query.stop)
      local status, headers, body = http.request{ url = UP .. req.query.path, on_chunk = function(chunk)
          calls = calls + 1
          got[#got + 1] = chunk
          if stop and calls >= stop then return false end
        end }
      if not status then return 502, { err = headers, calls = calls } end
      return 200, { status = status, calls = calls, streamed = table.concat(got), body = body }
    end },
  { method = "GET", path = "/v1/chunk-error", handler = function()
      http.request{ url = UP .. "/stream-hang", on_chunk = function() error("on_chunk failed") end }
      return 200, "not reached"
    end },
  { method = "GET", path = "/v1/bad-header", handler = function()
      return 200, { http.request{ url = UP .. "/ok", headers = { ["x-evil"] = "a\r\nb: c" } } }
    end },
  { method = "GET", path = "/v1/cheap", handler = function() return 200, "cheap" end },
}
]=]

local function fetch(port, query)
  local code, body = srv.http(port, "GET", "/v1/fetch?" .. query)
  local ok, doc = pcall(cjson.decode, body)
  return code, ok and doc or body
end

local function enc(s)
  return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

local function cheap(port)
  local code, body = srv.http(port, "GET", "/v1/cheap")
  return code, body
end

local function metric(port, pattern)
  local _, text = srv.http(port, "GET", "/metrics")
  return tonumber(text:match(pattern))
end

local function start_server(up, env)
  local dir = srv.lua_dir({ ["routes/spec.lua"] = ROUTES:gsub("@UP@", up.url) })
  env = env or {}
  env.STRATA_LUA_DIR, env.STRATA_WORKERS = dir, "1"
  local server = srv.start(env)
  assert.equal(200, (srv.await(server.port, "/ready", 200, 10)), server.log())
  return server, dir
end

local function stop_server(server, dir)
  assert.equal(0, server.stop(), server.log())
  server.cleanup()
  os.execute("rm -rf " .. srv.quote(dir))
end

-- Runs `path` with curl in the background; returns a function that waits
-- for it and answers status and body.
local function background(port, path)
  local out = os.tmpname()
  os.execute(("curl -s -m 30 -o %s -w '%%{http_code}' http://127.0.0.1:%d%s > %s.code 2>/dev/null &"):format(
    srv.quote(out), port, srv.quote(path), srv.quote(out)))
  return function()
    local code
    for _ = 1, 300 do
      local f = io.open(out .. ".code")
      code = f and tonumber(f:read("a"))
      if f then f:close() end
      if code then break end
      srv.sleep(0.05)
    end
    local f = io.open(out)
    local body = f and f:read("a") or ""
    if f then f:close() end
    os.remove(out)
    os.remove(out .. ".code")
    return code, body
  end
end

describe("strata.http.request #server", function()
  local up, server, dir

  setup(function()
    up = upstream.start()
    server, dir = start_server(up)
  end)

  teardown(function()
    up.stop() -- first: an assertion failing below must not leave it running
    stop_server(server, dir)
  end)

  describe("answers", function()
    it("returns status, headers with lower-case names (repeats joined) and body", function()
      local code, doc = fetch(server.port, "path=/ok")
      assert.equal(200, code)
      assert.equal(200, doc.status)
      assert.equal('{"ok":true}', doc.body)
      assert.equal("1", doc.headers["x-up"])
      assert.equal("a=1, b=2", doc.headers["set-cookie"])
      assert.equal("application/json", doc.headers["content-type"])
    end)

    it("sends the method, the headers and the body", function()
      local code, body = srv.http(server.port, "POST", "/v1/put", "line 1\nline 2\tbin")
      assert.equal(200, code, body)
      local doc = cjson.decode(body)
      assert.equal(200, doc.status)
      assert.equal("PUT", doc.echo.method)
      assert.equal("/echo?x=1", doc.echo.path)
      assert.equal("yes", doc.echo.headers["x-test"])
      assert.equal("text/plain", doc.echo.headers["content-type"])
      assert.equal("line 1\nline 2\tbin", doc.echo.body)
    end)

    it("returns an upstream's 500 as an answer, not as an error", function()
      local _, doc = fetch(server.port, "path=/status/500")
      assert.equal(500, doc.status)
      assert.equal("upstream says 500", doc.body)
    end)

    it("reuses the worker's connections to an upstream", function()
      local before = up.stats().connections
      for _ = 1, 4 do assert.equal(200, fetch(server.port, "path=/ok")) end
      -- Counted: at most one new connection for the fetches, one for the stats call itself.
      assert.is_true(up.stats().connections - before <= 2)
    end)

    it("raises for a header that could split the request (a programmer's error)", function()
      local code, body = srv.http(server.port, "GET", "/v1/bad-header")
      assert.equal(500, code, body)
      assert.matches("bad header", server.log(), 1, true)
    end)
  end)

  describe("errors", function()
    it("timeout: the answer did not come within timeout_ms", function()
      local code, doc = fetch(server.port, "timeout_ms=200&path=" .. enc("/slow?ms=3000"))
      assert.equal(502, code)
      assert.equal("timeout", doc.code)
      assert.is_string(doc.message)
    end)

    it("timeout: no connection within connect_timeout_ms (a listener whose backlog is full)", function()
      local socket = require("socket")
      local l = assert(socket.tcp())
      assert(l:bind("127.0.0.1", 0))
      assert(l:listen(0)) -- never accepts: one connection fills the queue, later SYNs are dropped
      local _, port = l:getsockname()
      local fillers = {}
      for i = 1, 3 do
        fillers[i] = assert(socket.tcp())
        fillers[i]:settimeout(0.2)
        fillers[i]:connect("127.0.0.1", port) -- the first is queued, the others wait for their SYN's answer
      end
      local code, doc = fetch(server.port, "connect_timeout_ms=300&timeout_ms=20000&url=" .. enc("http://127.0.0.1:" .. port .. "/"))
      for _, c in ipairs(fillers) do c:close() end
      l:close()
      assert.equal(502, code)
      assert.equal("timeout", doc.code)
      -- libcurl's words for the connect phase, not for the whole transfer's timeout_ms
      assert.matches("[Cc]onnect", doc.message)
      assert.not_matches("Operation timed out", doc.message)
    end)

    it("connect: nothing listens on the port", function()
      local _, doc = fetch(server.port, "url=" .. enc("http://127.0.0.1:" .. srv.free_port() .. "/"))
      assert.equal("connect", doc.code)
    end)

    it("dns: the name does not resolve", function()
      local _, doc = fetch(server.port, "url=" .. enc("http://nothing-here.invalid/"))
      assert.equal("dns", doc.code)
    end)

    it("too_large: a body over max_bytes, announced by Content-Length or not", function()
      local _, doc = fetch(server.port, "max_bytes=1000&path=" .. enc("/huge?n=5000"))
      assert.equal("too_large", doc.code)
      _, doc = fetch(server.port, "max_bytes=1000&path=" .. enc("/huge?n=50000&chunked=1"))
      assert.equal("too_large", doc.code)
      local _, ok = fetch(server.port, "max_bytes=5000&path=" .. enc("/huge?n=5000"))
      assert.equal(5000, #ok.body)
    end)

    it("http: the upstream closed before the body it promised", function()
      local _, doc = fetch(server.port, "path=/truncated")
      assert.equal("http", doc.code)
    end)

    it("url: a scheme other than http and https", function()
      local _, doc = fetch(server.port, "url=" .. enc("ftp://127.0.0.1/x"))
      assert.equal("url", doc.code)
    end)

    it("counts transfers by result and errors by code in /metrics", function()
      assert.is_true(metric(server.port, 'strata_http_client_requests_total{result="ok"} (%d+)') >= 3)
      assert.is_true(metric(server.port, 'strata_http_client_errors_total{code="timeout"} (%d+)') >= 1)
      assert.is_true(metric(server.port, 'strata_http_client_errors_total{code="too_large"} (%d+)') >= 2)
      assert.is_true(metric(server.port, 'strata_http_client_duration_seconds_count (%d+)') >= 9)
      assert.equal(0, metric(server.port, 'strata_http_client_open_transfers (%d+)'))
    end)
  end)

  describe("on_chunk", function()
    it("hands a 2xx body over piece by piece and returns an empty body", function()
      local code, body = srv.http(server.port, "GET", "/v1/chunks?path=" .. enc("/chunks?n=4&size=3&ms=20"))
      assert.equal(200, code, body)
      local doc = cjson.decode(body)
      assert.equal("000111222333", doc.streamed)
      assert.equal("", doc.body)
      assert.is_true(doc.calls >= 1 and doc.calls <= 4)
    end)

    it("hands over a large body within max_bytes whole, in order", function()
      local _, body = srv.http(server.port, "GET", "/v1/chunks?path=" .. enc("/huge?n=1000000&chunked=1"))
      local doc = cjson.decode(body)
      assert.equal(1000000, #doc.streamed)
      assert.is_nil(doc.streamed:find("[^x]"))
    end)

    it("stops the transfer when on_chunk returns false (cancelled)", function()
      local code, body = srv.http(server.port, "GET", "/v1/chunks?stop=1&path=" .. enc("/stream-hang"))
      assert.equal(502, code, body)
      local doc = cjson.decode(body)
      assert.equal("cancelled", doc.err.code)
      assert.equal(1, doc.calls)
      local st = up.await(function(s) return s.hang_open == 0 end)
      assert.equal(0, st.hang_open)
    end)

    it("stops the transfer when on_chunk raises (the handler answers 500)", function()
      local before = up.stats().hang_closed
      local code = srv.http(server.port, "GET", "/v1/chunk-error")
      assert.equal(500, code)
      assert.matches("on_chunk failed", server.log(), 1, true)
      local st = up.await(function(s) return s.hang_closed == before + 1 end)
      assert.equal(before + 1, st.hang_closed)
    end)

    it("returns a non-2xx body whole instead of streaming it", function()
      local _, body = srv.http(server.port, "GET", "/v1/chunks?path=" .. enc("/status/503"))
      local doc = cjson.decode(body)
      assert.equal(503, doc.status)
      assert.equal(0, doc.calls)
      assert.equal("upstream says 503", doc.body)
    end)
  end)

  describe("on the worker's loop", function()
    it("runs 40 transfers at once on one worker while a cheap route still answers", function()
      local waits = {}
      for i = 1, 40 do waits[i] = background(server.port, "/v1/fetch?path=/gate") end
      local st = up.await(function(s) return s.gate_waiting == 40 end)
      assert.equal(40, st.gate_waiting)
      assert.same({ 200, "cheap" }, { cheap(server.port) })
      assert.equal(40, metric(server.port, "strata_http_client_open_transfers (%d+)"))
      assert.equal(200, (srv.http(up.port, "POST", "/release")))
      for i = 1, 40 do
        local code, body = waits[i]()
        assert.equal(200, code)
        assert.equal("opened", cjson.decode(body).body)
      end
    end)

    it("cancels the transfer when the client goes away (the upstream sees its connection close)", function()
      local before = up.stats().hang_closed
      local c = srv.connect(server.port)
      assert(c:send("GET /v1/fetch?path=/hang HTTP/1.1\r\nHost: x\r\n\r\n"))
      local st = up.await(function(s) return s.hang_open == 1 end)
      assert.equal(1, st.hang_open)
      c:close()
      st = up.await(function(s) return s.hang_closed == before + 1 end)
      assert.equal(before + 1, st.hang_closed)
      assert.equal(0, st.hang_open)
      assert.same({ 200, "cheap" }, { cheap(server.port) })
    end)

    it("cancels the transfers of the old scripts at a reload", function()
      local wait = background(server.port, "/v1/fetch?path=/hang")
      up.await(function(s) return s.hang_open == 1 end)
      local code = srv.http(server.port, "POST", "/admin/reload")
      assert.equal(200, code)
      local status, body = wait()
      assert.equal(502, status, body)
      assert.equal("cancelled", cjson.decode(body).code)
      assert.equal(0, up.await(function(s) return s.hang_open == 0 end).hang_open)
    end)

    it("cancels the transfers at a shutdown, which then ends cleanly", function()
      local wait = background(server.port, "/v1/fetch?path=/hang")
      up.await(function(s) return s.hang_open == 1 end)
      assert.equal(0, server.stop(), server.log())
      local status, body = wait()
      assert.equal(502, status, body)
      assert.equal("cancelled", cjson.decode(body).code)
    end)
  end)
end)

describe("strata.http.request through a proxy #server", function()
  it("takes the proxy from http_proxy (the fake upstream answers as the proxy)", function()
    local up = upstream.start()
    finally(up.stop)
    local server, dir = start_server(up, { http_proxy = up.url, no_proxy = "" })
    local before = up.stats().requests
    local code, doc = fetch(server.port, "url=" .. enc("http://upstream.example.invalid/ok"))
    stop_server(server, dir)
    local after = up.stats().requests
    assert.equal(200, code)
    assert.equal('{"ok":true}', doc.body)
    assert.equal(before + 2, after) -- the proxied request, then this stats call
  end)
end)

describe("strata.http.request over TLS #server", function()
  local up

  setup(function() up = upstream.start(true) end)
  teardown(function() up.stop() end)

  it("refuses a certificate no trusted CA signed (tls)", function()
    local server, dir = start_server(up)
    local code, doc = fetch(server.port, "path=/ok")
    stop_server(server, dir)
    assert.equal(502, code)
    assert.equal("tls", doc.code)
  end)

  it("accepts it with http_ca_file naming its CA", function()
    local server, dir = start_server(up, { STRATA_HTTP_CA_FILE = up.cert })
    local code, doc = fetch(server.port, "path=/ok")
    stop_server(server, dir)
    assert.equal(200, code)
    assert.equal('{"ok":true}', doc.body)
  end)
end)

-- HTTP/2 where the server offers it (ALPN over TLS): a local nginx (Debian's,
-- with its http_v2 module) answers each request with the protocol it spoke.
describe("strata.http.request over HTTP/2 #server", function()
  local has_nginx = os.execute("command -v nginx >/dev/null 2>&1")
  local dir, port, cert

  setup(function()
    if not has_nginx then return end
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. srv.quote(dir .. "/tmp")))
    local key
    cert, key = upstream.self_signed(dir)
    port = srv.free_port()
    srv.write(dir .. "/nginx.conf", ([[
daemon off;
worker_processes 1;
pid %s/nginx.pid;
error_log %s/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %s/tmp; proxy_temp_path %s/tmp; fastcgi_temp_path %s/tmp;
  uwsgi_temp_path %s/tmp; scgi_temp_path %s/tmp;
  server {
    listen 127.0.0.1:%d ssl http2;
    ssl_certificate %s;
    ssl_certificate_key %s;
    location / { default_type text/plain; return 200 "$server_protocol"; }
  }
}
]]):format(dir, dir, dir, dir, dir, dir, dir, port, cert, key))
    assert(os.execute(("nginx -p %s -c %s/nginx.conf >%s/out.log 2>&1 &"):format(srv.quote(dir), srv.quote(dir), srv.quote(dir))))
    for _ = 1, 100 do
      local c = require("socket").connect("127.0.0.1", port)
      if c then c:close(); break end
      srv.sleep(0.05)
    end
  end)

  teardown(function()
    if not dir then return end
    local f = io.open(dir .. "/nginx.pid")
    local pid = f and f:read("*n")
    if f then f:close() end
    if pid then os.execute("kill " .. math.tointeger(pid)) end
    os.execute("rm -rf " .. srv.quote(dir))
  end)

  it("speaks HTTP/2 to a TLS server that offers it", function()
    if not has_nginx then return pending("nginx is not installed") end
    local server, sdir = start_server({ url = "" }, { STRATA_HTTP_CA_FILE = cert })
    local code, doc = fetch(server.port, "url=" .. enc(("https://127.0.0.1:%d/"):format(port)))
    stop_server(server, sdir)
    assert.equal(200, code, cjson.encode(doc))
    assert.equal(200, doc.status)
    assert.equal("HTTP/2.0", doc.body)
  end)
end)
