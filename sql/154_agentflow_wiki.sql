-- AgentFlow wiki versions (seed 004, issue 15; lua/routes/agentflow_wiki.lua).
-- "When CEO edits approved entry, create new version": a version is a new
-- row with the same slug, version + 1 and parent_entry_id pointing back.
-- sql/043's unique (scope, slug) and (scope, title) forced each version onto
-- a slug of its own; they become unique per version (same names, so what
-- they refuse between entries is unchanged).  Exactly one version per slug
-- is current (is_current): approving a version makes it current and the
-- previous current one not, in the same transaction.
--   * agentflow.search_wiki(p_query, p_limit): full-text search over the
--     current approved entries the caller may read (the GIN index of 043);
--   * agentflow_system.wiki_viewed(p_id): view_count + 1, last_viewed_at.

alter table agentflow.wiki_entries drop constraint idx_wiki_workspace_project_slug;
alter table agentflow.wiki_entries
  add constraint idx_wiki_workspace_project_slug unique nulls not distinct (workspace_id, project_id, slug, version);
alter table agentflow.wiki_entries drop constraint wiki_entries_workspace_project_title_key;
alter table agentflow.wiki_entries
  add constraint wiki_entries_workspace_project_title_key
    unique nulls not distinct (workspace_id, project_id, title, version);

alter table agentflow.wiki_entries add column is_current boolean not null default false;
alter table agentflow.wiki_entries
  add constraint wiki_entries_current_is_approved check (not is_current or status = 'approved');
create unique index wiki_entries_one_current
  on agentflow.wiki_entries (workspace_id, coalesce(project_id, '00000000-0000-0000-0000-000000000000'), slug)
  where is_current;

-- An entry approved becomes its slug's current version; the one before
-- stops being current first (so the index above holds).
create function agentflow.wiki_single_current()
returns trigger
language plpgsql as $$
begin
  if new.status = 'approved' and (tg_op = 'INSERT' or old.status is distinct from 'approved') then
    new.is_current = true;
  end if;
  if new.is_current and (tg_op = 'INSERT' or not old.is_current) then
    update agentflow.wiki_entries set is_current = false
    where workspace_id = new.workspace_id and project_id is not distinct from new.project_id
      and slug = new.slug and is_current and id <> new.id;
  end if;
  return new;
end;
$$;

create trigger wiki_entries_single_current
  before insert or update of status, is_current on agentflow.wiki_entries
  for each row execute function agentflow.wiki_single_current();

-- Entries approved before this migration: the latest approved version of
-- each slug is current.
update agentflow.wiki_entries w set is_current = true
where w.status = 'approved' and not exists (
  select 1 from agentflow.wiki_entries o
  where o.workspace_id = w.workspace_id and o.project_id is not distinct from w.project_id and o.slug = w.slug
    and o.status = 'approved' and (o.version, o.id) > (w.version, w.id));

create function agentflow.search_wiki(p_query text, p_limit integer default 20)
returns setof agentflow.wiki_entries
language sql stable as $$
  select w.* from agentflow.wiki_entries w
  where w.is_current and w.deleted_at is null
    and to_tsvector('english', w.title || ' ' || w.content) @@ websearch_to_tsquery('english', p_query)
  order by ts_rank(to_tsvector('english', w.title || ' ' || w.content), websearch_to_tsquery('english', p_query)) desc,
           w.title
  limit greatest(least(coalesce(p_limit, 20), 100), 1);
$$;

create function agentflow_system.wiki_viewed(p_id uuid)
returns void
language sql volatile security definer set search_path = pg_catalog, agentflow as $$
  update agentflow.wiki_entries set view_count = view_count + 1, last_viewed_at = now() where id = p_id;
$$;

grant execute on function agentflow_system.wiki_viewed(uuid) to authenticated, service_role;

-- The version number a new version of a slug gets: one past every version
-- of it, also those (other proposers' drafts) the caller cannot read.
create function agentflow_system.wiki_next_version(p_workspace_id uuid, p_project_id uuid, p_slug text)
returns integer
language sql stable security definer set search_path = pg_catalog, agentflow as $$
  select coalesce(max(version), 0) + 1 from agentflow.wiki_entries
  where workspace_id = p_workspace_id and project_id is not distinct from p_project_id and slug = p_slug;
$$;

grant execute on function agentflow_system.wiki_next_version(uuid, uuid, text) to authenticated, service_role;
