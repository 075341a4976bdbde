-- strata.rest.embed: PostgREST's resource embedding in select=
-- (`*,Document(*)`, `chat:Chat!inner(title)`, `Vote_v2!Vote_v2_chatId_fkey(*)`,
-- nested to any depth) of reads, of writes' representation and of table
-- functions' results, and the embedded resources' own parameters
-- (`Message_v2.role=eq.user`, `Message_v2.or=(...)`, `Message_v2.order=`,
-- `.limit=`, `.offset=`), which filter the embedded rows, not the parent.
-- Also `other(count)` / `other(n:count())`, `...other(cols)` (a to-one
-- embed's columns spread into the parent) and `order=other(col).desc` on
-- the parent (a to-one embed's column), as PostgREST 11+.
--
-- Relationships are strata.rest.relations' (foreign keys and junction
-- tables, chosen as PostgREST's findRel).  Each embed is a correlated
-- subquery whose JSON PostgreSQL builds (row_to_json for to-one,
-- coalesce(json_agg, '[]') for to-many).  The embedded table's select
-- policy and hidden columns apply inside it exactly as for a direct read,
-- and a many-to-many's junction table's select policy too (RLS would apply
-- to it); a table the caller may not read directly (no policy, or false)
-- embeds as null / [] — what PostgREST over RLS answers — never as an error
-- that tells rows exist.  `!inner` keeps only the parent rows with a
-- visible, matching embedded row.  A to-many embed's rows are capped by
-- max_rows when the caller says so (reads and RPC: PostgREST caps every
-- level there, not in writes).
-- Uses strata.rest.query, strata.rest.sql,
-- strata.rest.policy and strata.rest.relations.

local query = require("strata.rest.query")
local sqlmod = require("strata.rest.sql")
local policy = require("strata.rest.policy")
local relations = require("strata.rest.relations")
local raise = require("strata.rest.errors").raise

local qi = sqlmod.qi
local concat, format, find, ipairs, pairs, sort, type, unpack =
  table.concat, string.format, string.find, ipairs, pairs, table.sort, type, table.unpack

local M = {}

local LOGIC = query.LOGIC
local WINDOW = { order = true, limit = true, offset = true }

-- "a.b.col" -> path { "a", "b" } and key "col" ("a.not.or" -> key
-- "not.or"); nil for a parameter of the top-level resource.
local function embedded_key(k)
  if LOGIC[k] or not find(k, ".", 1, true) then return nil end
  local segs = {}
  for s in (k .. "."):gmatch("([^.]*)%.") do segs[#segs + 1] = s end
  local n, last = #segs, #segs - 1
  local key = segs[n]
  if n > 2 and segs[n - 1] == "not" and (key == "or" or key == "and") then key, last = "not." .. key, n - 2 end
  return { unpack(segs, 1, last) }, key
end

--- The query split into the top-level resource's parameters and a list of
-- the embedded resources' ({ path, key, raw, values }), sorted so that the
-- SQL text is stable for the statement cache.
function M.split(q)
  -- Most queries name no embedded resource: then q is the top level as it
  -- is (callers only read it), with no copy and no sort.
  local dotted = false
  for k in pairs(q) do
    if not LOGIC[k] and find(k, ".", 1, true) then dotted = true break end -- embedded_key's test
  end
  if not dotted then return q, {} end
  local top, nested, names = {}, {}, {}
  for k in pairs(q) do names[#names + 1] = k end
  sort(names)
  for _, k in ipairs(names) do
    local path, key = embedded_key(k)
    if path then
      nested[#nested + 1] = { path = path, key = key, raw = k, values = type(q[k]) == "table" and q[k] or { q[k] } }
    else
      top[k] = q[k]
    end
  end
  return top, nested
end

-- The output key of an embed that only counts (`other(count)`,
-- `other(n:count())`), or nil.  A table with a column named count keeps
-- the legacy spelling for the column, as PostgreSQL would resolve it.
local function count_key(it, t)
  local f = it.select[1]
  if #it.select ~= 1 or f.embed or f.star then return nil end
  if f.count or (f.name == "count" and #f.path == 0 and not f.cast and not t.columns.count) then
    return f.alias or "count"
  end
  return nil
end

local function node_of(it, t, tables)
  local rel = relations.find(t, tables, it)
  return { item = it, rel = rel, t = rel.foreign, params = {}, count = not it.spread and count_key(it, rel.foreign) }
end

-- The embed items of a select list as nodes { item, rel, t, children, params }.
local function build_tree(items, t, tables)
  local nodes = {}
  for _, it in ipairs(items) do
    if it.embed then
      local node = node_of(it, t, tables)
      node.children = build_tree(it.select, node.t, tables)
      nodes[#nodes + 1] = node
    end
  end
  return nodes
end

-- The node a parameter's path names, by table name or alias at each level.
local function find_node(nodes, path)
  local list, node = nodes, nil
  for _, name in ipairs(path) do
    node = nil
    for _, n in ipairs(list) do
      if n.item.name == name or n.item.alias == name then node = n break end
    end
    if not node then
      raise(400, "PGRST108", format("'%s' is not an embedded resource in this request", name), nil,
        format("Verify that '%s' is included in the 'select' query parameter.", name))
    end
    list = node.children
  end
  return node
end

local function attach(nodes, nested)
  for _, p in ipairs(nested) do
    local node = find_node(nodes, p.path)
    for _, v in ipairs(p.values) do
      if p.key == "order" and node.order then
        query.order(v, p.raw) -- PostgREST parses every order= and applies the first
      elseif WINDOW[p.key] then
        node[p.key] = { raw = p.raw, value = v } -- limit, offset: the last one wins, as at the top level
      else
        node.params[#node.params + 1] = { key = p.key, raw = p.raw, value = v }
      end
    end
  end
end

-- A builder for the embedded table on the parent's parameters, refusing
-- the columns its policy hides from ctx as a direct read does.
local function child_builder(pl, b, t)
  local hidden = {}
  if policy.hidden then hidden = policy.hidden(pl.ctx, t.schema, t.name) end
  local status = pl.ctx.role == "anon" and 401 or 403
  if not hidden then raise(status, "42501", format("permission denied for table %s", t.name)) end
  return setmetatable({ t = t, params = b.params, embeds = pl.embeds, hidden = hidden, hidden_status = status },
    getmetatable(b))
end

local function filter_sql(eb, p, alias)
  return eb:condition(query.filter_node(p.key, p.value, p.raw), alias)
end

-- A join column the policy hides would leak its values through the
-- embed, so it is refused as PostgreSQL refuses a column it may not read.
local function join_column(builder, name)
  if builder.hidden and builder.hidden[name] then
    raise(builder.hidden_status or 403, "42501", format("permission denied for column %s of table %s", name,
      builder.t.name))
  end
  return qi(name)
end

-- t's select policy on rows `alias` (none: no rows, as RLS without a policy).
local function read_policy(pl, builder, t, alias)
  local pol = policy.decide(pl.ctx, t.schema, t.name, "select")
  if pol == nil then return "FALSE" end
  policy.note_rls(builder, t, "select")
  return policy.compile(builder, t, pol, alias, pl.cat_schema)
end

-- The join of the embedded rows to the parent's: directly, or through
-- the junction (alias <node>_j) whose own select policy then applies.
local function join_conditions(pl, node, b, eb, parent)
  local a, rel, conds = node.alias .. ".", node.rel, {}
  if rel.dir == "computed" then return conds end -- the function joins (from_sql)
  if rel.dir ~= "m2m" then
    for _, c in ipairs(rel.cols) do conds[#conds + 1] = a .. join_column(eb, c[2]) .. " = " .. parent .. join_column(b, c[1]) end
    return conds
  end
  local j = node.alias .. "_j."
  local jb = child_builder(pl, b, rel.junction)
  for _, c in ipairs(rel.src) do conds[#conds + 1] = j .. join_column(jb, c[2]) .. " = " .. parent .. join_column(b, c[1]) end
  for _, c in ipairs(rel.dst) do conds[#conds + 1] = j .. join_column(jb, c[1]) .. " = " .. a .. join_column(eb, c[2]) end
  conds[#conds + 1] = read_policy(pl, jb, rel.junction, j)
  return conds
end

-- The soft-delete column of t's policy when the embed's own parameters
-- do not filter on it: its rows stamped deleted are hidden, as at the
-- top level (`children.deleted_at=not.is.null` asks for them).
local function soft_hidden(node)
  local col = policy.soft_delete(node.t.schema, node.t.name)
  if not col or not node.t.columns[col] then return nil end
  for _, p in ipairs(node.params) do
    if p.key == col then return nil end
  end
  return col
end

-- The test that an embed of `nodes` named `name` (its alias, else its
-- name) has a row, or nil: what PostgREST's `name=is.null` and
-- `name=not.is.null` filter on ("null filtering on embedded resources"),
-- also inside or=/and=.  Other operators keep naming a column.
local function exists_of(nodes, name)
  for _, n in ipairs(nodes) do
    if (n.item.alias or n.item.name) == name and n.from then
      return "EXISTS (SELECT 1 FROM " .. n.from .. n.where .. ")"
    end
  end
  return nil
end

local function embeds_testable(builder, nodes)
  builder.embed_exists = function(name) return exists_of(nodes, name) end
end

-- The embedded rows: the table (and a many-to-many's junction), or a
-- computed relationship's function called with the parent's row, typed as
-- the parent table's (a write's or a function's rows are of no table type).
local function from_sql(node, parent, parent_t)
  if node.rel.dir == "computed" then
    local f = node.rel.fn
    return qi(f.schema) .. "." .. qi(f.name) .. "(ROW(" .. parent .. "*)::" .. sqlmod.qualified(parent_t) .. ") AS "
      .. node.alias
  end
  local from = sqlmod.qualified(node.t) .. " AS " .. node.alias
  if node.rel.dir == "m2m" then from = from .. ", " .. sqlmod.qualified(node.rel.junction) .. " AS " .. node.alias .. "_j" end
  return from
end

-- The value of a to-one embed's column for an order (PGRST108 when no
-- embed of `nodes` is named so, PGRST118 when it is to-many).
local function related_column(b, nodes, o)
  local node
  for _, n in ipairs(nodes or {}) do
    if (n.item.alias or n.item.name) == o.relation then node = n break end
  end
  if not node then
    raise(400, "PGRST108", format("'%s' is not an embedded resource in this request", o.relation), nil,
      format("Verify that '%s' is included in the 'select' query parameter.", o.relation))
  end
  if not node.rel.to_one then
    raise(400, "PGRST118", format("A related order on '%s' is not possible", o.relation),
      format("'%s' and '%s' do not form a many-to-one or one-to-one relationship", b.t.name, o.relation))
  end
  return "(SELECT " .. node.eb:field(o.field, node.alias .. ".") .. " FROM " .. node.from .. node.where .. " LIMIT 1)"
end

--- ORDER BY terms (grammar.order) on rows `alias` of builder b, whose
-- `rel(col)` terms name a to-one embed among nodes (default: those
-- M.plan planned on b).
function M.order_by(b, list, alias, nodes)
  local out = {}
  for i = 1, #list do
    local o = list[i]
    local s = o.relation and related_column(b, nodes or b.embed_nodes, o) or b:field(o.field, alias)
    out[i] = s .. (o.dir == "desc" and " DESC" or " ASC")
      .. (o.nulls == "nullsfirst" and " NULLS FIRST" or o.nulls == "nullslast" and " NULLS LAST" or "")
  end
  if #out == 1 then return out[1] end -- one term: no copy
  return concat(out, ", ")
end

-- ORDER BY / LIMIT / OFFSET of a to-many embed, the limit capped by max_rows.
local function window(pl, node, eb)
  local a, out = node.alias .. ".", ""
  if node.order and node.order.value ~= "" then
    out = " ORDER BY " .. M.order_by(eb, query.order(node.order.value, node.order.raw), a, node.children)
  end
  local limit = node.limit and query.count(node.limit.value, node.limit.raw)
  if pl.max_rows then limit = math.min(limit or pl.max_rows, pl.max_rows) end
  if limit then out = out .. " LIMIT " .. eb:param(limit) end
  if node.offset then out = out .. " OFFSET " .. eb:param(query.count(node.offset.value, node.offset.raw)) end
  return out
end

-- The embed's JSON: { "<key>": n } (in an array for to-many) when it
-- counts, the row or null for to-one, the array of rows for to-many.
local function json_sql(pl, node, eb)
  local rows = " FROM " .. node.from .. node.where
  if node.count then
    local obj = "json_build_object(" .. eb:param(node.count) .. "::text, count(*))"
    return "(SELECT " .. (node.rel.to_one and obj or ("json_build_array(" .. obj .. ")")) .. rows .. ")"
  end
  if sqlmod.aggregating(node.item.select) then
    -- Aggregates in an embed (PostgREST 12): grouped by its other columns.
    -- strata.config is required on use: the unit specs run without a server.
    if not require("strata.config").rest_aggregates then
      raise(400, "PGRST123", "Use of aggregate functions is not allowed")
    end
    eb.aggregates = true
    rows = rows .. eb:group_by(node.item.select, node.alias .. ".")
  end
  local sel = eb:select_list(node.item.select, node.alias .. ".")
  if node.rel.to_one then
    return "(SELECT row_to_json(pgrst_x) FROM (SELECT " .. sel .. rows .. " LIMIT 1) AS pgrst_x)"
  end
  return "(SELECT coalesce(json_agg(pgrst_x), '[]') FROM (SELECT " .. sel .. rows .. window(pl, node, eb)
    .. ") AS pgrst_x)"
end

-- A spread's columns as { sql, name }, so the parent's answer (JSON or
-- CSV) holds them as its own: of a to-one embed, each a scalar subquery on
-- the one embedded row; of a to-many one (PostgREST 13), each the JSON
-- array of the column's values over the embedded rows, in their order
-- (`[]` for none).
local function spread_columns(pl, node, eb)
  local a, cols = node.alias .. ".", {}
  for _, it in ipairs(node.item.select) do
    if it.star then
      for _, c in ipairs(eb.t.column_list) do
        if not eb.hidden[c.name] then cols[#cols + 1] = { a .. qi(c.name), c.name } end
      end
    elseif it.embed then
      for _, c in ipairs(pl.columns[it]) do cols[#cols + 1] = c end
    else
      local s = eb:field(it, a)
      cols[#cols + 1] = { it.cast and (s .. "::" .. it.cast) or s,
        it.alias or (#it.path > 0 and it.path[#it.path].key) or it.name }
    end
  end
  if node.rel.to_one then
    for _, c in ipairs(cols) do c[1] = "(SELECT " .. c[1] .. " FROM " .. node.from .. node.where .. " LIMIT 1)" end
    return cols
  end
  local rows = " FROM " .. node.from .. node.where .. window(pl, node, eb)
  for _, c in ipairs(cols) do
    c[1] = "(SELECT coalesce(json_agg(pgrst_s.v), '[]') FROM (SELECT " .. c[1] .. " AS v" .. rows .. ") AS pgrst_s)"
  end
  return cols
end

local function columns_of(pl, node, eb)
  if #node.item.select == 0 then return {} end
  if node.item.spread then return spread_columns(pl, node, eb) end
  return { { json_sql(pl, node, eb), node.item.alias or node.item.name } }
end

-- Leaves node's columns in pl.columns and their select-list text in
-- pl.embeds (children first: they are part of it) and answers its !inner
-- condition on the parent, if any.
local function render(pl, b, node, parent)
  pl.n = pl.n + 1
  node.alias = "pgrst_e" .. pl.n
  local eb = child_builder(pl, b, node.t)
  node.eb = eb
  -- The join to the parent (b), the table's select policy and soft
  -- deletes, the children's !inner tests, then the client's filters (which
  -- may test a child).
  local a = node.alias .. "."
  local conds = join_conditions(pl, node, b, eb, parent)
  conds[#conds + 1] = read_policy(pl, eb, node.t, a)
  local soft = soft_hidden(node)
  if soft then conds[#conds + 1] = a .. qi(soft) .. " IS NULL" end
  for _, child in ipairs(node.children) do conds[#conds + 1] = render(pl, eb, child, a) end
  embeds_testable(eb, node.children)
  for _, p in ipairs(node.params) do conds[#conds + 1] = filter_sql(eb, p, a) end
  node.from, node.where = from_sql(node, parent, b.t), sqlmod.where(conds)
  local cols, out = columns_of(pl, node, eb), {}
  for i, c in ipairs(cols) do out[i] = c[1] .. " AS " .. qi(c[2]) end
  pl.columns[node.item], pl.embeds[node.item] = cols, concat(out, ", ")
  if node.item.inner then return "EXISTS (SELECT 1 FROM " .. node.from .. node.where .. ")" end
  return nil
end

local function has_embed(items)
  for i = 1, #items do
    if items[i].embed then return true end
  end
  return false
end

--- Plans the embeds among items (grammar.select) of the rows of table t:
-- leaves each embed's select-list text on builder b (for b:select_list),
-- its output columns ({ sql, name } lists, by item) in b.embed_columns and
-- the plan in b.embed_nodes (for M.order_by), and answers the conditions
-- the parent rows must meet (!inner).  nested comes from M.split.  opts:
-- parent, how the SQL names the parent rows (default: the qualified table
-- name, with its dot); max_rows, the cap on every to-many embed.  Raises
-- REST errors (PGRST200, PGRST201, PGRST108, PGRST100, PGRST119).
function M.plan(b, ctx, cat_schema, t, items, nested, opts)
  if #nested == 0 and not has_embed(items) then -- the common case: nothing to plan
    b.embeds, b.embed_columns, b.embed_nodes = {}, {}, {}
    return {}
  end
  opts = opts or {}
  local pl = { ctx = ctx, cat_schema = cat_schema, embeds = {}, columns = {}, n = 0, max_rows = opts.max_rows }
  local nodes = build_tree(items, t, cat_schema.tables)
  b.embeds, b.embed_columns, b.embed_nodes = pl.embeds, pl.columns, nodes
  attach(nodes, nested)
  local conds = {}
  for _, node in ipairs(nodes) do
    conds[#conds + 1] = render(pl, b, node, opts.parent or (sqlmod.qualified(t) .. "."))
  end
  embeds_testable(b, nodes)
  return conds
end

return M
