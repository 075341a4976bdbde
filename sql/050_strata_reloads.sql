-- strata's own bookkeeping: every Lua reload attempt (time, trigger, result,
-- the generation serving after it, the files that changed with their
-- content hashes, the error if any), written by the server's sidecar thread.
create table public.strata_reloads (
  id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  trigger text not null,
  result text not null check (result in ('ok', 'error')),
  generation bigint not null,
  files jsonb not null default '[]'::jsonb,
  error text
);

create index strata_reloads_at_idx on public.strata_reloads (at desc);
