-- AgentFlow (seed 004), part 1 of 3: the organisation.  Creates schema
-- `agentflow`, its updated_at trigger function, and the tables users (the
-- CEOs), workspaces, projects, agents and agent_credentials.
-- Part 2 (042) holds sessions, events and KPIs; part 3 (043) tasks and wiki.
--
-- The seed is written for Drizzle: its column types are kept as written
-- (`timestamp` is timestamp without time zone, Drizzle's default), and every
-- uuid primary key gets gen_random_uuid() as default (Drizzle's
-- defaultRandom(); the seed's tables say only "PK, NOT NULL").  Constraint
-- names are the seed's index names where it gives one (a UNIQUE constraint
-- and its unique index are one object); other names follow PostgreSQL's
-- <table>_<column>_check / _fkey style.
--
-- Foreign keys carry the ON DELETE rule of the seed's "Cascade Behaviors"
-- section where it lists one; every other foreign key keeps PostgreSQL's
-- default (NO ACTION): hard deletes are the exception, rows are retired
-- through deleted_at (soft deletes on users, workspaces, projects, agents,
-- tasks, wiki entries and credentials).
--
-- Zod rules: a Zod rule that a CHECK states plainly is a CHECK here (slug and
-- agent_code formats, min(1) strings, JSON arrays); the others stay in the
-- application: z.string().email(), z.string().url(), and the shape of JSON
-- records.

create schema agentflow;

grant usage on schema agentflow to anon, authenticated, service_role;

-- The seed's update_updated_at_column() ("CREATE OR FUNCTION" in the seed, a
-- typo for CREATE OR REPLACE).  Attached to every table that has updated_at.
create function agentflow.update_updated_at_column()
returns trigger
language plpgsql as $$
begin
  new.updated_at = now();
  return new;
end;
$$;

-- users: the human CEOs who own workspaces.

create table agentflow.users (
  id uuid primary key default gen_random_uuid(),
  email varchar(255) not null,
  -- bcrypt (seed: "Hashed password (bcrypt)"); the shape check keeps a
  -- plaintext password out of the column.
  password_hash varchar(255) not null,
  name varchar(255) not null,
  avatar_url varchar(500),
  created_at timestamp not null default now(),
  updated_at timestamp not null default now(),
  deleted_at timestamp,
  constraint idx_users_email unique (email),
  constraint users_password_hash_bcrypt
    check (password_hash ~ '^\$2[abxy]?\$[0-9]{2}\$[./A-Za-z0-9]{53}$'),
  constraint users_name_not_empty check (name <> '')
);

create index idx_users_deleted_at on agentflow.users (deleted_at);

create trigger update_users_updated_at
  before update on agentflow.users
  for each row execute function agentflow.update_updated_at_column();

-- workspaces: a virtual company owned by a CEO.

create table agentflow.workspaces (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid not null
    constraint workspaces_owner_id_fkey references agentflow.users (id),
  name varchar(255) not null,
  slug varchar(100) not null,
  description text,
  settings jsonb not null default '{}',
  created_at timestamp not null default now(),
  updated_at timestamp not null default now(),
  deleted_at timestamp,
  constraint idx_workspaces_slug unique (slug),
  constraint workspaces_slug_format check (slug ~ '^[a-z0-9-]+$'),
  constraint workspaces_name_not_empty check (name <> '')
);

create index idx_workspaces_owner_id on agentflow.workspaces (owner_id);
create index idx_workspaces_deleted_at on agentflow.workspaces (deleted_at);

create trigger update_workspaces_updated_at
  before update on agentflow.workspaces
  for each row execute function agentflow.update_updated_at_column();

-- projects: initiatives inside a workspace.

create table agentflow.projects (
  id uuid primary key default gen_random_uuid(),
  -- Seed: "cannot delete workspace with projects".
  workspace_id uuid not null
    constraint projects_workspace_id_fkey
    references agentflow.workspaces (id) on delete restrict,
  name varchar(255) not null,
  slug varchar(100) not null,
  description text,
  repository_url varchar(500),
  github_installation_id bigint,
  mvp_document_url varchar(500),
  is_active boolean not null default true,
  created_at timestamp not null default now(),
  updated_at timestamp not null default now(),
  deleted_at timestamp,
  constraint idx_projects_workspace_slug unique (workspace_id, slug),
  constraint projects_slug_format check (slug ~ '^[a-z0-9-]+$'),
  constraint projects_name_not_empty check (name <> '')
);

create index idx_projects_workspace_id on agentflow.projects (workspace_id);
create index idx_projects_slug on agentflow.projects (slug);
create index idx_projects_is_active on agentflow.projects (is_active);
create index idx_projects_deleted_at on agentflow.projects (deleted_at);

create trigger update_projects_updated_at
  before update on agentflow.projects
  for each row execute function agentflow.update_updated_at_column();

-- agents: the virtual employees, organisation-level (management) or
-- project-level (execution).

create table agentflow.agents (
  id uuid primary key default gen_random_uuid(),
  -- Seed: "cannot delete workspace with agents".
  workspace_id uuid not null
    constraint agents_workspace_id_fkey
    references agentflow.workspaces (id) on delete restrict,
  -- The seed asks for SET NULL here and also for "project agents have a
  -- project" (agents_level_project_check).  Both are kept: the SET NULL
  -- leaves a project-level agent without project, which the check refuses,
  -- so a project that still has project-level agents cannot be hard-deleted
  -- until they are moved or retired; soft deletes are the normal path.
  project_id uuid
    constraint agents_project_id_fkey
    references agentflow.projects (id) on delete set null,
  agent_level varchar(50) not null,
  agent_code varchar(100) not null,
  name varchar(255) not null,
  role_title varchar(255) not null,
  status varchar(50) not null default 'active',
  trust_score decimal(5,2) not null default 50.00,
  -- bcrypt of the agent's API key (seed: "never store plaintext").
  api_key_hash varchar(255) not null,
  public_key text,
  capabilities jsonb not null default '[]',
  settings jsonb not null default '{}',
  created_at timestamp not null default now(),
  updated_at timestamp not null default now(),
  deleted_at timestamp,
  constraint agents_agent_level_check
    check (agent_level in ('organization', 'project')),
  constraint agents_status_check
    check (status in ('active', 'probation', 'inactive', 'terminated')),
  constraint agents_trust_score_check
    check (trust_score between 0 and 100),
  -- Seed business rule: organization => project_id NULL,
  -- project => project_id NOT NULL.
  constraint agents_level_project_check
    check ((agent_level = 'organization' and project_id is null)
        or (agent_level = 'project' and project_id is not null)),
  constraint agents_api_key_hash_bcrypt
    check (api_key_hash ~ '^\$2[abxy]?\$[0-9]{2}\$[./A-Za-z0-9]{53}$'),
  constraint agents_agent_code_format check (agent_code ~ '^[a-z0-9-]+$'),
  constraint agents_name_not_empty check (name <> ''),
  constraint agents_role_title_not_empty check (role_title <> ''),
  constraint agents_capabilities_array check (jsonb_typeof(capabilities) = 'array'),
  constraint idx_agents_workspace_code unique (workspace_id, agent_code),
  -- "Unique name within scope": an organisation-level agent's scope is its
  -- workspace (project_id NULL), so NULLs must compare equal here or two
  -- organisation agents could share a name.
  constraint idx_agents_workspace_project_name
    unique nulls not distinct (workspace_id, project_id, name)
);

create index idx_agents_workspace_id on agentflow.agents (workspace_id);
create index idx_agents_project_id on agentflow.agents (project_id);
create index idx_agents_agent_level on agentflow.agents (agent_level);
create index idx_agents_agent_code on agentflow.agents (agent_code);
create index idx_agents_status on agentflow.agents (status);
create index idx_agents_trust_score on agentflow.agents (trust_score);
create index idx_agents_deleted_at on agentflow.agents (deleted_at);

create trigger update_agents_updated_at
  before update on agentflow.agents
  for each row execute function agentflow.update_updated_at_column();

-- agent_credentials: API credentials, apart from agents for isolation.
-- Rotation (deactivate, insert a new row) and expiry are application work.

create table agentflow.agent_credentials (
  id uuid primary key default gen_random_uuid(),
  agent_id uuid not null
    constraint agent_credentials_agent_id_fkey references agentflow.agents (id),
  -- The table says "'api_key', 'jwt_secret', etc." but the Zod union (the
  -- seed's eighth union type) is closed: the CHECK follows the union.
  credential_type varchar(50) not null,
  credential_hash varchar(255) not null,
  salt varchar(100) not null,
  is_active boolean not null default true,
  expires_at timestamp,
  last_used_at timestamp,
  created_at timestamp not null default now(),
  updated_at timestamp not null default now(),
  deleted_at timestamp,
  constraint agent_credentials_credential_type_check
    check (credential_type in ('api_key', 'jwt_secret')),
  -- "Credentials are never stored in plaintext. Use bcrypt with salt."
  constraint agent_credentials_credential_hash_bcrypt
    check (credential_hash ~ '^\$2[abxy]?\$[0-9]{2}\$[./A-Za-z0-9]{53}$'),
  constraint agent_credentials_salt_not_empty check (salt <> '')
);

create index idx_agent_credentials_agent_id on agentflow.agent_credentials (agent_id);
create index idx_agent_credentials_credential_type on agentflow.agent_credentials (credential_type);
create index idx_agent_credentials_is_active on agentflow.agent_credentials (is_active);
create index idx_agent_credentials_expires_at on agentflow.agent_credentials (expires_at);

create trigger update_agent_credentials_updated_at
  before update on agentflow.agent_credentials
  for each row execute function agentflow.update_updated_at_column();

-- Left to Lua (strata has no RLS): the seed's optional row-level security
-- ("agents can only see their own credentials", "organization-level agents
-- can see all agents in workspace") and "never expose credential hashes via
-- API".  Left out: the seed's created_by / updated_by audit columns (design
-- principle 4) and users -> sessions (created_by), which no table defines,
-- and its database roles agentflow_app / _admin / _read (strata connects with
-- its own roles).
