-- GitHub webhooks of AgentFlow projects (seed 004, issue 15;
-- lua/routes/agentflow_github.lua).  A project may have its own webhook
-- secret (else the server's STRATA_GITHUB_WEBHOOK_SECRET applies); it is a
-- hidden column (lua/policies/agentflow/projects.lua): no client reads it.
-- github_deliveries remembers each X-GitHub-Delivery id once, so a
-- replayed delivery changes nothing; only the server (service_role)
-- reaches it.

alter table agentflow.projects add column github_webhook_secret text;

create table agentflow.github_deliveries (
  delivery_id text primary key,
  project_id uuid not null
    constraint github_deliveries_project_id_fkey references agentflow.projects (id) on delete cascade,
  event text not null,
  received_at timestamp not null default now()
);

create index idx_github_deliveries_project_id on agentflow.github_deliveries (project_id);
