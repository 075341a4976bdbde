-- strata.rest.embed: PostgREST's resource embedding in select=
-- (`*,Message_v2(*)`, `chat:Chat!inner(title)`, `Vote_v2!Vote_v2_chatId_fkey(*)`,
-- nested to any depth) and the embedded resources' own parameters
-- (`Message_v2.role=eq.user`, `Message_v2.or=(...)`, `Message_v2.order=`,
-- `.limit=`, `.offset=`), which filter the embedded rows, not the parent.
--
-- Relationships come only from the catalog's foreign keys and are chosen
-- as PostgREST's findRel chooses them: none is 400 PGRST200, several 300
-- PGRST201 with the candidates.  Each embed is a correlated subquery whose
-- JSON PostgreSQL builds (row_to_json for to-one, coalesce(json_agg, '[]')
-- for to-many).  The embedded table's select policy and hidden columns
-- apply inside it exactly as for a direct read; a table the caller may not
-- read directly (no policy, or false) embeds as null / [] — what PostgREST
-- over RLS answers — never as an error that tells rows exist.  `!inner`
-- keeps only the parent rows with a visible, matching embedded row.
-- Uses strata.rest.grammar, strata.rest.sql and strata.rest.policy.

local grammar = require("strata.rest.grammar")
local sqlmod = require("strata.rest.sql")
local policy = require("strata.rest.policy")

local qi, fail = sqlmod.qi, sqlmod.fail
local concat, format, find, ipairs, pairs, sort, type, tonumber, unpack =
  table.concat, string.format, string.find, ipairs, pairs, table.sort, type, tonumber, table.unpack

local M = {}

local LOGIC = { ["or"] = true, ["and"] = true, ["not.or"] = true, ["not.and"] = true }
local WINDOW = { order = true, limit = true, offset = true }

-- A REST error with a hint (strata.rest.sql's fail has none).
local function raise(status, code, message, details, hint)
  error({ rest_error = true, status = status, code = code, message = message, details = details, hint = hint }, 0)
end

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

local function zip(a, b)
  local out = {}
  for i, x in ipairs(a) do out[i] = { x, b[i] } end
  return out
end

-- Every relationship of table t: many-to-one through its foreign keys,
-- one-to-many through those pointing at it (one-to-one when the
-- referencing columns are a unique key).  cols pairs t's column with the
-- foreign table's; a self-referencing key gives one of each.
local function relationships(t, tables)
  local rels = {}
  for _, fk in ipairs(t.fks or {}) do
    rels[#rels + 1] = { dir = "m2o", to_one = true, card = fk.is_unique and "one-to-one" or "many-to-one",
      constraint = fk.name, foreign = tables[fk.ref_table], cols = zip(fk.columns, fk.ref_columns),
      self = fk.ref_table == t.name }
  end
  for _, fk in ipairs(t.referenced_by or {}) do
    rels[#rels + 1] = { dir = "o2m", to_one = fk.is_unique, card = fk.is_unique and "one-to-one" or "one-to-many",
      constraint = fk.name, foreign = tables[fk.table_name], cols = zip(fk.ref_columns, fk.columns),
      self = fk.table_name == t.name }
  end
  return rels
end

-- t's column (i = 1) or the foreign table's (i = 2) of a one-column key.
local function single(rel, i)
  return #rel.cols == 1 and rel.cols[1][i] or nil
end

-- PostgREST's findRel: the target names the foreign table (or, without a
-- hint, the constraint or t's column); the hint names the constraint or a
-- column of either side.  A self-reference is one-to-many by the table's
-- name (hint: the referencing column) and many-to-one by the column's.
local function matches(rel, target, hint)
  if rel.self then
    if hint == nil then
      return (target == rel.foreign.name and rel.dir == "o2m") or (rel.dir == "m2o" and single(rel, 1) == target)
    end
    return target == rel.foreign.name and rel.dir == "o2m" and single(rel, 2) == hint
  end
  if hint == nil then
    return target == rel.foreign.name or target == rel.constraint or single(rel, 1) == target
  end
  return target == rel.foreign.name and (hint == rel.constraint or hint == single(rel, 1) or hint == single(rel, 2))
end

local function columns_of(rel, i)
  local out = {}
  for k, c in ipairs(rel.cols) do out[k] = c[i] end
  return "(" .. concat(out, ", ") .. ")"
end

local function ambiguous(t, item, found)
  local details, hints = {}, {}
  for i, rel in ipairs(found) do
    details[i] = { cardinality = rel.card, embedding = t.name .. " with " .. rel.foreign.name,
      relationship = format("%s using %s%s and %s%s", rel.constraint, t.name, columns_of(rel, 1), rel.foreign.name,
        columns_of(rel, 2)) }
    hints[i] = format("'%s!%s'", rel.foreign.name, rel.constraint)
  end
  raise(300, "PGRST201", format("Could not embed because more than one relationship was found for '%s' and '%s'",
    t.name, item.name), details, format("Try changing '%s' to one of the following: %s. Find the desired "
    .. "relationship in the 'details' key.", item.name, concat(hints, ", ")))
end

local function find_rel(t, tables, item)
  local found = {}
  for _, rel in ipairs(relationships(t, tables)) do
    if rel.foreign and matches(rel, item.name, item.hint) then found[#found + 1] = rel end
  end
  if #found == 1 then return found[1] end
  if #found > 1 then ambiguous(t, item, found) end
  fail(400, "PGRST200", format("Could not find a relationship between '%s' and '%s' in the schema cache", t.name,
    item.name), format("Searched for a foreign key relationship between '%s' and '%s'%s in the schema '%s', but no "
    .. "matches were found.", t.name, item.name, item.hint and format(" using the hint '%s'", item.hint) or "",
    t.schema))
end

-- The embed items of a select list as nodes { item, rel, t, children, params }.
local function build_tree(items, t, tables)
  local nodes = {}
  for _, it in ipairs(items) do
    if it.embed then
      local rel = find_rel(t, tables, it)
      nodes[#nodes + 1] = { item = it, rel = rel, t = rel.foreign, params = {},
        children = build_tree(it.select, rel.foreign, tables) }
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
      if WINDOW[p.key] then
        node[p.key] = { raw = p.raw, value = v } -- the last one wins, as at the top level
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
  if not hidden then fail(status, "42501", format("permission denied for table %s", t.name)) end
  return setmetatable({ t = t, params = b.params, embeds = pl.embeds, hidden = hidden, hidden_status = status },
    getmetatable(b))
end

local function filter_sql(eb, p, alias)
  local node, err
  if LOGIC[p.key] then
    node, err = grammar.logic((p.key:gsub("^not%.", "")), p.value, p.key:sub(1, 4) == "not.")
  else
    node, err = grammar.filter(p.key, p.value)
  end
  if not node then fail(400, "PGRST100", format("failed to parse filter (%s=%s)", p.raw, p.value), err) end
  return eb:condition(node, alias)
end

-- A join column the policy hides would leak its values through the
-- embed, so it is refused as PostgreSQL refuses a column it may not read.
local function join_column(builder, name)
  if builder.hidden and builder.hidden[name] then
    fail(builder.hidden_status or 403, "42501", format("permission denied for column %s of table %s", name,
      builder.t.name))
  end
  return qi(name)
end

-- The embedded rows' conditions: the join to the parent (b), the table's
-- select policy (none: no rows, as RLS without a policy) and the client's
-- filters on it.
local function conditions(pl, node, b, eb, parent)
  local a = node.alias .. "."
  local conds = {}
  for _, c in ipairs(node.rel.cols) do
    conds[#conds + 1] = a .. join_column(eb, c[2]) .. " = " .. parent .. join_column(b, c[1])
  end
  local pol = policy.decide(pl.ctx, node.t.schema, node.t.name, "select")
  conds[#conds + 1] = pol == nil and "FALSE" or policy.compile(eb, node.t, pol, a, pl.cat_schema)
  for _, p in ipairs(node.params) do conds[#conds + 1] = filter_sql(eb, p, a) end
  return conds
end

local function count_param(eb, w)
  local n = tonumber(w.value)
  if not n or n < 0 or n ~= math.floor(n) then
    fail(400, "PGRST100", format("%s must be a non-negative integer, not '%s'", w.raw, w.value))
  end
  return eb:param(math.tointeger(n))
end

-- ORDER BY / LIMIT / OFFSET of a to-many embed.
local function window(node, eb)
  local a, out = node.alias .. ".", ""
  if node.order and node.order.value ~= "" then
    local list, err = grammar.order(node.order.value)
    if not list then
      fail(400, "PGRST100", format("failed to parse order (%s=%s)", node.order.raw, node.order.value), err)
    end
    out = " ORDER BY " .. eb:order_by(list, a)
  end
  if node.limit then out = out .. " LIMIT " .. count_param(eb, node.limit) end
  if node.offset then out = out .. " OFFSET " .. count_param(eb, node.offset) end
  return out
end

local function select_sql(node, eb, from, where)
  local it = node.item
  local sel = eb:select_list(it.select, node.alias .. ".")
  local name = qi(it.alias or it.name)
  if node.rel.to_one then
    return "(SELECT row_to_json(pgrst_x) FROM (SELECT " .. sel .. " FROM " .. from .. where
      .. " LIMIT 1) AS pgrst_x) AS " .. name
  end
  return "(SELECT coalesce(json_agg(pgrst_x), '[]') FROM (SELECT " .. sel .. " FROM " .. from .. where
    .. window(node, eb) .. ") AS pgrst_x) AS " .. name
end

-- Leaves node's subquery in pl.embeds (children first: they are part of
-- it) and answers its !inner condition on the parent, if any.
local function render(pl, b, node, parent)
  pl.n = pl.n + 1
  node.alias = "pgrst_e" .. pl.n
  local eb = child_builder(pl, b, node.t)
  local conds = conditions(pl, node, b, eb, parent)
  for _, child in ipairs(node.children) do conds[#conds + 1] = render(pl, eb, child, node.alias .. ".") end
  local from, where = sqlmod.qualified(node.t) .. " AS " .. node.alias, sqlmod.where(conds)
  pl.embeds[node.item] = #node.item.select == 0 and "" or select_sql(node, eb, from, where)
  if node.item.inner then return "EXISTS (SELECT 1 FROM " .. from .. where .. ")" end
  return nil
end

--- Plans the embeds among items (grammar.select) of a read of table t,
-- whose rows the SQL names `parent` (default: the qualified table name):
-- leaves each embed's subquery on builder b for b:select_list, and answers
-- the conditions the parent rows must meet (!inner).  nested comes from
-- M.split.  Raises REST errors (PGRST200, PGRST201, PGRST108, PGRST100).
function M.plan(b, ctx, cat_schema, t, items, nested, parent)
  local pl = { ctx = ctx, cat_schema = cat_schema, embeds = {}, n = 0 }
  b.embeds = pl.embeds
  local nodes = build_tree(items, t, cat_schema.tables)
  attach(nodes, nested)
  local conds = {}
  for _, node in ipairs(nodes) do
    conds[#conds + 1] = render(pl, b, node, parent or (sqlmod.qualified(t) .. "."))
  end
  return conds
end

return M
