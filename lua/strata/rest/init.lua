-- strata.rest: the PostgREST-compatible API under /rest/v1, so supabase-js
-- and postgrest-js work unchanged.  Tables and views of the exposed schemas
-- (GET, HEAD, POST, PATCH, DELETE) and functions (rpc/<name>), filtered by
-- the Lua row policies.  SQL comes from strata.rest.sql; identifiers from
-- the catalog only; values always as parameters; JSON built by PostgreSQL.

local cjson = require("cjson")
local db = require("strata.db")
local config = require("strata.config")
local catalog = require("strata.rest.catalog")
local errors = require("strata.rest.errors")
local grammar = require("strata.rest.grammar")
local sqlmod = require("strata.rest.sql")
local policy = require("strata.rest.policy")
local rpc = require("strata.rest.rpc")

local format, concat, tonumber, type, pairs, ipairs = string.format, table.concat, tonumber, type, pairs, ipairs

local M = {}

local JSON = "application/json; charset=utf-8"
local SINGLE = "application/vnd.pgrst.object+json"
local RESERVED = { select = true, order = true, limit = true, offset = true, on_conflict = true, columns = true,
  ["or"] = true, ["and"] = true, ["not.or"] = true, ["not.and"] = true }

local function fail(status, code, message, details, hint)
  sqlmod.fail(status, code, message, details, hint)
end

--- Prefer: a=b, c=d  ->  { a = "b", c = "d" }.
local function prefs(req)
  local out = {}
  local h = req.headers.prefer
  if h then
    for k, v in h:gmatch("([%w%-]+)=([%w%-]+)") do out[k] = v end
  end
  return out
end

local function schema_for(req, cat, write)
  local h = write and req.headers["content-profile"] or req.headers["accept-profile"]
  if not h then return cat.default_schema end
  if not cat.schemas[h] then
    fail(406, "PGRST106", "The schema must be one of the following: " .. concat(config.schemas, ", "))
  end
  return h
end

local function values_of(v)
  if type(v) == "table" then return v end
  return { v }
end

-- The client's filters (query parameters that are not reserved words).
local function filters(b, q)
  local conds, names = {}, {}
  for k in pairs(q) do names[#names + 1] = k end
  table.sort(names) -- stable SQL text for the statement cache
  for _, k in ipairs(names) do
    for _, v in ipairs(values_of(q[k])) do
      if k == "or" or k == "and" or k == "not.or" or k == "not.and" then
        local node, err = grammar.logic(k:gsub("^not%.", ""), v, k:sub(1, 4) == "not.")
        if not node then fail(400, "PGRST100", "failed to parse logic tree (" .. v .. ")", err) end
        conds[#conds + 1] = b:condition(node)
      elseif not RESERVED[k] then
        local node, err = grammar.filter(k, v)
        if not node then fail(400, "PGRST100", "failed to parse filter (" .. k .. "=" .. v .. ")", err) end
        conds[#conds + 1] = b:condition(node)
      end
    end
  end
  return conds
end

local function int_param(q, name)
  local v = q[name]
  if v == nil then return nil end
  local n = tonumber(v)
  if not n or n < 0 or n ~= math.floor(n) then
    fail(400, "PGRST100", format("%s must be a non-negative integer, not '%s'", name, tostring(v)))
  end
  return math.tointeger(n)
end

-- limit and offset from the query and the Range header, capped by max_rows.
local function window(req, q)
  local limit, offset = int_param(q, "limit"), int_param(q, "offset") or 0
  local range = req.headers.range
  if range then
    local a, b = range:match("^%s*(%d+)%-(%d*)%s*$")
    if not a then fail(416, "PGRST103", "Requested range not satisfiable", "bad Range header: " .. range) end
    a, b = tonumber(a), tonumber(b)
    if b and b < a then fail(416, "PGRST103", "Requested range not satisfiable", "the range ends before it starts") end
    offset = offset + a
    if b then limit = math.min(limit or math.huge, b - a + 1) end
  end
  limit = math.min(limit or config.max_rows, config.max_rows)
  return math.tointeger(limit), math.tointeger(offset)
end

local function content_range(offset, page, total)
  local tot = total and tostring(total) or "*"
  if page == 0 then return "*/" .. tot end
  return format("%d-%d/%s", offset, offset + page - 1, tot)
end

local function anon(ctx)
  return ctx.role == "anon"
end

local function denied(ctx, t)
  return errors.new(anon(ctx) and 401 or 403, "42501", format("permission denied for table %s", t.name), nil,
    anon(ctx) and "send a bearer token" or nil)
end

-- The policy predicate for action, or an early (status, body) answer.
local function predicate(b, ctx, cat_schema, t, action, alias)
  local pol = policy.decide(ctx, t.schema, t.name, action)
  if pol == nil then return nil, true end
  return policy.compile(b, t, pol, alias, cat_schema), false
end

local function single_wanted(req)
  return (req.headers.accept or ""):find(SINGLE, 1, true) ~= nil
end

local function not_single(page)
  return errors.new(406, "PGRST116", "Cannot coerce the result to a single JSON object",
    format("The result contains %d rows", page))
end

local function read(req, ctx, cat, t, q)
  local b = sqlmod.builder(t)
  local items, err = grammar.select(q.select)
  if not items then fail(400, "PGRST100", "failed to parse select parameter (" .. tostring(q.select) .. ")", err) end
  local sel = b:select_list(items)
  local conds = filters(b, q)
  local pred, deny = predicate(b, ctx, cat.schemas[t.schema], t, "select")
  if deny then return denied(ctx, t) end
  conds[#conds + 1] = pred
  local where = sqlmod.where(conds)
  local order = ""
  if q.order and q.order ~= "" then
    local list, e = grammar.order(q.order)
    if not list then fail(400, "PGRST100", "failed to parse order (" .. q.order .. ")", e) end
    order = " ORDER BY " .. b:order_by(list)
  end
  local limit, offset = window(req, q)
  local p = prefs(req)
  local count = p.count
  local from = sqlmod.qualified(t)
  local total_sql = (count == "exact" or count == "planned" or count == "estimated")
    and ("(SELECT count(*) FROM " .. from .. where .. ")") or "NULL::bigint"
  local single = single_wanted(req)
  local body_sql = single and "(json_agg(s) -> 0)::text" or "coalesce(json_agg(s), '[]')::text"
  local sql = "WITH pgrst_source AS (SELECT " .. sel .. " FROM " .. from .. where .. order
    .. " LIMIT " .. b:param(limit) .. " OFFSET " .. b:param(offset) .. ") SELECT " .. total_sql
    .. " AS total, (SELECT count(*) FROM pgrst_source) AS page, (SELECT " .. body_sql .. " FROM pgrst_source s) AS body"
  local rows, dberr = db.query(sql, table.unpack(b.params, 1, #b.params))
  if not rows then return errors.from_db(dberr, anon(ctx)) end
  local r = rows[1]
  local total = r.total ~= cjson.null and r.total or nil
  if single then
    if r.page ~= 1 then return not_single(r.page) end
    return 200, r.body, { ["Content-Type"] = JSON }
  end
  local headers = { ["Content-Type"] = JSON, ["Content-Range"] = content_range(offset, r.page, total) }
  if count then headers["Preference-Applied"] = "count=" .. count end
  -- PostgREST's rule (RangeQuery.rangeStatus): past the end 416, a page
  -- smaller than the total 206, else 200.
  if total and offset > total then
    return 416, { code = "PGRST103", message = "Requested range not satisfiable",
      details = format("An offset of %d was requested, but there are only %d rows.", offset, total), hint = cjson.null },
      headers
  end
  local status = (total and r.page < total) and 206 or 200
  return status, r.body, headers
end

-- The payload's columns: columns= or the union of the objects' keys.
local function payload_columns(t, q, payload)
  local cols, seen = {}, {}
  local function add(name)
    if not t.columns[name] then
      fail(400, "PGRST204", format("Could not find the '%s' column of '%s' in the schema cache", name, t.name))
    end
    if not seen[name] then seen[name] = true; cols[#cols + 1] = name end
  end
  if q.columns then
    local names, err = grammar.columns(q.columns)
    if not names then fail(400, "PGRST100", "failed to parse columns parameter (" .. q.columns .. ")", err) end
    for _, name in ipairs(names) do add(name) end
    return cols
  end
  local list = payload[1] ~= nil and payload or { payload }
  for _, obj in ipairs(list) do
    if type(obj) ~= "table" or (obj[1] ~= nil) then fail(400, "PGRST102", "All object keys must match") end
    local keys = {}
    for k in pairs(obj) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do add(k) end
  end
  return cols
end

local function quoted_list(cols)
  local out = {}
  for i, c in ipairs(cols) do out[i] = sqlmod.qi(c) end
  return concat(out, ", ")
end

-- Runs a write in one transaction; the answer as (status, body, headers).
local function write(req, ctx, t, action, sql, params, p)
  local single = single_wanted(req)
  local ret = p["return"] or "minimal"
  local outcome
  local ok, res, err = pcall(db.transaction, function(tx)
    local rows, e = tx.query(sql, table.unpack(params, 1, params.n or #params))
    if not rows then return nil, e end
    local r = rows[1]
    if (r.violations or 0) > 0 then
      return nil, { code = "42501", message = format('new row violates row-level security policy for table "%s"', t.name) }
    end
    if single and r.page ~= 1 then
      outcome = { not_single(r.page) }
      return nil, { code = "rollback" }
    end
    return r
  end)
  if not ok then error(res, 0) end
  if outcome then return table.unpack(outcome) end
  if not res then return errors.from_db(err, anon(ctx)) end
  local headers = { ["Content-Type"] = JSON }
  local applied = {}
  if p["return"] then applied[#applied + 1] = "return=" .. p["return"] end
  if p.resolution and action == "insert" then applied[#applied + 1] = "resolution=" .. p.resolution end
  if #applied > 0 then headers["Preference-Applied"] = concat(applied, ", ") end
  local created = action == "insert"
  if ret == "representation" then
    headers["Content-Range"] = content_range(0, res.page, nil)
    return created and 201 or 200, single and res.single or res.body, headers
  end
  headers["Content-Range"] = "*/*"
  return created and 201 or 204, nil, headers
end

local function returning(b, q)
  local items, err = grammar.select(q.select)
  if not items then fail(400, "PGRST100", "failed to parse select parameter", err) end
  return "SELECT count(*) AS page, coalesce(json_agg(x), '[]')::text AS body, (json_agg(x) -> 0)::text AS single FROM (SELECT "
    .. b:select_list(items) .. " FROM pgrst_rows) AS x"
end

-- lua/validators/<table>.lua (schema public) checks each object of a write
-- before any SQL runs (strata.schema.check_rows): 422 with every failure
-- as details = [{path, message}], nothing written.  A validator that
-- raises, cannot load or answers nonsense refuses the write (fail closed).
-- PATCH (partial) passes the values its eq./in. filters allow per column.
-- A caller the policy refuses outright gets the policy's answer instead.
local function refused_by_validator(req, ctx, t, q, cols, action)
  if t.schema ~= "public" then return nil end
  if policy.decide(ctx, t.schema, t.name, action == "update" and "update" or "insert") == false then return nil end
  local list = req.json[1] ~= nil and req.json or { req.json }
  local rows = {}
  for i, obj in ipairs(list) do
    rows[i] = {}
    for _, c in ipairs(cols) do rows[i][c] = obj[c] end
  end
  local known = {}
  for k, v in pairs(q) do
    if not RESERVED[k] then
      for _, one in ipairs(values_of(v)) do
        local node = grammar.filter(k, one)
        if node and not node.negate and #node.field.path == 0 and (node.op == "eq" or node.op == "in") then
          local allowed, prev = {}, known[node.field.name]
          for _, x in ipairs(node.op == "in" and node.values or { node.value }) do
            if not prev or prev[x] then allowed[#allowed + 1] = x; allowed[x] = true end
          end
          known[node.field.name] = allowed
        end
      end
    end
  end
  local vctx = { action = action, partial = action == "update", schema = t.schema, table = t.name,
    auth = ctx, filters = known }
  local bad = require("strata.schema").check_rows(t.name, rows, vctx, req.json[1] ~= nil)
  if not bad then return nil end
  if bad.failed then
    return errors.new(422, "23514", format("the validator %s failed; the write is refused", bad.file),
      { { path = "", message = "the validator failed (the server log has its error)" } })
  end
  return errors.new(422, "23514", format('%d value%s of table "%s" failed validation (%s)', #bad.errors,
    #bad.errors == 1 and "" or "s", t.name, bad.file), bad.errors)
end

local function insert(req, ctx, cat, t, q)
  local payload = req.json
  if type(payload) ~= "table" then fail(400, "PGRST102", "Empty or invalid json") end
  local cols = payload_columns(t, q, payload)
  if #cols == 0 then fail(400, "PGRST102", "Empty or invalid json", "no columns to insert") end
  local b = sqlmod.builder(t)
  local p = prefs(req)
  local from = sqlmod.qualified(t)
  local body_param = b:param(req.body)
  local check, deny = predicate(b, ctx, cat.schemas[t.schema], t, "insert", "r.")
  if deny then return denied(ctx, t) end
  local vs, vbody = refused_by_validator(req, ctx, t, q, cols, (q.on_conflict or p.resolution) and "upsert" or "insert")
  if vs then return vs, vbody end
  local list = quoted_list(cols)
  local conflict, target, merge = "", nil, false
  if q.on_conflict or p.resolution then
    target = {}
    if q.on_conflict then
      local names, err = grammar.columns(q.on_conflict)
      if not names then fail(400, "PGRST100", "failed to parse on_conflict parameter (" .. q.on_conflict .. ")", err) end
      for _, name in ipairs(names) do
        if not t.columns[name] then fail(400, "42703", format("column %s.%s does not exist", t.name, name)) end
        target[#target + 1] = name
      end
    else
      target = t.pk
    end
    if #target == 0 then fail(400, "PGRST100", "on_conflict needs columns: the table has no primary key") end
    if p.resolution == "ignore-duplicates" then
      conflict = " ON CONFLICT (" .. quoted_list(target) .. ") DO NOTHING"
    else
      local sets = {}
      for _, c in ipairs(cols) do sets[#sets + 1] = sqlmod.qi(c) .. " = EXCLUDED." .. sqlmod.qi(c) end
      if #sets == 0 then sets[1] = sqlmod.qi(target[1]) .. " = EXCLUDED." .. sqlmod.qi(target[1]) end
      conflict = " ON CONFLICT (" .. quoted_list(target) .. ") DO UPDATE SET " .. concat(sets, ", ")
      merge = true
    end
  end
  local source = "json_populate_recordset(NULL::" .. from .. ", (SELECT j FROM pgrst_payload))"
  -- The policy checks the rows as written (defaults and triggers applied, as
  -- PostgreSQL's WITH CHECK does), not the payload.  An upsert that updates
  -- is checked as an update: the row it overwrites must pass the update
  -- policy (USING) and the merged row its check.  The statement's CTEs all
  -- read the table as it was before the INSERT: pgrst_old is what the
  -- upsert will overwrite.
  local old, checks = "", nil
  if merge then
    local using = predicate(b, ctx, cat.schemas[t.schema], t, "update", "e.") or "FALSE"
    local update_check = predicate(b, ctx, cat.schemas[t.schema], t, "update", "r.") or "FALSE"
    local ek, rk, match = {}, {}, {}
    for i, c in ipairs(target) do
      ek[i], rk[i] = "e." .. sqlmod.qi(c), "r." .. sqlmod.qi(c)
      match[i] = "o." .. sqlmod.qi(c) .. " = r." .. sqlmod.qi(c)
    end
    local overwrites = "EXISTS (SELECT 1 FROM pgrst_old AS o WHERE " .. concat(match, " AND ") .. ")"
    old = ", pgrst_old AS (SELECT " .. concat(ek, ", ") .. ", coalesce(" .. using .. ", false) AS pgrst_allowed FROM "
      .. from .. " AS e WHERE (" .. concat(ek, ", ") .. ") IN (SELECT " .. concat(rk, ", ") .. " FROM " .. source .. " AS r))"
    checks = "(SELECT count(*) FROM pgrst_old WHERE NOT pgrst_allowed) + (SELECT count(*) FROM pgrst_rows AS r WHERE NOT "
      .. overwrites .. " AND NOT coalesce(" .. check .. ", false)) + (SELECT count(*) FROM pgrst_rows AS r WHERE "
      .. overwrites .. " AND NOT coalesce(" .. update_check .. ", false))"
  else
    checks = "(SELECT count(*) FROM pgrst_rows AS r WHERE NOT coalesce(" .. check .. ", false))"
  end
  local sql = "WITH pgrst_payload AS (SELECT CASE WHEN json_typeof(j) = 'array' THEN j ELSE json_build_array(j) END AS j FROM (SELECT "
    .. body_param .. "::json AS j) AS pgrst_body)" .. old .. ", pgrst_rows AS (INSERT INTO " .. from .. " (" .. list
    .. ") SELECT " .. list .. " FROM " .. source .. " AS r" .. conflict .. " RETURNING *) SELECT " .. checks
    .. " AS violations, x.* FROM (" .. returning(b, q) .. ") AS x"
  return write(req, ctx, t, "insert", sql, b.params, p)
end

local function has_filter(q)
  for k in pairs(q) do
    if not RESERVED[k] or k == "or" or k == "and" or k == "not.or" or k == "not.and" then return true end
  end
  return false
end

local function unfiltered_allowed(ctx, t, action)
  local ok, mod = pcall(require, "policies." .. t.schema .. "." .. t.name)
  return ok and type(mod) == "table" and type(mod.unfiltered) == "table" and mod.unfiltered[action] == true
end

local function update(req, ctx, cat, t, q)
  local payload = req.json
  if type(payload) ~= "table" or payload[1] ~= nil then fail(400, "PGRST102", "Empty or invalid json") end
  if not has_filter(q) and not unfiltered_allowed(ctx, t, "update") then
    fail(400, "21000", "UPDATE requires a WHERE clause", "add a filter, or allow unfiltered updates in the table's policy")
  end
  local cols = payload_columns(t, q, payload)
  if #cols == 0 then fail(400, "PGRST102", "Empty or invalid json", "no columns to update") end
  local b = sqlmod.builder(t)
  local from = sqlmod.qualified(t)
  local body_param = b:param(req.body)
  local conds = filters(b, q)
  local using, deny = predicate(b, ctx, cat.schemas[t.schema], t, "update")
  if deny then return denied(ctx, t) end
  local vs, vbody = refused_by_validator(req, ctx, t, q, cols, "update")
  if vs then return vs, vbody end
  conds[#conds + 1] = using
  local check = predicate(b, ctx, cat.schemas[t.schema], t, "update", "c.")
  local list = quoted_list(cols)
  local sql = "WITH pgrst_rows AS (UPDATE " .. from .. " SET (" .. list .. ") = (SELECT " .. list
    .. " FROM json_populate_record(NULL::" .. from .. ", " .. body_param .. "::json))" .. sqlmod.where(conds)
    .. " RETURNING *) SELECT (SELECT count(*) FROM pgrst_rows AS c WHERE NOT coalesce(" .. check
    .. ", false)) AS violations, x.* FROM (" .. returning(b, q) .. ") AS x"
  return write(req, ctx, t, "update", sql, b.params, prefs(req))
end

local function delete(req, ctx, cat, t, q)
  if not has_filter(q) and not unfiltered_allowed(ctx, t, "delete") then
    fail(400, "21000", "DELETE requires a WHERE clause", "add a filter, or allow unfiltered deletes in the table's policy")
  end
  local b = sqlmod.builder(t)
  local conds = filters(b, q)
  local using, deny = predicate(b, ctx, cat.schemas[t.schema], t, "delete")
  if deny then return denied(ctx, t) end
  conds[#conds + 1] = using
  local sql = "WITH pgrst_rows AS (DELETE FROM " .. sqlmod.qualified(t) .. sqlmod.where(conds)
    .. " RETURNING *) SELECT 0 AS violations, x.* FROM (" .. returning(b, q) .. ") AS x"
  return write(req, ctx, t, "delete", sql, b.params, prefs(req))
end

local HANDLERS = { GET = read, HEAD = read, POST = insert, PATCH = update, DELETE = delete }

local function dispatch(req)
  local ctx = req.auth
  -- A parameter such as select or order given twice: the last one wins
  -- (or= and and= may repeat; each is a filter).
  for k in pairs(RESERVED) do
    local v = req.query[k]
    if type(v) == "table" and k ~= "or" and k ~= "and" and k ~= "not.or" and k ~= "not.and" then req.query[k] = v[#v] end
  end
  local cat, err = catalog.get()
  if not cat then return errors.from_db(err, false) end
  local target = req.params.rest or ""
  local fn = target:match("^rpc/(.+)$")
  local write_method = req.method ~= "GET" and req.method ~= "HEAD"
  local schema = schema_for(req, cat, write_method)
  if fn then return rpc.call(req, ctx, cat, schema, fn) end
  local t = cat.schemas[schema].tables[target]
  if not t then
    return errors.new(404, "PGRST205", format("Could not find the table '%s.%s' in the schema cache", schema, target))
  end
  local h = HANDLERS[req.method]
  if not h then return errors.new(405, "PGRST117", "Unsupported HTTP method: " .. req.method) end
  return h(req, ctx, cat, t, req.query)
end

--- The /rest/v1/*rest route's handler.
function M.handle(req)
  local ok, status, body, headers = pcall(dispatch, req)
  if ok then return status, body, headers end
  local e = status
  if type(e) == "table" and e.rest_error then
    return e.status, { code = e.code, message = e.message, details = e.details or cjson.null, hint = e.hint or cjson.null }
  end
  error(e, 0)
end

return M
