-- strata.rest.exec: how the statements of one REST call (strata.rest.run)
-- reach PostgreSQL.  As whom: the caller (the request's settings), or, for
-- a call made with call.service (strata.data's as_service), the service
-- (db.query_as_service; a transaction opened with as_service).  And how a
-- write is made atomic: in a transaction of its own, or, when the request
-- already holds one (strata.data.transaction), in a savepoint of it, so
-- that a write the policy checks refuse, or one that fails, is taken back
-- alone and the transaction goes on.  Inside a transaction its identity
-- applies (strata.pg): strata.data keeps callers from mixing identities.
--
-- The caller's statements carry the caller's Lua row policy (compiled in
-- by strata.rest), so row level security would only check the same rows
-- again: on its own connection a statement runs with the caller's
-- settings under the SQL role service_role, which RLS lets through
-- (pg.bypass_query, a transaction begun "bypass"; in the caller's
-- transaction the role is switched for the statement and back); RLS would
-- cost a list 10% of its throughput (see the README).  Conf rest_rls asks
-- for both, except on a table RLS has no generated policy for
-- (call.rls_bypass, set by strata.rest.policy.note_rls), which RLS would
-- deny whole.

local db = require("strata.db")
local pg = require("strata.pg")
local config = require("strata.config")

local pcall, error = pcall, error
local pack, unpack = table.pack, table.unpack

local M = {}

local SERVICE = { as_service = true }
local BYPASS = { bypass_rls = true }
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

-- fn(tx) between two statements of the same transaction: before, then
-- after it when it succeeded (when it fails, its transaction or savepoint
-- is rolled back, what `before` set with it).
local function around(before, after, fn)
  return function(tx)
    local ok, err = tx.query(before)
    if not ok then return nil, err end
    local res = pack(fn(tx))
    if res[1] == nil then return unpack(res, 1, res.n) end
    ok, err = tx.query(after)
    if not ok then return nil, err end
    return unpack(res, 1, res.n)
  end
end

-- In the caller's transaction: the role switched for one statement and
-- back (the caller's role kept in a setting).
local ROLE_BYPASS = "SELECT set_config('strata.caller_role', current_setting('role'), true),"
  .. " set_config('role', 'service_role', true)"
local ROLE_BACK = "SELECT set_config('role', current_setting('strata.caller_role'), true)"
local function bypassing(fn) return around(ROLE_BYPASS, ROLE_BACK, fn) end

-- Whether a statement of call passes RLS (above).  Not an RPC's: a
-- function reads what the caller's role may read, and no Lua policy was
-- compiled into it.
local function bypass(call)
  return call.rls_bypass or not (call.fn or config.rest_rls)
end

--- One statement of call: rows | nil, err.  With Prefer: timezone= it
-- runs in a transaction of its own that sets the zone first.
function M.query(call, sql, ...)
  if call.prefer and call.prefer.timezone then
    local args = pack(...)
    return M.atomic(call, function(tx) return tx.query(sql, unpack(args, 1, args.n)) end)
  end
  if call.service then return db.query_as_service(sql, ...) end
  if not pg.in_transaction() then
    if bypass(call) then return pg.bypass_query(sql, ...) end
    return db.query(sql, ...)
  end
  if not bypass(call) then return pg.query(sql, ...) end
  local args = pack(...)
  return in_savepoint(bypassing(function(tx) return tx.query(sql, unpack(args, 1, args.n)) end))
end

-- fn(tx) with strata.validated_write on: the write of a validated table
-- (its validator passed) that the table's guard trigger lets through
-- (strata.rls); off again after it, so that later raw statements of the
-- same transaction are still refused.
local VALIDATED_ON = "SELECT set_config('strata.validated_write', 'on', true)"
local VALIDATED_OFF = "SELECT set_config('strata.validated_write', '', true)"
local function validated(fn) return around(VALIDATED_ON, VALIDATED_OFF, fn) end

--- Runs fn(tx) atomically for call (see above): fn's results, or nil and
-- the error fn answered (its work taken back); an error fn raises is raised
-- again after the rollback.  Prefer: timezone= is set first in it.
-- is_validated: fn writes a table whose
-- validator passed (above); call.rls_bypass: see M.query.
function M.atomic(call, fn, is_validated)
  fn = with_timezone(call, fn)
  if is_validated then fn = validated(fn) end
  if pg.in_transaction() then
    if bypass(call) and not call.service then fn = bypassing(fn) end
    return in_savepoint(fn)
  end
  return db.transaction(fn, call.service and SERVICE or bypass(call) and BYPASS or nil)
end

-- A sentinel answer that takes a transaction back.
local TAKE_BACK = { code = "take back" }

--- The rows of EXPLAIN statement `sql` (PostgREST's plan media type), run
-- as M.atomic runs a write, and always taken back: EXPLAIN ANALYZE of a
-- write or of a volatile function runs it.  read_only: a GET of a
-- function, run read-only as for its answer.
function M.plan(call, sql, params, is_validated, read_only)
  local out
  local _, err = M.atomic(call, function(tx)
    if read_only then
      local _, e = tx.query("SET TRANSACTION READ ONLY")
      if e then return nil, e end
    end
    local rows, e = tx.query(sql, unpack(params, 1, params.n or #params))
    if not rows then return nil, e end
    out = rows
    return nil, TAKE_BACK
  end, is_validated)
  if out then return out end
  return nil, err
end

return M
