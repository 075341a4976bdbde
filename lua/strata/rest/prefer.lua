-- strata.rest.prefer: the Prefer request header (RFC 7240) as PostgREST
-- reads it, and the Preference-Applied answer.  Tokens are split on commas;
-- the first valid value of a preference wins.  Unknown or invalid tokens
-- are ignored (handling=lenient, the default) or refused with 400 PGRST122
-- (handling=strict).  max-affected=N (a non-negative integer) binds only
-- under handling=strict (PostgREST); timezone=<name> sets the statements'
-- TimeZone (strata.rest.exec), a name PostgreSQL refuses answering its
-- 22023 as PostgREST does.

local errors = require("strata.rest.errors")

local concat, ipairs = table.concat, ipairs

local M = {}

--- Each preference's valid values.
M.VALID = {
  resolution = { ["merge-duplicates"] = true, ["ignore-duplicates"] = true },
  missing = { default = true, null = true },
  ["return"] = { minimal = true, representation = true, ["headers-only"] = true },
  params = { ["single-object"] = true },
  count = { exact = true, planned = true, estimated = true },
  tx = { commit = true, rollback = true },
  handling = { strict = true, lenient = true },
}

-- PostgREST's order of Preference-Applied (Preferences.prefAppliedHeader).
local ORDER = { "resolution", "missing", "return", "params", "count", "tx", "handling", "timezone", "max-affected" }

--- The preferences of a Prefer header (nil: none):
-- { count = "exact", ..., invalid = { token, ... } }.
function M.parse(header)
  local p = { invalid = {} }
  if not header then return p end -- the common case: nothing to parse
  for token in header:gmatch("[^,]+") do
    token = token:match("^%s*(.-)%s*$")
    local k, v = token:match("^([%w%-]+)%s*=%s*(.-)$")
    if k == "max-affected" and v:match("^%d+$") and math.tointeger(tonumber(v)) then
      if p[k] == nil then p[k] = math.tointeger(tonumber(v)) end
    elseif k == "timezone" and v ~= "" then
      if p[k] == nil then p[k] = v end
    elseif k and M.VALID[k] and M.VALID[k][v] then
      if p[k] == nil then p[k] = v end
    elseif token ~= "" then
      p.invalid[#p.invalid + 1] = token
    end
  end
  return p
end

--- The max-affected limit that binds (handling=strict), or nil.
function M.max_affected(p)
  return p.handling == "strict" and p["max-affected"] or nil
end

--- PostgREST's PGRST124 for n affected rows over the limit, as (status, body).
function M.over_limit(n)
  return errors.new(400, "PGRST124", "Query result exceeds max-affected preference constraint",
    "The query affects " .. n .. " rows")
end

--- What a transaction's function returns as its error to take a write or
-- call back under tx=rollback, after keeping the answer it would have given.
M.ROLLBACK = { code = "rollback" }

--- Raises 400 PGRST122 when handling=strict met an invalid preference of p.
function M.check(p)
  if p.handling == "strict" and #p.invalid > 0 then
    errors.raise(400, "PGRST122", "Invalid preferences given with handling=strict",
      "Invalid preferences: " .. concat(p.invalid, ", "))
  end
end

--- The Preference-Applied value (or nil) for the preferences of p that the
-- request honoured: honoured[name] is true for each one it used.
function M.applied(p, honoured)
  local out
  for i = 1, #ORDER do
    local k = ORDER[i]
    if k == "max-affected" then
      if p[k] and p.handling == "strict" and honoured[k] then out = out or {}; out[#out + 1] = k .. "=" .. p[k] end
    elseif p[k] and (honoured[k] or k == "handling" or k == "tx" or k == "timezone") then
      out = out or {}
      out[#out + 1] = k .. "=" .. p[k]
    end
  end
  return out and concat(out, ", ") or nil
end

return M
