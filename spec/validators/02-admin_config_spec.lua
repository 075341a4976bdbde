-- lua/validators/admin_config.lua and lua/validators/model_config.lua
-- (unit; the seed rows come from the test database): seed 003's
-- validate_admin_config_data rules, each with a passing and a failing
-- configuration; the special keys; PATCH (partial) rows; model_config's
-- rules; and every seed row of sql/029_seed_data.sql passes.
local cjson = require("cjson")
local h = require("helpers")
local admin = require("validators.admin_config")
local model = require("validators.model_config")
local checks = require("strata.checks")

-- validate(row[, ctx]) as a list of "path: message" strings ({} when valid).
local function fails(v, row, ctx)
  local ok, errs = v.validate(row, ctx)
  if ok == true then return {} end
  assert.is_nil(ok)
  assert.is_table(errs)
  assert.is_true(#errs > 0, "invalid with an empty error list")
  local out = {}
  for i, e in ipairs(errs) do out[i] = e.path .. ": " .. e.message end
  return out
end

local function copy(t)
  if type(t) ~= "table" then return t end
  local out = {}
  for k, v in pairs(t) do out[k] = copy(v) end
  return out
end

local AGENTS = { "chat_model_agent", "provider_tools_agent", "document_agent", "python_agent", "mermaid_agent",
  "git_mcp_agent" }
local PROVIDERS = { "google", "openai", "anthropic" }

-- A complete, valid configuration for each agent type (as the seed's).
local function agent_data(agent_type)
  local data = {
    enabled = true,
    rateLimit = { perMinute = 5, perHour = 50, perDay = 200 },
    tools = { create = { description = "Create", enabled = true }, revert = { description = "Revert", enabled = false } },
  }
  if agent_type == "provider_tools_agent" then
    data.systemPrompt = "You are a specialized agent for external services."
    data.tools = { googleSearch = { description = "Search", enabled = true } }
  elseif agent_type == "chat_model_agent" then
    data.systemPrompt = "You are a helpful AI assistant."
    data.capabilities = { fileInput = true }
    data.fileInputTypes = { codeFiles = { py = { enabled = true } }, pdf = { enabled = true } }
    data.tools = { documentAgent = { description = "Documents", enabled = true } }
  end
  return data
end

local function agent_row(agent_type, provider, changes)
  local data = agent_data(agent_type)
  for k, v in pairs(changes or {}) do
    if v == "REMOVE" then data[k] = nil else data[k] = v end
  end
  return { config_key = agent_type .. "_" .. (provider or "google"), config_data = data }
end

local LOGGING = cjson.decode([[{
  "error_logging_enabled": true,
  "user_activity_logging_enabled": false,
  "agent_activity_logging_enabled": false,
  "log_retention_days": {"error_logs": 90, "user_activity_logs": 30, "agent_activity_logs": 7},
  "category_toggles": {"log_auth_events": true, "log_chat_events": false},
  "performance_settings": {"batch_writes": true, "batch_size": 100, "batch_interval_ms": 5000,
    "async_logging": true, "sampling_enabled": false, "sampling_rate": 1.0},
  "privacy_settings": {"anonymize_ip": false, "hash_email": false, "log_user_agent": true,
    "exclude_sensitive_paths": ["/api/auth/callback"]}
}]])

local function logging(changes)
  local data = copy(LOGGING)
  for k, v in pairs(changes or {}) do
    if v == "REMOVE" then data[k] = nil else data[k] = v end
  end
  return { config_key = "logging_settings", config_data = data }
end

describe("validators/admin_config", function()
  it("has the validator shape and passing examples, as a reload checks", function()
    assert.is_true(checks.validator("validators/admin_config.lua", admin))
    assert.is_true(checks.validator("validators/model_config.lua", model))
    local valid, invalid = 0, 0
    for _, ex in ipairs(admin.examples) do if ex.valid then valid = valid + 1 else invalid = invalid + 1 end end
    assert.is_true(valid >= 3 and invalid >= 3)
    valid, invalid = 0, 0
    for _, ex in ipairs(model.examples) do if ex.valid then valid = valid + 1 else invalid = invalid + 1 end end
    assert.is_true(valid >= 3 and invalid >= 3)
  end)

  describe("config_key", function()
    it("accepts {agent_type}_{provider} for every known agent type and provider", function()
      for _, a in ipairs(AGENTS) do
        for _, p in ipairs(PROVIDERS) do
          assert.same({}, fails(admin, agent_row(a, p)), a .. "_" .. p)
        end
      end
    end)

    it("refuses an unknown agent type, an unknown provider and other keys", function()
      for _, key in ipairs({ "chat_agent_google", "chat_model_agent_mistral", "chat_model_agent", "chat_model_agent_",
                             "document_agent_google_extra", "APP_SETTINGS", "settings", "" }) do
        local errs = fails(admin, { config_key = key, config_data = agent_data("document_agent") })
        assert.equal(1, #errs, key)
        assert.matches("^/config_key: must be app_settings, logging_settings or {agent_type}_{provider}", errs[1])
        assert.matches("(got '" .. key .. "')", errs[1], 1, true)
      end
    end)

    it("refuses a missing, null, non-string or overlong key", function()
      assert.same({ "/config_key: is required" }, fails(admin, { config_data = agent_data("document_agent") }))
      assert.same({ "/config_key: must not be null" },
        fails(admin, { config_key = cjson.null, config_data = agent_data("document_agent") }))
      assert.same({ "/config_key: expected a string" }, fails(admin, { config_key = 7, config_data = {} }))
      assert.same({ "/config_key: must have at most 100 characters" },
        fails(admin, { config_key = ("x"):rep(101), config_data = {} }))
    end)

    it("requires config_data as an object", function()
      assert.same({ "/config_data: is required" }, fails(admin, { config_key = "document_agent_google" }))
      assert.same({ "/config_data: must not be null" }, fails(admin, { config_key = "document_agent_google", config_data = cjson.null }))
      assert.same({ "/config_data: expected an object, got a string" },
        fails(admin, { config_key = "document_agent_google", config_data = "{}" }))
      assert.same({ "/config_key: is required", "/config_data: expected an object, got an array" },
        fails(admin, { config_data = { 1, 2 } }))
    end)
  end)

  describe("agent configurations", function()
    it("need enabled, a boolean", function()
      for _, a in ipairs(AGENTS) do
        assert.same({ "/config_data/enabled: is required" }, fails(admin, agent_row(a, "openai", { enabled = "REMOVE" })), a)
        assert.same({}, fails(admin, agent_row(a, "openai", { enabled = false })), a)
      end
      assert.same({ "/config_data/enabled: expected a boolean, got a string" },
        fails(admin, agent_row("python_agent", "google", { enabled = "true" })))
    end)

    it("need rateLimit", function()
      for _, a in ipairs(AGENTS) do
        assert.same({ "/config_data/rateLimit: is required" }, fails(admin, agent_row(a, "anthropic", { rateLimit = "REMOVE" })), a)
      end
      assert.same({ "/config_data/rateLimit: expected an object, got 10" },
        fails(admin, agent_row("python_agent", "google", { rateLimit = 10 })))
    end)

    it("need perMinute, perHour and perDay in rateLimit", function()
      assert.same({
        "/config_data/rateLimit/perMinute: is required",
        "/config_data/rateLimit/perHour: is required",
        "/config_data/rateLimit/perDay: is required",
      }, fails(admin, agent_row("mermaid_agent", "google", { rateLimit = {} })))
      assert.same({ "/config_data/rateLimit/perDay: is required" },
        fails(admin, agent_row("mermaid_agent", "google", { rateLimit = { perMinute = 3, perHour = 25 } })))
    end)

    it("take positive integers as limits", function()
      local function limit(v) return fails(admin, agent_row("git_mcp_agent", "google",
        { rateLimit = { perMinute = 1, perHour = v, perDay = 2147483647 } })) end
      assert.same({}, limit(1))
      assert.same({}, limit(2147483647))
      assert.same({ "/config_data/rateLimit/perHour: must be greater than 0" }, limit(0))
      assert.same({ "/config_data/rateLimit/perHour: must be greater than 0" }, limit(-5))
      assert.same({ "/config_data/rateLimit/perHour: expected an integer, got 1.5" }, limit(1.5))
      assert.same({ "/config_data/rateLimit/perHour: expected an integer, got a string" }, limit("10"))
      assert.same({ "/config_data/rateLimit/perHour: must not be null" }, limit(cjson.null))
      assert.same({ "/config_data/rateLimit/perHour: must be at most 2147483647" }, limit(2147483648))
    end)

    it("take perMinute <= perHour <= perDay", function()
      local function rl(m, hr, d) return fails(admin, agent_row("document_agent", "google",
        { rateLimit = { perMinute = m, perHour = hr, perDay = d } })) end
      assert.same({}, rl(10, 10, 10))
      assert.same({}, rl(10, 100, 1000))
      assert.same({ "/config_data/rateLimit/perHour: must be at least perMinute (10)" }, rl(10, 9, 1000))
      assert.same({ "/config_data/rateLimit/perDay: must be at least perHour (100)" }, rl(10, 100, 99))
      assert.same({ "/config_data/rateLimit/perHour: must be at least perMinute (100)",
                    "/config_data/rateLimit/perDay: must be at least perHour (50)" }, rl(100, 50, 10))
    end)

    it("need tools (every agent type is tool-based)", function()
      for _, a in ipairs(AGENTS) do
        assert.same({ "/config_data/tools: is required" }, fails(admin, agent_row(a, "google", { tools = "REMOVE" })), a)
      end
    end)

    it("take tools as an object of identifier -> { enabled, description, prompts }", function()
      assert.same({}, fails(admin, agent_row("document_agent", "google", { tools = {
        create = { description = "Create", enabled = true, systemPrompt = "Write.", userPromptTemplate = "{instruction}" },
        pull_requests = { enabled = false } } })))
      assert.same({
        "/config_data/tools/bad name: key must be an identifier (letters, digits, _)",
        "/config_data/tools/create/enabled: is required",
        "/config_data/tools/fix/description: expected a string, got 3",
        "/config_data/tools/revert: expected an object, got true",
      }, fails(admin, agent_row("python_agent", "google", { tools = {
        create = { description = "Create" }, fix = { enabled = true, description = 3 }, revert = true,
        ["bad name"] = { enabled = true } } })))
      assert.same({ "/config_data/tools: expected an object, got an array" },
        fails(admin, agent_row("python_agent", "google", { tools = { "create", "update" } })))
    end)

    it("need systemPrompt for the provider tools agent only", function()
      assert.same({ "/config_data/systemPrompt: is required" },
        fails(admin, agent_row("provider_tools_agent", "google", { systemPrompt = "REMOVE" })))
      assert.same({ "/config_data/systemPrompt: must have at least 1 character" },
        fails(admin, agent_row("provider_tools_agent", "google", { systemPrompt = "" })))
      for _, a in ipairs({ "chat_model_agent", "document_agent", "python_agent", "mermaid_agent", "git_mcp_agent" }) do
        assert.same({}, fails(admin, agent_row(a, "google", { systemPrompt = "REMOVE" })), a)
      end
      assert.same({ "/config_data/systemPrompt: expected a string, got true" },
        fails(admin, agent_row("git_mcp_agent", "google", { systemPrompt = true })))
    end)

    it("need capabilities and tools for the chat model agent", function()
      assert.same({ "/config_data/capabilities: is required" },
        fails(admin, agent_row("chat_model_agent", "google", { capabilities = "REMOVE" })))
      assert.same({ "/config_data/tools: is required", "/config_data/capabilities: is required" },
        fails(admin, agent_row("chat_model_agent", "google", { capabilities = "REMOVE", tools = "REMOVE" })))
      assert.same({ "/config_data/capabilities/fileInput: expected a boolean, got a string" },
        fails(admin, agent_row("chat_model_agent", "google", { capabilities = { fileInput = "yes" } })))
      -- Other agents do not need capabilities.
      assert.same({}, fails(admin, agent_row("python_agent", "google", { capabilities = "REMOVE" })))
    end)

    it("check the chat model agent's fileInputTypes", function()
      assert.same({}, fails(admin, agent_row("chat_model_agent", "google", { fileInputTypes = "REMOVE" })))
      assert.same({
        "/config_data/fileInputTypes/codeFiles/py/enabled: expected a boolean, got 1",
        "/config_data/fileInputTypes/images/enabled: expected a boolean, got a string",
      }, fails(admin, agent_row("chat_model_agent", "google", { fileInputTypes = {
        codeFiles = { py = { enabled = 1 }, js = { enabled = true } }, images = { enabled = "no" } } })))
    end)

    it("report every failure of a configuration at once", function()
      local errs = fails(admin, { config_key = "provider_tools_agent_openai", config_data = {
        enabled = "yes", rateLimit = { perMinute = 0, perHour = 1.5 }, tools = { search = {} } } })
      assert.same({
        "/config_data/enabled: expected a boolean, got a string",
        "/config_data/rateLimit/perMinute: must be greater than 0",
        "/config_data/rateLimit/perHour: expected an integer, got 1.5",
        "/config_data/rateLimit/perDay: is required",
        "/config_data/systemPrompt: is required",
        "/config_data/tools/search/enabled: is required",
      }, errs)
    end)
  end)

  describe("app_settings", function()
    local function app(data) return fails(admin, { config_key = "app_settings", config_data = data }) end

    it("needs activeProvider among availableProviders, all known", function()
      assert.same({}, app({ activeProvider = "google", availableProviders = { "google", "openai", "anthropic" } }))
      assert.same({}, app({ activeProvider = "anthropic", availableProviders = { "anthropic" } }))
      assert.same({ "/config_data/activeProvider: must be one of availableProviders (google, openai)" },
        app({ activeProvider = "anthropic", availableProviders = { "google", "openai" } }))
      assert.same({ "/config_data/activeProvider: must be one of google, openai, anthropic (got 'mistral')",
                    "/config_data/availableProviders/1: must be one of google, openai, anthropic (got 'mistral')" },
        app({ activeProvider = "mistral", availableProviders = { "google", "mistral" } }))
    end)

    it("needs both fields, at least one provider and no duplicate", function()
      assert.same({ "/config_data/activeProvider: is required", "/config_data/availableProviders: is required" }, app({}))
      assert.same({ "/config_data/availableProviders: must have at least 1 element" },
        app({ activeProvider = "google", availableProviders = {} }))
      assert.same({ "/config_data/availableProviders/1: duplicate of element 0" },
        app({ activeProvider = "google", availableProviders = { "google", "google" } }))
      assert.same({ "/config_data/availableProviders: expected an array, got a string" },
        app({ activeProvider = "google", availableProviders = "google" }))
    end)
  end)

  describe("logging_settings", function()
    it("accepts the seed's shape, and without the optional groups", function()
      assert.same({}, fails(admin, logging()))
      assert.same({}, fails(admin, logging({ category_toggles = "REMOVE", performance_settings = "REMOVE",
        privacy_settings = "REMOVE" })))
    end)

    it("needs the three logging flags as booleans", function()
      assert.same({ "/config_data/error_logging_enabled: is required",
                    "/config_data/user_activity_logging_enabled: expected a boolean, got 1" },
        fails(admin, logging({ error_logging_enabled = "REMOVE", user_activity_logging_enabled = 1 })))
    end)

    it("needs retention days as positive whole numbers of days", function()
      assert.same({ "/config_data/log_retention_days: is required" }, fails(admin, logging({ log_retention_days = "REMOVE" })))
      assert.same({
        "/config_data/log_retention_days/error_logs: must be greater than 0",
        "/config_data/log_retention_days/user_activity_logs: expected an integer, got 7.5",
        "/config_data/log_retention_days/agent_activity_logs: is required",
      }, fails(admin, logging({ log_retention_days = { error_logs = 0, user_activity_logs = 7.5 } })))
      assert.same({ "/config_data/log_retention_days/error_logs: must be at most 36500" },
        fails(admin, logging({ log_retention_days = { error_logs = 36501, user_activity_logs = 1, agent_activity_logs = 1 } })))
    end)

    it("checks the toggles, performance and privacy settings when present", function()
      assert.same({
        "/config_data/category_toggles/log_chat_events: expected a boolean, got a string",
        "/config_data/performance_settings/batch_size: must be greater than 0",
        "/config_data/performance_settings/sampling_rate: must be between 0 and 1",
        "/config_data/privacy_settings/exclude_sensitive_paths/0: must be a path starting with /",
      }, fails(admin, logging({
        category_toggles = { log_chat_events = "on" },
        performance_settings = { batch_size = 0, sampling_rate = 1.5 },
        privacy_settings = { exclude_sensitive_paths = { "api/auth" } },
      })))
    end)
  end)

  describe("PATCH (ctx.partial)", function()
    local P = { partial = true }
    local function filtered(...) return { partial = true, filters = { config_key = { ... } } } end

    it("checks config_data against the config_key of the patch", function()
      assert.same({}, fails(admin, agent_row("python_agent", "google"), P))
      assert.same({ "/config_data/tools: is required" },
        fails(admin, agent_row("python_agent", "google", { tools = "REMOVE" }), P))
    end)

    it("checks config_data against the key of the filter config_key=eq.x", function()
      local data = agent_data("provider_tools_agent")
      assert.same({}, fails(admin, { config_data = data }, filtered("provider_tools_agent_google")))
      data.systemPrompt = nil
      assert.same({ "/config_data/systemPrompt: is required" },
        fails(admin, { config_data = data }, filtered("provider_tools_agent_google")))
    end)

    it("checks config_data against every key of config_key=in.(...)", function()
      local data = agent_data("document_agent")
      assert.same({}, fails(admin, { config_data = data }, filtered("document_agent_google", "python_agent_openai")))
      assert.same({
        "/config_data/capabilities: is required (config_key chat_model_agent_google)",
        "/config_data/systemPrompt: is required (config_key provider_tools_agent_google)",
      }, fails(admin, { config_data = data }, filtered("document_agent_google", "chat_model_agent_google",
        "provider_tools_agent_google")))
    end)

    it("refuses config_data whose key it cannot know", function()
      assert.same({ "/config_key: is needed to check config_data: send config_key, or filter with config_key=eq.<key>" },
        fails(admin, { config_data = agent_data("document_agent") }, P))
      local errs = fails(admin, { config_data = agent_data("document_agent") }, filtered("bogus"))
      assert.equal(1, #errs)
      assert.matches("^/config_key: 'bogus' %(from the request's filter%) is not a known config_key", errs[1])
    end)

    it("refuses renaming a key without config_data, unless the key stays the same", function()
      local errs = fails(admin, { config_key = "document_agent_google" }, P)
      assert.equal(1, #errs)
      assert.matches("^/config_data: is required when config_key changes", errs[1])
      assert.same({}, fails(admin, { config_key = "document_agent_google" }, filtered("document_agent_google")))
      assert.same(1, #fails(admin, { config_key = "document_agent_google" }, filtered("python_agent_google")))
    end)

    it("accepts a patch of other columns alone, and still refuses nulls", function()
      assert.same({}, fails(admin, { updated_by = "aaaaaaaa-0000-4000-8000-000000000001" }, P))
      assert.same({ "/config_data: must not be null" }, fails(admin, { config_data = cjson.null }, filtered("app_settings")))
    end)
  end)

  describe("the seed data (sql/029_seed_data.sql)", function()
    it("has every admin_config row of the seed valid", function()
      local rows = assert(h.query("select config_key, config_data::text as data from public.admin_config order by config_key"))
      local seen = 0
      for _, r in ipairs(rows) do
        -- Other specs add rows of their own (spec_config_...); the seed's are these 20.
        if r.config_key == "app_settings" or r.config_key == "logging_settings" or admin.parse_key(r.config_key) then
          seen = seen + 1
          local row = { config_key = r.config_key, config_data = cjson.decode(r.data) }
          assert.same({}, fails(admin, row), r.config_key)
          assert.same({}, fails(admin, { config_data = row.config_data }, { partial = true, filters = { config_key = { r.config_key } } }))
        end
      end
      assert.equal(20, seen)
    end)

    it("has every model_config row of the seed valid", function()
      local ids = { "gemini-2.0-flash", "gemini-2.5-flash", "gemini-2.5-pro", "gemma-3", "gpt-4o", "gpt-4o-mini",
        "gpt-4-turbo", "claude-3-5-sonnet-20241022", "claude-3-5-haiku-20241022", "claude-3-opus-20240229" }
      local list = {}
      for i, id in ipairs(ids) do list[i] = h.lit(id) end
      local rows = assert(h.query(("select row_to_json(m)::text as j from public.model_config m where model_id in (%s)")
        :format(table.concat(list, ", "))))
      assert.equal(10, #rows)
      for _, r in ipairs(rows) do
        local row = cjson.decode(r.j)
        assert.same({}, fails(model, row), row.model_id)
      end
    end)
  end)
end)

describe("validators/model_config", function()
  local function good(changes)
    local row = { model_id = "gpt-4o", name = "GPT-4o", description = "Most capable GPT-4 model", provider = "openai",
      is_active = true, is_default = true, thinking_enabled = true,
      input_pricing_per_million_tokens = 2.5, output_pricing_per_million_tokens = 10,
      metadata = { contextWindow = 128000, maxOutputTokens = 4096 } }
    for k, v in pairs(changes or {}) do
      if v == "REMOVE" then row[k] = nil else row[k] = v end
    end
    return row
  end

  it("accepts a model of each known provider", function()
    for _, p in ipairs(PROVIDERS) do assert.same({}, fails(model, good({ provider = p })), p) end
  end)

  it("needs a known provider", function()
    assert.same({ "/provider: must be one of google, openai, anthropic (got 'mistral')" }, fails(model, good({ provider = "mistral" })))
    assert.same({ "/provider: is required" }, fails(model, good({ provider = "REMOVE" })))
  end)

  it("needs prices >= 0 that fit DECIMAL(10,4), as numbers or decimal strings", function()
    assert.same({}, fails(model, good({ input_pricing_per_million_tokens = 0, output_pricing_per_million_tokens = "0.3000" })))
    assert.same({}, fails(model, good({ output_pricing_per_million_tokens = 999999.9999 })))
    assert.same({
      "/input_pricing_per_million_tokens: must be at least 0",
      "/output_pricing_per_million_tokens: must be less than 1000000",
    }, fails(model, good({ input_pricing_per_million_tokens = -0.01, output_pricing_per_million_tokens = 1000000 })))
    assert.same({ "/input_pricing_per_million_tokens: expected a number or a decimal string, got a string",
                  "/output_pricing_per_million_tokens: is required" },
      fails(model, good({ input_pricing_per_million_tokens = "cheap", output_pricing_per_million_tokens = "REMOVE" })))
  end)

  it("needs metadata as an object with positive whole token counts", function()
    assert.same({}, fails(model, good({ metadata = "REMOVE" })))
    assert.same({}, fails(model, good({ metadata = {} })))
    assert.same({}, fails(model, good({ metadata = { contextWindow = 8192, capabilities = { "vision" } } })))
    assert.same({ "/metadata: expected an object, got a string" }, fails(model, good({ metadata = "big" })))
    assert.same({
      "/metadata/contextWindow: expected an integer, got a string",
      "/metadata/maxOutputTokens: must be greater than 0",
    }, fails(model, good({ metadata = { contextWindow = "128k", maxOutputTokens = -1 } })))
    assert.same({ "/metadata/contextWindow: must be at least maxOutputTokens (8192)" },
      fails(model, good({ metadata = { contextWindow = 4096, maxOutputTokens = 8192 } })))
  end)

  it("needs model_id and name fitting their columns, and typed flags", function()
    assert.same({
      "/model_id: must be 1 to 100 letters, digits and . _ : / - starting with a letter or digit",
      "/name: must have at most 200 characters",
      "/is_default: expected a boolean, got a string",
    }, fails(model, good({ model_id = "gpt 4o", name = ("n"):rep(201), is_default = "yes" })))
    assert.same({ "/model_id: is required", "/name: is required" }, fails(model, good({ model_id = "REMOVE", name = "REMOVE" })))
  end)

  it("checks only the columns present in a PATCH", function()
    assert.same({}, fails(model, { description = "reviewed" }, { partial = true }))
    assert.same({}, fails(model, { is_active = false }, { partial = true }))
    assert.same({ "/input_pricing_per_million_tokens: must be at least 0" },
      fails(model, { input_pricing_per_million_tokens = -1 }, { partial = true }))
    assert.same({ "/provider: must not be null" }, fails(model, { provider = cjson.null }, { partial = true }))
  end)
end)
