-- strata.agent_limits: the rate limits of seed 003's agent configurations.
-- The entry `{agent_type}_{provider}` of admin_config (provider: the
-- activeProvider of the app_settings entry) has a rateLimit with perMinute,
-- perHour and perDay.  admin_config is read at most once a second per Lua
-- state, so a change (through strata or directly in SQL) applies within a
-- second without a restart.

local db = require("strata.db")
local log = require("strata.log")

local M = {}

local REFRESH_S = 1
local cache, loaded_at = nil, -math.huge

local function configs()
  local now = os.time() + (os.clock() % 1)
  if cache and now - loaded_at < REFRESH_S then return cache end
  local rows, err = db.query("select config_key, config_data from public.admin_config")
  if not rows then
    log.warn("agent rate limits: cannot read admin_config; keeping the last known", { error = err.message })
    return cache or {}
  end
  local by_key = {}
  for _, r in ipairs(rows) do by_key[r.config_key] = r.config_data end
  cache, loaded_at = by_key, now
  return cache
end

--- The windows that apply to `who` calling an agent type, or nil.
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
    n = type(n) == "number" and math.tointeger(n) -- cjson decodes 10 as 10.0
    if n and n > 0 then
      -- The limit is part of the key: a changed limit starts a fresh window
      -- rather than inheriting a state measured against the old one.
      list[#list + 1] = { key = base .. suffix .. ":" .. n, rate = n, per = per, name = name .. "_" .. suffix }
    end
  end
  add(rl.perMinute, 60, "minute")
  add(rl.perHour, 3600, "hour")
  add(rl.perDay, 86400, "day")
  return list
end

return M
