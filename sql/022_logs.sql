-- Seed 003 (chat platform), analytics and logging tables: usage_logs,
-- rate_limit_tracking, github_repositories, error_logs, user_activity_logs
-- and agent_activity_logs, with all the indexes the seed names for them.
-- Retention purging and the logging switches are functions in
-- 023_functions.sql.
--
-- As in 020_chat.sql, user_id / resolved_by carry no foreign key to
-- auth.users: the seed simulates it with triggers (023_functions.sql).
-- The seed gives index names and purposes only; the columns follow those
-- purposes.

create table public.usage_logs (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null,
  chat_id uuid references public."Chat"(id) on delete set null,
  agent_type varchar(50) not null,
  model_used varchar(100),
  provider varchar(50),
  input_tokens integer,
  output_tokens integer,
  total_tokens integer,
  input_cost decimal(10, 6),
  output_cost decimal(10, 6),
  total_cost decimal(10, 6),
  request_timestamp timestamp default now(),
  response_timestamp timestamp,
  duration_ms integer,
  metadata jsonb
);

create table public.rate_limit_tracking (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null,
  agent_type varchar(50) not null,
  period_start timestamp not null,
  period_end timestamp not null,
  request_count integer default 0,
  limit_type varchar(20) not null check (limit_type in ('hourly', 'daily')),
  limit_value integer not null,
  created_at timestamp default now()
);

create table public.github_repositories (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null,
  repo_owner varchar(100) not null,
  repo_name varchar(100) not null,
  repo_url text,
  default_branch varchar(100) default 'main',
  is_active boolean default true,
  last_accessed timestamp,
  created_at timestamp default now()
);

create table public.error_logs (
  id uuid primary key default gen_random_uuid(),
  -- Nullable and unvalidated: errors happen before sign-in too, and the logs
  -- outlive the users they mention.
  user_id uuid,
  error_type varchar(50) not null
    check (error_type in ('auth', 'api', 'admin', 'app', 'user', 'permission', 'system')),
  error_category varchar(100) not null,
  error_message text not null,
  error_details jsonb,
  request_path varchar(500),
  request_method varchar(10),
  user_agent text,
  ip_address varchar(45),
  session_id varchar(100),
  severity varchar(20) not null default 'error'
    check (severity in ('info', 'warning', 'error', 'critical')),
  resolved boolean default false,
  resolved_by uuid,
  resolved_at timestamp,
  resolution_notes text,
  created_at timestamp default now()
);

create table public.user_activity_logs (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null,
  -- Links a user action to the agent_activity_logs rows it caused.
  correlation_id uuid not null,
  -- The activity types the seed lists; its categories end in "etc.", so
  -- activity_category stays open.
  activity_type varchar(50) not null check (activity_type in (
    'auth_login', 'auth_logout', 'auth_register',
    'chat_create', 'chat_view', 'chat_delete', 'chat_message_send',
    'document_create', 'document_view', 'document_update', 'document_delete',
    'admin_config_update', 'admin_dashboard_view', 'admin_provider_view',
    'vote_message', 'suggestion_view', 'file_upload', 'artifact_create', 'artifact_execute'
  )),
  activity_category varchar(50) not null,
  activity_metadata jsonb default '{}',
  resource_id uuid,
  resource_type varchar(50),
  ip_address varchar(45),
  user_agent text,
  request_path varchar(500),
  request_method varchar(10),
  session_id varchar(100),
  success boolean default true,
  error_message text,
  created_at timestamp default now()
);

create table public.agent_activity_logs (
  id uuid primary key default gen_random_uuid(),
  -- NULL for system operations.
  user_id uuid,
  correlation_id uuid not null,
  agent_type varchar(50) not null check (agent_type in (
    'chat_model_agent', 'provider_tools_agent', 'document_agent',
    'python_agent', 'mermaid_agent', 'git_mcp_agent'
  )),
  operation_type varchar(50) not null check (operation_type in (
    'initialization', 'tool_invocation', 'code_generation',
    'document_generation', 'diagram_generation', 'code_execution',
    'search', 'url_fetch', 'mcp_operation', 'streaming'
  )),
  -- The seed's categories end in "etc.": left open.
  operation_category varchar(50) not null,
  operation_metadata jsonb default '{}',
  resource_id uuid,
  resource_type varchar(50),
  duration_ms integer,
  start_time timestamp,
  end_time timestamp,
  model_id varchar(100),
  provider varchar(50),
  thinking_mode boolean default false,
  input_tokens integer,
  output_tokens integer,
  reasoning_tokens integer,
  total_tokens integer,
  input_cost decimal(10, 6),
  output_cost decimal(10, 6),
  total_cost decimal(10, 6),
  success boolean default true,
  error_type varchar(100),
  error_message text,
  retry_count integer default 0,
  created_at timestamp default now()
);

create index idx_usage_logs_user_id on public.usage_logs(user_id);
create index idx_usage_logs_user_timestamp on public.usage_logs(user_id, request_timestamp desc);
create index idx_usage_logs_agent_timestamp on public.usage_logs(agent_type, request_timestamp desc);
create index idx_usage_logs_date_range on public.usage_logs(request_timestamp);
create index idx_usage_logs_model_provider
  on public.usage_logs(model_used, provider, request_timestamp desc);
-- Per-day charts group by date(request_timestamp).
create index idx_usage_logs_date_agent
  on public.usage_logs((request_timestamp::date), agent_type);
create index idx_usage_logs_cost_date on public.usage_logs(request_timestamp desc, total_cost)
  where total_cost is not null;

create index idx_rate_limit_user_id on public.rate_limit_tracking(user_id);
create index idx_rate_limit_user_agent on public.rate_limit_tracking(user_id, agent_type, period_start);
create index idx_rate_limit_user_agent_period
  on public.rate_limit_tracking(user_id, agent_type, period_start desc, period_end desc);

create index idx_github_repos_user_id on public.github_repositories(user_id);
create index idx_github_repos_user on public.github_repositories(user_id, is_active);
create index idx_github_repos_user_active
  on public.github_repositories(user_id, is_active, last_accessed desc);

create index idx_error_logs_user_id on public.error_logs(user_id);
create index idx_error_logs_error_type on public.error_logs(error_type);
create index idx_error_logs_error_category on public.error_logs(error_category);
create index idx_error_logs_severity on public.error_logs(severity);
create index idx_error_logs_created_at on public.error_logs(created_at desc);
create index idx_error_logs_resolved on public.error_logs(resolved);
create index idx_error_logs_user_created on public.error_logs(user_id, created_at desc);
create index idx_error_logs_type_severity on public.error_logs(error_type, severity);

create index idx_user_activity_user_id on public.user_activity_logs(user_id);
create index idx_user_activity_correlation on public.user_activity_logs(correlation_id);
create index idx_user_activity_type on public.user_activity_logs(activity_type);
create index idx_user_activity_category on public.user_activity_logs(activity_category);
create index idx_user_activity_created on public.user_activity_logs(created_at desc);
create index idx_user_activity_user_created on public.user_activity_logs(user_id, created_at desc);
create index idx_user_activity_resource on public.user_activity_logs(resource_type, resource_id);
create index idx_user_activity_success on public.user_activity_logs(success, created_at desc);
create index idx_user_activity_user_type_date
  on public.user_activity_logs(user_id, activity_type, created_at desc);

create index idx_agent_activity_user_id on public.agent_activity_logs(user_id);
create index idx_agent_activity_correlation on public.agent_activity_logs(correlation_id);
create index idx_agent_activity_agent_type on public.agent_activity_logs(agent_type);
create index idx_agent_activity_operation on public.agent_activity_logs(operation_type);
create index idx_agent_activity_category on public.agent_activity_logs(operation_category);
create index idx_agent_activity_created on public.agent_activity_logs(created_at desc);
create index idx_agent_activity_model on public.agent_activity_logs(model_id, provider);
create index idx_agent_activity_success on public.agent_activity_logs(success, created_at desc);
create index idx_agent_activity_resource on public.agent_activity_logs(resource_type, resource_id);
create index idx_agent_activity_duration on public.agent_activity_logs(agent_type, duration_ms)
  where duration_ms is not null;
create index idx_agent_activity_cost on public.agent_activity_logs(created_at desc, total_cost)
  where total_cost is not null;
create index idx_agent_activity_agent_op_date
  on public.agent_activity_logs(agent_type, operation_type, created_at desc);

-- Left to Lua (lua/policies/public/), not created here: the seed's RLS
-- policies "Users can read own usage_logs", "Admins can read all
-- usage_logs", "System can create usage_logs", "Users can read own
-- rate_limits", "System can manage rate_limits", "Users can manage own
-- repositories", "Users can read own error_logs", "Admins can read all
-- error_logs", "Admins can update error_logs", "System can insert
-- error_logs", "Users can read own activity logs", "Admins can read all
-- activity logs", "System can insert activity logs", "Users can read own
-- agent logs", "Admins can read all agent logs" and "System can insert
-- agent logs".
