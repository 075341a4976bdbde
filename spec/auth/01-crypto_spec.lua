-- strata.crypto: digests, HMAC, constant-time comparison and randomness,
-- checked against published test vectors through a Lua route.
local cjson = require("cjson")
local srv = require("server_helpers")

local ROUTES = [=[
local crypto = require("strata.crypto")
local cjson_null = require("cjson").null
return {
  { method = "POST", path = "/v1/crypto", handler = function(req)
      local a = req.json
      local r1, r2 = crypto.random_bytes(16), crypto.random_bytes(16)
      local ok_big = pcall(crypto.random_bytes, 5000)
      return 200, {
        sha256 = crypto.hex(crypto.sha256(a.msg)),
        sha256_empty = crypto.hex(crypto.sha256("")),
        hmac = crypto.hex(crypto.hmac_sha256(a.key, a.msg)),
        hmac_len = #crypto.hmac_sha256(a.key, a.msg),
        hmac_empty_key = crypto.hex(crypto.hmac_sha256("", "")),
        equal_same = crypto.equal(a.msg, a.msg .. ""),
        equal_diff = crypto.equal(a.msg, a.msg:sub(1, -2) .. "!"),
        equal_len = crypto.equal(a.msg, a.msg .. "x"),
        random_len = #r1, random_differ = r1 ~= r2, random_big_raises = not ok_big,
        token = crypto.random_token(), token8 = crypto.random_token(8),
        hex = crypto.hex("\0\255\16"),
        b64 = { crypto.base64url(""), crypto.base64url("f"), crypto.base64url("fo"),
                crypto.base64url("foo"), crypto.base64url("\251\255") },
      }
    end },
  { method = "POST", path = "/v1/bcrypt", handler = function(req)
      local a = req.json
      local hash, herr = crypto.bcrypt_hash(a.password, a.cost)
      local out = { hash = hash, hash_err = herr }
      if hash then
        out.ok = crypto.bcrypt_verify(a.password, hash)
        out.wrong = crypto.bcrypt_verify(a.password .. "x", hash)
      end
      if a.stored then out.stored = crypto.bcrypt_verify(a.password, a.stored) end
      local v, verr = crypto.bcrypt_verify(a.password, a.bogus or "$1$md5$notbcrypt")
      out.bogus, out.bogus_err = v == nil and cjson_null or v, verr
      return 200, out
    end },
}
]=]

describe("strata.crypto #server", function()
  local server, dir, doc

  setup(function()
    dir = srv.lua_dir({ ["routes/crypto_spec.lua"] = ROUTES })
    server = srv.start({ STRATA_LUA_DIR = dir, STRATA_WORKERS = "1", STRATA_JWT_SECRET = "crypto-spec-secret" })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 10)), server.log())
    local code, body = srv.http(server.port, "POST", "/v1/crypto",
      cjson.encode({ key = "Jefe", msg = "what do ya want for nothing?" }), { ["Content-Type"] = "application/json" })
    assert.equal(200, code, body)
    doc = cjson.decode(body)
  end)

  teardown(function()
    assert.equal(0, server.stop(), server.log())
    server.cleanup()
    os.execute("rm -rf " .. srv.quote(dir))
  end)

  it("hashes with SHA-256 (FIPS 180 vectors)", function()
    assert.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", doc.sha256_empty)
    assert.equal(64, #doc.sha256)
  end)

  it("computes HMAC-SHA-256 as RFC 4231 test case 2 says, 32 raw bytes", function()
    assert.equal("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", doc.hmac)
    assert.equal(32, doc.hmac_len)
    assert.equal("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad", doc.hmac_empty_key)
  end)

  it("compares strings: equal, one byte off, other length", function()
    assert.is_true(doc.equal_same)
    assert.is_false(doc.equal_diff)
    assert.is_false(doc.equal_len)
  end)

  it("gives random bytes of the asked length, and raises past 4096", function()
    assert.equal(16, doc.random_len)
    assert.is_true(doc.random_differ)
    assert.is_true(doc.random_big_raises)
  end)

  it("encodes hex and unpadded base64url (RFC 4648 vectors)", function()
    assert.equal("00ff10", doc.hex)
    assert.same({ "", "Zg", "Zm8", "Zm9v", "-_8" }, doc.b64)
    assert.equal(43, #doc.token)
    assert.truthy(doc.token:match("^[%w_-]+$"))
    assert.equal(11, #doc.token8)
  end)

  local function bcrypt(args)
    local code, body = srv.http(server.port, "POST", "/v1/bcrypt", cjson.encode(args), { ["Content-Type"] = "application/json" })
    assert.equal(200, code, body)
    return cjson.decode(body)
  end

  it("hashes with bcrypt $2b$ at the asked cost and verifies, on the bcrypt threads", function()
    local r = bcrypt({ password = "correct horse", cost = 4 })
    assert.truthy(r.hash:match("^%$2b%$04%$[./%w]+$"))
    assert.equal(60, #r.hash)
    assert.is_true(r.ok)
    assert.is_false(r.wrong)
  end)

  it("verifies $2a$ hashes as other bcrypt libraries wrote them (OpenBSD's test vector)", function()
    local r = bcrypt({ password = "U*U", cost = 4, stored = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW" })
    assert.is_true(r.stored)
  end)

  it("refuses passwords over 72 bytes and hashes that are not bcrypt", function()
    local r = bcrypt({ password = string.rep("a", 73), cost = 4 })
    assert.equal("password_too_long", r.hash_err)
    assert.is_nil(r.hash)
    r = bcrypt({ password = "pw", cost = 4 })
    assert.equal("bad_hash", r.bogus_err)
    assert.equal(cjson.null, r.bogus)
  end)

  it("keeps serving while a slow hash runs (one worker)", function()
    -- Cost 14 takes a second or more: the worker's loop must answer /health meanwhile.
    local out = os.tmpname()
    os.execute(("curl -s -m 60 -H 'Content-Type: application/json' -d '{\"password\":\"pw\",\"cost\":14}' -o %s http://127.0.0.1:%d/v1/bcrypt &")
      :format(srv.quote(out), server.port))
    srv.sleep(0.3)
    local code = srv.http(server.port, "GET", "/health")
    assert.equal(200, code)
    local f = io.open(out, "rb")
    local text = f and f:read("a") or ""
    if f then f:close() end
    assert.equal("", text) -- the hash is still running
    for _ = 1, 600 do
      f = io.open(out, "rb")
      text = f and f:read("a") or ""
      if f then f:close() end
      if text ~= "" then break end
      srv.sleep(0.1)
    end
    os.remove(out)
    assert.truthy(cjson.decode(text).hash:match("^%$2b%$14%$"))
  end)
end)
