-- Rows of public.admin_config (seed 003's validate_admin_config_data rules,
-- which strata runs in Lua instead of a trigger):
--   config_key is app_settings, logging_settings or {agent_type}_{provider}
--     with a known agent type and provider;
--   agent configs have enabled (boolean) and rateLimit with perMinute,
--     perHour, perDay: positive integers, perMinute <= perHour <= perDay;
--   tool-based agents (all six agent types: every one of them has tools in
--     the seed) have tools: an object of tool name -> { enabled, ... };
--   provider_tools_agent has systemPrompt;
--   chat_model_agent has capabilities (an object of flags) and tools;
--   app_settings: activeProvider, one of availableProviders (known
--     providers, at least one, no duplicates);
--   logging_settings: the three *_logging_enabled flags and
--     log_retention_days (error_logs, user_activity_logs,
--     agent_activity_logs: whole days, 1 to 36500), and when present
--     category_toggles (flags), performance_settings, privacy_settings.
-- Failures are reported with JSON pointers into the row:
-- /config_key, /config_data/rateLimit/perHour, ...
--
-- ctx (from the REST layer): partial = true for a PATCH, where only the
-- columns present are checked; config_data is then checked against the
-- config_key of the patch, or else those the request's filters allow
-- (ctx.filters.config_key, from config_key=eq.x / in.(x,y)); a PATCH that
-- changes config_data without naming its key, or renames a key without
-- sending config_data, is refused (the stored data would go unchecked).

local S = require("strata.schema")
local PROVIDERS = require("validators.model_config").providers

local AGENT_TYPES = { "chat_model_agent", "provider_tools_agent", "document_agent", "python_agent",
  "mermaid_agent", "git_mcp_agent" }

local function set_of(list)
  local out = {}
  for _, v in ipairs(list) do out[v] = true end
  return out
end
local IS_PROVIDER, IS_AGENT = set_of(PROVIDERS), set_of(AGENT_TYPES)

-- Agent configurations ----------------------------------------------------

-- Positive and within PostgreSQL's INTEGER (rate_limit_tracking.limit_value).
local per = { type = "integer", required = true, gt = 0, le = 2147483647 }

local rate_limit = { type = "record", required = true,
  fields = { { perMinute = per }, { perHour = per }, { perDay = per } },
  checks = { S.ordered({ "perMinute", "perHour", "perDay" }) },
}

local prompt = { type = "string", len_min = 1 }

local tool = { type = "record",
  fields = {
    { enabled = { type = "boolean", required = true } },
    { description = { type = "string" } },
    { systemPrompt = { type = "string" } },
    { userPromptTemplate = { type = "string" } },
  },
}

local tools = { type = "map", required = true,
  keys = { type = "string", pattern = "^[%a_][%w_]*$", msg = "must be an identifier (letters, digits, _)" },
  values = tool,
}

-- fileInputTypes: category -> { enabled } or category -> extension -> { enabled }.
local file_type = { type = "record", fields = { { enabled = { type = "boolean", required = true } } } }
local file_group = { type = "map", values = file_type }
local file_input_types = { type = "map",
  values = { type = "record", custom = function(v, _, report)
    local ok, errs = S.validate(v.enabled ~= nil and file_type or file_group, v)
    if ok then return true end
    for _, e in ipairs(errs) do report(e.path, e.message) end
    return nil
  end },
}

local agent = {
  { enabled = { type = "boolean", required = true } },
  { rateLimit = rate_limit },
  { systemPrompt = prompt },
  { tools = tools },
}

local function agent_spec(fields)
  return { type = "record", fields = fields }
end

local AGENT_SPECS = {
  chat_model_agent = agent_spec(S.extend(agent, {
    { capabilities = { type = "map", required = true, values = { type = "boolean" } } },
    { fileInputTypes = file_input_types },
  })),
  provider_tools_agent = agent_spec(S.extend(agent, { { systemPrompt = S.with(prompt, { required = true }) } })),
  document_agent = agent_spec(agent),
  python_agent = agent_spec(agent),
  mermaid_agent = agent_spec(agent),
  git_mcp_agent = agent_spec(agent),
}

-- Special keys -------------------------------------------------------------

local app_settings = { type = "record",
  fields = {
    { activeProvider = { type = "string", required = true, one_of = PROVIDERS } },
    { availableProviders = { type = "array", required = true, len_min = 1, unique = true,
      elements = { type = "string", one_of = PROVIDERS } } },
  },
  checks = { S.member_of("activeProvider", "availableProviders") },
}

-- purge_old_activity_logs() casts these to integer days.
local days = { type = "integer", required = true, gt = 0, le = 36500 }
local flag = { type = "boolean" }

local logging_settings = { type = "record",
  fields = {
    { error_logging_enabled = { type = "boolean", required = true } },
    { user_activity_logging_enabled = { type = "boolean", required = true } },
    { agent_activity_logging_enabled = { type = "boolean", required = true } },
    { log_retention_days = { type = "record", required = true,
      fields = { { error_logs = days }, { user_activity_logs = days }, { agent_activity_logs = days } } } },
    { category_toggles = { type = "map", values = flag } },
    { performance_settings = { type = "record",
      fields = {
        { batch_writes = flag },
        { batch_size = { type = "integer", gt = 0 } },
        { batch_interval_ms = { type = "integer", gt = 0 } },
        { async_logging = flag },
        { sampling_enabled = flag },
        { sampling_rate = { type = "number", between = { 0, 1 } } },
      } } },
    { privacy_settings = { type = "record",
      fields = {
        { anonymize_ip = flag },
        { hash_email = flag },
        { log_user_agent = flag },
        { exclude_sensitive_paths = { type = "array",
          elements = { type = "string", pattern = "^/", msg = "must be a path starting with /" } } },
      } } },
  },
}

local SPECIAL = { app_settings = app_settings, logging_settings = logging_settings }

-- The row --------------------------------------------------------------------

--- The agent type and provider of "{agent_type}_{provider}", or nil.
local function parse_key(key)
  if type(key) ~= "string" then return nil end
  for _, a in ipairs(AGENT_TYPES) do
    if key:sub(1, #a + 1) == a .. "_" then
      local p = key:sub(#a + 2)
      if IS_PROVIDER[p] then return a, p end
    end
  end
  return nil
end

--- The schema of config_data for `key`, or nil when the key is unknown.
local function spec_for(key)
  if SPECIAL[key] then return SPECIAL[key] end
  local a = parse_key(key)
  return a and AGENT_SPECS[a] or nil
end

local KEY_RULE = "must be app_settings, logging_settings or {agent_type}_{provider} with agent_type one of "
  .. table.concat(AGENT_TYPES, ", ") .. " and provider one of " .. table.concat(PROVIDERS, ", ")

local function validate(row, ctx)
  ctx = ctx or {}
  local partial = ctx.partial
  if type(row) ~= "table" then return nil, { { path = "", message = "expected an object" } } end
  local errs = {}
  local function add(path, message) errs[#errs + 1] = { path = path, message = message } end
  local key, data = row.config_key, row.config_data

  local key_ok = false
  if S.is_null(key) then
    if not (partial and key == nil) then add("/config_key", key == nil and "is required" or "must not be null") end
  elseif type(key) ~= "string" then
    add("/config_key", "expected a string")
  elseif #key > 100 then
    add("/config_key", "must have at most 100 characters")
  elseif not spec_for(key) then
    add("/config_key", KEY_RULE .. (" (got '%s')"):format(key))
  else
    key_ok = true
  end

  local filtered = ctx.filters and ctx.filters.config_key
  if S.is_null(data) then
    if not (partial and data == nil) then
      add("/config_data", data == nil and "is required" or "must not be null")
    elseif key_ok and not (filtered and #filtered == 1 and filtered[1] == key) then
      add("/config_data", "is required when config_key changes (the configuration is checked against its key): "
        .. "send config_data too, or filter with config_key=eq." .. key)
    end
    if #errs == 0 then return true end
    return nil, errs
  end

  -- The keys config_data must suit.
  local keys
  if key_ok then
    keys = { key }
  elseif key == nil and partial then
    if not filtered or #filtered == 0 then
      add("/config_key", "is needed to check config_data: send config_key, or filter with config_key=eq.<key>")
    else
      keys = {}
      for _, k in ipairs(filtered) do
        if spec_for(k) then
          keys[#keys + 1] = k
        else
          add("/config_key", ("'%s' (from the request's filter) is not a known config_key: %s"):format(k, KEY_RULE))
        end
      end
    end
  end
  if not keys or #keys == 0 then
    -- The key is wrong or unknown: still say when config_data is not an object.
    local ok, derrs = S.validate({ type = "record" }, data)
    if not ok then for _, e in ipairs(S.prefix(derrs, "/config_data")) do add(e.path, e.message) end end
  else
    local seen = {}
    for _, k in ipairs(keys) do
      local ok, derrs = S.validate(spec_for(k), data, { ctx = ctx })
      if not ok then
        for _, e in ipairs(S.prefix(derrs, "/config_data")) do
          local id = e.path .. "\0" .. e.message
          if not seen[id] then
            seen[id] = true
            add(e.path, #keys > 1 and (e.message .. " (config_key " .. k .. ")") or e.message)
          end
        end
      end
    end
  end
  if #errs == 0 then return true end
  return nil, errs
end

-- Examples (run on every reload) -------------------------------------------

local function document_agent(changes)
  local data = {
    enabled = true,
    rateLimit = { perMinute = 5, perHour = 50, perDay = 200 },
    tools = { create = { description = "Create a new document", enabled = true,
      systemPrompt = "Write a well-structured markdown document.", userPromptTemplate = "Create: {instruction}" } },
  }
  for k, v in pairs(changes or {}) do data[k] = v end
  return data
end

local examples = {
  { input = { config_key = "app_settings",
      config_data = { activeProvider = "google", availableProviders = { "google", "openai", "anthropic" } } },
    valid = true },
  { input = { config_key = "document_agent_openai", config_data = document_agent() }, valid = true },
  { input = { config_key = "chat_model_agent_google", config_data = {
      enabled = false, rateLimit = { perMinute = 10, perHour = 100, perDay = 1000 },
      capabilities = { fileInput = true },
      fileInputTypes = { pdf = { enabled = true }, codeFiles = { py = { enabled = true } } },
      tools = { documentAgent = { description = "Documents", enabled = true } } } },
    valid = true },
  -- PATCH of config_data, the key coming from the filter config_key=eq.document_agent_openai.
  { input = { config_data = document_agent() },
    ctx = { partial = true, filters = { config_key = { "document_agent_openai" } } }, valid = true },
  { input = { config_key = "document_agent_google",
      config_data = document_agent({ rateLimit = { perMinute = 5, perHour = 0, perDay = 200 }, enabled = "yes" }) },
    errors = {
      { path = "/config_data/enabled", message = "expected a boolean, got a string" },
      { path = "/config_data/rateLimit/perHour", message = "must be greater than 0" } } },
  { input = { config_key = "python_agent_google",
      config_data = document_agent({ rateLimit = { perMinute = 60, perHour = 50, perDay = 40 } }) },
    errors = {
      { path = "/config_data/rateLimit/perHour", message = "must be at least perMinute (60)" },
      { path = "/config_data/rateLimit/perDay", message = "must be at least perHour (50)" } } },
  { input = { config_key = "provider_tools_agent_google", config_data = { enabled = true } },
    errors = {
      { path = "/config_data/rateLimit", message = "is required" },
      { path = "/config_data/systemPrompt", message = "is required" },
      { path = "/config_data/tools", message = "is required" } } },
  { input = { config_key = "app_settings", config_data = { activeProvider = "openai", availableProviders = { "google" } } },
    errors = { { path = "/config_data/activeProvider", message = "must be one of availableProviders (google)" } } },
  { input = { config_key = "chat_agent_google", config_data = {} },
    errors = { { path = "/config_key", message = KEY_RULE .. " (got 'chat_agent_google')" } } },
  { input = { config_data = document_agent() }, ctx = { partial = true },
    errors = { { path = "/config_key",
      message = "is needed to check config_data: send config_key, or filter with config_key=eq.<key>" } } },
}

return {
  validate = validate,
  examples = examples,
  spec_for = spec_for,
  parse_key = parse_key,
  agent_types = AGENT_TYPES,
}
