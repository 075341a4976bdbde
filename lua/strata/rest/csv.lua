-- strata.rest.csv: text/csv answers (Accept: text/csv), built by PostgreSQL
-- in the same statement as the JSON would be, never row by row in Lua.  A
-- header line of the column names, then one line per row (RFC 4180: a
-- field holding a comma, a quote or a line break is quoted, quotes doubled;
-- NULL is an empty field, the empty string "").  Values are PostgreSQL's
-- text output (arrays as {a,b}, timestamps as 2024-01-02 03:04:05+00).
-- A POST body in text/csv is decoded here into the objects of a bulk
-- insert (strings; NULL is null), which then take the JSON path.

local cjson = require("cjson")
local sqlmod = require("strata.rest.sql")

local concat, ipairs, gsub, find, sub = table.concat, ipairs, string.gsub, string.find, string.sub

local M = {}

local function quote(s)
  if s == "" or find(s, '[,"\r\n]') then return '"' .. gsub(s, '"', '""') .. '"' end
  return s
end

--- The output column names of a select list (grammar.select items) that
-- builder b turned into SQL, named as its select_list names them: hidden
-- columns of `*` and empty embeds left out as it leaves them out.
function M.names(b, items)
  local out = {}
  for _, it in ipairs(items) do
    if it.star then
      for _, c in ipairs(b.t.column_list) do
        if not (b.hidden and b.hidden[c.name]) then out[#out + 1] = c.name end
      end
    elseif it.embed then
      -- strata.rest.embed's output columns: none for name(), several for a spread.
      for _, c in ipairs(b.embed_columns and b.embed_columns[it] or {}) do out[#out + 1] = c[2] end
    else
      out[#out + 1] = it.alias or (it.path and #it.path > 0 and it.path[#it.path].key) or it.name
    end
  end
  return out
end

--- The header line for names (no line break).
function M.header(names)
  local out = {}
  for i, n in ipairs(names) do out[i] = quote(n) end
  return concat(out, ",")
end

-- One field of row alias `s`, as CSV text; never NULL (concat_ws skips NULLs).
local function field(alias, name)
  local v = alias .. "." .. sqlmod.qi(name) .. "::text"
  return "CASE WHEN " .. v .. " IS NULL THEN '' WHEN " .. v .. " = '' OR " .. v .. [[ ~ '[",\r\n]' THEN '"' || replace(]]
    .. v .. [[, '"', '""') || '"' ELSE ]] .. v .. " END"
end

--- An aggregate over rows `alias` (columns `names`) answering the CSV text:
-- header_param (a placeholder holding M.header(names)), a line break, the rows.
function M.aggregate(alias, names, header_param)
  local fields = {}
  for i, n in ipairs(names) do fields[i] = field(alias, n) end
  local line = #fields > 0 and ("concat_ws(','," .. concat(fields, ", ") .. ")") or "''"
  return "(" .. header_param .. "::text || chr(10) || coalesce(string_agg(" .. line .. ", chr(10)), ''))"
end

-- The fields of RFC 4180 text, record by record: a list of lists of
-- { text, quoted }; nil, message for an unterminated quote.
local function records(text)
  local out, rec, i, n, c = {}, {}, 1, #text, nil
  while i <= n do
    local value, quoted
    if sub(text, i, i) == '"' then
      local parts, j = {}, i + 1
      while true do
        local q = find(text, '"', j, true)
        if not q then return nil, "a quoted field is never closed" end
        parts[#parts + 1] = sub(text, j, q - 1)
        if sub(text, q + 1, q + 1) ~= '"' then i = q + 1; break end
        parts[#parts + 1] = '"'
        j = q + 2
      end
      value, quoted = concat(parts), true
    else
      local e = find(text, "[,\r\n]", i) or n + 1
      value, quoted, i = sub(text, i, e - 1), false, e
    end
    rec[#rec + 1] = { value, quoted }
    c = sub(text, i, i)
    if c == "\r" then i = i + 1; c = sub(text, i, i) end
    i = i + 1
    if c ~= "," then out[#out + 1] = rec; rec = {} end
  end
  if c == "," then rec[#rec + 1] = { "", false } end -- the text ends in an empty field
  if #rec > 0 then out[#out + 1] = rec end
  return out
end

--- A text/csv request body as the objects of a bulk insert: a header line
-- of column names, then one line per row; an empty field is the empty
-- string and an unquoted NULL is SQL NULL (PostgREST's rules).  nil,
-- message when it does not parse.
function M.decode(text)
  local recs, err = records(text)
  if not recs then return nil, err end
  local header = table.remove(recs, 1)
  if not header then return nil, "no header line" end
  local rows = {}
  for r, rec in ipairs(recs) do
    if #rec ~= #header then return nil, ("line %d has %d fields, the header %d"):format(r + 1, #rec, #header) end
    local obj = {}
    for k, f in ipairs(rec) do
      obj[header[k][1]] = (f[1] == "NULL" and not f[2]) and cjson.null or f[1]
    end
    rows[r] = obj
  end
  return rows
end

return M
