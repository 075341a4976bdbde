-- The scheduler's bookkeeping (lua/jobs.lua, lua/strata/jobs.lua): one row
-- per job name, shared by every strata instance on this database.
--
--   * strata_jobs.claim(name, every_ms): the job's turn, atomically: true
--     for exactly one caller per period (an upsert whose update applies only
--     when the last start is a period old; concurrent callers queue on the
--     row and see the winner's start), so instances that tick at different
--     moments still run each job once per period;
--   * strata_jobs.finish(name, ok, error): the counts (runs, failures),
--     the last error and duration — the jobs' metrics, cluster-wide.
-- While a job runs, its transaction holds pg_try_advisory_xact_lock of
-- hashtextextended('strata.job:' || name, 0), so a run that outlasts its
-- period is never joined by a second one.  Schema strata_jobs is not
-- exposed; only service_role (the server) reaches it.

create schema strata_jobs;
revoke all on schema strata_jobs from public;
grant usage on schema strata_jobs to service_role;

create table strata_jobs.jobs (
  name text primary key,
  every_ms integer not null check (every_ms > 0),
  last_started_at timestamptz not null,
  last_finished_at timestamptz,
  last_duration_ms integer,
  runs bigint not null default 0,
  failures bigint not null default 0,
  skipped bigint not null default 0,
  last_error text,
  last_error_at timestamptz
);

grant select on strata_jobs.jobs to service_role;

-- A period is due a little early (5%): a tick a few milliseconds short of
-- the period must not push the run to the tick after.
create function strata_jobs.claim(p_name text, p_every_ms integer)
returns boolean
language sql security definer set search_path = pg_catalog, strata_jobs as $$
  insert into strata_jobs.jobs as j (name, every_ms, last_started_at) values (p_name, p_every_ms, clock_timestamp())
  on conflict (name) do update set last_started_at = clock_timestamp(), every_ms = excluded.every_ms
    where j.last_started_at <= clock_timestamp() - make_interval(secs => p_every_ms * 0.95 / 1000.0)
  returning true;
$$;

-- p_ok: true (ran), false (failed: p_error), null (skipped: a run still held its lock).
create function strata_jobs.finish(p_name text, p_ok boolean, p_error text)
returns void
language sql security definer set search_path = pg_catalog, strata_jobs as $$
  update strata_jobs.jobs set
    runs = runs + (p_ok is not null)::int,
    failures = failures + (p_ok is false)::int,
    skipped = skipped + (p_ok is null)::int,
    last_finished_at = case when p_ok is not null then clock_timestamp() else last_finished_at end,
    last_duration_ms = case when p_ok is not null
      then (extract(epoch from clock_timestamp() - last_started_at) * 1000)::integer else last_duration_ms end,
    last_error = case when p_ok is false then p_error else last_error end,
    last_error_at = case when p_ok is false then clock_timestamp() else last_error_at end
  where name = p_name;
$$;

revoke all on function strata_jobs.claim(text, integer), strata_jobs.finish(text, boolean, text) from public;
grant execute on function strata_jobs.claim(text, integer), strata_jobs.finish(text, boolean, text) to service_role;
