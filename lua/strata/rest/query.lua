-- strata.rest.query: the query parameters of a request as the table
-- handlers, RPC and embedding read them: which keys are filters, repeated
-- parameters, the integer ones, and a filter parameter parsed (by
-- strata.rest.grammar) or refused with PostgREST's 400 PGRST100.

local grammar = require("strata.rest.grammar")
local parse_error = require("strata.rest.parse_error")
local raise = require("strata.rest.errors").raise

local format, tostring, tonumber, type = string.format, tostring, tonumber, type

local M = {}

--- The parameters that are not filters (or= and and= are: M.LOGIC).
M.RESERVED = { select = true, order = true, limit = true, offset = true, columns = true, on_conflict = true }

--- The keys of logic trees, which may repeat (each is a filter).
M.LOGIC = { ["or"] = true, ["and"] = true, ["not.or"] = true, ["not.and"] = true }

local LOGIC = M.LOGIC

--- A parameter's values: a repeated one is a list already, a single one
-- becomes a list of one.
function M.values_of(v)
  if type(v) == "table" then return v end
  return { v }
end

--- The non-negative integer of text v, or a 400 PGRST100 naming it as
-- `name`.  1e999 passes a floor test but has no integer: OFFSET NULL then
-- answered the first page where the client asked past the end.
function M.count(v, name)
  local n = tonumber(v)
  n = n and n >= 0 and math.tointeger(n)
  if not n then raise(400, "PGRST100", format("%s must be a non-negative integer, not '%s'", name, tostring(v))) end
  return n
end

--- The non-negative integer parameter q[name], or nil when absent.
function M.int_param(q, name)
  local v = q[name]
  if v == nil then return nil end
  return M.count(v, name)
end

--- limit and offset from the query and the Range header (call.range),
-- capped by max_rows.
function M.window(call, q, max_rows)
  local limit, offset = M.int_param(q, "limit"), M.int_param(q, "offset") or 0
  local range = call.range
  if range then
    local a, b = range:match("^%s*(%d+)%-(%d*)%s*$")
    if not a then raise(416, "PGRST103", "Requested range not satisfiable", "bad Range header: " .. range) end
    a, b = tonumber(a), tonumber(b)
    if b and b < a then raise(416, "PGRST103", "Requested range not satisfiable", "the range ends before it starts") end
    offset = offset + a
    if b then limit = math.min(limit or math.huge, b - a + 1) end
  end
  limit = math.min(limit or max_rows, max_rows)
  return math.tointeger(limit), math.tointeger(offset)
end

--- The parsed filter or logic tree of parameter key=value; raw, when given,
-- is the parameter as the client wrote it (an embedded resource's,
-- "Message_v2.or"), which the error then names for either kind.
function M.filter_node(key, value, raw)
  local node, err
  if LOGIC[key] then
    node, err = grammar.logic((key:gsub("^not%.", "")), value, key:sub(1, 4) == "not.")
  else
    node, err = grammar.filter(key, value)
  end
  if node then return node end
  -- PostgREST's words when its parser fails there too; else strata's.
  local message, details
  if type(value) ~= "string" then -- nothing PostgREST would word
  elseif LOGIC[key] then message, details = parse_error.logic(key, value)
  else message, details = parse_error.filter(value) end
  if message then raise(400, "PGRST100", message, details) end
  if raw then raise(400, "PGRST100", format("failed to parse filter (%s=%s)", raw, value), err) end
  if LOGIC[key] then raise(400, "PGRST100", "failed to parse logic tree (" .. value .. ")", err) end
  raise(400, "PGRST100", "failed to parse filter (" .. key .. "=" .. tostring(value) .. ")", err)
end

--- The parsed select= text, or 400 PGRST100 (PostgREST's words where known).
function M.select(text)
  local items, err = grammar.select(text)
  if items then return items end
  local message, details = parse_error.select(text or "")
  raise(400, "PGRST100", message or ("failed to parse select parameter (" .. tostring(text) .. ")"), details or err)
end

--- The parsed order= text (raw: the embedded resource's parameter name,
-- "Message_v2.order"), or 400 PGRST100 as M.select.
function M.order(text, raw)
  local list, err = grammar.order(text)
  if list then return list end
  local message, details = parse_error.order(text)
  raise(400, "PGRST100", message or format("failed to parse order (%s)", raw and (raw .. "=" .. text) or text),
    details or err)
end

--- The column names of columns= or on_conflict= (param), or 400 PGRST100.
function M.columns(param, text)
  local names, err = grammar.columns(text)
  if names then return names end
  local message, details = parse_error.columns(param, text)
  raise(400, "PGRST100", message or format("failed to parse %s parameter (%s)", param, text), details or err)
end

return M
