-- Orchestrator workflows (seed 002, issue 15): what sql/030 left to
-- application code, kept true by the database itself.
--   * updated_at on every table; tasks' started_at / completed_at stamped
--     when the status moves; running tasks past timeout_seconds become
--     'timeout' by orchestrator.expire_timed_out_tasks() (the scheduled job);
--   * the project hierarchy: hierarchy_level and subproject_count are
--     maintained, cycles refused;
--   * project steps: dependencies name step_ids of the same project, no
--     cycles, a step starts only after its dependencies completed, and the
--     project's current_step_id follows the step that started;
--   * deliverable versions numbered 1, 2, 3 ... per deliverable without
--     gaps or duplicates, exactly one current version;
--   * seed 002's query patterns as RPCs with user isolation:
--     agent_activity_summary(p_days) and project_progress(p_project_id).
-- Builds on 030 and 120 (row level security: the functions below are
-- SECURITY INVOKER unless they say otherwise, so the caller's rows only).

-- updated_at ---------------------------------------------------------------

create function orchestrator.touch_updated_at()
returns trigger
language plpgsql as $$
begin
  new.updated_at = now();
  return new;
end;
$$;

do $$
declare
  t text;
begin
  foreach t in array array['users', 'agent_conversations', 'tasks', 'projects', 'project_steps',
                           'deliverables', 'deliverable_versions'] loop
    execute format('create trigger %I before update on orchestrator.%I for each row '
                   'execute function orchestrator.touch_updated_at()', t || '_touch_updated_at', t);
  end loop;
end
$$;

-- Task stamps and timeouts ------------------------------------------------

-- 'running' and 'in_progress' are the seed's running states; 'completed',
-- 'failed', 'cancelled' and 'timeout' end a task.
create function orchestrator.stamp_task_times()
returns trigger
language plpgsql as $$
begin
  if tg_op = 'UPDATE' and new.status is not distinct from old.status then return new; end if;
  if new.status in ('running', 'in_progress') and new.started_at is null then
    new.started_at = now();
  elsif new.status in ('completed', 'failed', 'cancelled', 'timeout') and new.completed_at is null then
    new.completed_at = now();
  end if;
  return new;
end;
$$;

create trigger tasks_stamp_times
  before insert or update on orchestrator.tasks
  for each row execute function orchestrator.stamp_task_times();

-- The scheduled job: every running task started more than timeout_seconds
-- ago becomes 'timeout' with its reason.  Answers how many it ended.
-- service_role's (lua/policies/rpc.lua: not listed, so nobody else's).
create function orchestrator.expire_timed_out_tasks()
returns integer
language sql volatile as $$
  with ended as (
    update orchestrator.tasks
    set status = 'timeout', error_code = 'timeout',
        error_message = format('no result within %s seconds', timeout_seconds)
    where status in ('running', 'in_progress') and timeout_seconds is not null
      and started_at + make_interval(secs => timeout_seconds) < now()
    returning 1
  )
  select count(*)::integer from ended;
$$;

revoke execute on function orchestrator.expire_timed_out_tasks() from public;
grant execute on function orchestrator.expire_timed_out_tasks() to service_role;

create index idx_tasks_running_started on orchestrator.tasks (started_at)
  where status in ('running', 'in_progress');

-- Project hierarchy ---------------------------------------------------------

-- hierarchy_level is the parent's + 1 (0 at the top); subproject_count is
-- the server's, kept by project_hierarchy_counts.  pg_trigger_depth() = 1
-- is a client's statement: what it writes into these two columns is ignored.
create function orchestrator.project_hierarchy()
returns trigger
language plpgsql as $$
declare
  parent_level integer;
begin
  if new.parent_project_id is not null then
    if new.parent_project_id = new.id or exists (
      with recursive up(id, parent) as (
        select p.id, p.parent_project_id from orchestrator.projects p where p.id = new.parent_project_id
        union
        select p.id, p.parent_project_id from orchestrator.projects p join up on p.id = up.parent
      )
      select 1 from up where up.id = new.id
    ) then
      raise exception 'orchestrator.projects: making % a subproject of % would close a cycle', new.id, new.parent_project_id
        using errcode = '23514';
    end if;
    select hierarchy_level into parent_level from orchestrator.projects where id = new.parent_project_id;
  end if;
  new.hierarchy_level = coalesce(parent_level + 1, 0);
  if pg_trigger_depth() = 1 then
    new.subproject_count = case when tg_op = 'INSERT' then 0 else old.subproject_count end;
  end if;
  return new;
end;
$$;

create trigger projects_hierarchy
  before insert or update on orchestrator.projects
  for each row execute function orchestrator.project_hierarchy();

create function orchestrator.project_hierarchy_counts()
returns trigger
language plpgsql as $$
begin
  if tg_op in ('UPDATE', 'DELETE') and old.parent_project_id is not null
     and (tg_op = 'DELETE' or old.parent_project_id is distinct from new.parent_project_id) then
    update orchestrator.projects set subproject_count = subproject_count - 1 where id = old.parent_project_id;
  end if;
  if tg_op in ('UPDATE', 'INSERT') and new.parent_project_id is not null
     and (tg_op = 'INSERT' or old.parent_project_id is distinct from new.parent_project_id) then
    update orchestrator.projects set subproject_count = subproject_count + 1 where id = new.parent_project_id;
  end if;
  -- A moved project's subtree follows it: its children recompute their level.
  if tg_op = 'UPDATE' and new.hierarchy_level is distinct from old.hierarchy_level then
    update orchestrator.projects set hierarchy_level = hierarchy_level where parent_project_id = new.id;
  end if;
  return null;
end;
$$;

create trigger projects_hierarchy_counts
  after insert or update or delete on orchestrator.projects
  for each row execute function orchestrator.project_hierarchy_counts();

-- Project steps ---------------------------------------------------------------

alter table orchestrator.project_steps
  add constraint project_steps_project_step_key unique (project_id, step_id);

-- Checked at commit (steps are inserted one by one, a dependency may come
-- later in the same transaction): every dependency is a step_id of the same
-- project, and following dependencies never leads back to the step.
create function orchestrator.check_step_dependencies()
returns trigger
language plpgsql as $$
declare
  missing text;
begin
  if not exists (select 1 from orchestrator.project_steps where id = new.id) then return null; end if;
  select d into missing from unnest(coalesce(new.dependencies, '{}')) d
  where not exists (select 1 from orchestrator.project_steps s where s.project_id = new.project_id and s.step_id = d)
  limit 1;
  if missing is not null then
    raise exception 'orchestrator.project_steps: step % depends on %, which is no step of project %',
      new.step_id, missing, new.project_id using errcode = '23503';
  end if;
  if exists (
    with recursive reach(step_id) as (
      select unnest(coalesce(new.dependencies, '{}'))
      union
      select unnest(coalesce(s.dependencies, '{}')) from orchestrator.project_steps s
      join reach on s.project_id = new.project_id and s.step_id = reach.step_id
    )
    select 1 from reach where step_id = new.step_id
  ) then
    raise exception 'orchestrator.project_steps: the dependencies of step % lead back to it (a cycle)', new.step_id
      using errcode = '23514';
  end if;
  return null;
end;
$$;

create constraint trigger project_steps_dependencies
  after insert or update of dependencies, step_id, project_id on orchestrator.project_steps
  deferrable initially deferred
  for each row execute function orchestrator.check_step_dependencies();

-- A step starts (running, in_progress or completed) only once every step
-- it depends on completed; the step that starts becomes its project's
-- current step.  Stamps as for tasks.
create function orchestrator.step_progress()
returns trigger
language plpgsql as $$
declare
  waiting text;
begin
  if tg_op = 'UPDATE' and new.status is not distinct from old.status then return new; end if;
  if new.status in ('running', 'in_progress', 'completed') then
    select d into waiting from unnest(coalesce(new.dependencies, '{}')) d
    where not exists (select 1 from orchestrator.project_steps s
                      where s.project_id = new.project_id and s.step_id = d and s.status = 'completed')
    limit 1;
    if waiting is not null then
      raise exception 'orchestrator.project_steps: step % cannot be % before step % completed',
        new.step_id, new.status, waiting using errcode = '23514';
    end if;
  end if;
  if new.status in ('running', 'in_progress') then
    new.started_at = coalesce(new.started_at, now());
    update orchestrator.projects set current_step_id = new.step_id where id = new.project_id;
  elsif new.status in ('completed', 'failed', 'cancelled', 'skipped') then
    new.completed_at = coalesce(new.completed_at, now());
  end if;
  return new;
end;
$$;

create trigger project_steps_progress
  before insert or update on orchestrator.project_steps
  for each row execute function orchestrator.step_progress();

-- Deliverable versions ------------------------------------------------------

alter table orchestrator.deliverable_versions
  add constraint deliverable_versions_number_key unique (deliverable_id, version_number);
create unique index deliverable_versions_one_current
  on orchestrator.deliverable_versions (deliverable_id) where is_current_version;

-- A version made current unsets the deliverable's previous current one
-- first (so the unique index above holds), in the same transaction.
create function orchestrator.single_current_version()
returns trigger
language plpgsql as $$
begin
  if new.is_current_version and (tg_op = 'INSERT' or not old.is_current_version) then
    update orchestrator.deliverable_versions set is_current_version = false
    where deliverable_id = new.deliverable_id and is_current_version and id <> new.id;
  end if;
  return new;
end;
$$;

create trigger deliverable_versions_single_current
  before insert or update of is_current_version on orchestrator.deliverable_versions
  for each row execute function orchestrator.single_current_version();

-- The next version of a deliverable the caller may change: the
-- deliverable's row is locked, so concurrent calls number one after the
-- other (1, 2, 3 ... with no gap or duplicate); it becomes the current
-- version unless p_make_current is false.
create function orchestrator.create_deliverable_version(p_deliverable_id uuid, p_content text,
    p_format text default null, p_created_by_type text default 'ai_response', p_task_id uuid default null,
    p_metadata jsonb default '{}', p_file_attachments jsonb default null, p_make_current boolean default true)
returns orchestrator.deliverable_versions
language plpgsql volatile as $$
declare
  v orchestrator.deliverable_versions;
begin
  perform 1 from orchestrator.deliverables where id = p_deliverable_id for update;
  if not found then
    raise exception 'deliverable % not found', p_deliverable_id using errcode = 'P0002';
  end if;
  insert into orchestrator.deliverable_versions(deliverable_id, version_number, content, format, is_current_version,
      created_by_type, task_id, metadata, file_attachments)
  select p_deliverable_id, coalesce(max(version_number), 0) + 1, p_content, p_format, p_make_current,
         coalesce(p_created_by_type, 'ai_response'), p_task_id, coalesce(p_metadata, '{}'), p_file_attachments
  from orchestrator.deliverable_versions where deliverable_id = p_deliverable_id
  returning * into v;
  return v;
end;
$$;

-- Seed 002's query patterns ---------------------------------------------------

-- "Agent Activity Summary" for the caller (user isolation: user_id =
-- auth.uid()): per agent name, the conversations started and the tasks
-- created in the last p_days days, and how many of those tasks completed.
-- A task's agent is its conversation's; tasks without one count under ''.
create function orchestrator.agent_activity_summary(p_days integer default 7)
returns table (agent_name text, conversation_count bigint, task_count bigint, completed_count bigint)
language sql stable as $$
  with since as (select now() - make_interval(days => greatest(p_days, 0)) as t),
  conv as (
    select c.agent_name, count(*) as n from orchestrator.agent_conversations c, since
    where c.user_id = auth.uid() and c.started_at >= since.t group by c.agent_name
  ), tsk as (
    select coalesce(c.agent_name, '') as agent_name, count(*) as n,
           count(*) filter (where t.status = 'completed') as done
    from orchestrator.tasks t
    left join orchestrator.agent_conversations c on c.id = t.agent_conversation_id, since
    where t.user_id = auth.uid() and t.created_at >= since.t
    group by 1
  )
  select coalesce(conv.agent_name, tsk.agent_name), coalesce(conv.n, 0), coalesce(tsk.n, 0), coalesce(tsk.done, 0)
  from conv full join tsk on tsk.agent_name = conv.agent_name
  order by 3 desc, 1;
$$;

-- "Project Progress" of one of the caller's projects (no row when it is
-- not theirs): tasks by status (tasks whose metadata.project_id names the
-- project, as the seed's pattern joins them), deliverables of its steps
-- and how many have a current version, steps completed / total.
create function orchestrator.project_progress(p_project_id uuid)
returns table (project_id uuid, name text, status text, tasks_by_status jsonb, task_count bigint,
               deliverable_count bigint, deliverables_with_current_version bigint,
               steps_completed bigint, steps_total bigint)
language sql stable as $$
  select p.id, p.name, p.status,
    coalesce((select jsonb_object_agg(s.status, s.n) from (
       select coalesce(t.status, 'unknown') as status, count(*) as n from orchestrator.tasks t
       where t.user_id = auth.uid() and t.metadata ->> 'project_id' = p.id::text group by 1) s), '{}'),
    (select count(*) from orchestrator.tasks t where t.user_id = auth.uid() and t.metadata ->> 'project_id' = p.id::text),
    (select count(*) from orchestrator.deliverables d join orchestrator.project_steps s on s.id = d.project_step_id
     where s.project_id = p.id and d.user_id = auth.uid()),
    (select count(*) from orchestrator.deliverables d join orchestrator.project_steps s on s.id = d.project_step_id
     where s.project_id = p.id and d.user_id = auth.uid()
       and exists (select 1 from orchestrator.deliverable_versions v where v.deliverable_id = d.id and v.is_current_version)),
    (select count(*) from orchestrator.project_steps s where s.project_id = p.id and s.status = 'completed'),
    (select count(*) from orchestrator.project_steps s where s.project_id = p.id)
  from orchestrator.projects p
  join orchestrator.agent_conversations c on c.id = p.conversation_id
  where p.id = p_project_id and c.user_id = auth.uid();
$$;
