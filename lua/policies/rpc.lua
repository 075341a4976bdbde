-- Who may call which SQL function through /rest/v1/rpc (service_role may call all; anything not listed here is service_role's only).
-- A bare name is the public schema's function; another schema's needs a "schema.name" key.
--
--   broker reads (get_broker_values_for_context, get_missing_broker_ids,
--   get_complete_broker_data_for_context): signed-in users, for their own
--     user id and for organizations, workspaces, projects, tasks, AI runs and
--     AI tasks they may read broker values of (lua/policies/public/broker_values.lua);
--     the complete data (with the brokers' definitions) only of brokers they
--     may read (data_broker.lua);
--   broker writes (upsert_broker_value, bulk_upsert_broker_values): signed-in
--     users, at one scope they own, never global, created_by none or themselves;
--   get_current_user_usage_summary, is_current_user_admin, get_user_role:
--     signed-in users (the functions read auth.uid() themselves);
--   agentflow.kpi_trend, agentflow.search_wiki, orchestrator.create_deliverable_version,
--   agent_activity_summary, project_progress: signed-in users (the rows RLS
--     lets them reach; expire_timed_out_tasks is service_role's job);
--   revert_document, apply_suggestion: signed-in users, on the documents and
--     suggestions RLS lets them change (sql/152);
--   get_logging_config, is_user_activity_logging_enabled,
--   is_agent_activity_logging_enabled: admins (they read admin_config);
--   admin_usage_by_day_agent, admin_cost_by_model_provider,
--   admin_error_counts, admin_top_users (sql/160_logging.sql, the log
--   dashboards): admins;
--   purge_old_activity_logs, strata_purge_logs_batch and everything else:
--   service_role only.
--
-- The SQL broker functions see every row (strata's database role has no RLS),
-- so membership is checked here, with one query when the call names scopes or
-- brokers that only the database can vouch for.  A failing check denies.

local cjson = require("cjson")
local kit = require("strata.policy_kit")

local NULL = cjson.null
local concat, type, tostring, ipairs = table.concat, type, tostring, ipairs

local me, admin, signed_in, nobody = kit.uid, kit.admin, kit.signed_in, kit.nobody

-- An argument that is absent or JSON null.
local function absent(v) return v == nil or v == NULL end

-- A list of ids as a PostgreSQL array literal (GET passes the literal itself).
local function id_array(list)
  if type(list) == "string" then return list end
  if type(list) ~= "table" then return "{}" end
  local out = {}
  for i, v in ipairs(list) do
    out[i] = v == NULL and "NULL" or ('"' .. (tostring(v):gsub('[\\"]', "\\%0")) .. '"')
  end
  return "{" .. concat(out, ",") .. "}"
end

local function empty_ids(list)
  return absent(list) or (type(list) == "table" and #list == 0) or list == "{}"
end

-- The brokers a caller may not read among $8, as data_broker.lua says.
local UNREADABLE_BROKERS = [[not exists (select 1 from public.data_broker d where d.id = any($8::uuid[])
    and not coalesce(d.user_id = $1::uuid or d.public_read or d.is_public or d.authenticated_read, false))]]

-- $1 caller, $2..$7 organization, workspace, project, task, AI run, AI task.
local READ_SQL = [[select
  ($2::uuid is null or exists (select 1 from public.organizations o where o.id = $2::uuid
    and (o.created_by = $1::uuid or exists (select 1 from public.user_organizations m
      where m.org_id = o.id and m.user_id = $1::uuid))))
  and ($3::uuid is null or exists (select 1 from public.workspaces w where w.id = $3::uuid
    and (exists (select 1 from public.organizations o where o.id = w.organization_id and o.created_by = $1::uuid)
      or exists (select 1 from public.user_organizations m where m.org_id = w.organization_id and m.user_id = $1::uuid))))
  and ($4::uuid is null or exists (select 1 from public.projects p where p.id = $4::uuid
    and (p.created_by = $1::uuid or exists (select 1 from public.user_projects m
      where m.project_id = p.id and m.user_id = $1::uuid))))
  and ($5::uuid is null or exists (select 1 from public.tasks t where t.id = $5::uuid
    and (t.user_id = $1::uuid or t.assignee_id = $1::uuid)))
  and ($6::uuid is null or exists (select 1 from public.ai_runs r where r.id = $6::uuid and r.user_id = $1::uuid))
  and ($7::uuid is null or exists (select 1 from public.ai_tasks a where a.id = $7::uuid and a.user_id = $1::uuid))
  and ]] .. UNREADABLE_BROKERS .. [[ as ok]]

local WRITE_SQL = [[select
  ($2::uuid is null or exists (select 1 from public.organizations o where o.id = $2::uuid and o.created_by = $1::uuid))
  and ($3::uuid is null or exists (select 1 from public.workspaces w join public.organizations o
    on o.id = w.organization_id where w.id = $3::uuid and o.created_by = $1::uuid))
  and ($4::uuid is null or exists (select 1 from public.projects p where p.id = $4::uuid and p.created_by = $1::uuid))
  and ($5::uuid is null or exists (select 1 from public.tasks t where t.id = $5::uuid and t.user_id = $1::uuid))
  and ($6::uuid is null or exists (select 1 from public.ai_runs r where r.id = $6::uuid and r.user_id = $1::uuid))
  and ($7::uuid is null or exists (select 1 from public.ai_tasks a where a.id = $7::uuid and a.user_id = $1::uuid))
  and ]] .. UNREADABLE_BROKERS .. [[ as ok]]

local SCOPES = { "p_organization_id", "p_workspace_id", "p_project_id", "p_task_id", "p_ai_runs_id", "p_ai_tasks_id" }

-- Asks the database whether uid may use the scopes and brokers of args.
local function scopes_allowed(sql, uid, args, brokers)
  local params, any = {}, not empty_ids(brokers)
  for i, name in ipairs(SCOPES) do
    local v = args[name]
    if not absent(v) then params[i] = tostring(v); any = true end
  end
  if not any then return true end -- nothing only the database could vouch for
  -- As strata's own role (no caller settings, no RLS): the check must see
  -- the rows the caller cannot, to refuse them.
  local rows, err = require("strata.pg").query(sql, uid, params[1], params[2], params[3], params[4], params[5], params[6],
    id_array(brokers))
  if not rows then
    require("strata.log").warn("rpc policy: scope check failed; denying", { error = err and err.message })
    return false
  end
  return rows[1] and rows[1].ok == true
end

-- The user scope, if named, must be the caller's own.
local function own_user(uid, args)
  return absent(args.p_user_id) or args.p_user_id == uid
end

-- Values are checked by scope only, as broker_values.lua does; the call
-- that also answers brokers' definitions (name, default, description) checks
-- that the caller may read those brokers (data_broker.lua).
local function broker_read(with_definitions)
  return function(ctx, args)
    local uid = me(ctx)
    if not uid or type(args) ~= "table" or not own_user(uid, args) then return false end
    return scopes_allowed(READ_SQL, uid, args, with_definitions and args.p_broker_ids or nil)
  end
end

local function broker_write(brokers_of)
  return function(ctx, args)
    local uid = me(ctx)
    if not uid or type(args) ~= "table" or not own_user(uid, args) then return false end
    -- Global values are everyone's: only service_role sets them.
    if not absent(args.p_is_global) and args.p_is_global ~= false and args.p_is_global ~= "false" then return false end
    if not absent(args.p_created_by) and args.p_created_by ~= uid then return false end
    return scopes_allowed(WRITE_SQL, uid, args, brokers_of(args))
  end
end

local A = "aaaaaaaa-0000-4000-8000-000000000001"
local B = "bbbbbbbb-0000-4000-8000-000000000002"
local USER_A = { role = "authenticated", uid = A }
local ADMIN_A = { role = "authenticated", uid = A, is_admin = true }

return {
  get_broker_values_for_context = broker_read(false),
  get_missing_broker_ids = broker_read(false),
  get_complete_broker_data_for_context = broker_read(true),
  upsert_broker_value = broker_write(function(args)
    return absent(args.p_broker_id) and {} or { args.p_broker_id }
  end),
  bulk_upsert_broker_values = broker_write(function(args)
    local ids = {}
    if type(args.p_broker_value_pairs) == "table" then
      for _, pair in ipairs(args.p_broker_value_pairs) do
        if type(pair) == "table" and not absent(pair.broker_id) then ids[#ids + 1] = pair.broker_id end
      end
    end
    return ids
  end),

  get_current_user_usage_summary = signed_in,
  is_current_user_admin = signed_in,
  get_user_role = signed_in,

  -- SECURITY INVOKER: row level security decides whose KPI records the caller reads.
  ["agentflow.kpi_trend"] = signed_in,
  ["agentflow.search_wiki"] = signed_in,
  -- SECURITY INVOKER, user_id = auth.uid() inside: the caller's own rows.
  ["orchestrator.create_deliverable_version"] = signed_in,
  ["orchestrator.agent_activity_summary"] = signed_in,
  ["orchestrator.project_progress"] = signed_in,
  revert_document = signed_in,
  apply_suggestion = signed_in,

  get_logging_config = admin,
  is_user_activity_logging_enabled = admin,
  is_agent_activity_logging_enabled = admin,

  admin_usage_by_day_agent = admin,
  admin_cost_by_model_provider = admin,
  admin_error_counts = admin,
  admin_top_users = admin,

  -- Destructive and SECURITY DEFINER: the server's (service_role) alone,
  -- admins included out.
  purge_old_activity_logs = nobody,
  ["*"] = nobody,

  examples = {
    { fn = "get_current_user_usage_summary", ctx = USER_A, expect = true },
    { fn = "get_current_user_usage_summary", ctx = { role = "anon" }, expect = false },
    { fn = "is_current_user_admin", ctx = USER_A, expect = true },
    { fn = "get_logging_config", ctx = ADMIN_A, expect = true },
    { fn = "get_logging_config", ctx = USER_A, expect = false },
    { fn = "purge_old_activity_logs", ctx = ADMIN_A, expect = false },
    { fn = "admin_error_counts", ctx = ADMIN_A, expect = true },
    { fn = "admin_top_users", ctx = USER_A, expect = false },
    { fn = "strata_purge_logs_batch", ctx = ADMIN_A, expect = false },
    { fn = "some_function_nobody_listed", ctx = ADMIN_A, expect = false },
    { fn = "get_broker_values_for_context", ctx = USER_A, args = { p_broker_ids = { B }, p_user_id = A }, expect = true },
    { fn = "get_broker_values_for_context", ctx = USER_A, args = { p_broker_ids = {}, p_user_id = B }, expect = false },
    { fn = "get_missing_broker_ids", ctx = { role = "anon" }, args = { p_broker_ids = {} }, expect = false },
    { fn = "upsert_broker_value", ctx = USER_A, args = { p_value = 1, p_user_id = A }, expect = true },
    { fn = "upsert_broker_value", ctx = USER_A, args = { p_broker_id = B, p_value = 1, p_is_global = true }, expect = false },
    { fn = "bulk_upsert_broker_values", ctx = USER_A, args = { p_user_id = A, p_created_by = B }, expect = false },
  },
}
