-- sql/011_brokers.sql, tables: data_broker and broker_values (seed 000's
-- final "Related Tables" version), their constraints, cascades and indexes.
local h = require("helpers")

local fmt = string.format
local lit = h.lit

local function count(sql)
  return tonumber(h.scalar(sql))
end

local function new_broker(columns, values)
  local id = h.uuid()
  h.accepts(fmt("insert into public.data_broker (id, name%s) values (%s, 'broker'%s)",
    columns or "", lit(id), values or ""))
  return id
end

local function new_component(tbl)
  local id = h.uuid()
  h.accepts(fmt("insert into public.%s (id, name) values (%s, 'component')", tbl, lit(id)))
  return id
end

-- One row of every scope kind, all owned by a fresh user. Returns their ids.
local function new_scopes()
  local s = {
    user = h.user(), org = h.uuid(), workspace = h.uuid(), child_workspace = h.uuid(),
    project = h.uuid(), task = h.uuid(), run = h.uuid(), ai_task = h.uuid(),
  }
  h.accepts(fmt([[
    insert into public.organizations (id, name, slug) values (%s, 'Org', %s);
    insert into public.workspaces (id, organization_id, name) values (%s, %s, 'Client');
    insert into public.workspaces (id, organization_id, parent_workspace_id, name) values (%s, %s, %s, 'Sub');
    insert into public.projects (id, name) values (%s, 'Project');
    insert into public.tasks (id, title, project_id) values (%s, 'Task', %s);
    insert into public.ai_runs (id, user_id, source_type) values (%s, %s, 'chat');
    insert into public.ai_tasks (id, run_id, user_id, task_id, service, task_name)
      values (%s, %s, %s, %s, 'chat', 'turn');
  ]], lit(s.org), lit("org-" .. s.org),
      lit(s.workspace), lit(s.org),
      lit(s.child_workspace), lit(s.org), lit(s.workspace),
      lit(s.project),
      lit(s.task), lit(s.project),
      lit(s.run), lit(s.user),
      lit(s.ai_task), lit(s.run), lit(s.user), lit(h.uuid())))
  return s
end

-- SQL inserting a value of `broker` at one scope: `column` is a scope column
-- (or "is_global" with `id` true).
local function value_sql(broker, column, id, value)
  if column == "is_global" then
    return fmt("insert into public.broker_values (broker_id, is_global, value) values (%s, true, %s)",
      lit(broker), lit(value or '"v"'))
  end
  return fmt("insert into public.broker_values (broker_id, %s, value) values (%s, %s, %s)",
    column, lit(broker), lit(id), lit(value or '"v"'))
end

describe("public.data_broker", function()
  it("accepts a broker and fills the seed's defaults ('str', 'blue', readable)", function()
    local b = new_broker()
    assert.same({ { data_type = "str", color = "blue", is_public = "f", authenticated_read = "t", public_read = "t" } },
      h.query(fmt([[select data_type, color, is_public, authenticated_read, public_read
        from public.data_broker where id = %s]], lit(b))))
  end)

  it("refuses a second broker with the same id", function()
    local b = new_broker()
    h.refuses("23505", fmt("insert into public.data_broker (id, name) values (%s, 'again')", lit(b)))
  end)

  it("refuses a broker without a name", function()
    h.refuses("23502", "insert into public.data_broker (description) values ('nameless')")
  end)

  it("accepts the data_type and color enums' values and refuses others", function()
    new_broker(", data_type, color", ", 'dict', 'green'")
    h.refuses("22P02", "insert into public.data_broker (name, data_type) values ('b', 'string')")
    h.refuses("22P02", "insert into public.data_broker (name, color) values ('b', 'magenta')")
  end)

  describe("input_component (data_broker_default_component_fkey)", function()
    it("accepts an existing input component and refuses an unknown one", function()
      new_broker(", input_component", ", " .. lit(new_component("data_input_component")))
      h.refuses("23503", fmt("insert into public.data_broker (name, input_component) values ('b', %s)", lit(h.uuid())))
    end)

    it("follows a change of the component's id (on update cascade)", function()
      local c = new_component("data_input_component")
      local b = new_broker(", input_component", ", " .. lit(c))
      local moved = h.uuid()
      h.accepts(fmt("update public.data_input_component set id = %s where id = %s", lit(moved), lit(c)))
      assert.equal(moved, h.scalar(fmt("select input_component from public.data_broker where id = %s", lit(b))))
    end)

    it("refuses deleting a component a broker still uses", function()
      local c = new_component("data_input_component")
      new_broker(", input_component", ", " .. lit(c))
      h.refuses("23503", fmt("delete from public.data_input_component where id = %s", lit(c)))
    end)
  end)

  describe("output_component (data_broker_output_component_fkey)", function()
    it("accepts an existing output component and refuses an unknown one", function()
      new_broker(", output_component", ", " .. lit(new_component("data_output_component")))
      h.refuses("23503", fmt("insert into public.data_broker (name, output_component) values ('b', %s)", lit(h.uuid())))
    end)

    it("follows a change of the component's id and refuses deleting it while used", function()
      local c = new_component("data_output_component")
      local b = new_broker(", output_component", ", " .. lit(c))
      local moved = h.uuid()
      h.accepts(fmt("update public.data_output_component set id = %s where id = %s", lit(moved), lit(c)))
      assert.equal(moved, h.scalar(fmt("select output_component from public.data_broker where id = %s", lit(b))))
      h.refuses("23503", fmt("delete from public.data_output_component where id = %s", lit(moved)))
    end)
  end)

  describe("field_component_id (data_broker_field_component_id_fkey)", function()
    it("accepts an existing field component and refuses an unknown one", function()
      new_broker(", field_component_id", ", " .. lit(new_component("field_components")))
      h.refuses("23503", fmt("insert into public.data_broker (name, field_component_id) values ('b', %s)", lit(h.uuid())))
    end)

    it("follows a change of the component's id", function()
      local c = new_component("field_components")
      local b = new_broker(", field_component_id", ", " .. lit(c))
      local moved = h.uuid()
      h.accepts(fmt("update public.field_components set id = %s where id = %s", lit(moved), lit(c)))
      assert.equal(moved, h.scalar(fmt("select field_component_id from public.data_broker where id = %s", lit(b))))
    end)

    it("keeps the broker and clears field_component_id when the component is deleted", function()
      local c = new_component("field_components")
      local b = new_broker(", field_component_id", ", " .. lit(c))
      h.accepts(fmt("delete from public.field_components where id = %s", lit(c)))
      assert.same({ { name = "broker" } },
        h.query(fmt("select name, field_component_id from public.data_broker where id = %s", lit(b))))
    end)
  end)

  describe("user_id (data_broker_user_id_fkey)", function()
    it("accepts an existing user and refuses an unknown one", function()
      new_broker(", user_id", ", " .. lit(h.user()))
      h.refuses("23503", fmt("insert into public.data_broker (name, user_id) values ('b', %s)", lit(h.uuid())))
    end)

    it("deletes a deleted user's brokers, and their values", function()
      local user = h.user()
      local b = new_broker(", user_id", ", " .. lit(user))
      h.accepts(value_sql(b, "is_global", true))
      h.accepts(fmt("delete from auth.users where id = %s", lit(user)))
      assert.equal(0, count(fmt("select count(*) from public.data_broker where id = %s", lit(b))))
      assert.equal(0, count(fmt("select count(*) from public.broker_values where broker_id = %s", lit(b))))
    end)
  end)
end)

describe("public.broker_values", function()
  local s
  setup(function() s = new_scopes() end)

  describe("single scope (broker_values_single_scope_check)", function()
    it("accepts a value at each of the eight levels", function()
      local b = new_broker()
      h.accepts(table.concat({
        value_sql(b, "ai_tasks_id", s.ai_task),
        value_sql(b, "ai_runs_id", s.run),
        value_sql(b, "task_id", s.task),
        value_sql(b, "project_id", s.project),
        value_sql(b, "workspace_id", s.workspace),
        value_sql(b, "organization_id", s.org),
        value_sql(b, "user_id", s.user),
        value_sql(b, "is_global", true),
      }, ";\n"))
      assert.equal(8, count(fmt("select count(*) from public.broker_values where broker_id = %s", lit(b))))
    end)

    it("refuses a value with no scope at all", function()
      h.refuses("23514", fmt("insert into public.broker_values (broker_id, value) values (%s, '1')", lit(new_broker())))
    end)

    it("refuses a value with two scope columns set", function()
      local err = h.refuses("23514", fmt(
        "insert into public.broker_values (broker_id, workspace_id, project_id, value) values (%s, %s, %s, '1')",
        lit(new_broker()), lit(s.workspace), lit(s.project)))
      assert.matches("broker_values_single_scope_check", err.raw)
    end)

    it("refuses is_global = true together with another scope column", function()
      h.refuses("23514", fmt(
        "insert into public.broker_values (broker_id, is_global, user_id, value) values (%s, true, %s, '1')",
        lit(new_broker()), lit(s.user)))
    end)

    it("refuses moving an existing value to a second scope", function()
      local b = new_broker()
      h.accepts(value_sql(b, "organization_id", s.org))
      h.refuses("23514", fmt("update public.broker_values set user_id = %s where broker_id = %s", lit(s.user), lit(b)))
    end)
  end)

  describe("one value per broker and scope (broker_values_unique_per_scope)", function()
    it("refuses a second value for the same broker and workspace", function()
      local b = new_broker()
      h.accepts(value_sql(b, "workspace_id", s.workspace, '"first"'))
      local err = h.refuses("23505", value_sql(b, "workspace_id", s.workspace, '"second"'))
      assert.matches("broker_values_unique_per_scope", err.raw)
    end)

    it("refuses a second global value for the same broker (NULLS NOT DISTINCT)", function()
      local b = new_broker()
      h.accepts(value_sql(b, "is_global", true))
      h.refuses("23505", value_sql(b, "is_global", true))
    end)

    it("refuses a second value for the same broker and user", function()
      local b = new_broker()
      h.accepts(value_sql(b, "user_id", s.user))
      h.refuses("23505", value_sql(b, "user_id", s.user))
    end)

    it("accepts the same broker in two workspaces, and two brokers in one workspace", function()
      local b1, b2 = new_broker(), new_broker()
      h.accepts(value_sql(b1, "workspace_id", s.workspace))
      h.accepts(value_sql(b1, "workspace_id", s.child_workspace))
      h.accepts(value_sql(b2, "workspace_id", s.workspace))
    end)
  end)

  describe("required columns", function()
    it("refuses a value without broker_id or without value", function()
      h.refuses("23502", fmt("insert into public.broker_values (is_global, value) values (true, '1')"))
      h.refuses("23502", fmt("insert into public.broker_values (broker_id, is_global) values (%s, true)", lit(new_broker())))
    end)

    it("accepts a JSON null as a value", function()
      h.accepts(value_sql(new_broker(), "is_global", true, "null"))
    end)
  end)

  describe("foreign keys", function()
    it("refuses a value of a broker that does not exist", function()
      h.refuses("23503", value_sql(h.uuid(), "is_global", true))
    end)

    it("refuses a value whose scope row does not exist, at each level", function()
      local b = new_broker()
      for _, column in ipairs({ "ai_tasks_id", "ai_runs_id", "task_id", "project_id",
                                "workspace_id", "organization_id", "user_id" }) do
        local err = h.refuses("23503", value_sql(b, column, h.uuid()))
        assert.matches("broker_values_" .. column .. "_fkey", err.raw)
      end
    end)

    it("refuses a creator that is not a user", function()
      h.refuses("23503", fmt("insert into public.broker_values (broker_id, is_global, value, created_by) values (%s, true, '1', %s)",
        lit(new_broker()), lit(h.uuid())))
    end)

    it("keeps the value and clears created_by when its creator is deleted", function()
      local creator = h.user()
      local b = new_broker()
      h.accepts(fmt("insert into public.broker_values (broker_id, is_global, value, created_by) values (%s, true, '1', %s)",
        lit(b), lit(creator)))
      h.accepts(fmt("delete from auth.users where id = %s", lit(creator)))
      assert.same({ { value = "1" } },
        h.query(fmt("select value, created_by from public.broker_values where broker_id = %s", lit(b))))
    end)
  end)

  describe("cascades", function()
    local function values_of(b)
      return count(fmt("select count(*) from public.broker_values where broker_id = %s", lit(b)))
    end

    it("deleting a workspace deletes its values, its child workspaces and theirs", function()
      local sc = new_scopes()
      local b = new_broker()
      h.accepts(value_sql(b, "workspace_id", sc.workspace) .. ";" .. value_sql(b, "workspace_id", sc.child_workspace)
        .. ";" .. value_sql(b, "organization_id", sc.org))
      h.accepts(fmt("delete from public.workspaces where id = %s", lit(sc.workspace)))
      assert.equal(0, count(fmt("select count(*) from public.workspaces where id = %s", lit(sc.child_workspace))))
      assert.same({ { organization_id = sc.org } },
        h.query(fmt("select organization_id from public.broker_values where broker_id = %s", lit(b))))
    end)

    it("deleting a user deletes the user-level values", function()
      local user = h.user()
      local b = new_broker()
      h.accepts(value_sql(b, "user_id", user) .. ";" .. value_sql(b, "is_global", true))
      h.accepts(fmt("delete from auth.users where id = %s", lit(user)))
      assert.same({ { is_global = "t" } },
        h.query(fmt("select is_global from public.broker_values where broker_id = %s", lit(b))))
    end)

    it("deleting an organization deletes its values and those of its workspaces", function()
      local sc = new_scopes()
      local b = new_broker()
      h.accepts(value_sql(b, "organization_id", sc.org) .. ";" .. value_sql(b, "workspace_id", sc.child_workspace))
      h.accepts(fmt("delete from public.organizations where id = %s", lit(sc.org)))
      assert.equal(0, values_of(b))
    end)

    it("deleting a project deletes its values and those of its tasks", function()
      local sc = new_scopes()
      local b = new_broker()
      h.accepts(value_sql(b, "project_id", sc.project) .. ";" .. value_sql(b, "task_id", sc.task))
      h.accepts(fmt("delete from public.projects where id = %s", lit(sc.project)))
      assert.equal(0, values_of(b))
    end)

    it("deleting a task deletes its values", function()
      local sc = new_scopes()
      local b = new_broker()
      h.accepts(value_sql(b, "task_id", sc.task))
      h.accepts(fmt("delete from public.tasks where id = %s", lit(sc.task)))
      assert.equal(0, values_of(b))
    end)

    it("deleting an AI run deletes its values and those of its AI tasks", function()
      local sc = new_scopes()
      local b = new_broker()
      h.accepts(value_sql(b, "ai_runs_id", sc.run) .. ";" .. value_sql(b, "ai_tasks_id", sc.ai_task))
      h.accepts(fmt("delete from public.ai_runs where id = %s", lit(sc.run)))
      assert.equal(0, values_of(b))
    end)

    it("deleting an AI task deletes its values", function()
      local sc = new_scopes()
      local b = new_broker()
      h.accepts(value_sql(b, "ai_tasks_id", sc.ai_task) .. ";" .. value_sql(b, "ai_runs_id", sc.run))
      h.accepts(fmt("delete from public.ai_tasks where id = %s", lit(sc.ai_task)))
      assert.same({ { ai_runs_id = sc.run } },
        h.query(fmt("select ai_runs_id from public.broker_values where broker_id = %s", lit(b))))
    end)

    it("deleting a broker deletes its values at every scope", function()
      local b = new_broker()
      h.accepts(value_sql(b, "workspace_id", s.workspace) .. ";" .. value_sql(b, "is_global", true))
      h.accepts(fmt("delete from public.data_broker where id = %s", lit(b)))
      assert.equal(0, values_of(b))
    end)
  end)

  describe("indexes", function()
    it("exist under the seed's names, partial where the seed says so", function()
      assert.same({
        { indexname = "idx_broker_values_ai_runs", pred = "(ai_runs_id IS NOT NULL)" },
        { indexname = "idx_broker_values_ai_tasks", pred = "(ai_tasks_id IS NOT NULL)" },
        { indexname = "idx_broker_values_broker" },
        { indexname = "idx_broker_values_global", pred = "(is_global = true)" },
        { indexname = "idx_broker_values_org", pred = "(organization_id IS NOT NULL)" },
        { indexname = "idx_broker_values_project", pred = "(project_id IS NOT NULL)" },
        { indexname = "idx_broker_values_task", pred = "(task_id IS NOT NULL)" },
        { indexname = "idx_broker_values_user", pred = "(user_id IS NOT NULL)" },
        { indexname = "idx_broker_values_workspace", pred = "(workspace_id IS NOT NULL)" },
      }, h.query([[select c.relname as indexname, pg_get_expr(i.indpred, i.indrelid) as pred
        from pg_index i join pg_class c on c.oid = i.indexrelid
        where i.indrelid = 'public.broker_values'::regclass and c.relname like 'idx\_%'
        order by c.relname]]))
    end)

    it("make broker_values_unique_per_scope a NULLS NOT DISTINCT unique index", function()
      assert.equal("t", h.scalar([[select i.indnullsnotdistinct from pg_index i join pg_class c on c.oid = i.indexrelid
        where c.relname = 'broker_values_unique_per_scope']]))
    end)
  end)
end)
