-- Seed 003 (chat platform), functions and the triggers that stand in for
-- foreign keys to auth.users: get_user_role(), validate_user_id() with the
-- six validate_*_user_id triggers, handle_auth_user_deletion() with
-- on_auth_user_deleted, get_current_user_usage_summary(),
-- is_current_user_admin(), get_logging_config(),
-- is_user_activity_logging_enabled(), is_agent_activity_logging_enabled()
-- and purge_old_activity_logs().  The admin_config / model_config trigger
-- functions are in 021_admin_config.sql.
--
-- SECURITY DEFINER functions pin search_path to '' and qualify every name,
-- so a caller's search_path cannot redirect them.

-- 'admin' or 'user'.  The seed reads the JWT's user_metadata.role; Supabase
-- copies that claim from auth.users.raw_user_meta_data, so when the token
-- carries no user_metadata.role the row of auth.uid() answers instead.
-- SECURITY DEFINER because API roles cannot read auth.users.
create function public.get_user_role() returns text
language sql stable security definer set search_path = '' as $$
  select coalesce(
    auth.jwt() -> 'user_metadata' ->> 'role',
    (select u.raw_user_meta_data ->> 'role' from auth.users u where u.id = auth.uid()),
    'user'
  )::text
$$;

-- FK-like check of user_id against auth.users (cross-schema foreign keys
-- are not allowed in Supabase).  A NULL is left to the column's NOT NULL,
-- so it is reported as such; an UPDATE that keeps user_id was already
-- checked when the value was written, and user deletions cascade through
-- handle_auth_user_deletion(), so it is not looked up again.
create function public.validate_user_id() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if new.user_id is null then
    return new;
  end if;
  if tg_op = 'UPDATE' and new.user_id = old.user_id then
    return new;
  end if;
  if not exists (select 1 from auth.users u where u.id = new.user_id) then
    raise exception 'user_id % does not exist in auth.users', new.user_id
      using schema = tg_table_schema, table = tg_table_name, column = 'user_id';
  end if;
  return new;
end
$$;

create trigger validate_chat_user_id
  before insert or update on public."Chat"
  for each row execute function public.validate_user_id();

create trigger validate_document_user_id
  before insert or update on public."Document"
  for each row execute function public.validate_user_id();

create trigger validate_suggestion_user_id
  before insert or update on public."Suggestion"
  for each row execute function public.validate_user_id();

create trigger validate_usage_logs_user_id
  before insert or update on public.usage_logs
  for each row execute function public.validate_user_id();

create trigger validate_rate_limit_user_id
  before insert or update on public.rate_limit_tracking
  for each row execute function public.validate_user_id();

create trigger validate_github_repos_user_id
  before insert or update on public.github_repositories
  for each row execute function public.validate_user_id();

-- The ON DELETE CASCADE that auth.users cannot have.  Chats go first (their
-- messages, votes, streams and chat documents follow by FK), then the
-- user's remaining documents (with their suggestions) and the user's own
-- suggestions on other people's documents, whose user_id would otherwise
-- point nowhere.  Audit columns are cleared rather than deleted: error logs
-- and configuration outlive the admin who touched them.  Activity and error
-- logs keep their user_id, as the seed says nothing about them.
create function public.handle_auth_user_deletion() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  delete from public."Chat" where user_id = old.id;
  delete from public."Document" where user_id = old.id;
  delete from public."Suggestion" where user_id = old.id;
  delete from public.usage_logs where user_id = old.id;
  delete from public.rate_limit_tracking where user_id = old.id;
  delete from public.github_repositories where user_id = old.id;
  update public.error_logs set resolved_by = null where resolved_by = old.id;
  update public.admin_config set updated_by = null where updated_by = old.id;
  return old;
end
$$;

create trigger on_auth_user_deleted
  before delete on auth.users
  for each row execute function public.handle_auth_user_deletion();

-- The caller's usage between two dates (inclusive), with a per-agent
-- breakdown {"<agent_type>": {"calls", "tokens", "cost"}}.  SECURITY INVOKER
-- as the seed says; the seed relied on RLS to keep other users' rows out,
-- and strata's row policies are Lua, so the filter on auth.uid() is
-- written here.
create function public.get_current_user_usage_summary(
  p_start_date date default current_date - 30,
  p_end_date date default current_date
)
returns table (
  total_calls bigint,
  total_input_tokens bigint,
  total_output_tokens bigint,
  total_tokens bigint,
  total_cost numeric,
  agent_breakdown jsonb
)
language sql stable security invoker as $$
  with mine as (
    select l.agent_type, l.input_tokens, l.output_tokens, l.total_tokens, l.total_cost
      from public.usage_logs l
     where l.user_id = auth.uid()
       and l.request_timestamp::date between p_start_date and p_end_date
  ),
  per_agent as (
    select m.agent_type,
           count(*) as calls,
           coalesce(sum(m.total_tokens), 0) as tokens,
           coalesce(sum(m.total_cost), 0) as cost
      from mine m
     group by m.agent_type
  )
  select count(*),
         coalesce(sum(m.input_tokens), 0)::bigint,
         coalesce(sum(m.output_tokens), 0)::bigint,
         coalesce(sum(m.total_tokens), 0)::bigint,
         coalesce(sum(m.total_cost), 0)::numeric,
         (select coalesce(jsonb_object_agg(p.agent_type,
                   jsonb_build_object('calls', p.calls, 'tokens', p.tokens, 'cost', p.cost)),
                 '{}'::jsonb)
            from per_agent p)
    from mine m
$$;

-- SECURITY INVOKER as the seed says; it goes through get_user_role() so
-- that SQL and the Lua side agree on who is an admin.
create function public.is_current_user_admin() returns boolean
language sql stable security invoker as $$
  select public.get_user_role() = 'admin'
$$;

-- The logging_settings row, or the seed's defaults when it is missing.
create function public.get_logging_config() returns jsonb
language sql stable security definer set search_path = '' as $$
  select coalesce(
    (select c.config_data from public.admin_config c where c.config_key = 'logging_settings'),
    '{
      "error_logging_enabled": true,
      "user_activity_logging_enabled": false,
      "agent_activity_logging_enabled": false,
      "log_retention_days": {"error_logs": 90, "user_activity_logs": 30, "agent_activity_logs": 7}
    }'::jsonb
  )
$$;

create function public.is_user_activity_logging_enabled() returns boolean
language sql stable security definer set search_path = '' as $$
  select coalesce(public.get_logging_config() -> 'user_activity_logging_enabled' = 'true'::jsonb, false)
$$;

create function public.is_agent_activity_logging_enabled() returns boolean
language sql stable security definer set search_path = '' as $$
  select coalesce(public.get_logging_config() -> 'agent_activity_logging_enabled' = 'true'::jsonb, false)
$$;

-- Deletes activity logs older than logging_settings.log_retention_days
-- (30 days for user, 7 for agent logs by default) and resolved error logs
-- older than theirs (90); unresolved errors stay whatever their age.
-- Timestamps are local TIMESTAMPs, hence localtimestamp.
create function public.purge_old_activity_logs()
returns table (user_logs_deleted bigint, agent_logs_deleted bigint, error_logs_deleted bigint)
language plpgsql security definer set search_path = '' as $$
declare
  retention jsonb := public.get_logging_config() -> 'log_retention_days';
  user_days integer := coalesce((retention ->> 'user_activity_logs')::integer, 30);
  agent_days integer := coalesce((retention ->> 'agent_activity_logs')::integer, 7);
  error_days integer := coalesce((retention ->> 'error_logs')::integer, 90);
begin
  delete from public.user_activity_logs
   where created_at < localtimestamp - make_interval(days => user_days);
  get diagnostics user_logs_deleted = row_count;

  delete from public.agent_activity_logs
   where created_at < localtimestamp - make_interval(days => agent_days);
  get diagnostics agent_logs_deleted = row_count;

  delete from public.error_logs
   where created_at < localtimestamp - make_interval(days => error_days)
     and resolved;
  get diagnostics error_logs_deleted = row_count;

  return next;
end
$$;

-- Destructive and SECURITY DEFINER: only the service role (and the owner)
-- may run it, as in the seed's project.
revoke execute on function public.purge_old_activity_logs() from public;
grant execute on function public.purge_old_activity_logs() to service_role;

-- Not created: the seed's validate_admin_config_data() and its trigger
-- trigger_validate_admin_config; admin-config validation is Lua in strata
-- (lua/validators/, a later issue).  The seed's RLS policies that call
-- get_user_role() are left to Lua as well (see the ends of 020-022).
