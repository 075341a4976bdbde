-- AgentFlow demo data (seed 004 "Seed data"): a demo CEO, a workspace with
-- one project, organization- and project-level agent templates, wiki
-- categories as approved entries, and a few backlog tasks to claim.
-- Applied by `scripts/db seed-demo`, never by migrate; fixed ids, so
-- running it again changes nothing.  The password and API-key hashes are
-- placeholders: strata's callers present tokens (scripts/token), see the
-- lines seed-demo prints.

insert into agentflow.users(id, email, password_hash, name) values
  ('d0000000-0000-4000-8000-000000000001', 'ceo@demo.agentflow.test',
   '$2a$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW', 'Demo CEO')
on conflict do nothing;

insert into agentflow.workspaces(id, owner_id, name, slug, description) values
  ('d0000000-0000-4000-8000-000000000010', 'd0000000-0000-4000-8000-000000000001', 'Demo Company', 'demo-company',
   'A virtual company to try AgentFlow with')
on conflict do nothing;

insert into agentflow.projects(id, workspace_id, name, slug, description, repository_url) values
  ('d0000000-0000-4000-8000-000000000020', 'd0000000-0000-4000-8000-000000000010', 'Demo App', 'demo-app',
   'The first project', 'https://github.com/demo-company/demo-app')
on conflict do nothing;

insert into agentflow.agents(id, workspace_id, project_id, agent_level, agent_code, name, role_title, api_key_hash,
    capabilities) values
  ('d0000000-0000-4000-8000-000000000101', 'd0000000-0000-4000-8000-000000000010', null, 'organization', 'cto',
   'Ada - CTO', 'CTO', '$2a$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW', '["architecture", "code-review"]'),
  ('d0000000-0000-4000-8000-000000000102', 'd0000000-0000-4000-8000-000000000010', null, 'organization', 'tech-lead',
   'Linus - Tech Lead', 'Tech Lead', '$2a$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW', '["code-review", "planning"]'),
  ('d0000000-0000-4000-8000-000000000103', 'd0000000-0000-4000-8000-000000000010', null, 'organization', 'pm',
   'Grace - Product Manager', 'Product Manager', '$2a$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW', '["planning"]'),
  ('d0000000-0000-4000-8000-000000000201', 'd0000000-0000-4000-8000-000000000010', 'd0000000-0000-4000-8000-000000000020',
   'project', 'dev-001', 'Alice - Senior Python Developer', 'Senior Python Developer',
   '$2a$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW', '["python", "typescript"]'),
  ('d0000000-0000-4000-8000-000000000202', 'd0000000-0000-4000-8000-000000000010', 'd0000000-0000-4000-8000-000000000020',
   'project', 'design-001', 'Dora - Designer', 'Designer',
   '$2a$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW', '["design"]'),
  ('d0000000-0000-4000-8000-000000000203', 'd0000000-0000-4000-8000-000000000010', 'd0000000-0000-4000-8000-000000000020',
   'project', 'qa-001', 'Quinn - QA Engineer', 'QA Engineer',
   '$2a$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW', '["testing"]')
on conflict do nothing;

insert into agentflow.wiki_entries(id, workspace_id, proposed_by_agent_id, status, title, slug, content, tags,
    approved_by, approved_at) values
  ('d0000000-0000-4000-8000-000000000301', 'd0000000-0000-4000-8000-000000000010', null, 'approved', 'Architecture',
   'architecture', E'# Architecture\n\nDecisions about the system''s structure go here.', '{architecture}',
   'd0000000-0000-4000-8000-000000000001', now()),
  ('d0000000-0000-4000-8000-000000000302', 'd0000000-0000-4000-8000-000000000010', null, 'approved', 'Processes',
   'processes', E'# Processes\n\nHow work moves from backlog to done.', '{process}',
   'd0000000-0000-4000-8000-000000000001', now()),
  ('d0000000-0000-4000-8000-000000000303', 'd0000000-0000-4000-8000-000000000010', null, 'approved', 'Conventions',
   'conventions', E'# Conventions\n\nCode style, naming, reviews.', '{conventions}',
   'd0000000-0000-4000-8000-000000000001', now()),
  ('d0000000-0000-4000-8000-000000000304', 'd0000000-0000-4000-8000-000000000010', null, 'approved', 'Onboarding',
   'onboarding', E'# Onboarding\n\nWhat a new agent reads first.', '{onboarding}',
   'd0000000-0000-4000-8000-000000000001', now())
on conflict do nothing;

insert into agentflow.tasks(id, project_id, github_issue_id, github_issue_number, priority, title, description,
    deadline) values
  ('d0000000-0000-4000-8000-000000000401', 'd0000000-0000-4000-8000-000000000020', 1000001, 1, 'P0',
   'Set up continuous integration', 'Run the tests on every push', null),
  ('d0000000-0000-4000-8000-000000000402', 'd0000000-0000-4000-8000-000000000020', 1000002, 2, 'P1',
   'Add the login page', 'Email and password', now() + interval '7 days'),
  ('d0000000-0000-4000-8000-000000000403', 'd0000000-0000-4000-8000-000000000020', 1000003, 3, 'P2',
   'Write the README', null, null)
on conflict do nothing;
