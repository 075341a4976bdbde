-- strata.rest.sql: SQL text from parsed requests.  Identifiers come only
-- from the catalog (quoted here); every value becomes a parameter ($n).
-- Results are turned into JSON by PostgreSQL (json_agg), never row by row
-- in Lua.

local errors = require("strata.rest.errors")

local concat, format, gsub, find, next = table.concat, string.format, string.gsub, string.find, next
local raise = errors.raise

local M = {}

local Builder = {}
Builder.__index = Builder

--- A builder for one statement against table t (from the catalog).
function M.builder(t)
  -- The fields set later (strata.rest's hidden, embed's plan) are named
  -- here, nil, so that the table is made at its final size, not regrown.
  return setmetatable({ t = t, params = {}, hidden = nil, hidden_status = nil, embeds = nil, embed_columns = nil,
    embed_nodes = nil }, Builder)
end

-- Quoted identifiers, kept: the catalog's names recur in every request,
-- and quoting them again was a pattern match each (callgrind).  Aliases
-- are the client's, so the cache is bounded: past QUOTED_MAX it starts over.
local QUOTED_MAX = 4096
local quoted, nquoted = {}, 0

--- Quotes an identifier taken from the catalog (or a client's alias).
local function qi(name)
  local q = quoted[name]
  if not q then
    q = '"' .. gsub(name, '"', '""') .. '"'
    if nquoted >= QUOTED_MAX then quoted, nquoted = {}, 0 end
    quoted[name], nquoted = q, nquoted + 1
  end
  return q
end
M.qi = qi

--- "schema"."table", kept on the catalog entry (rebuilt on reload or DDL).
function M.qualified(t)
  local q = t.qualified_sql
  if not q then
    q = qi(t.schema) .. "." .. qi(t.name)
    t.qualified_sql = q
  end
  return q
end

-- "$1", "$2", ...: made once each (turning n into text costs a snprintf).
local PLACEHOLDERS_MAX = 256
local placeholders = {}
for n = 1, 16 do placeholders[n] = "$" .. n end

--- Adds a parameter; returns its placeholder.
function Builder:param(v)
  local params = self.params
  local n = #params + 1
  params[n] = v
  local ph = placeholders[n]
  if not ph then
    ph = "$" .. n
    if n <= PLACEHOLDERS_MAX then placeholders[n] = ph end
  end
  return ph
end

--- SQL for a column with its JSON path, checked against the catalog.
function Builder:field(f, alias)
  local col = self.t.columns[f.name]
  local s
  if not col then
    local fn = self.t.computed and self.t.computed[f.name]
    if not fn then raise(400, "42703", format("column %s.%s does not exist", self.t.name, f.name)) end
    -- A computed column reads the whole row: refused to a caller the
    -- policy hides any column from, which it could otherwise print.
    if self.hidden and next(self.hidden) then
      raise(self.hidden_status or 403, "42501", format("permission denied for function %s", fn.name))
    end
    local row = alias and alias:gsub("%.$", "") or qi(self.t.name)
    s, col = qi(fn.schema) .. "." .. qi(fn.name) .. "(" .. row .. ")", { name = f.name, type = fn.return_type }
  elseif self.hidden and self.hidden[f.name] then
    -- As PostgreSQL answers a column privilege it lacks (strata.rest.policy `hidden`).
    raise(self.hidden_status or 403, "42501", format("permission denied for column %s of table %s", f.name, self.t.name))
  else
    s = (alias or "") .. qi(f.name)
  end
  local path = f.path
  for i = 1, #path do
    local step = path[i]
    local key = step.key
    s = s .. step.op .. (find(key, "^%-?%d+$") and (self:param(key) .. "::int") or (self:param(key) .. "::text"))
  end
  return s, col
end

-- A PostgreSQL array literal from strings.
local function array_literal(list)
  local out = {}
  for i, v in ipairs(list) do out[i] = '"' .. gsub(v, '[\\"]', "\\%0") .. '"' end
  return "{" .. concat(out, ",") .. "}"
end
M.array_literal = array_literal

local FTS = { fts = "to_tsquery", plfts = "plainto_tsquery", phfts = "phraseto_tsquery", wfts = "websearch_to_tsquery" }
local CMP = { eq = "=", neq = "<>", gt = ">", gte = ">=", lt = "<", lte = "<=", cs = "@>", cd = "<@",
  isdistinct = "IS DISTINCT FROM", ov = "&&", sl = "<<", sr = ">>", nxr = "&<", nxl = "&>", adj = "-|-" }
local REGEX = { match = "~", imatch = "~*" }

--- SQL for one filter node or logic group.
function Builder:condition(node, alias)
  local sql
  if node.logic then
    local parts = {}
    for i, child in ipairs(node.children) do parts[i] = self:condition(child, alias) end
    sql = "(" .. concat(parts, node.logic == "or" and " OR " or " AND ") .. ")"
  elseif node.op == "is" and node.value == "null" and #node.field.path == 0 and self.embed_exists
      and self.embed_exists(node.field.name) then
    -- `embed=is.null`: the embed has no row (strata.rest.embed).
    return (node.negate and "" or "NOT ") .. self.embed_exists(node.field.name)
  else
    local f = self:field(node.field, alias)
    local op = node.op
    local texty = #node.field.path > 0 and node.field.path[#node.field.path].op == "->>"
    if node.quant then
      local q = node.quant == "any" and "ANY" or "ALL"
      if op == "like" or op == "ilike" or REGEX[op] then
        local vals = node.values
        if op == "like" or op == "ilike" then
          vals = {}
          for i, v in ipairs(node.values) do vals[i] = (gsub(v, "%*", "%%")) end
        end
        sql = f .. "::text " .. (REGEX[op] or op) .. " " .. q .. "(" .. self:param(array_literal(vals)) .. "::text[])"
      else
        sql = f .. " " .. CMP[op] .. " " .. q .. "(" .. self:param(array_literal(node.values)) .. (texty and "::text[])" or ")")
      end
    elseif CMP[op] then
      sql = f .. " " .. CMP[op] .. " " .. self:param(node.value)
    elseif op == "like" or op == "ilike" then
      sql = f .. "::text " .. op .. " " .. self:param((gsub(node.value, "%*", "%%")))
    elseif REGEX[op] then
      sql = f .. "::text " .. REGEX[op] .. " " .. self:param(node.value)
    elseif op == "in" then
      sql = f .. " = ANY(" .. self:param(array_literal(node.values)) .. (texty and "::text[])" or ")")
    elseif op == "is" then
      sql = f .. " IS " .. ({ null = "NULL", not_null = "NOT NULL", ["true"] = "TRUE", ["false"] = "FALSE",
        unknown = "UNKNOWN" })[node.value]
    elseif FTS[op] then
      local q = node.field.lang and (self:param(node.field.lang) .. "::regconfig, ") or ""
      sql = f .. " @@ " .. FTS[op] .. "(" .. q .. self:param(node.value) .. ")"
    end
  end
  if node.negate then sql = "NOT " .. sql end
  return sql
end

-- The columns of `*` on rows `alias`, less the hidden ones, as SQL text.
-- With nothing hidden and no alias (the common read) the text depends on
-- the table alone, so it is kept on the catalog entry, which a reload or
-- DDL replaces.
local function star_list(t, hidden, alias)
  local plain = alias == nil and (hidden == nil or next(hidden) == nil)
  if plain and t.star_sql then return t.star_sql end
  local out = {}
  for _, c in ipairs(t.column_list) do
    if not (hidden and hidden[c.name]) then out[#out + 1] = (alias or "") .. qi(c.name) end
  end
  local s = concat(out, ", ")
  if plain then t.star_sql = s end
  return s
end

--- The select list for items (from grammar.select).
function Builder:select_list(items, alias)
  local out = {}
  for i = 1, #items do
    local it = items[i]
    if it.star then
      local s = star_list(self.t, self.hidden, alias)
      if s ~= "" then out[#out + 1] = s end
    elseif it.embed then
      -- strata.rest.embed planned it and left its subqueries here ("" for
      -- an empty embed); a statement that did not plan them cannot embed.
      local s = self.embeds and self.embeds[it]
      if not s then raise(400, "PGRST100", format("embedding %s is not supported here", it.name)) end
      if s ~= "" then out[#out + 1] = s end
    elseif it.count and self.aggregates then -- count(), the rows of each group
      out[#out + 1] = "count(*)" .. (it.cast and ("::" .. it.cast) or "") .. " AS " .. qi(it.alias or "count")
    else
      local s = self:field(it, alias)
      if it.agg then s = it.agg .. "(" .. s .. ")" end
      if it.cast then s = s .. "::" .. it.cast end
      local name = it.alias or it.agg or (#it.path > 0 and it.path[#it.path].key) or it.name
      out[#out + 1] = s .. " AS " .. qi(name)
    end
  end
  if #out == 1 then return out[1] end -- select=* : no copy
  return concat(out, ", ")
end

--- Whether items (top-level select items) aggregate: col.sum() & co or a
-- count() beside other columns.
function M.aggregating(items)
  for _, it in ipairs(items) do
    if it.agg or (it.count and not it.embed) then return true end
  end
  return false
end

--- " GROUP BY" the select items that do not aggregate (PostgREST's
-- grouping: the other selected columns), "" when there are none.
function Builder:group_by(items, alias)
  local out = {}
  for _, it in ipairs(items) do
    if it.star then
      local s = star_list(self.t, self.hidden, alias)
      if s ~= "" then out[#out + 1] = s end
    elseif not it.embed and not it.agg and not it.count then
      local s = self:field(it, alias)
      if it.cast then s = s .. "::" .. it.cast end
      out[#out + 1] = s
    end
  end
  return #out > 0 and (" GROUP BY " .. concat(out, ", ")) or ""
end

function Builder:order_by(list, alias)
  local out = {}
  for i, o in ipairs(list) do
    out[i] = self:field(o.field, alias) .. (o.dir == "desc" and " DESC" or " ASC")
      .. (o.nulls == "nullsfirst" and " NULLS FIRST" or o.nulls == "nullslast" and " NULLS LAST" or "")
  end
  return concat(out, ", ")
end

--- ANDs the non-empty conditions.
function M.where(conds)
  local list, n = conds, #conds
  for i = 1, n do
    local c = conds[i]
    if not c or c == "" then list = nil break end
  end
  if not list then -- copy the non-empty ones (the common case needs no copy)
    list = {}
    for _, c in ipairs(conds) do if c and c ~= "" then list[#list + 1] = c end end
    n = #list
  end
  return n > 0 and (" WHERE " .. concat(list, " AND ", 1, n)) or ""
end

return M
