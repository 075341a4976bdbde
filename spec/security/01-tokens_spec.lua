local cjson = require("cjson")
local mime = require("mime")
local srv = require("server_helpers")
local A = require("fixtures.auth")

local function b64url(s) return (mime.b64(s):gsub("[+/=]", { ["+"] = "-", ["/"] = "_", ["="] = "" })) end
local function hmac(alg, secret, input)
  local f = assert(io.open(os.tmpname(), "wb"))
  local p = assert(io.popen(("printf %%s %s | openssl dgst -%s -hmac %s -binary"):format(srv.quote(input), alg, srv.quote(secret))))
  local sig = p:read("a")
  p:close()
  f:close()
  return sig
end
local function jwt(header, payload, secret, dgst)
  local input = b64url(cjson.encode(header)) .. "." .. b64url(cjson.encode(payload))
  return input .. "." .. b64url(hmac(dgst or "sha256", secret or A.SECRET, input))
end

describe("probe #server", function()
  it("x", function()
    local s = A.start()
    local _, sess = A.call(s.port, "POST", "/signup", { email = A.email("tok"), password = "secret-pw" })
    local now = os.time()
    local uid = sess.user.id
    local base = { sub = uid, role = "authenticated", aud = "authenticated", iat = now, exp = now + 600 }
    local function with(t) local o = {} for k, v in pairs(base) do o[k] = v end for k, v in pairs(t) do o[k] = v end return o end
    local _, sess2 = A.call(s.port, "POST", "/token?grant_type=password", { email = sess.user.email, password = "secret-pw" })
    A.call(s.port, "POST", "/logout?scope=local", nil, sess2.access_token)
    local toks = {
      none = false,
      empty = "",
      malformed = "abc.def",
      garbage = "a.b.c",
      alg_none = b64url('{"alg":"none","typ":"JWT"}') .. "." .. b64url(cjson.encode(base)) .. ".",
      alg_hs512 = jwt({ alg = "HS512", typ = "JWT" }, base, A.SECRET, "sha512"),
      alg_rs256_hmac = jwt({ alg = "RS256", typ = "JWT" }, base),
      wrong_key = jwt({ alg = "HS256", typ = "JWT" }, base, "another-secret"),
      expired = jwt({ alg = "HS256", typ = "JWT" }, with({ exp = now - 3600 })),
      not_yet = jwt({ alg = "HS256", typ = "JWT" }, with({ nbf = now + 3600 })),
      revoked = sess2.access_token,
      other_aud = jwt({ alg = "HS256", typ = "JWT" }, with({ aud = "someone-else" })),
      good = sess.access_token,
    }
    for name, t in pairs(toks) do
      for _, path in ipairs({ "/rest/v1/Chat?select=id", "/v1/hello/x", "/auth/v1/user" }) do
        local hs = {}
        if t then hs.Authorization = "Bearer " .. t end
        local code, body = srv.http(s.port, "GET", path, nil, hs)
        print(name, path, code, body:sub(1, 200))
      end
    end
    s.stop() s.cleanup()
  end)
end)
