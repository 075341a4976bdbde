-- strata.rest.media: which representation a table request answers in, from
-- its Accept header, as PostgREST negotiates it: the highest-q media type
-- strata can produce wins; none producible -> 406 PGRST107.
--   "json"    application/json, */*, application/vnd.pgrst.array+json, no Accept
--   "single"  application/vnd.pgrst.object+json (one object, else 406 PGRST116)
--   "csv"     text/csv (built by PostgreSQL, strata.rest.csv)
--   "plan"    application/vnd.pgrst.plan[+json|+text] with conf rest_plans
--             (a read's EXPLAIN; call.plan holds its format and options)
-- nulls=stripped on the array and object types sets call.strip.

local errors = require("strata.rest.errors")
local csv = require("strata.rest.csv")

local concat, sort, tonumber, lower = table.concat, table.sort, tonumber, string.lower

local M = {}

local KINDS = {
  ["*/*"] = "json",
  ["application/json"] = "json",
  ["application/vnd.pgrst.array+json"] = "json",
  ["application/vnd.pgrst.array"] = "json",
  ["application/vnd.pgrst.object+json"] = "single",
  ["application/vnd.pgrst.object"] = "single",
  ["text/csv"] = "csv",
}

local STRIPPABLE = {
  ["application/vnd.pgrst.array+json"] = "application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8",
  ["application/vnd.pgrst.array"] = "application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8",
  ["application/vnd.pgrst.object+json"] = "application/vnd.pgrst.object+json;nulls=stripped; charset=utf-8",
  ["application/vnd.pgrst.object"] = "application/vnd.pgrst.object+json;nulls=stripped; charset=utf-8",
}

-- Accept: application/vnd.pgrst.plan[+json|+text]; for="..."; options=a|b
-- (PostgREST's EXPLAIN of the statement; conf rest_plans, default off).
local PLANS = { ["application/vnd.pgrst.plan"] = "text", ["application/vnd.pgrst.plan+json"] = "json",
  ["application/vnd.pgrst.plan+text"] = "text" }
local PLAN_OPTIONS = { analyze = "ANALYZE", verbose = "VERBOSE", settings = "SETTINGS", buffers = "BUFFERS", wal = "WAL" }
local PLAN_FOR = { ["application/json"] = "application/json", ["application/vnd.pgrst.object"] = "application/vnd.pgrst.object+json",
  ["application/vnd.pgrst.object+json"] = "application/vnd.pgrst.object+json", ["text/csv"] = "text/csv" }

local function plan_of(mt, raw)
  local plan = { format = PLANS[mt], options = {}, names = {}, ["for"] = "application/json" }
  local target = raw:match(';%s*for%s*=%s*"?([^";]+)"?')
  if target then plan["for"] = PLAN_FOR[lower(target)] or plan["for"] end
  local opts = raw:match(";%s*options%s*=%s*([%w|]+)")
  for o in (opts or ""):gmatch("[^|]+") do
    if PLAN_OPTIONS[lower(o)] then
      plan.options[#plan.options + 1] = PLAN_OPTIONS[lower(o)]
      plan.names[#plan.names + 1] = lower(o)
    end
  end
  return plan
end

-- The media ranges of an Accept header, best first (stable for equal q).
local function ranges(accept)
  local list = {}
  for part in accept:gmatch("[^,]+") do
    local mt = lower(part:match("^%s*([^;%s]*)"))
    local q = tonumber(part:match(";%s*[qQ]%s*=%s*([%d%.]+)")) or 1
    local strip = lower(part):find(";%s*nulls%s*=%s*stripped") ~= nil
    if mt ~= "" then list[#list + 1] = { type = mt, q = q, at = #list, strip = strip, raw = part } end
  end
  sort(list, function(a, b)
    if a.q ~= b.q then return a.q > b.q end
    return a.at < b.at
  end)
  return list
end

--- The representation a REST call (strata.rest.run) asks for: call.media
-- when its caller chose one, else negotiated from call.accept (the Accept
-- header) and memoised as call.media; raises 406 PGRST107 when strata can
-- produce none of the types it accepts.
function M.of(call)
  if call.media then return call.media end
  local accept = call.accept
  local kind = "json"
  if accept and KINDS[accept] then
    kind = KINDS[accept] -- one known type, as clients mostly send it: what ranges() would find
  elseif accept and accept:match("%S") then
    kind = nil
    local asked = {}
    for _, r in ipairs(ranges(accept)) do
      -- nulls=stripped: PostgREST's array and object types only.
      if r.q > 0 and KINDS[r.type] then kind = KINDS[r.type]; call.strip = r.strip and STRIPPABLE[r.type]; break end
      if r.q > 0 and PLANS[r.type] and require("strata.config").rest_plans then
        kind, call.plan = "plan", plan_of(r.type, r.raw)
        break
      end
      asked[#asked + 1] = r.type
    end
    if not kind then
      errors.raise(406, "PGRST107", "None of these media types are available: " .. concat(asked, ", "))
    end
  end
  call.media = kind
  return kind
end

M.CONTENT_TYPES = {
  json = "application/json; charset=utf-8",
  csv = "text/csv; charset=utf-8",
}

--- The Content-Type of the negotiated representation (nil: the caller's
-- default, JSON).
function M.content_type(call)
  local kind = M.of(call)
  if kind == "plan" then
    local p = call.plan
    return ('application/vnd.pgrst.plan+%s; for="%s"%s; charset=utf-8'):format(p.format, p["for"],
      #p.names > 0 and ("; options=" .. concat(p.names, "|")) or "")
  end
  return call.strip or M.CONTENT_TYPES[kind]
end

--- EXPLAIN (...) of sql for call's plan media type.
function M.explain(call, sql)
  local p = call.plan
  local opts = { "FORMAT " .. p.format:upper() }
  for _, o in ipairs(p.options) do opts[#opts + 1] = o end
  return "EXPLAIN (" .. concat(opts, ", ") .. ") " .. sql
end

--- The answer (200, as PostgREST) from EXPLAIN's rows (M.explain).
function M.plan_answer(call, rows)
  local body
  if call.plan.format == "json" then
    local v = rows[1]["QUERY PLAN"]
    body = type(v) == "string" and v or require("cjson").encode(v)
  else
    local lines = {}
    for i, r in ipairs(rows) do lines[i] = r["QUERY PLAN"] end
    body = concat(lines, "\n")
  end
  return 200, body, { ["Content-Type"] = M.content_type(call) }
end

--- A row `alias` as the JSON value the answer holds: without its null
-- members under nulls=stripped (json_strip_nulls, as PostgREST).
function M.row(call, alias)
  M.of(call)
  if call.strip then return "json_strip_nulls(to_json(" .. alias .. "))" end
  return alias
end

--- The aggregate over rows `alias` (of select list items, which builder b
-- turned into SQL) answering the representation call negotiated, as text.
function M.body_aggregate(call, b, items, alias)
  local kind = M.of(call)
  if kind == "single" then return "(json_agg(" .. M.row(call, alias) .. ") -> 0)::text" end
  if kind == "csv" then
    local names = csv.names(b, items)
    return csv.aggregate(alias, names, b:param(csv.header(names)))
  end
  return "coalesce(json_agg(" .. M.row(call, alias) .. "), '[]')::text"
end

return M
