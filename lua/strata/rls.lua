-- strata.rls: PostgreSQL row level security generated from the Lua row
-- policies (lua/policies/<schema>/<table>.lua), so that the database
-- itself refuses what the policies refuse, whoever connects as an API role.
-- Pure: the catalog comes in as a table, SQL text goes out (scripts/rls.lua
-- runs it; `scripts/db rls` applies it).
--
-- Each action's function is run symbolically: once per shape of the caller
-- (role anon / authenticated / any other; a uid or none; the admin flag;
-- claims.agent_id absent, a non-empty string, "" or of another JSON type),
-- with ctx.uid and claims.agent_id standing for `auth.uid()` and
-- `auth.jwt() ->> 'agent_id'`.  The sentinels are strings, so type checks
-- and truthiness behave as for a real caller.  Each answer (true, false or
-- a filter of constants and sentinels, in strata.rest.policy's grammar) is
-- compiled to SQL, a sentinel becoming `(select auth.uid())` (an initPlan:
-- evaluated once per statement); each distinct answer is ANDed with the
-- guards (on the request settings) of the shapes that give it, as one
-- `(select g1 and g2 ...)` initPlan, and the answers are ORed.  An in_select becomes
-- `col IN (SELECT strata_rls."<schema>.<table>:<n>"())`, a SECURITY DEFINER
-- function reading the other table as its owner: a policy's subquery under
-- the caller's RLS would apply the other table's policies (not what the Lua
-- says) and PostgreSQL refuses policies that reach their own table again
-- ("infinite recursion detected in policy").  The function answers only
-- what the caller's own claims select.
--
-- Not expressible (the table then gets no policy for the API roles: RLS
-- denies them everything): a function that raises on a shape, reads a ctx
-- field or claim not modelled, answers anything but true/false/a filter,
-- embeds a sentinel in a longer string (concatenation), or answers
-- differently for two spellings of the same sentinel (it looked at the
-- value).  A comparison of ctx.uid with a literal cannot be seen this way;
-- the round-trip spec compares the SQL with the Lua policy on real callers.

local cjson = require("cjson")

local NULL = cjson.null
local concat, format, type, pairs, ipairs, sort, tostring, pcall, error =
  table.concat, string.format, type, pairs, ipairs, table.sort, tostring, pcall, error

local M = {}

M.ACTIONS = { "select", "insert", "update", "delete" }
M.PREFIX = "strata_"
M.FN_SCHEMA = "strata_rls"
M.API_ROLES = "anon, authenticated"

-- Two spellings of each sentinel: an answer must not depend on which.
local SENTINELS = {
  { uid = "\1strata.rls:uid\1", agent = "\1strata.rls:agent_id\1", number = -987654321.25 },
  { uid = "\2strata.rls:uid:2\2", agent = "\2strata.rls:agent_id:2\2", number = -987654321.75 },
}

-- Guards are plain expressions: a term puts its guards in one (select ...).
local AGENT_TYPE = "jsonb_typeof(auth.jwt() -> 'agent_id')"
local AGENT_TEXT = "(auth.jwt() ->> 'agent_id')"
local ADMIN = "coalesce(auth.jwt() -> 'user_metadata' ->> 'role' = 'admin', false)"
local ROLE = "auth.role()"

local function agent_of_type(t) return format("coalesce(%s = '%s', false)", AGENT_TYPE, t) end

-- The shapes, one dimension at a time; each value's guard is a non-null
-- boolean over the request settings, and a dimension's guards partition
-- every request.  strata sets request.jwt.claim.role to ctx.role and
-- request.jwt.claim.sub to ctx.uid; is_admin is user_metadata.role = "admin"
-- of the token (core/auth/jwt.c), read here from the same claims.
local DIMS = {
  { key = "role", values = {
    { v = "anon", guard = ROLE .. " = 'anon'" },
    { v = "authenticated", guard = ROLE .. " = 'authenticated'" },
    { v = "strata_rls_other_role", guard = "coalesce(" .. ROLE .. " not in ('anon', 'authenticated'), true)" },
  } },
  { key = "uid", values = {
    { v = nil, guard = "auth.uid() is null" },
    { v = "uid", guard = "auth.uid() is not null" },
  } },
  { key = "is_admin", values = {
    { v = false, guard = "not " .. ADMIN },
    { v = true, guard = ADMIN },
  } },
  { key = "agent_id", values = {
    { v = nil, absent = true, guard = "not coalesce(auth.jwt() ? 'agent_id', false)" },
    { v = "agent", guard = format("coalesce(%s = 'string' and %s <> '', false)", AGENT_TYPE, AGENT_TEXT) },
    { v = "", guard = format("coalesce(%s = 'string' and %s = '', false)", AGENT_TYPE, AGENT_TEXT) },
    { v = "number", guard = agent_of_type("number") },
    { v = true, guard = agent_of_type("boolean") },
    { v = NULL, guard = agent_of_type("null") },
    { v = {}, guard = format("coalesce(%s in ('object', 'array'), false)", AGENT_TYPE) },
  } },
}

local CTX_FIELDS = { role = true, uid = true, is_admin = true, claims = true }

-- A ctx whose unmodelled fields and claims raise when read.
local function make_ctx(shape, s)
  local claims = setmetatable({}, { __index = function(_, k)
    if k == "agent_id" then return nil end
    error("claim " .. tostring(k) .. " is not modelled", 2)
  end })
  if not shape.agent_id.absent then
    local v = shape.agent_id.v
    if v == "agent" then v = s.agent elseif v == "number" then v = s.number elseif type(v) == "table" then v = {} end
    claims.agent_id = v
  end
  local uid = shape.uid.v and s.uid or nil
  return setmetatable({ role = shape.role.v, uid = uid, is_admin = shape.is_admin.v, claims = claims },
    { __index = function(_, k)
      if CTX_FIELDS[k] then return nil end
      error("ctx." .. tostring(k) .. " is not modelled", 2)
    end })
end

local function qi(name) return '"' .. name:gsub('"', '""') .. '"' end
M.qi = qi

local function qualified(schema, name) return qi(schema) .. "." .. qi(name) end

local function quote(s)
  if s:find("\0", 1, true) then error({ rls = "a value holds a NUL byte" }) end
  return "'" .. s:gsub("'", "''") .. "'"
end

local function fail(msg) error({ rls = msg }, 0) end

-- A sentinel's SQL typed as the column it meets (an initPlan either way).
local function sentinel_sql(which, coltype)
  if which == "uid" then
    return coltype == "uuid" and "(select auth.uid())" or format("(select auth.uid()::%s)", coltype)
  end
  return format("(select (auth.jwt() ->> 'agent_id')::%s)", coltype)
end

-- c: { s = sentinel set, catalog, schema, fns = collector or nil (inline) }.
local function value(c, v, coltype)
  if v == c.s.uid then return sentinel_sql("uid", coltype) end
  if v == c.s.agent then return sentinel_sql("agent", coltype) end
  local t = type(v)
  if t == "string" then
    for _, s in ipairs(SENTINELS) do
      if v:find(s.uid, 1, true) or v:find(s.agent, 1, true) then fail("a sentinel inside a string (concatenation)") end
    end
    return quote(v)
  end
  -- As strata.pg sends numbers and booleans: their text, typed by the column.
  if t == "number" then return quote(math.type(v) == "integer" and format("%d", v) or format("%.17g", v)) end
  if t == "boolean" then return quote(tostring(v)) end
  fail("a filter value of type " .. t)
end

local OPS = { eq = "=", neq = "<>", gt = ">", gte = ">=", lt = "<", lte = "<=", like = "LIKE", ilike = "ILIKE" }

local compile

local function table_of(c, name)
  local t = c.catalog[c.schema] and c.catalog[c.schema][name]
  if not t then fail("unknown table " .. tostring(name)) end
  return t
end

local function array_value(c, list)
  if type(list) ~= "table" then fail("in needs a list") end
  local out = {}
  for i, v in ipairs(list) do
    if v == c.s.uid or v == c.s.agent then fail("a sentinel inside an in list") end
    local text = value(c, v, "text"):sub(2, -2):gsub("''", "'")
    out[i] = '"' .. text:gsub('[\\"]', "\\%0") .. '"'
  end
  return quote("{" .. concat(out, ",") .. "}")
end

local function one(c, t, name, spec)
  local coltype = type(name) == "string" and t.columns[name]
  if not coltype then fail("unknown column " .. tostring(name) .. " of " .. t.name) end
  local col = qi(name)
  if spec == nil or spec == NULL then return col .. " IS NULL" end
  if type(spec) ~= "table" then return col .. " = " .. value(c, spec, coltype) end
  local op, v = spec[1], spec[2]
  if OPS[op] then
    return col .. " " .. OPS[op] .. " " .. value(c, v, (op == "like" or op == "ilike") and "text" or coltype)
  end
  if op == "in" then return col .. " = ANY(" .. array_value(c, v) .. ")" end
  if op == "is" then
    local word = ({ [true] = "TRUE", [false] = "FALSE" })[v]
    if v == nil or v == NULL then word = "NULL" end
    if not word then fail("is needs null, true or false") end
    return col .. " IS " .. word
  end
  if op == "in_select" then
    local other = table_of(c, spec[2])
    local ocol = type(spec[3]) == "string" and other.columns[spec[3]]
    if not ocol then fail("unknown column " .. tostring(spec[3]) .. " of " .. tostring(spec[2])) end
    local inner_filter = spec[4]
    if inner_filter == nil then inner_filter = true end
    local body = format("SELECT %s FROM %s WHERE %s", qi(spec[3]), qualified(c.schema, other.name),
      compile(c, other, inner_filter, true))
    if c.inline then return format("%s IN (%s)", col, body) end
    return format("%s IN (SELECT %s())", col, c.fns(body, ocol))
  end
  fail("unknown operator " .. tostring(op))
end

-- inline: inside a function body (the owner's view: subqueries inline).
function compile(c, t, filter, inline)
  if filter == true then return "TRUE" end
  if filter == false then return "FALSE" end
  if type(filter) ~= "table" then fail("a filter of type " .. type(filter)) end
  local saved = c.inline
  c.inline = inline or c.inline
  local keys = {}
  for k in pairs(filter) do
    if type(k) ~= "string" then fail("a filter key of type " .. type(k)) end
    keys[#keys + 1] = k
  end
  sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = filter[k]
    if k == "$or" or k == "$and" then
      if type(v) ~= "table" then fail(k .. " needs a list") end
      local sub = {}
      for i, f in ipairs(v) do sub[i] = compile(c, t, f) end
      if #sub == 0 then
        parts[#parts + 1] = k == "$or" and "FALSE" or "TRUE"
      else
        parts[#parts + 1] = "(" .. concat(sub, k == "$or" and " OR " or " AND ") .. ")"
      end
    elseif k == "$not" then
      parts[#parts + 1] = "NOT (" .. compile(c, t, v) .. ")"
    else
      parts[#parts + 1] = one(c, t, k, v)
    end
  end
  c.inline = saved
  if #parts == 0 then return "TRUE" end
  if #parts == 1 then return "(" .. parts[1] .. ")" end
  return "(" .. concat(parts, " AND ") .. ")"
end

-- The SQL of f's answer for one shape, or nil, why.
local function leaf(f, shape, c, t)
  local sqls = {}
  for i, s in ipairs(SENTINELS) do
    local ok, res = pcall(f, make_ctx(shape, s))
    if not ok then return nil, "raised: " .. tostring(res) end
    if res ~= true and res ~= false and type(res) ~= "table" then return nil, "answered a " .. type(res) end
    c.s = s
    local fine, sql = pcall(compile, c, t, res)
    if not fine then return nil, type(sql) == "table" and sql.rls or tostring(sql) end
    sqls[i] = sql
  end
  if sqls[1] ~= sqls[2] then return nil, "the answer depends on the value of the uid or a claim" end
  return sqls[1]
end

-- The terms of the predicate over dimensions d.. given the shape so far:
-- a list of { guards = {...}, sql = ... }, one per distinct answer, with a
-- dimension's guard only where the answer depends on it; nil, why.
local function terms(f, shape, d, c, t)
  if d > #DIMS then
    local sql, why = leaf(f, shape, c, t)
    if not sql then return nil, why end
    return { { guards = {}, sql = sql } }, sql
  end
  local dim = DIMS[d]
  local children, first, same = {}, nil, true
  for i, val in ipairs(dim.values) do
    shape[dim.key] = val
    local list, key = terms(f, shape, d + 1, c, t)
    if not list then return nil, key end
    children[i] = list
    if i == 1 then first = key elseif key ~= first then same = false end
  end
  shape[dim.key] = nil
  if same then return children[1], first end
  local out, keys = {}, {}
  for i, list in ipairs(children) do
    for _, term in ipairs(list) do
      local guards = { dim.values[i].guard }
      for _, g in ipairs(term.guards) do guards[#guards + 1] = g end
      out[#out + 1] = { guards = guards, sql = term.sql }
      keys[#keys + 1] = concat(guards, " AND ") .. " => " .. term.sql
    end
  end
  return out, concat(keys, " | ")
end

-- One term: its guards as one initPlan (one boolean per statement, which
-- the planner estimates as such instead of as a chain of unknown
-- comparisons), ANDed with the answer.
local function term_sql(term)
  if term.sql == "FALSE" then return nil end
  if #term.guards == 0 then return term.sql end
  local guard = "(select " .. concat(term.guards, " and ") .. ")"
  if term.sql == "TRUE" then return guard end
  return "(" .. guard .. " AND " .. term.sql .. ")"
end

local function tree(f, c, t)
  local list, why = terms(f, {}, 1, c, t)
  if not list then return nil, why end
  local ors = {}
  for _, term in ipairs(list) do ors[#ors + 1] = term_sql(term) end
  if #ors == 0 then return "FALSE" end
  return #ors == 1 and ors[1] or "(" .. concat(ors, " OR ") .. ")"
end

--- The predicate of f (a policy function) on table t of schema: SQL, or nil
-- and why it is not expressible.  fns(body, coltype) names the function
-- answering an in_select (M.table_sql's collector).
function M.predicate(f, catalog, schema, t, fns)
  return tree(f, { catalog = catalog, schema = schema, fns = fns }, t)
end

--- A collector of in_select functions for one table (same body, same
-- function): the namer for M.predicate and the list it fills.  The names
-- count up in the order M.table_sql asks (its actions in M.ACTIONS order).
function M.collector(schema, table_name)
  local list, by_body = {}, {}
  local function name_for(body, coltype)
    local key = coltype .. " " .. body
    if not by_body[key] then
      local ident = format("%s.%s:%d", schema, table_name, #list + 1)
      -- PostgreSQL would cut a longer name, and two could then collide.
      if #ident > 63 then fail("the function name " .. ident .. " is longer than 63 bytes") end
      local name = M.FN_SCHEMA .. "." .. qi(ident)
      by_body[key] = name
      list[#list + 1] = { name = name, body = body, coltype = coltype }
    end
    return by_body[key]
  end
  return name_for, list
end

local SERVICE = "CREATE POLICY %sservice_role ON %s AS PERMISSIVE FOR ALL TO service_role USING (true) WITH CHECK (true);"

--- The statements for one exposed table (t from the catalog; mod its policy
-- module, nil without a file): { sql = {...}, unexpressible = why | nil }.
-- Tables without a policy file are service_role's alone, as in the REST
-- layer (strata.rest.policy's NO_POLICY): no privileges for the API roles.
function M.table_sql(catalog, schema, t, mod)
  local target = qualified(schema, t.name)
  local out = {
    format("ALTER TABLE %s ENABLE ROW LEVEL SECURITY;", target),
    format("REVOKE ALL ON %s FROM %s;", target, M.API_ROLES),
    format(SERVICE, M.PREFIX, target),
  }
  if type(mod) ~= "table" then
    return { sql = out, unexpressible = mod ~= nil and "the policy file does not load" or nil }
  end
  local fns, list = M.collector(schema, t.name)
  local privileges, policies = {}, {}
  for _, action in ipairs(M.ACTIONS) do
    local f = mod[action]
    if type(f) == "function" then
      privileges[#privileges + 1] = action:upper()
      local ok, pred, why = pcall(M.predicate, f, catalog, schema, t, fns)
      if not ok then pred, why = nil, type(pred) == "table" and pred.rls or tostring(pred) end
      if not pred then return { sql = out, unexpressible = action .. ": " .. why } end
      local clause = action == "insert" and "WITH CHECK (" .. pred .. ")"
        or action == "update" and "USING (" .. pred .. ") WITH CHECK (" .. pred .. ")"
        or "USING (" .. pred .. ")"
      policies[#policies + 1] = format("CREATE POLICY %s%s ON %s AS PERMISSIVE FOR %s TO %s %s;",
        M.PREFIX, action, target, action:upper(), M.API_ROLES, clause)
    end
  end
  -- UPDATE and DELETE read the rows they touch (WHERE, RETURNING): SELECT too.
  if #privileges > 0 and privileges[1] ~= "SELECT" then table.insert(privileges, 1, "SELECT") end
  if #privileges > 0 then
    out[#out + 1] = format("GRANT %s ON %s TO %s;", concat(privileges, ", "), target, M.API_ROLES)
  end
  for _, fn in ipairs(list) do
    if fn.body:find("$strata$", 1, true) then return { sql = out, unexpressible = "a value holds $strata$" } end
    out[#out + 1] = format("CREATE FUNCTION %s() RETURNS SETOF %s LANGUAGE sql STABLE SECURITY DEFINER "
      .. "SET search_path = '' AS $strata$ %s $strata$;", fn.name, fn.coltype, fn.body)
    out[#out + 1] = format("REVOKE ALL ON FUNCTION %s() FROM PUBLIC;", fn.name)
    out[#out + 1] = format("GRANT EXECUTE ON FUNCTION %s() TO %s;", fn.name, M.API_ROLES)
  end
  for _, p in ipairs(policies) do out[#out + 1] = p end
  return { sql = out }
end

-- Validated tables (lua/validators/<table>.lua, schema public): the
-- validators run in strata (strata.data, /rest/v1), so an API role's write
-- that does not come through them (a route's raw db.query) is refused by a
-- statement trigger.  strata's validated writes set strata.validated_write
-- for their one statement (strata.rest.exec); service_role and the owner
-- (an operator's psql; strata re-validates on the NOTIFY) are not API roles.
M.VALIDATED_TRIGGER = M.PREFIX .. "validated_write"
local GUARD = M.FN_SCHEMA .. ".refuse_unvalidated_write"

local function guard_sql()
  return format([[CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $strata$
BEGIN
  IF current_user IN ('anon', 'authenticated')
     AND coalesce(current_setting('strata.validated_write', true), '') <> 'on' THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = format('table %%I.%%I is validated by lua/validators/%%s.lua; this write did not go through it',
                       TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_TABLE_NAME),
      HINT = 'write it with strata.data or /rest/v1 (validated), or as the service';
  END IF;
  RETURN NULL;
END
$strata$;]], GUARD)
end

--- The guard and its triggers for the validated tables (names of
-- lua/validators/*.lua) that exist in the catalog's schema public.
function M.validated_sql(catalog, validated)
  local out = { guard_sql() }
  local names = {}
  for _, name in ipairs(validated or {}) do
    if (catalog.public or {})[name] then names[#names + 1] = name end
  end
  sort(names)
  for _, name in ipairs(names) do
    out[#out + 1] = format("CREATE TRIGGER %s BEFORE INSERT OR UPDATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION %s();",
      M.VALIDATED_TRIGGER, qualified("public", name), GUARD)
  end
  return out
end

--- The whole regeneration, one script for one transaction: drop every
-- policy named M.PREFIX.., the validated-write triggers on the exposed
-- tables and every function of M.FN_SCHEMA, then create them again.
-- catalog: { [schema] = { [table] = { name, columns = { [column] = type } } } };
-- load(schema, table) answers the policy module, nil when there is no
-- file, false when it fails to load; validated: the validated tables'
-- names.  Returns the SQL and the list of "schema.table: why" not expressible.
function M.script(catalog, schemas, load, validated)
  local out = { format([[DO $strata$
DECLARE r record;
BEGIN
  FOR r IN SELECT n.nspname, c.relname FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace WHERE g.tgname = '%s' LOOP
    EXECUTE format('DROP TRIGGER %s ON %%I.%%I', r.nspname, r.relname);
  END LOOP;
  FOR r IN SELECT schemaname, tablename, policyname FROM pg_policies
           WHERE schemaname = ANY(%s) AND policyname LIKE '%s%%' LOOP
    EXECUTE format('DROP POLICY %%I ON %%I.%%I', r.policyname, r.schemaname, r.tablename);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS fn FROM pg_proc p
           WHERE p.pronamespace = '%s'::regnamespace LOOP
    EXECUTE format('DROP FUNCTION %%s', r.fn);
  END LOOP;
END
$strata$;]], M.VALIDATED_TRIGGER, M.VALIDATED_TRIGGER, quote("{" .. concat(schemas, ",") .. "}"),
    (M.PREFIX:gsub("_", "\\_")), M.FN_SCHEMA) }
  local bad = {}
  for _, schema in ipairs(schemas) do
    local names = {}
    for name in pairs(catalog[schema] or {}) do names[#names + 1] = name end
    sort(names)
    for _, name in ipairs(names) do
      local r = M.table_sql(catalog, schema, catalog[schema][name], load(schema, name))
      if r.unexpressible then bad[#bad + 1] = format("%s.%s: %s", schema, name, r.unexpressible) end
      for _, s in ipairs(r.sql) do out[#out + 1] = s end
    end
  end
  for _, s in ipairs(M.validated_sql(catalog, validated)) do out[#out + 1] = s end
  return concat(out, "\n") .. "\n", bad
end

return M
