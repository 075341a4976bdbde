-- spec/fuzz/stub.lua: the `strata` C modules as the fuzz drivers need them,
-- without a server: the configuration of conf/strata.lua, a crypto with
-- real SHA-256 and HMAC (fuzz.c), logging and metrics that do nothing, and
-- a database that is down (every statement answers nil, err) unless the
-- driver sets stub.answer, so that a handler reads its input and stops at
-- its first statement with a 5xx.  Any other strata.* C module is a stub
-- whose functions answer nil, err.
--
--   local stub = require("stub")
--   stub.answer = function(sql, ...) -> rows | nil    what the database answers
--   stub.expect(ok, why, ...)       raises (a finding) when ok is false
--   stub.check_answer(status, body) the shape of a handler's answer
--   stub.check_rest(status, body)   and no 5xx but the stub database's
--   stub.query_of(query_string)     req.query as the server builds it

local fuzzc = require("fuzz.c")

local M = {}

M.DB_DOWN = { code = "08006", message = "fuzz: no database", status = 503 }

local function down() return nil, M.DB_DOWN end

-- A module whose unknown functions answer nil, DB_DOWN.
local function loose(fields)
  return setmetatable(fields or {}, { __index = function() return down end })
end

local function noop() end

local conf = dofile("conf/strata.lua")
local config = {
  schemas = { "public", "orchestrator", "agentflow" },
  max_rows = 1000,
  rest_rls = false,
  rest_aggregates = true,
  rest_plans = true,
  workers = 1,
  listen = conf.listen,
  rate_limit_user_per_minute = 600,
  rate_limit_anon_per_minute = 60,
  auth = { bcrypt_cost = 4, jwt_exp = conf.auth_jwt_exp, autoconfirm = true, disable_signup = false,
    site_url = conf.auth_site_url, rate_limit_address = 30, rate_limit_email = 10 },
  provider_base_url = function(name) return "http://fake-" .. name end,
  api_key = function() return "fuzz-key" end,
}

local HEX = {}
for i = 0, 255 do HEX[string.char(i)] = ("%02x"):format(i) end

-- As strict as lmod_crypto.c: a wrong argument raises there too.
local function str(s, fn)
  if type(s) ~= "string" and type(s) ~= "number" then error(("bad argument #1 to '%s'"):format(fn), 3) end
  return tostring(s)
end
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local function base64url(s)
  s = str(s, "base64url")
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local v = (a << 16) | ((b or 0) << 8) | (c or 0)
    for j = 0, (b == nil and 1 or c == nil and 2 or 3) do
      local k = (v >> (18 - 6 * j)) & 63
      out[#out + 1] = B64:sub(k + 1, k + 1)
    end
  end
  return table.concat(out)
end

local crypto = {
  sha256 = function(s) return fuzzc.sha256(str(s, "sha256")) end,
  hmac_sha256 = function(k, m) return fuzzc.hmac_sha256(str(k, "hmac_sha256"), str(m, "hmac_sha256")) end,
  equal = function(a, b) return fuzzc.equal(str(a, "equal"), str(b, "equal")) end,
  hex = function(s) return (str(s, "hex"):gsub(".", HEX)) end,
  base64url = base64url,
  random_bytes = function(n) return ("\1"):rep(n) end,
  random_token = function(n) return base64url(("\1"):rep(n or 32)) end,
  bcrypt_hash = function(p) str(p, "bcrypt_hash"); return "$2b$04$" .. ("x"):rep(53) end,
  -- The one password the stub's hashes take.
  bcrypt_verify = function(p, h) str(p, "bcrypt_verify"); str(h, "bcrypt_verify"); return p == "fuzz-password" end,
  jwt_sign = function(payload)
    if type(payload) ~= "table" and type(payload) ~= "string" then error("bad argument #1 to 'jwt_sign'", 2) end
    return "eyJhbGciOiJIUzI1NiJ9.e30.sig"
  end,
  jwks = function() return '{"keys":[]}' end,
}

local log = loose({ activity = noop, error = noop, info = noop, warn = noop, debug = noop,
  hash = function(s) return crypto.hex(fuzzc.hmac_sha256("fuzz", s)) end })

-- The database: down, except for what a driver answers through
-- M.answer(sql, ...) -> rows | nil.
local function query(sql, ...)
  local rows = M.answer and M.answer(sql, ...)
  if rows then return rows end
  return down()
end
local TX = { query = query }
local db = loose({ query = query, query_as_service = query,
  transaction = function(fn) return fn(TX) end })

local PRELOAD = {
  ["strata.config"] = config,
  ["strata.crypto"] = crypto,
  ["strata.log"] = log,
  ["strata.auth"] = loose({ count = noop }),
  ["strata.pg"] = loose({ query = query, bypass_query = query, in_transaction = function() return false end,
    begin = function() if M.answer then return true end return down() end,
    commit = function() if M.answer then return true end return down() end,
    rollback = function() return true end }),
  ["strata.db"] = db,
  ["strata.broker"] = loose({ sync = noop, ready = function() return false end, catalog_version = function() return 1 end }),
  ["strata.health"] = loose({ keys = function() return {} end, warn = function() return false end, clear = noop }),
  ["strata.http"] = loose({
    url_encode = function(s) return (tostring(s):gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end)) end,
  }),
}
for name, mod in pairs(PRELOAD) do
  package.preload[name] = function() return mod end
end
-- Any other C module of strata's (no Lua file of that name): a loose stub.
table.insert(package.searchers, function(name)
  if name:match("^strata%.") then return function() return loose({}) end end
  return nil
end)

--- Raises (a finding: the harness aborts) unless ok.
function M.expect(ok, why, ...)
  if not ok then error(why:format(...), 2) end
end

--- A handler's (status, body[, headers]): an HTTP status and a string or
-- table body.
function M.check_answer(status, body)
  M.expect(math.type(status) == "integer" and status >= 200 and status <= 599, "bad status %s", tostring(status))
  M.expect(body == nil or type(body) == "string" or type(body) == "table", "bad body type %s", type(body))
end

--- strata.rest.run's answer: a 2xx-4xx, or the stub database's 503.
function M.check_rest(status, body)
  M.check_answer(status, body)
  if status >= 500 then
    M.expect(type(body) == "table" and body.code == M.DB_DOWN.code, "answered %d: %s", status,
      type(body) == "table" and tostring(body.message) or tostring(body))
  end
end

--- The query table a request's query string makes (repeated keys as lists),
-- as the server builds req.query: split on & and the first =, %XX decoded.
local function unescape(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

function M.query_of(qs)
  local q = {}
  for pair in qs:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=(.*)$")
    k, v = unescape(k or pair), unescape(v or "")
    local old = q[k]
    if old == nil then q[k] = v
    elseif type(old) == "table" then old[#old + 1] = v
    else q[k] = { old, v } end
  end
  return q
end

return M
