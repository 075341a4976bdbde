-- Scoped variables (seed 001): user_variables, org_variables and
-- project_variables, the stored sources of the {{var}} values of prompt
-- templates. Seed 001's resolution order (computed > user-provided >
-- project > org > user > prompt defaults) is applied by the caller, not here.
-- The seed marks org and project variables optional; both are created since
-- organizations and projects exist (010_core_scopes.sql).
-- Constraint names are the ones PostgreSQL gives the seed's inline
-- PRIMARY KEY / REFERENCES / UNIQUE, spelled out so they cannot drift.

create table public.user_variables (
  id uuid not null default extensions.uuid_generate_v4(),
  user_id uuid not null,
  key text not null,
  value text not null,
  description text,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  constraint user_variables_pkey primary key (id),
  constraint user_variables_user_id_fkey foreign key (user_id) references auth.users (id) on delete cascade,
  constraint user_variables_user_id_key_key unique (user_id, key)
);

create index idx_user_variables_user_id on public.user_variables (user_id);

create table public.org_variables (
  id uuid not null default extensions.uuid_generate_v4(),
  org_id uuid not null,
  key text not null,
  value text not null,
  description text,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  constraint org_variables_pkey primary key (id),
  constraint org_variables_org_id_fkey foreign key (org_id) references public.organizations (id) on delete cascade,
  constraint org_variables_org_id_key_key unique (org_id, key)
);

create index idx_org_variables_org_id on public.org_variables (org_id);

create table public.project_variables (
  id uuid not null default extensions.uuid_generate_v4(),
  project_id uuid not null,
  key text not null,
  value text not null,
  description text,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  constraint project_variables_pkey primary key (id),
  constraint project_variables_project_id_fkey foreign key (project_id) references public.projects (id) on delete cascade,
  constraint project_variables_project_id_key_key unique (project_id, key)
);

create index idx_project_variables_project_id on public.project_variables (project_id);

-- Seed 001's RLS policies are intentionally left to Lua
-- (lua/policies/public/<table>.lua), not created here:
--   user_variables    "Users can view their own variables" (select, auth.uid() = user_id)
--                     "Users can update their own variables" (update, auth.uid() = user_id)
--   org_variables     "Org members can view org variables" (select, org_id in the
--                     user's public.user_organizations rows)
--   project_variables "Project members can view project variables" (select,
--                     project_id in the user's public.user_projects rows)
