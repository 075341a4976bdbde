-- Schema `agentflow`, activity tables (seed 004, sql/042_agentflow_activity.sql):
-- sessions (one active per agent, duration on stop, frozen once stopped),
-- events (append-only, cascading with their session or author) and kpis.
local h = require("helpers")
local af = require("fixtures.agentflow")

local HASH, OMIT, insert_sql, made = af.HASH, af.OMIT, af.insert_sql, af.made

local function workspace()
  local u, id = h.uuid(), h.uuid()
  h.accepts(([[insert into agentflow.users(id, email, password_hash, name) values (%s, %s, %s, 'Ceo');
    insert into agentflow.workspaces(id, owner_id, name, slug) values (%s, %s, 'Acme', %s)]])
    :format(h.lit(u), h.lit(u .. "@agentflow.test"), h.lit(HASH), h.lit(id), h.lit(u), h.lit(id)))
  return id
end

local function project(ws)
  local id = h.uuid()
  h.accepts(("insert into agentflow.projects(id, workspace_id, name, slug) values (%s, %s, 'App', %s)")
    :format(h.lit(id), h.lit(ws or workspace()), h.lit(id)))
  return id
end

-- A project-level agent of `proj`, or an organisation-level one of `ws`.
local function agent(ws, proj)
  local id = h.uuid()
  h.accepts(([[insert into agentflow.agents(id, workspace_id, project_id, agent_level, agent_code, name, role_title, api_key_hash)
    values (%s, %s, %s, %s, %s, %s, 'Developer', %s)]]):format(h.lit(id), h.lit(ws), h.lit(proj),
    h.lit(proj and "project" or "organization"), h.lit(id), h.lit("Agent " .. id), h.lit(HASH)))
  return id
end

-- A project with one project-level agent in it.
local function staffed_project()
  local ws = workspace()
  local p = project(ws)
  return p, agent(ws, p), ws
end

local function session_sql(agent_id, proj, o)
  local id = h.uuid()
  return insert_sql("sessions", { id = h.lit(id), agent_id = h.lit(agent_id), project_id = h.lit(proj) }, o), id
end

-- An already-ended session.
local STOPPED = { status = "'stopped'", stopped_at = "now()" }

local function event_sql(o)
  local id = h.uuid()
  return insert_sql("events", { id = h.lit(id), type = "'session_log'",
    content = [['{"message": "Implemented authentication flow"}']] }, o), id
end

local function kpi_sql(agent_id, o)
  local id = h.uuid()
  return insert_sql("kpis", { id = h.lit(id), agent_id = h.lit(agent_id),
    metrics = [['{"tasksCompleted": 3}']] }, o), id
end

local function count(tbl, where)
  return tonumber(h.scalar(("select count(*) from agentflow.%s where %s"):format(tbl, where)))
end

describe("agentflow.sessions", function()
  it("accepts a session, started and open by default", function()
    local p, a = staffed_project()
    local s = made(session_sql(a, p))
    local row = assert(h.query(([[select status, stopped_at, duration_seconds, tasks_worked_on::text
      from agentflow.sessions where id = %s]]):format(h.lit(s))))[1]
    assert.same({ status = "started", tasks_worked_on = "[]" }, row)
  end)

  it("accepts status 'logging' and refuses a status outside the union", function()
    local p, a = staffed_project()
    made(session_sql(a, p, { status = "'logging'" }))
    h.refuses("23514", (session_sql(a, p, { status = "'paused'" })))
  end)

  it("refuses 'stopped' without stopped_at, and stopped_at on an open session", function()
    local p, a = staffed_project()
    h.refuses("23514", (session_sql(a, p, { status = "'stopped'" })))
    h.refuses("23514", (session_sql(a, p, { stopped_at = "now()" })))
  end)

  it("accepts tasks_worked_on as a JSON array and refuses an object", function()
    local p, a = staffed_project()
    made(session_sql(a, p, { status = "'stopped'", stopped_at = "now()",
      tasks_worked_on = h.lit(('["%s"]'):format(h.uuid())) }))
    h.refuses("23514", (session_sql(a, p, { tasks_worked_on = [['{"a": 1}']] })))
  end)

  it("refuses an unknown agent or project", function()
    local p, a = staffed_project()
    h.refuses("23503", (session_sql(h.uuid(), p)))
    h.refuses("23503", (session_sql(a, h.uuid())))
  end)

  it("refuses a second active session for the same agent", function()
    local p, a = staffed_project()
    made(session_sql(a, p))
    local err = h.refuses("23505", (session_sql(a, p, { status = "'logging'" })))
    assert.matches("sessions_one_active_per_agent", err.raw)
  end)

  it("accepts any number of ended sessions next to the active one", function()
    local p, a = staffed_project()
    made(session_sql(a, p))
    made(session_sql(a, p, STOPPED))
    made(session_sql(a, p, STOPPED))
    assert.equal(3, count("sessions", ("agent_id = %s"):format(h.lit(a))))
  end)

  it("accepts a new active session once the previous one is stopped, and other agents' sessions", function()
    local p, a, ws = staffed_project()
    local s = made(session_sql(a, p))
    made(session_sql(agent(ws, nil), p))
    h.accepts(("update agentflow.sessions set status = 'stopped', stopped_at = now() where id = %s"):format(h.lit(s)))
    made(session_sql(a, p))
  end)

  it("calculates duration_seconds on stop", function()
    local p, a = staffed_project()
    local s = made(session_sql(a, p))
    h.accepts(([[update agentflow.sessions set status = 'stopped',
      stopped_at = started_at + interval '90 seconds' where id = %s]]):format(h.lit(s)))
    assert.equal("90", h.scalar(("select duration_seconds from agentflow.sessions where id = %s"):format(h.lit(s))))
  end)

  it("replaces a caller's duration_seconds with the calculated one", function()
    local p, a = staffed_project()
    local s = made(session_sql(a, p, { status = "'stopped'", started_at = "'2025-01-19 10:00:00'",
      stopped_at = "'2025-01-19 11:00:30'", duration_seconds = "5" }))
    made(session_sql(a, p, { duration_seconds = "5" }))
    assert.equal("3630", h.scalar(("select duration_seconds from agentflow.sessions where id = %s"):format(h.lit(s))))
    assert.equal(1, count("sessions", ("agent_id = %s and duration_seconds is null"):format(h.lit(a))))
  end)

  it("refuses any update of a stopped session", function()
    local p, a = staffed_project()
    local s = made(session_sql(a, p, STOPPED))
    local err = h.refuses("P0001", ("update agentflow.sessions set metadata = '{\"late\": true}' where id = %s")
      :format(h.lit(s)))
    assert.matches("can no longer be modified", err.message)
  end)

  it("moves updated_at forward on update of an open session", function()
    local p, a = staffed_project()
    local s = made(session_sql(a, p))
    h.accepts(("update agentflow.sessions set status = 'logging' where id = %s"):format(h.lit(s)))
    assert.equal("t", h.scalar(("select updated_at > created_at from agentflow.sessions where id = %s"):format(h.lit(s))))
  end)

  it("keeps an agent with sessions from being hard-deleted", function()
    local p, a = staffed_project()
    made(session_sql(a, p, STOPPED))
    h.refuses("23503", ("delete from agentflow.agents where id = %s"):format(h.lit(a)))
  end)
end)

describe("agentflow.events", function()
  it("accepts an automatic event (no author, no session) with empty mentions and metadata", function()
    local e = made(event_sql({ type = "'kpi_updated'" }))
    local row = assert(h.query(([[select author_id, mentions::text, metadata::text, "timestamp" is not null as stamped
      from agentflow.events where id = %s]]):format(h.lit(e))))[1]
    assert.same({ mentions = "{}", metadata = "{}", stamped = "t" }, row)
  end)

  it("accepts an agent's event in a session and project, mentioning agents", function()
    local p, a, ws = staffed_project()
    local s = made(session_sql(a, p))
    made(event_sql({ author_id = h.lit(a), session_id = h.lit(s), project_id = h.lit(p),
      type = "'question_asked'", mentions = ("array[%s]::uuid[]"):format(h.lit(agent(ws, nil))) }))
    assert.equal(1, count("events", ("session_id = %s"):format(h.lit(s))))
  end)

  it("refuses a type outside the EventType union", function()
    h.refuses("23514", (event_sql({ type = "'lunch_break'" })))
  end)

  it("refuses an event without content", function()
    h.refuses("23502", (event_sql({ content = OMIT })))
  end)

  it("refuses an unknown author, session or project", function()
    for _, col in ipairs({ "author_id", "session_id", "project_id" }) do
      h.refuses("23503", (event_sql({ [col] = h.lit(h.uuid()) })))
    end
  end)

  it("refuses UPDATE: events are append-only", function()
    local e = made(event_sql())
    local err = h.refuses("P0001", ("update agentflow.events set metadata = '{\"edited\": true}' where id = %s")
      :format(h.lit(e)))
    assert.matches("append%-only", err.message)
  end)

  it("refuses DELETE of an event whose author and session still exist", function()
    local p, a = staffed_project()
    local s = made(session_sql(a, p))
    local e = made(event_sql({ author_id = h.lit(a), session_id = h.lit(s) }))
    local sys = made(event_sql())
    local err = h.refuses("P0001", ("delete from agentflow.events where id = %s"):format(h.lit(e)))
    assert.matches("append%-only", err.message)
    h.refuses("P0001", ("delete from agentflow.events where id = %s"):format(h.lit(sys)))
    assert.equal(1, count("events", ("id = %s"):format(h.lit(e))))
  end)

  it("refuses TRUNCATE", function()
    h.refuses("P0001", "truncate agentflow.events")
  end)

  it("cascades with its session when the session is deleted", function()
    local p, a = staffed_project()
    local s = made(session_sql(a, p))
    made(event_sql({ author_id = h.lit(a), session_id = h.lit(s), type = "'session_start'" }))
    made(event_sql({ author_id = h.lit(a), session_id = h.lit(s), type = "'session_stop'" }))
    assert.equal(2, count("events", ("session_id = %s"):format(h.lit(s))))
    h.accepts(("delete from agentflow.sessions where id = %s"):format(h.lit(s)))
    assert.equal(0, count("events", ("session_id = %s"):format(h.lit(s))))
    assert.equal(0, count("sessions", ("id = %s"):format(h.lit(s))))
  end)

  it("cascades with its author when the agent is hard-deleted, along with the agent's KPIs", function()
    local p, a = staffed_project()
    made(event_sql({ author_id = h.lit(a), project_id = h.lit(p), type = "'problem_report'" }))
    made(event_sql({ author_id = h.lit(a), type = "'advice_given'" }))
    made(kpi_sql(a))
    h.accepts(("delete from agentflow.agents where id = %s"):format(h.lit(a)))
    assert.equal(0, count("events", ("author_id = %s"):format(h.lit(a))))
    assert.equal(0, count("kpis", ("agent_id = %s"):format(h.lit(a))))
  end)

  it("keeps a project with events from being hard-deleted", function()
    local p = project()
    made(event_sql({ project_id = h.lit(p) }))
    h.refuses("23503", ("delete from agentflow.projects where id = %s"):format(h.lit(p)))
  end)
end)

describe("agentflow.kpis", function()
  it("accepts a KPI record with empty trend_data by default", function()
    local _, a = staffed_project()
    local k = made(kpi_sql(a))
    assert.equal("{}", h.scalar(("select trend_data::text from agentflow.kpis where id = %s"):format(h.lit(k))))
  end)

  it("refuses a KPI record without metrics", function()
    local _, a = staffed_project()
    h.refuses("23502", (kpi_sql(a, { metrics = OMIT })))
  end)

  it("refuses a KPI record of an unknown agent", function()
    h.refuses("23503", (kpi_sql(h.uuid())))
  end)

  it("refuses two records for one agent at one recorded_at, accepts another time", function()
    local _, a = staffed_project()
    made(kpi_sql(a, { recorded_at = "'2025-01-19 12:00:00'" }))
    local err = h.refuses("23505", (kpi_sql(a, { recorded_at = "'2025-01-19 12:00:00'" })))
    assert.matches("kpis_agent_id_recorded_at_key", err.raw)
    made(kpi_sql(a, { recorded_at = "'2025-01-19 13:00:00'" }))
  end)
end)
