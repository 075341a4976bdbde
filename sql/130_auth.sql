-- Supabase Auth (GoTrue) storage for /auth/v1 (lua/auth/): auth.users with
-- Supabase's columns, so a user row exported from a Supabase project (its
-- bcrypt encrypted_password included) signs in unchanged; auth.identities,
-- auth.sessions and auth.refresh_tokens with Supabase's names and shapes,
-- except that refresh_tokens.token holds the SHA-256 (hex) of the token,
-- never the token.  Deleting a session (logout, reuse detection, a user
-- banned or deleted) records it in auth.revoked_sessions and NOTIFYs
-- strata_auth_revoked with its id, so every strata instance refuses its
-- access tokens at once (core/db/revoked_feed.c).  Only strata's own
-- database user reads and writes these tables: the API roles get nothing.

alter table auth.users
  add column if not exists instance_id uuid,
  add column if not exists aud varchar(255),
  add column if not exists role varchar(255),
  add column if not exists encrypted_password varchar(255),
  add column if not exists email_confirmed_at timestamptz,
  add column if not exists invited_at timestamptz,
  add column if not exists confirmation_token varchar(255),
  add column if not exists confirmation_sent_at timestamptz,
  add column if not exists recovery_token varchar(255),
  add column if not exists recovery_sent_at timestamptz,
  add column if not exists email_change_token_new varchar(255),
  add column if not exists email_change varchar(255),
  add column if not exists email_change_sent_at timestamptz,
  add column if not exists last_sign_in_at timestamptz,
  add column if not exists is_super_admin boolean,
  add column if not exists phone text default null,
  add column if not exists phone_confirmed_at timestamptz,
  add column if not exists phone_change text default '',
  add column if not exists phone_change_token varchar(255) default '',
  add column if not exists phone_change_sent_at timestamptz,
  add column if not exists email_change_token_current varchar(255) default '',
  add column if not exists email_change_confirm_status smallint default 0,
  add column if not exists banned_until timestamptz,
  add column if not exists reauthentication_token varchar(255) default '',
  add column if not exists reauthentication_sent_at timestamptz,
  add column if not exists is_sso_user boolean not null default false,
  add column if not exists deleted_at timestamptz,
  add column if not exists is_anonymous boolean not null default false;

alter table auth.users
  add column if not exists confirmed_at timestamptz
    generated always as (least(email_confirmed_at, phone_confirmed_at)) stored;

-- Rows made before this migration (by an operator, by seeds) keep working:
-- they are confirmed users of the default audience.
update auth.users set aud = 'authenticated' where aud is null;
update auth.users set role = 'authenticated' where role is null;
update auth.users set email_confirmed_at = created_at where email_confirmed_at is null and email is not null;

create unique index if not exists users_phone_key on auth.users (phone) where phone is not null;
create unique index if not exists users_email_lower_key on auth.users (lower(email)) where email is not null;

create table auth.identities (
  id uuid primary key default extensions.uuid_generate_v4(),
  provider_id text not null,
  user_id uuid not null references auth.users (id) on delete cascade,
  identity_data jsonb not null,
  provider text not null,
  last_sign_in_at timestamptz,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  email text generated always as (lower(identity_data ->> 'email')) stored,
  constraint identities_provider_id_provider_unique unique (provider_id, provider)
);
create index identities_user_id_idx on auth.identities (user_id);

create type auth.aal_level as enum ('aal1', 'aal2', 'aal3');

create table auth.sessions (
  id uuid primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  factor_id uuid,
  aal auth.aal_level,
  not_after timestamptz,
  refreshed_at timestamp,
  user_agent text,
  ip inet,
  tag text
);
create index sessions_user_id_idx on auth.sessions (user_id);

create table auth.refresh_tokens (
  instance_id uuid,
  id bigserial primary key,
  token varchar(255) unique,       -- sha256 hex of the token (Supabase: the token)
  user_id varchar(255),
  revoked boolean,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  parent varchar(255),             -- the parent's token hash
  session_id uuid references auth.sessions (id) on delete cascade
);
create index refresh_tokens_session_id_revoked_idx on auth.refresh_tokens (session_id, revoked);
create index refresh_tokens_parent_idx on auth.refresh_tokens (parent);

-- Sessions that ended, kept while their access tokens could still be
-- valid (strata drops rows older than 8 days, longer than any token lives, when it reloads the set).
create table auth.revoked_sessions (
  session_id uuid primary key,
  revoked_at timestamptz not null default now()
);
create index revoked_sessions_revoked_at_idx on auth.revoked_sessions (revoked_at);

-- Statement-level, with the transition table: one message per statement.
-- Past 200 ids the message asks the listeners to reload the set instead.
create function auth.strata_sessions_revoked() returns trigger
language plpgsql as $$
declare
  ids uuid[];
begin
  insert into auth.revoked_sessions (session_id)
    select id from old_rows on conflict (session_id) do nothing;
  select array_agg(id) into ids from (select id from old_rows limit 201) s;
  if ids is null then
    return null;
  end if;
  if cardinality(ids) > 200 then
    perform pg_notify('strata_auth_revoked', 'resync');
  else
    perform pg_notify('strata_auth_revoked', array_to_string(ids, ','));
  end if;
  return null;
end
$$;

create trigger sessions_revoked after delete on auth.sessions
  referencing old table as old_rows
  for each statement execute function auth.strata_sessions_revoked();

revoke all on auth.users, auth.identities, auth.sessions, auth.refresh_tokens, auth.revoked_sessions
  from anon, authenticated, service_role;
