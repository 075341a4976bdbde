-- strata.logrules: the vocabulary of lua/logging.lua, the rule file that
-- says which activity strata logs (strata.activity reads it).  Each call
-- checks its arguments at once and raises with the rule file's line, so a
-- rule naming an activity type the tables cannot store, or a toggle
-- logging_settings does not have, fails the reload ("lua/logging.lua:12:
-- unknown activity type 'chat_archive'") instead of being dropped silently.
--
--   local rules = require("strata.logrules").new()
--   rules.user(activity_type, category, toggle)   -- user_activity_logs
--   rules.agent(operation_type, toggle)           -- agent_activity_logs
--   rules.rest(table, method, activity_type)      -- a /rest/v1 write that is that activity
--   return rules
--
-- A type left out is not logged.  A team that adds a type extends the
-- table's check constraint in a migration and this module's list with it.

local type, error, format, concat, pairs = type, error, string.format, table.concat, pairs

local M = {}

local function set(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

-- user_activity_logs.activity_type and agent_activity_logs.operation_type
-- as sql/022_logs.sql allows them.
M.ACTIVITY_TYPES = set({
  "auth_login", "auth_logout", "auth_register",
  "chat_create", "chat_view", "chat_delete", "chat_message_send",
  "document_create", "document_view", "document_update", "document_delete",
  "admin_config_update", "admin_dashboard_view", "admin_provider_view",
  "vote_message", "suggestion_view", "file_upload", "artifact_create", "artifact_execute",
})
M.OPERATION_TYPES = set({
  "initialization", "tool_invocation", "code_generation", "document_generation", "diagram_generation",
  "code_execution", "search", "url_fetch", "mcp_operation", "streaming",
})
-- logging_settings.category_toggles (seed 003).
M.TOGGLES = set({
  "log_auth_events", "log_chat_events", "log_document_events", "log_admin_events", "log_vote_events",
  "log_file_events", "log_artifact_events", "log_ai_operations", "log_tool_invocations", "log_code_execution",
})
local METHODS = set({ "POST", "PATCH", "PUT", "DELETE" })

local function names(s)
  local out = {}
  for k in pairs(s) do out[#out + 1] = k end
  table.sort(out)
  return concat(out, ", ")
end

-- Raises at the rule file's line (level 3: past check and the rule).
local function check(ok, fmt, ...)
  if not ok then error(format(fmt, ...), 3) end
end

function M.new()
  local r = { user_types = {}, agent_types = {}, rest_writes = {} }
  function r.user(activity_type, category, toggle)
    check(type(activity_type) == "string" and M.ACTIVITY_TYPES[activity_type],
      "unknown activity type '%s' (user_activity_logs allows: %s)", tostring(activity_type), names(M.ACTIVITY_TYPES))
    check(type(category) == "string" and #category > 0 and #category <= 50,
      "activity type '%s': category must be a string of 1 to 50 characters", activity_type)
    check(M.TOGGLES[toggle], "activity type '%s': unknown toggle '%s' (logging_settings.category_toggles has: %s)",
      activity_type, tostring(toggle), names(M.TOGGLES))
    r.user_types[activity_type] = { category = category, toggle = toggle }
  end
  function r.agent(operation_type, toggle)
    check(type(operation_type) == "string" and M.OPERATION_TYPES[operation_type],
      "unknown operation type '%s' (agent_activity_logs allows: %s)", tostring(operation_type), names(M.OPERATION_TYPES))
    check(M.TOGGLES[toggle], "operation type '%s': unknown toggle '%s' (logging_settings.category_toggles has: %s)",
      operation_type, tostring(toggle), names(M.TOGGLES))
    r.agent_types[operation_type] = { toggle = toggle }
  end
  function r.rest(tbl, method, activity_type)
    check(type(tbl) == "string" and #tbl > 0, "rest rule: the table must be a name")
    check(METHODS[method], "rest rule for '%s': method must be POST, PATCH, PUT or DELETE, not '%s'", tbl, tostring(method))
    check(r.user_types[activity_type], "rest rule for '%s': activity type '%s' has no rules.user line above", tbl,
      tostring(activity_type))
    r.rest_writes[tbl .. " " .. method] = activity_type
  end
  return r
end

--- Checks what a rule file returned (the reload calls it).  true, or nil
-- and a message naming the file.
function M.check_file(path, value)
  if type(value) ~= "table" or type(value.user_types) ~= "table" or type(value.agent_types) ~= "table" then
    return nil, path .. ": must return require('strata.logrules').new() with its rules"
  end
  return true
end

return M
