-- The database refuses what the Lua row policies refuse (issue 18): the API
-- roles anon and authenticated lose 100's blanket grants on the exposed
-- schemas' tables, and row level security is enabled on every table there.
-- What they may do per table, and the policies, come from lua/policies/:
-- `scripts/db rls` generates them (lua/strata/rls.lua) and `scripts/db
-- migrate` runs it after the migrations.  Until it has run, RLS denies the
-- API roles every row.  service_role keeps ALL and gets a `USING (true)`
-- policy on every table (rather than BYPASSRLS, which only a superuser may
-- grant, and the role running migrations need not be one).  strata's own
-- statements without a caller run as the tables' owner, which RLS does
-- not restrict (no FORCE).  Sequences stay usable (serial defaults).  The
-- schema strata_rls holds the generated SECURITY DEFINER functions the
-- policies' in_select subqueries call.  Tables created later keep the
-- default privileges of 100 and no RLS until `scripts/db rls` runs again
-- (`scripts/db verify`'s RLS category says so).
create schema strata_rls;
revoke all on schema strata_rls from public;
grant usage on schema strata_rls to anon, authenticated, service_role;

do $$
declare
  s text;
  r record;
begin
  foreach s in array array['public', 'orchestrator', 'agentflow'] loop
    execute format('revoke all on all tables in schema %I from anon, authenticated', s);
    execute format('grant usage on all sequences in schema %I to anon, authenticated', s);
    for r in select c.relname from pg_class c
              where c.relnamespace = s::regnamespace and c.relkind in ('r', 'p') loop
      execute format('alter table %I.%I enable row level security', s, r.relname);
      execute format('create policy strata_service_role on %I.%I as permissive for all to service_role '
        'using (true) with check (true)', s, r.relname);
    end loop;
  end loop;
end
$$;
