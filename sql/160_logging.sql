-- Issue 14, seed 003's logging made real (core/db/log_db.c writes the rows):
--   strata_purge_logs_batch(p_limit): one bounded step of
--     purge_old_activity_logs() (same retention, same rule that unresolved
--     errors stay), at most p_limit rows per table, so the server's purge
--     timer never holds long locks on millions of rows;
--   the admin dashboards' RPCs (lua/policies/rpc.lua: admins only): usage
--     by day and agent, cost by model and provider, error counts by
--     category and severity, top users;
--   error_logs' resolution stamped by the server: resolved_by / resolved_at
--     come from the caller and the clock, never from the client's row.

create function public.strata_purge_logs_batch(p_limit integer)
returns table (user_logs_deleted bigint, agent_logs_deleted bigint, error_logs_deleted bigint)
language plpgsql security definer set search_path = '' as $$
declare
  retention jsonb := public.get_logging_config() -> 'log_retention_days';
  user_days integer := coalesce((retention ->> 'user_activity_logs')::integer, 30);
  agent_days integer := coalesce((retention ->> 'agent_activity_logs')::integer, 7);
  error_days integer := coalesce((retention ->> 'error_logs')::integer, 90);
begin
  delete from public.user_activity_logs where id in (
    select l.id from public.user_activity_logs l
     where l.created_at < localtimestamp - make_interval(days => user_days) limit p_limit);
  get diagnostics user_logs_deleted = row_count;
  delete from public.agent_activity_logs where id in (
    select l.id from public.agent_activity_logs l
     where l.created_at < localtimestamp - make_interval(days => agent_days) limit p_limit);
  get diagnostics agent_logs_deleted = row_count;
  delete from public.error_logs where id in (
    select l.id from public.error_logs l
     where l.created_at < localtimestamp - make_interval(days => error_days) and l.resolved limit p_limit);
  get diagnostics error_logs_deleted = row_count;
  return next;
end
$$;

revoke execute on function public.strata_purge_logs_batch(integer) from public;
grant execute on function public.strata_purge_logs_batch(integer) to service_role;

-- The dashboards read every user's rows: SECURITY DEFINER, and refused
-- here too (not only by rpc.lua) to anyone but an admin or the server.
create function public.strata_require_admin() returns void
language plpgsql stable security definer set search_path = '' as $$
begin
  if coalesce(auth.role(), '') <> 'service_role' and public.get_user_role() <> 'admin' then
    raise exception 'admins only' using errcode = '42501';
  end if;
end
$$;

create function public.admin_usage_by_day_agent(
  p_start_date date default current_date - 30, p_end_date date default current_date)
returns table (day date, agent_type text, calls bigint, total_tokens bigint, total_cost numeric)
language plpgsql stable security definer set search_path = '' as $$
begin
  perform public.strata_require_admin();
  return query
    select l.request_timestamp::date, l.agent_type::text, count(*),
           coalesce(sum(l.total_tokens), 0)::bigint, coalesce(sum(l.total_cost), 0)::numeric
      from public.usage_logs l
     where l.request_timestamp::date between p_start_date and p_end_date
     group by 1, 2 order by 1, 2;
end
$$;

create function public.admin_cost_by_model_provider(
  p_start_date date default current_date - 30, p_end_date date default current_date)
returns table (provider text, model_used text, calls bigint, input_tokens bigint, output_tokens bigint,
               total_cost numeric)
language plpgsql stable security definer set search_path = '' as $$
begin
  perform public.strata_require_admin();
  return query
    select l.provider::text, l.model_used::text, count(*), coalesce(sum(l.input_tokens), 0)::bigint,
           coalesce(sum(l.output_tokens), 0)::bigint, coalesce(sum(l.total_cost), 0)::numeric
      from public.usage_logs l
     where l.request_timestamp::date between p_start_date and p_end_date
     group by 1, 2 order by 6 desc, 1, 2;
end
$$;

create function public.admin_error_counts(
  p_start_date date default current_date - 30, p_end_date date default current_date)
returns table (error_category text, severity text, total bigint, unresolved bigint)
language plpgsql stable security definer set search_path = '' as $$
begin
  perform public.strata_require_admin();
  return query
    select l.error_category::text, l.severity::text, count(*), count(*) filter (where not coalesce(l.resolved, false))
      from public.error_logs l
     where l.created_at::date between p_start_date and p_end_date
     group by 1, 2 order by 3 desc, 1, 2;
end
$$;

create function public.admin_top_users(
  p_start_date date default current_date - 30, p_end_date date default current_date, p_limit integer default 10)
returns table (user_id uuid, calls bigint, total_tokens bigint, total_cost numeric)
language plpgsql stable security definer set search_path = '' as $$
begin
  perform public.strata_require_admin();
  return query
    select l.user_id, count(*), coalesce(sum(l.total_tokens), 0)::bigint, coalesce(sum(l.total_cost), 0)::numeric
      from public.usage_logs l
     where l.request_timestamp::date between p_start_date and p_end_date
     group by 1 order by 4 desc, 2 desc, 1 limit greatest(p_limit, 0);
end
$$;

-- A client's update (a request whose role claim is anon or authenticated:
-- not current_user, which is service_role for the REST layer's statements
-- that carry the caller's Lua policy, conf rest_rls off): marking an error
-- resolved stamps who and when; un-resolving clears both; any other update
-- keeps them as they were.  Statements without request settings (strata's
-- own, an operator's psql, handle_auth_user_deletion()) and service_role's
-- are trusted.
create function public.strata_stamp_error_resolution() returns trigger
language plpgsql as $$
begin
  if coalesce(auth.role(), '') not in ('anon', 'authenticated') then
    return new;
  end if;
  if coalesce(new.resolved, false) and not coalesce(old.resolved, false) then
    new.resolved_by := auth.uid();
    new.resolved_at := localtimestamp;
  elsif not coalesce(new.resolved, false) then
    new.resolved_by := null;
    new.resolved_at := null;
  else
    new.resolved_by := old.resolved_by;
    new.resolved_at := old.resolved_at;
  end if;
  return new;
end
$$;

create trigger strata_error_logs_resolution
  before update on public.error_logs
  for each row execute function public.strata_stamp_error_resolution();
