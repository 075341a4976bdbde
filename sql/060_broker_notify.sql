-- Change feed for strata's native broker resolution engine (core/resolve.c):
-- every insert, update and delete of broker_values, workspaces and
-- data_broker NOTIFYs channel strata_broker with the ids that changed, so
-- the engine re-reads just those rows.  Statement-level triggers with
-- transition tables: one message per statement, not per row, so a bulk
-- change (a million values in one INSERT, a workspace tree deleted with its
-- cascades) cannot flood the listener; past 200 ids the message asks for a
-- resynchronisation of that table instead.  Payload (JSON):
--   {"t":"v"|"w"|"b", "ids":["<uuid>", ...]}   or   {"t":..., "resync":true}

create function public.strata_notify_changes() returns trigger
language plpgsql as $$
declare
  kind text := tg_argv[0];
  ids uuid[];
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
    perform pg_notify('strata_broker', json_build_object('t', kind, 'resync', true)::text);
  else
    perform pg_notify('strata_broker', json_build_object('t', kind, 'ids', ids)::text);
  end if;
  return null;
end
$$;

-- A trigger with transition tables serves one event, hence three per table.
create trigger strata_notify_broker_values_ins after insert on public.broker_values
  referencing new table as new_rows for each statement execute function public.strata_notify_changes('v');
create trigger strata_notify_broker_values_upd after update on public.broker_values
  referencing old table as old_rows new table as new_rows for each statement execute function public.strata_notify_changes('v');
create trigger strata_notify_broker_values_del after delete on public.broker_values
  referencing old table as old_rows for each statement execute function public.strata_notify_changes('v');

create trigger strata_notify_workspaces_ins after insert on public.workspaces
  referencing new table as new_rows for each statement execute function public.strata_notify_changes('w');
create trigger strata_notify_workspaces_upd after update on public.workspaces
  referencing old table as old_rows new table as new_rows for each statement execute function public.strata_notify_changes('w');
create trigger strata_notify_workspaces_del after delete on public.workspaces
  referencing old table as old_rows for each statement execute function public.strata_notify_changes('w');

create trigger strata_notify_data_broker_ins after insert on public.data_broker
  referencing new table as new_rows for each statement execute function public.strata_notify_changes('b');
create trigger strata_notify_data_broker_upd after update on public.data_broker
  referencing old table as old_rows new table as new_rows for each statement execute function public.strata_notify_changes('b');
create trigger strata_notify_data_broker_del after delete on public.data_broker
  referencing old table as old_rows for each statement execute function public.strata_notify_changes('b');
