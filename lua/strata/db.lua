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

local pcall, error, type = pcall, error, type
local pack, unpack = table.pack, table.unpack

local M = {}

-- Every statement carries PostgREST's per-request settings, so SQL written
-- for Supabase (auth.uid(), auth.role(), auth.jwt(),
-- current_setting('request.headers')) sees the caller: claims, the legacy
-- claim.sub and claim.role, method, path, headers (JSON, names in lower
-- case) and the SQL role (SET LOCAL ROLE; sql/100_api_role_grants.sql).  The
-- request object builds them once, in C; strata.pg applies them in the same
-- round trip as each statement (or once per transaction), local to that
-- statement's or transaction's scope.

--- One statement, in its own implicit transaction with the request's
-- settings (or inside the current transaction).
M.query = pg.caller_query

--- The same as the service (claims {"role":"service_role"}, SQL role
-- service_role): for trusted server work, never on a caller's behalf
-- without a check of your own.  Inside a transaction, the transaction's
-- identity applies.
M.query_as_service = pg.service_query

--- Runs fn(tx) on one connection inside BEGIN ... COMMIT, as the caller (or,
-- with opts.as_service, as the service; opts.bypass_rls is strata.rest's:
-- the caller's settings under the SQL role service_role, for statements
-- that carry the caller's Lua row policy themselves).  fn's queries go
-- through tx.query (db.query works too).  COMMIT when fn returns; ROLLBACK
-- when it raises (the error is raised again) or returns nil, err (which is
-- returned).  The connection goes back to the pool clean either way.
function M.transaction(fn, opts)
  if type(fn) ~= "function" then error("db.transaction expects a function", 2) end
  if opts ~= nil and type(opts) ~= "table" then error("db.transaction: opts must be a table", 2) end
  local ok, err = pg.begin(opts and (opts.as_service and "service" or opts.bypass_rls and "bypass") or true)
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
