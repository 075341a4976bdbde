-- Which strata process runs each unfinished AI task (issue 17): a crash or
-- kill -9 leaves its tasks 'pending' or 'streaming' for ever, since only the
-- process that streams a task records its end.  lua/strata/ai/execute.lua
-- writes the row when the task starts streaming and deletes it with the
-- completion; the job ai.orphaned_tasks (lua/jobs.lua) of the next start of
-- the same instance (config.instance, "host:listen") fails the tasks whose
-- rows name another boot of it (config.boot_id).  Not exposed: no grants to
-- the API roles.
create table public.strata_ai_task_runs (
  task_id uuid primary key references public.ai_tasks (task_id) on delete cascade,
  instance text not null,
  boot_id text not null,
  started_at timestamptz not null default now()
);
create index strata_ai_task_runs_instance on public.strata_ai_task_runs (instance);
revoke all on public.strata_ai_task_runs from anon, authenticated;
alter table public.strata_ai_task_runs enable row level security;
create policy strata_service_role on public.strata_ai_task_runs as permissive for all to service_role
  using (true) with check (true);

-- Fails the unfinished tasks that an earlier boot of p_instance left, and
-- forgets their rows; the number failed.
create function public.ai_fail_orphaned_tasks(p_instance text, p_boot_id text)
  returns integer
  language sql volatile
  set search_path = public, pg_temp
as $$
  with gone as (
    delete from public.strata_ai_task_runs r
     where r.instance = p_instance and r.boot_id <> p_boot_id
    returning r.task_id),
  failed as (
    update public.ai_tasks t set status = 'failed', response_complete = false, completed_at = now(),
           updated_at = now(),
           response_errors = jsonb_build_object('code', 'interrupted',
             'message', 'strata stopped during this execution (a crash or a kill); the answer is incomplete')
      from gone
     where t.task_id = gone.task_id and t.status in ('pending', 'streaming')
    returning 1)
  select count(*)::int from failed
$$;
revoke all on function public.ai_fail_orphaned_tasks(text, text) from public, anon, authenticated;
grant execute on function public.ai_fail_orphaned_tasks(text, text) to service_role;
