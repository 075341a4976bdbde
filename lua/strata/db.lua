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

local pcall, select, error, type = pcall, select, error, type
local pack, unpack = table.pack, table.unpack

local M = {}

-- The caller's identity, as Supabase/PostgREST set it per transaction, so
-- SQL using auth.uid() / auth.role() / auth.jwt() sees the caller.
local CLAIMS_SQL = "select set_config('request.jwt.claims', $1, true), "
  .. "set_config('request.jwt.claim.sub', $2, true), set_config('request.jwt.claim.role', $3, true)"

--- One statement, outside any transaction (or inside the current one).
function M.query(sql, ...)
  return pg.query(sql, ...)
end

local function set_identity()
  local req = runtime_requests.current()
  local auth = req and req.auth or {}
  local claims = auth.claims or {}
  return pg.query(CLAIMS_SQL, cjson.encode(claims), auth.uid or "", auth.role or "anon")
end

--- Runs fn(tx) on one connection inside BEGIN ... COMMIT.  fn's queries go
-- through tx.query (db.query works too).  COMMIT when fn returns; ROLLBACK
-- when it raises (the error is raised again) or returns nil, err (which is
-- returned).  The connection goes back to the pool clean either way.
function M.transaction(fn)
  if type(fn) ~= "function" then error("db.transaction expects a function", 2) end
  local ok, err = pg.begin()
  if not ok then return nil, err end
  ok, err = set_identity()
  if not ok then
    pg.rollback()
    return nil, err
  end
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
