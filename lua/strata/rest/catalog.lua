-- strata.rest.catalog: the exposed schemas as PostgreSQL describes them —
-- tables, views, their columns, types, primary and foreign keys, and
-- functions with their arguments.  Every identifier the REST layer puts in
-- SQL comes from here.  Read on first use, and again once the schema
-- changed (DDL heard on channel strata_ddl) or the scripts were reloaded
-- (a new Lua state).

local db = require("strata.db")
local broker = require("strata.broker")
local config = require("strata.config")

local M = {}

local TABLES_SQL = [[
select n.nspname as schema, c.relname as name, c.relkind as kind,
  coalesce((select json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
      'nullable', not a.attnotnull, 'default', a.atthasdef or a.attidentity <> '',
      'description', col_description(c.oid, a.attnum)) order by a.attnum)
    from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '[]') as columns,
  coalesce((select json_agg(a.attname order by k.ord)
    from pg_index i cross join lateral unnest(i.indkey) with ordinality as k(attnum, ord)
    join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
    where i.indrelid = c.oid and i.indisprimary), '[]') as pk,
  c.relrowsecurity as rls,
  coalesce((select json_agg(p.polcmd::text) from pg_policy p
    where p.polrelid = c.oid and p.polname like 'strata\_%' and p.polname <> 'strata_service_role'), '[]') as rls_cmds,
  obj_description(c.oid, 'pg_class') as description
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = any($1::text[]) and c.relkind in ('r', 'v', 'm', 'p', 'f')]]

local FUNCTIONS_SQL = [[
select n.nspname as schema, p.proname as name, p.provolatile as volatility, p.proretset as returns_set,
  t.typtype as return_kind, format_type(p.prorettype, null) as return_type, p.pronargdefaults as ndefaults,
  coalesce(p.proargnames, '{}') as arg_names, coalesce(p.proargmodes::text[], '{}') as arg_modes,
  coalesce(array(select format_type(x, null) from unnest(p.proargtypes) as x), '{}') as in_types,
  p.pronargs as nargs, obj_description(p.oid, 'pg_proc') as description, p.prorows as rows
from pg_proc p join pg_namespace n on n.oid = p.pronamespace join pg_type t on t.oid = p.prorettype
where n.nspname = any($1::text[]) and p.prokind = 'f']]

-- Foreign keys for resource embedding (strata.rest.embed), as PostgREST
-- derives them: each key between tables, and the same key again for every
-- view whose columns include that key's columns as plain references (the
-- view as the referencing side, the referenced side, or both; the table
-- behind the view need not be exposed).  Which table column a view column
-- reads comes from the view's stored rule (pg_rewrite), parsed here in SQL
-- once per catalog load.  is_unique: the referencing columns are exactly a
-- unique key of the table, so the relationship is one-to-one; is_view /
-- ref_is_view: that side is a view (PostgREST then matches it by name only).
local VIEW_COLUMNS_CTE = [[
with recursive
-- The stored rule of every view, split at each '{' (escaped braces in names
-- dropped first): depth is how many nodes enclose a chunk's node, so the
-- view's own target entries are the TARGETENTRY nodes at depth 2; those of
-- subqueries and sublinks sit deeper.
chunks as (
  select r.ev_class as view_id, k.chunk, lead(k.chunk) over w as next,
    k.ord - 1 - coalesce(sum(length(k.chunk) - length(replace(k.chunk, '}', '')))
      over (w rows between unbounded preceding and 1 preceding), 0) as depth
  from pg_rewrite r join pg_class v on v.oid = r.ev_class join pg_namespace n on n.oid = v.relnamespace
  cross join lateral unnest(string_to_array(regexp_replace(r.ev_action::text, '\\[\\{}]', '', 'g'), '{'))
    with ordinality as k(chunk, ord)
  where r.rulename = '_RETURN' and v.relkind in ('v', 'm') and n.nspname not in ('pg_catalog', 'information_schema')
  window w as (partition by r.ev_class order by k.ord)
),
-- A view column that is a plain VAR, with the column PostgreSQL recorded it
-- reads (resorigtbl, resorigcol: a table's or an inner view's); anything
-- else (an expression, a sublink, a set operation) has none and stays out.
entries as (
  select c.view_id, m[1]::int as view_col, m[2]::oid as rel, m[3]::int as col
  from chunks c cross join lateral regexp_match(c.next, ':resno (\d+) .*:resorigtbl (\d+) :resorigcol (\d+) ') as m
  where c.depth = 2 and c.chunk like 'TARGETENTRY %' and c.next like 'VAR %' and m[2] <> '0'
),
-- Through views over views down to the tables (bounded, in case of a cycle).
origins(view_id, view_col, rel, col, hops) as (
  select view_id, view_col, rel, col, 0 from entries
  union all
  select o.view_id, o.view_col, e.rel, e.col, o.hops + 1
  from origins o join entries e on e.view_id = o.rel and e.view_col = o.col where o.hops < 8
),
-- One view column per table column (the first), when a view repeats one.
view_cols as (
  select o.view_id, o.rel, o.col, (array_agg(a.attname order by a.attnum))[1] as name
  from origins o join pg_attribute a on a.attrelid = o.view_id and a.attnum = o.view_col
  group by o.view_id, o.rel, o.col
)]]

local FKS_SQL = VIEW_COLUMNS_CTE .. [[,
fks as (
  select c.oid, c.conname, c.conrelid, c.confrelid, c.conkey, c.confkey,
    exists (select 1 from pg_index i where i.indrelid = c.conrelid and i.indisunique and i.indpred is null
      and i.indnatts = cardinality(c.conkey) and i.indkey::int2[] @> c.conkey) as is_unique
  from pg_constraint c where c.contype = 'f'
),
-- Each key's two ends: the referencing (c) and the referenced (p) columns.
keys as (
  select oid as con, 'c' as side, conrelid as rel, conkey as attnums from fks
  union all select oid, 'p', confrelid, confkey from fks
),
-- Who can stand for each end: the table itself, or any view showing every
-- column of that end.
sides as (
  select k.con, k.side, k.rel as relid, false as is_view,
    (select json_agg(a.attname order by u.ord) from unnest(k.attnums) with ordinality as u(attnum, ord)
      join pg_attribute a on a.attrelid = k.rel and a.attnum = u.attnum) as cols
  from keys k
  union all
  select k.con, k.side, vc.view_id, true, json_agg(vc.name order by u.ord)
  from keys k cross join lateral unnest(k.attnums) with ordinality as u(attnum, ord)
  join view_cols vc on vc.rel = k.rel and vc.col = u.attnum
  group by k.con, k.side, vc.view_id, k.attnums
  having count(*) = cardinality(k.attnums)
)
select f.conname as name, n1.nspname as schema, t1.relname as table_name,
  n2.nspname as ref_schema, t2.relname as ref_table, s1.cols as columns, s2.cols as ref_columns,
  f.is_unique, s1.is_view, s2.is_view as ref_is_view
from fks f
join sides s1 on s1.con = f.oid and s1.side = 'c' join pg_class t1 on t1.oid = s1.relid
join pg_namespace n1 on n1.oid = t1.relnamespace
join sides s2 on s2.con = f.oid and s2.side = 'p' join pg_class t2 on t2.oid = s2.relid
join pg_namespace n2 on n2.oid = t2.relnamespace
where n1.nspname = any($1::text[]) and n2.nspname = any($1::text[])
order by f.conname, s1.is_view, s2.is_view, t1.relname, t2.relname]]

-- The primary key of a view that shows every column of its table's primary
-- key as plain references (PostgREST's view key dependencies): so a view
-- over a junction table is a junction too.
local VIEW_PKS_SQL = VIEW_COLUMNS_CTE .. [[
select n.nspname as schema, v.relname as name, json_agg(vc.name order by u.ord) as pk
from pg_constraint c cross join lateral unnest(c.conkey) with ordinality as u(attnum, ord)
join view_cols vc on vc.rel = c.conrelid and vc.col = u.attnum
join pg_class v on v.oid = vc.view_id join pg_namespace n on n.oid = v.relnamespace
where c.contype = 'p' and n.nspname = any($1::text[])
group by n.nspname, v.relname, c.oid, c.conkey
having count(*) = cardinality(c.conkey)]]

local cache, cache_version

local function pg_array(list)
  local out = {}
  for i, v in ipairs(list) do out[i] = '"' .. v:gsub('[\\"]', "\\%0") .. '"' end
  return "{" .. table.concat(out, ",") .. "}"
end

-- Each table's or view's foreign keys (fks) and those pointing at it
-- (referenced_by); only within one schema, as embedding looks the target
-- up there.
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

local function add_view_keys(cat, schemas)
  local rows, err = db.query(VIEW_PKS_SQL, pg_array(schemas))
  if not rows then return nil, err end
  for _, r in ipairs(rows) do
    local v = cat.schemas[r.schema].tables[r.name]
    if v and (v.pk == nil or #v.pk == 0) then v.pk = r.pk end
  end
  return true
end

-- The actions the API roles have a generated row level security policy
-- for (strata.rls, `scripts/db rls`), as a set: { select = true, ... }.
local CMDS = { r = "select", a = "insert", w = "update", d = "delete" }
local function rls_actions(cmds)
  local set = {}
  for _, c in ipairs(cmds) do
    if c == "*" then
      for _, a in pairs(CMDS) do set[a] = true end
    elseif CMDS[c] then
      set[CMDS[c]] = true
    end
  end
  return set
end

-- A computed column, as PostgREST has them: a function of one argument of
-- a table's row type (same schema), returning one value; selected,
-- filtered and ordered by its name like a column the table lacks.
local function unqualified(type_name) return (type_name:match('([^%.]+)$'):gsub('"', "")) end

local function add_computed(tables, f)
  if #f.args ~= 1 or f.returns_set or f.return_type == "void" then return end
  local t = tables[unqualified(f.args[1].type)]
  if not t or t.columns[f.name] then return end
  t.computed = t.computed or {}
  t.computed[f.name] = f
end

-- A computed relationship, as PostgREST's allComputedRels: a function of
-- one argument of a table's row type returning a table's row type (both
-- tables in the function's schema), embedded by the function's name;
-- to-one unless it returns a SETOF of more than one row (ROWS 1 is one).
local function add_computed_rel(tables, f)
  if #f.args ~= 1 or f.return_kind ~= "c" then return end
  local from, to = tables[unqualified(f.args[1].type)], tables[unqualified(f.return_type)]
  if not from or not to then return end
  from.computed_rels = from.computed_rels or {}
  from.computed_rels[#from.computed_rels + 1] = { fn = f, foreign = to, to_one = not f.returns_set or f.rows == 1 }
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
      columns = cols, column_list = t.columns, pk = t.pk, fks = {}, referenced_by = {}, description = t.description,
      rls = t.rls and rls_actions(t.rls_cmds) or nil }
  end
  local ok
  ok, err = add_foreign_keys(cat, schemas)
  if not ok then return nil, err end
  ok, err = add_view_keys(cat, schemas)
  if not ok then return nil, err end
  for _, f in ipairs(funcs) do
    -- Only the input arguments (modes i, b, v; none listed = all in).
    local args, idx = {}, 0
    for i, name in ipairs(f.arg_names) do
      local mode = f.arg_modes[i] or "i"
      if mode == "i" or mode == "b" or mode == "v" then
        idx = idx + 1
        args[#args + 1] = { name = name, type = f.in_types[idx], variadic = mode == "v" }
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
    add_computed(cat.schemas[f.schema].tables, f)
    add_computed_rel(cat.schemas[f.schema].tables, f)
  end
  return cat
end

--- The catalog, loading it on first use and again after a schema change
-- (the server hears DDL on channel strata_ddl: sql/080_ddl_notify.sql).
function M.get()
  local version = broker.catalog_version()
  if cache and cache_version == version then return cache end
  local cat, err = load()
  if not cat then return nil, err end
  cache, cache_version = cat, version
  return cat
end

return M
