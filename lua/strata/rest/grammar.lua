-- strata.rest.grammar: PostgREST's query-string grammar, parsed into plain
-- tables (no SQL here): select lists with embedded resources, filters
-- (op.value, not., in.(...), is.), or/and groups, order.  Every error
-- names the part that was wrong.  Parsed select and order lists are
-- shared between requests (see memo): callers must not change them.

local byte, sub, find, gsub, lower = string.byte, string.sub, string.find, string.gsub, string.lower

local M = {}

-- Clients send the same few select= and order= strings again and again,
-- so their parsed lists are kept (shared, hence read-only).  The strings
-- are the client's, so the cache is bounded in entries and in key length.
local MEMO_MAX, MEMO_KEY_MAX = 256, 512

local function memo(parse)
  local cache, n = {}, 0
  return function(s)
    local hit = s ~= nil and cache[s]
    if hit then return hit end
    local res, err = parse(s)
    if res ~= nil and s ~= nil and #s <= MEMO_KEY_MAX then
      if n >= MEMO_MAX then cache, n = {}, 0 end
      cache[s], n = res, n + 1
    end
    return res, err
  end
end

local OPS = { eq = "=", neq = "<>", gt = ">", gte = ">=", lt = "<", lte = "<=", like = "like", ilike = "ilike",
  ["in"] = "in", is = "is", fts = "fts", plfts = "fts", phfts = "fts", wfts = "fts", cs = "@>", cd = "<@",
  match = "~", imatch = "~*", isdistinct = "is distinct from", ov = "&&", sl = "<<", sr = ">>", nxr = "&<",
  nxl = "&>", adj = "-|-" }
M.OPS = OPS
local QUANTIFIABLE = { eq = true, gt = true, gte = true, lt = true, lte = true, like = true, ilike = true,
  match = true, imatch = true }

-- cs/cd take JSON too, where a double-quoted string is itself a literal,
-- so their values pass untouched.  Array and range literals (ov, sl, sr,
-- nxr, nxl, adj) never start with a quote: they are unquoted like any
-- value, which lets "[1,5)" carry its comma and parenthesis inside or=().
local RAW = { cs = true, cd = true }

-- Splits s on `sep` at depth 0 (outside parentheses, double quotes and
-- the braces of array literals such as cs.{a,b} inside or=(...)).
local function split_top(s, sep)
  local parts, depth, braces, quoted, start = {}, 0, 0, false, 1
  local i, n = 1, #s
  while i <= n do
    local c = sub(s, i, i)
    if quoted then
      if c == "\\" then i = i + 1 elseif c == '"' then quoted = false end
    elseif c == '"' then quoted = true
    elseif c == "(" then depth = depth + 1
    elseif c == ")" then depth = depth - 1
      if depth < 0 then return nil, "unbalanced parentheses" end
    elseif c == "{" then braces = braces + 1
    elseif c == "}" and braces > 0 then braces = braces - 1
    elseif c == sep and depth == 0 and braces == 0 then
      parts[#parts + 1] = sub(s, start, i - 1)
      start = i + 1
    end
    i = i + 1
  end
  if quoted then return nil, "unterminated double quote" end
  if depth ~= 0 then return nil, "unbalanced parentheses" end
  parts[#parts + 1] = sub(s, start)
  return parts
end
M.split_top = split_top

local function unquote(v)
  if byte(v) == 34 and byte(v, -1) == 34 and #v >= 2 then
    return (gsub(sub(v, 2, -2), "\\(.)", "%1"))
  end
  return v
end

M.unquote = unquote

--- A list of column names, "a,b" or quoted as postgrest-js sends them
-- ('"a","b"'): columns= and on_conflict=.  nil, message when it does not parse.
function M.columns(s)
  local parts, err = split_top(s, ",")
  if not parts then return nil, err end
  local out = {}
  for _, p in ipairs(parts) do
    p = unquote(p:match("^%s*(.-)%s*$"))
    if p == "" then return nil, "empty column name" end
    out[#out + 1] = p
  end
  return out
end

-- A character an unquoted column name may not hold: PostgREST's names are
-- letters, digits, "_", " " and "$" (and non-ASCII letters; quote others).
local NOT_IN_NAME = "[^%w_ $\128-\255]"

-- "col->a->>b" into name and json path steps.
local function parse_field(s)
  local name, rest
  if byte(s) == 34 then -- '"': a quoted name ("column whitespace"), as postgrest-js writes one
    name, rest = s:match('^"([^"]+)"(.*)$')
    if not name then return nil end
    if rest == "" then return { name = name, path = {} } end
  else
    -- A plain column name (no "-", so no arrow) is the common case: no pattern.
    if s ~= "" and not find(s, "-", 1, true) then
      if find(s, NOT_IN_NAME) then return nil end
      return { name = s, path = {} }
    end
    name, rest = s:match("^([^%-]+)(.*)$")
    if not name or name == "" or find(name, NOT_IN_NAME) then return nil end
  end
  local path = {}
  while rest ~= "" do
    local arrow, key, more = rest:match("^(%->>?)([^%-]+)(.*)$")
    if not arrow then return nil end
    path[#path + 1] = { op = arrow, key = key }
    rest = more
  end
  return { name = name, path = path }
end
M.parse_field = parse_field

local AGGREGATES = { sum = true, avg = true, min = true, max = true, count = true }

-- Whether select item p is an aggregate, not an embed: [alias:]col.fn()
-- or [alias:]count(), maybe cast.
local function aggregate_item(p)
  local bare = p:gsub("::%w+$", "")
  local fn = bare:match("%.(%a+)%(%)$")
  return (fn and AGGREGATES[fn]) or bare:match("^count%(%)$") or bare:match("^[%w_]+:count%(%)$")
end

local CASTS = { text = true, int = true, integer = true, bigint = true, numeric = true, bool = true,
  boolean = true, json = true, jsonb = true, date = true, timestamptz = true, uuid = true, float8 = true }

-- "!hint!inner" after an embedded resource's name, into item.hint and
-- item.inner (true for !inner, false for !left).
local function embed_modifiers(item, mods, p)
  if mods == "" then return item end
  if byte(mods) ~= 33 then return nil, ("select: cannot parse the embedded resource '%s'"):format(p) end
  for m in (sub(mods, 2) .. "!"):gmatch("([^!]*)!") do
    if m == "inner" or m == "left" then
      item.inner = m == "inner"
    elseif not m:match("^[%w_$]+$") or item.hint then
      return nil, ("select: cannot parse the modifiers '%s' of '%s'"):format(mods, p)
    else
      item.hint = m
    end
  end
  return item
end

-- "alias:name!hint!inner(select)" -> an embed item; its select is parsed
-- by M.select, so embedding nests to any depth.  name() embeds nothing
-- into the answer (it only filters with !inner).  "...name(select)"
-- spreads a to-one embed's columns into the parent (item.spread); as in
-- PostgREST it takes no alias, its columns keep theirs.
local function embed_item(p)
  local alias, rest = p:match("^([%w_]+):(.*)$")
  rest = rest or p
  local spread = sub(rest, 1, 3) == "..."
  if spread and alias then return nil, ("select: a spread embedding takes no alias (%s)"):format(p) end
  if spread then rest = sub(rest, 4) end
  local name, mods, inner = rest:match("^([%w_$]+)([^(]*)%((.*)%)$")
  if not name then return nil, ("select: cannot parse the embedded resource '%s'"):format(p) end
  local item, err = embed_modifiers({ embed = true, name = name, alias = alias, spread = spread or nil }, mods, p)
  if not item then return nil, err end
  if inner:match("^%s*$") then
    item.select = {}
  else
    item.select, err = M.select(inner)
    if not item.select then return nil, err end
  end
  return item
end

--- select=a,alias:b,c->d,e::text,*,alias:other!hint!inner(...)  ->  list
-- of items, or nil, message.
local function parse_select(s)
  if s == nil or s == "" or s == "*" then return { { star = true } } end
  local parts, err = split_top(s, ",")
  if not parts then return nil, "select: " .. err end
  local items = {}
  for _, p in ipairs(parts) do
    p = p:match("^%s*(.-)%s*$")
    local count_alias = p == "count()" and "" or p:match("^([%w_]+):count%(%)$")
    if p == "*" then
      items[#items + 1] = { star = true }
    elseif count_alias then
      -- PostgREST's count() is never a resource; only an embed answers it
      -- (strata.rest.embed), elsewhere it stays the column "count".
      items[#items + 1] = { name = "count", path = {}, count = true, alias = count_alias ~= "" and count_alias or nil }
    elseif find(p, "(", 1, true) and not aggregate_item(p) then
      local item, e = embed_item(p)
      if not item then return nil, e end
      items[#items + 1] = item
    else
      local alias, rest = p:match("^([%w_]+):([^:].*)$")
      rest = rest or p
      local field, cast = rest:match("^(.-)::(%w+)$")
      field = field or rest
      if cast and not CASTS[cast] then return nil, ("select: cannot cast to %s"):format(cast) end
      -- An aggregate (PostgREST 12): col.sum(), col.avg(), col.min(),
      -- col.max(), col.count(); count() alone is the row count.
      local agg
      local inner, fn = field:match("^(.-)%.(%a+)%(%)$")
      if inner and AGGREGATES[fn] then field, agg = inner, fn end
      if field == "count()" then field, agg = "*", "count" end
      local f = agg == "count" and field == "*" and { name = "*", path = {}, count = true } or parse_field(field)
      if not f then return nil, ("select: cannot parse '%s'"):format(p) end
      f.alias, f.cast, f.agg = alias, cast, agg
      items[#items + 1] = f
    end
  end
  return items
end

-- The values of in.(a,"b,c",d).
local function parse_list(v)
  local inner = v:match("^%((.*)%)$")
  if not inner then return nil end
  if inner == "" then return {} end
  local parts, err = split_top(inner, ",")
  if not parts then return nil, err end
  for i, p in ipairs(parts) do parts[i] = unquote(p) end
  return parts
end

--- One filter "op.value" (maybe "not.op.value") on field -> node, or nil, message.
function M.filter(field_text, expr)
  local field = parse_field(field_text)
  if not field then return nil, ("cannot parse the column '%s'"):format(field_text) end
  local negate, text = false, expr
  if byte(expr) == 110 and sub(expr, 1, 4) == "not." then -- 110: "n"
    negate = true
    expr = sub(expr, 5)
  end
  -- "op.value": the operator ends at the first dot; a known operator is a
  -- word, so this is what the pattern "^(%w+)%.(.*)$" finds, found plainly.
  local op, value
  local dot = find(expr, ".", 1, true)
  local word = dot and sub(expr, 1, dot - 1)
  if word and OPS[word] then
    op, value = word, sub(expr, dot + 1)
  else
    op, value = expr:match("^(%w+)%.(.*)$")
  end
  local quant
  if not op then
    -- fts with a language: fts(english).word; a quantified operator:
    -- like(any).{a*,b*} (PostgREST's eq, gt, gte, lt, lte, like, ilike,
    -- match, imatch with (any) or (all), over a {a,b} list).
    local fop, mod, v = expr:match("^(%w+)%((%w+)%)%.(.*)$")
    if fop and OPS[fop] == "fts" then op, value = fop, v; field.lang = mod
    elseif fop and QUANTIFIABLE[fop] and (mod == "any" or mod == "all") then op, value, quant = fop, v, mod end
  end
  if not op or not OPS[op] then
    return nil, ("unknown operator in '%s=%s'"):format(field_text, text)
  end
  local node = { field = field, op = op, negate = negate, quant = quant }
  if quant then
    local list = value:match("^{(.*)}$")
    if not list then return nil, ("%s(%s) expects a list in braces: '%s'"):format(op, quant, value) end
    local parts, err = list == "" and {} or split_top(list, ",")
    if not parts then return nil, err end
    for i, p in ipairs(parts) do parts[i] = unquote(p) end
    node.values = parts
    return node
  end
  if op == "in" then
    local list, err = parse_list(value)
    if not list then return nil, ("in. expects a list in parentheses: '%s'%s"):format(value, err and (": " .. err) or "") end
    node.values = list
  elseif op == "is" then
    local v = lower(value)
    if v ~= "null" and v ~= "not_null" and v ~= "true" and v ~= "false" and v ~= "unknown" then
      return nil, ("is. accepts null, not_null, true, false or unknown, not '%s'"):format(value)
    end
    node.value = v
  elseif RAW[op] then
    node.value = value
  else
    node.value = unquote(value)
  end
  return node
end

--- The inside of or=(...) / and=(...): "a.eq.1,b.gt.2,and(c.eq.3,d.is.null)".
function M.logic(kind, text, negate)
  local inner = text:match("^%((.*)%)$")
  if not inner then return nil, ("%s= expects a list in parentheses"):format(kind) end
  local parts, err = split_top(inner, ",")
  if not parts then return nil, kind .. ": " .. err end
  local node = { logic = kind, negate = negate, children = {} }
  for _, p in ipairs(parts) do
    local neg = sub(p, 1, 4) == "not."
    local k, rest = sub(p, neg and 5 or 1):match("^(%a+)(%b())$")
    if k == "and" or k == "or" then
      local child, e = M.logic(k, rest, neg)
      if not child then return nil, e end
      node.children[#node.children + 1] = child
    else
      local field, expr = p:match("^([^%.]+)%.(.+)$")
      if not field then return nil, ("%s: cannot parse '%s'"):format(kind, p) end
      local child, e = M.filter(field, expr)
      if not child then return nil, e end
      node.children[#node.children + 1] = child
    end
  end
  return node
end

--- order=a.desc.nullslast,b  ->  list of { field, dir, nulls }.
local function parse_order(s)
  local list = {}
  for term in s:gmatch("[^,]+") do
    local parts = {}
    for piece in (term .. "."):gmatch("([^%.]*)%.") do parts[#parts + 1] = piece end
    -- rel(col): a column of the to-one embed rel (strata.rest.embed).
    local relation, col = (parts[1] or ""):match("^([%w_$]+)%((.-)%)$")
    local field = parse_field(col or parts[1] or "")
    if not field then return nil, ("order: cannot parse '%s'"):format(term) end
    local o = { field = field, relation = relation }
    for i = 2, #parts do
      local m = parts[i]
      if m == "asc" or m == "desc" then o.dir = m
      elseif m == "nullsfirst" or m == "nullslast" then o.nulls = m
      else return nil, ("order: unknown modifier '%s' in '%s'"):format(m, term) end
    end
    list[#list + 1] = o
  end
  return list
end

local select_memo = memo(parse_select)
-- No select= parses as select= (both are `*`), and is kept under that key.
function M.select(s) return select_memo(s or "") end
M.order = memo(parse_order)

return M
