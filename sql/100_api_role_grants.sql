-- The API roles may do on the exposed schemas what the API can do, so each
-- request's statements run as the caller's role (strata.db sets `role` per
-- statement or transaction, as PostgREST does with SET LOCAL ROLE) and SQL
-- that looks at current_user / current_role sees anon, authenticated or
-- service_role.  As on Supabase, the grants are broad: which rows a role
-- reaches is decided by the Lua row policies (lua/policies/), not here.
-- Functions keep PostgreSQL's default (EXECUTE for PUBLIC) and the revokes
-- earlier migrations made (purge_old_activity_logs() is service_role's).
-- Default privileges cover tables created later by the role running
-- migrations.  strata's own connection must be able to become each
-- API role: a superuser can; otherwise it is granted membership here (the
-- role running this migration is the one strata connects as by default).
do $$
declare
  s text;
begin
  foreach s in array array['public', 'orchestrator', 'agentflow'] loop
    execute format('grant usage on schema %I to anon, authenticated, service_role', s);
    execute format('grant all on all tables in schema %I to anon, authenticated, service_role', s);
    execute format('grant all on all sequences in schema %I to anon, authenticated, service_role', s);
    execute format('alter default privileges in schema %I grant all on tables to anon, authenticated, service_role', s);
    execute format('alter default privileges in schema %I grant all on sequences to anon, authenticated, service_role', s);
  end loop;
end
$$;

do $$
begin
  if not (select rolsuper from pg_roles where rolname = current_user) then
    execute format('grant anon, authenticated, service_role to %I', current_user);
  end if;
end
$$;
