-- AgentFlow agent API keys (lua/auth/agent_keys.lua).  An API key is a
-- high-entropy random string, so a keyed hash is the right store for it:
-- credential_hash (and agents.api_key_hash, the agent's newest key) may
-- now hold "hmac-sha256$<hex>" (HMAC-SHA-256 keyed with the row's salt)
-- beside the bcrypt the seed allowed; bcrypt stays for passwords.  Every
-- exchange of a key for a token is logged in agent_credential_uses (who,
-- when, from where, result); a CEO reads the rows of their agents
-- (lua/policies/agentflow/agent_credential_uses.lua).

alter table agentflow.agent_credentials drop constraint agent_credentials_credential_hash_bcrypt;
alter table agentflow.agent_credentials add constraint agent_credentials_credential_hash_format
  check (credential_hash ~ '^\$2[abxy]?\$[0-9]{2}\$[./A-Za-z0-9]{53}$'
      or credential_hash ~ '^hmac-sha256\$[0-9a-f]{64}$');

alter table agentflow.agents drop constraint agents_api_key_hash_bcrypt;
alter table agentflow.agents add constraint agents_api_key_hash_format
  check (api_key_hash ~ '^\$2[abxy]?\$[0-9]{2}\$[./A-Za-z0-9]{53}$'
      or api_key_hash ~ '^hmac-sha256\$[0-9a-f]{64}$');

create table agentflow.agent_credential_uses (
  id bigserial primary key,
  credential_id uuid references agentflow.agent_credentials (id),
  agent_id uuid references agentflow.agents (id),
  used_at timestamp not null default now(),
  remote_addr text,
  user_agent text,
  result varchar(30) not null,
  constraint agent_credential_uses_result_check
    check (result in ('ok', 'unknown', 'bad_secret', 'inactive', 'expired', 'agent_unavailable'))
);
create index idx_agent_credential_uses_agent_id on agentflow.agent_credential_uses (agent_id, used_at);

-- As sql/120 does for every exposed table: the API roles reach it only
-- through the policies `scripts/db rls` generates.
revoke all on agentflow.agent_credential_uses from anon, authenticated;
alter table agentflow.agent_credential_uses enable row level security;
create policy strata_service_role on agentflow.agent_credential_uses as permissive for all to service_role
  using (true) with check (true);
