-- Schema `agentflow`, work tables (seed 004, sql/043_agentflow_work.sql):
-- GitHub-linked tasks (with the probation rule) and wiki entries (approval,
-- organisation-level proposers, frozen approved versions).
local h = require("helpers")
local af = require("fixtures.agentflow")

local HASH, OMIT, insert_sql, made = af.HASH, af.OMIT, af.insert_sql, af.made

local function ceo()
  local id = h.uuid()
  h.accepts(("insert into agentflow.users(id, email, password_hash, name) values (%s, %s, %s, 'Ceo')")
    :format(h.lit(id), h.lit(id .. "@agentflow.test"), h.lit(HASH)))
  return id
end

local function workspace()
  local id = h.uuid()
  h.accepts(("insert into agentflow.workspaces(id, owner_id, name, slug) values (%s, %s, 'Acme', %s)")
    :format(h.lit(id), h.lit(ceo()), h.lit(id)))
  return id
end

local function project(ws)
  local id = h.uuid()
  h.accepts(("insert into agentflow.projects(id, workspace_id, name, slug) values (%s, %s, 'App', %s)")
    :format(h.lit(id), h.lit(ws or workspace()), h.lit(id)))
  return id
end

-- A project-level agent of `proj`, or an organisation-level one of `ws`.
local function agent(ws, proj, status)
  local id = h.uuid()
  h.accepts(([[insert into agentflow.agents(id, workspace_id, project_id, agent_level, agent_code, name, role_title, status, api_key_hash)
    values (%s, %s, %s, %s, %s, %s, 'Developer', %s, %s)]]):format(h.lit(id), h.lit(ws), h.lit(proj),
    h.lit(proj and "project" or "organization"), h.lit(id), h.lit("Agent " .. id), h.lit(status or "active"), h.lit(HASH)))
  return id
end

local issue = 0
local function task_sql(proj, o)
  local id = h.uuid()
  issue = issue + 1
  return insert_sql("tasks", { id = h.lit(id), project_id = h.lit(proj), github_issue_id = tostring(1000000 + issue),
    github_issue_number = tostring(issue), title = "'Add login page'" }, o), id
end

local function wiki_sql(ws, o)
  local id = h.uuid()
  return insert_sql("wiki_entries", { id = h.lit(id), workspace_id = h.lit(ws), title = h.lit("Entry " .. id),
    slug = h.lit(id), content = "'# Authentication flow'" }, o), id
end

local function approved(ws, o)
  o = o or {}
  o.status, o.approved_by, o.approved_at = "'approved'", h.lit(ceo()), "now()"
  return made(wiki_sql(ws, o))
end

local function count(tbl, where)
  return tonumber(h.scalar(("select count(*) from agentflow.%s where %s"):format(tbl, where)))
end

local function set(tbl, id, assignments)
  return ("update agentflow.%s set %s where id = %s"):format(tbl, assignments, h.lit(id))
end

describe("agentflow.tasks", function()
  it("accepts a task in the backlog at P2 with no success criteria by default", function()
    local t = made(task_sql(project()))
    local row = assert(h.query(([[select status, priority, success_criteria::text, assigned_agent_id
      from agentflow.tasks where id = %s]]):format(h.lit(t))))[1]
    assert.same({ status = "backlog", priority = "P2", success_criteria = "[]" }, row)
  end)

  it("accepts each TaskStatus and refuses any other", function()
    local p = project()
    for _, s in ipairs({ "backlog", "assigned", "in_progress", "blocked", "completed", "cancelled" }) do
      made(task_sql(p, { status = h.lit(s) }))
    end
    h.refuses("23514", (task_sql(p, { status = "'done'" })))
  end)

  it("accepts P0..P3 and refuses P4", function()
    local p = project()
    for _, pr in ipairs({ "P0", "P1", "P2", "P3" }) do
      made(task_sql(p, { priority = h.lit(pr) }))
    end
    h.refuses("23514", (task_sql(p, { priority = "'P4'" })))
  end)

  it("refuses an empty title", function()
    h.refuses("23514", (task_sql(project(), { title = "''" })))
  end)

  it("accepts success_criteria as a JSON array and refuses an object", function()
    local p = project()
    made(task_sql(p, { success_criteria = [['["tests pass", "reviewed"]']] }))
    h.refuses("23514", (task_sql(p, { success_criteria = [['{"tests": "pass"}']] })))
  end)

  it("refuses an unknown project or agent", function()
    h.refuses("23503", (task_sql(h.uuid())))
    h.refuses("23503", (task_sql(project(), { assigned_agent_id = h.lit(h.uuid()) })))
  end)

  it("refuses a GitHub issue id twice in one project, accepts it in another (idx_tasks_project_github_id)", function()
    local p = project()
    made(task_sql(p, { github_issue_id = "42424242" }))
    local err = h.refuses("23505", (task_sql(p, { github_issue_id = "42424242" })))
    assert.matches("idx_tasks_project_github_id", err.raw)
    made(task_sql(project(), { github_issue_id = "42424242" }))
  end)

  it("refuses a GitHub issue number twice in one project, accepts it in another (idx_tasks_project_github_number)", function()
    local p = project()
    made(task_sql(p, { github_issue_number = "7" }))
    local err = h.refuses("23505", (task_sql(p, { github_issue_number = "7" })))
    assert.matches("idx_tasks_project_github_number", err.raw)
    made(task_sql(project(), { github_issue_number = "7" }))
  end)

  it("refuses to assign a P0 task to an agent on probation", function()
    local ws = workspace()
    local p = project(ws)
    local a = agent(ws, p, "probation")
    local err = h.refuses("P0001", (task_sql(p, { priority = "'P0'", assigned_agent_id = h.lit(a) })))
    assert.matches("probation", err.message)
  end)

  it("accepts a P1 task for an agent on probation and a P0 task for an active agent", function()
    local ws = workspace()
    local p = project(ws)
    made(task_sql(p, { priority = "'P1'", assigned_agent_id = h.lit(agent(ws, p, "probation")) }))
    made(task_sql(p, { priority = "'P0'", assigned_agent_id = h.lit(agent(ws, p)) }))
  end)

  it("refuses raising an agent-on-probation's task to P0, or handing them a P0 task", function()
    local ws = workspace()
    local p = project(ws)
    local a = agent(ws, p, "probation")
    local mine = made(task_sql(p, { priority = "'P1'", assigned_agent_id = h.lit(a) }))
    local critical = made(task_sql(p, { priority = "'P0'" }))
    h.refuses("P0001", set("tasks", mine, "priority = 'P0'"))
    h.refuses("P0001", set("tasks", critical, "assigned_agent_id = " .. h.lit(a)))
  end)

  it("lets a P0 task assigned before probation move on", function()
    local ws = workspace()
    local p = project(ws)
    local a = agent(ws, p)
    local t = made(task_sql(p, { priority = "'P0'", assigned_agent_id = h.lit(a) }))
    h.accepts(set("agents", a, "status = 'probation'"))
    h.accepts(set("tasks", t, "status = 'in_progress'"))
  end)

  it("unassigns the tasks of a hard-deleted agent (SET NULL)", function()
    local ws = workspace()
    local p = project(ws)
    local a = agent(ws, p)
    local t1 = made(task_sql(p, { assigned_agent_id = h.lit(a) }))
    local t2 = made(task_sql(p, { assigned_agent_id = h.lit(a) }))
    h.accepts(("delete from agentflow.agents where id = %s"):format(h.lit(a)))
    assert.equal(2, count("tasks", ("id in (%s, %s) and assigned_agent_id is null"):format(h.lit(t1), h.lit(t2))))
  end)

  it("keeps a project with tasks from being hard-deleted", function()
    local p = project()
    made(task_sql(p))
    h.refuses("23503", ("delete from agentflow.projects where id = %s"):format(h.lit(p)))
  end)

  it("moves updated_at forward on update", function()
    local t = made(task_sql(project()))
    h.accepts(set("tasks", t, "status = 'assigned'"))
    assert.equal("t", h.scalar(("select updated_at > created_at from agentflow.tasks where id = %s"):format(h.lit(t))))
  end)
end)

describe("agentflow.wiki_entries", function()
  it("accepts a CEO's organisation-wide draft with the seed's defaults", function()
    local w = made(wiki_sql(workspace()))
    local row = assert(h.query(([[select status, version, view_count, tags::text, project_id
      from agentflow.wiki_entries where id = %s]]):format(h.lit(w))))[1]
    assert.same({ status = "draft", version = "1", view_count = "0", tags = "{}" }, row)
  end)

  it("accepts each WikiEntryStatus and refuses any other", function()
    local ws = workspace()
    made(wiki_sql(ws, { status = "'pending_approval'" }))
    made(wiki_sql(ws, { status = "'rejected'", rejection_reason = "'too vague'" }))
    approved(ws)
    h.refuses("23514", (wiki_sql(ws, { status = "'published'" })))
  end)

  it("refuses an approved entry that does not record who approved it and when", function()
    local ws = workspace()
    h.refuses("23514", (wiki_sql(ws, { status = "'approved'" })))
    h.refuses("23514", (wiki_sql(ws, { status = "'approved'", approved_by = h.lit(ceo()) })))
  end)

  it("refuses a bad slug, an empty title or content, version 0 and a negative view_count", function()
    local ws = workspace()
    h.refuses("23514", (wiki_sql(ws, { slug = "'Auth Flow'" })))
    h.refuses("23514", (wiki_sql(ws, { title = "''" })))
    h.refuses("23514", (wiki_sql(ws, { content = "''" })))
    h.refuses("23514", (wiki_sql(ws, { version = "0" })))
    h.refuses("23514", (wiki_sql(ws, { view_count = "-1" })))
  end)

  it("refuses an unknown workspace, project, proposer, parent entry or approver", function()
    local ws = workspace()
    h.refuses("23503", (wiki_sql(h.uuid())))
    for _, col in ipairs({ "project_id", "proposed_by_agent_id", "parent_entry_id", "approved_by" }) do
      h.refuses("23503", (wiki_sql(ws, { [col] = h.lit(h.uuid()) })))
    end
  end)

  it("refuses a slug twice in the organisation-wide scope (NULL project) and in one project", function()
    local ws = workspace()
    local p = project(ws)
    made(wiki_sql(ws, { slug = "'auth-flow'" }))
    local err = h.refuses("23505", (wiki_sql(ws, { slug = "'auth-flow'" })))
    assert.matches("idx_wiki_workspace_project_slug", err.raw)
    made(wiki_sql(ws, { slug = "'auth-flow'", project_id = h.lit(p) }))
    h.refuses("23505", (wiki_sql(ws, { slug = "'auth-flow'", project_id = h.lit(p) })))
    made(wiki_sql(workspace(), { slug = "'auth-flow'" }))
  end)

  it("refuses a title twice in one scope and accepts it in another", function()
    local ws = workspace()
    made(wiki_sql(ws, { title = "'Authentication'" }))
    local err = h.refuses("23505", (wiki_sql(ws, { title = "'Authentication'" })))
    assert.matches("wiki_entries_workspace_project_title_key", err.raw)
    made(wiki_sql(ws, { title = "'Authentication'", project_id = h.lit(project(ws)) }))
  end)

  it("accepts a proposal by an organisation-level agent", function()
    local ws = workspace()
    made(wiki_sql(ws, { proposed_by_agent_id = h.lit(agent(ws, nil)), status = "'pending_approval'" }))
  end)

  it("refuses a proposal by a project-level agent, on insert and on update", function()
    local ws = workspace()
    local p = project(ws)
    local dev = agent(ws, p)
    local err = h.refuses("P0001", (wiki_sql(ws, { proposed_by_agent_id = h.lit(dev) })))
    assert.matches("organization%-level", err.message)
    local w = made(wiki_sql(ws, { proposed_by_agent_id = h.lit(agent(ws, nil)) }))
    h.refuses("P0001", set("wiki_entries", w, "proposed_by_agent_id = " .. h.lit(dev)))
  end)

  it("lets a draft be edited", function()
    local w = made(wiki_sql(workspace()))
    h.accepts(set("wiki_entries", w, "content = '# Authentication flow, revised', tags = '{auth}'"))
  end)

  it("refuses editing an approved entry's content, title or tags", function()
    local w = approved(workspace())
    local err = h.refuses("P0001", set("wiki_entries", w, "content = 'rewritten'"))
    assert.matches("approved", err.message)
    h.refuses("P0001", set("wiki_entries", w, "title = 'Renamed'"))
    h.refuses("P0001", set("wiki_entries", w, "tags = '{renamed}'"))
  end)

  it("lets an approved entry count views and be soft-deleted", function()
    local w = approved(workspace())
    h.accepts(set("wiki_entries", w, "view_count = view_count + 1, last_viewed_at = now()"))
    h.accepts(set("wiki_entries", w, "deleted_at = now()"))
    assert.equal(1, count("wiki_entries", ("id = %s and view_count = 1 and deleted_at is not null"):format(h.lit(w))))
  end)

  it("keeps history as new versions pointing to their parent", function()
    local ws = workspace()
    local v1 = approved(ws, { slug = "'auth-flow'" })
    local v2 = approved(ws, { slug = "'auth-flow-v2'", version = "2", parent_entry_id = h.lit(v1) })
    assert.equal(v1, h.scalar(("select parent_entry_id from agentflow.wiki_entries where id = %s"):format(h.lit(v2))))
    h.refuses("23503", ("delete from agentflow.wiki_entries where id = %s"):format(h.lit(v1)))
  end)

  it("finds entries by full-text search on title and content, and by tag", function()
    local ws = workspace()
    local w = made(wiki_sql(ws, { content = "'Refresh tokens rotate on every login'", tags = "'{architecture}'" }))
    assert.equal(w, h.scalar(([[select id from agentflow.wiki_entries where workspace_id = %s
      and to_tsvector('english', title || ' ' || content) @@ to_tsquery('english', 'token & rotating')]]):format(h.lit(ws))))
    assert.equal(w, h.scalar(([[select id from agentflow.wiki_entries where workspace_id = %s
      and 'architecture' = any(tags)]]):format(h.lit(ws))))
  end)

  it("moves updated_at forward on update", function()
    local w = made(wiki_sql(workspace()))
    h.accepts(set("wiki_entries", w, "status = 'pending_approval'"))
    assert.equal("t", h.scalar(("select updated_at > created_at from agentflow.wiki_entries where id = %s"):format(h.lit(w))))
  end)
end)
