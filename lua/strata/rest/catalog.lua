-- strata.rest.catalog: the exposed schemas as PostgreSQL describes them —
-- tables, views, their columns, types, primary and foreign keys, and
-- functions with their arguments.  Every identifier the REST layer puts in
-- SQL comes from here.  Read on first use, and again once the schema
-- changed (DDL heard on channel strata_ddl) or the scripts were reloaded
-- (a new Lua state).

local db = require("strata.db")
local config = require("strata.config")

local M = {}

local TABLES_SQL = [[
select n.nspname as schema, c.relname as name, c.relkind as kind,
  coalesce((select json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
      'nullable', not a.attnotnull, 'default', a.atthasdef or a.attidentity <> '') order by a.attnum)
    from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '[]') as columns,
  coalesce((select json_agg(a.attname order by k.ord)
    from pg_index i cross join lateral unnest(i.indkey) with ordinality as k(attnum, ord)
    join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
    where i.indrelid = c.oid and i.indisprimary), '[]') as pk
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = any($1::text[]) and c.relkind in ('r', 'v', 'm', 'p', 'f')]]

local FUNCTIONS_SQL = [[
select n.nspname as schema, p.proname as name, p.provolatile as volatility, p.proretset as returns_set,
  t.typtype as return_kind, format_type(p.prorettype, null) as return_type, p.pronargdefaults as ndefaults,
  coalesce(p.proargnames, '{}') as arg_names, coalesce(p.proargmodes::text[], '{}') as arg_modes,
  coalesce(array(select format_type(x, null) from unnest(p.proargtypes) as x), '{}') as in_types,
  p.pronargs as nargs
from pg_proc p join pg_namespace n on n.oid = p.pronamespace join pg_type t on t.oid = p.prorettype
where n.nspname = any($1::text[]) and p.prokind = 'f']]

-- Foreign keys between tables of the exposed schemas, for resource
-- embedding (strata.rest.embed).  is_unique: the referencing columns are
-- exactly a unique key, so the relationship is one-to-one.
local FKS_SQL = [[
select c.conname as name, n1.nspname as schema, t1.relname as table_name,
  n2.nspname as ref_schema, t2.relname as ref_table,
  (select json_agg(a.attname order by k.ord) from unnest(c.conkey) with ordinality as k(attnum, ord)
    join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.attnum) as columns,
  (select json_agg(a.attname order by k.ord) from unnest(c.confkey) with ordinality as k(attnum, ord)
    join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.attnum) as ref_columns,
  exists (select 1 from pg_index i where i.indrelid = c.conrelid and i.indisunique and i.indpred is null
    and i.indnatts = cardinality(c.conkey) and i.indkey::int2[] @> c.conkey) as is_unique
from pg_constraint c
join pg_class t1 on t1.oid = c.conrelid join pg_namespace n1 on n1.oid = t1.relnamespace
join pg_class t2 on t2.oid = c.confrelid join pg_namespace n2 on n2.oid = t2.relnamespace
where c.contype = 'f' and n1.nspname = any($1::text[]) and n2.nspname = any($1::text[])
order by c.conname]]

local cache, cache_version

local function pg_array(list)
  local out = {}
  for i, v in ipairs(list) do out[i] = '"' .. v:gsub('[\\"]', "\\%0") .. '"' end
  return "{" .. table.concat(out, ",") .. "}"
end

-- Each table's foreign keys (fks) and those pointing at it (referenced_by);
-- only within one schema, as embedding looks the target up there.
local function add_foreign_keys(cat, schemas)
  local fks, err = db.query(FKS_SQL, pg_array(schemas))
  if not fks then return nil, err end
  for _, fk in ipairs(fks) do
    local tables = cat.schemas[fk.schema].tables
    local from, to = tables[fk.table_name], tables[fk.ref_table]
    if fk.schema == fk.ref_schema and from and to then
      from.fks[#from.fks + 1] = fk
      to.referenced_by[#to.referenced_by + 1] = fk
    end
  end
  return true
end

local function load()
  local schemas = config.schemas
  local tables, err = db.query(TABLES_SQL, pg_array(schemas))
  if not tables then return nil, err end
  local funcs
  funcs, err = db.query(FUNCTIONS_SQL, pg_array(schemas))
  if not funcs then return nil, err end
  local cat = { schemas = {}, default_schema = schemas[1] }
  for _, s in ipairs(schemas) do cat.schemas[s] = { tables = {}, functions = {} } end
  for _, t in ipairs(tables) do
    local cols = {}
    for _, c in ipairs(t.columns) do cols[c.name] = c end
    cat.schemas[t.schema].tables[t.name] = { schema = t.schema, name = t.name, kind = t.kind,
      columns = cols, column_list = t.columns, pk = t.pk, fks = {}, referenced_by = {} }
  end
  local ok
  ok, err = add_foreign_keys(cat, schemas)
  if not ok then return nil, err end
  for _, f in ipairs(funcs) do
    -- Only the input arguments (modes i, b, v; none listed = all in).
    local args, idx = {}, 0
    for i, name in ipairs(f.arg_names) do
      local mode = f.arg_modes[i] or "i"
      if mode == "i" or mode == "b" or mode == "v" then
        idx = idx + 1
        args[#args + 1] = { name = name, type = f.in_types[idx] }
      end
    end
    if #f.arg_names == 0 then
      for i, ty in ipairs(f.in_types) do args[i] = { name = "", type = ty } end
    end
    f.args = args
    f.required = f.nargs - f.ndefaults
    local list = cat.schemas[f.schema].functions[f.name] or {}
    list[#list + 1] = f
    cat.schemas[f.schema].functions[f.name] = list
  end
  return cat
end

--- The catalog, loading it on first use and again after a schema change
-- (the server hears DDL on channel strata_ddl: sql/080_ddl_notify.sql).
function M.get()
  local version = config.catalog_version()
  if cache and cache_version == version then return cache end
  local cat, err = load()
  if not cat then return nil, err end
  cache, cache_version = cat, version
  return cat
end

return M
