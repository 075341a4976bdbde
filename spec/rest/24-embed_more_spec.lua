-- Resource embedding as PostgREST 12/13 answers it, on fixtures shaped as
-- PostgREST's own (test/spec/fixtures: clients and projects, entities and
-- their children, users and tasks through a junction):
-- * null filtering on embedded resources (RelatedQueriesSpec.hs, "related
--   conditions through null operator on embed"): `embed=is.null` and
--   `embed=not.is.null`, by name or alias, nested, inside or=;
-- * !inner and !left on every embed shape (EmbedInnerJoinSpec.hs);
-- * to-many spreads (SpreadQueriesSpec.hs, PostgREST 13): each column an
--   array of the embedded rows' values, [] for none;
-- * computed relationships (ComputedRelsSpec.hs): functions taking a
--   table's row and returning rows of another, embedded by their name.
local cjson = require("cjson")
local h = require("helpers")
local R = require("fixtures.rest")

local DROP = [[
drop view if exists public.em_user_tags;
drop schema if exists em_private cascade;
drop function if exists public.em_computed_clients(public.em_projects), public.em_client_projects(public.em_clients),
  public.em_first_project(public.em_clients);
drop table if exists public.em_users_tasks, public.em_users, public.em_tasks, public.em_grandchild_entities,
  public.em_child_entities, public.em_entities, public.em_projects, public.em_clients, public.em_tags cascade;
]]

local FIXTURES = DROP .. [[
create table public.em_clients (id int primary key, name text not null);
create table public.em_projects (id int primary key, name text not null, client_id int references public.em_clients(id));
insert into public.em_clients values (1, 'Microsoft'), (2, 'Apple'), (3, 'Unused');
insert into public.em_projects values (1, 'Windows 7', 1), (2, 'Windows 10', 1), (3, 'IOS', 2), (4, 'OSX', 2),
  (5, 'Orphan', null);
create table public.em_entities (id int primary key, name text);
create table public.em_child_entities (id int primary key, name text, parent_id int references public.em_entities(id));
create table public.em_grandchild_entities (id int primary key, name text,
  parent_id int references public.em_child_entities(id));
insert into public.em_entities values (1, 'entity 1'), (2, 'entity 2'), (3, 'entity 3'), (4, null);
insert into public.em_child_entities values (1, 'child entity 1', 1), (2, 'child entity 2', 1), (3, 'child entity 3', 2);
insert into public.em_grandchild_entities values (1, 'grandchild entity 1', 1), (2, 'grandchild entity 2', 2);
create table public.em_users (id int primary key, name text not null);
create table public.em_tasks (id int primary key, name text not null);
create table public.em_users_tasks (user_id int references public.em_users(id), task_id int references public.em_tasks(id),
  primary key (user_id, task_id));
insert into public.em_users values (1, 'Angela Martin'), (2, 'Michael Scott'), (3, 'Dwight Schrute');
insert into public.em_tasks values (1, 'Design'), (2, 'Code');
insert into public.em_users_tasks values (1, 1), (3, 1), (2, 2);
-- A view as the junction: its table sits in a schema the API does not expose.
create schema em_private;
create table public.em_tags (id int primary key, name text not null);
create table em_private.user_tags (user_id int references public.em_users(id), tag_id int references public.em_tags(id),
  primary key (user_id, tag_id));
create view public.em_user_tags as select user_id, tag_id from em_private.user_tags;
insert into public.em_tags values (1, 'red'), (2, 'blue');
insert into em_private.user_tags values (1, 1), (1, 2), (3, 2);
create function public.em_computed_clients(public.em_projects) returns setof public.em_clients rows 1
  language sql stable as $$ select * from public.em_clients where id = $1.client_id $$;
create function public.em_client_projects(public.em_clients) returns setof public.em_projects
  language sql stable as $$ select * from public.em_projects where client_id = $1.id $$;
create function public.em_first_project(public.em_clients) returns public.em_projects
  language sql stable as $$ select * from public.em_projects where client_id = $1.id order by id limit 1 $$;
]]

local null = cjson.null

describe("REST embedding as PostgREST 12/13 #server", function()
  setup(function() R.setup({ sql = FIXTURES }) end)
  teardown(function()
    R.teardown()
    h.exec(DROP)
  end)

  local function get(path, query, headers)
    local code, doc, hdrs, raw = R.call("GET", path, { query = query, headers = headers })
    assert.equal(200, code, raw)
    return doc, hdrs
  end

  describe("null filtering on embedded resources", function()
    it("works on a many-to-one relationship", function()
      assert.same({ { name = "Windows 7" }, { name = "Windows 10" }, { name = "IOS" }, { name = "OSX" } },
        get("em_projects", { { "select", "name,em_clients()" }, { "em_clients", "not.is.null" }, { "order", "id" } }))
      assert.same({ { name = "Orphan" } },
        get("em_projects", { { "select", "name,em_clients()" }, { "em_clients", "is.null" } }))
    end)

    it("works on a one-to-many relationship, by name or alias", function()
      assert.same({ { name = "entity 1" }, { name = "entity 2" } }, get("em_entities", { { "select", "name,em_child_entities()" },
        { "em_child_entities", "not.is.null" }, { "order", "id" } }))
      assert.same({ { name = "entity 3" }, { name = null } }, get("em_entities", { { "select", "name,em_child_entities()" },
        { "em_child_entities", "is.null" }, { "order", "id" } }))
      assert.same({ { name = "entity 3" }, { name = null } }, get("em_entities", { { "select", "name,childs:em_child_entities()" },
        { "childs", "is.null" }, { "order", "id" } }))
    end)

    it("works on a many-to-many relationship, after the embed's own filters", function()
      assert.same({ { name = "Angela Martin" }, { name = "Dwight Schrute" } }, get("em_users", { { "select", "name,em_tasks()" },
        { "em_tasks.id", "eq.1" }, { "em_tasks", "not.is.null" }, { "order", "id" } }))
      assert.same({ { name = "Michael Scott" } }, get("em_users", { { "select", "name,em_tasks()" },
        { "em_tasks.id", "eq.1" }, { "em_tasks", "is.null" } }))
    end)

    it("works on nested embeds", function()
      assert.same({ { name = "entity 1", em_child_entities = { { name = "child entity 1" }, { name = "child entity 2" } } } },
        get("em_entities", { { "select", "name,em_child_entities(name,em_grandchild_entities())" },
          { "em_child_entities.em_grandchild_entities", "not.is.null" }, { "em_child_entities", "not.is.null" },
          { "em_child_entities.order", "id" } }))
    end)

    it("can do an or across embeds, and counts what it keeps", function()
      local doc, hdrs = get("em_projects", { { "select", "name,em_clients(name)" }, { "em_clients.name", "eq.Apple" },
        { "or", "(em_clients.not.is.null,name.eq.Orphan)" }, { "order", "id" } }, { Prefer = "count=exact" })
      assert.same({ { name = "IOS", em_clients = { name = "Apple" } }, { name = "OSX", em_clients = { name = "Apple" } },
        { name = "Orphan", em_clients = null } }, doc)
      assert.equal("0-2/3", hdrs["content-range"])
    end)

    it("doesn't interfere with filtering on a column (other operators, or a column the embed is named by)", function()
      assert.same({ { name = "IOS", client_id = 2, client = { name = "Apple" } }, { name = "OSX", client_id = 2,
        client = { name = "Apple" } } }, get("em_projects", { { "select", "name,client_id,client:client_id(name)" },
        { "client_id", "eq.2" }, { "order", "id" } }))
      local code, doc = R.call("GET", "em_projects", { query = { { "select", "name,em_clients()" },
        { "em_clients", "eq.1" } } })
      assert.equal(400, code)
      assert.equal("42703", doc.code)
    end)
  end)

  describe("!inner and !left", function()
    it("on a many-to-one embed", function()
      assert.same({ "IOS", "OSX", "Windows 10", "Windows 7" }, (function(rows)
        local out = {}
        for i, r in ipairs(rows) do out[i] = r.name end
        table.sort(out)
        return out
      end)(get("em_projects", { { "select", "name,em_clients!inner(name)" } })))
      assert.same({ name = "Orphan", em_clients = null }, get("em_projects", { { "select", "name,em_clients!left(name)" },
        { "order", "id" } })[5])
    end)

    it("on a one-to-many embed", function()
      assert.same({ { name = "Microsoft", em_projects = { { id = 1 }, { id = 2 } } }, { name = "Apple",
        em_projects = { { id = 3 }, { id = 4 } } } }, get("em_clients", { { "select", "name,em_projects!inner(id)" },
        { "order", "id" }, { "em_projects.order", "id" } }))
      assert.same({ name = "Unused", em_projects = {} }, get("em_clients", { { "select", "name,em_projects!left(id)" },
        { "order", "id" } })[3])
    end)

    it("on a many-to-many embed, with a hint too", function()
      assert.same({ { name = "Angela Martin", em_tasks = { { name = "Design" } } }, { name = "Dwight Schrute",
        em_tasks = { { name = "Design" } } } }, get("em_users", { { "select", "name,em_tasks!inner(name)" },
        { "em_tasks.id", "eq.1" }, { "order", "id" } }))
      assert.same({ { name = "Angela Martin", em_tasks = { { name = "Design" } } }, { name = "Michael Scott", em_tasks = {} },
        { name = "Dwight Schrute", em_tasks = { { name = "Design" } } } }, get("em_users", {
        { "select", "name,em_tasks!em_users_tasks!left(name)" }, { "em_tasks.id", "eq.1" }, { "order", "id" } }))
    end)

    it("nested: an inner grandchild keeps only the children, then the parents, that have one", function()
      assert.same({ { name = "entity 1", em_child_entities = { { name = "child entity 1",
        em_grandchild_entities = { { name = "grandchild entity 1" } } }, { name = "child entity 2",
        em_grandchild_entities = { { name = "grandchild entity 2" } } } } } }, get("em_entities", {
        { "select", "name,em_child_entities!inner(name,em_grandchild_entities!inner(name))" },
        { "em_child_entities.order", "id" } }))
      assert.equal(4, #get("em_entities", { { "select", "name,em_child_entities!left(name,em_grandchild_entities!left(name))" } }))
    end)
  end)

  describe("to-many spreads", function()
    it("answer each column as the array of the embedded rows' values, in their order, [] for none", function()
      assert.same({ { client = "Microsoft", name = { "Windows 7", "Windows 10" } }, { client = "Apple", name = { "IOS", "OSX" } },
        { client = "Unused", name = {} } }, get("em_clients", { { "select", "client:name,...em_projects(name)" },
        { "order", "id" }, { "em_projects.order", "id" } }))
      assert.same({ { client = "Microsoft", id = { 2, 1 }, name = { "Windows 10", "Windows 7" }, client_id = { 1, 1 } } },
        get("em_clients", { { "select", "client:name,...em_projects(*)" }, { "id", "eq.1" },
          { "em_projects.order", "name.asc" } }))
    end)

    it("work with !inner and with not.is.null", function()
      local want = { { client = "Microsoft", name = { "Windows 7", "Windows 10" } }, { client = "Apple", name = { "IOS", "OSX" } } }
      assert.same(want, get("em_clients", { { "select", "client:name,...em_projects!inner(name)" }, { "order", "id" },
        { "em_projects.order", "id" } }))
      assert.same(want, get("em_clients", { { "select", "client:name,...em_projects(name)" }, { "em_projects", "not.is.null" },
        { "order", "id" }, { "em_projects.order", "id" } }))
    end)

    it("show a nested to-many embed as an array of arrays, and spread a nested to-one", function()
      assert.same({
        { entity = "entity 1", child = { "child entity 1", "child entity 2" },
          em_grandchild_entities = { { { name = "grandchild entity 1" } }, { { name = "grandchild entity 2" } } } },
        { entity = "entity 2", child = { "child entity 3" }, em_grandchild_entities = { {} } },
        { entity = "entity 3", child = {}, em_grandchild_entities = {} },
      }, get("em_entities", { { "select", "entity:name,...em_child_entities(child:name,em_grandchild_entities(name))" },
        { "id", "lte.3" }, { "order", "id" }, { "em_child_entities.order", "id" } }))
      assert.same({ { project = "Windows 7", client = "Microsoft" } }, get("em_projects", {
        { "select", "project:name,...em_clients(client:name)" }, { "id", "eq.1" } }))
      assert.same({ { name = "Microsoft", project = { "Windows 7", "Windows 10" }, owner = { "Microsoft", "Microsoft" } } },
        get("em_clients", { { "select", "name,...em_projects(project:name,...em_clients(owner:name))" }, { "id", "eq.1" },
          { "em_projects.order", "id" } }))
    end)
  end)

  describe("computed relationships", function()
    it("embed a function's rows by its name: to-one (ROWS 1 or one row) as an object, SETOF as an array", function()
      assert.same({ { name = "Windows 7", em_computed_clients = { name = "Microsoft" } },
        { name = "Orphan", em_computed_clients = null } }, get("em_projects", {
        { "select", "name,em_computed_clients(name)" }, { "id", "in.(1,5)" }, { "order", "id" } }))
      assert.same({ { name = "Apple", em_client_projects = { { name = "IOS" }, { name = "OSX" } },
        em_first_project = { id = 3 } } }, get("em_clients", {
        { "select", "name,em_client_projects(name),em_first_project(id)" }, { "id", "eq.2" },
        { "em_client_projects.order", "id" } }))
    end)

    it("take filters, !inner and null filtering like any embed", function()
      assert.same({ { name = "Orphan" } }, get("em_projects", { { "select", "name,em_computed_clients()" },
        { "em_computed_clients", "is.null" } }))
      assert.same({ { name = "Microsoft", em_client_projects = { { id = 2 } } } }, get("em_clients", {
        { "select", "name,em_client_projects!inner(id)" }, { "em_client_projects.name", "eq.Windows 10" } }))
    end)

    it("embed in a write's representation too", function()
      local code, doc = R.call("PATCH", "em_projects", { query = { { "id", "eq.3" },
        { "select", "name,em_computed_clients(name)" } }, body = { name = "iOS" },
        headers = { Prefer = "return=representation, tx=rollback" } })
      assert.equal(200, code)
      assert.same({ { name = "iOS", em_computed_clients = { name = "Apple" } } }, doc)
    end)
  end)

  describe("a view as a many-to-many junction", function()
    it("embeds through a view showing its table's primary and foreign keys (PostgREST's view key dependencies)", function()
      assert.same({ { name = "Angela Martin", em_tags = { { name = "red" }, { name = "blue" } } },
        { name = "Michael Scott", em_tags = {} }, { name = "Dwight Schrute", em_tags = { { name = "blue" } } } },
        get("em_users", { { "select", "name,em_tags(name)" }, { "order", "id" }, { "em_tags.order", "id" } }))
      assert.same({ { name = "blue", em_users = { { name = "Angela Martin" }, { name = "Dwight Schrute" } } } },
        get("em_tags", { { "select", "name,em_users!em_user_tags(name)" }, { "id", "eq.2" }, { "em_users.order", "id" } }))
    end)
  end)
end)
