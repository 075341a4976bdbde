-- One row per (user, agent type, limit type, period) in rate_limit_tracking,
-- so that strata's usage writer (core/usage_writer.c) can add a second's
-- counts for many users with one INSERT ... ON CONFLICT DO UPDATE instead of
-- one statement per request.  Rows written before this migration that share
-- a key are merged first (counts summed, the newest limit kept), else the
-- unique index could not be built.
with ranked as (
  select id, user_id, agent_type, limit_type, period_start,
         sum(coalesce(request_count, 0)) over w as total,
         row_number() over (w order by created_at desc nulls last, id) as rn
    from public.rate_limit_tracking
  window w as (partition by user_id, agent_type, limit_type, period_start)
), kept as (
  update public.rate_limit_tracking t set request_count = r.total
    from ranked r
   where t.id = r.id and r.rn = 1 and t.request_count is distinct from r.total
)
delete from public.rate_limit_tracking t
 using ranked r
 where t.id = r.id and r.rn > 1;

create unique index rate_limit_tracking_period_key
  on public.rate_limit_tracking (user_id, agent_type, limit_type, period_start);
