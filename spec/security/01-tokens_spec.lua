-- Every way a bearer token can be wrong, on each kind of endpoint: the
-- REST API (/rest/v1), a Lua route (/v1) and GoTrue's /auth/v1/user.
-- Each is refused with 401 and the error that names what is wrong, never
-- served, never a 5xx.
local cjson = require("cjson")
local mime = require("mime")
local srv = require("server_helpers")
local A = require("fixtures.auth")

local PATHS = { "/rest/v1/Chat?select=id", "/v1/hello/x", "/auth/v1/user" }

local function b64url(s) return (mime.b64(s):gsub("[+/=]", { ["+"] = "-", ["/"] = "_", ["="] = "" })) end

-- An HMAC-signed token (test secrets only: the secret is on openssl's command line).
local function sign(header, payload, secret, digest)
  local input = b64url(cjson.encode(header)) .. "." .. b64url(cjson.encode(payload))
  local p = assert(io.popen(("printf %%s %s | openssl dgst -%s -hmac %s -binary"):format(srv.quote(input),
    digest or "sha256", srv.quote(secret or A.SECRET))))
  local sig = p:read("a")
  p:close()
  return input .. "." .. b64url(sig)
end

local HS256 = { alg = "HS256", typ = "JWT" }

describe("bearer tokens #server", function()
  local s, good, ended, claims

  local function with(extra)
    local t = {}
    for k, v in pairs(claims) do t[k] = v end
    for k, v in pairs(extra) do t[k] = v end
    return t
  end

  local function get(path, token)
    local code, body, headers = srv.http(s.port, "GET", path, nil, token and { Authorization = "Bearer " .. token })
    local ok, doc = pcall(cjson.decode, body)
    return code, ok and doc or body, headers
  end

  setup(function()
    s = A.start()
    local _, sess = A.call(s.port, "POST", "/signup", { email = A.email("tokens"), password = "secret-pw" })
    good = sess.access_token
    local _, other = A.call(s.port, "POST", "/token?grant_type=password", { email = sess.user.email, password = "secret-pw" })
    ended = other.access_token
    assert.equal(204, (A.call(s.port, "POST", "/logout?scope=local", nil, ended)))
    local now = os.time()
    claims = { sub = sess.user.id, role = "authenticated", aud = "authenticated", iat = now, exp = now + 600 }
  end)

  teardown(function()
    assert.equal(0, s.stop(), s.log())
    s.cleanup()
  end)

  it("serves a good token everywhere", function()
    for _, path in ipairs(PATHS) do assert.equal(200, (get(path, good)), path) end
    assert.equal(200, (get("/rest/v1/Chat?select=id", sign(HS256, with({ aud = { "other", "authenticated" } })))))
  end)

  local CASES = {
    { "an empty bearer", function() return "" end, "PGRST301", "invalid token" },
    { "one segment short", function() return "abc.def" end, "PGRST301", "invalid token" },
    { "three segments of garbage", function() return "a.b.c" end, "PGRST301", "invalid token" },
    { "a NUL in the subject", function() return sign(HS256, with({ sub = "a\0b" })) end, "PGRST301", "invalid token" },
    { "a signature that is not base64url", function() return sign(HS256, claims):gsub("%.[^.]+$", ".!!!") end,
      "PGRST301", "invalid token" },
    { "alg none", function()
        return b64url('{"alg":"none","typ":"JWT"}') .. "." .. b64url(cjson.encode(claims)) .. "."
      end, "PGRST301", "invalid token" },
    { "alg HS512", function() return sign({ alg = "HS512", typ = "JWT" }, claims, nil, "sha512") end,
      "PGRST301", "unsupported token algorithm" },
    { "alg RS256 over an HMAC (key confusion)", function() return sign({ alg = "RS256", typ = "JWT" }, claims) end,
      "PGRST301", "unsupported token algorithm" },
    { "another key", function() return sign(HS256, claims, "not-the-secret") end, "PGRST301", "invalid token signature" },
    { "expired", function() return sign(HS256, with({ exp = os.time() - 3600 })) end, "PGRST303", "token expired" },
    { "not yet valid", function() return sign(HS256, with({ nbf = os.time() + 3600 })) end,
      "PGRST301", "token not yet valid" },
    { "another audience", function() return sign(HS256, with({ aud = "someone-else" })) end,
      "PGRST301", "token audience not accepted" },
    { "an audience of another type", function() return sign(HS256, with({ aud = 42 })) end,
      "PGRST301", "token audience not accepted" },
  }

  for _, case in ipairs(CASES) do
    local name, make, code, message = case[1], case[2], case[3], case[4]
    it("refuses " .. name .. " with 401 " .. code, function()
      local token = make()
      for _, path in ipairs(PATHS) do
        local status, doc, headers = get(path, token)
        assert.equal(401, status, path)
        assert.equal(code, doc.code, path)
        assert.truthy(doc.message:find(message, 1, true), path .. ": " .. tostring(doc.message))
        assert.equal('Bearer error="invalid_token"', headers["www-authenticate"], path)
      end
    end)
  end

  it("refuses an ended session's token: 401 on the API, GoTrue's 403 session_not_found on /auth/v1", function()
    for _, path in ipairs({ PATHS[1], PATHS[2] }) do
      local status, doc = get(path, ended)
      assert.equal(401, status, path)
      assert.equal("session ended", doc.message)
    end
    local status, doc = get("/auth/v1/user", ended)
    assert.equal(403, status)
    assert.equal("session_not_found", doc.error_code)
  end)

  it("without a token: anon on the API, 401 no_authorization on /auth/v1/user", function()
    assert.equal(200, (get(PATHS[1])))
    assert.equal(200, (get(PATHS[2])))
    local status, doc = get("/auth/v1/user")
    assert.equal(401, status)
    assert.equal("no_authorization", doc.error_code)
  end)

  it("takes a token from apikey alone, and refuses a bad one there too", function()
    local code = srv.http(s.port, "GET", PATHS[1], nil, { apikey = good })
    assert.equal(200, code)
    code = srv.http(s.port, "GET", PATHS[1], nil, { apikey = sign(HS256, claims, "not-the-secret") })
    assert.equal(401, code)
  end)
end)
