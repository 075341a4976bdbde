-- AgentFlow soft deletes (seed 004, issue 15).  The policies of users,
-- workspaces, projects, agents, tasks and wiki_entries say
-- `soft_delete = "deleted_at"`, so a DELETE through /rest/v1 stamps
-- deleted_at instead of removing rows (lua/strata/rest).  A soft delete
-- reaches what lives inside the row, as the database's own cascades would
-- (SECURITY DEFINER, like a foreign key's actions, which row level
-- security does not restrict), with the same timestamp:
--   * a user's workspaces, a workspace's projects and agents, a project's
--     tasks, wiki entries and project-level agents are soft-deleted too
--     (the seed's RESTRICT guards hard deletes, which stay refused);
--   * SET NULL: a deleted agent's open tasks lose their assignee and go
--     back to the backlog.

create function agentflow.soft_delete_cascade()
returns trigger
language plpgsql security definer set search_path = pg_catalog, agentflow as $$
begin
  if old.deleted_at is not null or new.deleted_at is null then return null; end if;
  if tg_table_name = 'users' then
    update workspaces set deleted_at = new.deleted_at where owner_id = new.id and deleted_at is null;
  elsif tg_table_name = 'workspaces' then
    update projects set deleted_at = new.deleted_at where workspace_id = new.id and deleted_at is null;
    update agents set deleted_at = new.deleted_at where workspace_id = new.id and deleted_at is null;
    update wiki_entries set deleted_at = new.deleted_at where workspace_id = new.id and deleted_at is null;
  elsif tg_table_name = 'projects' then
    update agents set deleted_at = new.deleted_at where project_id = new.id and deleted_at is null;
    update tasks set deleted_at = new.deleted_at where project_id = new.id and deleted_at is null;
    update wiki_entries set deleted_at = new.deleted_at where project_id = new.id and deleted_at is null;
  elsif tg_table_name = 'agents' then
    update tasks set assigned_agent_id = null, status = 'backlog'
    where assigned_agent_id = new.id and status in ('assigned', 'in_progress', 'blocked');
  end if;
  return null;
end;
$$;

do $$
declare
  t text;
begin
  foreach t in array array['users', 'workspaces', 'projects', 'agents'] loop
    execute format('create trigger %I after update of deleted_at on agentflow.%I for each row '
                   'execute function agentflow.soft_delete_cascade()', t || '_soft_delete_cascade', t);
  end loop;
end
$$;
