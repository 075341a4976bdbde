-- Periodic jobs that every strata instance on this database schedules (the
-- log retention purge, lua/jobs.lua's jobs): a run first claims its period
-- here, so a job runs once per period across the instances.  An advisory
-- lock alone only keeps two runs from overlapping: instances whose timers
-- are not in step would each run it once per period.
create table public.strata_job_runs (
  name text primary key,
  last_run_at timestamptz not null
);
revoke all on public.strata_job_runs from anon, authenticated;
alter table public.strata_job_runs enable row level security;
create policy strata_service_role on public.strata_job_runs as permissive for all to service_role
  using (true) with check (true);

-- True when the caller may run job p_name now: no run of it started in the
-- last p_interval_ms (less a tenth, for timers that fire a little early),
-- and records this run.  One statement: concurrent claims of one period
-- serialize on the row, and only the first sees the old time.
create function public.strata_claim_job_run(p_name text, p_interval_ms bigint)
  returns boolean
  language sql volatile
  set search_path = public, pg_temp
as $$
  with claimed as (
    insert into public.strata_job_runs as j (name, last_run_at) values (p_name, clock_timestamp())
    on conflict (name) do update set last_run_at = clock_timestamp()
      where j.last_run_at <= clock_timestamp() - make_interval(secs => p_interval_ms * 0.9 / 1000.0)
    returning 1)
  select exists (select 1 from claimed)
$$;
revoke all on function public.strata_claim_job_run(text, bigint) from public, anon, authenticated;
