-- admin_config changes reach every strata instance at once: each statement
-- that changes the table NOTIFYs strata_admin_config, which the broker
-- feed's connection LISTENs to (core/broker_feed.c); the agent rate limits
-- (lua/strata/agent_limits.lua) re-read the table when that count moves,
-- instead of polling it.  Per statement, not per row: the listeners re-read
-- the whole (small) table anyway, and PostgreSQL folds identical
-- notifications of one transaction into one.
create function public.strata_notify_admin_config() returns trigger
language plpgsql as $$
begin
  perform pg_notify('strata_admin_config', tg_op);
  return null;
end
$$;

create trigger strata_admin_config_notify
  after insert or update or delete or truncate on public.admin_config
  for each statement execute function public.strata_notify_admin_config();
