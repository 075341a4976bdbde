-- strata.rest.exec: how the statements of one REST call (strata.rest.run)
-- reach PostgreSQL.  As whom: the caller (strata.db's query and
-- transaction, with the request's settings), or, for a call made with
-- call.service (strata.data's as_service), the service
-- (db.query_as_service; a transaction opened with as_service).  And how a
-- write is made atomic: in a transaction of its own, or, when the request
-- already holds one (strata.data.transaction), in a savepoint of it, so
-- that a write the policy checks refuse, or one that fails, is taken back
-- alone and the transaction goes on.  Inside a transaction its identity
-- applies (strata.pg): strata.data keeps callers from mixing identities.

local db = require("strata.db")
local pg = require("strata.pg")

local pcall, error = pcall, error
local pack, unpack = table.pack, table.unpack

local M = {}

local SERVICE = { as_service = true }
local TX = { query = pg.query }

M.in_transaction = pg.in_transaction

-- fn preceded by Prefer: timezone= (PostgREST's set_config of TimeZone,
-- local to the call's transaction), or fn itself.
local function with_timezone(call, fn)
  local tz = call.prefer and call.prefer.timezone
  if not tz then return fn end
  return function(tx)
    local ok, err = tx.query("SELECT set_config('timezone', $1, true)", tz)
    if not ok then return nil, err end
    return fn(tx)
  end
end

--- One statement of call: rows | nil, err.  With Prefer: timezone= it
-- runs in a transaction of its own that sets the zone first.
function M.query(call, sql, ...)
  if call.prefer and call.prefer.timezone then
    local args = pack(...)
    return M.atomic(call, function(tx) return tx.query(sql, unpack(args, 1, args.n)) end)
  end
  if call.service then return db.query_as_service(sql, ...) end
  return db.query(sql, ...)
end

-- fn(tx) inside SAVEPOINT ... RELEASE, rolled back to the savepoint when
-- it raises (raised again) or answers nil, err (returned).
local function in_savepoint(fn)
  local ok, err = pg.query("SAVEPOINT pgrst_call")
  if not ok then return nil, err end
  local res = pack(pcall(fn, TX))
  if res[1] and res[2] ~= nil then
    ok, err = pg.query("RELEASE SAVEPOINT pgrst_call")
    if not ok then return nil, err end
    return unpack(res, 2, res.n)
  end
  local back, berr = pg.query("ROLLBACK TO SAVEPOINT pgrst_call")
  if not res[1] then error(res[2], 0) end
  if not back then return nil, berr end
  return nil, res[3]
end

--- Runs fn(tx) atomically for call (see above): fn's results, or nil and
-- the error fn answered (its work taken back); an error fn raises is raised
-- again after the rollback.
function M.atomic(call, fn)
  fn = with_timezone(call, fn)
  if pg.in_transaction() then return in_savepoint(fn) end
  return db.transaction(fn, call.service and SERVICE or nil)
end

return M
