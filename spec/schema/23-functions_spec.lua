-- Seed 003 functions and the triggers standing in for foreign keys to
-- auth.users (sql/023_functions.sql).
local h = require("helpers")

-- Setup for h.query / h.scalar: the request is made by `uid`.
local function as(uid, extra)
  return ([[select set_config('request.jwt.claims', '{"sub":"%s","role":"authenticated"%s}', true)]])
    :format(uid, extra or "")
end

local function count(sql)
  return tonumber(h.scalar(sql))
end

local function chat(user)
  local id = h.uuid()
  h.accepts(([[insert into public."Chat"(id, title, user_id) values (%s, 'a chat', %s)]])
    :format(h.lit(id), h.lit(user)))
  return id
end

describe("get_user_role()", function()
  it("answers admin for a user whose raw_user_meta_data has role admin", function()
    local admin = h.user('{"role": "admin"}')
    assert.equal("admin", h.scalar("select public.get_user_role()", as(admin)))
  end)

  it("answers user for a user without a role", function()
    assert.equal("user", h.scalar("select public.get_user_role()", as(h.user())))
  end)

  it("answers user without any request claims", function()
    assert.equal("user", h.scalar("select public.get_user_role()"))
  end)

  it("reads the token's user_metadata.role first, as the seed does", function()
    local plain = h.user()
    assert.equal("admin", h.scalar("select public.get_user_role()", as(plain, [[,"user_metadata":{"role":"admin"}]])))
  end)
end)

describe("is_current_user_admin()", function()
  it("is true for a user whose raw_user_meta_data has role admin", function()
    assert.equal("t", h.scalar("select public.is_current_user_admin()", as(h.user('{"role": "admin"}'))))
  end)

  it("is false for a user with another role", function()
    assert.equal("f", h.scalar("select public.is_current_user_admin()", as(h.user('{"role": "user"}'))))
  end)

  it("is false for a user without metadata", function()
    assert.equal("f", h.scalar("select public.is_current_user_admin()", as(h.user())))
  end)
end)

describe("validate_user_id()", function()
  -- One insert per table the seed puts a validate_*_user_id trigger on.
  local function inserts(user)
    local u = h.lit(user)
    return {
      validate_chat_user_id = ([[insert into public."Chat"(title, user_id) values ('t', %s)]]):format(u),
      validate_document_user_id = ([[insert into public."Document"(title, user_id) values ('t', %s)]]):format(u),
      validate_usage_logs_user_id = ([[insert into public.usage_logs(user_id, agent_type) values (%s, 'python_agent')]])
        :format(u),
      validate_rate_limit_user_id = ([[insert into public.rate_limit_tracking(user_id, agent_type, period_start,
          period_end, limit_type, limit_value) values (%s, 'python_agent', now(), now(), 'hourly', 1)]]):format(u),
      validate_github_repos_user_id = ([[insert into public.github_repositories(user_id, repo_owner, repo_name)
          values (%s, 'octo', 'hello')]]):format(u),
    }
  end

  local function suggestion_insert(owner, author)
    local doc = h.uuid()
    h.accepts(([[insert into public."Document"(id, "createdAt", title, user_id) values (%s, '2024-01-01', 't', %s)]])
      :format(h.lit(doc), h.lit(owner)))
    return ([[insert into public."Suggestion"("documentId", "documentCreatedAt", "originalText", "suggestedText", user_id)
              values (%s, '2024-01-01', 'a', 'b', %s)]]):format(h.lit(doc), h.lit(author))
  end

  it("accepts rows of an existing user in every validated table", function()
    local user = h.user()
    for _, sql in pairs(inserts(user)) do h.accepts(sql) end
    h.accepts(suggestion_insert(user, user))
  end)

  it("refuses an unknown user id in every validated table", function()
    for trigger, sql in pairs(inserts(h.uuid())) do
      local err = h.refuses("P0001", sql)
      assert.is_truthy(err.message:find("does not exist in auth.users", 1, true), trigger)
    end
    h.refuses("P0001", suggestion_insert(h.user(), h.uuid()))
  end)

  it("refuses an update that moves a row to an unknown user", function()
    local c = chat(h.user())
    h.refuses("P0001", ([[update public."Chat" set user_id = %s where id = %s]]):format(h.lit(h.uuid()), h.lit(c)))
  end)

  it("accepts an update that moves a row to another existing user", function()
    local c = chat(h.user())
    local other = h.user()
    h.accepts(([[update public."Chat" set user_id = %s where id = %s]]):format(h.lit(other), h.lit(c)))
  end)

  it("leaves a missing user_id to the NOT NULL constraint", function()
    h.refuses("23502", [[insert into public."Chat"(title) values ('no user')]])
  end)

  it("is attached to exactly the six tables the seed lists", function()
    assert.equal(6, count([[select count(*) from pg_trigger t join pg_proc p on p.oid = t.tgfoid
                             where p.proname = 'validate_user_id' and t.tgname in
                               ('validate_chat_user_id', 'validate_document_user_id', 'validate_suggestion_user_id',
                                'validate_usage_logs_user_id', 'validate_rate_limit_user_id',
                                'validate_github_repos_user_id')]]))
  end)
end)

describe("handle_auth_user_deletion()", function()
  it("deletes the user's chats with their messages, votes, streams and chat documents", function()
    local user = h.user()
    local c = chat(user)
    local m = h.uuid()
    h.accepts(([[insert into public."Message_v2"(id, "chatId", role, parts) values (%s, %s, 'user', '[]');
                 insert into public."Vote_v2"("chatId", "messageId", "isUpvoted") values (%s, %s, true);
                 insert into public."Stream"("chatId") values (%s);
                 insert into public."Document"(title, user_id, chat_id) values ('in chat', %s, %s)]])
      :format(h.lit(m), h.lit(c), h.lit(c), h.lit(m), h.lit(c), h.lit(user), h.lit(c)))
    h.accepts(("delete from auth.users where id = %s"):format(h.lit(user)))
    local c_ = h.lit(c)
    assert.same({ { chats = "0", messages = "0", votes = "0", streams = "0", documents = "0" } },
      assert(h.query(([[select (select count(*) from public."Chat" where id = %s) as chats,
                               (select count(*) from public."Message_v2" where "chatId" = %s) as messages,
                               (select count(*) from public."Vote_v2" where "chatId" = %s) as votes,
                               (select count(*) from public."Stream" where "chatId" = %s) as streams,
                               (select count(*) from public."Document" where chat_id = %s) as documents]])
        :format(c_, c_, c_, c_, c_))))
  end)

  it("deletes the user's documents with their suggestions, and the user's suggestions elsewhere", function()
    local user, other = h.user(), h.user()
    local mine, theirs = h.uuid(), h.uuid()
    h.accepts(([[insert into public."Document"(id, "createdAt", title, user_id) values (%s, '2024-01-01', 'mine', %s);
                 insert into public."Document"(id, "createdAt", title, user_id) values (%s, '2024-01-01', 'theirs', %s);
                 insert into public."Suggestion"("documentId", "documentCreatedAt", "originalText", "suggestedText", user_id)
                   values (%s, '2024-01-01', 'a', 'b', %s), (%s, '2024-01-01', 'a', 'b', %s), (%s, '2024-01-01', 'a', 'b', %s)]])
      :format(h.lit(mine), h.lit(user), h.lit(theirs), h.lit(other),
              h.lit(mine), h.lit(other), h.lit(theirs), h.lit(user), h.lit(theirs), h.lit(other)))
    h.accepts(("delete from auth.users where id = %s"):format(h.lit(user)))
    assert.same({ { my_docs = "0", their_docs = "1", on_mine = "0", by_me = "0", theirs_left = "1" } },
      assert(h.query(([[select (select count(*) from public."Document" where id = %s) as my_docs,
                               (select count(*) from public."Document" where id = %s) as their_docs,
                               (select count(*) from public."Suggestion" where "documentId" = %s) as on_mine,
                               (select count(*) from public."Suggestion" where user_id = %s) as by_me,
                               (select count(*) from public."Suggestion" where "documentId" = %s) as theirs_left]])
        :format(h.lit(mine), h.lit(theirs), h.lit(mine), h.lit(user), h.lit(theirs)))))
  end)

  it("deletes the user's usage logs, rate limits and GitHub repositories", function()
    local user = h.user()
    local u = h.lit(user)
    h.accepts(([[insert into public.usage_logs(user_id, agent_type) values (%s, 'chat_model_agent');
                 insert into public.rate_limit_tracking(user_id, agent_type, period_start, period_end, limit_type, limit_value)
                   values (%s, 'chat_model_agent', now(), now(), 'daily', 5);
                 insert into public.github_repositories(user_id, repo_owner, repo_name) values (%s, 'o', 'r')]])
      :format(u, u, u))
    h.accepts(("delete from auth.users where id = %s"):format(u))
    assert.same({ { usage = "0", limits = "0", repos = "0" } },
      assert(h.query(([[select (select count(*) from public.usage_logs where user_id = %s) as usage,
                               (select count(*) from public.rate_limit_tracking where user_id = %s) as limits,
                               (select count(*) from public.github_repositories where user_id = %s) as repos]])
        :format(u, u, u))))
  end)

  it("keeps error logs and configurations, clearing resolved_by and updated_by", function()
    local admin = h.user('{"role": "admin"}')
    local err, key = h.uuid(), "spec_config_" .. h.uuid()
    h.accepts(([[insert into public.error_logs(id, error_type, error_category, error_message, resolved, resolved_by)
                   values (%s, 'app', 'c', 'm', true, %s);
                 insert into public.admin_config(config_key, config_data, updated_by) values (%s, '{}', %s)]])
      :format(h.lit(err), h.lit(admin), h.lit(key), h.lit(admin)))
    h.accepts(("delete from auth.users where id = %s"):format(h.lit(admin)))
    assert.same({ { resolved_by = nil, updated_by = nil, errors = "1", configs = "1" } },
      assert(h.query(([[select (select resolved_by from public.error_logs where id = %s) as resolved_by,
                               (select updated_by from public.admin_config where config_key = %s) as updated_by,
                               (select count(*) from public.error_logs where id = %s) as errors,
                               (select count(*) from public.admin_config where config_key = %s) as configs]])
        :format(h.lit(err), h.lit(key), h.lit(err), h.lit(key)))))
  end)

  it("leaves other users' data alone", function()
    local gone, stays = h.user(), h.user()
    local c = chat(stays)
    h.accepts(("delete from auth.users where id = %s"):format(h.lit(gone)))
    assert.equal(1, count(([[select count(*) from public."Chat" where id = %s]]):format(h.lit(c))))
  end)
end)

describe("get_current_user_usage_summary()", function()
  local function usage(user, agent, tokens, cost, at)
    h.accepts(([[insert into public.usage_logs(user_id, agent_type, input_tokens, output_tokens, total_tokens,
                   total_cost, request_timestamp)
                 values (%s, %s, %d, %d, %d, %s, %s)]])
      :format(h.lit(user), h.lit(agent), tokens, tokens * 2, tokens * 3, cost, at or "localtimestamp"))
  end

  it("sums the caller's usage of the last 30 days with a per-agent breakdown", function()
    local me, someone = h.user(), h.user()
    usage(me, "chat_model_agent", 10, "0.5")
    usage(me, "chat_model_agent", 20, "0.25")
    usage(me, "python_agent", 5, "0.125")
    usage(me, "python_agent", 1000, "9", "localtimestamp - interval '40 days'")
    usage(someone, "chat_model_agent", 7000, "7")
    local rows = assert(h.query([[select total_calls, total_input_tokens, total_output_tokens, total_tokens,
                                         total_cost::text as total_cost,
                                         agent_breakdown -> 'chat_model_agent' ->> 'calls' as chat_calls,
                                         agent_breakdown -> 'chat_model_agent' ->> 'tokens' as chat_tokens,
                                         (agent_breakdown -> 'python_agent' ->> 'cost')::numeric::text as python_cost,
                                         (select count(*) from jsonb_object_keys(agent_breakdown)) as agents
                                    from public.get_current_user_usage_summary()]], as(me)))
    assert.same({ { total_calls = "3", total_input_tokens = "35", total_output_tokens = "70", total_tokens = "105",
                    total_cost = "0.875000", chat_calls = "2", chat_tokens = "90", python_cost = "0.125000",
                    agents = "2" } }, rows)
  end)

  it("takes an explicit date range", function()
    local me = h.user()
    usage(me, "mermaid_agent", 4, "1", "'2024-03-10 12:00'")
    usage(me, "mermaid_agent", 4, "1", "'2024-03-20 12:00'")
    assert.equal("1", h.scalar([[select total_calls from public.get_current_user_usage_summary('2024-03-01', '2024-03-10')]],
      as(me)))
  end)

  it("answers zeros and an empty breakdown for a caller without usage", function()
    assert.same({ { total_calls = "0", total_tokens = "0", total_cost = "0", agent_breakdown = "{}" } },
      assert(h.query([[select total_calls, total_tokens, total_cost, agent_breakdown::text as agent_breakdown
                         from public.get_current_user_usage_summary()]], as(h.user()))))
  end)
end)

describe("logging settings", function()
  local function set_flag(name, value)
    h.accepts(([[update public.admin_config set config_data = jsonb_set(config_data, '{%s}', '%s')
                  where config_key = 'logging_settings']]):format(name, value))
  end

  it("get_logging_config() answers the seeded logging_settings", function()
    assert.same({ { error_on = "true", user_days = "30", agent_days = "7", error_days = "90", batch = "100" } },
      assert(h.query([[select c ->> 'error_logging_enabled' as error_on,
                              c -> 'log_retention_days' ->> 'user_activity_logs' as user_days,
                              c -> 'log_retention_days' ->> 'agent_activity_logs' as agent_days,
                              c -> 'log_retention_days' ->> 'error_logs' as error_days,
                              c -> 'performance_settings' ->> 'batch_size' as batch
                         from public.get_logging_config() c]])))
  end)

  it("is_user_activity_logging_enabled() and is_agent_activity_logging_enabled() are off as seeded", function()
    assert.same({ { u = "f", a = "f" } }, assert(h.query(
      "select public.is_user_activity_logging_enabled() as u, public.is_agent_activity_logging_enabled() as a")))
  end)

  it("the switches follow logging_settings when an admin turns them on", function()
    finally(function()
      set_flag("user_activity_logging_enabled", "false")
      set_flag("agent_activity_logging_enabled", "false")
    end)
    set_flag("user_activity_logging_enabled", "true")
    assert.same({ { u = "t", a = "f" } }, assert(h.query(
      "select public.is_user_activity_logging_enabled() as u, public.is_agent_activity_logging_enabled() as a")))
    set_flag("agent_activity_logging_enabled", "true")
    assert.equal("t", h.scalar("select public.is_agent_activity_logging_enabled()"))
  end)
end)

describe("purge_old_activity_logs()", function()
  local function user_log(age_days)
    local id = h.uuid()
    h.accepts(([[insert into public.user_activity_logs(id, user_id, correlation_id, activity_type, activity_category, created_at)
                 values (%s, %s, %s, 'chat_view', 'chat', localtimestamp - interval '%d days')]])
      :format(h.lit(id), h.lit(h.user()), h.lit(h.uuid()), age_days))
    return id
  end
  local function agent_log(age_days)
    local id = h.uuid()
    h.accepts(([[insert into public.agent_activity_logs(id, correlation_id, agent_type, operation_type, operation_category, created_at)
                 values (%s, %s, 'chat_model_agent', 'streaming', 'streaming', localtimestamp - interval '%d days')]])
      :format(h.lit(id), h.lit(h.uuid()), age_days))
    return id
  end
  local function error_log(age_days, resolved)
    local id = h.uuid()
    h.accepts(([[insert into public.error_logs(id, error_type, error_category, error_message, resolved, created_at)
                 values (%s, 'system', 'c', 'm', %s, localtimestamp - interval '%d days')]])
      :format(h.lit(id), tostring(resolved), age_days))
    return id
  end
  local function left(tbl, ids)
    local quoted = {}
    for i, id in ipairs(ids) do quoted[i] = h.lit(id) end
    return count(("select count(*) from public.%s where id in (%s)"):format(tbl, table.concat(quoted, ", ")))
  end

  it("deletes only the rows older than each table's retention, and only resolved errors", function()
    local old_user, new_user = user_log(31), user_log(29)
    local old_agent, new_agent = agent_log(8), agent_log(6)
    local old_resolved, old_open, new_resolved = error_log(91, true), error_log(91, false), error_log(89, true)
    local rows = assert(h.query([[select user_logs_deleted >= 1 as u, agent_logs_deleted >= 1 as a,
                                         error_logs_deleted >= 1 as e
                                    from public.purge_old_activity_logs()]]))
    assert.same({ { u = "t", a = "t", e = "t" } }, rows)
    assert.equal(0, left("user_activity_logs", { old_user }))
    assert.equal(1, left("user_activity_logs", { new_user }))
    assert.equal(0, left("agent_activity_logs", { old_agent }))
    assert.equal(1, left("agent_activity_logs", { new_agent }))
    assert.equal(0, left("error_logs", { old_resolved }))
    assert.equal(2, left("error_logs", { old_open, new_resolved }))
  end)

  it("answers zero counts when nothing is old enough", function()
    h.query("select * from public.purge_old_activity_logs()")
    user_log(1)
    assert.same({ { user_logs_deleted = "0", agent_logs_deleted = "0", error_logs_deleted = "0" } },
      assert(h.query("select * from public.purge_old_activity_logs()")))
  end)

  it("is not executable by the API roles other than service_role", function()
    assert.same({ { anon = "f", authenticated = "f", service = "t" } }, assert(h.query([[
      select has_function_privilege('anon', 'public.purge_old_activity_logs()', 'execute') as anon,
             has_function_privilege('authenticated', 'public.purge_old_activity_logs()', 'execute') as authenticated,
             has_function_privilege('service_role', 'public.purge_old_activity_logs()', 'execute') as service]])))
  end)
end)
