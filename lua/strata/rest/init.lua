-- strata.rest: the PostgREST-compatible API under /rest/v1, so supabase-js
-- and postgrest-js work unchanged.  Tables and views of the exposed schemas
-- (GET, HEAD, POST, PUT, PATCH, DELETE) and functions (rpc/<name>), filtered by
-- the Lua row policies.  SQL comes from strata.rest.sql; identifiers from
-- the catalog only; values always as parameters; JSON built by PostgreSQL.
--
-- Two doors, one implementation: M.handle(req) is the HTTP route, which
-- turns the request into a call and runs it; M.run(call) answers a call
-- made without HTTP (strata.data, for Lua routes).  A call is
--   { ctx = { role, uid, is_admin, claims },   the caller the policies see
--     service = true,                         statements as the service (strata.rest.exec)
--     method = "GET" | "HEAD" | "POST" | "PATCH" | "DELETE" | "PUT",
--     schema = profile or nil (the default), table = name | fn = function name,
--     query = { k = "v" | { "v", ... } },     PostgREST's parameters, as in a URL
--     json = decoded body, body = its JSON text, csv = true (body is CSV text),
--     prefer = strata.rest.prefer.parse's table,
--     media = "json" | "single" | "csv", or accept = an Accept header to negotiate,
--     range = a Range header or nil }
-- and its answer is (status, body, headers): body a JSON (or CSV) text, a
-- PostgREST error table, or nil.

local cjson = require("cjson")
local config = require("strata.config")
local catalog = require("strata.rest.catalog")
local errors = require("strata.rest.errors")
local grammar = require("strata.rest.grammar")
local query = require("strata.rest.query")
local sqlmod = require("strata.rest.sql")
local policy = require("strata.rest.policy")
local validation = require("strata.schema")
local rpc = require("strata.rest.rpc")
local embed = require("strata.rest.embed")
local prefer = require("strata.rest.prefer")
local media = require("strata.rest.media")
local csv = require("strata.rest.csv")
local exec = require("strata.rest.exec")
local activity = require("strata.activity")
local openapi = require("strata.rest.openapi")

local format, concat, tonumber, type, pairs, ipairs = string.format, table.concat, tonumber, type, pairs, ipairs
local sub = string.sub
local raise = errors.raise

local M = {}

local JSON = "application/json; charset=utf-8"
local RESERVED, LOGIC, values_of = query.RESERVED, query.LOGIC, query.values_of

local function schema_for(call, cat)
  local name = call.schema
  if not name then return cat.default_schema end
  if not cat.schemas[name] then
    raise(406, "PGRST106", "The schema must be one of the following: " .. concat(config.schemas, ", "))
  end
  return name
end

-- The client's filters (query parameters that are not reserved words).
local function filters(b, q)
  local conds, names = {}, {}
  for k in pairs(q) do
    if not RESERVED[k] then names[#names + 1] = k end
  end
  if #names > 1 then table.sort(names) end -- stable SQL text for the statement cache
  for i = 1, #names do
    local k = names[i]
    local v = q[k]
    if type(v) == "table" then
      for _, one in ipairs(v) do conds[#conds + 1] = b:condition(query.filter_node(k, one)) end
    else
      conds[#conds + 1] = b:condition(query.filter_node(k, v))
    end
  end
  return conds
end

local function window(call, q)
  return query.window(call, q, config.max_rows)
end

local function content_range(offset, page, total)
  local tot = total and tostring(total) or "*"
  if page == 0 then return "*/" .. tot end
  if math.type(offset) == "integer" and math.type(page) == "integer" then -- the same text, without format's cost
    return offset .. "-" .. (offset + page - 1) .. "/" .. tot
  end
  return format("%d-%d/%s", offset, offset + page - 1, tot)
end

local function anon(ctx)
  return ctx.role == "anon"
end

local function denied(ctx, t)
  return errors.new(anon(ctx) and 401 or 403, "42501", format("permission denied for table %s", t.name), nil,
    anon(ctx) and "send a bearer token" or nil)
end

-- A SQL builder for t that refuses the columns the policy hides from ctx.
local function builder(ctx, t)
  local b = sqlmod.builder(t)
  local hidden = policy.hidden(ctx, t.schema, t.name)
  local status = anon(ctx) and 401 or 403
  if not hidden then raise(status, "42501", format("permission denied for table %s", t.name)) end
  b.hidden, b.hidden_status = hidden, status
  return b
end

-- The policy predicate for action, or an early (status, body) answer.
local function predicate(b, ctx, cat_schema, t, action, alias)
  local pol = policy.decide(ctx, t.schema, t.name, action)
  if pol == nil then return nil, true end
  policy.note_rls(b, t, action)
  return policy.compile(b, t, pol, alias, cat_schema), false
end

local function single_wanted(call)
  return media.of(call) == "single"
end

local function not_single(page)
  return errors.new(406, "PGRST116", "Cannot coerce the result to a single JSON object",
    format("The result contains %d rows", page))
end

-- The soft-delete column of t's policy (policy.soft_delete), when t has it.
local function soft_deleted(t)
  local col = policy.soft_delete(t.schema, t.name)
  return col and t.columns[col] and col or nil
end

-- The planner's estimate of the rows a read's filters and select policy
-- match (PostgREST's count=planned: "Plan Rows" of EXPLAIN (FORMAT JSON) of
-- its count query), on a builder of its own so that the statement holds
-- only their parameters.
local function planned_total(call, ctx, cat, t, q)
  local b = builder(ctx, t)
  local conds = filters(b, q)
  conds[#conds + 1] = predicate(b, ctx, cat.schemas[t.schema], t, "select")
  local rows, err = exec.query(call, "EXPLAIN (FORMAT JSON) SELECT 1 FROM " .. sqlmod.qualified(t) .. sqlmod.where(conds),
    table.unpack(b.params, 1, #b.params))
  if not rows then return nil, err end
  local plan = rows[1]["QUERY PLAN"]
  if type(plan) == "string" then plan = cjson.decode(plan) end
  return math.tointeger(plan[1].Plan["Plan Rows"]) or 0
end

-- A read or write answered with its plan (Accept:
-- application/vnd.pgrst.plan, conf rest_plans): EXPLAIN of the statement
-- itself, in a transaction taken back (ANALYZE runs it), 200 as PostgREST.
local function plan(call, ctx, sql, params, is_validated)
  local rows, err = exec.plan(call, media.explain(call, sql), params, is_validated)
  if not rows then return errors.from_db(err, anon(ctx)) end
  return media.plan_answer(call, rows)
end

local function read(call, ctx, cat, t, q)
  local b = builder(ctx, t)
  local nested
  q, nested = embed.split(q) -- "other.col=..." parameters belong to embedded resources
  local items = query.select(q.select)
  local inner = embed.plan(b, ctx, cat.schemas[t.schema], t, items, nested, { max_rows = config.max_rows })
  local group = ""
  if sqlmod.aggregating(items) then
    if not config.rest_aggregates then raise(400, "PGRST123", "Use of aggregate functions is not allowed") end
    b.aggregates = true
    group = b:group_by(items)
  end
  local sel = b:select_list(items)
  local conds = filters(b, q)
  for _, c in ipairs(inner) do conds[#conds + 1] = c end
  local soft = soft_deleted(t)
  if soft and q[soft] == nil then conds[#conds + 1] = sqlmod.qi(soft) .. " IS NULL" end
  local pred, deny = predicate(b, ctx, cat.schemas[t.schema], t, "select")
  if deny then return denied(ctx, t) end
  conds[#conds + 1] = pred
  local where = sqlmod.where(conds)
  local order = ""
  if q.order and q.order ~= "" then
    order = " ORDER BY " .. embed.order_by(b, query.order(q.order)) -- rel(col) orders by a to-one embed
  end
  local limit, offset = window(call, q)
  local p = call.prefer
  local count = p.count
  local from = sqlmod.qualified(t)
  -- count=estimated counts exactly up to max_rows (PostgREST: LIMIT
  -- max_rows + 1), past it takes the larger of that and the planner's.
  local total_sql = count == "exact" and ("(SELECT count(*) FROM " .. from .. where .. ")")
    or count == "estimated" and ("(SELECT count(*) FROM (SELECT 1 FROM " .. from .. where .. " LIMIT "
      .. b:param(config.max_rows + 1) .. ") AS pgrst_counted)")
    or "NULL::bigint"
  local single = single_wanted(call)
  local body_sql = media.body_aggregate(call, b, items, "s")
  local sql = "WITH pgrst_source AS (SELECT " .. sel .. " FROM " .. from .. where .. group .. order
    .. " LIMIT " .. b:param(limit) .. " OFFSET " .. b:param(offset) .. ") SELECT " .. total_sql
    .. " AS total, (SELECT count(*) FROM pgrst_source) AS page, (SELECT " .. body_sql .. " FROM pgrst_source s) AS body"
  call.rls_bypass = b.params.rls_bypass
  if media.of(call) == "plan" then return plan(call, ctx, sql, b.params) end
  local rows, dberr = exec.query(call, sql, table.unpack(b.params, 1, #b.params))
  if not rows then return errors.from_db(dberr, anon(ctx)) end
  local r = rows[1]
  local total = r.total ~= cjson.null and r.total or nil
  if count == "planned" or count == "estimated" and total > config.max_rows then
    local planned, perr = planned_total(call, ctx, cat, t, q)
    if not planned then return errors.from_db(perr, anon(ctx)) end
    total = count == "planned" and planned or math.max(total, planned)
  end
  if single then
    if r.page ~= 1 then return not_single(r.page) end
    return 200, r.body, { ["Content-Type"] = media.content_type(call) or JSON }
  end
  local headers = { ["Content-Type"] = media.content_type(call),
    ["Content-Range"] = content_range(offset, r.page, total), ["Preference-Applied"] = prefer.applied(p, { count = true }) }
  -- PostgREST's rule (RangeQuery.rangeStatus): past the end 416, a page
  -- smaller than the total 206, else 200.
  if total and offset > total then
    local status, body = errors.new(416, "PGRST103", "Requested range not satisfiable",
      format("An offset of %d was requested, but there are only %d rows.", offset, total))
    return status, body, headers
  end
  local status = (total and r.page < total) and 206 or 200
  return status, r.body, headers
end

-- The payload's columns: columns= or the union of the objects' keys.
local function payload_columns(t, q, payload)
  local cols, seen = {}, {}
  local function add(name)
    if not t.columns[name] then
      raise(400, "PGRST204", format("Could not find the '%s' column of '%s' in the schema cache", name, t.name))
    end
    if not seen[name] then seen[name] = true; cols[#cols + 1] = name end
  end
  local list = payload[1] ~= nil and payload or { payload }
  for _, obj in ipairs(list) do
    if type(obj) ~= "table" or (obj[1] ~= nil) then raise(400, "PGRST102", "All object keys must match") end
  end
  if q.columns then
    local names = query.columns("columns", q.columns)
    for _, name in ipairs(names) do add(name) end
    return cols
  end
  for _, obj in ipairs(list) do
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

-- Content-Range of a write, as PostgREST's Response.hs: inserts and deletes
-- "*/total", updates "0-(n-1)/total"; total is the affected row count when
-- Prefer: count= asked for it, else "*".
local function write_range(action, page, counting)
  local total = counting and page or nil
  if action == "update" then return content_range(0, page, total) end
  return "*/" .. (total and tostring(total) or "*")
end

-- Runs a write atomically (strata.rest.exec); the answer as (status, body,
-- headers).  Prefer: tx=rollback answers as if committed, then takes the
-- write back.  put: a PUT, which must have written exactly the row of its URL.
local function write(call, ctx, t, action, sql, params, put)
  local single = single_wanted(call)
  local p = call.prefer
  local ret = p["return"] or "minimal"
  local outcome, kept
  local validated = action ~= "delete" and t.schema == "public" and validation.has_validator(t.name)
  call.rls_bypass = params.rls_bypass
  if media.of(call) == "plan" then return plan(call, ctx, sql, params, validated) end
  local res, err = exec.atomic(call, function(tx)
    local rows, e = tx.query(sql, table.unpack(params, 1, params.n or #params))
    if not rows then return nil, e end
    local r = rows[1]
    if (r.violations or 0) > 0 then
      return nil, { code = "42501", message = format('new row violates row-level security policy for table "%s"', t.name) }
    end
    local limit = action ~= "insert" and prefer.max_affected(p)
    if limit and r.page > limit then
      outcome = { prefer.over_limit(r.page) }
    elseif put and r.page ~= 1 then
      outcome = { errors.new(400, "PGRST115", "Payload values do not match URL in primary key column(s)") }
    elseif single and r.page ~= 1 then
      outcome = { not_single(r.page) }
    elseif p.tx == "rollback" then
      kept = r
    else
      return r
    end
    return nil, prefer.ROLLBACK
  end, validated)
  if outcome then return table.unpack(outcome) end
  res = res or kept
  if not res then
    -- An integrity error's details print the row or key as written
    -- ("Failing row contains (...)"), hidden columns included: a caller
    -- the policy hides columns from gets the error without them.
    local hidden = policy.hidden(ctx, t.schema, t.name)
    if err and (err.code or ""):sub(1, 2) == "23" and (not hidden or next(hidden)) then err.detail = nil end
    return errors.from_db(err, anon(ctx))
  end
  local insert = action == "insert"
  local headers = { ["Content-Type"] = media.content_type(call), ["Preference-Applied"] =
    prefer.applied(p, { ["return"] = true, count = true, resolution = insert and not put, missing = insert and not put,
      ["max-affected"] = not insert }) }
  if not put then headers["Content-Range"] = write_range(action, res.page, p.count ~= nil) end
  if ret == "representation" then
    local created = insert and (not put or res.inserted > 0)
    return created and 201 or 200, single and res.single or res.body, headers
  end
  return (insert and not put) and 201 or 204, nil, headers
end

-- The SELECT answering a write's rows (pgrst_rows) in the negotiated
-- representation: page (the affected row count; as in PostgREST, less the
-- rows an !inner embed drops), body, single.  Embeds read the tables as
-- they were before the statement (PostgreSQL's rule for a data-modifying
-- CTE, PostgREST's too), under their select policies; nested holds the
-- embedded resources' parameters (embed.split).
local function returning(call, ctx, cat, t, b, q, nested)
  local items = query.select(q.select)
  local inner = embed.plan(b, ctx, cat.schemas[t.schema], t, items, nested, { parent = "pgrst_rows." })
  return "SELECT count(*) AS page, " .. media.body_aggregate(call, b, items, "x")
    .. " AS body, (json_agg(" .. media.row(call, "x") .. ") -> 0)::text AS single FROM (SELECT " .. b:select_list(items) .. " FROM pgrst_rows"
    .. sqlmod.where(inner) .. ") AS x"
end

-- lua/validators/<table>.lua (schema public) checks each object of a write
-- before any SQL runs (strata.schema.check_rows): 422 with every failure
-- as details = [{path, message}], nothing written.  A validator that
-- raises, cannot load or answers nonsense refuses the write (fail closed).
-- PATCH (partial) passes the values its eq./in. filters allow per column.
-- A caller the policy refuses outright gets the policy's answer instead.
local function refused_by_validator(call, ctx, t, q, cols, action)
  -- Another schema's validator is lua/validators/<schema>/<table>.lua.
  local vname = t.schema == "public" and t.name or (t.schema .. "." .. t.name)
  if not validation.has_validator(vname) then return nil end
  if policy.decide(ctx, t.schema, t.name, action == "update" and "update" or "insert") == false then return nil end
  local list = call.json[1] ~= nil and call.json or { call.json }
  local rows = {}
  for i, obj in ipairs(list) do
    rows[i] = {}
    for _, c in ipairs(cols) do rows[i][c] = obj[c] end
  end
  local known = {}
  for k, v in pairs(q) do
    if not RESERVED[k] and not LOGIC[k] then
      for _, one in ipairs(values_of(v)) do
        local node = grammar.filter(k, one)
        if node and not node.negate and not node.quant and #node.field.path == 0 and (node.op == "eq" or node.op == "in") then
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
  local bad = validation.check_rows(vname, rows, vctx, call.json[1] ~= nil)
  if not bad then return nil end
  if bad.failed then
    return errors.new(422, "23514", format("the validator %s failed; the write is refused", bad.file),
      { { path = "", message = "the validator failed (the server log has its error)" } })
  end
  return errors.new(422, "23514", format('%d value%s of table "%s" failed validation (%s)', #bad.errors,
    #bad.errors == 1 and "" or "s", t.name, bad.file), bad.errors)
end

-- The conflict clause of an upsert ("" for a plain insert), its target
-- columns and whether it merges (updates the rows it meets).  A PUT always
-- merges on the primary key.  A hidden column cannot be a target: whether
-- a row conflicted would tell its value (PostgreSQL too wants SELECT there).
local function conflict_clause(b, t, q, p, cols, put)
  if not (put or q.on_conflict or p.resolution) then return "", nil, false end
  local target = t.pk
  if q.on_conflict and not put then
    target = {}
    local names = query.columns("on_conflict", q.on_conflict)
    for _, name in ipairs(names) do
      if not t.columns[name] then raise(400, "42703", format("column %s.%s does not exist", t.name, name)) end
      if b.hidden[name] then
        raise(b.hidden_status, "42501", format("permission denied for column %s of table %s", name, t.name))
      end
      target[#target + 1] = name
    end
  end
  if #target == 0 then raise(400, "PGRST100", "on_conflict needs columns: the table has no primary key") end
  if p.resolution == "ignore-duplicates" and not put then
    return " ON CONFLICT (" .. quoted_list(target) .. ") DO NOTHING", target, false
  end
  local sets = {}
  for _, c in ipairs(cols) do sets[#sets + 1] = sqlmod.qi(c) .. " = EXCLUDED." .. sqlmod.qi(c) end
  if #sets == 0 then sets[1] = sqlmod.qi(target[1]) .. " = EXCLUDED." .. sqlmod.qi(target[1]) end
  return " ON CONFLICT (" .. quoted_list(target) .. ") DO UPDATE SET " .. concat(sets, ", "), target, true
end

-- Prefer: missing=default: a VALUES list in which a key an object lacks is
-- DEFAULT (json_populate_recordset would make it NULL); present keys,
-- explicit nulls included, are typed by json_populate_record.
local function default_values(b, from, cols, objs)
  local rows = {}
  for i, obj in ipairs(objs) do
    local cells, at = {}, b:param(i - 1)
    for k, c in ipairs(cols) do
      cells[k] = obj[c] == nil and "DEFAULT" or ("(SELECT (json_populate_record(NULL::" .. from .. ", j -> " .. at
        .. "::int))." .. sqlmod.qi(c) .. " FROM pgrst_payload)")
    end
    rows[i] = "(" .. concat(cells, ", ") .. ")"
  end
  return "VALUES " .. concat(rows, ", ")
end

-- What the INSERT inserts: the payload's rows, with missing=default
-- default_values, for a PUT only a row whose key is the URL's (put_where).
local function insert_rows(b, from, cols, payload, p, source, put_where)
  local objs = payload[1] ~= nil and payload or { payload }
  if p.missing == "default" and put_where == "" and #objs > 0 then return default_values(b, from, cols, objs) end
  return "SELECT " .. quoted_list(cols) .. " FROM " .. source .. " AS r" .. put_where
end

local PUT_FILTERS = "Filters must include all and only primary key columns with 'eq' operators"

-- A PUT's filters, PostgREST's rule: every primary-key column once with eq.
-- and nothing else; their SQL conditions on the payload row (alias r.), b
-- nil to check them only.
local function put_conditions(b, t, q)
  local pk, conds, n = {}, {}, 0
  for _, c in ipairs(t.pk) do pk[c] = true end
  local keys = {}
  for k in pairs(q) do
    if not RESERVED[k] then keys[#keys + 1] = k end
  end
  table.sort(keys) -- stable SQL text for the statement cache
  for _, k in ipairs(keys) do
    local node = pk[k] and type(q[k]) == "string" and grammar.filter(k, q[k])
    if not node or node.op ~= "eq" or node.negate or #node.field.path > 0 then raise(400, "PGRST105", PUT_FILTERS) end
    n = n + 1
    conds[n] = b and b:condition(node, "r.")
  end
  if n == 0 or n ~= #t.pk then raise(400, "PGRST105", PUT_FILTERS) end
  return conds
end

-- A POST body in text/csv becomes the JSON array of its rows (strata.rest.csv).
local function csv_payload(call)
  if not call.csv then return end
  local rows, err = csv.decode(call.body)
  if not rows then raise(400, "PGRST102", "Invalid CSV body", err) end
  call.json, call.body = rows, cjson.encode(rows)
end

-- put: true for a PUT (strata.rest's put).
local function insert(call, ctx, cat, t, q, put)
  local nested
  q, nested = embed.split(q) -- "other.col=..." parameters belong to the representation's embeds
  if not put then csv_payload(call) end
  local payload = call.json
  if type(payload) ~= "table" then raise(400, "PGRST102", "Empty or invalid json") end
  local cols = payload_columns(t, q, payload)
  if #cols == 0 then raise(400, "PGRST102", "Empty or invalid json", "no columns to insert") end
  local b = builder(ctx, t)
  local p = call.prefer
  local from = sqlmod.qualified(t)
  local body_param = b:param(call.body)
  local check, deny = predicate(b, ctx, cat.schemas[t.schema], t, "insert", "r.")
  if deny then return denied(ctx, t) end
  local upsert = put or q.on_conflict or p.resolution
  local vs, vbody = refused_by_validator(call, ctx, t, q, cols, upsert and "upsert" or "insert")
  if vs then return vs, vbody end
  local list = quoted_list(cols)
  local conflict, target, merge = conflict_clause(b, t, q, p, cols, put)
  local put_where = put and sqlmod.where(put_conditions(b, t, q)) or ""
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
    -- The merge itself skips a row the update policy refuses: merged
    -- first, such a row could break a constraint whose error details
    -- print it (23514 "Failing row contains ..."), before the checks
    -- below refuse the write.  pgrst_old still counts it: 42501.
    local guard = predicate(b, ctx, cat.schemas[t.schema], t, "update", "pgrst_target.") or "FALSE"
    conflict = conflict .. " WHERE coalesce(" .. guard .. ", false)"
    local ek, rk, match = {}, {}, {}
    for i, c in ipairs(target) do
      ek[i], rk[i] = "e." .. sqlmod.qi(c), "r." .. sqlmod.qi(c)
      match[i] = "o." .. sqlmod.qi(c) .. " = r." .. sqlmod.qi(c)
    end
    local overwrites = "EXISTS (SELECT 1 FROM pgrst_old AS o WHERE " .. concat(match, " AND ") .. ")"
    old = ", pgrst_old AS (SELECT " .. concat(ek, ", ") .. ", coalesce(" .. using .. ", false) AS pgrst_allowed FROM "
      .. from .. " AS e WHERE (" .. concat(ek, ", ") .. ") IN (SELECT " .. concat(rk, ", ") .. " FROM " .. source .. " AS r"
      .. put_where .. "))"
    -- A payload row neither inserted nor merged met a row the caller may
    -- not update and cannot see either (the row level security of sql/120
    -- hides it from pgrst_old): the merge's guard skipped it.  A refusal
    -- too, not a silent no-op.
    local skipped = "(SELECT count(*) FROM " .. source .. " AS r" .. put_where .. ") - (SELECT count(*) FROM pgrst_rows)"
    checks = "(SELECT count(*) FROM pgrst_old WHERE NOT pgrst_allowed) + (SELECT count(*) FROM pgrst_rows AS r WHERE NOT "
      .. overwrites .. " AND NOT coalesce(" .. check .. ", false)) + (SELECT count(*) FROM pgrst_rows AS r WHERE "
      .. overwrites .. " AND NOT coalesce(" .. update_check .. ", false)) + " .. skipped
  else
    checks = "(SELECT count(*) FROM pgrst_rows AS r WHERE NOT coalesce(" .. check .. ", false))"
  end
  local sql = "WITH pgrst_payload AS (SELECT CASE WHEN json_typeof(j) = 'array' THEN j ELSE json_build_array(j) END AS j FROM (SELECT "
    .. body_param .. "::json AS j) AS pgrst_body)" .. old .. ", pgrst_rows AS (INSERT INTO " .. from .. " AS pgrst_target (" .. list
    .. ") " .. insert_rows(b, from, cols, payload, p, source, put_where) .. conflict .. " RETURNING *"
    .. (put and ", (xmax = 0) AS pgrst_inserted" or "") .. ") SELECT " .. checks .. " AS violations, "
    .. (put and "(SELECT count(*) FROM pgrst_rows WHERE pgrst_inserted) AS inserted, " or "")
    .. "x.* FROM (" .. returning(call, ctx, cat, t, b, q, nested) .. ") AS x"
  return write(call, ctx, t, "insert", sql, b.params, put)
end

local function has_filter(q)
  for k in pairs(q) do
    if not RESERVED[k] then return true end
  end
  return false
end

local function unfiltered_allowed(ctx, t, action)
  local ok, mod = pcall(require, "policies." .. t.schema .. "." .. t.name)
  return ok and type(mod) == "table" and type(mod.unfiltered) == "table" and mod.unfiltered[action] == true
end

local function update(call, ctx, cat, t, q)
  local nested
  q, nested = embed.split(q) -- "other.col=..." parameters belong to the representation's embeds
  if call.csv then -- one CSV row: the values to set
    csv_payload(call)
    if #call.json ~= 1 then raise(400, "PGRST102", "Empty or invalid json", "a CSV PATCH body holds one row") end
    call.json = call.json[1]
    call.body = cjson.encode(call.json)
  end
  local payload = call.json
  if type(payload) ~= "table" or payload[1] ~= nil then raise(400, "PGRST102", "Empty or invalid json") end
  if not has_filter(q) and not unfiltered_allowed(ctx, t, "update") then
    raise(400, "21000", "UPDATE requires a WHERE clause", "add a filter, or allow unfiltered updates in the table's policy")
  end
  local cols = payload_columns(t, q, payload)
  if #cols == 0 then raise(400, "PGRST102", "Empty or invalid json", "no columns to update") end
  local b = builder(ctx, t)
  local from = sqlmod.qualified(t)
  local body_param = b:param(call.body)
  local conds = filters(b, q)
  local using, deny = predicate(b, ctx, cat.schemas[t.schema], t, "update")
  if deny then return denied(ctx, t) end
  local vs, vbody = refused_by_validator(call, ctx, t, q, cols, "update")
  if vs then return vs, vbody end
  conds[#conds + 1] = using
  local check = predicate(b, ctx, cat.schemas[t.schema], t, "update", "c.")
  local list = quoted_list(cols)
  local sql = "WITH pgrst_rows AS (UPDATE " .. from .. " SET (" .. list .. ") = (SELECT " .. list
    .. " FROM json_populate_record(NULL::" .. from .. ", " .. body_param .. "::json))" .. sqlmod.where(conds)
    .. " RETURNING *) SELECT (SELECT count(*) FROM pgrst_rows AS c WHERE NOT coalesce(" .. check
    .. ", false)) AS violations, x.* FROM (" .. returning(call, ctx, cat, t, b, q, nested) .. ") AS x"
  return write(call, ctx, t, "update", sql, b.params)
end

local function delete(call, ctx, cat, t, q)
  local nested
  q, nested = embed.split(q) -- "other.col=..." parameters belong to the representation's embeds
  if not has_filter(q) and not unfiltered_allowed(ctx, t, "delete") then
    raise(400, "21000", "DELETE requires a WHERE clause", "add a filter, or allow unfiltered deletes in the table's policy")
  end
  local b = builder(ctx, t)
  local conds = filters(b, q)
  local using, deny = predicate(b, ctx, cat.schemas[t.schema], t, "delete")
  if deny then return denied(ctx, t) end
  conds[#conds + 1] = using
  local soft, change = soft_deleted(t), "DELETE FROM " .. sqlmod.qualified(t)
  if soft then -- a soft delete: the live rows get the column stamped
    conds[#conds + 1] = sqlmod.qi(soft) .. " IS NULL"
    change = "UPDATE " .. sqlmod.qualified(t) .. " SET " .. sqlmod.qi(soft) .. " = now()"
  end
  local sql = "WITH pgrst_rows AS (" .. change .. sqlmod.where(conds)
    .. " RETURNING *) SELECT 0 AS violations, x.* FROM (" .. returning(call, ctx, cat, t, b, q, nested) .. ") AS x"
  return write(call, ctx, t, "delete", sql, b.params)
end

-- PUT /<table>?<pk>=eq.<v>: the upsert of exactly that row, checked by the
-- insert and update policies as any upsert is.
local function put(call, ctx, cat, t, q)
  local payload = call.json
  put_conditions(nil, t, (embed.split(q))) -- the URL's error before the payload's, as PostgREST
  if type(payload) == "table" and type(payload[1]) == "table" and payload[1][1] == nil then
    -- An array: PostgREST puts its first object (UpsertSpec.hs).
    payload = payload[1]
    call.json, call.body = payload, cjson.encode(payload)
  end
  if type(payload) ~= "table" or payload[1] ~= nil then
    raise(400, "PGRST102", "Empty or invalid json", "PUT expects one JSON object")
  end
  return insert(call, ctx, cat, t, q, true)
end

-- GET /rest/v1/: the OpenAPI document (strata.rest.openapi) for
-- Accept: application/openapi+json, application/json, */* or none.
local function openapi_document(call, cat, schema)
  local accept = call.accept
  if accept and accept:match("%S") then
    local fine = false
    for part in accept:gmatch("[^,]+") do
      local mt = part:match("^%s*([^;%s]*)"):lower()
      local q = tonumber(part:match(";%s*[qQ]%s*=%s*([%d%.]+)")) or 1
      if q > 0 and (mt == "application/openapi+json" or mt == "application/json" or mt == "*/*") then fine = true end
    end
    if not fine then
      return errors.new(406, "PGRST107", "None of these media types are available: " .. accept)
    end
  end
  return 200, openapi.document(call.ctx, cat, schema, call.host), { ["Content-Type"] = openapi.CONTENT_TYPE }
end

local HANDLERS = { GET = read, HEAD = read, POST = insert, PATCH = update, DELETE = delete, PUT = put }

local function dispatch(call)
  -- A parameter given twice: as PostgREST, the first select, order,
  -- columns and on_conflict apply (every order= is parsed all the same),
  -- the last limit and offset (or= and and= may repeat; each is a filter).
  -- The query is walked, not RESERVED: it is usually the shorter, and most
  -- values are strings.
  local q = call.query
  for k, v in pairs(q) do
    if RESERVED[k] and type(v) == "table" then
      if k == "order" then for i = 2, #v do query.order(v[i]) end end
      q[k] = (k == "limit" or k == "offset") and v[#v] or v[1]
    end
  end
  prefer.check(call.prefer)
  local cat, err = catalog.get()
  if not cat then return errors.from_db(err, false) end
  policy.review_rls(cat)
  local schema = schema_for(call, cat)
  if call.fn then return rpc.call(call, cat, schema, call.fn) end
  if call.table == "" and (call.method == "GET" or call.method == "HEAD") then return openapi_document(call, cat, schema) end
  local t = cat.schemas[schema].tables[call.table]
  if not t then
    local near = errors.closest(call.table, cat.schemas[schema].tables)
    return errors.new(404, "PGRST205", format("Could not find the table '%s.%s' in the schema cache", schema, call.table),
      nil, near and format("Perhaps you meant the table '%s.%s'", schema, near))
  end
  local h = HANDLERS[call.method]
  if not h then return errors.new(405, "PGRST117", "Unsupported HTTP method: " .. call.method) end
  media.of(call) -- 406 before any work when no acceptable representation exists
  return h(call, call.ctx, cat, t, q)
end

--- Answers a call (see the top of this file) as (status, body, headers).
-- A successful write that lua/logging.lua names as user activity (through
-- /rest/v1 or strata.data) is logged for the request's caller
-- (strata.activity.rest_write: queued, no wait).
function M.run(call)
  local ok, status, body, headers = pcall(dispatch, call)
  if not ok then return errors.caught(status) end
  if call.table and status < 300 and call.method ~= "GET" and call.method ~= "HEAD" then
    activity.rest_write(call.table, call.method, call.query)
  end
  return status, body, headers
end

local CSV_TYPE = "^%s*[Tt][Ee][Xx][Tt]/[Cc][Ss][Vv]"

-- The call an HTTP request makes.  A read's body is never looked at (nor
-- built: req.body is read on demand).
local function call_of(req)
  local method, h = req.method, req.headers
  local write = method ~= "GET" and method ~= "HEAD"
  local target = req.params.rest or ""
  local fn = sub(target, 1, 4) == "rpc/" and target:match("^rpc/(.+)$") or nil
  local body = write and req.body or nil
  return { ctx = req.auth, method = method, schema = write and h["content-profile"] or h["accept-profile"],
    table = not fn and target or nil, fn = fn, query = req.query, json = req.json, body = body,
    csv = body and (h["content-type"] or ""):find(CSV_TYPE) ~= nil, prefer = prefer.parse(h.prefer),
    accept = h.accept, range = h.range, host = h.host }
end

--- The /rest/v1/*rest route's handler.
-- An error body as PostgREST writes it: "/" unescaped (lua-cjson writes "\/";
-- cjson escapes every "/", so a "\/" in its text is always that escape).
function M.handle(req)
  local status, body, headers = M.run(call_of(req))
  if type(body) == "table" then
    headers = headers or {}
    headers["Content-Type"] = JSON
    return status, (cjson.encode(body):gsub("\\/", "/")), headers
  end
  return status, body, headers
end

return M
