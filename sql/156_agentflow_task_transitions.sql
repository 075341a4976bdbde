-- The task status machine in the database (issue 15): every path that
-- changes agentflow.tasks.status as an API role (anon, authenticated,
-- service_role) follows the allowed moves, not only the routes that read
-- lua/rules/transitions.lua.
--
--   * agentflow_system.task_transitions holds the allowed moves.  The Lua
--     rule file is the source: strata writes its machine here
--     (sync_task_transitions, service_role only) before the first workflow
--     step of each loaded script generation (lua/strata/agentflow.lua), so
--     a reload of the rule file reaches the database too.  The rows below
--     are seed 004's machine, the rule file's default, until then.
--   * A trigger refuses a move the table does not hold (23514, naming from
--     and to), and refuses anon / authenticated any status change that the
--     workflow (which sets strata.task_move for its transaction) did not
--     make: a raw UPDATE by an API role would skip the step's events and the
--     KPI / trust recalculation.  (/rest/v1 writes are refused earlier, with
--     the route to use, by lua/validators/agentflow/tasks.lua.)  The
--     tables' owner (migrations, an operator's psql) is not checked.

create table agentflow_system.task_transitions (
  from_status text not null,
  to_status text not null,
  primary key (from_status, to_status)
);

insert into agentflow_system.task_transitions (from_status, to_status) values
  ('backlog', 'assigned'), ('backlog', 'cancelled'),
  ('assigned', 'in_progress'), ('assigned', 'backlog'), ('assigned', 'cancelled'),
  ('in_progress', 'blocked'), ('in_progress', 'completed'), ('in_progress', 'cancelled'),
  ('blocked', 'in_progress'), ('blocked', 'cancelled');

grant select on agentflow_system.task_transitions to authenticated, service_role;

-- p_moves: [["from", "to"], ...].  Replaces the table's moves when they
-- differ; true when it changed them.
create function agentflow_system.sync_task_transitions(p_moves jsonb)
returns boolean
language plpgsql security definer set search_path = pg_catalog, agentflow_system as $$
declare
  wanted text[];
  present text[];
begin
  select coalesce(array_agg(distinct m ->> 0 || '>' || (m ->> 1) order by m ->> 0 || '>' || (m ->> 1)), '{}') into wanted
    from jsonb_array_elements(p_moves) m;
  select coalesce(array_agg(from_status || '>' || to_status order by from_status || '>' || to_status), '{}') into present
    from agentflow_system.task_transitions;
  if wanted = present then return false; end if;
  -- one writer at a time; readers see the old or the new machine whole
  lock table agentflow_system.task_transitions in exclusive mode;
  delete from agentflow_system.task_transitions;
  insert into agentflow_system.task_transitions (from_status, to_status)
    select distinct m ->> 0, m ->> 1 from jsonb_array_elements(p_moves) m;
  return true;
end;
$$;

revoke all on function agentflow_system.sync_task_transitions(jsonb) from public, authenticated;
grant execute on function agentflow_system.sync_task_transitions(jsonb) to service_role;

create function agentflow.guard_task_status()
returns trigger
language plpgsql as $$
declare
  allowed text;
begin
  if current_user not in ('anon', 'authenticated', 'service_role') then return new; end if;
  if tg_op = 'UPDATE' and new.status is not distinct from old.status then return new; end if;
  if current_user <> 'service_role' and coalesce(current_setting('strata.task_move', true), '') <> 'on'
     and not (tg_op = 'INSERT' and new.status = 'backlog') then
    raise exception using errcode = '42501',
      message = 'the status of agentflow.tasks moves through the task workflow, not a plain write',
      hint = 'POST /v1/agentflow/tasks/:id/transition';
  end if;
  if tg_op = 'UPDATE' and not exists (select 1 from agentflow_system.task_transitions
      where from_status = old.status and to_status = new.status) then
    select string_agg(to_status, ', ' order by to_status) into allowed
      from agentflow_system.task_transitions where from_status = old.status;
    raise exception using errcode = '23514',
      message = format('task %s cannot move from %s to %s', old.id, old.status, new.status),
      detail = format('allowed from %s: %s (lua/rules/transitions.lua)', old.status, coalesce(allowed, 'none')),
      hint = 'POST /v1/agentflow/tasks/:id/transition';
  end if;
  return new;
end;
$$;

create trigger tasks_guard_status
  before insert or update of status on agentflow.tasks
  for each row execute function agentflow.guard_task_status();
