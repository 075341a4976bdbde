-- Schema `agentflow`, organisation tables (seed 004, sql/041_agentflow_org.sql):
-- users, workspaces, projects, agents, agent_credentials.
local h = require("helpers")
local af = require("fixtures.agentflow")

local HASH, OMIT, insert_sql, made = af.HASH, af.OMIT, af.insert_sql, af.made

local function user_sql(o)
  local id = h.uuid()
  return insert_sql("users", { id = h.lit(id), email = h.lit(id .. "@agentflow.test"),
    password_hash = h.lit(HASH), name = "'Ceo'" }, o), id
end

local function workspace_sql(owner, o)
  local id = h.uuid()
  return insert_sql("workspaces", { id = h.lit(id), owner_id = h.lit(owner), name = "'Acme'",
    slug = h.lit(id) }, o), id
end

local function project_sql(ws, o)
  local id = h.uuid()
  return insert_sql("projects", { id = h.lit(id), workspace_id = h.lit(ws), name = "'App'",
    slug = h.lit(id) }, o), id
end

-- Organisation-level without `proj`, project-level with it.
local function agent_sql(ws, proj, o)
  local id = h.uuid()
  return insert_sql("agents", { id = h.lit(id), workspace_id = h.lit(ws), project_id = h.lit(proj),
    agent_level = h.lit(proj and "project" or "organization"), agent_code = h.lit(id),
    name = h.lit("Agent " .. id), role_title = "'Developer'", api_key_hash = h.lit(HASH) }, o), id
end

local function credential_sql(agent_id, o)
  local id = h.uuid()
  return insert_sql("agent_credentials", { id = h.lit(id), agent_id = h.lit(agent_id),
    credential_type = "'api_key'", credential_hash = h.lit(HASH), salt = "'R9h/cIPz0gi.URNNX3kh2O'" }, o), id
end

local function user() return made(user_sql()) end
local function workspace() return made(workspace_sql(user())) end
local function project(ws) return made(project_sql(ws or workspace())) end
local function agent(ws, proj, o) return made(agent_sql(ws, proj, o)) end

local function count(tbl, where)
  return tonumber(h.scalar(("select count(*) from agentflow.%s where %s"):format(tbl, where)))
end

-- Updates a row in its own transaction (so now() has moved since the insert)
-- and answers whether updated_at is now later than created_at.
local function updated_at_moves(tbl, id, set)
  h.accepts(("update agentflow.%s set %s where id = %s"):format(tbl, set, h.lit(id)))
  return h.scalar(("select updated_at > created_at from agentflow.%s where id = %s"):format(tbl, h.lit(id)))
end

describe("agentflow.users", function()
  it("accepts a CEO with a bcrypt password hash; updated_at starts at created_at", function()
    local id = user()
    assert.equal("t", h.scalar(("select updated_at = created_at and deleted_at is null from agentflow.users where id = %s")
      :format(h.lit(id))))
  end)

  it("refuses a second user with the same email (idx_users_email)", function()
    local id = user()
    local err = h.refuses("23505", (user_sql({ email = h.lit(id .. "@agentflow.test") })))
    assert.matches("idx_users_email", err.raw)
  end)

  it("refuses a plaintext or empty password_hash", function()
    h.refuses("23514", (user_sql({ password_hash = "'hunter2'" })))
    h.refuses("23514", (user_sql({ password_hash = "''" })))
  end)

  it("refuses an empty name", function()
    h.refuses("23514", (user_sql({ name = "''" })))
  end)

  it("moves updated_at forward on update", function()
    assert.equal("t", updated_at_moves("users", user(), "name = 'Renamed'"))
  end)

  it("soft-deletes by setting deleted_at, keeping the row", function()
    local id = user()
    h.accepts(("update agentflow.users set deleted_at = now() where id = %s"):format(h.lit(id)))
    assert.equal(1, count("users", ("id = %s and deleted_at is not null"):format(h.lit(id))))
  end)
end)

describe("agentflow.workspaces", function()
  it("accepts a workspace with empty settings by default", function()
    local id = workspace()
    assert.equal("{}", h.scalar(("select settings::text from agentflow.workspaces where id = %s"):format(h.lit(id))))
  end)

  it("refuses a workspace of an unknown owner", function()
    h.refuses("23503", (workspace_sql(h.uuid())))
  end)

  it("refuses a slug already taken by another workspace (idx_workspaces_slug)", function()
    local ws = workspace()
    h.refuses("23505", (workspace_sql(user(), { slug = h.lit(ws) })))
  end)

  it("refuses a slug that is not lowercase letters, digits and dashes", function()
    h.refuses("23514", (workspace_sql(user(), { slug = "'My Workspace'" })))
    h.refuses("23514", (workspace_sql(user(), { slug = "''" })))
  end)

  it("refuses an empty name", function()
    h.refuses("23514", (workspace_sql(user(), { name = "''" })))
  end)

  it("moves updated_at forward on update", function()
    assert.equal("t", updated_at_moves("workspaces", workspace(), "description = 'ours'"))
  end)

  it("refuses to hard-delete its owner (use deleted_at)", function()
    local owner = user()
    made(workspace_sql(owner))
    h.refuses("23503", ("delete from agentflow.users where id = %s"):format(h.lit(owner)))
  end)

  it("cannot be hard-deleted while it has projects (RESTRICT), but can be soft-deleted", function()
    local ws = workspace()
    project(ws)
    local err = h.refuses("23503", ("delete from agentflow.workspaces where id = %s"):format(h.lit(ws)))
    assert.matches("projects_workspace_id_fkey", err.raw)
    assert.equal("r", h.scalar("select confdeltype from pg_constraint where conname = 'projects_workspace_id_fkey'"))
    h.accepts(("update agentflow.workspaces set deleted_at = now() where id = %s"):format(h.lit(ws)))
    assert.equal(1, count("projects", ("workspace_id = %s"):format(h.lit(ws))))
  end)

  it("cannot be hard-deleted while it has agents (RESTRICT)", function()
    local ws = workspace()
    agent(ws, nil)
    local err = h.refuses("23503", ("delete from agentflow.workspaces where id = %s"):format(h.lit(ws)))
    assert.matches("agents_workspace_id_fkey", err.raw)
    assert.equal("r", h.scalar("select confdeltype from pg_constraint where conname = 'agents_workspace_id_fkey'"))
  end)

  it("can be hard-deleted when empty", function()
    local ws = workspace()
    h.accepts(("delete from agentflow.workspaces where id = %s"):format(h.lit(ws)))
    assert.equal(0, count("workspaces", ("id = %s"):format(h.lit(ws))))
  end)
end)

describe("agentflow.projects", function()
  it("accepts a project, active by default", function()
    local id = project()
    assert.equal("t", h.scalar(("select is_active from agentflow.projects where id = %s"):format(h.lit(id))))
  end)

  it("refuses a project in an unknown workspace", function()
    h.refuses("23503", (project_sql(h.uuid())))
  end)

  it("refuses a slug twice in one workspace but accepts it in another (idx_projects_workspace_slug)", function()
    local ws = workspace()
    local slug = h.lit(h.uuid())
    made(project_sql(ws, { slug = slug }))
    h.refuses("23505", (project_sql(ws, { slug = slug })))
    made(project_sql(workspace(), { slug = slug }))
  end)

  it("refuses a slug with capitals or underscores", function()
    h.refuses("23514", (project_sql(workspace(), { slug = "'My_App'" })))
  end)

  it("refuses an empty name", function()
    h.refuses("23514", (project_sql(workspace(), { name = "''" })))
  end)

  it("moves updated_at forward on update", function()
    assert.equal("t", updated_at_moves("projects", project(), "is_active = false"))
  end)

  it("can be hard-deleted without agents", function()
    local p = project()
    h.accepts(("delete from agentflow.projects where id = %s"):format(h.lit(p)))
    assert.equal(0, count("projects", ("id = %s"):format(h.lit(p))))
  end)

  it("cannot be hard-deleted while project-level agents need it (SET NULL meets agents_level_project_check)", function()
    local ws = workspace()
    local p = project(ws)
    local a = agent(ws, p)
    local err = h.refuses("23514", ("delete from agentflow.projects where id = %s"):format(h.lit(p)))
    assert.matches("agents_level_project_check", err.raw)
    assert.equal(1, count("agents", ("id = %s and project_id = %s"):format(h.lit(a), h.lit(p))))
  end)
end)

describe("agentflow.agents", function()
  it("accepts an organisation-level agent with the seed's defaults", function()
    local a = agent(workspace(), nil)
    local row = assert(h.query(([[select agent_level, project_id, status, trust_score,
        capabilities::text, settings::text from agentflow.agents where id = %s]]):format(h.lit(a))))[1]
    assert.same({ agent_level = "organization", status = "active", trust_score = "50.00",
      capabilities = "[]", settings = "{}" }, row)
  end)

  it("accepts a project-level agent in a project", function()
    local ws = workspace()
    agent(ws, project(ws))
  end)

  it("refuses an agent_level outside the union", function()
    h.refuses("23514", (agent_sql(workspace(), nil, { agent_level = "'team'" })))
  end)

  it("refuses an organisation-level agent with a project", function()
    local ws = workspace()
    h.refuses("23514", (agent_sql(ws, project(ws), { agent_level = "'organization'" })))
  end)

  it("refuses a project-level agent without a project", function()
    h.refuses("23514", (agent_sql(workspace(), nil, { agent_level = "'project'" })))
  end)

  it("accepts each status of the union and refuses any other", function()
    local ws = workspace()
    for _, s in ipairs({ "active", "probation", "inactive", "terminated" }) do
      agent(ws, nil, { status = h.lit(s) })
    end
    h.refuses("23514", (agent_sql(ws, nil, { status = "'retired'" })))
  end)

  it("accepts trust scores 0 and 100 and refuses -1 and 100.01", function()
    local ws = workspace()
    agent(ws, nil, { trust_score = "0" })
    agent(ws, nil, { trust_score = "100" })
    h.refuses("23514", (agent_sql(ws, nil, { trust_score = "-1" })))
    h.refuses("23514", (agent_sql(ws, nil, { trust_score = "100.01" })))
  end)

  it("refuses a plaintext or empty api_key_hash", function()
    local ws = workspace()
    h.refuses("23514", (agent_sql(ws, nil, { api_key_hash = "'sk-live-123'" })))
    h.refuses("23514", (agent_sql(ws, nil, { api_key_hash = "''" })))
  end)

  it("refuses an agent_code that is not lowercase letters, digits and dashes", function()
    h.refuses("23514", (agent_sql(workspace(), nil, { agent_code = "'Agent_Dev_001'" })))
  end)

  it("refuses an empty name or role_title", function()
    local ws = workspace()
    h.refuses("23514", (agent_sql(ws, nil, { name = "''" })))
    h.refuses("23514", (agent_sql(ws, nil, { role_title = "''" })))
  end)

  it("accepts capabilities as a JSON array and refuses an object", function()
    local ws = workspace()
    agent(ws, nil, { capabilities = [['["python", "code-review"]']] })
    h.refuses("23514", (agent_sql(ws, nil, { capabilities = [['{"python": true}']] })))
  end)

  it("refuses an unknown workspace or project", function()
    h.refuses("23503", (agent_sql(h.uuid(), nil)))
    h.refuses("23503", (agent_sql(workspace(), h.uuid())))
  end)

  it("refuses an agent_code twice in one workspace but accepts it in another (idx_agents_workspace_code)", function()
    local ws = workspace()
    agent(ws, nil, { agent_code = "'agent-dev-001'" })
    h.refuses("23505", (agent_sql(ws, nil, { agent_code = "'agent-dev-001'" })))
    agent(workspace(), nil, { agent_code = "'agent-dev-001'" })
  end)

  it("refuses two organisation-level agents with one name in a workspace (NULLs not distinct)", function()
    local ws = workspace()
    agent(ws, nil, { name = "'Alice'" })
    local err = h.refuses("23505", (agent_sql(ws, nil, { name = "'Alice'" })))
    assert.matches("idx_agents_workspace_project_name", err.raw)
  end)

  it("accepts one name once per project and once at organisation level", function()
    local ws = workspace()
    local p1, p2 = project(ws), project(ws)
    agent(ws, nil, { name = "'Bob'" })
    agent(ws, p1, { name = "'Bob'" })
    agent(ws, p2, { name = "'Bob'" })
    h.refuses("23505", (agent_sql(ws, p1, { name = "'Bob'" })))
  end)

  it("moves updated_at forward on update", function()
    assert.equal("t", updated_at_moves("agents", agent(workspace(), nil), "trust_score = 75.5"))
  end)
end)

describe("agentflow.agent_credentials", function()
  it("accepts an api_key and a jwt_secret credential, active by default", function()
    local a = agent(workspace(), nil)
    local c = made(credential_sql(a))
    made(credential_sql(a, { credential_type = "'jwt_secret'" }))
    assert.equal("t", h.scalar(("select is_active and expires_at is null from agentflow.agent_credentials where id = %s")
      :format(h.lit(c))))
  end)

  it("refuses a credential_type outside the union", function()
    h.refuses("23514", (credential_sql(agent(workspace(), nil), { credential_type = "'password'" })))
  end)

  it("refuses a plaintext or empty credential_hash", function()
    local a = agent(workspace(), nil)
    h.refuses("23514", (credential_sql(a, { credential_hash = "'sk-live-123'" })))
    h.refuses("23514", (credential_sql(a, { credential_hash = "''" })))
  end)

  it("refuses an empty salt", function()
    h.refuses("23514", (credential_sql(agent(workspace(), nil), { salt = "''" })))
  end)

  it("refuses a credential of an unknown agent", function()
    h.refuses("23503", (credential_sql(h.uuid())))
  end)

  it("keeps an agent with credentials from being hard-deleted", function()
    local a = agent(workspace(), nil)
    made(credential_sql(a))
    h.refuses("23503", ("delete from agentflow.agents where id = %s"):format(h.lit(a)))
  end)

  it("rotates: an old credential is deactivated and updated_at moves forward", function()
    local a = agent(workspace(), nil)
    local old = made(credential_sql(a))
    assert.equal("t", updated_at_moves("agent_credentials", old, "is_active = false"))
    made(credential_sql(a))
    assert.equal(1, count("agent_credentials", ("agent_id = %s and is_active"):format(h.lit(a))))
  end)
end)
