-- strata.rest.policy: the row policies teams write in Lua, applied.
-- lua/policies/<schema>/<table>.lua returns { select = f, insert = f,
-- update = f, delete = f }; each f(ctx[, row]) answers true (every row),
-- false (none) or a filter table compiled into a SQL predicate ANDed with
-- the client's filters.  A table without a policy file, or an action
-- without an entry, is reached only by service_role (which bypasses all).
-- A policy that raises denies (fail closed) and logs file:line.
-- A PATCH or DELETE without any filter is refused unless the policy file
-- says `unfiltered = { update = true, delete = true }`.
-- `hidden = { "api_key_hash" }` (or a function of ctx answering such a list)
-- names columns no client role may read: `select=*` leaves them out, naming
-- one in select, a filter or order answers 403 (401 for anon) 42501, and
-- writes never return them (nor a constraint error's details, which print
-- the row).  Writing them is the write policies' business.
-- service_role bypasses it like every policy.  RPC results are not affected.
-- lua/policies/rpc.lua maps function names (or "*") to f(ctx, args) for
-- /rest/v1/rpc (M.rpc_entry, M.rpc_allowed; explain asks the same).
-- `examples = { { action = "select", ctx = {...}, row = {...}, expect = ... } }`
-- run on every reload (strata.checks): a failing example refuses the reload.
--
-- ctx is req.auth: { role = "anon" | "authenticated" | "service_role",
-- uid = <sub claim or nil>, is_admin = <boolean>, claims = {...} }.
--
-- Filter tables:
--   { user_id = ctx.uid }                      column = value (nil -> IS NULL)
--   { status = { "in", { "a", "b" } } }        { op, value }: eq neq gt gte lt lte in is like ilike
--   { ["$or"] = { f1, f2 } }, { ["$and"] = {...} }, { ["$not"] = f }
--   { org_id = { "in_select", "user_organizations", "org_id", { user_id = ctx.uid } } }
--        org_id IN (SELECT org_id FROM user_organizations WHERE user_id = ...), same schema

local log = require("strata.log")
local cjson = require("cjson")
local sqlmod = require("strata.rest.sql")
local errors = require("strata.rest.errors")

local qi, raise = sqlmod.qi, errors.raise
local concat, format, type, pairs, next, pcall, sort = table.concat, string.format, type, pairs, next, pcall, table.sort

local M = {}

local NO_POLICY = {}
local LOADED = package.loaded

-- "policies.<schema>.<table>" and "policies/<schema>/<table>.lua", kept:
-- every request needs them.  explain's names are the client's, so the
-- cache is bounded: past NAMES_MAX it starts over.
local NAMES_MAX = 1024
local names, nnames = {}, 0

local function names_of(schema, table_name)
  local in_schema = names[schema]
  local n = in_schema and in_schema[table_name]
  if not n then
    n = { "policies." .. schema .. "." .. table_name, format("policies/%s/%s.lua", schema, table_name) }
    if nnames >= NAMES_MAX then names, nnames = {}, 0 end
    in_schema = names[schema] or {}
    names[schema], in_schema[table_name], nnames = in_schema, n, nnames + 1
  end
  return n
end

-- The policy module of schema.table, or NO_POLICY.
local function module_for(schema, table_name)
  local modname = names_of(schema, table_name)[1]
  -- What require answers for a module it already loaded, without its call.
  local loaded = LOADED[modname]
  if type(loaded) == "table" then return loaded end
  local ok, mod = pcall(require, modname)
  if ok and type(mod) == "table" then return mod end
  if not ok and not tostring(mod):find("no script", 1, true) then
    log.error("policy failed to load; denying", { schema = schema, table = table_name, error = tostring(mod) })
    return { broken = true }
  end
  return NO_POLICY
end

--- What the policy answers for ctx: true, false or a filter table; and the
-- file it came from.  service_role is always true.
function M.decide(ctx, schema, table_name, action, row)
  if ctx.role == "service_role" then return true, "service_role" end
  local mod = module_for(schema, table_name)
  local file = names_of(schema, table_name)[2]
  local f = mod[action]
  if mod == NO_POLICY or type(f) ~= "function" then return nil, file end
  local ok, res = pcall(f, ctx, row)
  if not ok then
    log.error("policy raised; denying", { file = file, action = action, error = tostring(res) })
    return false, file
  end
  if res ~= true and res ~= false and type(res) ~= "table" then
    log.error("policy answered neither true, false nor a filter; denying", { file = file, action = action })
    return false, file
  end
  return res, file
end

-- Row level security gaps ---------------------------------------------------
-- The database refuses the API roles what the generated row level security
-- does not allow (strata.rls).  A Lua policy SQL cannot express (it calls
-- arbitrary Lua), or one changed since `scripts/db rls` last ran, has no
-- generated policy for its action: the API roles are denied everything
-- there.  Statements strata builds carry the Lua policy themselves, so for
-- them the gap is bridged: they run with the caller's settings under the
-- SQL role service_role, which RLS lets through (strata.rest.exec), only
-- after the Lua policy was compiled into them.  Raw SQL as the caller
-- (db.query) stays denied.

--- Whether t's Lua policy has action while RLS is on for t without a
-- generated policy for it (t from strata.rest.catalog).
function M.rls_gap(t, action)
  local rls = t.rls
  if not rls or rls[action] then return false end
  local mod = module_for(t.schema, t.name)
  return mod ~= NO_POLICY and type(mod[action]) == "function"
end

--- Marks builder b's statement to bypass RLS when t has a gap for action
-- (the builders of one statement, embeds and policy subqueries included,
-- share their params table).
function M.note_rls(b, t, action)
  if M.rls_gap(t, action) then b.params.rls_bypass = true end
end

local ACTIONS = { "select", "insert", "update", "delete" }
local reviewed -- the catalog last reviewed

--- Lists the tables with gaps as warnings (GET /ready, /metrics, the log
-- once), and clears those of tables without gaps now.  Once per catalog:
-- after a reload, a schema change or `scripts/db rls` (DDL).
function M.review_rls(cat)
  if cat == reviewed then return end
  reviewed = cat
  local health = require("strata.health")
  local held = {}
  for _, key in ipairs(health.keys("rls")) do held[key] = true end
  for schema, s in pairs(cat.schemas) do
    for name, t in pairs(s.tables) do
      local gaps = {}
      for _, action in ipairs(ACTIONS) do
        if M.rls_gap(t, action) then gaps[#gaps + 1] = action end
      end
      local key = schema .. "." .. name
      if #gaps > 0 then
        local message = format("%s has no row level security policy for %s (SQL cannot express its Lua policy, or"
          .. " `scripts/db rls` has not run since it changed): raw SQL as the API roles is denied there; strata's"
          .. " own statements carry the Lua policy and run past RLS", key, concat(gaps, ", "))
        if health.warn("rls", key, message) then log.warn(message, { table = key }) end
      end
      held[key] = nil
    end
  end
  for key in pairs(held) do health.clear("rls", key) end
end

--- The column a policy's `soft_delete = "deleted_at"` names, or nil:
-- DELETE then stamps it instead of removing rows, and reads leave out rows
-- where it is set unless a filter names it.
function M.soft_delete(schema, table_name)
  local col = module_for(schema, table_name).soft_delete
  return type(col) == "string" and col or nil
end

--- The columns ctx must never read in schema.table, as a set { name = true };
-- nil when the policy's `hidden` raised or answered nonsense (the caller
-- then denies: fail closed).
function M.hidden(ctx, schema, table_name)
  if ctx.role == "service_role" then return {} end
  local h = module_for(schema, table_name).hidden
  if h == nil then return {} end
  local file = names_of(schema, table_name)[2]
  if type(h) == "function" then
    local ok, res = pcall(h, ctx)
    if not ok then
      log.error("policy hidden raised; denying", { file = file, error = tostring(res) })
      return nil
    end
    h = res
  end
  if type(h) ~= "table" then
    log.error("policy hidden is not a list of column names; denying", { file = file })
    return nil
  end
  local set = {}
  for _, name in ipairs(h) do set[name] = true end
  return set
end

local OPS = { eq = "=", neq = "<>", gt = ">", gte = ">=", lt = "<", lte = "<=", like = "LIKE", ilike = "ILIKE" }

local compile

local function column(b, t, name, alias)
  if not t.columns[name] then
    raise(500, "PGRST500", format("policy for %s names unknown column %s", t.name, name))
  end
  return (alias or "") .. qi(name)
end

local function one(b, t, name, spec, alias, catalog_schema)
  local col = column(b, t, name, alias)
  if spec == nil or spec == cjson.null then return col .. " IS NULL" end
  if type(spec) ~= "table" then return col .. " = " .. b:param(spec) end
  local op, value = spec[1], spec[2]
  if OPS[op] then return col .. " " .. OPS[op] .. " " .. b:param(value) end
  if op == "in" then
    local strs = {}
    for i, v in ipairs(value) do strs[i] = tostring(v) end
    return col .. " = ANY(" .. b:param(sqlmod.array_literal(strs)) .. ")"
  end
  if op == "is" then
    return col .. " IS " .. ({ [cjson.null] = "NULL", [true] = "TRUE", [false] = "FALSE" })[value == nil and cjson.null or value]
  end
  if op == "in_select" then
    local other = catalog_schema.tables[spec[2]]
    if not other then raise(500, "PGRST500", format("policy names unknown table %s", tostring(spec[2]))) end
    local ob = setmetatable({ t = other, params = b.params }, getmetatable(b))
    M.note_rls(ob, other, "select")
    local inner_filter = spec[4]
    if inner_filter == nil then inner_filter = true end -- `false` must stay false: no rows
    local inner = compile(ob, other, inner_filter, nil, catalog_schema)
    return format("%s IN (SELECT %s FROM %s WHERE %s)", col, column(ob, other, spec[3]), sqlmod.qualified(other), inner)
  end
  raise(500, "PGRST500", format("policy for %s uses unknown operator %s", t.name, tostring(op)))
end

--- SQL for a policy answer (true / filter table) against table t.
function compile(b, t, filter, alias, catalog_schema)
  if filter == true then return "TRUE" end
  if filter == false then return "FALSE" end
  if type(filter) == "table" then -- one column (the usual "own rows"): no key list to sort
    local k = next(filter)
    if k ~= nil and next(filter, k) == nil and k ~= "$or" and k ~= "$and" and k ~= "$not" then
      return "(" .. one(b, t, k, filter[k], alias, catalog_schema) .. ")"
    end
  end
  local parts = {}
  local keys = {}
  for k in pairs(filter) do keys[#keys + 1] = k end
  if #keys > 1 then sort(keys) end -- stable SQL text, so the statement cache works
  for _, k in ipairs(keys) do
    local v = filter[k]
    if k == "$or" or k == "$and" then
      local sub = {}
      for i, f in ipairs(v) do sub[i] = compile(b, t, f, alias, catalog_schema) end
      if #sub == 0 then
        parts[#parts + 1] = k == "$or" and "FALSE" or "TRUE" -- the empty disjunction holds for no row
      else
        parts[#parts + 1] = "(" .. concat(sub, k == "$or" and " OR " or " AND ") .. ")"
      end
    elseif k == "$not" then
      parts[#parts + 1] = "NOT (" .. compile(b, t, v, alias, catalog_schema) .. ")"
    else
      parts[#parts + 1] = one(b, t, k, v, alias, catalog_schema)
    end
  end
  if #parts == 0 then return "TRUE" end
  return "(" .. concat(parts, " AND ") .. ")"
end

M.compile = compile

--- The entry of lua/policies/rpc.lua that decides calls of schema.name: its
-- key and value, or nil.  A bare name means the public schema's function:
-- rpc.lua's checks are written for those, and a same-named function another
-- exposed schema gains later must not inherit them; it needs a
-- "schema.name" entry.  Otherwise "*", if present, decides.
function M.rpc_entry(schema, name)
  local ok, pol = pcall(require, "policies.rpc")
  if not ok or type(pol) ~= "table" then return nil end
  local key = schema == "public" and name or (schema .. "." .. name)
  if pol[key] then return key, pol[key] end
  if pol["*"] then return "*", pol["*"] end
  return nil
end

--- Whether ctx may call schema.name with args (service_role always may;
-- an entry that is not a function, or raises, denies).
function M.rpc_allowed(ctx, schema, name, args)
  if ctx.role == "service_role" then return true end
  local _, f = M.rpc_entry(schema, name)
  if type(f) ~= "function" then return false end
  local fine, res = pcall(f, ctx, args)
  if not fine then
    log.error("rpc policy raised; denying", { ["function"] = name, error = tostring(res) })
    return false
  end
  return res == true
end

return M
