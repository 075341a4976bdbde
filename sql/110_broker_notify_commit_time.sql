-- The strata_broker payloads (sql/060_broker_notify.sql) also carry what the
-- broker feed needs to measure its lag, commit to applied
-- (strata_broker_apply_lag_seconds in core/db/broker_feed.c):
--   "x": the transaction's id (pg_current_xact_id), so that the feed can
--        tell the notifications of one transaction from the next one's;
--   "c": clock_timestamp() when the statement's trigger ran, in seconds
--        since the epoch.
-- clock_timestamp() is the closest to the commit PostgreSQL lets a trigger
-- see: now() is the start of the transaction and statement_timestamp() the
-- start of the statement, both earlier by everything the transaction or
-- statement did, whereas an AFTER ... FOR EACH STATEMENT trigger runs once
-- the statement's rows are written.  In a transaction of many statements the
-- feed takes the latest "c" among the transaction's notifications (the last
-- statement's), so the lag it reports errs long by the time the client took
-- to send COMMIT and the commit itself, never short.
-- Payload (JSON, ids or resync as before):
--   {"t":"v"|"w"|"b", "x":"<xid>", "c":<epoch seconds>, "ids":["<uuid>", ...]}
--   {"t":..., "x":..., "c":..., "resync":true}
-- Two notifications now differ even when they name the same ids, so
-- PostgreSQL no longer folds them within a transaction; 200 ids and the new
-- keys still fit well under pg_notify's 8000 bytes.

create or replace function public.strata_notify_changes() returns trigger
language plpgsql as $$
declare
  kind text := tg_argv[0];
  ids uuid[];
  xid text := pg_current_xact_id()::text;
  at numeric := extract(epoch from clock_timestamp());
begin
  if tg_op = 'DELETE' then
    select array_agg(id) into ids from (select id from old_rows limit 201) s;
  elsif tg_op = 'INSERT' then
    select array_agg(id) into ids from (select id from new_rows limit 201) s;
  else
    select array_agg(id) into ids from (
      select id from new_rows union select id from old_rows limit 201) s;
  end if;
  if ids is null then
    return null;
  end if;
  if cardinality(ids) > 200 then
    perform pg_notify('strata_broker', json_build_object('t', kind, 'x', xid, 'c', at, 'resync', true)::text);
  else
    perform pg_notify('strata_broker', json_build_object('t', kind, 'x', xid, 'c', at, 'ids', ids)::text);
  end if;
  return null;
end
$$;
