-- Seed 003 analytics and logging tables (sql/022_logs.sql): usage_logs,
-- rate_limit_tracking, github_repositories, error_logs, user_activity_logs,
-- agent_activity_logs and their indexes.
local h = require("helpers")

local function chat(user)
  local id = h.uuid()
  h.accepts(([[insert into public."Chat"(id, title, user_id) values (%s, 'a chat', %s)]])
    :format(h.lit(id), h.lit(user)))
  return id
end

describe("usage_logs", function()
  it("accepts a usage row tied to a chat, timestamped now by default", function()
    local user = h.user()
    local id = h.uuid()
    h.accepts(([[insert into public.usage_logs(id, user_id, chat_id, agent_type, model_used, provider,
                   input_tokens, output_tokens, total_tokens, total_cost)
                 values (%s, %s, %s, 'chat_model_agent', 'gpt-4o', 'openai', 10, 20, 30, 0.000125)]])
      :format(h.lit(id), h.lit(user), h.lit(chat(user))))
    assert.equal("t", h.scalar(("select request_timestamp is not null from public.usage_logs where id = %s")
      :format(h.lit(id))))
  end)

  it("refuses a chat_id that names no chat", function()
    h.refuses("23503", ([[insert into public.usage_logs(user_id, chat_id, agent_type) values (%s, %s, 'chat_model_agent')]])
      :format(h.lit(h.user()), h.lit(h.uuid())))
  end)

  it("refuses a row without an agent type", function()
    h.refuses("23502", ("insert into public.usage_logs(user_id) values (%s)"):format(h.lit(h.user())))
  end)

  it("keeps its rows, with chat_id set to NULL, when the chat is deleted", function()
    local user = h.user()
    local c = chat(user)
    local id = h.uuid()
    h.accepts(([[insert into public.usage_logs(id, user_id, chat_id, agent_type) values (%s, %s, %s, 'document_agent')]])
      :format(h.lit(id), h.lit(user), h.lit(c)))
    h.accepts(([[delete from public."Chat" where id = %s]]):format(h.lit(c)))
    assert.same({ { n = "1" } }, assert(h.query(("select count(*) as n from public.usage_logs where id = %s and chat_id is null")
      :format(h.lit(id)))))
  end)
end)

describe("rate_limit_tracking", function()
  local function insert(limit_type)
    return ([[insert into public.rate_limit_tracking(user_id, agent_type, period_start, period_end, limit_type, limit_value)
              values (%s, 'python_agent', '2024-01-01 10:00', '2024-01-01 11:00', %s, 50)]])
      :format(h.lit(h.user()), h.lit(limit_type))
  end

  it("accepts hourly and daily limits", function()
    h.accepts(insert("hourly"))
    h.accepts(insert("daily"))
  end)

  it("refuses a limit type other than hourly or daily", function()
    h.refuses("23514", insert("weekly"))
  end)

  it("refuses a row without a limit value", function()
    h.refuses("23502", ([[insert into public.rate_limit_tracking(user_id, agent_type, period_start, period_end, limit_type)
                          values (%s, 'python_agent', now(), now(), 'hourly')]]):format(h.lit(h.user())))
  end)

  it("starts counting at zero", function()
    local id = h.uuid()
    h.accepts(([[insert into public.rate_limit_tracking(id, user_id, agent_type, period_start, period_end, limit_type, limit_value)
                 values (%s, %s, 'python_agent', now(), now(), 'daily', 10)]]):format(h.lit(id), h.lit(h.user())))
    assert.equal("0", h.scalar(("select request_count from public.rate_limit_tracking where id = %s"):format(h.lit(id))))
  end)
end)

describe("github_repositories", function()
  it("accepts a repository, active on branch main by default", function()
    local id = h.uuid()
    h.accepts(([[insert into public.github_repositories(id, user_id, repo_owner, repo_name) values (%s, %s, 'octo', 'hello')]])
      :format(h.lit(id), h.lit(h.user())))
    assert.same({ { default_branch = "main", is_active = "t" } },
      assert(h.query(("select default_branch, is_active from public.github_repositories where id = %s"):format(h.lit(id)))))
  end)

  it("refuses a repository without an owner", function()
    h.refuses("23502", ("insert into public.github_repositories(user_id, repo_name) values (%s, 'hello')")
      :format(h.lit(h.user())))
  end)
end)

describe("error_logs", function()
  it("accepts an anonymous error, of severity error and unresolved by default", function()
    local id = h.uuid()
    h.accepts(([[insert into public.error_logs(id, error_type, error_category, error_message)
                 values (%s, 'api', 'timeout', 'upstream timed out')]]):format(h.lit(id)))
    assert.same({ { severity = "error", resolved = "f" } },
      assert(h.query(("select severity, resolved from public.error_logs where id = %s"):format(h.lit(id)))))
  end)

  it("accepts every error type and severity the seed lists", function()
    h.accepts([[insert into public.error_logs(error_type, error_category, error_message, severity) values
      ('auth', 'c', 'm', 'info'), ('api', 'c', 'm', 'warning'), ('admin', 'c', 'm', 'error'),
      ('app', 'c', 'm', 'critical'), ('user', 'c', 'm', 'info'), ('permission', 'c', 'm', 'info'),
      ('system', 'c', 'm', 'info')]])
  end)

  it("refuses an unknown error type", function()
    h.refuses("23514", [[insert into public.error_logs(error_type, error_category, error_message)
                         values ('network', 'c', 'm')]])
  end)

  it("refuses an unknown severity", function()
    h.refuses("23514", [[insert into public.error_logs(error_type, error_category, error_message, severity)
                         values ('api', 'c', 'm', 'fatal')]])
  end)

  it("refuses an error without a message", function()
    h.refuses("23502", [[insert into public.error_logs(error_type, error_category) values ('api', 'c')]])
  end)
end)

describe("user_activity_logs", function()
  it("accepts an activity, successful with empty metadata by default", function()
    local id = h.uuid()
    h.accepts(([[insert into public.user_activity_logs(id, user_id, correlation_id, activity_type, activity_category)
                 values (%s, %s, %s, 'chat_create', 'chat')]]):format(h.lit(id), h.lit(h.user()), h.lit(h.uuid())))
    assert.same({ { success = "t", activity_metadata = "{}" } },
      assert(h.query(("select success, activity_metadata::text as activity_metadata from public.user_activity_logs where id = %s")
        :format(h.lit(id)))))
  end)

  it("refuses an activity type the seed does not list", function()
    h.refuses("23514", ([[insert into public.user_activity_logs(user_id, correlation_id, activity_type, activity_category)
                          values (%s, %s, 'chat_rename', 'chat')]]):format(h.lit(h.user()), h.lit(h.uuid())))
  end)

  it("refuses an activity without a correlation id", function()
    h.refuses("23502", ([[insert into public.user_activity_logs(user_id, activity_type, activity_category)
                          values (%s, 'auth_login', 'authentication')]]):format(h.lit(h.user())))
  end)
end)

describe("agent_activity_logs", function()
  local function insert(agent_type, operation_type)
    return ([[insert into public.agent_activity_logs(correlation_id, agent_type, operation_type, operation_category)
              values (%s, %s, %s, 'generation')]]):format(h.lit(h.uuid()), h.lit(agent_type), h.lit(operation_type))
  end

  it("accepts a system operation without a user, no thinking and no retries by default", function()
    local id = h.uuid()
    h.accepts(([[insert into public.agent_activity_logs(id, correlation_id, agent_type, operation_type, operation_category)
                 values (%s, %s, 'python_agent', 'code_generation', 'generation')]]):format(h.lit(id), h.lit(h.uuid())))
    assert.same({ { thinking_mode = "f", retry_count = "0", success = "t" } },
      assert(h.query(("select thinking_mode, retry_count, success from public.agent_activity_logs where id = %s")
        :format(h.lit(id)))))
  end)

  it("refuses an unknown agent type", function()
    h.refuses("23514", insert("weather_agent", "search"))
  end)

  it("refuses an unknown operation type", function()
    h.refuses("23514", insert("git_mcp_agent", "deploy"))
  end)

  it("refuses an operation without a category", function()
    h.refuses("23502", ([[insert into public.agent_activity_logs(correlation_id, agent_type, operation_type)
                          values (%s, 'mermaid_agent', 'diagram_generation')]]):format(h.lit(h.uuid())))
  end)
end)

describe("log indexes", function()
  it("exist under the names the seed gives", function()
    local names = {
      "idx_usage_logs_user_id", "idx_usage_logs_user_timestamp", "idx_usage_logs_agent_timestamp",
      "idx_usage_logs_date_range", "idx_usage_logs_model_provider", "idx_usage_logs_date_agent",
      "idx_usage_logs_cost_date",
      "idx_rate_limit_user_id", "idx_rate_limit_user_agent", "idx_rate_limit_user_agent_period",
      "idx_github_repos_user_id", "idx_github_repos_user", "idx_github_repos_user_active",
      "idx_error_logs_user_id", "idx_error_logs_error_type", "idx_error_logs_error_category",
      "idx_error_logs_severity", "idx_error_logs_created_at", "idx_error_logs_resolved",
      "idx_error_logs_user_created", "idx_error_logs_type_severity",
      "idx_user_activity_user_id", "idx_user_activity_correlation", "idx_user_activity_type",
      "idx_user_activity_category", "idx_user_activity_created", "idx_user_activity_user_created",
      "idx_user_activity_resource", "idx_user_activity_success", "idx_user_activity_user_type_date",
      "idx_agent_activity_user_id", "idx_agent_activity_correlation", "idx_agent_activity_agent_type",
      "idx_agent_activity_operation", "idx_agent_activity_category", "idx_agent_activity_created",
      "idx_agent_activity_model", "idx_agent_activity_success", "idx_agent_activity_resource",
      "idx_agent_activity_duration", "idx_agent_activity_cost", "idx_agent_activity_agent_op_date",
    }
    local quoted = {}
    for i, n in ipairs(names) do quoted[i] = h.lit(n) end
    assert.equal(#names, tonumber(h.scalar(
      ("select count(*) from pg_indexes where schemaname = 'public' and indexname in (%s)")
        :format(table.concat(quoted, ", ")))))
  end)

  it("keeps the partial ones partial", function()
    assert.equal("3", h.scalar([[select count(*) from pg_indexes where schemaname = 'public'
      and indexname in ('idx_usage_logs_cost_date', 'idx_agent_activity_duration', 'idx_agent_activity_cost')
      and indexdef like '% WHERE %']]))
  end)
end)
