-- Asymmetric signing keys: /auth/v1 signs ES256 or RS256 with conf
-- jwt_signing_key (kid = its RFC 7638 thumbprint), publishes the public
-- keys at /auth/v1/.well-known/jwks.json, and every route verifies them by
-- kid, HS256 with the secret still accepted; rotation keeps the old key in
-- jwt_accepted_keys; alg/kid confusion is refused.
local cjson = require("cjson")
local mime = require("mime")
local srv = require("server_helpers")
local A = require("fixtures.auth")

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  assert(p:close(), out)
  return out
end

local function b64url(s) return (mime.b64(s):gsub("[+/=]", { ["+"] = "-", ["/"] = "_", ["="] = "" })) end

local function header(token)
  local p = token:match("^([^.]+)%.")
  p = p:gsub("-", "+"):gsub("_", "/")
  return cjson.decode((mime.unb64(p .. string.rep("=", (4 - #p % 4) % 4))))
end

describe("ES256 / RS256 signing keys #server", function()
  local dir, ec, rsa, ec_pub
  local servers = {}

  local function start(env)
    local s = A.start(env)
    servers[#servers + 1] = s
    return s
  end

  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    sh("mkdir -p " .. srv.quote(dir))
    ec, rsa, ec_pub = dir .. "/ec.pem", dir .. "/rsa.pem", dir .. "/ec.pub.pem"
    sh(("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s"):format(srv.quote(ec)))
    sh(("openssl pkey -in %s -pubout -out %s"):format(srv.quote(ec), srv.quote(ec_pub)))
    sh(("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s"):format(srv.quote(rsa)))
  end)

  teardown(function()
    for _, s in ipairs(servers) do
      assert.equal(0, s.stop(), s.log())
      s.cleanup()
    end
    os.execute("rm -rf " .. srv.quote(dir))
  end)

  local function rest(s, token)
    return (srv.http(s.port, "GET", "/rest/v1/Chat?select=id", nil, { Authorization = "Bearer " .. token }))
  end

  local function jwks(s)
    local code, doc = A.call(s.port, "GET", "/.well-known/jwks.json")
    assert.equal(200, code)
    return doc.keys
  end

  local function session(s)
    local code, doc = A.call(s.port, "POST", "/signup", { email = A.email("keys"), password = "secret-pw" })
    assert.equal(200, code, s.log())
    return doc
  end

  local es_token, es_kid, es_server

  it("signs ES256 with the key's thumbprint as kid, publishes it, and verifies it everywhere", function()
    es_server = start({ STRATA_JWT_SIGNING_ALG = "ES256", STRATA_JWT_SIGNING_KEY = ec })
    local keys = jwks(es_server)
    assert.equal(1, #keys)
    assert.equal("EC", keys[1].kty)
    assert.equal("P-256", keys[1].crv)
    assert.equal("ES256", keys[1].alg)
    assert.equal(43, #keys[1].x)
    assert.is_nil(keys[1].d) -- never the private part
    local s = session(es_server)
    local hd = header(s.access_token)
    assert.same({ alg = "ES256", kid = keys[1].kid, typ = "JWT" }, hd)
    es_token, es_kid = s.access_token, keys[1].kid
    assert.equal(200, rest(es_server, es_token))
    assert.equal(200, (A.call(es_server.port, "GET", "/user", nil, es_token)))
    -- The secret's HS256 tokens keep working beside it.
    assert.equal(200, rest(es_server, srv.token(A.SECRET, "--role anon")))
    -- One flipped signature byte: refused.
    local flipped = es_token:sub(1, -2) .. (es_token:sub(-1) == "A" and "B" or "A")
    assert.equal(401, rest(es_server, flipped))
  end)

  it("rotates: a new RS256 key signs, the old ES256 key still verifies and stays in the JWKS", function()
    local s2 = start({ STRATA_JWT_SIGNING_ALG = "RS256", STRATA_JWT_SIGNING_KEY = rsa, STRATA_JWT_ACCEPTED_KEYS = ec_pub })
    local keys = jwks(s2)
    assert.equal(2, #keys)
    assert.equal("RS256", keys[1].alg)
    assert.equal("AQAB", keys[1].e)
    assert.equal(es_kid, keys[2].kid)
    local s = session(s2)
    assert.same({ alg = "RS256", kid = keys[1].kid, typ = "JWT" }, header(s.access_token))
    assert.equal(200, rest(s2, s.access_token))
    assert.equal(200, rest(s2, es_token))
    -- An instance that dropped the old key refuses its tokens (unknown kid).
    local s3 = start({ STRATA_JWT_SIGNING_ALG = "RS256", STRATA_JWT_SIGNING_KEY = rsa })
    assert.equal(1, #jwks(s3))
    assert.equal(401, rest(s3, es_token))
    assert.equal(200, rest(s3, s.access_token))
  end)

  it("refuses alg/kid confusion: the ES256 key named as RS256, or its public key used as an HMAC secret", function()
    local _, payload, sig = es_token:match("^([^.]+)%.([^.]+)%.([^.]+)$")
    local as_rs = b64url(cjson.encode({ alg = "RS256", kid = es_kid, typ = "JWT" }))
    assert.equal(401, rest(es_server, as_rs .. "." .. payload .. "." .. sig))
    local f = assert(io.open(ec_pub))
    local pem = f:read("a")
    f:close()
    local hs = b64url(cjson.encode({ alg = "HS256", kid = es_kid, typ = "JWT" })) .. "." .. payload
    local hmac = sh(("printf %%s %s | openssl dgst -sha256 -hmac %s -binary | base64 -w0"):format(srv.quote(hs), srv.quote(pem)))
    local forged = hs .. "." .. hmac:gsub("[+/=]", { ["+"] = "-", ["/"] = "_", ["="] = "" })
    assert.equal(401, rest(es_server, forged))
    local code, body = srv.http(es_server.port, "GET", "/rest/v1/Chat", nil, { Authorization = "Bearer " .. forged })
    assert.equal(401, code)
    assert.truthy(body:find("signature", 1, true))
    -- An unknown kid, and an ES256 token without one.
    local nokid = b64url(cjson.encode({ alg = "ES256", typ = "JWT" }))
    assert.equal(401, rest(es_server, nokid .. "." .. payload .. "." .. sig))
  end)

  it("answers an empty JWKS when only the HS256 secret signs", function()
    local s = start()
    assert.same({}, jwks(s))
  end)

  it("refuses to start with a key that does not match jwt_signing_alg", function()
    local s = srv.start({ STRATA_JWT_SECRET = A.SECRET, STRATA_JWT_SIGNING_ALG = "ES256", STRATA_JWT_SIGNING_KEY = rsa })
    local st = s.wait(10)
    local log = s.log()
    s.cleanup()
    assert.is_true(st ~= nil and st ~= 0)
    assert.truthy(log:find("jwt_signing_alg", 1, true), log)
  end)
end)
