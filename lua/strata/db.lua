-- strata.db: PostgreSQL for handlers, as straight-line code.  Each call
-- suspends the request's coroutine until the answer arrives; the worker
-- serves other requests meanwhile.
--
--   db.query(sql, ...)      -> rows | nil, err
--   db.transaction(fn)      -> fn's results | nil, err
--
-- Values are always parameters ($1, $2, ...), never spliced into SQL.
-- Types: int2/int4/int8 -> integers; float4/float8/numeric -> numbers (for
-- exact numeric, select `col::text`); bool -> booleans; json/jsonb -> Lua
-- tables; arrays -> Lua arrays; NULL -> cjson.null; everything else
-- (uuid, text, timestamps) -> strings.  Parameters: nil/cjson.null -> NULL,
-- tables -> JSON text (cast with $1::jsonb), booleans and numbers -> text;
-- a string holding a NUL byte is refused.
-- err is { code = SQLSTATE, message, detail, hint }; when the database
-- cannot be reached it also has status = 503, and a handler that raises it
-- (assert(db.query(...))) answers 503 with Retry-After.

local pg = require("strata.pg")
local cjson = require("cjson")
local runtime_requests = require("strata.requests")

local pcall, error, type, next = pcall, error, type, next
local pack, unpack = table.pack, table.unpack

local M = {}

-- PostgREST's per-request settings, so SQL written for Supabase (auth.uid(),
-- auth.role(), auth.jwt(), current_setting('request.headers')) sees the
-- caller: claims, the legacy claim.sub and claim.role, method, path,
-- headers (JSON, names in lower case) and the SQL role.  Built once per request; strata.pg
-- applies them in the same round trip as each statement (or once per
-- transaction), local to that statement's or transaction's scope.
local ANON_CLAIMS = '{"role":"anon"}'
-- The SQL role statements run as (SET LOCAL ROLE, sql/100_api_role_grants.sql).
-- A token may name any role; only the API roles exist in the database, so
-- another name runs as authenticated (with a sub) or anon, never as the
-- session's own, more privileged, user.
local SQL_ROLES = { anon = "anon", authenticated = "authenticated", service_role = "service_role" }
local by_request = setmetatable({}, { __mode = "k" })

local function settings()
  local req = runtime_requests.current()
  if not req then return nil end
  local s = by_request[req]
  if s then return s end
  local auth = req.auth or {}
  local claims = auth.claims_json
  if claims == nil or claims == "{}" then
    claims = auth.claims and next(auth.claims) and cjson.encode(auth.claims) or ANON_CLAIMS
  end
  local role = auth.role or "anon"
  s = { claims, auth.uid or "", role, req.method or "", req.path or "",
        cjson.encode(req.headers or {}), SQL_ROLES[role] or (auth.uid and "authenticated" or "anon") }
  by_request[req] = s
  return s
end

--- One statement, in its own implicit transaction with the request's
-- settings (or inside the current transaction).
function M.query(sql, ...)
  local s = settings()
  if s then return pg.query_as(s, sql, ...) end
  return pg.query(sql, ...)
end

--- Runs fn(tx) on one connection inside BEGIN ... COMMIT.  fn's queries go
-- through tx.query (db.query works too).  COMMIT when fn returns; ROLLBACK
-- when it raises (the error is raised again) or returns nil, err (which is
-- returned).  The connection goes back to the pool clean either way.
function M.transaction(fn)
  if type(fn) ~= "function" then error("db.transaction expects a function", 2) end
  local ok, err = pg.begin(settings())
  if not ok then return nil, err end
  local res = pack(pcall(fn, { query = pg.query }))
  if not res[1] then
    pg.rollback()
    error(res[2], 0)
  end
  if res.n >= 3 and res[2] == nil then
    pg.rollback()
    return nil, res[3]
  end
  ok, err = pg.commit()
  if not ok then return nil, err end
  return unpack(res, 2, res.n)
end

return M
