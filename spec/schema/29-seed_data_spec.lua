-- Seed 003 example data (sql/029_seed_data.sql).
local h = require("helpers")

local AGENTS = { "chat_model_agent", "provider_tools_agent", "document_agent",
                 "python_agent", "mermaid_agent", "git_mcp_agent" }
local PROVIDERS = { "google", "openai", "anthropic" }
local MODELS = { "gemini-2.0-flash", "gemini-2.5-flash", "gemini-2.5-pro", "gemma-3",
                 "gpt-4o", "gpt-4o-mini", "gpt-4-turbo",
                 "claude-3-5-sonnet-20241022", "claude-3-5-haiku-20241022", "claude-3-opus-20240229" }

local function list(values)
  local quoted = {}
  for i, v in ipairs(values) do quoted[i] = h.lit(v) end
  return table.concat(quoted, ", ")
end

local function seeded_keys()
  local keys = { "app_settings", "logging_settings" }
  for _, p in ipairs(PROVIDERS) do
    for _, a in ipairs(AGENTS) do keys[#keys + 1] = a .. "_" .. p end
  end
  return keys
end

-- A fingerprint of every seeded row, timestamps included.
local function fingerprint()
  return h.scalar(([[select md5(
      (select string_agg(c::text, '|' order by c.config_key) from public.admin_config c where c.config_key in (%s))
      || (select string_agg(m::text, '|' order by m.model_id) from public.model_config m where m.model_id in (%s)))]])
    :format(list(seeded_keys()), list(MODELS)))
end

describe("seed data: admin_config", function()
  it("has app_settings, logging_settings and six agent configurations per provider: 20 rows", function()
    assert.equal("20", h.scalar(("select count(*) from public.admin_config where config_key in (%s)")
      :format(list(seeded_keys()))))
  end)

  it("makes google the active provider among google, openai and anthropic", function()
    assert.same({ { active = "google", available = '["google", "openai", "anthropic"]' } },
      assert(h.query([[select config_data ->> 'activeProvider' as active,
                              (config_data -> 'availableProviders')::text as available
                         from public.admin_config where config_key = 'app_settings']])))
  end)

  it("logs errors but not user or agent activity, keeping them 90, 30 and 7 days", function()
    assert.same({ { errors = "true", users = "false", agents = "false", r_err = "90", r_user = "30", r_agent = "7",
                    toggles = "true", anonymize = "false" } },
      assert(h.query([[select c ->> 'error_logging_enabled' as errors,
                              c ->> 'user_activity_logging_enabled' as users,
                              c ->> 'agent_activity_logging_enabled' as agents,
                              c #>> '{log_retention_days,error_logs}' as r_err,
                              c #>> '{log_retention_days,user_activity_logs}' as r_user,
                              c #>> '{log_retention_days,agent_activity_logs}' as r_agent,
                              c #>> '{category_toggles,log_auth_events}' as toggles,
                              c #>> '{privacy_settings,anonymize_ip}' as anonymize
                         from (select config_data as c from public.admin_config
                                where config_key = 'logging_settings') s]])))
  end)

  it("gives the google agents the seed's rate limits per minute, hour and day", function()
    local rows = assert(h.query([[select config_key,
                                         concat_ws('/', config_data #>> '{rateLimit,perMinute}',
                                                        config_data #>> '{rateLimit,perHour}',
                                                        config_data #>> '{rateLimit,perDay}') as limits,
                                         config_data ->> 'enabled' as enabled
                                    from public.admin_config
                                   where config_key like '%\_google' escape '\'
                                   order by config_key]]))
    assert.same({
      { config_key = "chat_model_agent_google", limits = "10/100/1000", enabled = "true" },
      { config_key = "document_agent_google", limits = "5/50/200", enabled = "true" },
      { config_key = "git_mcp_agent_google", limits = "5/50/200", enabled = "true" },
      { config_key = "mermaid_agent_google", limits = "3/25/100", enabled = "true" },
      { config_key = "provider_tools_agent_google", limits = "8/80/500", enabled = "true" },
      { config_key = "python_agent_google", limits = "5/50/200", enabled = "true" },
    }, rows)
  end)

  it("gives every agent configuration enabled, a complete rateLimit and tools", function()
    assert.equal("0", h.scalar(([[select count(*) from public.admin_config
                                   where config_key in (%s) and config_key not in ('app_settings', 'logging_settings')
                                     and not (config_data ? 'enabled' and config_data ? 'tools'
                                              and config_data -> 'rateLimit' ?& array['perMinute', 'perHour', 'perDay'])]])
      :format(list(seeded_keys()))))
  end)

  it("gives each agent the tools the seed lists", function()
    local rows = assert(h.query([[select config_key,
                                         (select string_agg(k, ',' order by k) from jsonb_object_keys(config_data -> 'tools') k) as tools
                                    from public.admin_config where config_key like '%\_google' escape '\'
                                   order by config_key]]))
    assert.same({
      { config_key = "chat_model_agent_google", tools = "documentAgent,gitMcpAgent,mermaidAgent,providerToolsAgent,pythonAgent" },
      { config_key = "document_agent_google", tools = "create,revert,suggestion,update" },
      { config_key = "git_mcp_agent_google", tools = "branches,code_search,issues,pull_requests,repos,users" },
      { config_key = "mermaid_agent_google", tools = "create,fix,generate,revert,update" },
      { config_key = "provider_tools_agent_google", tools = "codeExecution,googleSearch,urlContext" },
      { config_key = "python_agent_google", tools = "create,explain,fix,generate,revert,update" },
    }, rows)
  end)

  it("gives the chat model agents file input capabilities", function()
    assert.equal("3", h.scalar([[select count(*) from public.admin_config
                                  where config_key like 'chat\_model\_agent\_%' escape '\'
                                    and config_data #>> '{capabilities,fileInput}' = 'true']]))
  end)
end)

describe("seed data: model_config", function()
  it("has 4 google, 3 openai and 3 anthropic models", function()
    assert.same({ { provider = "anthropic", n = "3" }, { provider = "google", n = "4" }, { provider = "openai", n = "3" } },
      assert(h.query(([[select provider, count(*) as n from public.model_config
                         where model_id in (%s) group by provider order by provider]]):format(list(MODELS)))))
  end)

  it("makes gemini-2.0-flash, gpt-4o and claude-3-5-sonnet the defaults", function()
    local rows = assert(h.query(([[select model_id from public.model_config
                                    where model_id in (%s) and is_default order by model_id]]):format(list(MODELS))))
    assert.same({ { model_id = "claude-3-5-sonnet-20241022" }, { model_id = "gemini-2.0-flash" }, { model_id = "gpt-4o" } },
      rows)
  end)

  it("leaves gemma-3, gpt-4-turbo and claude-3-opus inactive", function()
    local rows = assert(h.query(([[select model_id from public.model_config
                                    where model_id in (%s) and not is_active order by model_id]]):format(list(MODELS))))
    assert.same({ { model_id = "claude-3-opus-20240229" }, { model_id = "gemma-3" }, { model_id = "gpt-4-turbo" } }, rows)
  end)

  it("prices every model and records its context window and output limit", function()
    assert.equal("0", h.scalar(([[select count(*) from public.model_config
                                   where model_id in (%s)
                                     and not (input_pricing_per_million_tokens > 0
                                              and output_pricing_per_million_tokens >= input_pricing_per_million_tokens
                                              and metadata ?& array['contextWindow', 'maxOutputTokens'])]])
      :format(list(MODELS))))
    assert.same({ { input = "2.5000", output = "10.0000" } },
      assert(h.query([[select input_pricing_per_million_tokens as input, output_pricing_per_million_tokens as output
                         from public.model_config where model_id = 'gpt-4o']])))
  end)
end)

describe("seed data file", function()
  it("changes nothing when applied again", function()
    local f = assert(io.open("sql/029_seed_data.sql", "rb"))
    local sql = f:read("a")
    f:close()
    local before = fingerprint()
    h.accepts(sql)
    assert.equal(before, fingerprint())
    assert.equal("20", h.scalar(("select count(*) from public.admin_config where config_key in (%s)")
      :format(list(seeded_keys()))))
    assert.equal("10", h.scalar(("select count(*) from public.model_config where model_id in (%s)"):format(list(MODELS))))
  end)

  it("keeps an admin's choice of default model when applied again", function()
    local f = assert(io.open("sql/029_seed_data.sql", "rb"))
    local sql = f:read("a")
    f:close()
    finally(function()
      h.accepts("update public.model_config set is_default = true where model_id = 'gpt-4o'")
    end)
    h.accepts("update public.model_config set is_default = true where model_id = 'gpt-4o-mini'")
    h.accepts(sql)
    assert.equal("gpt-4o-mini", h.scalar([[select string_agg(model_id, ',') from public.model_config
                                           where provider = 'openai' and is_default]]))
  end)
end)
