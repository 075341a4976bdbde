-- sql/010_core_scopes.sql: the scope tables of seed 000 (organizations,
-- workspaces, projects, tasks, ai_runs, ai_tasks), their triggers, and the
-- minimal tables seeds 000 / 001 reference without defining.
local h = require("helpers")

local fmt = string.format
local lit = h.lit

local function count(sql)
  return tonumber(h.scalar(sql))
end

local function new_org(creator)
  local id = h.uuid()
  h.accepts(fmt("insert into public.organizations (id, name, slug, created_by) values (%s, 'Org', %s, %s)",
    lit(id), lit("org-" .. id), lit(creator)))
  return id
end

local function new_workspace(org, parent, creator)
  local id = h.uuid()
  h.accepts(fmt([[insert into public.workspaces (id, organization_id, parent_workspace_id, name, created_by)
    values (%s, %s, %s, 'Workspace', %s)]], lit(id), lit(org), lit(parent), lit(creator)))
  return id
end

local function new_project(creator)
  local id = h.uuid()
  h.accepts(fmt("insert into public.projects (id, name, created_by) values (%s, 'Project', %s)",
    lit(id), lit(creator)))
  return id
end

local function new_run(user, source_type)
  local id = h.uuid()
  h.accepts(fmt("insert into public.ai_runs (id, user_id, source_type) values (%s, %s, %s)",
    lit(id), lit(user), lit(source_type or "chat")))
  return id
end

local function new_ai_task(run, user, extra_columns, extra_values)
  local id = h.uuid()
  h.accepts(fmt([[insert into public.ai_tasks (id, run_id, user_id, task_id, service, task_name%s)
    values (%s, %s, %s, %s, 'chat', 'turn'%s)]],
    extra_columns or "", lit(id), lit(run), lit(user), lit(h.uuid()), extra_values or ""))
  return id
end

describe("public.organizations", function()
  it("accepts an organization with a lowercase slug and fills the seed's defaults", function()
    local org = new_org(nil)
    local row = assert(h.query(fmt(
      "select is_personal, settings::text as settings, created_at is not null as stamped from public.organizations where id = %s",
      lit(org))))[1]
    assert.same({ is_personal = "f", settings = "{}", stamped = "t" }, row)
  end)

  it("refuses a second organization with the same id", function()
    local org = new_org(nil)
    h.refuses("23505", fmt("insert into public.organizations (id, name, slug) values (%s, 'Again', %s)",
      lit(org), lit("other-" .. org)))
  end)

  it("refuses a second organization with the same slug (organizations_slug_key)", function()
    local org = new_org(nil)
    h.refuses("23505", fmt("insert into public.organizations (name, slug) values ('Copy', %s)", lit("org-" .. org)))
  end)

  it("refuses a slug with capitals or spaces (valid_slug)", function()
    h.refuses("23514", fmt("insert into public.organizations (name, slug) values ('Bad', %s)", lit("Bad Slug " .. h.uuid())))
  end)

  it("refuses an organization without a name", function()
    h.refuses("23502", fmt("insert into public.organizations (slug) values (%s)", lit("nameless-" .. h.uuid())))
  end)

  it("refuses a creator that is not a user", function()
    h.refuses("23503", fmt("insert into public.organizations (name, slug, created_by) values ('X', %s, %s)",
      lit("x-" .. h.uuid()), lit(h.uuid())))
  end)

  it("keeps the organization and clears created_by when its creator is deleted", function()
    local user = h.user()
    local org = new_org(user)
    h.accepts(fmt("delete from auth.users where id = %s", lit(user)))
    assert.same({ { created_by = nil } },
      h.query(fmt("select created_by from public.organizations where id = %s", lit(org))))
  end)
end)

describe("public.workspaces", function()
  it("accepts a workspace nested under another one of the same organization", function()
    local org = new_org(nil)
    local parent = new_workspace(org)
    local child = new_workspace(org, parent)
    assert.equal(parent, h.scalar(fmt("select parent_workspace_id from public.workspaces where id = %s", lit(child))))
  end)

  it("refuses a second workspace with the same id", function()
    local org = new_org(nil)
    local ws = new_workspace(org)
    h.refuses("23505", fmt("insert into public.workspaces (id, organization_id, name) values (%s, %s, 'Again')",
      lit(ws), lit(org)))
  end)

  it("refuses a workspace whose organization does not exist", function()
    h.refuses("23503", fmt("insert into public.workspaces (organization_id, name) values (%s, 'Orphan')", lit(h.uuid())))
  end)

  it("refuses a workspace without an organization", function()
    h.refuses("23502", "insert into public.workspaces (name) values ('Nowhere')")
  end)

  it("refuses a parent workspace that does not exist", function()
    local org = new_org(nil)
    h.refuses("23503", fmt("insert into public.workspaces (organization_id, parent_workspace_id, name) values (%s, %s, 'Lost')",
      lit(org), lit(h.uuid())))
  end)

  it("deletes the workspaces of a deleted organization", function()
    local org = new_org(nil)
    local root = new_workspace(org)
    new_workspace(org, root)
    h.accepts(fmt("delete from public.organizations where id = %s", lit(org)))
    assert.equal(0, count(fmt("select count(*) from public.workspaces where organization_id = %s", lit(org))))
  end)

  it("deletes the child and grandchild workspaces of a deleted workspace", function()
    local org = new_org(nil)
    local root = new_workspace(org)
    local child = new_workspace(org, root)
    local grandchild = new_workspace(org, child)
    local sibling = new_workspace(org)
    h.accepts(fmt("delete from public.workspaces where id = %s", lit(root)))
    assert.equal(0, count(fmt("select count(*) from public.workspaces where id in (%s, %s)", lit(child), lit(grandchild))))
    assert.equal(1, count(fmt("select count(*) from public.workspaces where id = %s", lit(sibling))))
  end)

  it("keeps the workspace and clears created_by when its creator is deleted", function()
    local user = h.user()
    local ws = new_workspace(new_org(nil), nil, user)
    h.accepts(fmt("delete from auth.users where id = %s", lit(user)))
    assert.same({ { created_by = nil } },
      h.query(fmt("select created_by from public.workspaces where id = %s", lit(ws))))
  end)

  describe("cycle check (trigger workspaces_prevent_cycle)", function()
    it("refuses a new workspace that is its own parent", function()
      local org = new_org(nil)
      local id = h.uuid()
      local err = h.refuses("23514", fmt(
        "insert into public.workspaces (id, organization_id, parent_workspace_id, name) values (%s, %s, %s, 'Self')",
        lit(id), lit(org), lit(id)))
      assert.matches("cannot be its own parent", err.message)
      assert.matches("workspaces_no_cycle", err.raw)
    end)

    it("refuses making an existing workspace its own parent", function()
      local ws = new_workspace(new_org(nil))
      h.refuses("23514", fmt("update public.workspaces set parent_workspace_id = id where id = %s", lit(ws)))
    end)

    it("refuses A -> B -> A", function()
      local org = new_org(nil)
      local a = new_workspace(org)
      local b = new_workspace(org, a)
      local err = h.refuses("23514", fmt("update public.workspaces set parent_workspace_id = %s where id = %s", lit(b), lit(a)))
      assert.matches("cannot have its descendant", err.message)
      assert.is_nil(h.scalar(fmt("select parent_workspace_id from public.workspaces where id = %s", lit(a))))
    end)

    it("refuses putting a workspace under its grandchild", function()
      local org = new_org(nil)
      local a = new_workspace(org)
      local b = new_workspace(org, a)
      local c = new_workspace(org, b)
      h.refuses("23514", fmt("update public.workspaces set parent_workspace_id = %s where id = %s", lit(c), lit(a)))
    end)

    it("refuses two workspaces inserted in one statement as each other's parent", function()
      local org = new_org(nil)
      local a, b = h.uuid(), h.uuid()
      h.refuses("23514", fmt([[insert into public.workspaces (id, organization_id, parent_workspace_id, name)
        values (%s, %s, %s, 'A'), (%s, %s, %s, 'B')]], lit(a), lit(org), lit(b), lit(b), lit(org), lit(a)))
    end)

    it("accepts moving a workspace under a workspace that is not its descendant, and detaching it", function()
      local org = new_org(nil)
      local a = new_workspace(org)
      local b = new_workspace(org, a)
      local c = new_workspace(org, a)
      h.accepts(fmt("update public.workspaces set parent_workspace_id = %s where id = %s", lit(c), lit(b)))
      h.accepts(fmt("update public.workspaces set parent_workspace_id = null where id = %s", lit(c)))
      h.accepts(fmt("update public.workspaces set parent_workspace_id = %s where id = %s", lit(b), lit(a)))
      assert.equal(b, h.scalar(fmt("select parent_workspace_id from public.workspaces where id = %s", lit(a))))
    end)
  end)
end)

describe("public.projects", function()
  it("accepts a project and refuses a second one with the same id", function()
    local p = new_project(nil)
    h.refuses("23505", fmt("insert into public.projects (id, name) values (%s, 'Again')", lit(p)))
  end)

  it("refuses a project without a name", function()
    h.refuses("23502", "insert into public.projects (description) values ('no name')")
  end)

  it("refuses a creator that is not a user", function()
    h.refuses("23503", fmt("insert into public.projects (name, created_by) values ('X', %s)", lit(h.uuid())))
  end)

  it("keeps the project and clears created_by when its creator is deleted", function()
    local user = h.user()
    local p = new_project(user)
    h.accepts(fmt("delete from auth.users where id = %s", lit(user)))
    assert.same({ { created_by = nil } }, h.query(fmt("select created_by from public.projects where id = %s", lit(p))))
  end)
end)

describe("public.tasks", function()
  local function new_task(columns, values)
    local id = h.uuid()
    h.accepts(fmt("insert into public.tasks (id, title%s) values (%s, 'Task'%s)", columns or "", lit(id), values or ""))
    return id
  end

  it("accepts a task and fills the seed's defaults", function()
    local t = new_task()
    assert.same({ { status = "incomplete", authenticated_read = "f" } },
      h.query(fmt("select status, authenticated_read from public.tasks where id = %s", lit(t))))
  end)

  it("refuses a second task with the same id", function()
    local t = new_task()
    h.refuses("23505", fmt("insert into public.tasks (id, title) values (%s, 'Again')", lit(t)))
  end)

  it("accepts the status 'completed' and refuses any status but incomplete / completed", function()
    new_task(", status", ", 'completed'")
    h.refuses("23514", "insert into public.tasks (title, status) values ('T', 'done')")
  end)

  it("accepts a task_priority and refuses a value outside the enum", function()
    local t = new_task(", priority", ", 'urgent'")
    assert.equal("urgent", h.scalar(fmt("select priority from public.tasks where id = %s", lit(t))))
    h.refuses("22P02", "insert into public.tasks (title, priority) values ('T', 'critical')")
  end)

  it("refuses a task of a project that does not exist", function()
    h.refuses("23503", fmt("insert into public.tasks (title, project_id) values ('T', %s)", lit(h.uuid())))
  end)

  it("deletes the tasks of a deleted project", function()
    local p = new_project(nil)
    new_task(", project_id", ", " .. lit(p))
    h.accepts(fmt("delete from public.projects where id = %s", lit(p)))
    assert.equal(0, count(fmt("select count(*) from public.tasks where project_id = %s", lit(p))))
  end)

  it("refuses a parent task that does not exist", function()
    h.refuses("23503", fmt("insert into public.tasks (title, parent_task_id) values ('T', %s)", lit(h.uuid())))
  end)

  it("deletes the subtasks of a deleted task", function()
    local parent = new_task()
    local sub = new_task(", parent_task_id", ", " .. lit(parent))
    new_task(", parent_task_id", ", " .. lit(sub))
    h.accepts(fmt("delete from public.tasks where id = %s", lit(parent)))
    assert.equal(0, count(fmt("select count(*) from public.tasks where id = %s or parent_task_id = %s", lit(sub), lit(sub))))
  end)

  it("refuses a user or an assignee that is not a user", function()
    h.refuses("23503", fmt("insert into public.tasks (title, user_id) values ('T', %s)", lit(h.uuid())))
    h.refuses("23503", fmt("insert into public.tasks (title, assignee_id) values ('T', %s)", lit(h.uuid())))
  end)

  it("keeps the task and clears user_id and assignee_id when those users are deleted", function()
    local owner, assignee = h.user(), h.user()
    local t = new_task(", user_id, assignee_id", fmt(", %s, %s", lit(owner), lit(assignee)))
    h.accepts(fmt("delete from auth.users where id in (%s, %s)", lit(owner), lit(assignee)))
    assert.same({ { title = "Task" } },
      h.query(fmt("select title, user_id, assignee_id from public.tasks where id = %s", lit(t))))
  end)
end)

describe("public.ai_runs", function()
  it("accepts a run and fills the seed's defaults", function()
    local run = new_run(h.user())
    assert.same({ { status = "active", messages = "[]", message_count = "0", task_count = "0",
                    total_tokens = "0", total_cost = "0.000000", is_starred = "f", tags = "{}" } },
      h.query(fmt([[select status, messages::text as messages, message_count, task_count, total_tokens,
        total_cost, is_starred, tags from public.ai_runs where id = %s]], lit(run))))
  end)

  it("refuses a second run with the same id", function()
    local user = h.user()
    local run = new_run(user)
    h.refuses("23505", fmt("insert into public.ai_runs (id, user_id, source_type) values (%s, %s, 'chat')", lit(run), lit(user)))
  end)

  it("refuses a source_type outside the seed's list", function()
    new_run(h.user(), "workflow")
    h.refuses("23514", fmt("insert into public.ai_runs (user_id, source_type) values (%s, 'email')", lit(h.user())))
  end)

  it("accepts 'archived' and refuses a status outside active / archived / deleted", function()
    local user = h.user()
    h.accepts(fmt("insert into public.ai_runs (user_id, source_type, status) values (%s, 'chat', 'archived')", lit(user)))
    h.refuses("23514", fmt("insert into public.ai_runs (user_id, source_type, status) values (%s, 'chat', 'paused')", lit(user)))
  end)

  it("refuses a run of a user that does not exist, or of no user", function()
    h.refuses("23503", fmt("insert into public.ai_runs (user_id, source_type) values (%s, 'chat')", lit(h.uuid())))
    h.refuses("23502", "insert into public.ai_runs (source_type) values ('chat')")
  end)

  it("deletes the runs of a deleted user", function()
    local user = h.user()
    new_run(user)
    h.accepts(fmt("delete from auth.users where id = %s", lit(user)))
    assert.equal(0, count(fmt("select count(*) from public.ai_runs where user_id = %s", lit(user))))
  end)

  it("counts the messages on insert (trigger_ai_runs_message_count)", function()
    local id = h.uuid()
    h.accepts(fmt([[insert into public.ai_runs (id, user_id, source_type, messages, message_count)
      values (%s, %s, 'chat', '[{"role":"user"},{"role":"assistant"}]', 99)]], lit(id), lit(h.user())))
    assert.equal("2", h.scalar(fmt("select message_count from public.ai_runs where id = %s", lit(id))))
  end)

  it("recounts the messages and moves last_message_at forward when messages change", function()
    local run = new_run(h.user())
    h.accepts(fmt([[update public.ai_runs set messages = '[{"role":"user"},{"role":"assistant"},{"role":"user"}]'
      where id = %s]], lit(run)))
    assert.same({ { message_count = "3", moved = "t" } }, h.query(fmt(
      "select message_count, last_message_at > created_at as moved from public.ai_runs where id = %s", lit(run))))
  end)

  it("keeps last_message_at when something else than messages changes", function()
    local run = new_run(h.user())
    h.accepts(fmt("update public.ai_runs set name = 'renamed' where id = %s", lit(run)))
    assert.equal("t", h.scalar(fmt("select last_message_at = created_at from public.ai_runs where id = %s", lit(run))))
  end)

  it("moves updated_at forward on update (trigger_ai_runs_updated_at)", function()
    local run = new_run(h.user())
    h.accepts(fmt("update public.ai_runs set is_starred = true where id = %s", lit(run)))
    assert.equal("t", h.scalar(fmt("select updated_at > created_at from public.ai_runs where id = %s", lit(run))))
  end)
end)

describe("public.ai_tasks", function()
  it("accepts a task of a run and fills the seed's defaults", function()
    local user = h.user()
    local t = new_ai_task(new_run(user), user)
    assert.same({ { status = "pending", request_data = "{}", response_complete = "f" } }, h.query(fmt(
      "select status, request_data::text as request_data, response_complete from public.ai_tasks where id = %s", lit(t))))
  end)

  it("refuses a second AI task with the same id", function()
    local user = h.user()
    local run = new_run(user)
    local t = new_ai_task(run, user)
    h.refuses("23505", fmt([[insert into public.ai_tasks (id, run_id, user_id, task_id, service, task_name)
      values (%s, %s, %s, %s, 's', 't')]], lit(t), lit(run), lit(user), lit(h.uuid())))
  end)

  it("refuses a second AI task with the same task_id (ai_tasks_task_id_key)", function()
    local user = h.user()
    local run = new_run(user)
    local t = new_ai_task(run, user)
    h.refuses("23505", fmt([[insert into public.ai_tasks (run_id, user_id, task_id, service, task_name)
      select run_id, user_id, task_id, 's', 't' from public.ai_tasks where id = %s]], lit(t)))
  end)

  it("refuses a status outside the seed's list", function()
    local user = h.user()
    local run = new_run(user)
    new_ai_task(run, user, ", status", ", 'streaming'")
    h.refuses("23514", fmt([[insert into public.ai_tasks (run_id, user_id, task_id, service, task_name, status)
      values (%s, %s, %s, 's', 't', 'done')]], lit(run), lit(user), lit(h.uuid())))
  end)

  it("refuses a run or a user that does not exist", function()
    local user = h.user()
    local run = new_run(user)
    h.refuses("23503", fmt([[insert into public.ai_tasks (run_id, user_id, task_id, service, task_name)
      values (%s, %s, %s, 's', 't')]], lit(h.uuid()), lit(user), lit(h.uuid())))
    h.refuses("23503", fmt([[insert into public.ai_tasks (run_id, user_id, task_id, service, task_name)
      values (%s, %s, %s, 's', 't')]], lit(run), lit(h.uuid()), lit(h.uuid())))
  end)

  it("deletes the tasks of a deleted run", function()
    local user = h.user()
    local run = new_run(user)
    new_ai_task(run, user)
    h.accepts(fmt("delete from public.ai_runs where id = %s", lit(run)))
    assert.equal(0, count(fmt("select count(*) from public.ai_tasks where run_id = %s", lit(run))))
  end)

  it("deletes the tasks of a deleted user, even in another user's run", function()
    local owner, other = h.user(), h.user()
    local run = new_run(owner)
    new_ai_task(run, other)
    h.accepts(fmt("delete from auth.users where id = %s", lit(other)))
    assert.equal(0, count(fmt("select count(*) from public.ai_tasks where run_id = %s", lit(run))))
  end)

  it("moves updated_at forward on update (trigger_ai_tasks_updated_at)", function()
    local user = h.user()
    local t = new_ai_task(new_run(user), user)
    h.accepts(fmt("update public.ai_tasks set response_text = 'hi' where id = %s", lit(t)))
    assert.equal("t", h.scalar(fmt("select updated_at > created_at from public.ai_tasks where id = %s", lit(t))))
  end)

  describe("run aggregates (trigger_update_run_aggregates)", function()
    local function totals(run)
      return assert(h.query(fmt(
        "select task_count, total_tokens, total_cost from public.ai_runs where id = %s", lit(run))))[1]
    end

    it("sums task count, tokens and cost into the run on insert", function()
      local user = h.user()
      local run = new_run(user)
      new_ai_task(run, user, ", tokens_total, cost", ", 100, 0.25")
      new_ai_task(run, user, ", tokens_total, cost", ", 50, 0.125")
      new_ai_task(run, user)
      assert.same({ task_count = "3", total_tokens = "150", total_cost = "0.375000" }, totals(run))
    end)

    it("recomputes the run's totals when a task is updated", function()
      local user = h.user()
      local run = new_run(user)
      local t = new_ai_task(run, user, ", tokens_total, cost", ", 100, 0.25")
      h.accepts(fmt("update public.ai_tasks set tokens_total = 300, cost = 1.5 where id = %s", lit(t)))
      assert.same({ task_count = "1", total_tokens = "300", total_cost = "1.500000" }, totals(run))
    end)

    it("recounts both runs when a task moves to another run", function()
      local user = h.user()
      local from, to = new_run(user), new_run(user)
      local t = new_ai_task(from, user, ", tokens_total, cost", ", 10, 0.5")
      h.accepts(fmt("update public.ai_tasks set run_id = %s where id = %s", lit(to), lit(t)))
      assert.same({ task_count = "0", total_tokens = "0", total_cost = "0.000000" }, totals(from))
      assert.same({ task_count = "1", total_tokens = "10", total_cost = "0.500000" }, totals(to))
    end)
  end)

  describe("prompt app execution (update_prompt_app_exec_on_task_update)", function()
    local function execution(run)
      return h.scalar(fmt("select metadata->'prompt_app_execution' from public.ai_runs where id = %s", lit(run)))
    end

    it("records the task's status and metrics in an applet run's metadata when they change", function()
      local user = h.user()
      local run = new_run(user, "applet")
      local t = new_ai_task(run, user)
      assert.is_nil(execution(run))
      h.accepts(fmt([[update public.ai_tasks set status = 'completed', total_time = 1200, tokens_total = 42, cost = 0.01
        where id = %s]], lit(t)))
      assert.same({ { status = "completed", total_time = "1200", tokens_total = "42", cost = "0.010000", same_task = "t" } },
        h.query(fmt([[select e->>'status' as status, e->>'total_time' as total_time, e->>'tokens_total' as tokens_total,
            e->>'cost' as cost, (e->>'task_id')::uuid = t.task_id as same_task
          from public.ai_runs r, public.ai_tasks t, lateral (select r.metadata->'prompt_app_execution') m(e)
          where r.id = %s and t.id = %s]], lit(run), lit(t))))
    end)

    it("does not fire when none of status, total_time, tokens_total, cost changes", function()
      local user = h.user()
      local run = new_run(user, "applet")
      local t = new_ai_task(run, user)
      h.accepts(fmt("update public.ai_tasks set response_text = 'partial', status = 'pending' where id = %s", lit(t)))
      assert.is_nil(execution(run))
    end)

    it("leaves runs that are not applets alone", function()
      local user = h.user()
      local run = new_run(user, "chat")
      local t = new_ai_task(run, user)
      h.accepts(fmt("update public.ai_tasks set status = 'failed' where id = %s", lit(t)))
      assert.is_nil(execution(run))
    end)
  end)
end)

describe("component tables of data_broker (minimal, not defined by seed 000)", function()
  it("accept a component and refuse a second one with the same id", function()
    for _, tbl in ipairs({ "data_input_component", "data_output_component", "field_components" }) do
      local id = h.uuid()
      h.accepts(fmt("insert into public.%s (id, name) values (%s, 'c')", tbl, lit(id)))
      h.refuses("23505", fmt("insert into public.%s (id, name) values (%s, 'c')", tbl, lit(id)))
    end
  end)
end)

describe("public.prompts (minimal, not defined by seed 001)", function()
  it("accepts a user's prompt with empty messages and variable defaults", function()
    local user = h.user()
    local id = h.uuid()
    h.accepts(fmt("insert into public.prompts (id, user_id, name) values (%s, %s, 'Greeting')", lit(id), lit(user)))
    assert.same({ { messages = "[]", variable_defaults = "[]" } }, h.query(fmt(
      "select messages::text as messages, variable_defaults::text as variable_defaults from public.prompts where id = %s", lit(id))))
  end)

  it("refuses a prompt without a name or of a user that does not exist", function()
    h.refuses("23502", "insert into public.prompts (messages) values ('[]')")
    h.refuses("23503", fmt("insert into public.prompts (user_id, name) values (%s, 'P')", lit(h.uuid())))
  end)

  it("deletes the prompts of a deleted user", function()
    local user = h.user()
    h.accepts(fmt("insert into public.prompts (user_id, name) values (%s, 'P')", lit(user)))
    h.accepts(fmt("delete from auth.users where id = %s", lit(user)))
    assert.equal(0, count(fmt("select count(*) from public.prompts where user_id = %s", lit(user))))
  end)
end)

describe("public.prompt_builtins (minimal, not defined by seed 001)", function()
  it("accepts a builtin prompt and refuses one without a name", function()
    h.accepts("insert into public.prompt_builtins (name) values ('System')")
    h.refuses("23502", "insert into public.prompt_builtins (description) values ('nameless')")
  end)
end)

describe("public.user_organizations (minimal, not defined by seed 001)", function()
  it("accepts a membership and refuses the same one twice", function()
    local user, org = h.user(), new_org(nil)
    local sql = fmt("insert into public.user_organizations (user_id, org_id) values (%s, %s)", lit(user), lit(org))
    h.accepts(sql)
    h.refuses("23505", sql)
  end)

  it("refuses a membership of a user or an organization that does not exist", function()
    h.refuses("23503", fmt("insert into public.user_organizations (user_id, org_id) values (%s, %s)", lit(h.uuid()), lit(new_org(nil))))
    h.refuses("23503", fmt("insert into public.user_organizations (user_id, org_id) values (%s, %s)", lit(h.user()), lit(h.uuid())))
  end)

  it("deletes the memberships of a deleted organization and of a deleted user", function()
    local user, org1, org2 = h.user(), new_org(nil), new_org(nil)
    h.accepts(fmt("insert into public.user_organizations (user_id, org_id) values (%s, %s), (%s, %s)",
      lit(user), lit(org1), lit(user), lit(org2)))
    h.accepts(fmt("delete from public.organizations where id = %s", lit(org1)))
    assert.equal(1, count(fmt("select count(*) from public.user_organizations where user_id = %s", lit(user))))
    h.accepts(fmt("delete from auth.users where id = %s", lit(user)))
    assert.equal(0, count(fmt("select count(*) from public.user_organizations where user_id = %s", lit(user))))
  end)
end)

describe("public.user_projects (minimal, not defined by seed 001)", function()
  it("accepts a membership and refuses the same one twice", function()
    local user, project = h.user(), new_project(nil)
    local sql = fmt("insert into public.user_projects (user_id, project_id) values (%s, %s)", lit(user), lit(project))
    h.accepts(sql)
    h.refuses("23505", sql)
  end)

  it("refuses a membership of a user or a project that does not exist", function()
    h.refuses("23503", fmt("insert into public.user_projects (user_id, project_id) values (%s, %s)", lit(h.uuid()), lit(new_project(nil))))
    h.refuses("23503", fmt("insert into public.user_projects (user_id, project_id) values (%s, %s)", lit(h.user()), lit(h.uuid())))
  end)

  it("deletes the memberships of a deleted project and of a deleted user", function()
    local user, p1, p2 = h.user(), new_project(nil), new_project(nil)
    h.accepts(fmt("insert into public.user_projects (user_id, project_id) values (%s, %s), (%s, %s)",
      lit(user), lit(p1), lit(user), lit(p2)))
    h.accepts(fmt("delete from public.projects where id = %s", lit(p1)))
    assert.equal(1, count(fmt("select count(*) from public.user_projects where user_id = %s", lit(user))))
    h.accepts(fmt("delete from auth.users where id = %s", lit(user)))
    assert.equal(0, count(fmt("select count(*) from public.user_projects where user_id = %s", lit(user))))
  end)
end)

describe("indexes of seed 000's scope tables", function()
  it("exist under the seed's names", function()
    local expected = {
      "idx_ai_runs_last_message", "idx_ai_runs_source", "idx_ai_runs_starred", "idx_ai_runs_status",
      "idx_ai_runs_tags", "idx_ai_runs_user_id", "idx_ai_runs_user_source",
      "idx_ai_tasks_created_at", "idx_ai_tasks_model_id", "idx_ai_tasks_provider_model", "idx_ai_tasks_run_id",
      "idx_ai_tasks_status", "idx_ai_tasks_task_id", "idx_ai_tasks_user_id",
      "idx_tasks_assignee_id", "idx_tasks_parent_task_id", "idx_tasks_priority",
      "idx_workspaces_org", "idx_workspaces_parent",
    }
    local rows = assert(h.query([[select indexname from pg_indexes where schemaname = 'public'
      and tablename in ('workspaces', 'tasks', 'ai_runs', 'ai_tasks') and indexname like 'idx\_%'
      order by indexname]]))
    local names = {}
    for i, r in ipairs(rows) do names[i] = r.indexname end
    assert.same(expected, names)
  end)

  it("keep the seed's partial and GIN definitions", function()
    assert.same({
      { indexname = "idx_ai_runs_starred", indexdef = "CREATE INDEX idx_ai_runs_starred ON public.ai_runs USING btree (is_starred) WHERE (is_starred = true)" },
      { indexname = "idx_ai_runs_status", indexdef = "CREATE INDEX idx_ai_runs_status ON public.ai_runs USING btree (status) WHERE (status = 'active'::text)" },
      { indexname = "idx_ai_runs_tags", indexdef = "CREATE INDEX idx_ai_runs_tags ON public.ai_runs USING gin (tags)" },
    }, h.query([[select indexname, indexdef from pg_indexes where schemaname = 'public'
      and indexname in ('idx_ai_runs_starred', 'idx_ai_runs_status', 'idx_ai_runs_tags') order by indexname]]))
  end)
end)
