-- sql/100_api_role_grants.sql: statements run as the caller's API role
-- (strata.db sets `role` per statement, as PostgREST does), so the roles
-- reach the exposed schemas' tables (as far as sql/120's row level
-- security lets them), sequences and the tables created after the
-- migration; functions keep their own grants.
local h = require("helpers")

local function as(role, sql)
  return ("begin; set local role %s; %s; commit;"):format(role, sql)
end

describe("sql/100 API role grants", function()
  -- Since sql/120 (row level security from the Lua policies) the API
  -- roles reach a table only as its policy file allows: spec/rest/23.
  it("lets each API role read the exposed schemas' tables; only service_role writes anyone's rows", function()
    for _, role in ipairs({ "anon", "authenticated", "service_role" }) do
      h.accepts(as(role, 'select count(*) from public."Chat"'))
      h.accepts(as(role, "select count(*) from orchestrator.projects"))
      h.accepts(as(role, "select count(*) from agentflow.agents"))
      local uid = h.user()
      local insert = as(role, ('insert into public."Chat"(user_id, title) values (%s, %s)'):format(h.lit(uid), h.lit(role)))
      if role == "service_role" then h.accepts(insert) else h.refuses("42501", insert) end
      assert.equal(role == "service_role" and "1" or "0",
        h.scalar(('select count(*) from public."Chat" where user_id = %s'):format(h.lit(uid))))
    end
  end)

  it("covers tables created after it by the migrating role", function()
    h.accepts("create table public.api_grants_spec_later (id serial primary key, note text)")
    h.accepts(as("authenticated", "insert into public.api_grants_spec_later(note) values ('x')"))
    assert.equal("1", h.scalar("select count(*) from public.api_grants_spec_later"))
    h.accepts("drop table public.api_grants_spec_later")
  end)

  it("leaves the auth schema's tables and revoked functions alone", function()
    h.refuses("42501", as("authenticated", "select count(*) from auth.users"))
    h.refuses("42501", as("authenticated", "select public.purge_old_activity_logs()"))
    h.accepts(as("service_role", "select public.purge_old_activity_logs()"))
  end)
end)
