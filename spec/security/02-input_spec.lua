-- Hostile bytes: NUL bytes and invalid UTF-8 in the request line, headers,
-- query and JSON bodies; duplicate or contradictory framing (request
-- smuggling); numbers past every range; JSON nested past the decoder's
-- depth limit (1000 levels: cjson's decode_max_depth); bodies of a million
-- keys.  Each is answered with a 4xx that names the problem, never a 5xx,
-- and the server keeps serving.
local cjson = require("cjson")
local srv = require("server_helpers")

local SECRET = "input-spec-secret"

-- Sends one request on a new connection; status and decoded body (or the raw text).
local function send(port, request)
  local c = srv.connect(port)
  c:settimeout(60)
  assert(c:send(request))
  local status, _, body = srv.read_response(c)
  c:close()
  local ok, doc = pcall(cjson.decode, body or "")
  return status, ok and doc or body
end

local function post(port, path, body, headers)
  local hs = {}
  for k, v in pairs(headers or {}) do hs[#hs + 1] = k .. ": " .. v .. "\r\n" end
  return send(port, ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s")
    :format(path, table.concat(hs), #body, body))
end

local function get(port, path, headers)
  local hs = {}
  for k, v in pairs(headers or {}) do hs[#hs + 1] = k .. ": " .. v .. "\r\n" end
  return send(port, ("GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n"):format(path, table.concat(hs)))
end

-- A JSON object of n members "k<i>": 1.
local function keys(n)
  local t = {}
  for i = 1, n do t[i] = '"k' .. i .. '":1' end
  return "{" .. table.concat(t, ",") .. "}"
end

describe("hostile input #server", function()
  local s, port, svc

  setup(function()
    s = srv.start({ STRATA_JWT_SECRET = SECRET })
    port = s.port
    assert.equal(200, (srv.await(port, "/ready", 200, 10)), s.log())
    svc = { Authorization = "Bearer " .. srv.token(SECRET, "--role service_role") }
  end)

  teardown(function()
    assert.equal(0, s.stop(), s.log())
    s.cleanup()
  end)

  after_each(function()
    assert.equal(200, (srv.http(port, "GET", "/health")))
  end)

  describe("framing", function()
    local BAD = {
      { "a NUL in a header value", "GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n" },
      { "a NUL in a header name", "GET /health HTTP/1.1\r\nHost: x\r\nX\0A: b\r\n\r\n" },
      { "a NUL in the path", "GET /hea\0lth HTTP/1.1\r\nHost: x\r\n\r\n" },
      { "two different Content-Lengths", "POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc" },
      { "a Content-Length list", "POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc" },
      { "Content-Length with Transfer-Encoding", "POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
        .. "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" },
      { "a Content-Length past 2^64", "POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n" },
      { "a negative Content-Length", "POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n" },
    }
    for _, case in ipairs(BAD) do
      it("answers 400 bad_request to " .. case[1], function()
        local status, doc = send(port, case[2])
        assert.equal(400, status)
        assert.equal("bad_request", doc.code)
      end)
    end

    it("answers 413 to a chunk size past 2^64", function()
      local status, doc = send(port, "POST /v1/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        .. "ffffffffffffffffffff\r\n")
      assert.equal(413, status)
      assert.equal("body_too_large", doc.code)
    end)

    it("passes header values with bytes that are not UTF-8 through as opaque bytes", function()
      assert.equal(200, (get(port, "/health", { ["X-A"] = "\xff\xfe" })))
      -- request.headers reaches PostgreSQL with U+FFFD for them, as PostgREST decodes headers.
      local status, doc = get(port, "/rest/v1/Chat?select=id&limit=1", { ["User-Agent"] = "\xc3\x28",
        Authorization = svc.Authorization })
      assert.equal(200, status, cjson.encode(doc))
      status, doc = get(port, "/rest/v1/Chat?select=id&limit=1", { Prefer = "count=\xff", Authorization = svc.Authorization })
      assert.equal(200, status, cjson.encode(doc))
      status = get(port, "/rest/v1/Chat\xff\xfe?select=id", svc)
      assert.is_true(status >= 400 and status < 500, tostring(status))
    end)
  end)

  describe("the REST API", function()
    local USER = "00000000-0000-0000-0000-000000000001"

    it("answers 400 to \\u0000 and to invalid UTF-8 in a JSON string", function()
      local status, doc = post(port, "/rest/v1/Chat", '{"title":"a\\u0000b","user_id":"' .. USER .. '"}', svc)
      assert.equal(400, status)
      assert.equal("22P05", doc.code)
      status, doc = post(port, "/rest/v1/Chat", '{"title":"a\xff\xfeb","user_id":"' .. USER .. '"}', svc)
      assert.equal(400, status)
      assert.equal("22021", doc.code)
    end)

    it("answers 400 invalid_json to a raw NUL byte in the body", function()
      local status, doc = post(port, "/rest/v1/Chat", '{"title":"a\0b"}', svc)
      assert.equal(400, status)
      assert.equal("invalid_json", doc.code)
    end)

    it("answers 400 to NUL bytes and invalid UTF-8 in the query", function()
      local status, doc = get(port, "/rest/v1/Chat?title=eq.%FF%FE", svc)
      assert.equal(400, status)
      assert.equal("22021", doc.code)
      status = get(port, "/rest/v1/Chat?title=eq.a%00b", svc)
      assert.equal(400, status)
      status = get(port, "/rest/v1/Chat?sel%00ect=id", svc)
      assert.is_true(status >= 400 and status < 500)
    end)

    it("answers 400 to numbers past every range in limits, filters and bodies", function()
      local huge = "999999999999999999999999"
      for _, path in ipairs({ "Chat?limit=" .. huge, "Chat?offset=" .. huge, "Chat?id=gt.1e400",
                              "model_config?max_tokens=gt." .. huge .. huge }) do
        local status, doc = get(port, "/rest/v1/" .. path, svc)
        assert.equal(400, status, path .. ": " .. cjson.encode(doc))
      end
      local status = post(port, "/rest/v1/model_config", '{"max_tokens":' .. huge .. huge .. "}", svc)
      assert.equal(400, status)
      status = post(port, "/rest/v1/Chat", '{"title":1e400,"user_id":"' .. USER .. '"}', svc)
      assert.is_true(status >= 200 and status < 500, tostring(status))
      status = get(port, "/rest/v1/Chat?select=id", { Range = "0-" .. huge, Authorization = svc.Authorization })
      assert.is_true(status >= 200 and status < 500, tostring(status))
    end)
  end)

  describe("JSON nesting", function()
    local deep = string.rep("[", 100000) .. string.rep("]", 100000)
    local PATHS = { "/rest/v1/Chat", "/rest/v1/rpc/get_user_role", "/v1/ai/render" }

    it("answers 400 invalid_json past 1000 levels on REST writes, RPC and Lua routes", function()
      for _, path in ipairs(PATHS) do
        local status, doc = post(port, path, deep, svc)
        assert.equal(400, status, path)
        assert.equal("invalid_json", doc.code, path)
        assert.matches("too many nested", doc.message)
      end
    end)

    it("answers GoTrue's 400 bad_json on /auth/v1", function()
      local status, doc = post(port, "/auth/v1/token?grant_type=password", deep)
      assert.equal(400, status)
      assert.equal("bad_json", doc.error_code)
    end)
  end)

  describe("bodies of many keys", function()
    it("answers 413 to 10 MB of JSON keys before decoding any", function()
      local body = keys(1100000)
      assert.is_true(#body > 10 * 1000 * 1000)
      for _, path in ipairs({ "/rest/v1/Chat", "/rest/v1/rpc/get_user_role", "/v1/ai/render", "/auth/v1/signup" }) do
        local status, doc = post(port, path, body, svc)
        assert.equal(413, status, path)
        assert.equal("body_too_large", doc.code)
      end
    end)

    it("answers 4xx to a body of max_body_bytes of keys on every JSON endpoint", function()
      local body = keys(80000) -- just under the default max_body_bytes (1 MB)
      assert.is_true(#body < 1048576)
      for _, path in ipairs({ "/rest/v1/Chat", "/rest/v1/rpc/get_user_role", "/v1/ai/render", "/auth/v1/signup",
                              "/auth/v1/token?grant_type=password" }) do
        local status, doc = post(port, path, body, svc)
        assert.is_true(status >= 400 and status < 500, path .. ": " .. tostring(status) .. " " .. cjson.encode(doc))
      end
    end)
  end)
end)
