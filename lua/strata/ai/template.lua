-- strata.ai.template: the {{name}} templates of prompts (seed 001).  Pure:
-- no I/O, so the renderer's rules are unit-tested alone.
--
--   template.parse(text)          -> parts | nil, err   (err: message, offset, line, column)
--   template.names(messages)      -> names (in order of appearance), set | nil, err (+ err.message_index)
--   template.fill(messages, vals) -> rendered messages, missing names
--
-- A placeholder is "{{", optional blanks, a name (a letter or "_", then
-- letters, digits, "_", "-" or "."), optional blanks, "}}".  Anything else
-- after "{{" is a syntax error at the position of that "{{": a template
-- that does not parse is refused, never sent half-filled.  A single "{" or
-- "}" is text (prompts hold JSON examples).

local find, sub, concat = string.find, string.sub, table.concat
local type, ipairs = type, ipairs

local M = {}

-- The 1-based line and column of byte offset `at` of `text`.
local function position(text, at)
  local line, col_start = 1, 1
  local i = 1
  while true do
    local nl = find(text, "\n", i, true)
    if not nl or nl >= at then break end
    line, col_start, i = line + 1, nl + 1, nl + 1
  end
  return line, at - col_start + 1
end

local function syntax_error(text, at, why)
  local line, column = position(text, at)
  return nil, { message = ("%s at line %d, column %d"):format(why, line, column), offset = at, line = line,
    column = column }
end

--- The parts of `text`: strings (literal text) and { name = ..., offset = ... }.
function M.parse(text)
  local parts, i = {}, 1
  while true do
    local open = find(text, "{{", i, true)
    if not open then
      if i <= #text then parts[#parts + 1] = sub(text, i) end
      return parts
    end
    if open > i then parts[#parts + 1] = sub(text, i, open - 1) end
    local close = find(text, "}}", open + 2, true)
    if not close then return syntax_error(text, open, "unclosed {{") end
    local inner = sub(text, open + 2, close - 1)
    local name = inner:match("^%s*([%a_][%w_%.%-]*)%s*$")
    if not name then
      if find(inner, "{{", 1, true) then return syntax_error(text, open, "unclosed {{") end
      if inner:match("^%s*$") then return syntax_error(text, open, "empty placeholder {{}}") end
      return syntax_error(text, open, ("invalid variable name %q"):format(inner))
    end
    parts[#parts + 1] = { name = name, offset = open }
    i = close + 2
  end
end

-- The parsed parts of each message's content.
local function parse_all(messages)
  local parsed = {}
  for i, m in ipairs(messages) do
    local parts, err = M.parse(m.content)
    if not parts then
      err.message_index = i
      err.message = ("messages[%d].content: %s"):format(i, err.message)
      return nil, err
    end
    parsed[i] = parts
  end
  return parsed
end

--- Every name the messages use, in order of first appearance, and as a set.
function M.names(messages)
  local parsed, err = parse_all(messages)
  if not parsed then return nil, err end
  local list, set = {}, {}
  for _, parts in ipairs(parsed) do
    for _, p in ipairs(parts) do
      if type(p) == "table" and not set[p.name] then
        set[p.name] = true
        list[#list + 1] = p.name
      end
    end
  end
  return list, set
end

--- The messages with each {{name}} replaced by values[name] (a string); a
-- name without a value stays as written and is listed in `missing`.
-- The messages must have parsed (M.names) before.
function M.fill(messages, values)
  local parsed = assert(parse_all(messages))
  local out, missing, seen = {}, {}, {}
  for i, m in ipairs(messages) do
    local buf = {}
    for j, p in ipairs(parsed[i]) do
      if type(p) == "string" then
        buf[j] = p
      else
        local v = values[p.name]
        if v == nil then
          buf[j] = "{{" .. p.name .. "}}"
          if not seen[p.name] then seen[p.name] = true; missing[#missing + 1] = p.name end
        else
          buf[j] = v
        end
      end
    end
    out[i] = { role = m.role, content = concat(buf) }
  end
  return out, missing
end

return M
