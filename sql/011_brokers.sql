-- Brokers and broker values (seed 000): data_broker, broker_values as in the
-- seed's final "Related Tables" version (scope columns ai_runs_id /
-- ai_tasks_id), and the five functions of its "Current Functions" section:
-- get_broker_values_for_context, get_missing_broker_ids,
-- get_complete_broker_data_for_context, upsert_broker_value,
-- bulk_upsert_broker_values. These functions are the reference the native
-- resolution engine must equal row for row.
--
-- Two defects of the seed's resolution function are fixed here:
-- 1. its workspace walk looped forever on a cycle in parent_workspace_id;
--    cycles are now refused by a trigger on workspaces (010_core_scopes.sql)
--    and the walk itself stops at a workspace it has already visited;
-- 2. its priority "5 + depth" for workspaces overtook the organization's 1000
--    at depth 995; levels are now ordered by (level rank, workspace depth),
--    so a workspace beats its organization at any depth.

create table public.data_broker (
  id uuid not null default gen_random_uuid(),
  name character varying not null,
  data_type public.data_type null default 'str'::public.data_type,
  default_value text null,
  color public.color null default 'blue'::public.color,
  -- Not declared by seed 000 although its constraint
  -- data_broker_default_component_fkey is on it; declared here as uuid null.
  input_component uuid null,
  output_component uuid null,
  field_component_id uuid null,
  user_id uuid null,
  created_at timestamp with time zone null default now(),
  updated_at timestamp with time zone null default now(),
  is_public boolean null default false,
  authenticated_read boolean null default true,
  public_read boolean null default true,
  default_scope character varying null,
  description text null,
  constraint data_broker_pkey primary key (id),
  constraint data_broker_default_component_fkey foreign key (input_component) references public.data_input_component (id) on update cascade,
  constraint data_broker_field_component_id_fkey foreign key (field_component_id) references public.field_components (id) on update cascade on delete set null,
  constraint data_broker_output_component_fkey foreign key (output_component) references public.data_output_component (id) on update cascade,
  constraint data_broker_user_id_fkey foreign key (user_id) references auth.users (id) on update cascade on delete cascade
);

create table public.broker_values (
  id uuid not null default gen_random_uuid(),
  broker_id uuid not null,
  organization_id uuid null,
  workspace_id uuid null,
  project_id uuid null,
  task_id uuid null,
  value jsonb not null,
  created_at timestamp with time zone null default now(),
  updated_at timestamp with time zone null default now(),
  created_by uuid null,
  user_id uuid null,
  ai_runs_id uuid null,
  ai_tasks_id uuid null,
  is_global boolean null default false,
  constraint broker_values_pkey primary key (id),
  -- NULLS NOT DISTINCT: the unused scope columns are NULL, and they must
  -- compare equal for "one value per broker per scope" to hold at all
  -- (including the global scope, where every scope column is NULL).
  constraint broker_values_unique_per_scope unique nulls not distinct (
    broker_id, is_global, user_id, organization_id, workspace_id,
    project_id, task_id, ai_runs_id, ai_tasks_id
  ),
  constraint broker_values_broker_id_fkey foreign key (broker_id) references public.data_broker (id) on delete cascade,
  constraint broker_values_created_by_fkey foreign key (created_by) references auth.users (id) on delete set null,
  constraint broker_values_organization_id_fkey foreign key (organization_id) references public.organizations (id) on delete cascade,
  constraint broker_values_project_id_fkey foreign key (project_id) references public.projects (id) on delete cascade,
  constraint broker_values_task_id_fkey foreign key (task_id) references public.tasks (id) on delete cascade,
  constraint broker_values_workspace_id_fkey foreign key (workspace_id) references public.workspaces (id) on delete cascade,
  constraint broker_values_ai_tasks_id_fkey foreign key (ai_tasks_id) references public.ai_tasks (id) on delete cascade,
  constraint broker_values_ai_runs_id_fkey foreign key (ai_runs_id) references public.ai_runs (id) on delete cascade,
  constraint broker_values_user_id_fkey foreign key (user_id) references auth.users (id) on delete cascade,
  -- Exactly one scope: either the global flag alone, or exactly one of the
  -- seven scope columns.
  constraint broker_values_single_scope_check check (
    case
      when (is_global = true) then (
        (user_id is null)
        and (organization_id is null)
        and (workspace_id is null)
        and (project_id is null)
        and (task_id is null)
        and (ai_runs_id is null)
        and (ai_tasks_id is null)
      )
      else (
        ((user_id is not null))::integer
        + ((organization_id is not null))::integer
        + ((workspace_id is not null))::integer
        + ((project_id is not null))::integer
        + ((task_id is not null))::integer
        + ((ai_runs_id is not null))::integer
        + ((ai_tasks_id is not null))::integer
      ) = 1
    end
  )
);

create index idx_broker_values_user on public.broker_values using btree (user_id) where (user_id is not null);
create index idx_broker_values_ai_runs on public.broker_values using btree (ai_runs_id) where (ai_runs_id is not null);
create index idx_broker_values_ai_tasks on public.broker_values using btree (ai_tasks_id) where (ai_tasks_id is not null);
create index idx_broker_values_broker on public.broker_values using btree (broker_id);
create index idx_broker_values_org on public.broker_values using btree (organization_id) where (organization_id is not null);
create index idx_broker_values_workspace on public.broker_values using btree (workspace_id) where (workspace_id is not null);
create index idx_broker_values_project on public.broker_values using btree (project_id) where (project_id is not null);
create index idx_broker_values_task on public.broker_values using btree (task_id) where (task_id is not null);
create index idx_broker_values_global on public.broker_values using btree (broker_id) where (is_global = true);

-- ---------------------------------------------------------------------------
-- 1. Resolution: the most specific value of each requested broker.
-- ---------------------------------------------------------------------------
-- Order: ai_task > ai_run > task > project > workspace (closer first) >
-- organization > user > global. One row per broker (DISTINCT ON), no merging
-- of values; NULL entries of p_broker_ids match nothing; a context id left
-- NULL skips its level; a JSON null is a value like any other.
create function public.get_broker_values_for_context(
  p_broker_ids uuid[],
  p_user_id uuid default null,
  p_organization_id uuid default null,
  p_workspace_id uuid default null,
  p_project_id uuid default null,
  p_task_id uuid default null,
  p_ai_runs_id uuid default null,
  p_ai_tasks_id uuid default null
)
returns table (
  broker_id uuid,
  value jsonb,
  scope_level text,
  scope_id uuid
)
language plpgsql
stable
as $$
begin
  return query
  with recursive
  -- The workspace and its ancestors, depth 0 for the workspace itself. The
  -- CYCLE clause stops at a workspace already on the path, so even a loop
  -- that got into the data (the trigger on workspaces refuses new ones)
  -- cannot make this walk run forever.
  workspace_hierarchy (id, parent_workspace_id, depth) as (
    select w.id, w.parent_workspace_id, 0
    from public.workspaces w
    where w.id = p_workspace_id
    union all
    select w.id, w.parent_workspace_id, wh.depth + 1
    from public.workspaces w
    join workspace_hierarchy wh on w.id = wh.parent_workspace_id
  ) cycle id set is_cycle using path,
  -- level_rank orders the levels; depth orders workspaces among themselves
  -- only, so no depth can push a workspace behind its organization (the
  -- seed's single "5 + depth" priority did at depth 995).
  all_values as (
    select bv.broker_id, bv.value, 'ai_task'::text as scope_level,
           bv.ai_tasks_id as scope_id, 1 as level_rank, 0 as depth
    from public.broker_values bv
    where bv.ai_tasks_id = p_ai_tasks_id
      and bv.broker_id = any(p_broker_ids)

    union all

    select bv.broker_id, bv.value, 'ai_run'::text,
           bv.ai_runs_id, 2, 0
    from public.broker_values bv
    where bv.ai_runs_id = p_ai_runs_id
      and bv.broker_id = any(p_broker_ids)

    union all

    select bv.broker_id, bv.value, 'task'::text,
           bv.task_id, 3, 0
    from public.broker_values bv
    where bv.task_id = p_task_id
      and bv.broker_id = any(p_broker_ids)

    union all

    select bv.broker_id, bv.value, 'project'::text,
           bv.project_id, 4, 0
    from public.broker_values bv
    where bv.project_id = p_project_id
      and bv.broker_id = any(p_broker_ids)

    union all

    select bv.broker_id, bv.value, 'workspace'::text,
           bv.workspace_id, 5, wh.depth
    from public.broker_values bv
    join workspace_hierarchy wh on bv.workspace_id = wh.id
    where not wh.is_cycle
      and bv.broker_id = any(p_broker_ids)

    union all

    select bv.broker_id, bv.value, 'organization'::text,
           bv.organization_id, 6, 0
    from public.broker_values bv
    where bv.organization_id = p_organization_id
      and bv.broker_id = any(p_broker_ids)

    union all

    select bv.broker_id, bv.value, 'user'::text,
           bv.user_id, 7, 0
    from public.broker_values bv
    where bv.user_id = p_user_id
      and bv.broker_id = any(p_broker_ids)

    union all

    select bv.broker_id, bv.value, 'global'::text,
           null::uuid, 8, 0
    from public.broker_values bv
    where bv.is_global = true
      and bv.broker_id = any(p_broker_ids)
  )
  select distinct on (av.broker_id)
    av.broker_id,
    av.value,
    av.scope_level,
    av.scope_id
  from all_values av
  order by av.broker_id, av.level_rank, av.depth;
end;
$$;

-- ---------------------------------------------------------------------------
-- 2. The requested brokers that resolve to no value in the context.
-- ---------------------------------------------------------------------------
-- EXCEPT as in the seed: duplicates collapse, and a NULL entry of
-- p_broker_ids (which never resolves) comes back as a NULL element. The seed
-- left the order to EXCEPT; it is sorted here so that the result is
-- deterministic (NULL last).
create function public.get_missing_broker_ids(
  p_broker_ids uuid[],
  p_user_id uuid default null,
  p_organization_id uuid default null,
  p_workspace_id uuid default null,
  p_project_id uuid default null,
  p_task_id uuid default null,
  p_ai_runs_id uuid default null,
  p_ai_tasks_id uuid default null
)
returns uuid[]
language plpgsql
stable
as $$
declare
  found_broker_ids uuid[];
begin
  select array_agg(r.broker_id)
  into found_broker_ids
  from public.get_broker_values_for_context(
    p_broker_ids,
    p_user_id,
    p_organization_id,
    p_workspace_id,
    p_project_id,
    p_task_id,
    p_ai_runs_id,
    p_ai_tasks_id
  ) r;

  return array(
    select missing.id
    from (
      select unnest(p_broker_ids)
      except
      select unnest(coalesce(found_broker_ids, array[]::uuid[]))
    ) as missing (id)
    order by missing.id
  );
end;
$$;

-- ---------------------------------------------------------------------------
-- 3. Every requested broker known to data_broker, with its resolved value if
--    any (has_value false and value NULL otherwise) and its metadata.
-- ---------------------------------------------------------------------------
create function public.get_complete_broker_data_for_context(
  p_broker_ids uuid[],
  p_user_id uuid default null,
  p_organization_id uuid default null,
  p_workspace_id uuid default null,
  p_project_id uuid default null,
  p_task_id uuid default null,
  p_ai_runs_id uuid default null,
  p_ai_tasks_id uuid default null
)
returns table (
  broker_id uuid,
  broker_name varchar,
  data_type text,
  value jsonb,
  has_value boolean,
  scope_level text,
  scope_id uuid,
  default_value text,
  description text
)
language plpgsql
stable
as $$
begin
  return query
  with resolved_values as (
    select r.broker_id, r.value, r.scope_level, r.scope_id
    from public.get_broker_values_for_context(
      p_broker_ids,
      p_user_id,
      p_organization_id,
      p_workspace_id,
      p_project_id,
      p_task_id,
      p_ai_runs_id,
      p_ai_tasks_id
    ) r
  )
  select
    db.id as broker_id,
    db.name as broker_name,
    db.data_type::text as data_type,
    rv.value,
    (rv.value is not null) as has_value,
    rv.scope_level,
    rv.scope_id,
    db.default_value,
    db.description
  from public.data_broker db
  left join resolved_values rv on db.id = rv.broker_id
  where db.id = any(p_broker_ids);
end;
$$;

-- ---------------------------------------------------------------------------
-- 4. Set one value at one scope: insert, or update value and updated_at of
--    the existing row (same id). The scope is checked by
--    broker_values_single_scope_check.
-- ---------------------------------------------------------------------------
create function public.upsert_broker_value(
  p_broker_id uuid,
  p_value jsonb,
  p_is_global boolean default false,
  p_user_id uuid default null,
  p_organization_id uuid default null,
  p_workspace_id uuid default null,
  p_project_id uuid default null,
  p_task_id uuid default null,
  p_ai_runs_id uuid default null,
  p_ai_tasks_id uuid default null,
  p_created_by uuid default null
)
returns uuid
language plpgsql
as $$
declare
  result_id uuid;
begin
  insert into public.broker_values as bv (
    broker_id, is_global, user_id, organization_id, workspace_id,
    project_id, task_id, ai_runs_id, ai_tasks_id, value, created_by
  ) values (
    p_broker_id, p_is_global, p_user_id, p_organization_id, p_workspace_id,
    p_project_id, p_task_id, p_ai_runs_id, p_ai_tasks_id, p_value, p_created_by
  )
  on conflict on constraint broker_values_unique_per_scope
  do update set
    value = excluded.value,
    updated_at = now()
  returning bv.id into result_id;

  return result_id;
end;
$$;

-- ---------------------------------------------------------------------------
-- 5. Set several values at one scope: p_broker_value_pairs is a JSON array
--    of {broker_id, value}. One statement, so one failure (including the same
--    broker twice: "ON CONFLICT DO UPDATE command cannot affect row a second
--    time", SQLSTATE 21000) writes nothing.
-- ---------------------------------------------------------------------------
create function public.bulk_upsert_broker_values(
  p_broker_value_pairs jsonb,
  p_is_global boolean default false,
  p_user_id uuid default null,
  p_organization_id uuid default null,
  p_workspace_id uuid default null,
  p_project_id uuid default null,
  p_task_id uuid default null,
  p_ai_runs_id uuid default null,
  p_ai_tasks_id uuid default null,
  p_created_by uuid default null
)
returns table (
  broker_id uuid,
  broker_value_id uuid,
  success boolean
)
language plpgsql
as $$
begin
  return query
  with input_data as (
    select (item->>'broker_id')::uuid as broker_id,
           (item->'value')::jsonb as value
    from jsonb_array_elements(p_broker_value_pairs) as item
  )
  insert into public.broker_values as bv (
    broker_id, is_global, user_id, organization_id, workspace_id,
    project_id, task_id, ai_runs_id, ai_tasks_id, value, created_by
  )
  select
    pairs.broker_id, p_is_global, p_user_id, p_organization_id, p_workspace_id,
    p_project_id, p_task_id, p_ai_runs_id, p_ai_tasks_id, pairs.value, p_created_by
  from input_data pairs
  on conflict on constraint broker_values_unique_per_scope
  do update set
    value = excluded.value,
    updated_at = now()
  returning
    bv.broker_id,
    bv.id as broker_value_id,
    true as success;
end;
$$;

-- Seed 000 gives no row policies for data_broker or broker_values; who may
-- read, write or call these functions is decided by Lua
-- (lua/policies/public/ and lua/policies/rpc.lua), not by RLS here.
