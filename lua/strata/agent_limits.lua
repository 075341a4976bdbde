-- strata.agent_limits: the rate limits of seed 003's agent configurations.
-- The entry `{agent_type}_{provider}` of admin_config (provider: the
-- activeProvider of the app_settings entry) has a rateLimit with perMinute,
-- perHour and perDay; strata.admin_config keeps the valid rows current.

local admin_config = require("strata.admin_config")

local type = type

local M = {}

local function limit(n)
  n = type(n) == "number" and math.tointeger(n) -- cjson decodes 10 as 10.0
  return n and n > 0 and n or nil
end

--- The windows that apply to `who` calling an agent type, or nil.  The
-- list's `usage` field ({ agent_type, per_hour, per_day }) says what
-- strata.ratelimit counts in rate_limit_tracking once the request passes.
function M.windows(agent_type, who)
  local all = admin_config.all()
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
