-- Seed 003 (chat platform), core tables: "Chat", "Message_v2", "Vote_v2",
-- "Document" (versioned artifacts), "Suggestion" and "Stream", with their
-- indexes.  Table names and camelCase column names are quoted exactly as the
-- seed spells them because supabase-js clients address them by those names.
--
-- user_id columns carry no foreign key: the seed simulates the cross-schema
-- reference to auth.users with the validate_user_id() triggers and the
-- handle_auth_user_deletion() trigger, both created in 023_functions.sql.
-- Timestamps are TIMESTAMP (without time zone) as the seed gives them.

create table public."Chat" (
  id uuid primary key default gen_random_uuid(),
  "createdAt" timestamp not null default now(),
  title text not null,
  user_id uuid not null,
  visibility varchar(10) not null default 'private'
    check (visibility in ('public', 'private')),
  "lastContext" jsonb,
  total_input_tokens integer default 0,
  total_output_tokens integer default 0,
  total_cost decimal(10, 6) default 0,
  updated_at timestamp default now()
);

create table public."Message_v2" (
  id uuid primary key default gen_random_uuid(),
  "chatId" uuid not null references public."Chat"(id) on delete cascade,
  -- The seed describes the roles (user/assistant/system) but gives no CHECK,
  -- and the AI SDK writes other roles (e.g. tool), so none is added.
  role varchar(20) not null,
  parts json not null,
  attachments json not null default '[]',
  "createdAt" timestamp not null default now(),
  model_used varchar(100),
  input_tokens integer,
  output_tokens integer,
  cost decimal(10, 6)
);

create table public."Vote_v2" (
  "chatId" uuid not null references public."Chat"(id) on delete cascade,
  "messageId" uuid not null references public."Message_v2"(id) on delete cascade,
  "isUpvoted" boolean not null,
  primary key ("chatId", "messageId")
);

-- All versions of a document share its id; "createdAt" tells them apart.
create table public."Document" (
  id uuid not null default gen_random_uuid(),
  "createdAt" timestamp not null default now(),
  title text not null,
  content text,
  kind varchar(20) not null default 'text'
    check (kind in ('text', 'python code', 'mermaid code', 'sheet')),
  user_id uuid not null,
  chat_id uuid references public."Chat"(id) on delete cascade,
  parent_version_id uuid,
  version_number integer not null default 1,
  metadata jsonb default '{}',
  primary key (id, "createdAt"),
  -- Seed fix: the seed gives parent_version_id as an FK to "Document" with ON
  -- DELETE SET NULL, but "Document"'s key is (id, "createdAt") and id alone
  -- is not unique, so a one-column FK cannot exist.  The minimal fix (the
  -- pairing the seed's own project uses) matches parent_version_id with the
  -- row's own "createdAt"; SET NULL is limited to parent_version_id because
  -- nulling "createdAt" would break the primary key.  In practice the parent
  -- named this way is the document's own id: versions share it.
  constraint "Document_parent_version_fkey"
    foreign key (parent_version_id, "createdAt")
    references public."Document"(id, "createdAt")
    on delete set null (parent_version_id)
);

create table public."Suggestion" (
  id uuid primary key default gen_random_uuid(),
  "documentId" uuid not null,
  "documentCreatedAt" timestamp not null,
  "originalText" text not null,
  "suggestedText" text not null,
  description text,
  "isResolved" boolean not null default false,
  user_id uuid not null,
  "createdAt" timestamp not null default now(),
  foreign key ("documentId", "documentCreatedAt")
    references public."Document"(id, "createdAt") on delete cascade
);

create table public."Stream" (
  id uuid primary key default gen_random_uuid(),
  "chatId" uuid not null references public."Chat"(id) on delete cascade,
  "createdAt" timestamp not null default now()
);

-- Indexes: column choices follow the purposes the seed gives each name.
create index idx_chat_user_id on public."Chat"(user_id);
create index idx_chat_user_created on public."Chat"(user_id, "createdAt" desc);

create index idx_message_chat on public."Message_v2"("chatId", "createdAt" asc);

create index idx_document_user_id on public."Document"(user_id);
create index idx_document_user on public."Document"(user_id, "createdAt" desc);
create index idx_document_versions on public."Document"(id, version_number desc);
create index idx_document_chat on public."Document"(chat_id, "createdAt" desc);
create index idx_document_parent on public."Document"(parent_version_id);
create index idx_document_kind on public."Document"(kind, "createdAt" desc);

create index idx_suggestion_user_id on public."Suggestion"(user_id);

-- Left to Lua (lua/policies/public/*.lua), not created here: the seed's RLS
-- policies "Users can read/create/update/delete own chats", "Admins can read
-- all chats", "Users can read own messages", "Users can create messages in
-- own chats", "Users can vote on messages in own chats", "Users can
-- read/create/update/delete own documents", the Suggestion policies (same as
-- Document) and "Users can access streams in own chats".
