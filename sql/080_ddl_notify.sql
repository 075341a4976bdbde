-- Schema changes reach strata's REST catalog: every DDL command NOTIFYs
-- strata_ddl, and the server re-reads tables, columns and functions on its
-- next REST request.  Event triggers need a superuser: where the migration
-- runs without one, the trigger is skipped with a notice, and the catalog is
-- refreshed by a reload (SIGHUP, a file change, POST /admin/reload) instead.
create function public.strata_notify_ddl() returns event_trigger
language plpgsql as $$
begin
  perform pg_notify('strata_ddl', tg_tag);
end
$$;

do $$
begin
  create event trigger strata_ddl on ddl_command_end execute function public.strata_notify_ddl();
exception when insufficient_privilege then
  raise notice 'strata_ddl event trigger not created (needs a superuser): the REST catalog refreshes on reload only';
end
$$;
