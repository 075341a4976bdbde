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
-- "dropped" (queue full), "unavailable" (outside a server).
--
-- Privacy, whatever the caller passes: keys that hold secrets (password,
-- token, secret, api key, authorization, cookie, body) are removed from
-- metadata; with hash_email an e-mail address becomes "hmac-sha256:<hex>"
-- (strata.log.hash, keyed); anonymize_ip and log_user_agent apply.

local cjson = require("cjson")
local log = require("strata.log")
local request = require("strata.request")
local logrules = require("strata.logrules")

local type, pairs, pcall, tostring, random = type, pairs, pcall, tostring, math.random
local find, sub, lower, format = string.find, string.sub, string.lower, string.format

local M = {}

local DEFAULTS = { error_logging_enabled = true, user_activity_logging_enabled = false,
  agent_activity_logging_enabled = false, category_toggles = {}, performance_settings = {}, privacy_settings = {} }

local settings, seen_version = DEFAULTS, nil

local function current()
  local v = log.settings_version()
  if v ~= seen_version then
    local json, version = log.settings()
    if json then
      local ok, t = pcall(cjson.decode, json)
      if ok and type(t) == "table" then settings = t end
      seen_version = version
    end
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

local function section(s, name)
  local t = s[name]
  return type(t) == "table" and t or {}
end

local function toggle_on(s, toggle)
  return section(s, "category_toggles")[toggle] ~= false
end

local function excluded(s, path)
  if type(path) ~= "string" then return false end
  local list = section(section(s, "privacy_settings"), "exclude_sensitive_paths")
  for _, prefix in ipairs(list) do
    if type(prefix) == "string" and #prefix > 0 and sub(path, 1, #prefix) == prefix then return true end
  end
  return false
end

local function sampled_out(s)
  local perf = section(s, "performance_settings")
  if perf.sampling_enabled ~= true then return false end
  local rate = tonumber(perf.sampling_rate) or 1
  return random() >= rate
end

-- ---- privacy ----

local SECRET_KEYS = { "password", "passwd", "secret", "token", "api[_-]?key", "apikey", "authorization", "cookie",
  "^body$", "_body$", "private[_-]?key" }
local EMAIL = "^[^@%s]+@[^@%s]+%.[^@%s]+$"

local function secret_key(k)
  k = lower(k)
  for _, p in ipairs(SECRET_KEYS) do
    if find(k, p) then return true end
  end
  return false
end

-- A copy of v without secrets, e-mails hashed when asked.
local function scrub(v, hash_email, depth)
  if type(v) == "string" then
    if hash_email and find(v, EMAIL) then return "hmac-sha256:" .. log.hash(lower(v)) end
    return v
  end
  if type(v) ~= "table" or depth > 8 then return v end
  local out = {}
  for k, x in pairs(v) do
    if not (type(k) == "string" and secret_key(k)) then out[k] = scrub(x, hash_email, depth + 1) end
  end
  return setmetatable(out, getmetatable(v))
end

-- ---- the request ----

local function uuid_of_hex(h)
  return format("%s-%s-%s-%s-%s", sub(h, 1, 8), sub(h, 9, 12), sub(h, 13, 16), sub(h, 17, 20), sub(h, 21, 32))
end

--- The correlation id of req (default: the request being served): its
-- X-Request-Id when that is a uuid (strata's own ids are), else a uuid
-- derived from it, so rows of one request share one id.
function M.correlation_id(req)
  req = req or request.current()
  local id = req and req.id
  if type(id) ~= "string" then return nil end
  local l = lower(id)
  if find(l, "^%x+$") and #l == 32 then return uuid_of_hex(l) end
  if find(l, "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$") then return l end
  local h = log.hash("correlation:" .. id)
  return uuid_of_hex(sub(h, 1, 12) .. "4" .. sub(h, 14, 16) .. "8" .. sub(h, 18, 32))
end

-- Fills the request's columns (those fields does not give) under privacy.
local function from_request(row, s, with_client)
  local req = request.current()
  if not req then return row end
  local flags = log.flags()
  if row.user_id == nil and req.auth and req.auth.uid then row.user_id = req.auth.uid end
  if row.request_path == nil and with_client then row.request_path = sub(req.path or "", 1, 500) end
  if row.request_method == nil and with_client then row.request_method = req.method end
  if with_client then
    if row.ip_address == nil then row.ip_address = req.remote_addr end
    if row.user_agent == nil and flags.log_user_agent then row.user_agent = req.headers["user-agent"] end
  end
  if with_client and row.ip_address and flags.anonymize_ip then row.ip_address = log.anonymize_ip(row.ip_address) end
  if not flags.log_user_agent then row.user_agent = nil end
  return row
end

-- A row from fields: known keys as they are, the metadata key renamed.
local function row_of(fields, meta_key)
  local row = {}
  for k, v in pairs(fields or {}) do
    if k == "metadata" or k == "details" then row[meta_key] = v
    elseif k ~= "id" then row[k] = v end
  end
  return row
end

local function enqueue(tbl, row, s, meta_key)
  local hash_email = section(s, "privacy_settings").hash_email == true
  if row[meta_key] ~= nil then row[meta_key] = scrub(row[meta_key], hash_email, 0) end
  if hash_email and type(row.error_message) == "string" and find(row.error_message, EMAIL) then
    row.error_message = scrub(row.error_message, true, 0)
  end
  return log.enqueue(tbl, row)
end

-- ---- the API ----

function M.activity(category, action, fields)
  if type(category) ~= "string" or type(action) ~= "string" then
    error("strata.activity.activity(category, action[, fields]): category and action must be strings", 2)
  end
  local s = current()
  if s.user_activity_logging_enabled ~= true then return nil, "off" end
  local activity_type = sub(action, 1, #category + 1) == category .. "_" and action or category .. "_" .. action
  local rule = rules().user_types[activity_type]
  if not rule then return nil, "unknown activity type " .. activity_type end
  if not toggle_on(s, rule.toggle) then return nil, "off" end
  local row = from_request(row_of(fields, "activity_metadata"), s, true)
  if excluded(s, row.request_path) then return nil, "excluded_path" end
  if sampled_out(s) then return nil, "sampled_out" end
  if not row.user_id then return nil, "no_user" end
  row.activity_type, row.activity_category = activity_type, rule.category
  row.correlation_id = row.correlation_id or M.correlation_id()
  if not row.correlation_id then return nil, "no_correlation_id" end
  return enqueue("user_activity_logs", row, s, "activity_metadata")
end

function M.agent_activity(fields)
  if type(fields) ~= "table" or type(fields.operation_type) ~= "string" or type(fields.agent_type) ~= "string" then
    error("strata.activity.agent_activity(fields): fields.agent_type and fields.operation_type are required", 2)
  end
  local s = current()
  if s.agent_activity_logging_enabled ~= true then return nil, "off" end
  local rule = rules().agent_types[fields.operation_type]
  if not rule then return nil, "unknown operation type " .. fields.operation_type end
  if not toggle_on(s, rule.toggle) then return nil, "off" end
  if sampled_out(s) then return nil, "sampled_out" end
  local row = from_request(row_of(fields, "operation_metadata"), s, false)
  row.operation_category = row.operation_category or fields.operation_type
  row.correlation_id = row.correlation_id or M.correlation_id()
  if not row.correlation_id then return nil, "no_correlation_id" end
  return enqueue("agent_activity_logs", row, s, "operation_metadata")
end

function M.error_row(fields)
  if type(fields) ~= "table" or type(fields.error_message) ~= "string" then
    error("strata.activity.error_row(fields): fields.error_message is required", 2)
  end
  local s = current()
  if s.error_logging_enabled == false then return nil, "off" end
  local row = from_request(row_of(fields, "error_details"), s, true)
  if excluded(s, row.request_path) then return nil, "excluded_path" end
  row.error_type = row.error_type or "app"
  row.error_category = row.error_category or "lua_error"
  local req = request.current()
  if req and req.id then
    row.error_details = type(row.error_details) == "table" and row.error_details or {}
    row.error_details.request_id = row.error_details.request_id or req.id
  end
  return enqueue("error_logs", row, s, "error_details")
end

function M.usage(fields)
  if type(fields) ~= "table" or type(fields.agent_type) ~= "string" then
    error("strata.activity.usage(fields): fields.agent_type is required", 2)
  end
  local s = current()
  local row = from_request(row_of(fields, "metadata"), s, false)
  if not row.user_id then return nil, "no_user" end
  return enqueue("usage_logs", row, s, "metadata")
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
