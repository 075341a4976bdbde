-- AgentFlow (seed 004), part 3 of 3: the work and what is learned from it.
-- Creates agentflow.tasks (GitHub-issue-linked tasks, with the probation
-- rule) and agentflow.wiki_entries (knowledge base with CEO approval and
-- version history).  Builds on 041_agentflow_org.sql.

-- tasks

create table agentflow.tasks (
  id uuid primary key default gen_random_uuid(),
  project_id uuid not null
    constraint tasks_project_id_fkey references agentflow.projects (id),
  github_issue_id bigint not null,
  github_issue_number integer not null,
  -- "if agent deleted, set task.assigned_agent_id to NULL".
  assigned_agent_id uuid
    constraint tasks_assigned_agent_id_fkey
    references agentflow.agents (id) on delete set null,
  status varchar(50) not null default 'backlog',
  priority varchar(10) not null default 'P2',
  title varchar(500) not null,
  description text,
  deadline timestamp,
  success_criteria jsonb not null default '[]',
  started_at timestamp,
  completed_at timestamp,
  metadata jsonb not null default '{}',
  created_at timestamp not null default now(),
  updated_at timestamp not null default now(),
  deleted_at timestamp,
  constraint tasks_status_check check (status in (
    'backlog', 'assigned', 'in_progress', 'blocked', 'completed', 'cancelled'
  )),
  constraint tasks_priority_check check (priority in ('P0', 'P1', 'P2', 'P3')),
  constraint tasks_title_not_empty check (title <> ''),
  constraint tasks_success_criteria_array check (jsonb_typeof(success_criteria) = 'array'),
  constraint idx_tasks_project_github_id unique (project_id, github_issue_id),
  constraint idx_tasks_project_github_number unique (project_id, github_issue_number)
);

create index idx_tasks_project_id on agentflow.tasks (project_id);
create index idx_tasks_github_issue_id on agentflow.tasks (github_issue_id);
create index idx_tasks_assigned_agent_id on agentflow.tasks (assigned_agent_id);
create index idx_tasks_status on agentflow.tasks (status);
create index idx_tasks_priority on agentflow.tasks (priority);
create index idx_tasks_deadline on agentflow.tasks (deadline);
create index idx_tasks_priority_status on agentflow.tasks (priority, status);
create index idx_tasks_agent_priority on agentflow.tasks (assigned_agent_id, priority, status);
create index idx_tasks_deleted_at on agentflow.tasks (deleted_at);

-- "Agents on 'probation' status cannot be assigned critical tasks" (P0 is
-- the seed's "Critical").  Checked when an assignment is made: inserting an
-- assigned task, or changing its agent or its priority.  A task assigned
-- before the agent went on probation stays assigned.
create function agentflow.refuse_critical_task_for_probation()
returns trigger
language plpgsql as $$
begin
  if new.priority = 'P0'
     and new.assigned_agent_id is not null
     and (tg_op = 'INSERT'
          or new.assigned_agent_id is distinct from old.assigned_agent_id
          or new.priority is distinct from old.priority)
     and exists (select 1 from agentflow.agents a
                 where a.id = new.assigned_agent_id and a.status = 'probation') then
    raise exception 'agentflow.tasks: agent % is on probation and cannot be assigned a P0 (critical) task',
      new.assigned_agent_id;
  end if;
  return new;
end;
$$;

create trigger tasks_probation_no_critical
  before insert or update on agentflow.tasks
  for each row execute function agentflow.refuse_critical_task_for_probation();

create trigger update_tasks_updated_at
  before update on agentflow.tasks
  for each row execute function agentflow.update_updated_at_column();

-- wiki_entries

create table agentflow.wiki_entries (
  id uuid primary key default gen_random_uuid(),
  workspace_id uuid not null
    constraint wiki_entries_workspace_id_fkey references agentflow.workspaces (id),
  -- NULL = organisation-wide entry.
  project_id uuid
    constraint wiki_entries_project_id_fkey references agentflow.projects (id),
  -- NULL when the CEO wrote it.
  proposed_by_agent_id uuid
    constraint wiki_entries_proposed_by_agent_id_fkey references agentflow.agents (id),
  status varchar(50) not null default 'draft',
  title varchar(500) not null,
  slug varchar(200) not null,
  content text not null,
  tags varchar[] not null default '{}',
  version integer not null default 1,
  parent_entry_id uuid
    constraint wiki_entries_parent_entry_id_fkey references agentflow.wiki_entries (id),
  approved_by uuid
    constraint wiki_entries_approved_by_fkey references agentflow.users (id),
  approved_at timestamp,
  rejection_reason text,
  view_count integer not null default 0,
  last_viewed_at timestamp,
  metadata jsonb not null default '{}',
  created_at timestamp not null default now(),
  updated_at timestamp not null default now(),
  deleted_at timestamp,
  constraint wiki_entries_status_check
    check (status in ('draft', 'pending_approval', 'approved', 'rejected')),
  -- "CEO (user) must approve all wiki entries": an approved entry names the
  -- CEO who approved it and when.
  constraint wiki_entries_approval_recorded
    check (status <> 'approved' or (approved_by is not null and approved_at is not null)),
  constraint wiki_entries_slug_format check (slug ~ '^[a-z0-9-]+$'),
  constraint wiki_entries_title_not_empty check (title <> ''),
  constraint wiki_entries_content_not_empty check (content <> ''),
  constraint wiki_entries_version_positive check (version > 0),
  constraint wiki_entries_view_count_nonnegative check (view_count >= 0),
  -- "Unique slug / title per scope", where project_id NULL is the
  -- organisation-wide scope: NULLs compare equal.  A new version of an entry
  -- (a new row, parent_entry_id pointing back) therefore needs its own slug
  -- and title within the scope, as the seed's constraints imply.
  constraint idx_wiki_workspace_project_slug
    unique nulls not distinct (workspace_id, project_id, slug),
  constraint wiki_entries_workspace_project_title_key
    unique nulls not distinct (workspace_id, project_id, title)
);

create index idx_wiki_workspace_id on agentflow.wiki_entries (workspace_id);
create index idx_wiki_project_id on agentflow.wiki_entries (project_id);
create index idx_wiki_proposed_by_agent_id on agentflow.wiki_entries (proposed_by_agent_id);
create index idx_wiki_status on agentflow.wiki_entries (status);
create index idx_wiki_slug on agentflow.wiki_entries (slug);
create index idx_wiki_tags on agentflow.wiki_entries using gin (tags);
create index idx_wiki_parent_entry_id on agentflow.wiki_entries (parent_entry_id);
create index idx_wiki_approved_by on agentflow.wiki_entries (approved_by);
create index idx_wiki_deleted_at on agentflow.wiki_entries (deleted_at);
-- The seed first lists idx_wiki_fulltext as a plain (title, content) index,
-- then defines the full-text index it is for; the final version is kept (a
-- b-tree on whole Markdown documents would also overflow its row limit).
create index idx_wiki_fulltext_search on agentflow.wiki_entries
  using gin (to_tsvector('english', title || ' ' || content));

-- "Only organization-level agents can propose wiki entries."
create function agentflow.refuse_wiki_proposal_by_project_agent()
returns trigger
language plpgsql as $$
begin
  if new.proposed_by_agent_id is not null
     and (tg_op = 'INSERT' or new.proposed_by_agent_id is distinct from old.proposed_by_agent_id)
     and exists (select 1 from agentflow.agents a
                 where a.id = new.proposed_by_agent_id and a.agent_level <> 'organization') then
    raise exception 'agentflow.wiki_entries: agent % is not an organization-level agent and cannot propose wiki entries',
      new.proposed_by_agent_id;
  end if;
  return new;
end;
$$;

create trigger wiki_entries_proposer_is_org_agent
  before insert or update on agentflow.wiki_entries
  for each row execute function agentflow.refuse_wiki_proposal_by_project_agent();

-- "When CEO edits approved entry, create new version (never mutate existing
-- versions)": once approved, what the entry says and where it sits is frozen.
-- Bookkeeping (views, metadata, status, soft delete) may still change.
create function agentflow.refuse_edit_of_approved_wiki_entry()
returns trigger
language plpgsql as $$
begin
  if old.status = 'approved'
     and (new.title, new.slug, new.content, new.tags, new.version,
          new.parent_entry_id, new.workspace_id, new.project_id)
         is distinct from
         (old.title, old.slug, old.content, old.tags, old.version,
          old.parent_entry_id, old.workspace_id, old.project_id) then
    raise exception 'agentflow.wiki_entries: entry % is approved and cannot be edited', old.id
      using hint = 'insert a new version with parent_entry_id pointing to it';
  end if;
  return new;
end;
$$;

create trigger wiki_entries_approved_immutable
  before update on agentflow.wiki_entries
  for each row execute function agentflow.refuse_edit_of_approved_wiki_entry();

create trigger update_wiki_entries_updated_at
  before update on agentflow.wiki_entries
  for each row execute function agentflow.update_updated_at_column();

-- Left to Lua (strata has no RLS): "draft entries are only visible to the
-- proposing agent", "approved entries are visible to all agents in
-- workspace/project", "CEO must approve before they're visible", and task
-- ordering (priority, then deadline) and GitHub synchronisation, which are
-- application behaviour.
