-- strata.data: the tables and functions of /rest/v1 for Lua routes, with
-- everything /rest/v1 applies — PostgREST's grammar, the row policies
-- (select, insert WITH CHECK, update, delete, hidden columns, embeds), the
-- validators, the error values and the request settings — because it is
-- the same implementation: each call is a strata.rest call (see the top
-- of lua/strata/rest/init.lua) answered by strata.rest.run, as the HTTP
-- route's requests are.  Uses strata.rest, strata.request (the running
-- request), strata.db (transactions) and strata.log.
--
--   data.select(tbl, query[, opts])         -> rows, meta | nil, err
--   data.insert(tbl, rows[, opts])          -> rows, meta | nil, err
--   data.update(tbl, filter, patch[, opts]) -> rows, meta | nil, err
--   data.delete(tbl, filter[, opts])        -> rows, meta | nil, err
--   data.rpc(fn[, args[, opts]])            -> value, meta | nil, err
--   data.transaction(fn)                    -> fn's results | nil, err
--   data.as_service()                       -> the same functions, as service_role
--
-- tbl / fn: "name" (schema opts.schema, else the default profile, the first
-- exposed schema) or "schema.name".  query / filter: PostgREST's parameters
-- as a client puts them in the URL, values as strings, not URL-encoded
-- ({ select = "id,title,Message_v2!chatId(*)", user_id = "eq." .. uid,
-- order = "createdAt.desc", limit = 20 }; a list value repeats the key).
-- opts: returning = "representation" (writes' default) | "minimal";
-- count = "exact" | "planned" | "estimated"; on_conflict = "col,..";
-- resolution = "merge-duplicates" | "ignore-duplicates"; missing =
-- "default"; select = the select list of a write's returned rows; query =
-- parameters on a table function's rows (rpc); single = true (one object,
-- or the 406 PGRST116 error of PostgREST's singular media type); json =
-- true (the answer's JSON text instead of Lua tables); schema = profile.
--
-- Answers: rows decoded by cjson (nulls are cjson.null; an empty array is
-- an empty table, which cjson encodes as {}: ask for json = true to hand a
-- result on to a client unchanged), true for returning = "minimal", and
-- meta = { status = the status /rest/v1 answers, count = the total when
-- counted }.  Errors: nil, { code, message, details, hint, status }, the
-- body and status /rest/v1 answers.  Mistakes in the arguments raise.
--
-- Who: the caller of the request whose handler is running — its req.auth
-- decides the policies, its settings go with the statements (db.query).
-- strata.data finds that request as strata.pg finds it in C, by the
-- coroutine serving it (strata.request.current, in C), so the functions take no
-- req: the policies' caller and the statements' settings then come from
-- one request and cannot disagree, and there is no req to pass wrongly.
-- (`data.for(req)` was the alternative; `for` is a keyword in Lua, too.)
-- What bypasses the policies says so where it happens:
-- data.as_service() acts as service_role (policies bypassed as /rest/v1
-- bypasses them for service_role; statements via db.query_as_service), and
-- each of its calls is logged at debug level.
--
-- data.transaction(fn) runs fn(tx) in db.transaction (tx.query for raw SQL
-- in the same transaction): the calls inside use its connection; COMMIT
-- when fn returns, ROLLBACK when it raises or answers nil, err.  A write or
-- rpc that fails inside is taken back alone (a savepoint); a failed read
-- leaves the transaction aborted, as PostgreSQL does: answer its error.  A
-- transaction has one identity: data.as_service().transaction(fn) opens
-- the service's, and the other handle's calls inside it raise.  A broker
-- write (upsert_broker_value) made inside reaches the native engine after
-- the commit: require("strata.broker").sync() waits for it.

local cjson = require("cjson")
local db = require("strata.db")
local log = require("strata.log")
local prefer = require("strata.rest.prefer")

local type, pairs, ipairs, tostring, error, pcall = type, pairs, ipairs, tostring, error, pcall
local pack, unpack = table.pack, table.unpack
local running_coroutine = coroutine.running

local M = {}

local SERVICE_TX = { as_service = true }

-- The identity of the data.transaction each coroutine is inside.
local open = setmetatable({}, { __mode = "k" })

-- opts keys -> Prefer preferences (strata.rest.prefer.VALID checks the values).
local PREFERENCES = { returning = "return", count = "count", resolution = "resolution", missing = "missing" }

local function caller_ctx()
  local req = require("strata.request").current()
  if not req then
    error("strata.data can only be used by a request's handler (not at load time, nor from a coroutine of its own)", 4)
  end
  return req.auth
end

local function service_ctx()
  return { role = "service_role", is_admin = false, claims = { role = "service_role" } }
end

-- A parameter value as the text a URL would carry.
local function param_text(k, v)
  if type(v) == "string" then return v end
  if type(v) == "number" then return tostring(math.tointeger(v) or v) end
  error(("strata.data: parameter %s must be a string or a number"):format(tostring(k)), 0)
end

-- A copy of a parameters table (strata.rest works on its query in place).
local function params(t)
  local q = {}
  if t == nil then return q end
  if type(t) ~= "table" then error("strata.data: query, filter and opts.query must be tables", 0) end
  for k, v in pairs(t) do
    if type(v) == "table" then
      local list = {}
      for i, one in ipairs(v) do list[i] = param_text(k, one) end
      q[k] = list
    else
      q[k] = param_text(k, v)
    end
  end
  return q
end

local function preferences(opts, write)
  local p = { invalid = {} }
  for key, name in pairs(PREFERENCES) do
    local v = opts[key]
    if v ~= nil then
      if not prefer.VALID[name][v] then error(("strata.data: opts.%s cannot be %s"):format(key, tostring(v)), 0) end
      p[name] = v
    end
  end
  if write and p["return"] == nil then p["return"] = "representation" end
  return p
end

-- The schema and the name of "schema.name" or "name".
local function target(name, opts)
  if type(name) ~= "string" or name == "" then error("strata.data: a table or function name is required", 0) end
  local schema, rest = name:match("^([^.]+)%.(.+)$")
  if schema then return schema, rest end
  return opts.schema, name
end

-- The total of a Content-Range ("0-9/42", "*/3"), when counted.
local function count_of(headers)
  local range = headers and headers["Content-Range"]
  local total = range and range:match("/(%d+)$")
  return total and math.tointeger(tonumber(total))
end

-- strata.rest's (status, body, headers) as strata.data answers it.  Its
-- error values are tables; its answers text (or nil: no rows asked back).
local function answer(status, body, headers, opts)
  if type(body) == "table" then
    return nil, { code = body.code, message = body.message, details = body.details, hint = body.hint, status = status }
  end
  local meta = { status = status, count = count_of(headers) }
  if body == nil then return true, meta end
  if opts.json then return body, meta end
  return cjson.decode(body), meta
end

-- A handle: the functions above acting as the caller, or as the service.
local function handle(service)
  local identity = service and "service" or "caller"
  local H = {}

  local function run(verb, method, name, query, payload, opts, write)
    if opts ~= nil and type(opts) ~= "table" then error("strata.data: opts must be a table", 3) end
    opts = opts or {}
    local inside = open[running_coroutine()]
    if inside and inside ~= identity then
      error(("strata.data: this transaction acts as the %s; a call as the %s cannot run inside it"):format(inside,
        identity), 3)
    end
    local schema, name_in = target(name, opts)
    local call = { ctx = service and service_ctx() or caller_ctx(), service = service, method = method,
      schema = schema, query = query, prefer = preferences(opts, write), media = opts.single and "single" or "json" }
    if verb == "rpc" then call.fn = name_in else call.table = name_in end
    if payload ~= nil then
      call.body = cjson.encode(payload)
      call.json = cjson.decode(call.body) -- what /rest/v1 would have decoded, not the caller's table
    elseif method == "POST" then
      call.body = "" -- an rpc without arguments
    end
    if service then log.debug("strata.data as service", { call = verb, target = name }) end
    local status, body, headers = require("strata.rest").run(call)
    return answer(status, body, headers, opts)
  end

  -- The representation's select list and the upsert's target are query parameters.
  local function write_params(filter, opts)
    local q = params(filter)
    if opts then
      if opts.select ~= nil then q.select = param_text("select", opts.select) end
      if opts.on_conflict ~= nil then q.on_conflict = param_text("on_conflict", opts.on_conflict) end
    end
    return q
  end

  function H.select(tbl, query, opts)
    return run("select", "GET", tbl, params(query), nil, opts, false)
  end

  function H.insert(tbl, rows, opts)
    if type(rows) ~= "table" then error("strata.data.insert: rows must be a table (one row or a list)", 2) end
    return run("insert", "POST", tbl, write_params(nil, opts), rows, opts, true)
  end

  function H.update(tbl, filter, patch, opts)
    if type(patch) ~= "table" then error("strata.data.update: patch must be a table", 2) end
    return run("update", "PATCH", tbl, write_params(filter, opts), patch, opts, true)
  end

  function H.delete(tbl, filter, opts)
    return run("delete", "DELETE", tbl, write_params(filter, opts), nil, opts, true)
  end

  function H.rpc(fn, args, opts)
    if args ~= nil and type(args) ~= "table" then error("strata.data.rpc: args must be a table", 2) end
    return run("rpc", "POST", fn, params(opts and opts.query), args, opts, false)
  end

  function H.transaction(fn)
    if type(fn) ~= "function" then error("strata.data.transaction expects a function", 2) end
    local co = running_coroutine()
    if open[co] then error("strata.data.transaction: already inside a transaction", 2) end
    open[co] = identity
    local res = pack(pcall(db.transaction, fn, service and SERVICE_TX or nil))
    open[co] = nil
    if not res[1] then error(res[2], 0) end
    return unpack(res, 2, res.n)
  end

  return H
end

local SERVICE = handle(true)

for k, f in pairs(handle(false)) do M[k] = f end

--- The same functions, acting as service_role: for trusted server work.
function M.as_service()
  return SERVICE
end

return M
