-- AgentFlow soft deletes (seed 004, issue 15).  The policies of users,
-- workspaces, projects, agents, tasks and wiki_entries say
-- `soft_delete = "deleted_at"`, so a DELETE through /rest/v1 stamps
-- deleted_at instead of removing rows (lua/strata/rest).  What the seed's
-- ON DELETE rules say for hard deletes holds for soft ones here, as the
-- database's own cascades would (SECURITY DEFINER, like a foreign key's
-- actions, which row level security does not restrict):
--   * RESTRICT: a workspace with live projects or agents, a user with live
--     workspaces, and a project with live project-level agents (an agent of
--     that level needs its project) cannot be deleted;
--   * a deleted project takes its live tasks and wiki entries with it;
--   * SET NULL: a deleted agent's open tasks lose their assignee and go
--     back to the backlog.

create function agentflow.soft_delete_cascade()
returns trigger
language plpgsql security definer set search_path = pg_catalog, agentflow as $$
begin
  if old.deleted_at is not null or new.deleted_at is null then return null; end if;
  if tg_table_name = 'users' then
    if exists (select 1 from workspaces where owner_id = new.id and deleted_at is null) then
      raise exception 'user % still owns live workspaces', new.id using errcode = '23503';
    end if;
  elsif tg_table_name = 'workspaces' then
    if exists (select 1 from projects where workspace_id = new.id and deleted_at is null)
       or exists (select 1 from agents where workspace_id = new.id and deleted_at is null) then
      raise exception 'workspace % still has live projects or agents', new.id using errcode = '23503';
    end if;
  elsif tg_table_name = 'projects' then
    if exists (select 1 from agents where project_id = new.id and deleted_at is null) then
      raise exception 'project % still has live project-level agents', new.id using errcode = '23503';
    end if;
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
