-- strata.ai.json: JSON answers whose empty lists stay lists.  lua-cjson
-- 2.1 encodes every empty table as {}; a list marked with json.array()
-- is sent as [] when empty.
--
--   json.array(t)             -> t, marked
--   json.encode(value)        -> text
--   json.answer(status, value[, headers]) -> status, text, headers (what a handler returns)

local cjson = require("cjson")

local type, pairs, next, getmetatable, setmetatable = type, pairs, next, getmetatable, setmetatable

local M = {}

local ARRAY = {}
-- What an empty marked list is encoded as before the text is patched:
-- a string no caller sends (cjson writes \1 as \u0001).
local MARK, MARK_PATTERN = "\1[]\1", '"\\u0001%[%]\\u0001"'

function M.array(t)
  return setmetatable(t or {}, ARRAY)
end

-- A copy of v with the empty marked lists replaced by MARK; v itself when
-- nothing in it is marked and empty.
local function marked(v, depth)
  if type(v) ~= "table" or depth > 64 then return v end
  if getmetatable(v) == ARRAY and next(v) == nil then return MARK end
  local out
  for k, x in pairs(v) do
    local y = marked(x, depth + 1)
    if y ~= x then
      if not out then out = {}; for k2, x2 in pairs(v) do out[k2] = x2 end end
      out[k] = y
    end
  end
  return out or v
end

function M.encode(value)
  local text = cjson.encode(marked(value, 0))
  return (text:gsub(MARK_PATTERN, "[]"))
end

function M.answer(status, value, headers)
  headers = headers or {}
  headers["Content-Type"] = "application/json"
  return status, M.encode(value), headers
end

return M
