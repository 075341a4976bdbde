-- sql/011_brokers.sql, functions: the five broker functions of seed 000,
-- checked against expectations computed by hand on small fixtures, plus the
-- two fixes to the seed's resolution (a loop in the workspace hierarchy
-- cannot hang it; a workspace beats its organization at any depth).
local h = require("helpers")

local fmt = string.format
local lit = h.lit

local function count(sql)
  return tonumber(h.scalar(sql))
end

local function new_broker(name, default_value, description)
  local id = h.uuid()
  h.accepts(fmt("insert into public.data_broker (id, name, default_value, description) values (%s, %s, %s, %s)",
    lit(id), lit(name or "broker"), lit(default_value), lit(description)))
  return id
end

-- A full context: a user, an organization with three nested workspaces
-- (root > mid > leaf), a project with a task, an AI run with an AI task.
local function new_context()
  local c = {
    user = h.user(), org = h.uuid(), root = h.uuid(), mid = h.uuid(), leaf = h.uuid(),
    project = h.uuid(), task = h.uuid(), run = h.uuid(), ai_task = h.uuid(),
  }
  c.workspace = c.leaf
  h.accepts(fmt([[
    insert into public.organizations (id, name, slug) values (%s, 'Agency', %s);
    insert into public.workspaces (id, organization_id, parent_workspace_id, name)
      values (%s, %s, null, 'Root'), (%s, %s, %s, 'Mid'), (%s, %s, %s, 'Leaf');
    insert into public.projects (id, name) values (%s, 'Website');
    insert into public.tasks (id, title, project_id) values (%s, 'Homepage', %s);
    insert into public.ai_runs (id, user_id, source_type) values (%s, %s, 'chat');
    insert into public.ai_tasks (id, run_id, user_id, task_id, service, task_name)
      values (%s, %s, %s, %s, 'chat', 'turn');
  ]], lit(c.org), lit("agency-" .. c.org),
      lit(c.root), lit(c.org), lit(c.mid), lit(c.org), lit(c.root), lit(c.leaf), lit(c.org), lit(c.mid),
      lit(c.project),
      lit(c.task), lit(c.project),
      lit(c.run), lit(c.user),
      lit(c.ai_task), lit(c.run), lit(c.user), lit(h.uuid())))
  return c
end

-- The eight levels, most specific first: level name, broker_values column,
-- and the context key holding the scope id.
local LEVELS = {
  { "ai_task", "ai_tasks_id", "ai_task" },
  { "ai_run", "ai_runs_id", "run" },
  { "task", "task_id", "task" },
  { "project", "project_id", "project" },
  { "workspace", "workspace_id", "workspace" },
  { "organization", "organization_id", "org" },
  { "user", "user_id", "user" },
  { "global", "is_global", nil },
}

local function set_value(broker, column, id, value)
  if column == "is_global" then
    h.accepts(fmt("insert into public.broker_values (broker_id, is_global, value) values (%s, true, %s)",
      lit(broker), lit(value)))
  else
    h.accepts(fmt("insert into public.broker_values (broker_id, %s, value) values (%s, %s, %s)",
      column, lit(broker), lit(id), lit(value)))
  end
end

-- "array[...]::uuid[]" from a list of ids (false stands for a NULL entry).
local function id_array(ids)
  local parts = {}
  for i, id in ipairs(ids) do parts[i] = id and lit(id) or "null" end
  return "array[" .. table.concat(parts, ", ") .. "]::uuid[]"
end

-- Named context arguments; only the keys present in `c` are passed.
local function context_args(c)
  local parts = {}
  for _, a in ipairs({ { "p_user_id", "user" }, { "p_organization_id", "org" }, { "p_workspace_id", "workspace" },
                       { "p_project_id", "project" }, { "p_task_id", "task" }, { "p_ai_runs_id", "run" },
                       { "p_ai_tasks_id", "ai_task" } }) do
    if c[a[2]] then parts[#parts + 1] = fmt("%s => %s", a[1], lit(c[a[2]])) end
  end
  return #parts > 0 and ", " .. table.concat(parts, ", ") or ""
end

local function resolve(ids, c)
  return assert(h.query(fmt([[select broker_id, value::text as value, scope_level, scope_id
    from public.get_broker_values_for_context(%s%s) order by broker_id]], id_array(ids), context_args(c))))
end

local function missing(ids, c)
  return h.scalar(fmt("select public.get_missing_broker_ids(%s%s)", id_array(ids), context_args(c)))
end

-- Postgres' text form of a uuid[] whose elements are sorted (NULL last).
local function pg_array(ids)
  local sorted = {}
  for i, id in ipairs(ids) do sorted[i] = id end
  table.sort(sorted)
  return "{" .. table.concat(sorted, ",") .. "}"
end

describe("public.get_broker_values_for_context", function()
  local c
  setup(function() c = new_context() end)

  it("lets each level win in turn as the more specific ones are removed", function()
    local b = new_broker()
    for _, l in ipairs(LEVELS) do set_value(b, l[2], c[l[3]], fmt('"%s"', l[1])) end
    for _, l in ipairs(LEVELS) do
      local level, column, key = l[1], l[2], l[3]
      assert.same({ { broker_id = b, value = fmt('"%s"', level), scope_level = level, scope_id = c[key] } },
        resolve({ b }, c), "expected the " .. level .. " value to win")
      h.accepts(fmt("delete from public.broker_values where broker_id = %s and %s",
        lit(b), column == "is_global" and "is_global" or column .. " is not null"))
    end
    assert.same({}, resolve({ b }, c))
  end)

  it("resolves each broker on its own: the most specific level that broker has", function()
    -- Broker k has values at levels k..8, so in one call broker k resolves at level k.
    local expected, ids = {}, {}
    for k, l in ipairs(LEVELS) do
      local b = new_broker()
      ids[k] = b
      for j = k, #LEVELS do set_value(b, LEVELS[j][2], c[LEVELS[j][3]], fmt('"%s"', LEVELS[j][1])) end
      expected[k] = { broker_id = b, value = fmt('"%s"', l[1]), scope_level = l[1], scope_id = c[l[3]] }
    end
    table.sort(expected, function(x, y) return x.broker_id < y.broker_id end)
    assert.same(expected, resolve(ids, c))
  end)

  it("skips the levels whose context id is not given", function()
    local b = new_broker()
    set_value(b, "project_id", c.project, '"project"')
    set_value(b, "organization_id", c.org, '"org"')
    assert.same({ { broker_id = b, value = '"org"', scope_level = "organization", scope_id = c.org } },
      resolve({ b }, { org = c.org, user = c.user }))
  end)

  it("returns nothing for a broker without a value in the context", function()
    local b = new_broker()
    set_value(b, "organization_id", c.org, '"elsewhere"')
    assert.same({}, resolve({ b, new_broker() }, { user = c.user, workspace = c.leaf }))
  end)

  it("returns one row per broker, ignoring duplicates and NULL entries in p_broker_ids", function()
    local b = new_broker()
    set_value(b, "is_global", nil, '"g"')
    assert.same({ { broker_id = b, value = '"g"', scope_level = "global" } }, resolve({ b, false, b }, c))
  end)

  it("treats a JSON null as a value that wins over less specific levels", function()
    local b = new_broker()
    set_value(b, "project_id", c.project, "null")
    set_value(b, "organization_id", c.org, '"org"')
    assert.same({ { broker_id = b, value = "null", scope_level = "project", scope_id = c.project } }, resolve({ b }, c))
  end)

  it("returns the stored JSON value unmerged", function()
    local b = new_broker()
    set_value(b, "workspace_id", c.leaf, '{"tone": "casual"}')
    set_value(b, "organization_id", c.org, '{"tone": "formal", "brand": "Acme"}')
    assert.same({ { broker_id = b, value = '{"tone": "casual"}', scope_level = "workspace", scope_id = c.leaf } },
      resolve({ b }, c))
  end)

  describe("nested workspaces", function()
    it("prefers the closer workspace", function()
      local b = new_broker()
      set_value(b, "workspace_id", c.root, '"root"')
      set_value(b, "workspace_id", c.mid, '"mid"')
      assert.same({ { broker_id = b, value = '"mid"', scope_level = "workspace", scope_id = c.mid } }, resolve({ b }, c))
      set_value(b, "workspace_id", c.leaf, '"leaf"')
      assert.same({ { broker_id = b, value = '"leaf"', scope_level = "workspace", scope_id = c.leaf } }, resolve({ b }, c))
    end)

    it("finds a value on the parent of the parent", function()
      local b = new_broker()
      set_value(b, "workspace_id", c.root, '"root"')
      set_value(b, "organization_id", c.org, '"org"')
      assert.same({ { broker_id = b, value = '"root"', scope_level = "workspace", scope_id = c.root } }, resolve({ b }, c))
    end)

    it("does not look down: a child workspace's value does not apply to its parent", function()
      local b = new_broker()
      set_value(b, "workspace_id", c.leaf, '"leaf"')
      assert.same({}, resolve({ b }, { workspace = c.mid }))
    end)

    it("prefers a workspace 999 levels up to the organization", function()
      -- The seed's priority 5 + depth passed the organization's 1000 at depth 995.
      local org = h.uuid()
      local tag = h.uuid()
      h.accepts(fmt("insert into public.organizations (id, name, slug) values (%s, 'Deep', %s)", lit(org), lit("deep-" .. org)))
      -- A chain of 1000 workspaces in one INSERT; ids are md5(tag || n), the
      -- parent of n is n - 1. Inserted leaf first so that each row's cycle
      -- check finds its parent not yet there (1000 lookups, not 500,000).
      h.accepts(fmt([[insert into public.workspaces (id, organization_id, parent_workspace_id, name)
        select md5(%s || n)::uuid, %s, case when n > 1 then md5(%s || (n - 1))::uuid end, 'level ' || n
        from generate_series(1, 1000) as n order by n desc]], lit(tag), lit(org), lit(tag)))
      local top = h.scalar(fmt("select md5(%s || 1)::uuid", lit(tag)))
      local bottom = h.scalar(fmt("select md5(%s || 1000)::uuid", lit(tag)))
      assert.equal(1000, count(fmt("select count(*) from public.workspaces where organization_id = %s", lit(org))))
      local b = new_broker()
      set_value(b, "workspace_id", top, '"top workspace"')
      set_value(b, "organization_id", org, '"organization"')
      assert.same({ { broker_id = b, value = '"top workspace"', scope_level = "workspace", scope_id = top } },
        resolve({ b }, { org = org, workspace = bottom }))
    end)

    it("ends, and still answers, on a loop that got into parent_workspace_id", function()
      local org, x, y = h.uuid(), h.uuid(), h.uuid()
      local b = new_broker()
      h.accepts(fmt([[
        insert into public.organizations (id, name, slug) values (%s, 'Loop', %s);
        insert into public.workspaces (id, organization_id, name) values (%s, %s, 'X'), (%s, %s, 'Y');
        insert into public.broker_values (broker_id, workspace_id, value) values (%s, %s, '"y"');
        insert into public.broker_values (broker_id, organization_id, value) values (%s, %s, '"org"');
      ]], lit(org), lit("loop-" .. org), lit(x), lit(org), lit(y), lit(org), lit(b), lit(y), lit(b), lit(org)))
      -- Bad data the trigger refuses: X -> Y -> X, written with it disabled.
      local rows = assert(h.query(
        fmt("select broker_id, value::text as value, scope_level, scope_id from public.get_broker_values_for_context(%s, p_organization_id => %s, p_workspace_id => %s)",
          id_array({ b }), lit(org), lit(x)),
        fmt([[alter table public.workspaces disable trigger workspaces_prevent_cycle;
          update public.workspaces set parent_workspace_id = %s where id = %s;
          update public.workspaces set parent_workspace_id = %s where id = %s;
          alter table public.workspaces enable trigger workspaces_prevent_cycle]], lit(y), lit(x), lit(x), lit(y))))
      assert.same({ { broker_id = b, value = '"y"', scope_level = "workspace", scope_id = y } }, rows)
      -- Drop the bad data again: the organization takes its workspaces along.
      h.accepts(fmt("delete from public.organizations where id = %s", lit(org)))
      assert.equal(0, count(fmt("select count(*) from public.workspaces where id in (%s, %s)", lit(x), lit(y))))
    end)
  end)
end)

describe("public.get_missing_broker_ids", function()
  local c
  setup(function() c = new_context() end)

  it("returns the requested brokers that have no value in the context", function()
    local found, absent1, absent2 = new_broker(), new_broker(), new_broker()
    set_value(found, "workspace_id", c.root, '"client"')
    set_value(absent1, "project_id", c.project, '"other project"')
    assert.equal(pg_array({ absent1, absent2 }), missing({ found, absent1, absent2 }, { workspace = c.leaf }))
  end)

  it("returns an empty array when every broker resolves, a JSON null included", function()
    local b1, b2 = new_broker(), new_broker()
    set_value(b1, "user_id", c.user, "null")
    set_value(b2, "is_global", nil, "0")
    assert.equal("{}", missing({ b1, b2 }, c))
  end)

  it("collapses duplicates, and reports a NULL entry as missing (the seed's EXCEPT)", function()
    local b = new_broker()
    assert.equal("{" .. b .. ",NULL}", missing({ b, false, b }, c))
  end)

  it("returns an empty array for an empty request", function()
    assert.equal("{}", h.scalar("select public.get_missing_broker_ids(array[]::uuid[])"))
  end)
end)

describe("public.get_complete_broker_data_for_context", function()
  local c
  setup(function() c = new_context() end)

  local function complete(ids, ctx)
    return assert(h.query(fmt([[select broker_id, broker_name, data_type, value::text as value, has_value,
        scope_level, scope_id, default_value, description
      from public.get_complete_broker_data_for_context(%s%s) order by broker_name]], id_array(ids), context_args(ctx))))
  end

  it("returns every requested broker: resolved ones with their value, the others with has_value false", function()
    local resolved = new_broker("a_company", "ACME", "Company name")
    local unresolved = new_broker("b_tone", "friendly", "Writing tone")
    set_value(resolved, "ai_runs_id", c.run, '"Initech"')
    assert.same({
      { broker_id = resolved, broker_name = "a_company", data_type = "str", value = '"Initech"', has_value = "t",
        scope_level = "ai_run", scope_id = c.run, default_value = "ACME", description = "Company name" },
      { broker_id = unresolved, broker_name = "b_tone", data_type = "str", has_value = "f",
        default_value = "friendly", description = "Writing tone" },
    }, complete({ resolved, unresolved }, c))
  end)

  it("counts a JSON null as a value (has_value true)", function()
    local b = new_broker("nullable")
    set_value(b, "task_id", c.task, "null")
    assert.same({ { broker_id = b, broker_name = "nullable", data_type = "str", value = "null", has_value = "t",
                    scope_level = "task", scope_id = c.task } }, complete({ b }, c))
  end)

  it("leaves out ids that are not brokers, and lists a repeated broker once", function()
    local b = new_broker("only")
    assert.same({ { broker_id = b, broker_name = "only", data_type = "str", has_value = "f" } },
      complete({ b, h.uuid(), b, false }, c))
  end)
end)

describe("public.upsert_broker_value", function()
  local c
  setup(function() c = new_context() end)

  local function upsert(b, value, scope_args)
    return h.scalar(fmt("select public.upsert_broker_value(p_broker_id => %s, p_value => %s%s)", lit(b), lit(value), scope_args))
  end

  it("inserts a value at the given scope and returns its id", function()
    local b = new_broker()
    local id = upsert(b, '{"companyName": "Dr. Smith"}', fmt(", p_workspace_id => %s, p_created_by => %s", lit(c.root), lit(c.user)))
    assert.same({ { broker_id = b, workspace_id = c.root, created_by = c.user, value = '{"companyName": "Dr. Smith"}', is_global = "f" } },
      h.query(fmt("select broker_id, workspace_id, created_by, value::text as value, is_global from public.broker_values where id = %s", lit(id))))
  end)

  it("updates in place: same id, new value, updated_at moved forward", function()
    local b = new_broker()
    local scope = fmt(", p_ai_runs_id => %s", lit(c.run))
    local first = upsert(b, '"casual"', scope)
    local second = upsert(b, '"formal"', scope)
    assert.equal(first, second)
    assert.same({ { value = '"formal"', moved = "t" } }, h.query(fmt(
      "select value::text as value, updated_at > created_at as moved from public.broker_values where broker_id = %s", lit(b))))
  end)

  it("updates a global value in place too (all scope columns NULL)", function()
    local b = new_broker()
    local first = upsert(b, '"2025-11-16"', ", p_is_global => true")
    assert.equal(first, upsert(b, '"2025-11-17"', ", p_is_global => true"))
    assert.equal('"2025-11-17"', h.scalar(fmt("select value::text from public.broker_values where broker_id = %s", lit(b))))
  end)

  it("keeps one row per scope: another scope gets its own row", function()
    local b = new_broker()
    local user_row = upsert(b, '"mine"', fmt(", p_user_id => %s", lit(c.user)))
    local org_row = upsert(b, '"ours"', fmt(", p_organization_id => %s", lit(c.org)))
    assert.are_not.equal(user_row, org_row)
    assert.equal(2, count(fmt("select count(*) from public.broker_values where broker_id = %s", lit(b))))
  end)

  it("refuses a call without a scope or with two scopes", function()
    local b = new_broker()
    h.refuses("23514", fmt("select public.upsert_broker_value(%s, '1')", lit(b)))
    h.refuses("23514", fmt("select public.upsert_broker_value(%s, '1', p_is_global => true, p_user_id => %s)", lit(b), lit(c.user)))
  end)
end)

describe("public.bulk_upsert_broker_values", function()
  local c
  setup(function() c = new_context() end)

  local function pairs_json(list)
    local items = {}
    for i, p in ipairs(list) do items[i] = fmt('{"broker_id": "%s", "value": %s}', p[1], p[2]) end
    return "[" .. table.concat(items, ", ") .. "]"
  end

  local function bulk(list, scope_args)
    return h.query(fmt([[select broker_id, broker_value_id, success
      from public.bulk_upsert_broker_values(p_broker_value_pairs => %s%s) order by broker_id]],
      lit(pairs_json(list)), scope_args))
  end

  local function stored(ids)
    return assert(h.query(fmt([[select id, broker_id, value::text as value from public.broker_values
      where broker_id = any(%s) order by broker_id]], id_array(ids))))
  end

  it("stores every pair at the scope and returns one row per pair", function()
    local b1, b2 = new_broker(), new_broker()
    local rows = assert(bulk({ { b1, '{"clientName": "Dr. Smith"}' }, { b2, '"#4A90E2"' } },
      fmt(", p_workspace_id => %s, p_created_by => %s", lit(c.mid), lit(c.user))))
    local values = stored({ b1, b2 })
    assert.equal(2, #rows)
    for i, row in ipairs(rows) do
      assert.same({ broker_id = values[i].broker_id, broker_value_id = values[i].id, success = "t" }, row)
    end
    local expected = { [b1] = '{"clientName": "Dr. Smith"}', [b2] = '"#4A90E2"' }
    for _, v in ipairs(values) do assert.equal(expected[v.broker_id], v.value) end
    assert.equal(2, count(fmt("select count(*) from public.broker_values where workspace_id = %s and created_by = %s",
      lit(c.mid), lit(c.user))))
  end)

  it("updates existing values in place and inserts the new ones in the same call", function()
    local b1, b2 = new_broker(), new_broker()
    local scope = fmt(", p_task_id => %s", lit(c.task))
    local first = assert(bulk({ { b1, "1" } }, scope))
    local rows = assert(bulk({ { b1, "2" }, { b2, "3" } }, scope))
    assert.equal(2, #rows)
    local values = stored({ b1, b2 })
    local by_broker = {}
    for _, v in ipairs(values) do by_broker[v.broker_id] = v end
    assert.equal(first[1].broker_value_id, by_broker[b1].id)
    assert.equal("2", by_broker[b1].value)
    assert.equal("3", by_broker[b2].value)
  end)

  it("fails the whole batch when a broker appears twice, writing nothing", function()
    local b1, b2 = new_broker(), new_broker()
    local err = h.refuses("21000", fmt("select * from public.bulk_upsert_broker_values(%s, p_organization_id => %s)",
      lit(pairs_json({ { b2, '"other"' }, { b1, '"first"' }, { b1, '"second"' } })), lit(c.org)))
    assert.matches("cannot affect row a second time", err.message)
    assert.equal(0, count(fmt("select count(*) from public.broker_values where broker_id in (%s, %s)", lit(b1), lit(b2))))
  end)

  it("refuses a batch without a scope", function()
    h.refuses("23514", fmt("select * from public.bulk_upsert_broker_values(%s)", lit(pairs_json({ { new_broker(), "1" } }))))
  end)
end)

describe("volatility of the broker functions", function()
  it("is STABLE for the three reads and VOLATILE for the two upserts, as in the seed", function()
    assert.same({
      { proname = "bulk_upsert_broker_values", provolatile = "v" },
      { proname = "get_broker_values_for_context", provolatile = "s" },
      { proname = "get_complete_broker_data_for_context", provolatile = "s" },
      { proname = "get_missing_broker_ids", provolatile = "s" },
      { proname = "upsert_broker_value", provolatile = "v" },
    }, h.query([[select proname, provolatile from pg_proc
      where pronamespace = 'public'::regnamespace and proname in ('get_broker_values_for_context',
        'get_missing_broker_ids', 'get_complete_broker_data_for_context', 'upsert_broker_value',
        'bulk_upsert_broker_values')
      order by proname]]))
  end)
end)
