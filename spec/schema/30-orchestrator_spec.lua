-- Schema `orchestrator` (seed 002, sql/030_orchestrator.sql): defaults, NOT
-- NULLs, the unique email, every foreign key and its ON DELETE rule.
local h = require("helpers")

local function insert(sql, ...)
  local id = h.uuid()
  h.accepts(sql:format(h.lit(id), ...))
  return id
end

local function user()
  local id = h.uuid()
  h.accepts(("insert into orchestrator.users(id, email) values (%s, %s)")
    :format(h.lit(id), h.lit(id .. "@orchestrator.test")))
  return id
end

local function conversation(user_id)
  return insert([[insert into orchestrator.agent_conversations(id, user_id, agent_name, agent_type)
    values (%s, %s, 'blog_post_writer', 'context')]], h.lit(user_id))
end

local function task(user_id, conversation_id)
  return insert([[insert into orchestrator.tasks(id, user_id, agent_conversation_id, method, prompt)
    values (%s, %s, %s, 'build', 'write a post')]], h.lit(user_id), h.lit(conversation_id))
end

local function project(conversation_id, parent_id)
  return insert([[insert into orchestrator.projects(id, conversation_id, parent_project_id, name)
    values (%s, %s, %s, 'launch')]], h.lit(conversation_id), h.lit(parent_id))
end

local function step(project_id)
  return insert([[insert into orchestrator.project_steps(id, project_id, step_id, step_index, step_type, step_name)
    values (%s, %s, 'step-1', 0, 'agent', 'draft')]], h.lit(project_id))
end

local function deliverable(user_id, links)
  links = links or {}
  return insert([[insert into orchestrator.deliverables(id, user_id, conversation_id, task_id, project_step_id, title, type)
    values (%s, %s, %s, %s, %s, 'Post', 'document')]],
    h.lit(user_id), h.lit(links.conversation), h.lit(links.task), h.lit(links.step))
end

-- The next version number (sql/151 keeps them unique per deliverable).
local function version(deliverable_id, task_id)
  return insert([[insert into orchestrator.deliverable_versions(id, deliverable_id, version_number, content, task_id)
    values (%s, %s, (select coalesce(max(version_number), 0) + 1 from orchestrator.deliverable_versions
    where deliverable_id = %s), 'hello', %s)]], h.lit(deliverable_id), h.lit(deliverable_id), h.lit(task_id))
end

local function count(tbl, where)
  return tonumber(h.scalar(("select count(*) from orchestrator.%s where %s"):format(tbl, where)))
end

describe("orchestrator.users", function()
  it("fills roles, namespace_access, status and timestamps from their defaults", function()
    local id = user()
    local row = assert(h.query(([[select roles::text, namespace_access::text, status,
        created_at is not null as has_created, updated_at is not null as has_updated
      from orchestrator.users where id = %s]]):format(h.lit(id))))[1]
    assert.same({ roles = '["user"]', namespace_access = '["my-org"]', status = "active",
      has_created = "t", has_updated = "t" }, row)
  end)

  it("refuses a user without email", function()
    h.refuses("23502", "insert into orchestrator.users(display_name) values ('nobody')")
  end)

  it("refuses a second user with the same email (users_email_key)", function()
    local id = user()
    local err = h.refuses("23505", ("insert into orchestrator.users(email) values (%s)")
      :format(h.lit(id .. "@orchestrator.test")))
    assert.matches("users_email_key", err.raw)
  end)

  it("refuses an explicit NULL namespace_access", function()
    h.refuses("23502", ("insert into orchestrator.users(email, namespace_access) values (%s, null)")
      :format(h.lit(h.uuid() .. "@orchestrator.test")))
  end)
end)

describe("orchestrator.agent_conversations", function()
  it("accepts a conversation of an existing user, with utc defaults", function()
    local c = conversation(user())
    assert.equal("t", h.scalar(([[select started_at is not null and last_active_at is not null
      and metadata = '{}'::jsonb from orchestrator.agent_conversations where id = %s]]):format(h.lit(c))))
  end)

  it("refuses a conversation of an unknown user", function()
    h.refuses("23503", ([[insert into orchestrator.agent_conversations(user_id, agent_name, agent_type)
      values (%s, 'a', 'b')]]):format(h.lit(h.uuid())))
  end)

  it("refuses a conversation without agent_name or agent_type", function()
    local u = user()
    h.refuses("23502", ([[insert into orchestrator.agent_conversations(user_id, agent_type)
      values (%s, 'b')]]):format(h.lit(u)))
    h.refuses("23502", ([[insert into orchestrator.agent_conversations(user_id, agent_name)
      values (%s, 'a')]]):format(h.lit(u)))
  end)
end)

describe("orchestrator.tasks", function()
  it("accepts a task with the seed's defaults", function()
    local u = user()
    local t = task(u, conversation(u))
    local row = assert(h.query(([[select status, progress, timeout_seconds, deliverable_type
      from orchestrator.tasks where id = %s]]):format(h.lit(t))))[1]
    assert.same({ status = "pending", progress = "0", timeout_seconds = "300", deliverable_type = "text" }, row)
  end)

  it("accepts a task outside any conversation", function()
    task(user(), nil)
  end)

  it("refuses a task of an unknown user", function()
    h.refuses("23503", ("insert into orchestrator.tasks(user_id, method, prompt) values (%s, 'm', 'p')")
      :format(h.lit(h.uuid())))
  end)

  it("refuses a task in an unknown conversation", function()
    h.refuses("23503", ([[insert into orchestrator.tasks(user_id, agent_conversation_id, method, prompt)
      values (%s, %s, 'm', 'p')]]):format(h.lit(user()), h.lit(h.uuid())))
  end)

  it("refuses a task without method or prompt", function()
    local u = user()
    h.refuses("23502", ("insert into orchestrator.tasks(user_id, prompt) values (%s, 'p')"):format(h.lit(u)))
    h.refuses("23502", ("insert into orchestrator.tasks(user_id, method) values (%s, 'm')"):format(h.lit(u)))
  end)
end)

describe("orchestrator.projects", function()
  it("accepts a project and a subproject, with status 'planning', the subproject at level 1", function()
    local c = conversation(user())
    local parent = project(c)
    local child = project(c, parent)
    local row = assert(h.query(([[select status, hierarchy_level, subproject_count, parent_project_id
      from orchestrator.projects where id = %s]]):format(h.lit(child))))[1]
    assert.same({ status = "planning", hierarchy_level = "1", subproject_count = "0",
      parent_project_id = parent }, row)
  end)

  it("refuses a project without conversation", function()
    h.refuses("23502", "insert into orchestrator.projects(name) values ('orphan')")
  end)

  it("refuses a project in an unknown conversation", function()
    h.refuses("23503", ("insert into orchestrator.projects(conversation_id) values (%s)"):format(h.lit(h.uuid())))
  end)

  it("refuses a subproject of an unknown project", function()
    h.refuses("23503", ("insert into orchestrator.projects(conversation_id, parent_project_id) values (%s, %s)")
      :format(h.lit(conversation(user())), h.lit(h.uuid())))
  end)
end)

describe("orchestrator.project_steps", function()
  it("accepts a step of an existing project, with empty dependencies and status 'pending'", function()
    local s = step(project(conversation(user())))
    local row = assert(h.query(([[select dependencies::text, status from orchestrator.project_steps
      where id = %s]]):format(h.lit(s))))[1]
    assert.same({ dependencies = "{}", status = "pending" }, row)
  end)

  it("refuses a step of an unknown project", function()
    h.refuses("23503", ([[insert into orchestrator.project_steps(project_id, step_id, step_index, step_type, step_name)
      values (%s, 's', 0, 't', 'n')]]):format(h.lit(h.uuid())))
  end)

  it("refuses a step without step_index", function()
    h.refuses("23502", ([[insert into orchestrator.project_steps(project_id, step_id, step_type, step_name)
      values (%s, 's', 't', 'n')]]):format(h.lit(project(conversation(user())))))
  end)
end)

describe("orchestrator.deliverables", function()
  it("accepts a deliverable linked to a conversation, a task and a project step", function()
    local u = user()
    local c = conversation(u)
    deliverable(u, { conversation = c, task = task(u, c), step = step(project(c)) })
  end)

  it("accepts a standalone deliverable", function()
    deliverable(user())
  end)

  it("refuses a deliverable of an unknown user", function()
    h.refuses("23503", ("insert into orchestrator.deliverables(user_id, title, type) values (%s, 't', 'd')")
      :format(h.lit(h.uuid())))
  end)

  it("refuses a deliverable linked to an unknown conversation, task or step", function()
    local u = h.lit(user())
    for _, col in ipairs({ "conversation_id", "task_id", "project_step_id" }) do
      h.refuses("23503", ("insert into orchestrator.deliverables(user_id, %s, title, type) values (%s, %s, 't', 'd')")
        :format(col, u, h.lit(h.uuid())))
    end
  end)

  it("refuses a deliverable without title or type", function()
    local u = h.lit(user())
    h.refuses("23502", ("insert into orchestrator.deliverables(user_id, type) values (%s, 'd')"):format(u))
    h.refuses("23502", ("insert into orchestrator.deliverables(user_id, title) values (%s, 't')"):format(u))
  end)
end)

describe("orchestrator.deliverable_versions", function()
  it("accepts a version, not current and created by 'ai_response' by default", function()
    local u = user()
    local v = version(deliverable(u), task(u, nil))
    local row = assert(h.query(([[select is_current_version, created_by_type
      from orchestrator.deliverable_versions where id = %s]]):format(h.lit(v))))[1]
    assert.same({ is_current_version = "f", created_by_type = "ai_response" }, row)
  end)

  it("refuses a version of an unknown deliverable", function()
    h.refuses("23503", ("insert into orchestrator.deliverable_versions(deliverable_id, version_number) values (%s, 1)")
      :format(h.lit(h.uuid())))
  end)

  it("refuses a version linked to an unknown task", function()
    h.refuses("23503", ([[insert into orchestrator.deliverable_versions(deliverable_id, version_number, task_id)
      values (%s, 1, %s)]]):format(h.lit(deliverable(user())), h.lit(h.uuid())))
  end)

  it("refuses a version without version_number", function()
    h.refuses("23502", ("insert into orchestrator.deliverable_versions(deliverable_id) values (%s)")
      :format(h.lit(deliverable(user()))))
  end)
end)

describe("orchestrator deletes", function()
  it("deleting a user removes everything that belongs to that user", function()
    local u = user()
    local c = conversation(u)
    local t = task(u, c)
    local p = project(c)
    local s = step(p)
    local d = deliverable(u, { conversation = c, task = t, step = s })
    version(d, t)
    h.accepts(("delete from orchestrator.users where id = %s"):format(h.lit(u)))
    assert.equal(0, count("agent_conversations", ("user_id = %s"):format(h.lit(u))))
    assert.equal(0, count("tasks", ("user_id = %s"):format(h.lit(u))))
    assert.equal(0, count("projects", ("id = %s"):format(h.lit(p))))
    assert.equal(0, count("project_steps", ("id = %s"):format(h.lit(s))))
    assert.equal(0, count("deliverables", ("user_id = %s"):format(h.lit(u))))
    assert.equal(0, count("deliverable_versions", ("deliverable_id = %s"):format(h.lit(d))))
  end)

  it("deleting a conversation removes its tasks and projects and unlinks its deliverables", function()
    local u = user()
    local c = conversation(u)
    local t = task(u, c)
    local p = project(c)
    local d = deliverable(u, { conversation = c })
    h.accepts(("delete from orchestrator.agent_conversations where id = %s"):format(h.lit(c)))
    assert.equal(0, count("tasks", ("id = %s"):format(h.lit(t))))
    assert.equal(0, count("projects", ("id = %s"):format(h.lit(p))))
    assert.equal(1, count("deliverables", ("id = %s and conversation_id is null"):format(h.lit(d))))
  end)

  it("deleting a task unlinks the deliverables and versions it produced", function()
    local u = user()
    local t = task(u, nil)
    local d = deliverable(u, { task = t })
    local v = version(d, t)
    h.accepts(("delete from orchestrator.tasks where id = %s"):format(h.lit(t)))
    assert.equal(1, count("deliverables", ("id = %s and task_id is null"):format(h.lit(d))))
    assert.equal(1, count("deliverable_versions", ("id = %s and task_id is null"):format(h.lit(v))))
  end)

  it("deleting a project removes its subprojects and steps and unlinks deliverables of those steps", function()
    local u = user()
    local c = conversation(u)
    local parent = project(c)
    local child = project(c, parent)
    local s = step(child)
    local d = deliverable(u, { step = s })
    h.accepts(("delete from orchestrator.projects where id = %s"):format(h.lit(parent)))
    assert.equal(0, count("projects", ("id = %s"):format(h.lit(child))))
    assert.equal(0, count("project_steps", ("project_id = %s"):format(h.lit(child))))
    assert.equal(1, count("deliverables", ("id = %s and project_step_id is null"):format(h.lit(d))))
  end)

  it("deleting a deliverable removes its versions", function()
    local d = deliverable(user())
    version(d, nil)
    version(d, nil)
    assert.equal(2, count("deliverable_versions", ("deliverable_id = %s"):format(h.lit(d))))
    h.accepts(("delete from orchestrator.deliverables where id = %s"):format(h.lit(d)))
    assert.equal(0, count("deliverable_versions", ("deliverable_id = %s"):format(h.lit(d))))
  end)
end)
