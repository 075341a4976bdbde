-- Versioned documents (seed 003, issue 15).  A document's versions share
-- its id and differ by "createdAt" (the composite key); a new version gets
-- version_number = the previous one's + 1 and points at its parent version
-- by (parent_version_id, "parentCreatedAt").  sql/020's foreign key paired
-- parent_version_id with the row's own "createdAt", so a version could only
-- name itself; it is replaced by one on the new column.
--   * public.revert_document(p_document_id, p_version_number): a new
--     version equal to an older one;
--   * public.apply_suggestion(p_suggestion_id): the suggestion's text
--     replaces the original in a new version, and the suggestion, now
--     resolved, records that version ("resolvedVersionCreatedAt").
-- Builds on 020 and 120 (row level security: the two functions run as the
-- caller, so only their own documents).

alter table public."Document" drop constraint "Document_parent_version_fkey";
alter table public."Document" add column "parentCreatedAt" timestamp;
alter table public."Document"
  add constraint "Document_parent_version_fkey"
    foreign key (parent_version_id, "parentCreatedAt")
    references public."Document"(id, "createdAt")
    on delete set null (parent_version_id, "parentCreatedAt");
create unique index "Document_id_version_number_key" on public."Document"(id, version_number);
-- (idx_document_parent of sql/020 on parent_version_id serves the new foreign key too.)

-- Numbers each new row.  A row with the id of an existing document is its
-- next version: the same owner only, version_number = latest + 1, parent =
-- the latest version, "createdAt" after the latest's (the default, the
-- transaction's now(), is moved on: two versions written in one
-- transaction share it; a "createdAt" given that is not later is refused).  A first
-- version is number 1; a parent_version_id naming another document (a
-- copy) points at that document's latest version.  Versions of one
-- document are numbered one at a time (a transaction-scoped advisory lock
-- on the id).  SECURITY DEFINER: the numbering sees every version, also
-- those the caller's row level security hides.
create function public.number_document_version()
returns trigger
language plpgsql security definer set search_path = pg_catalog, public as $$
declare
  latest public."Document";
  parent_at timestamp;
begin
  perform pg_advisory_xact_lock(hashtextextended('strata.document:' || new.id::text, 0));
  select * into latest from public."Document" where id = new.id order by version_number desc limit 1;
  if latest.id is not null then
    if latest.user_id is distinct from new.user_id then
      raise exception 'document % belongs to another user', new.id using errcode = '42501';
    end if;
    new.version_number = latest.version_number + 1;
    new.parent_version_id = new.id;
    new."parentCreatedAt" = latest."createdAt";
    if new."createdAt" <= latest."createdAt" then
      if new."createdAt" <> now()::timestamp then
        raise exception 'document % already has a version at or after %', new.id, new."createdAt"
          using errcode = '23505';
      end if;
      new."createdAt" = greatest(clock_timestamp()::timestamp, latest."createdAt" + interval '1 microsecond');
    end if;
    return new;
  end if;
  new.version_number = 1;
  if new.parent_version_id is not null then
    select max("createdAt") into parent_at from public."Document" where id = new.parent_version_id;
    if parent_at is null then
      raise exception 'parent_version_id % names no document', new.parent_version_id using errcode = '23503';
    end if;
    new."parentCreatedAt" = parent_at;
  else
    new."parentCreatedAt" = null;
  end if;
  return new;
end;
$$;

create trigger document_number_version
  before insert on public."Document"
  for each row execute function public.number_document_version();

-- A new version of the caller's document equal (title, content, kind) to
-- version p_version_number; its metadata says which it restores.
create function public.revert_document(p_document_id uuid, p_version_number integer)
returns public."Document"
language plpgsql volatile as $$
declare
  old public."Document";
  v public."Document";
begin
  select * into old from public."Document" where id = p_document_id and version_number = p_version_number;
  if old.id is null then
    raise exception 'document % has no version %', p_document_id, p_version_number using errcode = 'P0002';
  end if;
  insert into public."Document"(id, title, content, kind, user_id, chat_id, metadata)
  values (old.id, old.title, old.content, old.kind, old.user_id, old.chat_id,
          jsonb_build_object('updateType', 'revert', 'revertedTo', p_version_number))
  returning * into v;
  return v;
end;
$$;

alter table public."Suggestion" add column "resolvedVersionCreatedAt" timestamp;
alter table public."Suggestion"
  add constraint "Suggestion_resolved_version_fkey"
    foreign key ("documentId", "resolvedVersionCreatedAt")
    references public."Document"(id, "createdAt")
    on delete set null ("resolvedVersionCreatedAt");

-- Applies an open suggestion of the caller's to the latest version of its
-- document: its first occurrence of originalText becomes suggestedText in
-- a new version; the suggestion is resolved and names that version.
create function public.apply_suggestion(p_suggestion_id uuid)
returns public."Document"
language plpgsql volatile as $$
declare
  s public."Suggestion";
  latest public."Document";
  at integer;
  v public."Document";
begin
  select * into s from public."Suggestion" where id = p_suggestion_id for update;
  if s.id is null then
    raise exception 'suggestion % not found', p_suggestion_id using errcode = 'P0002';
  end if;
  if s."isResolved" then
    raise exception 'suggestion % is already resolved', p_suggestion_id using errcode = '23514';
  end if;
  select * into latest from public."Document" where id = s."documentId" order by version_number desc limit 1;
  at = strpos(coalesce(latest.content, ''), s."originalText");
  if latest.id is null or at = 0 then
    raise exception 'the latest version of document % no longer contains the suggestion''s original text', s."documentId"
      using errcode = '23514';
  end if;
  insert into public."Document"(id, title, content, kind, user_id, chat_id, metadata)
  values (latest.id, latest.title, overlay(latest.content placing s."suggestedText" from at for length(s."originalText")),
          latest.kind, latest.user_id, latest.chat_id,
          jsonb_build_object('updateType', 'suggestion', 'suggestionId', s.id))
  returning * into v;
  update public."Suggestion" set "isResolved" = true, "resolvedVersionCreatedAt" = v."createdAt" where id = s.id;
  return v;
end;
$$;
