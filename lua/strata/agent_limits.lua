-- strata.agent_limits: the rate limits of seed 003's agent configurations.
-- The entry `{agent_type}_{provider}` of admin_config (provider: the
-- activeProvider of the app_settings entry) has a rateLimit with perMinute,
-- perHour and perDay.  admin_config is re-read when it changes: a trigger
-- NOTIFYs strata_admin_config (sql/091_admin_config_notify.sql), the
-- server's LISTEN connection counts it, and broker.admin_config_version()
-- moves (also when that connection comes back, as it may have missed
-- changes).  While nothing listens the table is polled once a second; and
-- every 30 s anyway, in case a notification was lost.

local broker = require("strata.broker")
local pg = require("strata.pg")
local log = require("strata.log")

local type, ipairs, clock, time = type, ipairs, os.clock, os.time

local M = {}

local POLL_S = 1        -- re-read period while no feed listens
local SAFETY_S = 30     -- re-read period even while it does

local cache, loaded_at, loaded_version = nil, -math.huge, nil

local function now() return time() + (clock() % 1) end

local function stale(version, t)
  if not cache then return true end
  if version == nil then return t - loaded_at >= POLL_S end
  return version ~= loaded_version or t - loaded_at >= SAFETY_S
end

local function configs()
  -- Read before the query: a change committed during it moves the version
  -- past the one kept, so the next request reads again.
  local version, t = broker.admin_config_version(), now()
  if not stale(version, t) then return cache end
  -- As strata's own role (strata.pg: no caller settings, no RLS): the
  -- limits apply to callers who may not read admin_config themselves.
  local rows, err = pg.query("select config_key, config_data from public.admin_config")
  if not rows then
    log.warn("agent rate limits: cannot read admin_config; keeping the last known", { error = err.message })
    return cache or {}
  end
  local by_key = {}
  for _, r in ipairs(rows) do by_key[r.config_key] = r.config_data end
  cache, loaded_at, loaded_version = by_key, t, version
  return cache
end

--- Every admin_config row's config_data by config_key, as this cache
-- holds it (strata.ai reads the agent configurations from here too).
M.configs = configs

local function limit(n)
  n = type(n) == "number" and math.tointeger(n) -- cjson decodes 10 as 10.0
  return n and n > 0 and n or nil
end

--- The windows that apply to `who` calling an agent type, or nil.  The
-- list's `usage` field ({ agent_type, per_hour, per_day }) says what
-- strata.ratelimit counts in rate_limit_tracking once the request passes.
function M.windows(agent_type, who)
  local all = configs()
  local app = all.app_settings
  local provider = type(app) == "table" and app.activeProvider
  local cfg = provider and all[agent_type .. "_" .. provider]
  local rl = type(cfg) == "table" and cfg.rateLimit
  if type(rl) ~= "table" then return nil end
  local base = ("agent:%s_%s:%s:"):format(agent_type, provider, who)
  local name = agent_type .. "_" .. provider
  local list = {}
  local function add(n, per, suffix)
    if n then
      -- The limit is part of the key: a changed limit starts a fresh window
      -- rather than inheriting a state measured against the old one.
      list[#list + 1] = { key = base .. suffix .. ":" .. n, rate = n, per = per, name = name .. "_" .. suffix }
    end
  end
  local per_hour, per_day = limit(rl.perHour), limit(rl.perDay)
  add(limit(rl.perMinute), 60, "minute")
  add(per_hour, 3600, "hour")
  add(per_day, 86400, "day")
  list.usage = { agent_type = agent_type, per_hour = per_hour, per_day = per_day }
  return list
end

return M
