-- Orchestrator AI core platform (seed 002): users, agent conversations, tasks,
-- multi-step projects with their steps, deliverables with their versions.
--
-- The seed documents these tables in `public`; strata keeps them in their own
-- schema `orchestrator` because `public` already holds other tables named
-- users / tasks / projects.  References stay inside the schema: the seed's
-- users table has its own uuid_generate_v4() ids and never mentions auth.users.
--
-- The seed is a dump of column lists without foreign keys.  Its "Data
-- Relationships" section and the column names say which ids point where; the
-- foreign keys below write that down, with ON DELETE rules chosen here (the
-- seed gives none):
--   * rows that only exist inside their parent (a user's conversations, a
--     conversation's tasks and projects, a project's steps and subprojects, a
--     deliverable's versions) cascade;
--   * optional links to something a row outlives (a deliverable's
--     conversation, task or step; a version's task) are set to NULL, since the
--     deliverable and its text are the user's work product.
-- Polymorphic or textual references get no foreign key:
-- agent_conversations.primary_work_product_id (its table is named by
-- primary_work_product_type) and projects.current_step_id (a text step_id,
-- not unique on its own).
--
-- The seed says "foreign key columns automatically indexed"; PostgreSQL does
-- not do that, so each foreign key column gets an idx_<table>_<column> index
-- unless one of the seed's indexes already leads with it.
--
-- Timestamp defaults are the seed's timezone('utc', now()): a UTC wall-clock
-- timestamp cast back to timestamptz, which is exact only while the server's
-- TimeZone is UTC (Supabase's setting, and the embedded cluster's default).

create schema orchestrator;

grant usage on schema orchestrator to anon, authenticated, service_role;

create table orchestrator.users (
  id uuid primary key default extensions.uuid_generate_v4(),
  -- The seed lists both `UNIQUE` and `CREATE UNIQUE INDEX users_email_key`:
  -- they are one object (the index behind the constraint), named as the seed
  -- names it.
  email varchar(255) not null constraint users_email_key unique,
  display_name varchar(255),
  role varchar(50),
  roles jsonb default '["user"]'::jsonb,
  created_at timestamptz default current_timestamp,
  updated_at timestamptz default current_timestamp,
  namespace_access jsonb not null default '["my-org"]'::jsonb,
  status text default 'active',
  organization_slug text
);

create index idx_users_email on orchestrator.users (email);

create table orchestrator.agent_conversations (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null
    constraint agent_conversations_user_id_fkey
    references orchestrator.users (id) on delete cascade,
  agent_name text not null,
  agent_type text not null,
  started_at timestamptz default timezone('utc'::text, now()),
  ended_at timestamptz,
  last_active_at timestamptz default timezone('utc'::text, now()),
  metadata jsonb default '{}',
  created_at timestamptz default timezone('utc'::text, now()),
  updated_at timestamptz default timezone('utc'::text, now()),
  primary_work_product_type text,
  primary_work_product_id uuid
);

-- The seed's idx_conversations_user_recent is written for a
-- `conversations(user_id, last_message_at)` table that seed 002 never defines;
-- agent_conversations is that table here, and last_active_at its
-- last-activity column.
create index idx_conversations_user_recent
  on orchestrator.agent_conversations (user_id, last_active_at desc);

create table orchestrator.tasks (
  id uuid primary key default gen_random_uuid(),
  agent_conversation_id uuid
    constraint tasks_agent_conversation_id_fkey
    references orchestrator.agent_conversations (id) on delete cascade,
  user_id uuid not null
    constraint tasks_user_id_fkey
    references orchestrator.users (id) on delete cascade,
  method text not null,
  prompt text not null,
  params jsonb default '{}',
  response text,
  response_metadata jsonb default '{}',
  status text default 'pending',
  progress integer default 0,
  progress_message text,
  evaluation jsonb default '{}',
  llm_metadata jsonb default '{}',
  error_code text,
  error_message text,
  error_data jsonb,
  started_at timestamptz,
  completed_at timestamptz,
  timeout_seconds integer default 300,
  metadata jsonb default '{}',
  created_at timestamptz default timezone('utc'::text, now()),
  updated_at timestamptz default timezone('utc'::text, now()),
  deliverable_type text default 'text',
  deliverable_metadata jsonb default '{}'
);

create index idx_tasks_user_status on orchestrator.tasks (user_id, status, created_at desc);
create index idx_tasks_agent_conversation_id on orchestrator.tasks (agent_conversation_id);

create table orchestrator.projects (
  id uuid primary key default gen_random_uuid(),
  conversation_id uuid not null
    constraint projects_conversation_id_fkey
    references orchestrator.agent_conversations (id) on delete cascade,
  name text,
  description text,
  plan_json jsonb,
  status text default 'planning',
  current_step_id text,
  error_details jsonb,
  metadata jsonb default '{}',
  created_at timestamptz default timezone('utc'::text, now()),
  updated_at timestamptz default timezone('utc'::text, now()),
  -- A subproject is part of its parent's plan: it goes with the parent.
  parent_project_id uuid
    constraint projects_parent_project_id_fkey
    references orchestrator.projects (id) on delete cascade,
  hierarchy_level integer default 0,
  subproject_count integer default 0
);

create index idx_projects_conversation_id on orchestrator.projects (conversation_id);
create index idx_projects_parent_project_id on orchestrator.projects (parent_project_id);

create table orchestrator.project_steps (
  id uuid primary key default gen_random_uuid(),
  project_id uuid not null
    constraint project_steps_project_id_fkey
    references orchestrator.projects (id) on delete cascade,
  step_id text not null,
  step_index integer not null,
  step_type text not null,
  step_name text not null,
  agent_name text,
  prompt text,
  dependencies text[] default '{}',
  status text default 'pending',
  result jsonb,
  error_details jsonb,
  started_at timestamptz,
  completed_at timestamptz,
  metadata jsonb default '{}',
  created_at timestamptz default timezone('utc'::text, now()),
  updated_at timestamptz default timezone('utc'::text, now())
);

create index idx_project_steps_project_id on orchestrator.project_steps (project_id);

create table orchestrator.deliverables (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null
    constraint deliverables_user_id_fkey
    references orchestrator.users (id) on delete cascade,
  conversation_id uuid
    constraint deliverables_conversation_id_fkey
    references orchestrator.agent_conversations (id) on delete set null,
  title text not null,
  type text not null,
  created_at timestamptz default timezone('utc'::text, now()),
  updated_at timestamptz default timezone('utc'::text, now()),
  task_id uuid
    constraint deliverables_task_id_fkey
    references orchestrator.tasks (id) on delete set null,
  project_step_id uuid
    constraint deliverables_project_step_id_fkey
    references orchestrator.project_steps (id) on delete set null,
  metadata jsonb default '{}',
  agent_name varchar
);

create index idx_deliverables_user_id on orchestrator.deliverables (user_id);
create index idx_deliverables_conversation_id on orchestrator.deliverables (conversation_id);
create index idx_deliverables_task_id on orchestrator.deliverables (task_id);
create index idx_deliverables_project_step_id on orchestrator.deliverables (project_step_id);

create table orchestrator.deliverable_versions (
  id uuid primary key default extensions.uuid_generate_v4(),
  deliverable_id uuid not null
    constraint deliverable_versions_deliverable_id_fkey
    references orchestrator.deliverables (id) on delete cascade,
  version_number integer not null,
  content text,
  format varchar,
  is_current_version boolean default false,
  created_by_type varchar default 'ai_response',
  task_id uuid
    constraint deliverable_versions_task_id_fkey
    references orchestrator.tasks (id) on delete set null,
  metadata jsonb default '{}',
  file_attachments jsonb,
  created_at timestamptz default current_timestamp,
  updated_at timestamptz default current_timestamp
);

create index idx_deliverable_versions_deliverable_id on orchestrator.deliverable_versions (deliverable_id);
create index idx_deliverable_versions_task_id on orchestrator.deliverable_versions (task_id);

-- Left out on purpose:
--   * idx_messages_conversation_time and idx_agents_active: the seed's index
--     list names public.messages and public.agents, and says itself that the
--     agents table does not exist (agents live in configuration files); no
--     messages table is defined either.  The seed's "common query patterns"
--     (conversations.title, tasks.priority, projects.user_id,
--     deliverables.project_id) likewise describe columns these tables do not
--     have, so they add nothing here.
--   * updated_at triggers, CHECKs on status values and uniqueness of
--     (deliverable_id, version_number) or of the current version: seed 002
--     gives none of them.
--   * Row policies ("filter by user_id early for multi-tenant security"):
--     user isolation is a Lua policy in strata, not RLS.
