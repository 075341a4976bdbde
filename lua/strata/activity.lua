-- strata.activity: seed 003's log rows from scripts, under logging_settings
-- (read live: the server re-reads them on every admin_config NOTIFY) and
-- lua/logging.lua (which types are logged, under which toggle).
--
--   activity.activity(category, action, fields) -> id | nil, reason
--       user_activity_logs; activity_type = category .. "_" .. action
--       (or action itself when it already starts so): ("chat", "create"),
--       ("auth", "login", { success = false, ... }) for a failed sign-in.
--   activity.agent_activity(fields) -> id | nil, reason
--       agent_activity_logs; fields.agent_type and fields.operation_type.
--   activity.error_row(fields) -> id | nil, reason
--       error_logs (never sampled); for errors strata does not answer as a
--       5xx itself, e.g. in background work.
--   activity.usage(fields) -> id | nil, reason      usage_logs, always.
--   activity.correlation_id([req]) -> uuid text     the request's.
-- The same functions are strata.log's (log.activity, log.agent_activity,
-- log.error_row, log.usage) once this module is loaded (strata.runtime
-- loads it).
--
-- fields may give any column of the table (metadata / details go to
-- activity_metadata / operation_metadata / error_details); the request
-- being served fills user_id, correlation_id, request_path and _method,
-- ip_address and user_agent.  Reasons for nil: "off" (its switch or toggle),
-- "sampled_out", "excluded_path", "no_user", "unknown activity type ...",
-- "dropped" (queue full), "unavailable" (outside a server).  A failed
-- sign-in (auth_login with success = false) needs no user: the address
-- may be unknown.
--
-- This module decides what a rule decides (switches, toggles, sampling);
-- the row itself is built, kept private and queued in C (strata.log.row:
-- the request's columns, anonymize_ip, log_user_agent, hash_email, keys
-- holding secrets dropped, exclude_sensitive_paths), once per call.

local cjson = require("cjson")
local log = require("strata.log")
local request = require("strata.request")
local logrules = require("strata.logrules")

local type, pcall, tostring, random, tonumber = type, pcall, tostring, math.random, tonumber
local sub = string.sub
local row = log.row

local M = {}

local DEFAULTS = { error_logging_enabled = true, user_activity_logging_enabled = false,
  agent_activity_logging_enabled = false, category_toggles = {}, performance_settings = {}, privacy_settings = {} }

local settings, seen_version = DEFAULTS, nil

local function section(s, name)
  local t = s[name]
  return type(t) == "table" and t or {}
end

-- What the settings decide for every call, worked out once per version:
-- log.activity runs per request, the settings move rarely.
local TOGGLES, SAMPLING_RATE = {}, nil

local function current()
  local v = log.settings_version()
  if v ~= seen_version then
    local json, version = log.settings()
    if json then
      local ok, t = pcall(cjson.decode, json)
      if ok and type(t) == "table" then settings = t end
      seen_version = version
    end
    TOGGLES = section(settings, "category_toggles")
    local perf = section(settings, "performance_settings")
    SAMPLING_RATE = perf.sampling_enabled == true and (tonumber(perf.sampling_rate) or 1) or nil
  end
  return settings
end

-- The rules, loaded once per Lua state (a changed file means a new state).
local RULES
local function rules()
  if RULES == nil then
    local ok, r = pcall(require, "logging")
    if not ok or not logrules.check_file("logging.lua", r) then
      log.error("lua/logging.lua failed to load; no user or agent activity is logged", { error = tostring(r) })
      r = logrules.new()
    end
    RULES = r
  end
  return RULES
end

-- Both after current().
local function toggle_on(toggle)
  return TOGGLES[toggle] ~= false
end

local function sampled_out()
  return SAMPLING_RATE ~= nil and random() >= SAMPLING_RATE
end

--- The correlation id of req (default: the request being served): its
-- X-Request-Id when that is a uuid (strata's own ids are), else a uuid
-- derived from it, so rows of one request share one id.
function M.correlation_id(req)
  req = req or request.current()
  local id = req and req.id
  if type(id) ~= "string" then return nil end
  return log.correlation_id(id)
end

-- TYPES[category][action] = { activity_type, rule } for the known pairs,
-- made at their first call (rules do not change within a state).
local TYPES = {}
local function type_of(category, action)
  local by = TYPES[category]
  local t = by and by[action]
  if t then return t end
  local activity_type = sub(action, 1, #category + 1) == category .. "_" and action or category .. "_" .. action
  local rule = rules().user_types[activity_type]
  if not rule then return nil, activity_type end
  t = { activity_type, rule }
  TYPES[category] = by or {}
  TYPES[category][action] = t
  return t
end

local EMPTY = {}

-- ---- the API ----

function M.activity(category, action, fields)
  if type(category) ~= "string" or type(action) ~= "string" then
    error("strata.activity.activity(category, action[, fields]): category and action must be strings", 2)
  end
  if current().user_activity_logging_enabled ~= true then return nil, "off" end
  -- type_of, toggle_on and sampled_out written out: this runs per request
  local by = TYPES[category]
  local t = by and by[action]
  if not t then
    local unknown
    t, unknown = type_of(category, action)
    if not t then return nil, "unknown activity type " .. unknown end
  end
  local activity_type, rule = t[1], t[2]
  if TOGGLES[rule.toggle] == false then return nil, "off" end
  if SAMPLING_RATE ~= nil and random() >= SAMPLING_RATE then return nil, "sampled_out" end
  fields = fields or EMPTY
  local need_user = not (activity_type == "auth_login" and fields.success == false)
  return row("user_activity_logs", fields, need_user, "activity_type", activity_type,
    "activity_category", rule.category)
end

function M.agent_activity(fields)
  if type(fields) ~= "table" or type(fields.operation_type) ~= "string" or type(fields.agent_type) ~= "string" then
    error("strata.activity.agent_activity(fields): fields.agent_type and fields.operation_type are required", 2)
  end
  if current().agent_activity_logging_enabled ~= true then return nil, "off" end
  local rule = rules().agent_types[fields.operation_type]
  if not rule then return nil, "unknown operation type " .. fields.operation_type end
  if not toggle_on(rule.toggle) then return nil, "off" end
  if sampled_out() then return nil, "sampled_out" end
  return row("agent_activity_logs", fields, false, "operation_category",
    fields.operation_category or fields.operation_type)
end

function M.error_row(fields)
  if type(fields) ~= "table" or type(fields.error_message) ~= "string" then
    error("strata.activity.error_row(fields): fields.error_message is required", 2)
  end
  if current().error_logging_enabled == false then return nil, "off" end
  return row("error_logs", fields, false, "error_type", fields.error_type or "app",
    "error_category", fields.error_category or "lua_error")
end

function M.usage(fields)
  if type(fields) ~= "table" or type(fields.agent_type) ~= "string" then
    error("strata.activity.usage(fields): fields.agent_type is required", 2)
  end
  return row("usage_logs", fields, true)
end

--- The /rest/v1 hook: a successful write that lua/logging.lua names as an
-- activity (rules.rest) is logged as the caller's.
function M.rest_write(tbl, method, query)
  local activity_type = rules().rest_writes[tbl .. " " .. method]
  if not activity_type then return nil end
  local rule = rules().user_types[activity_type]
  local id = type(query) == "table" and type(query.id) == "string" and query.id:match("^eq%.(%x+%-[%x%-]+)$") or nil
  return M.activity(rule.category, activity_type, { resource_type = tbl, resource_id = id })
end

log.activity, log.agent_activity, log.error_row, log.usage = M.activity, M.agent_activity, M.error_row, M.usage

return M
