-- AgentFlow (seed 004), part 2 of 3: what agents do over time.  Creates
-- agentflow.sessions (work sessions, one open at a time per agent),
-- agentflow.events (the append-only timeline) and agentflow.kpis (KPI
-- history), with their triggers.  Builds on 041_agentflow_org.sql.

-- sessions

create table agentflow.sessions (
  id uuid primary key default gen_random_uuid(),
  agent_id uuid not null
    constraint sessions_agent_id_fkey references agentflow.agents (id),
  project_id uuid not null
    constraint sessions_project_id_fkey references agentflow.projects (id),
  status varchar(50) not null default 'started',
  started_at timestamp not null default now(),
  stopped_at timestamp,
  duration_seconds integer,
  tasks_worked_on jsonb not null default '[]',
  metadata jsonb not null default '{}',
  created_at timestamp not null default now(),
  updated_at timestamp not null default now(),
  -- The seed writes this union's CHECK on a column `session_status`; the
  -- table's column is `status`.
  constraint sessions_status_check
    check (status in ('started', 'logging', 'stopped')),
  -- "stopped_at: NULL if active" and "'stopped': Session ended" describe one
  -- fact twice; the check keeps the two from disagreeing, so "active" means
  -- the same thing to the unique index below and to the triggers.
  constraint sessions_stopped_at_matches_status
    check ((status = 'stopped') = (stopped_at is not null)),
  constraint sessions_tasks_worked_on_array
    check (jsonb_typeof(tasks_worked_on) = 'array')
);

create index idx_sessions_agent_id on agentflow.sessions (agent_id);
create index idx_sessions_project_id on agentflow.sessions (project_id);
create index idx_sessions_status on agentflow.sessions (status);
create index idx_sessions_started_at on agentflow.sessions (started_at);
create index idx_sessions_stopped_at on agentflow.sessions (stopped_at);
create index idx_sessions_agent_status on agentflow.sessions (agent_id, status);

-- "Only one active session per agent at a time."
create unique index sessions_one_active_per_agent
  on agentflow.sessions (agent_id) where status <> 'stopped';

-- "A session cannot be modified after stopped_at is set."
create function agentflow.refuse_update_of_stopped_session()
returns trigger
language plpgsql as $$
begin
  if old.stopped_at is not null then
    raise exception 'agentflow.sessions: session % was stopped at % and can no longer be modified',
      old.id, old.stopped_at
      using hint = 'start a new session instead';
  end if;
  return new;
end;
$$;

create trigger sessions_refuse_update_when_stopped
  before update on agentflow.sessions
  for each row execute function agentflow.refuse_update_of_stopped_session();

-- "duration_seconds is calculated automatically on stop": it is derived, so
-- whatever the caller wrote is replaced (NULL while the session is open).
create function agentflow.set_session_duration()
returns trigger
language plpgsql as $$
begin
  new.duration_seconds = case
    when new.stopped_at is null then null
    else floor(extract(epoch from new.stopped_at - new.started_at))::integer
  end;
  return new;
end;
$$;

create trigger sessions_set_duration
  before insert or update on agentflow.sessions
  for each row execute function agentflow.set_session_duration();

create trigger update_sessions_updated_at
  before update on agentflow.sessions
  for each row execute function agentflow.update_updated_at_column();

-- events: immutable timeline.  No updated_at, by design.

create table agentflow.events (
  id uuid primary key default gen_random_uuid(),
  type varchar(100) not null,
  -- NULL for automatic (system) events.
  author_id uuid
    constraint events_author_id_fkey
    references agentflow.agents (id) on delete cascade,
  session_id uuid
    constraint events_session_id_fkey
    references agentflow.sessions (id) on delete cascade,
  project_id uuid
    constraint events_project_id_fkey references agentflow.projects (id),
  content jsonb not null,
  mentions uuid[] not null default '{}',
  metadata jsonb not null default '{}',
  "timestamp" timestamp not null default now(),
  created_at timestamp not null default now(),
  constraint events_type_check check (type in (
    'session_start', 'session_log', 'session_stop',
    'task_assigned', 'task_completed', 'task_blocked',
    'problem_report', 'advice_given', 'question_asked',
    'review_requested', 'review_response',
    'github_pr_opened', 'github_pr_merged', 'github_issue_assigned',
    'kpi_updated', 'trust_score_changed',
    'wiki_contribution'
  ))
);

create index idx_events_type on agentflow.events (type);
create index idx_events_author_id on agentflow.events (author_id);
create index idx_events_session_id on agentflow.events (session_id);
create index idx_events_project_id on agentflow.events (project_id);
create index idx_events_timestamp on agentflow.events ("timestamp");
create index idx_events_mentions on agentflow.events using gin (mentions);
create index idx_events_metadata on agentflow.events using gin (metadata);
create index idx_events_type_timestamp on agentflow.events (type, "timestamp");
create index idx_events_project_timestamp on agentflow.events (project_id, "timestamp");

-- "Events are immutable (append-only timeline): no updates, no deletes."
-- The seed also cascades events when their session or author agent is
-- (hard-)deleted.  Both hold: a delete is let through only when the session or
-- agent the event hangs from is already gone, which only happens inside those
-- ON DELETE CASCADE actions (while the parent exists, its foreign key
-- guarantees it is visible).  Any direct UPDATE or DELETE is refused.
create function agentflow.refuse_event_change()
returns trigger
language plpgsql as $$
begin
  if tg_op = 'DELETE'
     and ((old.session_id is not null
           and not exists (select 1 from agentflow.sessions s where s.id = old.session_id))
       or (old.author_id is not null
           and not exists (select 1 from agentflow.agents a where a.id = old.author_id))) then
    return old;
  end if;
  raise exception 'agentflow.events is append-only: % of event % refused', tg_op, old.id
    using hint = 'record a new event instead';
end;
$$;

create trigger events_append_only
  before update or delete on agentflow.events
  for each row execute function agentflow.refuse_event_change();

create function agentflow.refuse_event_truncate()
returns trigger
language plpgsql as $$
begin
  raise exception 'agentflow.events is append-only: TRUNCATE refused';
end;
$$;

create trigger events_no_truncate
  before truncate on agentflow.events
  for each statement execute function agentflow.refuse_event_truncate();

-- kpis: one row per agent per recording, kept for trend analysis.  The
-- metrics / trend_data shapes (and their 0..100 / 0..1 ranges) are Zod
-- objects with defaults, application work; note that the seed's DEFAULT '{}'
-- for trend_data would not even satisfy its own Zod object.

create table agentflow.kpis (
  id uuid primary key default gen_random_uuid(),
  -- "cascade KPIs when agent permanently deleted".
  agent_id uuid not null
    constraint kpis_agent_id_fkey
    references agentflow.agents (id) on delete cascade,
  recorded_at timestamp not null default now(),
  metrics jsonb not null,
  trend_data jsonb not null default '{}',
  calculated_at timestamp not null default now(),
  created_at timestamp not null default now(),
  constraint kpis_agent_id_recorded_at_key unique (agent_id, recorded_at)
);

create index idx_kpis_agent_id on agentflow.kpis (agent_id);
create index idx_kpis_recorded_at on agentflow.kpis (recorded_at);
create index idx_kpis_agent_recorded on agentflow.kpis (agent_id, recorded_at desc);
create index idx_kpis_metrics on agentflow.kpis using gin (metrics);

-- Left to Lua: who may read a session's logs or the timeline (no RLS in
-- strata).  "Session automatically pulls latest updates when started" is
-- application behaviour.
