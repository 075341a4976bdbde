-- AgentFlow workflows (issue 15): what the Lua routes of
-- lua/routes/agentflow*.lua need the database to do atomically.
--
--   * tasks' started_at / completed_at are the server's: stamped when the
--     status moves, never taken from a client;
--   * schema agentflow_system: the system's writes (automatic events with
--     author_id NULL, KPI records, trust and status), the priority-queue
--     claim and the KPI facts.  It is not an exposed schema, so no client
--     reaches it through /rest/v1; strata's Lua routes call it inside the
--     caller's transaction (a workflow step and the events it causes commit
--     together).  The functions are SECURITY DEFINER: they run as the
--     tables' owner, which row level security does not restrict;
--   * agentflow.kpi_trend(p_agent_id, p_window): an RPC (the caller's rows).
-- Builds on 041-043 and 120 (row level security).

create schema agentflow_system;
revoke all on schema agentflow_system from public;
grant usage on schema agentflow_system to authenticated, service_role;
alter default privileges in schema agentflow_system revoke execute on functions from public;

-- Task stamps -----------------------------------------------------------

create function agentflow.stamp_task_times()
returns trigger
language plpgsql as $$
begin
  if tg_op = 'UPDATE' then
    new.started_at = old.started_at;
    new.completed_at = old.completed_at;
    if new.status is not distinct from old.status then return new; end if;
  else
    new.started_at = null;
    new.completed_at = null;
  end if;
  if new.status = 'in_progress' and new.started_at is null then
    new.started_at = now();
  elsif new.status = 'completed' then
    new.started_at = coalesce(new.started_at, now());
    new.completed_at = now();
  end if;
  return new;
end;
$$;

create trigger tasks_stamp_times
  before insert or update on agentflow.tasks
  for each row execute function agentflow.stamp_task_times();

-- The calling agent ------------------------------------------------------

-- The agent of the request's token (claims.agent_id) while it may work:
-- not soft-deleted, active or on probation.  NULL otherwise.
create function agentflow_system.calling_agent()
returns agentflow.agents
language sql stable security definer set search_path = pg_catalog, agentflow as $$
  select a.* from agentflow.agents a
  where a.id = nullif(auth.jwt() ->> 'agent_id', '')::uuid
    and a.deleted_at is null and a.status in ('active', 'probation');
$$;

-- The live, active projects an agent works in: its workspace's when it is
-- organization-level, else its own project (strata.policy_kit's
-- visible_projects, restricted to projects that are active).
create function agentflow_system.agent_projects(p_agent agentflow.agents)
returns setof uuid
language sql stable security definer set search_path = pg_catalog, agentflow as $$
  select p.id from agentflow.projects p
  where p.deleted_at is null and p.is_active
    and ((p_agent.agent_level = 'organization' and p.workspace_id = p_agent.workspace_id)
         or p.id = p_agent.project_id);
$$;

-- Priority queue: assigns the best claimable task to the calling agent and
-- answers it (no row: nothing to claim).  P0 first, then the earliest
-- deadline (none last), then the oldest.  Locked rows are skipped, so
-- concurrent claims take different tasks and none waits; a probation
-- agent never gets a P0 (the trigger of sql/043 would refuse it anyway).
create function agentflow_system.claim_task()
returns setof agentflow.tasks
language plpgsql volatile security definer set search_path = pg_catalog, agentflow as $$
declare
  me agentflow.agents;
begin
  me := agentflow_system.calling_agent();
  if me.id is null then
    raise exception 'the token names no agent that may work' using errcode = '42501';
  end if;
  return query
  with pick as (
    select t.id from agentflow.tasks t
    where t.status = 'backlog' and t.assigned_agent_id is null and t.deleted_at is null
      and t.project_id in (select agentflow_system.agent_projects(me))
      and not (me.status = 'probation' and t.priority = 'P0')
    order by t.priority, t.deadline nulls last, t.created_at, t.id
    limit 1
    for update of t skip locked
  )
  update agentflow.tasks t set status = 'assigned', assigned_agent_id = me.id
  from pick where t.id = pick.id
  returning t.*;
end;
$$;

-- System writes ----------------------------------------------------------

-- An automatic event (author_id NULL).  The route validated its content
-- (lua/validators/agentflow/events.lua) before calling.
create function agentflow_system.emit_event(p_type text, p_project_id uuid, p_session_id uuid,
    p_content jsonb, p_mentions uuid[] default '{}', p_metadata jsonb default '{}')
returns agentflow.events
language sql volatile security definer set search_path = pg_catalog, agentflow as $$
  insert into agentflow.events(type, author_id, session_id, project_id, content, mentions, metadata)
  values (p_type, null, p_session_id, p_project_id, p_content, coalesce(p_mentions, '{}'), coalesce(p_metadata, '{}'))
  returning *;
$$;

-- What the KPI rules (lua/rules/kpis.lua) compute from, for one agent,
-- with the agent's row locked so that two steps of one agent recompute one
-- after the other: the agent's trust and status, its latest KPI metrics
-- (NULL for none) and facts counted from its tasks.
create function agentflow_system.agent_facts(p_agent_id uuid)
returns jsonb
language plpgsql volatile security definer set search_path = pg_catalog, agentflow as $$
declare
  a agentflow.agents;
  out jsonb;
begin
  select * into a from agentflow.agents where id = p_agent_id for update;
  if a.id is null then return null; end if;
  select jsonb_build_object(
    'agent_id', a.id, 'status', a.status, 'trust_score', a.trust_score,
    'latest_metrics', (select k.metrics from agentflow.kpis k where k.agent_id = a.id
                       order by k.recorded_at desc limit 1),
    'tasks_completed', count(*) filter (where t.status = 'completed'),
    'tasks_blocked', count(*) filter (where t.status = 'blocked'),
    'tasks_open', count(*) filter (where t.status in ('assigned', 'in_progress', 'blocked')),
    'tasks_cancelled', count(*) filter (where t.status = 'cancelled'),
    'average_task_minutes', coalesce(round(avg(extract(epoch from t.completed_at - t.started_at) / 60)
                              filter (where t.status = 'completed'))::bigint, 0),
    'late_completions', count(*) filter (where t.status = 'completed' and t.deadline < t.completed_at))
  into out
  from agentflow.tasks t where t.assigned_agent_id = a.id and t.deleted_at is null;
  return out;
end;
$$;

-- A KPI record.  recorded_at is the clock's time, not the transaction's,
-- so that two records of one agent in one transaction stay distinct.
create function agentflow_system.record_kpi(p_agent_id uuid, p_metrics jsonb, p_trend jsonb)
returns agentflow.kpis
language sql volatile security definer set search_path = pg_catalog, agentflow as $$
  insert into agentflow.kpis(agent_id, recorded_at, metrics, trend_data, calculated_at)
  values (p_agent_id, clock_timestamp(), p_metrics, p_trend, clock_timestamp())
  returning *;
$$;

-- The trust score and status the rules decided.
create function agentflow_system.set_agent_standing(p_agent_id uuid, p_trust numeric, p_status text)
returns agentflow.agents
language sql volatile security definer set search_path = pg_catalog, agentflow as $$
  update agentflow.agents set trust_score = p_trust, status = p_status where id = p_agent_id returning *;
$$;

grant execute on all functions in schema agentflow_system to authenticated, service_role;

-- KPI trend (RPC) ---------------------------------------------------------

-- Each numeric metric of the agent's latest KPI record against the average
-- of the p_window records before it: 'up', 'down' or 'stable' (no earlier
-- record, or equal).  SECURITY INVOKER: the caller's row level security
-- decides which KPI records exist for them.
create function agentflow.kpi_trend(p_agent_id uuid, p_window integer default 5)
returns table (metric text, latest numeric, previous_average numeric, trend text)
language sql stable as $$
  with recs as (
    select k.metrics, row_number() over (order by k.recorded_at desc) as n
    from agentflow.kpis k where k.agent_id = p_agent_id
  ), latest as (
    select e.key, e.value::numeric as v from recs, jsonb_each_text(recs.metrics) e
    where recs.n = 1 and jsonb_typeof(recs.metrics -> e.key) = 'number'
  ), before as (
    select e.key, avg(e.value::numeric) as v from recs, jsonb_each_text(recs.metrics) e
    where recs.n between 2 and 1 + greatest(p_window, 1) and jsonb_typeof(recs.metrics -> e.key) = 'number'
    group by e.key
  )
  select l.key, l.v, round(b.v, 4),
         case when b.v is null or l.v = b.v then 'stable' when l.v > b.v then 'up' else 'down' end
  from latest l left join before b on b.key = l.key
  order by l.key;
$$;
