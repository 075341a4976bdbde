-- strata.schema: small declarative schemas for validators (lua/validators/),
-- in the spirit of Kong's schemas.  A schema describes one value:
--
--   local S = require("strata.schema")
--   local rate = { type = "record", required = true,
--     fields = {
--       { perMinute = { type = "integer", required = true, gt = 0 } },
--       { perHour   = { type = "integer", required = true, gt = 0 } },
--     },
--     checks = { S.ordered({ "perMinute", "perHour" }) },
--   }
--   S.validate(rate, value)  -> true | nil, { { path = "/perHour", message = "..." }, ... }
--
-- Every failure is collected (not only the first); paths are JSON pointers
-- ("" is the value itself, "/rateLimit/perHour", "/tools/0").
--
-- Field attributes:
--   type        "string" "boolean" "number" "integer" "numeric" (a number or a
--               decimal string) "record" (object with known fields) "map"
--               (object with arbitrary keys) "array" "any"
--   required    absent (nil) or JSON null is an error; default = v makes a
--               field optional (the value is never modified)
--   one_of      list of allowed values (alias: enum)
--   gt ge lt le between = { lo, hi }   numeric bounds (numbers, integers, numeric)
--   len_min len_max                    characters of a string, elements of an
--                                      array, entries of a record or map
--   pattern     a Lua pattern strings must match (anchor it yourself)
--   elements    schema of each array element;  unique = true: no duplicates
--   fields      records: ordered list of { name = schema } (or a name -> schema
--               map, checked in name order);  strict = true: unknown keys fail
--   keys, values  maps: schema of each key (a string) and of each value
--   custom      f(value, ctx, report) -> true | nil, message; report(rel, msg)
--               adds a failure under this value (rel: nil, a key, a list of
--               keys or a JSON pointer "/a/0")
--   checks      records: cross-field checks, each f(record, ctx, report) or
--               { fields = { names }, check = f }; see ordered / member_of
--   msg         replaces the messages of this field's own rules
--
-- A value is checked in this order: null/required, type, one_of, bounds,
-- length, pattern, nested (elements, fields, keys/values), custom, checks.
-- A wrong type stops that value's other rules.  custom runs only when the
-- value had no failure; a check with `fields` runs when those fields are
-- present and valid, a plain check function when the whole record is valid.
--
-- Options: S.validate(spec, value, { partial = true, ctx = any }).  partial
-- is for PATCH: absent top-level fields are not required, and top-level
-- checks run only when every field they name is present (plain check
-- functions are skipped at the top level).  Nested records that are present
-- are checked in full, since a PATCH replaces a column's whole value.

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local format, concat, sort, floor = string.format, table.concat, table.sort, math.floor

local M = {}

local cjson_ok, cjson = pcall(require, "cjson")
local NULL = cjson_ok and cjson.null or nil
local ARRAY_MT = cjson_ok and cjson.array_mt or nil

M.null = NULL

local function is_null(v) return v == nil or (NULL ~= nil and v == NULL) end
M.is_null = is_null

--- "a/b~c" -> "a~1b~0c" (RFC 6901).
local function escape(key)
  return (tostring(key):gsub("~", "~0"):gsub("/", "~1"))
end

local function join(path, key)
  return path .. "/" .. escape(key)
end
M.join = join

--- The JSON type of a decoded value: null, boolean, number, string, array,
-- object, "empty" (an empty table: cjson decodes {} and [] alike) or the Lua
-- type for anything else (a table mixing both kinds of keys is "table").
local function json_type(v)
  if is_null(v) then return "null" end
  local t = type(v)
  if t ~= "table" then return t end
  if ARRAY_MT and getmetatable(v) == ARRAY_MT then return "array" end
  local count, strings = 0, 0
  for k in pairs(v) do
    count = count + 1
    if type(k) == "string" then strings = strings + 1 end
  end
  if count == 0 then return "empty" end
  if strings == count then return "object" end
  if strings == 0 then
    for i = 1, count do
      if v[i] == nil then return "table" end
    end
    return "array"
  end
  return "table"
end
M.json_type = json_type

local function finite(v) return v == v and v ~= math.huge and v ~= -math.huge end

local function numeric_string(v)
  if type(v) ~= "string" then return false end
  local s = v:match("^%s*(.-)%s*$")
  if not (s:match("^[+-]?%d+%.?%d*$") or s:match("^[+-]?%.%d+$")
          or s:match("^[+-]?%d+%.?%d*[eE][+-]?%d+$") or s:match("^[+-]?%.%d+[eE][+-]?%d+$")) then
    return false
  end
  local n = tonumber(s)
  return n ~= nil and finite(n)
end

local TYPES = {
  string = { "a string", function(v) return type(v) == "string" end },
  boolean = { "a boolean", function(v) return type(v) == "boolean" end },
  number = { "a number", function(v) return type(v) == "number" and finite(v) end },
  integer = { "an integer", function(v) return type(v) == "number" and finite(v) and v == floor(v) end },
  numeric = { "a number or a decimal string", function(v)
    return (type(v) == "number" and finite(v)) or numeric_string(v)
  end },
  record = { "an object", function(v) local j = json_type(v); return j == "object" or j == "empty" end },
  map = { "an object", function(v) local j = json_type(v); return j == "object" or j == "empty" end },
  array = { "an array", function(v) local j = json_type(v); return j == "array" or j == "empty" end },
  any = { "a value", function() return true end },
}
M.types = TYPES

local function show_number(n)
  if type(n) == "number" and n == floor(n) and n > -1e15 and n < 1e15 then return format("%d", n) end
  return format("%.14g", n)
end

local function show(v)
  if type(v) == "string" then return "'" .. v .. "'" end
  if type(v) == "number" then return show_number(v) end
  return tostring(v)
end

local function list_of(values)
  local out = {}
  for i, v in ipairs(values) do out[i] = tostring(v) end
  return concat(out, ", ")
end

-- Field lists: { { name = spec }, ... } or { name = spec, ... } -> ordered
-- list of { name, spec }, cached per table.
local normalized = setmetatable({}, { __mode = "k" })
local function field_list(fields)
  local list = normalized[fields]
  if list then return list end
  list = {}
  if fields[1] ~= nil then
    for i, entry in ipairs(fields) do
      local name, spec = next(entry)
      if type(name) ~= "string" or type(spec) ~= "table" or next(entry, name) ~= nil then
        error(format("schema: field %d must be a table { name = schema }", i), 3)
      end
      list[#list + 1] = { name, spec }
    end
  else
    local names = {}
    for name in pairs(fields) do names[#names + 1] = name end
    sort(names)
    for _, name in ipairs(names) do list[#list + 1] = { name, fields[name] } end
  end
  normalized[fields] = list
  return list
end
M.field_list = field_list

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

local function add(errs, path, message)
  errs[#errs + 1] = { path = path, message = message }
end

-- A reporter for custom functions and checks: report(rel, message), rel a
-- key, a list of keys, a JSON pointer ("/a/0") or nil (the value itself).
local function reporter(errs, path)
  return function(rel, message)
    local p = path
    if type(rel) == "string" and rel:sub(1, 1) == "/" then
      p = path .. rel
    elseif type(rel) == "table" then
      for _, k in ipairs(rel) do p = join(p, k) end
    elseif rel ~= nil then
      p = join(p, rel)
    end
    add(errs, p, tostring(message))
  end
end

local function length_of(v, kind)
  if kind == "string" then return utf8.len(v) or #v end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  return n
end

local LENGTH_UNIT = { string = { "character", "characters" }, array = { "element", "elements" },
  object = { "entry", "entries" } }

local check_value

-- Check lists may nest lists (S.ordered returns one): flattened, cached.
local flat_checks = setmetatable({}, { __mode = "k" })
local NO_CHECKS = {}
local function check_list(checks)
  if not checks then return NO_CHECKS end
  local list = flat_checks[checks]
  if list then return list end
  list = {}
  local function walk(t)
    for _, c in ipairs(t) do
      if type(c) == "table" and c.check == nil then walk(c) else list[#list + 1] = c end
    end
  end
  walk(checks)
  flat_checks[checks] = list
  return list
end

-- Checks the fields of a record at `path`.
local function check_record(spec, v, path, errs, opts, top)
  local partial = top and opts.partial
  local valid, present = {}, {}
  local before_all = #errs
  for _, f in ipairs(field_list(spec.fields or {})) do
    local name, fspec = f[1], f[2]
    local fv = v[name]
    local fpath = join(path, name)
    local before = #errs
    if is_null(fv) then
      if fspec.required and fspec.default == nil and not (partial and fv == nil) then
        add(errs, fpath, fv == nil and "is required" or "must not be null")
      end
    else
      present[name] = true
      check_value(fspec, fv, fpath, errs, opts)
    end
    valid[name] = #errs == before
  end
  if spec.strict then
    local known = {}
    for _, f in ipairs(field_list(spec.fields or {})) do known[f[1]] = true end
    for _, k in ipairs(sorted_keys(v)) do
      if not known[k] then add(errs, join(path, k), "unknown field") end
    end
  end
  for _, c in ipairs(check_list(spec.checks)) do
    local fn, names = c, nil
    if type(c) == "table" then fn, names = c.check, c.fields end
    local run
    if names then
      run = true
      for _, n in ipairs(names) do
        if not present[n] or not valid[n] then run = false break end
      end
    else
      run = not partial and #errs == before_all
    end
    if run then
      local before = #errs
      local ok, message, field = fn(v, opts.ctx, reporter(errs, path))
      if not ok and (message ~= nil or #errs == before) then
        add(errs, field ~= nil and join(path, field) or path, tostring(message or "is invalid"))
      end
    end
  end
end

-- Checks one present (non-null) value against spec; failures go to errs.
function check_value(spec, v, path, errs, opts, top)
  local own = spec.msg
  local kind = spec.type or "any"
  local t = TYPES[kind]
  if not t then error(format("schema: unknown type '%s' at %s", tostring(kind), path ~= "" and path or "the top"), 0) end
  if not t[2](v) then
    local got = json_type(v)
    if got == "empty" then
      got = "an empty object"
    elseif got == "number" or got == "boolean" then
      got = show(v)
    elseif got == "string" then
      got = "a string"
    elseif got == "array" or got == "object" then
      got = "an " .. got
    end
    add(errs, path, own or format("expected %s, got %s", t[1], got))
    return
  end
  local before = #errs
  local one_of = spec.one_of or spec.enum
  if one_of then
    local found = false
    for _, allowed in ipairs(one_of) do
      if allowed == v then found = true break end
    end
    if not found then
      add(errs, path, own or format("must be one of %s (got %s)", list_of(one_of), show(v)))
    end
  end
  local n = (kind == "numeric" and type(v) == "string") and tonumber((v:match("^%s*(.-)%s*$"))) or v
  if type(n) == "number" then
    if spec.gt ~= nil and not (n > spec.gt) then add(errs, path, own or ("must be greater than " .. show_number(spec.gt))) end
    if spec.ge ~= nil and not (n >= spec.ge) then add(errs, path, own or ("must be at least " .. show_number(spec.ge))) end
    if spec.lt ~= nil and not (n < spec.lt) then add(errs, path, own or ("must be less than " .. show_number(spec.lt))) end
    if spec.le ~= nil and not (n <= spec.le) then add(errs, path, own or ("must be at most " .. show_number(spec.le))) end
    local b = spec.between
    if b and not (n >= b[1] and n <= b[2]) then
      add(errs, path, own or format("must be between %s and %s", show_number(b[1]), show_number(b[2])))
    end
  end
  if spec.len_min or spec.len_max then
    local lk = type(v) == "string" and "string" or ((kind == "array" or json_type(v) == "array") and "array" or "object")
    if type(v) == "string" or type(v) == "table" then
      local len = length_of(v, lk)
      local unit = LENGTH_UNIT[lk]
      if spec.len_min and len < spec.len_min then
        add(errs, path, own or format("must have at least %d %s", spec.len_min, unit[spec.len_min == 1 and 1 or 2]))
      end
      if spec.len_max and len > spec.len_max then
        add(errs, path, own or format("must have at most %d %s", spec.len_max, unit[spec.len_max == 1 and 1 or 2]))
      end
    end
  end
  if spec.pattern and type(v) == "string" and not v:find(spec.pattern) then
    add(errs, path, own or format("does not have the expected format (Lua pattern %s)", spec.pattern))
  end
  if kind == "array" then
    local seen = {}
    for i, e in ipairs(v) do
      local epath = join(path, i - 1)
      if is_null(e) then
        if spec.elements then add(errs, epath, "must not be null") end
      else
        if spec.elements then check_value(spec.elements, e, epath, errs, opts) end
        if spec.unique and type(e) ~= "table" then
          if seen[e] then
            add(errs, epath, format("duplicate of element %d", seen[e] - 1))
          else
            seen[e] = i
          end
        end
      end
    end
  elseif kind == "record" then
    check_record(spec, v, path, errs, opts, top)
  elseif kind == "map" then
    for _, k in ipairs(sorted_keys(v)) do
      local kpath = join(path, k)
      if spec.keys then
        local kerrs = {}
        check_value(spec.keys, k, kpath, kerrs, opts)
        for _, e in ipairs(kerrs) do add(errs, e.path, "key " .. e.message) end
      end
      local e = v[k]
      if spec.values then
        if is_null(e) then
          add(errs, kpath, "must not be null")
        else
          check_value(spec.values, e, kpath, errs, opts)
        end
      end
    end
  end
  if spec.custom and #errs == before then
    local ok, message = spec.custom(v, opts.ctx, reporter(errs, path))
    if not ok and (message ~= nil or #errs == before) then add(errs, path, own or tostring(message or "is invalid")) end
  end
end

--- Checks `value` against `spec`.  Returns true, or nil and the list of
-- failures { path = <JSON pointer>, message = <text> } in document order.
-- opts: { partial = true (PATCH: absent top-level fields are fine),
--         ctx = passed to custom functions and checks }.
function M.validate(spec, value, opts)
  opts = opts or {}
  local errs = {}
  if is_null(value) then
    if spec.required ~= false then add(errs, "", value == nil and "is required" or "must not be null") end
  else
    check_value(spec, value, "", errs, opts, true)
  end
  if #errs == 0 then return true end
  return nil, errs
end

--- Prefixes every failure's path with `path` (a JSON pointer); returns errs.
function M.prefix(errs, path)
  for _, e in ipairs(errs or {}) do e.path = path .. e.path end
  return errs
end

--- A validator module from a schema: { validate = f(value, ctx) }, where
-- ctx.partial selects the partial mode.
function M.validator(spec, examples)
  return {
    validate = function(value, ctx)
      return M.validate(spec, value, { partial = ctx and ctx.partial, ctx = ctx })
    end,
    examples = examples,
  }
end

--- A copy of a field list with `more` appended; a name already in `base`
-- is replaced in place (so an optional field can be made required).
function M.extend(base, more)
  local out, index = {}, {}
  for _, f in ipairs(field_list(base)) do
    out[#out + 1] = { [f[1]] = f[2] }
    index[f[1]] = #out
  end
  for _, f in ipairs(field_list(more or {})) do
    if index[f[1]] then
      out[index[f[1]]] = { [f[1]] = f[2] }
    else
      out[#out + 1] = { [f[1]] = f[2] }
      index[f[1]] = #out
    end
  end
  return out
end

--- A copy of spec with the given attributes changed (shallow).
function M.with(spec, changes)
  local out = {}
  for k, v in pairs(spec) do out[k] = v end
  for k, v in pairs(changes) do out[k] = v end
  return out
end

--- Checks (a list, usable as one entry of `checks`): names[1] <= names[2]
-- <= ... (numbers); a failure is reported at the later field of each
-- adjacent pair out of order.
function M.ordered(names)
  local out = {}
  for i = 2, #names do
    local a, b = names[i - 1], names[i]
    out[#out + 1] = { fields = { a, b }, check = function(rec)
      if type(rec[a]) == "number" and type(rec[b]) == "number" and rec[a] > rec[b] then
        return nil, format("must be at least %s (%s)", a, show_number(rec[a])), b
      end
      return true
    end }
  end
  return out
end

--- Check: the value of field `name` is one of the elements of the array in
-- field `list_name`.
function M.member_of(name, list_name)
  return { fields = { name, list_name }, check = function(rec)
    for _, x in ipairs(rec[list_name]) do
      if x == rec[name] then return true end
    end
    return nil, format("must be one of %s (%s)", list_name, list_of(rec[list_name])), name
  end }
end

-- Running lua/validators/<name>.lua on the rows of a write ----------------

local function log_error(message, fields)
  local ok, log = pcall(require, "strata.log")
  if ok and type(log) == "table" and log.error then log.error(message, fields) end
end

-- Only the validator's own absence: a validator that requires a missing
-- module has failed to load, and refuses writes.
local function missing_module(name, err)
  return tostring(err):find("module 'validators." .. name .. "' not found", 1, true) ~= nil
end

-- Names whose validator module does not exist, per Lua state (a reload
-- builds a new state, so a validator added later is found).
local absent = {}

--- Whether validators.<name> exists, loading or not (a dotted name is a
-- file in a folder: "agentflow.events" is validators/agentflow/events.lua).
function M.has_validator(name)
  if absent[name] then return false end
  local ok, err = pcall(require, "validators." .. name)
  if not ok and missing_module(name, err) then
    absent[name] = true
    return false
  end
  return true
end

--- Runs validators.<name> (if there is one) on each row.  Returns nil when
-- there is no validator or every row passes; else a refusal
-- { file = ..., errors = { {path, message}, ... }, failed = true when the
-- validator itself failed (it raised, could not load or answered nonsense:
-- the write is refused all the same) }.  With `indexed`, paths start with
-- the row's index in the payload ("/0/config_key").
function M.check_rows(name, rows, ctx, indexed)
  local file = "validators/" .. name:gsub("%.", "/") .. ".lua"
  local ok, mod = pcall(require, "validators." .. name)
  if not ok then
    if missing_module(name, mod) then absent[name] = true; return nil end
    log_error("validator failed to load; refusing the write", { file = file, error = tostring(mod) })
    return { file = file, failed = true, errors = {} }
  end
  if type(mod) ~= "table" or type(mod.validate) ~= "function" then
    log_error("validator has no validate function; refusing the write", { file = file })
    return { file = file, failed = true, errors = {} }
  end
  local out = {}
  for i, row in ipairs(rows) do
    local prefix = indexed and ("/" .. (i - 1)) or ""
    local called, res, errs = pcall(mod.validate, row, ctx)
    if not called then
      log_error("validator raised; refusing the write", { file = file, row = i - 1, error = tostring(res) })
      return { file = file, failed = true, errors = {} }
    end
    if res ~= true then
      if res ~= nil or type(errs) ~= "table" or errs[1] == nil then
        log_error("validator answered neither true nor nil and a list of errors; refusing the write",
          { file = file, row = i - 1 })
        return { file = file, failed = true, errors = {} }
      end
      for _, e in ipairs(errs) do
        if type(e) == "table" then
          out[#out + 1] = { path = prefix .. tostring(e.path or ""), message = tostring(e.message or "is invalid") }
        else
          out[#out + 1] = { path = prefix, message = tostring(e) }
        end
      end
    end
  end
  if #out == 0 then return nil end
  return { file = file, errors = out }
end

return M
