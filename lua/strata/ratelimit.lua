-- strata.ratelimit: applies lua/ratelimits.lua to a request before its
-- handler runs.  A refused request gets 429 with a PostgREST-style error,
-- Retry-After, the IETF draft headers (RateLimit-Policy, RateLimit) and the
-- older X-RateLimit-*; allowed requests on limited routes carry the same
-- headers for their tightest window.
--
-- A window's policy: "local" (the default) counts in this process
-- (strata.limit, exact for one instance); "cluster" counts in PostgreSQL
-- (strata_rate_limit_take, sql/070_rate_limit_cells.sql), one budget shared
-- by every instance on the database, at the cost of one query.  When that
-- query fails the window falls back to the local counter (logged), so an
-- unreachable database neither blocks nor unlimits the API.
--
-- A rule's list of windows may carry `usage = { agent_type, per_hour,
-- per_day }` (strata.agent_limits does): once every window allowed the
-- request, it is counted for the caller in public.rate_limit_tracking
-- (limit.record_usage: in memory, written in batches by the server).

local limit = require("strata.limit")
local pg = require("strata.pg")
local log = require("strata.log")

local type, ipairs, pcall, format, floor = type, ipairs, pcall, string.format, math.floor

local M = {}

local NO_WINDOWS = {} -- what a rule that does not apply answers; never changed

-- The rules, loaded once per Lua state (a changed file means a new state).
local RULES
local function rules()
  if RULES == nil then
    local ok, r = pcall(require, "ratelimits")
    if not ok then log.error("lua/ratelimits.lua failed to load; no rate limits apply", { error = tostring(r) }) end
    RULES = ok and type(r) == "table" and r or {}
  end
  return RULES
end

local function headers_for(w, remaining, reset, h)
  h = h or {}
  h["RateLimit-Policy"] = format('"%s";q=%d;w=%d', w.name, w.rate, w.per)
  h["RateLimit"] = format('"%s";r=%d;t=%d', w.name, remaining, reset)
  h["X-RateLimit-Limit"] = tostring(w.rate)
  h["X-RateLimit-Remaining"] = tostring(remaining)
  h["X-RateLimit-Reset"] = tostring(reset)
  return h
end

local TAKE_SQL = "select allowed, remaining, reset_ms, retry_after_ms from public.strata_rate_limit_take($1, $2, $3, $4, true)"

-- Whole seconds, rounded up (as strata.limit answers): a client told 0
-- would retry too early.
local function seconds(ms) return (ms + 999) // 1000 end

-- allowed, remaining, reset_s, retry_after_s for window w.
local function take(w)
  if w.policy == "cluster" then
    local rows, err = pg.query(TAKE_SQL, w.key, w.rate, floor(w.per * 1000), w.burst or w.rate)
    local r = rows and rows[1]
    if r then return r.allowed, r.remaining, seconds(r.reset_ms), seconds(r.retry_after_ms) end
    log.warn("cluster rate limit unavailable; counting locally", { window = w.name,
      error = err and err.message or "no row" })
  elseif w.policy ~= nil and w.policy ~= "local" then
    log.error("rate-limit window has an unknown policy; counting locally", { window = w.name,
      policy = tostring(w.policy) })
  end
  return limit.take(w.key, w)
end

-- The windows a rule answered, as a list.
local function windows(rule, a, b)
  if a == nil then return nil end
  if type(a) == "table" then return a end
  b.key, b.name = a, b.name or rule.name
  return { b }
end

-- Counts an allowed request for rate_limit_tracking.  A subject that is
-- not a uuid (the table's user_id) is not counted, nor is a request past a
-- full table (strata_ratelimit_usage_dropped_total); an agent type that
-- does not fit the table is the route's mistake, logged.
local function record(usages, uid)
  for _, u in ipairs(usages) do
    local ok, err = pcall(limit.record_usage, uid, u.agent_type, u.per_hour, u.per_day)
    if not ok then log.error("rate_limit_tracking: request not counted", { error = tostring(err) }) end
  end
end

--- nil, headers (maybe nil) when allowed; or the 429 answer
-- (status, body, headers).
function M.check(req, route)
  local tightest, usages
  for _, rule in ipairs(rules()) do
    local ok, a, b = pcall(rule.match, req, req.auth, route)
    if not ok then
      log.error("rate-limit rule raised; skipped", { rule = rule.name, error = tostring(a) })
    else
      local list = windows(rule, a, b) or NO_WINDOWS
      if list.usage and req.auth.uid then
        usages = usages or {}
        usages[#usages + 1] = list.usage
      end
      for _, w in ipairs(list) do
        w.name = w.name or rule.name
        local allowed, remaining, reset, retry = take(w)
        if not allowed then
          local h = headers_for(w, 0, reset)
          h["Retry-After"] = tostring(retry)
          return 429, { code = "PGRST429", message = format("rate limit exceeded (%s)", w.name),
            details = format("%d requests per %d s", w.rate, w.per), hint = format("retry after %d s", retry) }, h
        end
        if not tightest or remaining < tightest.remaining then
          tightest = { w = w, remaining = remaining, reset = reset }
        end
      end
    end
  end
  if usages then record(usages, req.auth.uid) end
  return nil, tightest and headers_for(tightest.w, tightest.remaining, tightest.reset)
end

return M
