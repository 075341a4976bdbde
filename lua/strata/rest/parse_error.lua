-- strata.rest.parse_error: the message and details of PostgREST's 400
-- PGRST100 for a parameter that does not parse, as its Parsec parsers
-- word them (src/PostgREST/ApiRequest/QueryParams.hs): message
-- `"failed to parse filter (v)" (line 1, column N)`, details such as
-- `unexpected "x" expecting "not" or operator (eq, gt, ...)`.  strata's own
-- parser (strata.rest.grammar) decides whether a parameter parses; this
-- module only finds the words PostgREST would use, by replaying the part of
-- its grammar that failed: the operator of a filter (pOpExpr, also inside
-- or=/and=), the terms of order= (pOrder), a select= left inside
-- parentheses and an empty columns=.  Where it cannot tell, it answers nil
-- and the caller keeps strata's own words.
--
-- Parsec's rules replayed here: an error has a position and messages; of
-- two alternatives' errors the further one wins and equal positions pool
-- their messages; `string` reports the first differing character at the
-- position where the string began; a label replaces what is expected.

local concat, unpack = table.concat, table.unpack
local format, byte = string.format, string.byte

local M = {}

-- Haskell's names of the ASCII control characters, as `show` writes them.
local CONTROL = { [0] = "NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "a", "b", "t", "n", "v", "f", "r", "SO", "SI",
  "DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM", "SUB", "ESC", "FS", "GS", "RS", "US",
  [127] = "DEL" }

-- The characters of s (UTF-8; bytes when it is not valid UTF-8).
local function chars_of(s)
  local list = {}
  if utf8.len(s) then
    for _, cp in utf8.codes(s) do list[#list + 1] = utf8.char(cp) end
  else
    for i = 1, #s do list[i] = s:sub(i, i) end
  end
  return list
end

-- Haskell's `show` of a String (quote '"') or of a Char (quote "'"):
-- quoted, control and non-ASCII characters as escapes.
local function hs_show(s, quote)
  quote = quote or '"'
  local out, numeric = {}, false
  for _, c in ipairs(chars_of(s)) do
    local cp = #c == 1 and byte(c) or utf8.codepoint(c)
    local piece
    if c == quote or c == "\\" then piece = "\\" .. c
    elseif CONTROL[cp] then piece = "\\" .. CONTROL[cp]
    elseif cp > 127 then piece = "\\" .. cp
    else piece = (numeric and c:match("%d")) and "\\&" .. c or c end
    out[#out + 1] = piece
    numeric = cp > 127
  end
  return quote .. concat(out) .. quote
end
M.show = hs_show

-- An error at character index pos: what was found there (Parsec's
-- SysUnExpect), what was expected, what was found as `unexpected` words.
local function err(pos, sys, expect, un)
  return { pos = pos, sys = { sys }, exp = { expect }, un = { un } }
end

-- What Parsec shows for the character at i: `show [c]`, "" at the end.
local function shown(c, i) return c[i] and hs_show(c[i]) or "" end

local function merge(a, b)
  if not a then return b end
  if not b then return a end
  if a.pos ~= b.pos then return a.pos > b.pos and a or b end
  local m = { pos = a.pos, sys = { unpack(a.sys) }, exp = { unpack(a.exp) }, un = { unpack(a.un) } }
  for _, k in ipairs({ "sys", "exp", "un" }) do
    for _, v in ipairs(b[k]) do m[k][#m[k] + 1] = v end
  end
  return m
end

local function label(e, text)
  return { pos = e.pos, sys = e.sys, exp = { text }, un = e.un }
end

-- Parsec's `string lit` at i: the index after it, or its error.
local function lit(c, i, text)
  local t = chars_of(text)
  for k = 1, #t do
    if c[i + k - 1] ~= t[k] then return nil, err(i, shown(c, i + k - 1), hs_show(text)) end
  end
  return i + #t
end

-- Parsec's `char ch` at i, with the label Parsec gives it or `name`.
local function char(c, i, ch, name)
  if c[i] == ch then return i + 1 end
  return nil, err(i, shown(c, i), name or hs_show(ch))
end

local function delimiter(c, i) return char(c, i, ".", "delimiter (.)") end

-- The first of `lits` (each tried with `try`) at i, or their pooled error.
local function one_of(c, i, lits)
  local e
  for _, text in ipairs(lits) do
    local j, e2 = lit(c, i, text)
    if j then return j, text end
    e = merge(e, e2)
  end
  return nil, e
end

-- Parsec's showErrorMessages as PostgREST prints it (one line).
local function nub(list)
  local seen, out = {}, {}
  for _, v in ipairs(list) do
    if v ~= "" and not seen[v] then seen[v] = true; out[#out + 1] = v end
  end
  return out
end

local function commas_or(list)
  if #list <= 1 then return list[1] or "" end
  return concat(list, ", ", 1, #list - 1) .. " or " .. list[#list]
end

local function details(e)
  local parts = {}
  local un = nub(e.un)
  if #un > 0 then
    parts[#parts + 1] = "unexpected " .. commas_or(un)
  elseif #e.sys > 0 then
    parts[#parts + 1] = "unexpected " .. (e.sys[1] == "" and "end of input" or e.sys[1])
  end
  local exp = nub(e.exp)
  if #exp > 0 then parts[#parts + 1] = "expecting " .. commas_or(exp) end
  return concat(parts, " ")
end

-- Parsec's "(line l, column c)" of character index i of c.
local function position(c, i)
  local line, col = 1, 1
  for k = 1, i - 1 do
    local ch = c[k]
    if ch == "\n" then line, col = line + 1, 1
    elseif ch == "\t" then col = col + 8 - ((col - 1) % 8)
    else col = col + 1 end
  end
  return format("(line %d, column %d)", line, col)
end

local function answer(source, c, e)
  return hs_show(source) .. " " .. position(c, e.pos), details(e)
end

-- pListVal: "(a,b)" after in. (its error is one that consumed input).
local function list_error(c, i)
  while c[i] == " " or c[i] == "\t" do i = i + 1 end
  if c[i] ~= "(" then return err(i, shown(c, i), '"("') end
  i = i + 1
  while true do
    while c[i] and c[i] ~= "," and c[i] ~= ")" do i = i + 1 end
    if c[i] == ")" then return nil end
    if not c[i] then
      local e = err(i, "", '","')
      e.exp[2] = '")"'
      return e
    end
    i = i + 1
  end
end

local IS_VALUES = { "null", "not_null", "true", "false", "unknown" }

-- pIsVal: null, not_null, true, false or unknown, each letter in either case.
local function is_error(c, i)
  local far = i
  for _, v in ipairs(IS_VALUES) do
    local k = 0
    while k < #v and c[i + k] and c[i + k]:lower() == v:sub(k + 1, k + 1) do k = k + 1 end
    if k == #v then return nil end
    if i + k > far then far = i + k end
  end
  return err(far, shown(c, far), "isVal: (null, not_null, true, false, unknown)")
end

local FTS = { "fts", "plfts", "phfts", "wfts" }
local SIMPLE = { "neq", "cs", "cd", "ov", "sl", "sr", "nxr", "nxl", "adj" }
local QUANT = { "eq", "gte", "gt", "lte", "lt", "like", "ilike", "match", "imatch" }

-- Inside a failed alternative of pOperation only the position and what
-- was found matter: the label replaces what was expected.

-- The optional "(english)" of fts: the index after it (j when absent)
-- and the error trying it left.
local function fts_language(c, j)
  if c[j] ~= "(" then return j, err(j, shown(c, j)) end
  local m = j + 1
  while c[m] and (c[m]:match("^[%w_ $]$") or #c[m] > 1) do m = m + 1 end
  if m == j + 1 or c[m] ~= ")" then return j, err(m, shown(c, m)) end
  return m + 1
end

-- The optional "(any)" / "(all)" of a quantifiable operator, likewise.
local function quantifier(c, j)
  if c[j] ~= "(" then return j, err(j, shown(c, j)) end
  local m, e = lit(c, j + 1, "any")
  if not m then
    local e2
    m, e2 = lit(c, j + 1, "all")
    if not m then return j, merge(e, e2) end
  end
  if c[m] ~= ")" then return j, err(m, shown(c, m)) end
  return m + 1
end

-- After an operator word at j: its optional part, then the delimiter.
-- nil when it parses; else its error.
local function after_operator(c, j, optional)
  local k, e = j, nil
  if optional then k, e = optional(c, j) end
  local d, e2 = delimiter(c, k)
  if d then return nil end
  return merge(e, e2)
end

-- pOperation at i: nil when it parses; else its error and whether that
-- error consumed input (then no label and no other alternative).
local function operation_error(c, i)
  local e
  for _, kw in ipairs({ "in", "is", "isdistinct" }) do
    local j, e1 = lit(c, i, kw)
    local k, e2
    if j then k, e2 = delimiter(c, j) end
    if k then
      if kw == "in" then return list_error(c, k), true end
      if kw == "is" then return is_error(c, k), true end
      return nil
    end
    e = merge(e, e1 or e2)
  end
  local groups = { { FTS, fts_language }, { SIMPLE, false }, { QUANT, quantifier } }
  for _, g in ipairs(groups) do
    local j, e1 = one_of(c, i, g[1])
    if j then
      local e2 = after_operator(c, j, g[2])
      if not e2 then return nil end
      e = merge(e, e2)
    else
      e = merge(e, e1)
    end
  end
  return label(e, "operator (eq, gt, ...)")
end

-- pOpExpr over c from i: nil when PostgREST parses it, else the error.
local function op_expr_error(c, i)
  local e0
  local j, e = lit(c, i, "not")
  if j then
    local k, e2 = delimiter(c, j)
    if k then i = k else e0 = e2 end
  else
    e0 = e
  end
  local eop, consumed = operation_error(c, i)
  if not eop then return nil end
  if consumed then return eop end
  return merge(e0, eop)
end

--- The message and details of a filter's value v (`id=v`) PostgREST does
-- not parse; nil when it does.
function M.filter(v)
  local c = chars_of(v)
  local e = op_expr_error(c, 1)
  if not e then return nil end
  return answer("failed to parse filter (" .. v .. ")", c, e)
end

local child_error

-- The first child filter of a logic tree (its characters c from i to
-- the closing parenthesis) whose operator PostgREST does not parse.
local function logic_children_error(c, i)
  local depth, start = 0, i
  local k = i
  while c[k] do
    local ch = c[k]
    if ch == '"' then
      k = k + 1
      while c[k] and c[k] ~= '"' do k = k + (c[k] == "\\" and 2 or 1) end
    elseif ch == "(" then depth = depth + 1
    elseif ch == "{" then depth = depth + 1
    elseif ch == "}" then depth = depth - 1
    elseif ch == ")" or ch == "," then
      if depth == 0 then
        local e = child_error(c, start, k)
        if e or ch == ")" then return e end
        start = k + 1
      elseif ch == ")" then depth = depth - 1 end
    end
    k = k + 1
  end
  return nil
end

-- One child from a to b (exclusive): and(...), or(...), not.… or a filter.
child_error = function(c, a, b)
  local text = concat(c, "", a, b - 1)
  local pre = text:match("^not%.") and 4 or 0
  local op = text:sub(pre + 1):match("^(%a+)%(")
  if op == "and" or op == "or" then return logic_children_error(c, a + pre + #op + 1) end
  for k = a, b - 1 do
    if c[k] == "." then return op_expr_error(c, k + 1) end
  end
  return nil
end

--- The message and details of a logic tree's value v (`or=v`, the key
-- `kind`, "not.or" included) that PostgREST does not parse, or nil.
function M.logic(kind, v)
  local c = chars_of(kind .. v)
  local first = #chars_of(kind) + 2
  local e
  if c[first - 1] == "(" and c[first] == ")" then
    e = err(first, shown(c, first), "field name (* or [a..z0..9_$])")
    e.exp[2], e.exp[3] = "negation operator (not)", "logic operator (and, or)"
  elseif c[first - 1] == "(" then
    e = logic_children_error(c, first)
  end
  if not e then return nil end
  return answer("failed to parse logic tree (" .. v .. ")", c, e)
end

local DIRS, NULLS = { "asc", "desc" }, { "nullsfirst", "nullslast" }

-- Past a term's end at i: a comma or the end, or the error (Parsec's
-- lookAhead "," or eof, with what else could have come).
local function term_end(c, i, also)
  if not c[i] or c[i] == "," then return nil end
  local e = err(i, shown(c, i), '","', hs_show(c[i], "'"))
  e.exp[2] = "end of input"
  if also then table.insert(e.exp, 1, also) end
  return e
end

-- The modifiers of the order term whose field ends at i.
local function order_term_error(c, i)
  if c[i] ~= "." then return false end
  local j, e = one_of(c, i + 1, DIRS)
  if not j then
    local j2, e2 = one_of(c, i + 1, NULLS)
    if not j2 then return merge(e, e2) end
    return term_end(c, j2)
  end
  if c[j] ~= "." then return term_end(c, j, "delimiter (.)") end
  local k, e3 = one_of(c, j + 1, NULLS)
  if not k then return e3 end
  return term_end(c, k)
end

--- The message and details of an order= value v PostgREST does not parse
-- (a term's modifiers), or nil.
function M.order(v)
  local c = chars_of(v)
  local i = 1
  while c[i] do
    local field_end = i
    while c[field_end] and c[field_end] ~= "." and c[field_end] ~= "," do field_end = field_end + 1 end
    local e = order_term_error(c, field_end)
    if e == false then
      if c[field_end] then i = field_end + 1 else break end
    elseif e then
      return answer("failed to parse order (" .. v .. ")", c, e)
    else
      while c[i] and c[i] ~= "," do i = i + 1 end
      i = i + 1
    end
  end
  return nil
end

local AFTER_NAME = { "letter", "digit", '"-"', '"->>"', '"->"', '"::"', '"."', '")"', '","', "end of input" }
local AFTER_STAR = { '")"', '","', "end of input" }

local function identifier(ch) return ch ~= nil and (ch:match("^[%w_ $]$") ~= nil or #ch > 1) end

-- Whether the "!" at k starts an embed's hint or join (a "(" follows in
-- the same item), not garbage after a column name.
local function embed_bang(c, k)
  for m = k + 1, #c do
    if c[m] == "(" then return true end
    if c[m] == "," or c[m] == ")" then return false end
  end
  return false
end

local JSON_RESERVED = "(-:.,>)"

-- The first place in select= text c where PostgREST's pFieldSelect fails,
-- for the common mistakes: a character no column name holds after a name
-- or `*`, a reserved character or nothing as a JSON key, a JSON index that
-- is no number ("->>-x"), nothing after "::"; or nil.
local function select_token_error(c)
  local quoted, json = false, false
  local k = 1
  while c[k] do
    local ch = c[k]
    if quoted then quoted = ch ~= '"'
    elseif json and not JSON_RESERVED:find(ch, 1, true) then -- inside a JSON key: anything goes
    elseif ch == '"' then quoted = true
    elseif ch == "-" and c[k + 1] == ">" then
      k = k + (c[k + 2] == ">" and 3 or 2) -- at the key or index
      json = true
      if c[k] == "-" then
        if not (c[k + 1] or ""):match("^%d$") then return err(k + 1, shown(c, k + 1), "digit") end
      elseif not c[k] or JSON_RESERVED:find(c[k], 1, true) then
        local e = err(k, shown(c, k), '"-"')
        e.exp[2], e.exp[3] = "digit", "any non reserved character different from: .,>()"
        return e
      end
      k = k - 1
    elseif ch == ":" and c[k + 1] == ":" then
      json = false
      if not identifier(c[k + 2]) then
        local e = err(k + 2, shown(c, k + 2), "letter")
        e.exp[2] = "digit"
        return e
      end
      k = k + 1
    else
      json = false
      local odd = not (identifier(ch) or (",()*:.-"):find(ch, 1, true)) and not (ch == "!" and embed_bang(c, k))
      if odd and (identifier(c[k - 1]) or c[k - 1] == "*") then
        local e = err(k, shown(c, k), nil, hs_show(ch, "'"))
        e.exp = c[k - 1] == "*" and AFTER_STAR or AFTER_NAME
        return e
      end
    end
    k = k + 1
  end
  return nil
end

--- The message and details of a select= value v PostgREST does not parse:
-- a character after a column name or `*` no name holds, a JSON index that
-- is no number, parentheses not closed where it ends; or nil.
function M.select(v)
  local c = chars_of(v)
  local te = select_token_error(c)
  if te then return answer("failed to parse select parameter (" .. v .. ")", c, te) end
  local depth, quoted = 0, false
  for _, ch in ipairs(c) do
    if quoted then quoted = ch ~= '"'
    elseif ch == '"' then quoted = true
    elseif ch == "(" then depth = depth + 1
    elseif ch == ")" then depth = depth - 1 end
    if depth < 0 then return nil end
  end
  if depth == 0 or quoted then return nil end
  local last = c[#c]
  local e
  if last == "*" then
    e = err(#c + 1, "", '")"')
    e.exp = { '")"', '","', "end of input" }
  elseif last and last:match("^[%w_]$") then
    e = err(#c + 1, "", "letter")
    e.exp = { "letter", "digit", '"-"', '"->>"', '"->"', '"::"', '"."', '")"', '","', "end of input" }
  else
    return nil
  end
  return answer("failed to parse select parameter (" .. v .. ")", c, e)
end

--- The message and details of a columns= (or on_conflict=, `param`) value
-- v PostgREST does not parse: the empty one, or nil.
function M.columns(param, v)
  if v ~= "" then return nil end
  return answer("failed to parse " .. param .. " parameter ()", {},
    err(1, "", "field name (* or [a..z0..9_$])"))
end

return M
