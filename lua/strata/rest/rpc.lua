-- strata.rest.rpc: POST /rest/v1/rpc/<fn> with a JSON object of named
-- arguments (GET with query arguments for stable functions, run read-only).
-- Overloads are resolved by argument names as PostgREST does.  Table
-- functions answer arrays of rows with select/filters/order applied;
-- scalar ones the scalar.  A table function answers text/csv too (Accept,
-- negotiated by strata.rest.media), built by PostgreSQL as a read's CSV is.
-- lua/policies/rpc.lua decides who may call what (strata.rest.policy.rpc_allowed).

local cjson = require("cjson")
local errors = require("strata.rest.errors")
local grammar = require("strata.rest.grammar")
local query = require("strata.rest.query")
local sqlmod = require("strata.rest.sql")
local prefer = require("strata.rest.prefer")
local policy = require("strata.rest.policy")
local embed = require("strata.rest.embed")
local media = require("strata.rest.media")
local exec = require("strata.rest.exec")

local format, concat, type, pairs, ipairs, tostring = string.format, table.concat, type, pairs, ipairs, tostring
local raise = errors.raise

local M = {}

local JSON = "application/json; charset=utf-8"

-- Seed 000's reads, answered from the native engine (core/engine/resolve.c) when it
-- is ready and the request asks for the plain result; its writes go through
-- PostgreSQL and then wait until the engine holds them (read-your-writes).
local NATIVE = { get_broker_values_for_context = true, get_missing_broker_ids = true,
  get_complete_broker_data_for_context = true }
local BROKER_WRITES = { upsert_broker_value = true, bulk_upsert_broker_values = true }

local RESERVED, LOGIC = query.RESERVED, query.LOGIC

-- The engine answers only the plain call: no query parameter at all (any
-- filter, select, order or limit needs SQL), no single-object or CSV Accept.
local function plain(call)
  return next(call.query) == nil and media.of(call) == "json"
    and not call.prefer.count and call.prefer.tx ~= "rollback"
end

-- Whether a query value reads as a filter (op.value, not.op.value).
local function filter_like(v)
  if type(v) ~= "string" then return false end
  return grammar.filter("x", v) ~= nil
end

-- The page of a table function's rows (alias pgrst_call) as page, body
-- (body_agg over the page's rows s), single and total.  Counting, the
-- function runs once into a materialised CTE that both the count and the
-- page read (a volatile one must not run twice).
local function paged_sql(b, source, sel, where, order, limit, offset, counting, body_agg, single_agg)
  local window = order .. " LIMIT " .. b:param(limit) .. " OFFSET " .. b:param(offset)
  local aggs = "count(*) AS page, " .. body_agg .. " AS body, " .. single_agg .. " AS single"
  if not counting then
    return "SELECT " .. aggs .. ", NULL::bigint AS total FROM (SELECT " .. sel .. " FROM " .. source
      .. where .. window .. ") AS s"
  end
  return "WITH pgrst_all AS MATERIALIZED (SELECT * FROM " .. source .. where .. ") SELECT " .. aggs
    .. ", (SELECT count(*) FROM pgrst_all) AS total FROM (SELECT " .. sel .. " FROM pgrst_all AS pgrst_call" .. window
    .. ") AS s"
end

-- A function taking one unnamed json or jsonb argument receives a POST's
-- whole body (PostgREST's rule), when no overload takes the body's keys.
local function body_taker(list)
  for _, f in ipairs(list or {}) do
    if #f.args == 1 and f.args[1].name == "" and (f.args[1].type == "json" or f.args[1].type == "jsonb") then return f end
  end
end

-- PostgREST's PGRST202 (Error.hs, NoRpc): the keys in the order given
-- (sorted here: a Lua table has none), the json/jsonb alternative for a POST.
local function no_function(schema, name, names, post)
  local func = schema .. "." .. name
  local prms = concat(names, ", ")
  local msg = #names == 0 and " without parameters" or "(" .. prms .. ")"
  local det = #names == 0 and " without parameters" or (" with parameter" .. (#names > 1 and "s " or " ") .. prms)
  if post then det = det .. " or with a single unnamed json/jsonb parameter" end
  raise(404, "PGRST202", "Could not find the function " .. func .. msg .. " in the schema cache",
    "Searched for the function " .. func .. det .. ", but no matches were found in the schema cache.")
end

-- The overload the call's keys choose: every key an argument's name, every
-- argument without a default given.  Answers f and whether it takes the
-- whole body (body_taker).
local function pick(list, schema, name, keys, post)
  local fits = {}
  for _, f in ipairs(list or {}) do
    local by_name, ok = {}, true
    for i, a in ipairs(f.args) do by_name[a.name] = i end
    for k in pairs(keys) do if not by_name[k] or k == "" then ok = false end end
    for i = 1, f.required do if not keys[f.args[i].name] then ok = false end end
    if ok then fits[#fits + 1] = f end
  end
  local names = {}
  for k in pairs(keys) do names[#names + 1] = tostring(k) end
  table.sort(names)
  if #fits == 0 then
    local taker = post and body_taker(list)
    if taker then return taker, true end
    no_function(schema, name, names, post)
  elseif #fits > 1 then
    local alts = {}
    for i, f in ipairs(fits) do
      local prms = {}
      for j, a in ipairs(f.args) do prms[j] = a.name .. " => " .. a.type end
      alts[i] = schema .. "." .. name .. "(" .. concat(prms, ", ") .. ")"
    end
    raise(300, "PGRST203", "Could not choose the best candidate function between: " .. concat(alts, ", "), nil,
      "Try renaming the parameters or the function itself in the database so function overloading can be resolved")
  end
  return fits[1], false
end

-- A JSON number as SQL reads it: cjson decodes 3 as the float 3.0, whose
-- tostring "3.0" an int parameter refuses; integral values are written
-- without the fraction, others with every significant digit.
local function number_text(v)
  if math.type(v) == "float" and v == math.floor(v) and math.abs(v) < 2 ^ 63 then
    return format("%d", v)
  end
  if math.type(v) == "float" then return format("%.17g", v) end
  return tostring(v)
end

local function scalar_text(v)
  if type(v) == "number" then return number_text(v) end
  return tostring(v)
end

-- A Lua value as the text of a parameter of SQL type ty.
local function to_param(v, ty)
  if v == nil or v == cjson.null then return nil end
  if ty:match("%[%]$") then
    if type(v) ~= "table" then return scalar_text(v) end
    local out = {}
    for i, e in ipairs(v) do
      if e == cjson.null then out[i] = "NULL"
      elseif type(e) == "table" then out[i] = '"' .. cjson.encode(e):gsub('[\\"]', "\\%0") .. '"'
      else out[i] = '"' .. scalar_text(e):gsub('[\\"]', "\\%0") .. '"' end
    end
    return "{" .. concat(out, ",") .. "}"
  end
  if type(v) == "table" then return cjson.encode(v) end
  if type(v) == "boolean" then return v and "true" or "false" end
  return scalar_text(v)
end

-- The columns a table function returns (TABLE/OUT arguments, or the table
-- type it returns a set of), as a pseudo-table for the SQL builder.
local function result_table(cat, schema, f)
  local cols, list = {}, {}
  for i, mode in ipairs(f.arg_modes) do
    if mode == "t" or mode == "o" or mode == "b" then
      local c = { name = f.arg_names[i] }
      cols[c.name] = c
      list[#list + 1] = c
    end
  end
  if #list == 0 then
    local tname = f.return_type:match("([^%.]+)$"):gsub('"', "")
    local t = cat.schemas[schema].tables[tname]
    if t then return t end
  end
  return { schema = schema, name = f.name, columns = cols, column_list = list }
end

-- What a function answers, as PostgREST tells them apart: "void" (204), a
-- "scalar" (its JSON value), a "row" (one composite: an object, select and
-- filters applied), "scalars" (setof a scalar: a JSON array of them) or
-- "rows" (setof a composite or TABLE: a read's array).
local function kind_of(f)
  local composite = f.return_kind == "c"
  for _, mode in ipairs(f.arg_modes) do
    if mode == "t" or mode == "o" or mode == "b" then composite = composite or f.return_type == "record" end
  end
  if f.returns_set then
    return (composite or f.return_type == "record") and "rows" or "scalars"
  end
  if f.return_type == "void" then return "void" end
  return composite and "row" or "scalar"
end

-- A scalar function's value is JSON only: CSV is refused (406) rather than
-- answered as JSON under a client that asked for text/csv first.
local function scalar_media(call)
  if media.of(call) == "csv" then
    raise(406, "PGRST107", "None of these media types are available: text/csv")
  end
end

-- The response to a call that ran, as PostgREST's (Response.hs): every
-- answer has a Content-Range (a single value is the page 0-0), a page
-- smaller than the counted total is 206; void answers 204 without a body.
local function answer(call, kind, res, offset)
  local p = call.prefer
  local headers = { ["Content-Type"] = media.content_type(call) or JSON,
    ["Preference-Applied"] = prefer.applied(p, { count = true, ["max-affected"] = true }) }
  local total = res.total ~= cjson.null and res.total or nil
  local last = res.page > 0 and format("%d-%d", offset, offset + res.page - 1) or "*"
  headers["Content-Range"] = last .. "/" .. (total and tostring(total) or "*")
  if kind == "void" then
    headers["Content-Type"] = nil
    return 204, nil, headers
  end
  if kind == "scalar" or kind == "row" then
    return 200, res.body ~= cjson.null and res.body or "null", headers
  end
  if media.of(call) == "single" then
    if res.page ~= 1 then
      return errors.new(406, "PGRST116", "Cannot coerce the result to a single JSON object",
        format("The result contains %d rows", res.page))
    end
    return 200, res.single, headers
  end
  return (total and res.page < total) and 206 or 200, res.body, headers
end

-- Whether the call is a GET (or HEAD), run read-only; other methods than
-- these and POST are refused.
local function read_only(call)
  local get = call.method == "GET" or call.method == "HEAD"
  if not get and call.method ~= "POST" then
    raise(405, "PGRST117", "Unsupported HTTP method: " .. call.method)
  end
  return get
end

-- The call's named arguments and the filters on its result.  A POST's are
-- its JSON object.  A GET's are in the query: a key naming an input argument
-- of some overload, or whose value does not read as a filter, is an
-- argument; the rest are filters (reserved words aside).  Answers args, the
-- sorted filter keys, and the top-level query and embedded resources'
-- parameters (embed.split: "other.col=..." belong to embeds).
local function arguments(call, overloads, get)
  local q, nested = embed.split(call.query)
  local argnames = {}
  for _, f in ipairs(overloads or {}) do
    for _, a in ipairs(f.args) do argnames[a.name] = true end
  end
  local args, filter_keys = {}, {}
  for k, v in pairs(q) do
    if RESERVED[k] then -- read by the statement
    elseif LOGIC[k] then filter_keys[#filter_keys + 1] = k
    elseif get and (argnames[k] or not filter_like(v)) then args[k] = v
    else filter_keys[#filter_keys + 1] = k end
  end
  table.sort(filter_keys) -- stable SQL text for the statement cache
  if not get and call.body ~= "" then
    local obj = type(call.json) == "table" and (call.json[1] == nil or next(call.json) == nil)
    if not obj then
      -- Any JSON at all is the argument of a function taking the whole body.
      if call.json ~= nil and body_taker(overloads) then return {}, filter_keys, q, nested, true end
      raise(400, "PGRST102", "Empty or invalid json", "rpc expects a JSON object of named arguments")
    end
    args = call.json
  end
  return args, filter_keys, q, nested, false
end

-- The plain call of a seed broker read, answered by the native engine when
-- it is ready; nil when SQL must answer.
local function native(call, schema, name, args, get)
  if not (NATIVE[name] and not get and schema == "public" and plain(call)) then return nil end
  local broker = require("strata.broker")
  if not broker.ready() then return nil end
  local body, err = broker.rpc(name, args)
  if not body then return errors.new(400, err.code, err.message) end
  return 200, body, { ["Content-Type"] = JSON }
end

-- schema.name(arg := $n::type, ...) for the arguments given, typed as f's;
-- a VARIADIC one passed as its array.  whole: f's one unnamed argument
-- takes the body's text.  A GET's key given twice is an array for an
-- array argument, else its last value counts (PostgREST's rule).
local function call_sql(b, schema, name, f, args, get, whole, body)
  local fname = sqlmod.qi(schema) .. "." .. sqlmod.qi(name)
  if whole then return fname .. "(" .. b:param(body) .. "::" .. f.args[1].type .. ")" end
  local call_args = {}
  for _, a in ipairs(f.args) do
    local v = args[a.name]
    if v ~= nil then
      if get and type(v) == "table" and not a.type:match("%[%]$") then v = v[#v] end
      if get and a.variadic and type(v) == "string" then v = { v } end
      call_args[#call_args + 1] = (a.variadic and "VARIADIC " or "") .. sqlmod.qi(a.name) .. " := "
        .. b:param(to_param(v, a.type)) .. "::" .. a.type
    end
  end
  return fname .. "(" .. concat(call_args, ", ") .. ")"
end

-- The statement reading a function's rows (select, embeds, filters, order,
-- limit and offset on them) for kind (kind_of) and the page's offset.  A
-- setof scalar's rows have one column named as the function, which filters
-- and order may name (PostgREST's pgrst_scalar); its page is an array of
-- the values.  One composite ("row") answers its first row as an object.
local function table_sql(call, kind, cat_schema, rt, b, invocation, q, nested, filter_keys)
  local items = query.select(q.select)
  local max_rows = require("strata.config").max_rows
  local conds, sel, body_agg, single_agg, source
  if kind == "scalars" then
    conds, source = {}, invocation .. " AS pgrst_call(" .. sqlmod.qi(rt.name) .. ")"
    sel = "pgrst_call." .. sqlmod.qi(rt.name) .. " AS pgrst_scalar"
    body_agg, single_agg = "coalesce(json_agg(s.pgrst_scalar), '[]')::text", "(json_agg(s.pgrst_scalar) -> 0)::text"
  else
    -- Embeds follow the foreign keys of the table type the function returns.
    conds = embed.plan(b, call.ctx, cat_schema, rt, items, nested, { parent = "pgrst_call.", max_rows = max_rows })
    sel, source = b:select_list(items, "pgrst_call."), invocation .. " AS pgrst_call"
    body_agg, single_agg = media.body_aggregate(call, b, items, "s"), "(json_agg(" .. media.row(call, "s") .. ") -> 0)::text"
    if kind == "row" then body_agg = "coalesce((json_agg(s) -> 0)::text, 'null')" end
  end
  for _, k in ipairs(filter_keys) do
    for _, v in ipairs(query.values_of(q[k])) do
      conds[#conds + 1] = b:condition(query.filter_node(k, v), "pgrst_call.")
    end
  end
  local order = ""
  if q.order and q.order ~= "" then
    order = " ORDER BY " .. embed.order_by(b, query.order(q.order), "pgrst_call.")
  end
  local limit, offset = query.window(call, q, max_rows)
  local counting = call.prefer.count ~= nil or prefer.max_affected(call.prefer) ~= nil
  return paged_sql(b, source, sel, sqlmod.where(conds), order, limit, offset, counting,
    body_agg, single_agg), offset
end

-- Runs the statement atomically (strata.rest.exec; read-only for a GET):
-- its row, or nil and the database's error; and whether the call was taken
-- back (Prefer: tx=rollback answers as if committed, then takes the call back).
local function run(call, get, sql, params)
  local kept, over
  local limit = prefer.max_affected(call.prefer)
  local res, err = exec.atomic(call, function(tx)
    if get then
      local _, e = tx.query("SET TRANSACTION READ ONLY")
      if e then return nil, e end
    end
    local rows, e = tx.query(sql, table.unpack(params, 1, #params))
    if not rows then return nil, e end
    if limit and rows[1].total ~= cjson.null and rows[1].total > limit then
      over = rows[1].total
      return nil, prefer.ROLLBACK
    end
    if call.prefer.tx ~= "rollback" then return rows[1] end
    kept = rows[1]
    return nil, prefer.ROLLBACK
  end)
  if over then return nil, { over = over } end
  if kept then return kept, nil, true end
  return res, err, false
end

-- A setof scalar's rows as a pseudo-table of one column named as the function.
local function scalar_table(schema, f)
  local c = { name = f.name }
  return { schema = schema, name = f.name, columns = { [f.name] = c }, column_list = { c } }
end

--- Answers the call (strata.rest.run) of function schema.name as
-- (status, body, headers).
function M.call(call, cat, schema, name)
  local ctx = call.ctx
  local get = read_only(call)
  local overloads = cat.schemas[schema].functions[name]
  local args, filter_keys, q, nested, whole = arguments(call, overloads, get)
  local f
  if whole then f = body_taker(overloads) else f, whole = pick(overloads, schema, name, args, not get) end
  if whole then args = {} end -- the policy sees no named arguments: the body is one value
  if not policy.rpc_allowed(ctx, schema, name, args) then
    return errors.new(ctx.role == "anon" and 401 or 403, "42501", format("permission denied for function %s", name))
  end
  local status, body, headers = native(call, schema, name, args, get)
  if status then return status, body, headers end
  local kind = kind_of(f)
  if prefer.max_affected(call.prefer) and kind ~= "rows" and kind ~= "scalars" then
    raise(400, "PGRST128", "Function must return SETOF or TABLE when max-affected preference is used with handling=strict")
  end
  local rt = (kind == "rows" or kind == "row") and result_table(cat, schema, f)
    or kind == "scalars" and scalar_table(schema, f) or nil
  local b = sqlmod.builder(rt or { columns = {}, column_list = {} })
  local invocation = call_sql(b, schema, name, f, args, get, whole, call.body)
  local sql, offset = nil, 0
  if rt then
    if kind ~= "rows" then scalar_media(call) end
    sql, offset = table_sql(call, kind, cat.schemas[schema], rt, b, invocation, q, nested, filter_keys)
  else
    scalar_media(call)
    local total = call.prefer.count and "1::bigint" or "NULL::bigint"
    sql = kind == "void" and ("SELECT 1 AS page, " .. total .. " AS total, NULL::text AS body FROM (SELECT " .. invocation
      .. ") AS pgrst_void") or ("SELECT 1 AS page, " .. total .. " AS total, to_json(" .. invocation .. ")::text AS body")
  end
  if media.of(call) == "plan" then
    local rows, perr = exec.plan(call, media.explain(call, sql), b.params, false, get)
    if not rows then return errors.from_db(perr, ctx.role == "anon") end
    return media.plan_answer(call, rows)
  end
  local res, err, rolled_back = run(call, get, sql, b.params)
  if not res and err.over then return prefer.over_limit(err.over) end
  if not res then return errors.from_db(err, ctx.role == "anon") end
  if not call.prefer.count then res.total = cjson.null end -- counted for max-affected only
  -- Inside a transaction (strata.data's) the write is not committed yet:
  -- there is nothing the engine could wait for.
  if BROKER_WRITES[name] and schema == "public" and not rolled_back and not exec.in_transaction() then
    require("strata.broker").sync()
  end
  return answer(call, kind, res, offset)
end

return M
