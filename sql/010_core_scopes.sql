-- Core scopes of the broker hierarchy (seed 000, "Related Tables"):
-- organizations, workspaces (nested), projects, tasks, ai_runs and ai_tasks,
-- with the enum types and the trigger functions those tables name, plus the
-- small tables that seeds 000 and 001 reference but never define (component
-- tables of data_broker, prompts, prompt_builtins, membership tables).
-- data_broker / broker_values live in 011_brokers.sql, scoped variables
-- (seed 001) in 012_scoped_variables.sql.

-- ---------------------------------------------------------------------------
-- Enum types
-- ---------------------------------------------------------------------------

-- Not defined by seed 000; minimal version. The seed only shows the column
-- tasks.priority; the four usual levels.
create type public.task_priority as enum ('low', 'medium', 'high', 'urgent');

-- Not defined by seed 000; minimal version. The seed's default is 'str'; the
-- other values are the JSON-ish kinds a broker value can carry.
create type public.data_type as enum ('str', 'int', 'float', 'bool', 'dict', 'list', 'url');

-- Not defined by seed 000; minimal version. The seed's default is 'blue'; the
-- other values are a small palette for tagging brokers in a UI.
create type public.color as enum ('red', 'orange', 'yellow', 'green', 'blue', 'indigo', 'purple', 'pink', 'gray');

-- ---------------------------------------------------------------------------
-- Tables referenced but never defined by seeds 000 / 001 (minimal versions)
-- ---------------------------------------------------------------------------

-- Not defined by seed 000; minimal version: data_broker.input_component
-- points here.
create table public.data_input_component (
  id uuid not null default gen_random_uuid(),
  name text not null,
  created_at timestamp with time zone null default now(),
  constraint data_input_component_pkey primary key (id)
);

-- Not defined by seed 000; minimal version: data_broker.output_component
-- points here.
create table public.data_output_component (
  id uuid not null default gen_random_uuid(),
  name text not null,
  created_at timestamp with time zone null default now(),
  constraint data_output_component_pkey primary key (id)
);

-- Not defined by seed 000; minimal version: data_broker.field_component_id
-- points here.
create table public.field_components (
  id uuid not null default gen_random_uuid(),
  name text not null,
  created_at timestamp with time zone null default now(),
  constraint field_components_pkey primary key (id)
);

-- ---------------------------------------------------------------------------
-- Scope tables (seed 000, "Related Tables")
-- ---------------------------------------------------------------------------

create table public.organizations (
  id uuid not null default extensions.uuid_generate_v4(),
  name text not null,
  slug text not null,
  description text null,
  logo_url text null,
  website text null,
  created_at timestamp with time zone null default now(),
  updated_at timestamp with time zone null default now(),
  created_by uuid null,
  is_personal boolean null default false,
  settings jsonb null default '{}'::jsonb,
  constraint organizations_pkey primary key (id),
  constraint organizations_slug_key unique (slug),
  constraint organizations_created_by_fkey foreign key (created_by) references auth.users (id) on delete set null,
  constraint valid_slug check ((slug ~ '^[a-z0-9\-]+$'::text))
);

create table public.workspaces (
  id uuid not null default gen_random_uuid(),
  organization_id uuid not null,
  parent_workspace_id uuid null,
  name text not null,
  description text null,
  settings jsonb null default '{}'::jsonb,
  created_at timestamp with time zone null default now(),
  updated_at timestamp with time zone null default now(),
  created_by uuid null,
  constraint workspaces_pkey primary key (id),
  constraint workspaces_created_by_fkey foreign key (created_by) references auth.users (id) on delete set null,
  constraint workspaces_organization_id_fkey foreign key (organization_id) references public.organizations (id) on delete cascade,
  constraint workspaces_parent_workspace_id_fkey foreign key (parent_workspace_id) references public.workspaces (id) on delete cascade
);

create index idx_workspaces_parent on public.workspaces using btree (parent_workspace_id);
create index idx_workspaces_org on public.workspaces using btree (organization_id);

-- Not in seed 000. Its resolution function walks parent_workspace_id upwards
-- with an unguarded recursive query, so one loop in the data made it run
-- forever. A workspace may therefore not be its own parent nor have one of
-- its own descendants as parent. Raises SQLSTATE 23514 (check_violation)
-- with constraint name workspaces_no_cycle, as a CHECK would.
create function public.workspaces_prevent_cycle()
returns trigger
language plpgsql
as $$
declare
  ancestor uuid := new.parent_workspace_id;
  -- Brent's cycle detection: an ancestor remembered at steps 1, 2, 4, 8...
  -- Meeting it again means a loop above this row that does not pass through
  -- it (only possible in data written with this trigger disabled): not this
  -- row's doing, and the walk must still end.
  marker uuid;
  steps bigint := 0;
begin
  if new.parent_workspace_id = new.id then
    raise exception using
      errcode = 'check_violation',
      constraint = 'workspaces_no_cycle',
      message = format('workspace %s cannot be its own parent', new.id);
  end if;

  -- Two transactions re-parenting A under B and B under A would each pass the
  -- walk below against the other's uncommitted row; serializing hierarchy
  -- edits makes the second one see the first (READ COMMITTED re-reads after
  -- the lock). Only rows that get a parent take it.
  perform pg_advisory_xact_lock(hashtext('public.workspaces.parent_workspace_id'));

  -- One primary-key lookup per level: a recursive CTE here gets a hash join
  -- over the whole table per level whenever the planner thinks it small.
  while ancestor is not null loop
    if ancestor = new.id then
      raise exception using
        errcode = 'check_violation',
        constraint = 'workspaces_no_cycle',
        message = format('workspace %s cannot have its descendant %s as parent',
                         new.id, new.parent_workspace_id);
    end if;
    exit when ancestor = marker;
    steps := steps + 1;
    if steps & (steps - 1) = 0 then
      marker := ancestor;
    end if;
    select w.parent_workspace_id into ancestor
    from public.workspaces w
    where w.id = ancestor;
  end loop;
  return new;
end;
$$;

create trigger workspaces_prevent_cycle
before insert or update of parent_workspace_id on public.workspaces
for each row
when (new.parent_workspace_id is not null)
execute function public.workspaces_prevent_cycle();

create table public.projects (
  id uuid not null default extensions.uuid_generate_v4(),
  name text not null,
  description text null,
  created_at timestamp with time zone null default now(),
  updated_at timestamp with time zone null default now(),
  created_by uuid null,
  constraint projects_pkey primary key (id),
  constraint projects_created_by_fkey foreign key (created_by) references auth.users (id) on delete set null
);

create table public.tasks (
  id uuid not null default extensions.uuid_generate_v4(),
  title text not null,
  description text null,
  project_id uuid null,
  status text not null default 'incomplete'::text,
  due_date date null,
  created_at timestamp with time zone null default now(),
  updated_at timestamp with time zone null default now(),
  user_id uuid null,
  authenticated_read boolean null default false,
  parent_task_id uuid null,
  priority public.task_priority null,
  assignee_id uuid null,
  constraint tasks_pkey primary key (id),
  constraint tasks_assignee_id_fkey foreign key (assignee_id) references auth.users (id) on delete set null,
  constraint tasks_created_by_fkey foreign key (user_id) references auth.users (id) on delete set null,
  constraint tasks_parent_task_id_fkey foreign key (parent_task_id) references public.tasks (id) on delete cascade,
  constraint tasks_project_id_fkey foreign key (project_id) references public.projects (id) on delete cascade,
  constraint tasks_status_check check ((status = any (array['incomplete'::text, 'completed'::text])))
);

create index idx_tasks_parent_task_id on public.tasks using btree (parent_task_id);
create index idx_tasks_assignee_id on public.tasks using btree (assignee_id);
create index idx_tasks_priority on public.tasks using btree (priority);

-- ---------------------------------------------------------------------------
-- AI runs and AI tasks (seed 000, "Related Tables"; used by seed 001's
-- prompt execution flow)
-- ---------------------------------------------------------------------------

create table public.ai_runs (
  id uuid not null default gen_random_uuid(),
  user_id uuid not null,
  source_type text not null,
  source_id uuid null,
  name text null,
  description text null,
  tags text[] null default array[]::text[],
  messages jsonb not null default '[]'::jsonb,
  settings jsonb not null default '{}'::jsonb,
  variable_values jsonb null default '{}'::jsonb,
  broker_values jsonb null default '{}'::jsonb,
  attachments jsonb null default '[]'::jsonb,
  metadata jsonb null default '{}'::jsonb,
  status text null default 'active'::text,
  is_starred boolean null default false,
  total_tokens integer null default 0,
  total_cost numeric(10, 6) null default 0,
  message_count integer null default 0,
  task_count integer null default 0,
  created_at timestamp with time zone not null default now(),
  updated_at timestamp with time zone not null default now(),
  last_message_at timestamp with time zone not null default now(),
  constraint ai_runs_pkey primary key (id),
  constraint ai_runs_user_id_fkey foreign key (user_id) references auth.users (id) on delete cascade,
  constraint ai_runs_source_type_check check ((source_type = any (array[
    'prompt'::text, 'chat'::text, 'applet'::text, 'cockpit'::text, 'workflow'::text, 'custom'::text]))),
  constraint ai_runs_status_check check ((status = any (array['active'::text, 'archived'::text, 'deleted'::text])))
);

create index idx_ai_runs_user_id on public.ai_runs using btree (user_id);
create index idx_ai_runs_source on public.ai_runs using btree (source_type, source_id);
create index idx_ai_runs_user_source on public.ai_runs using btree (user_id, source_type);
create index idx_ai_runs_last_message on public.ai_runs using btree (last_message_at desc);
create index idx_ai_runs_status on public.ai_runs using btree (status) where (status = 'active'::text);
create index idx_ai_runs_starred on public.ai_runs using btree (is_starred) where (is_starred = true);
create index idx_ai_runs_tags on public.ai_runs using gin (tags);

-- Named by seed 000, body not given; minimal version. message_count is
-- derived from the messages array so that clients cannot let it drift, and a
-- change of messages is what "last message" means for sorting runs
-- (idx_ai_runs_last_message).
create function public.update_ai_runs_message_count()
returns trigger
language plpgsql
as $$
begin
  new.message_count := case when jsonb_typeof(new.messages) = 'array'
                            then jsonb_array_length(new.messages) else 0 end;
  if tg_op = 'UPDATE' and new.messages is distinct from old.messages then
    new.last_message_at := now();
  end if;
  return new;
end;
$$;

create trigger trigger_ai_runs_message_count
before insert or update of messages on public.ai_runs
for each row
execute function public.update_ai_runs_message_count();

-- Named by seed 000, body not given; minimal version: stamps updated_at.
create function public.update_ai_runs_updated_at()
returns trigger
language plpgsql
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;

create trigger trigger_ai_runs_updated_at
before update on public.ai_runs
for each row
execute function public.update_ai_runs_updated_at();

create table public.ai_tasks (
  id uuid not null default gen_random_uuid(),
  run_id uuid not null,
  user_id uuid not null,
  task_id uuid not null,
  service text not null,
  task_name text not null,
  provider text null,
  endpoint text null,
  model text null,
  model_id uuid null,
  request_data jsonb not null default '{}'::jsonb,
  response_text text null,
  response_data jsonb null,
  response_info jsonb null,
  response_errors jsonb null,
  tool_updates jsonb null,
  response_complete boolean null default false,
  response_metadata jsonb null default '{}'::jsonb,
  tokens_input integer null,
  tokens_output integer null,
  tokens_total integer null,
  cost numeric(10, 6) null,
  time_to_first_token integer null,
  total_time integer null,
  status text null default 'pending'::text,
  created_at timestamp with time zone not null default now(),
  updated_at timestamp with time zone not null default now(),
  completed_at timestamp with time zone null,
  constraint ai_tasks_pkey primary key (id),
  constraint ai_tasks_task_id_key unique (task_id),
  constraint ai_tasks_run_id_fkey foreign key (run_id) references public.ai_runs (id) on delete cascade,
  constraint ai_tasks_user_id_fkey foreign key (user_id) references auth.users (id) on delete cascade,
  constraint ai_tasks_status_check check ((status = any (array[
    'pending'::text, 'streaming'::text, 'completed'::text, 'failed'::text, 'cancelled'::text])))
);

create index idx_ai_tasks_run_id on public.ai_tasks using btree (run_id);
create index idx_ai_tasks_task_id on public.ai_tasks using btree (task_id);
create index idx_ai_tasks_user_id on public.ai_tasks using btree (user_id);
create index idx_ai_tasks_status on public.ai_tasks using btree (status);
create index idx_ai_tasks_created_at on public.ai_tasks using btree (created_at desc);
create index idx_ai_tasks_provider_model on public.ai_tasks using btree (provider, model);
create index idx_ai_tasks_model_id on public.ai_tasks using btree (model_id);

-- Named by seed 000, body not given; minimal version: stamps updated_at.
create function public.update_ai_tasks_updated_at()
returns trigger
language plpgsql
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;

create trigger trigger_ai_tasks_updated_at
before update on public.ai_tasks
for each row
execute function public.update_ai_tasks_updated_at();

-- Named by seed 000, body not given; minimal version. Recomputes the run's
-- task_count, total_tokens and total_cost from its tasks (a full recount
-- rather than increments, so a re-sent update cannot double count). When a
-- task moves to another run both runs are recounted. The seed's trigger does
-- not fire on DELETE, so deleting a task leaves the run's totals as they were.
create function public.update_run_aggregates_from_task()
returns trigger
language plpgsql
as $$
begin
  update public.ai_runs r
  set task_count = s.task_count,
      total_tokens = s.total_tokens,
      total_cost = s.total_cost
  from (
    select runs.run_id,
           count(t.id)::integer as task_count,
           coalesce(sum(t.tokens_total), 0)::integer as total_tokens,
           coalesce(sum(t.cost), 0) as total_cost
    from (select new.run_id
          union
          select old.run_id where tg_op = 'UPDATE') as runs (run_id)
    left join public.ai_tasks t on t.run_id = runs.run_id
    group by runs.run_id
  ) s
  where r.id = s.run_id;
  return null;
end;
$$;

create trigger trigger_update_run_aggregates
after insert or update on public.ai_tasks
for each row
execute function public.update_run_aggregates_from_task();

-- Named by seed 000, body not given; minimal version. No seed defines a
-- prompt-app execution table, so the execution state of a prompt app (a run
-- whose source_type is 'applet') is kept in its run:
-- ai_runs.metadata->'prompt_app_execution' = {task_id, status, total_time,
-- tokens_total, cost} of the task that changed last. Runs of other sources
-- are left alone.
create function public.update_prompt_app_execution_from_task()
returns trigger
language plpgsql
as $$
begin
  update public.ai_runs r
  set metadata = coalesce(r.metadata, '{}'::jsonb) || jsonb_build_object(
        'prompt_app_execution', jsonb_build_object(
          'task_id', new.task_id,
          'status', new.status,
          'total_time', new.total_time,
          'tokens_total', new.tokens_total,
          'cost', new.cost))
  where r.id = new.run_id
    and r.source_type = 'applet';
  return null;
end;
$$;

create trigger update_prompt_app_exec_on_task_update
after update of status, total_time, tokens_total, cost on public.ai_tasks
for each row
when (
  old.status is distinct from new.status
  or old.total_time is distinct from new.total_time
  or old.tokens_total is distinct from new.tokens_total
  or old.cost is distinct from new.cost
)
execute function public.update_prompt_app_execution_from_task();

-- ---------------------------------------------------------------------------
-- Prompts and memberships (referenced by seed 001, never defined there)
-- ---------------------------------------------------------------------------

-- Not defined by seed 001 ("prompts - Already has everything needed");
-- minimal version with what its execution flow reads: the owner, the name,
-- the messages (a template with {{var}}) and the variable defaults (the
-- lowest priority of seed 001's variable resolution).
create table public.prompts (
  id uuid not null default gen_random_uuid(),
  user_id uuid null,
  name text not null,
  description text null,
  messages jsonb not null default '[]'::jsonb,
  variable_defaults jsonb not null default '[]'::jsonb,
  settings jsonb not null default '{}'::jsonb,
  created_at timestamp with time zone not null default now(),
  updated_at timestamp with time zone not null default now(),
  constraint prompts_pkey primary key (id),
  constraint prompts_user_id_fkey foreign key (user_id) references auth.users (id) on delete cascade
);

create index idx_prompts_user_id on public.prompts using btree (user_id);

-- Not defined by seed 001 ("System prompts"); minimal version: a prompt
-- without an owner.
create table public.prompt_builtins (
  id uuid not null default gen_random_uuid(),
  name text not null,
  description text null,
  messages jsonb not null default '[]'::jsonb,
  variable_defaults jsonb not null default '[]'::jsonb,
  settings jsonb not null default '{}'::jsonb,
  created_at timestamp with time zone not null default now(),
  updated_at timestamp with time zone not null default now(),
  constraint prompt_builtins_pkey primary key (id)
);

-- Not defined by seed 001; minimal version: the membership its org_variables
-- policy reads (org_id, user_id).
create table public.user_organizations (
  user_id uuid not null,
  org_id uuid not null,
  created_at timestamp with time zone not null default now(),
  constraint user_organizations_pkey primary key (user_id, org_id),
  constraint user_organizations_user_id_fkey foreign key (user_id) references auth.users (id) on delete cascade,
  constraint user_organizations_org_id_fkey foreign key (org_id) references public.organizations (id) on delete cascade
);

create index idx_user_organizations_org_id on public.user_organizations using btree (org_id);

-- Not defined by seed 001; minimal version: the membership its
-- project_variables policy reads (project_id, user_id).
create table public.user_projects (
  user_id uuid not null,
  project_id uuid not null,
  created_at timestamp with time zone not null default now(),
  constraint user_projects_pkey primary key (user_id, project_id),
  constraint user_projects_user_id_fkey foreign key (user_id) references auth.users (id) on delete cascade,
  constraint user_projects_project_id_fkey foreign key (project_id) references public.projects (id) on delete cascade
);

create index idx_user_projects_project_id on public.user_projects using btree (project_id);

-- Seed 000 gives no row policies for these tables; who may read or write
-- them is decided by Lua policies (lua/policies/public/), not by RLS here.
