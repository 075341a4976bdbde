-- /rest/v1 end to end against a running strata: reads (select, every filter
-- operator, logic trees, order, pages, counts, single objects), writes
-- (insert, upsert, update, delete, all-or-nothing), profiles, errors with
-- PostgREST's codes and statuses, RPC (native and SQL, table and scalar
-- functions, GET for stable ones), auth and CORS.
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")

local SECRET = "rest-spec-secret-0123456789"
local SINGLE = "application/vnd.pgrst.object+json"

-- A permissive policy for the fixture table; rest_spec_secret has none.
local POLICY = [[
return {
  select = function() return true end,
  insert = function() return true end,
  update = function() return true end,
  delete = function() return true end,
}
]]

-- Owners see and change their rows; new rows start as drafts.
local OWNED_POLICY = [[
local function me(ctx) return ctx.role == "authenticated" and ctx.uid or nil end
return {
  select = function(ctx) return me(ctx) and { owner = me(ctx) } or false end,
  insert = function(ctx) return me(ctx) and { owner = me(ctx), status = "draft" } or false end,
  update = function(ctx) return me(ctx) and { owner = me(ctx) } or false end,
  delete = function(ctx) return me(ctx) and { owner = me(ctx) } or false end,
}
]]

local FIXTURES = [[
drop table if exists public.rest_spec_children, public.rest_spec_items, public.rest_spec_secret,
  public.rest_spec_owned, orchestrator.rest_spec_things, agentflow.rest_spec_things cascade;
drop function if exists public.rest_spec_add(int, int), public.rest_spec_items_over(int), public.rest_spec_bump(text),
  public.rest_spec_pick(int), public.rest_spec_pick(text), public.rest_spec_fail(text), orchestrator.rest_spec_hello();
create table public.rest_spec_items (
  id serial primary key,
  name text not null unique,
  qty int check (qty is null or qty >= 0),
  tags text[],
  meta jsonb,
  body text,
  created_at timestamptz default now()
);
create table public.rest_spec_children (
  id serial primary key,
  item_id int not null references public.rest_spec_items(id) on delete cascade,
  label text
);
create table public.rest_spec_secret (id serial primary key, v text);
insert into public.rest_spec_secret(v) values ('hidden');
create table public.rest_spec_owned (
  id serial primary key,
  owner text not null,
  title text unique,
  status text not null default 'draft'
);
create table orchestrator.rest_spec_things (id serial primary key, label text not null);
create table agentflow.rest_spec_things (id serial primary key, label text not null);
insert into orchestrator.rest_spec_things(label) values ('from orchestrator');
insert into agentflow.rest_spec_things(label) values ('from agentflow');
create function public.rest_spec_add(a int, b int default 1) returns int
  language sql immutable as $$ select a + b $$;
create function public.rest_spec_items_over(min_qty int) returns setof public.rest_spec_items
  language sql stable as $$ select * from public.rest_spec_items where qty >= min_qty $$;
create function public.rest_spec_bump(p_name text) returns int
  language sql volatile as $$ update public.rest_spec_items set qty = qty + 1 where name = p_name returning qty $$;
create function public.rest_spec_pick(x int) returns text language sql stable as $$ select 'int' $$;
create function public.rest_spec_pick(x text) returns text language sql stable as $$ select 'text' $$;
create function public.rest_spec_fail(msg text) returns void language plpgsql as $$
begin
  raise exception '%', msg using detail = 'the detail', hint = 'the hint';
end $$;
create function orchestrator.rest_spec_hello() returns text language sql stable as $$ select 'orchestrator' $$;
]]

local DROP = [[
drop table if exists public.rest_spec_children, public.rest_spec_items, public.rest_spec_secret,
  public.rest_spec_owned, orchestrator.rest_spec_things, agentflow.rest_spec_things cascade;
drop function if exists public.rest_spec_add(int, int), public.rest_spec_items_over(int), public.rest_spec_bump(text),
  public.rest_spec_pick(int), public.rest_spec_pick(text), public.rest_spec_fail(text), orchestrator.rest_spec_hello();
]]

-- Five known rows, ids 1..5, before each test that reads or writes them.
local ROWS = [[
truncate public.rest_spec_items restart identity cascade;
insert into public.rest_spec_items(name, qty, tags, meta, body) values
  ('apple', 3, '{fruit,red}', '{"color":"red","size":{"w":2}}', 'the quick red apple'),
  ('banana', null, '{fruit,yellow}', '{"color":"yellow"}', 'a yellow banana bunch'),
  ('carrot, "orange" (v.)', 7, '{veg,orange}', null, 'crunchy orange carrots'),
  ('date', 10, '{fruit}', '{"color":"brown","size":{"w":1}}', 'sweet dates'),
  ('éclair ✓', 0, '{}', '{"color":"brown"}', null);
]]

local function reset()
  h.accepts(ROWS)
end

local function mint(args) return srv.token(SECRET, args) end

local SERVICE, USER

local function start(env)
  local dir = srv.lua_dir({})
  -- Only this spec's policies: a table without a policy file is service_role's.
  assert(os.execute("rm -rf " .. srv.quote(dir .. "/policies")))
  srv.write(dir .. "/policies/public/rest_spec_items.lua", POLICY)
  srv.write(dir .. "/policies/public/rest_spec_children.lua", POLICY)
  srv.write(dir .. "/policies/public/rest_spec_owned.lua", OWNED_POLICY)
  env = env or {}
  env.STRATA_LUA_DIR = dir
  env.STRATA_JWT_SECRET = SECRET
  env.STRATA_ACCESS_LOG = "off"
  local s = srv.start(env)
  assert.equal(200, (srv.await(s.port, "/ready", 200, 20)), s.log())
  local cleanup = s.cleanup
  s.cleanup = function() cleanup(); os.execute("rm -rf " .. srv.quote(dir)) end
  return s
end

local function encode(s)
  return (tostring(s):gsub("[^%w_%.~%-]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- "path?k=v&..." from a list of { key, value } pairs, every part percent-encoded.
local function url(path, query)
  if not query or #query == 0 then return path end
  local out = {}
  for i, kv in ipairs(query) do out[i] = encode(kv[1]) .. "=" .. encode(kv[2]) end
  return path .. "?" .. table.concat(out, "&")
end

local server

-- One request: opts.query (pairs), opts.body (table -> JSON, or string),
-- opts.headers, opts.token (default the service_role token; false for none).
-- Returns status, decoded body (nil when empty), headers, raw body.
local function call(method, path, opts, s)
  opts = opts or {}
  local headers = {}
  for k, v in pairs(opts.headers or {}) do headers[k] = v end
  local tok = opts.token
  if tok == nil then tok = SERVICE end
  if tok then headers.Authorization = "Bearer " .. tok end
  if opts.body then headers["Content-Type"] = headers["Content-Type"] or "application/json" end
  return srv.rest((s or server).port, method, url("/rest/v1/" .. path, opts.query), opts.body, headers)
end

local function get(path, query, headers, tok)
  return call("GET", path, { query = query, headers = headers, token = tok })
end

-- The ids a GET on rest_spec_items answers for the filters (ordered by id).
local function ids(query)
  local q, ordered = { { "select", "id" } }, false
  for _, kv in ipairs(query) do
    q[#q + 1] = kv
    ordered = ordered or kv[1] == "order"
  end
  if not ordered then q[#q + 1] = { "order", "id" } end
  local code, doc = get("rest_spec_items", q)
  assert.equal(200, code, cjson.encode(doc))
  local out = {}
  for i, r in ipairs(doc) do out[i] = r.id end
  return out
end

local function count_rows(where)
  return tonumber(h.scalar("select count(*) from public.rest_spec_items" .. (where and (" where " .. where) or "")))
end

local function is_error(status, code, doc, hdrs)
  assert.is_table(doc, "an error body")
  assert.equal(code, doc.code, cjson.encode(doc))
  for _, k in ipairs({ "message", "details", "hint" }) do
    assert.is_not_nil(doc[k], "error bodies always carry " .. k)
  end
  return doc
end

describe("REST API #server", function()
  local brokers, org

  setup(function()
    SERVICE = mint("--role service_role")
    USER = mint("--role authenticated --sub " .. h.uuid())
    h.accepts(FIXTURES)
    reset()
    -- Broker fixtures for the RPC specs: an organization, three brokers,
    -- a global value and two organization values.
    org = h.uuid()
    brokers = { h.uuid(), h.uuid(), h.uuid() }
    h.accepts(([[
      insert into organizations(id, name, slug) values (%s, 'rest spec', %s);
      insert into data_broker(id, name, default_value) values (%s, 'rest b1', 'd1'), (%s, 'rest b2', null), (%s, 'rest b3', null);
      insert into broker_values(broker_id, is_global, value) values (%s, true, '"global one"');
      insert into broker_values(broker_id, organization_id, value) values (%s, %s, '{"o":1}'), (%s, %s, '2');
    ]]):format(h.lit(org), h.lit("rest-" .. org), h.lit(brokers[1]), h.lit(brokers[2]), h.lit(brokers[3]),
      h.lit(brokers[1]), h.lit(brokers[1]), h.lit(org), h.lit(brokers[2]), h.lit(org)))
    server = start()
  end)

  teardown(function()
    if server then
      if os.getenv("REST_SPEC_LOG") then io.stderr:write(server.log()) end
      assert.equal(0, server.stop(), server.log())
      server.cleanup()
    end
    h.exec(([[
      delete from broker_values where broker_id in (%s, %s, %s);
      delete from data_broker where id in (%s, %s, %s);
      delete from organizations where id = %s;
    ]]):format(h.lit(brokers[1]), h.lit(brokers[2]), h.lit(brokers[3]),
      h.lit(brokers[1]), h.lit(brokers[2]), h.lit(brokers[3]), h.lit(org)))
    h.exec(DROP)
  end)

  describe("select", function()
    before_each(reset)

    it("answers every column with * and by default, with the SQL types as JSON", function()
      local code, doc, hdrs = get("rest_spec_items", { { "id", "eq.1" } })
      assert.equal(200, code)
      assert.matches("^application/json", hdrs["content-type"])
      assert.equal(1, #doc)
      local r = doc[1]
      assert.equal(1, r.id)
      assert.equal("apple", r.name)
      assert.equal(3, r.qty)
      assert.same({ "fruit", "red" }, r.tags)
      assert.same({ color = "red", size = { w = 2 } }, r.meta)
      assert.is_string(r.created_at)
      local _, star = get("rest_spec_items", { { "select", "*" }, { "id", "eq.1" } })
      assert.same(doc, star)
    end)

    it("answers the columns asked for, aliases, JSON paths and casts", function()
      local code, doc = get("rest_spec_items", { { "select", "id,label:name,meta->color,meta->>color,w:meta->size->>w,qty::text" },
        { "id", "in.(1,3)" }, { "order", "id" } })
      assert.equal(200, code, cjson.encode(doc))
      assert.same({
        { id = 1, label = "apple", color = "red", w = "2", qty = "3" },
        { id = 3, label = 'carrot, "orange" (v.)', color = cjson.null, w = cjson.null, qty = "7" },
      }, doc)
      local _, raw = select(3, get("rest_spec_items", { { "select", "meta->size" }, { "id", "eq.1" } }))
      assert.same({ { size = { w = 2 } } }, cjson.decode(raw))
    end)

    it("embeds related tables (spec/rest/11-embed_spec.lua) and refuses a to-many spread with 400 PGRST119", function()
      local code, doc = get("rest_spec_items", { { "select", "id,rest_spec_children(*)" }, { "id", "eq.1" } })
      assert.equal(200, code, cjson.encode(doc))
      assert.same({ { id = 1, rest_spec_children = {} } }, doc)
      code, doc = get("rest_spec_items", { { "select", "id,...rest_spec_children(*)" } })
      assert.equal(400, code)
      is_error(400, "PGRST119", doc)
      assert.matches("do not form a many-to-one or one-to-one relationship", doc.details, 1, true)
    end)
  end)

  describe("filters", function()
    setup(reset)

    it("eq, neq, gt, gte, lt, lte", function()
      assert.same({ 1 }, ids({ { "name", "eq.apple" } }))
      assert.same({ 2, 3, 4, 5 }, ids({ { "name", "neq.apple" } }))
      assert.same({ 3, 4 }, ids({ { "qty", "gt.3" } }))
      assert.same({ 1, 3, 4 }, ids({ { "qty", "gte.3" } }))
      assert.same({ 5 }, ids({ { "qty", "lt.3" } }))
      assert.same({ 1, 5 }, ids({ { "qty", "lte.3" } }))
    end)

    it("several filters on one column are ANDed", function()
      assert.same({ 1, 3 }, ids({ { "qty", "gte.3" }, { "qty", "lt.10" } }))
      assert.same({ 3 }, ids({ { "qty", "gte.3" }, { "qty", "lt.10" }, { "name", "neq.apple" } }))
    end)

    it("like and ilike with * as the wildcard", function()
      assert.same({ 2, 3 }, ids({ { "name", "like.*an*" } }))
      assert.same({}, ids({ { "name", "like.APP*" } }))
      assert.same({ 1 }, ids({ { "name", "ilike.APP*" } }))
      assert.same({ 2, 3 }, ids({ { "name", "ilike.%AN%" } }))
    end)

    it("in with plain and quoted members (commas, quotes, parentheses, unicode)", function()
      assert.same({ 1, 3 }, ids({ { "id", "in.(1,3)" } }))
      assert.same({ 3, 4 }, ids({ { "name", [[in.("carrot, \"orange\" (v.)",date)]] } }))
      assert.same({ 5 }, ids({ { "name", "in.(éclair ✓,nothing)" } }))
      assert.same({}, ids({ { "id", "in.()" } }))
    end)

    it("values with dots, commas and unicode, quoted or not", function()
      assert.same({ 3 }, ids({ { "name", [[eq."carrot, \"orange\" (v.)"]] } }))
      assert.same({ 3 }, ids({ { "name", [[eq.carrot, "orange" (v.)]] } }))
      assert.same({ 5 }, ids({ { "name", "eq.éclair ✓" } }))
    end)

    it("is null / true / false", function()
      assert.same({ 2 }, ids({ { "qty", "is.null" } }))
      assert.same({ 3 }, ids({ { "meta", "is.null" } }))
      assert.same({ 1, 2, 3, 4 }, ids({ { "body", "not.is.null" } }))
    end)

    -- (Words whose English stem is themselves: a text column is read with the
    -- database's default configuration, the language applies to the query.)
    it("full text: fts, plfts, phfts, wfts, with and without a language", function()
      assert.same({ 1 }, ids({ { "body", "fts.apple" } }))
      assert.same({ 1, 2 }, ids({ { "body", "fts.apple | banana" } }))
      assert.same({ 1 }, ids({ { "body", "fts(english).quick" } }))
      assert.same({ 2 }, ids({ { "body", "plfts(english).yellow bunch" } }))
      assert.same({ 2 }, ids({ { "body", "phfts(english).yellow banana" } }))
      assert.same({}, ids({ { "body", "phfts(english).banana yellow" } }))
      assert.same({ 1, 4 }, ids({ { "body", "wfts(english).quick or sweet" } }))
      assert.same({ 1 }, ids({ { "body", "wfts.red -banana" } }))
    end)

    it("cs and cd on arrays and jsonb", function()
      assert.same({ 1, 2, 4 }, ids({ { "tags", "cs.{fruit}" } }))
      assert.same({ 1 }, ids({ { "tags", "cs.{fruit,red}" } }))
      assert.same({ 1, 2, 4, 5 }, ids({ { "tags", "cd.{fruit,red,yellow}" } }))
      assert.same({ 4, 5 }, ids({ { "meta", 'cs.{"color":"brown"}' } }))
      assert.same({ 5 }, ids({ { "meta", 'cd.{"color":"brown","x":1}' } }))
    end)

    it("filters on JSON paths", function()
      assert.same({ 4, 5 }, ids({ { "meta->>color", "eq.brown" } }))
      assert.same({ 1 }, ids({ { "meta->size->>w", "eq.2" } }))
      assert.same({ 1, 4 }, ids({ { "meta->size", "not.is.null" } }))
      assert.same({ 1, 2 }, ids({ { "meta->>color", "in.(red,yellow)" } }))
    end)

    it("negates any operator with not.", function()
      assert.same({ 1, 3, 4, 5 }, ids({ { "qty", "not.is.null" } }))
      assert.same({ 3, 4, 5 }, ids({ { "name", "not.in.(apple,banana)" } }))
      assert.same({ 1, 4, 5 }, ids({ { "name", "not.like.*an*" } }))
      assert.same({ 1, 5 }, ids({ { "qty", "not.gt.3" } }))
      assert.same({ 2, 3, 4 }, ids({ { "body", "not.fts.apple" } }))
      assert.same({ 3, 5 }, ids({ { "tags", "not.cs.{fruit}" } }))
    end)

    it("or=, and=, nested, negated, with quoted values", function()
      assert.same({ 2, 3, 4 }, ids({ { "or", "(qty.gt.5,qty.is.null)" } }))
      assert.same({ 1, 4 }, ids({ { "and", "(qty.gte.3,or(name.eq.apple,name.eq.date))" } }))
      assert.same({ 1, 5 }, ids({ { "not.or", "(qty.is.null,qty.gt.5)" } }))
      assert.same({ 3, 4, 5 }, ids({ { "not.and", "(qty.gte.3,qty.lte.5)" } }), "NOT of NULL is NULL: banana stays out")
      assert.same({ 2, 3 }, ids({ { "or", [[(name.eq."carrot, \"orange\" (v.)",and(qty.is.null,not.or(name.eq.x,tags.cs.{veg})))]] } }))
      assert.same({ 3 }, ids({ { "or", "(qty.gt.5,qty.is.null)" }, { "name", "like.c*" } }))
      assert.same({ 4, 5 }, ids({ { "or", "(meta->>color.eq.brown,body.fts(english).nothing)" } }))
    end)
  end)

  describe("order, limit, offset, Range, counts", function()
    setup(reset)

    it("orders by several columns with directions and nulls placement", function()
      assert.same({ 4, 3, 1, 5, 2 }, ids({ { "order", "qty.desc.nullslast,name" } }))
      assert.same({ 2, 5, 1, 3, 4 }, ids({ { "order", "qty.asc.nullsfirst" } }))
      assert.same({ 2, 4, 3, 1, 5 }, ids({ { "order", "qty.desc" } }))
      assert.same({ 5, 4, 1, 2, 3 }, ids({ { "order", "meta->>color.asc,id.desc" } }))
    end)

    it("pages with limit and offset", function()
      assert.same({ 2, 3 }, ids({ { "limit", "2" }, { "offset", "1" } }))
      assert.same({ 5 }, ids({ { "offset", "4" } }))
      assert.same({}, ids({ { "limit", "0" } }))
      local code, doc = get("rest_spec_items", { { "limit", "-1" } })
      assert.equal(400, code)
      is_error(400, "PGRST100", doc)
      assert.matches("limit", doc.message)
    end)

    it("pages with the Range header", function()
      local code, doc, hdrs = get("rest_spec_items", { { "select", "id" }, { "order", "id" } }, { Range = "1-2" })
      assert.equal(200, code)
      assert.same({ { id = 2 }, { id = 3 } }, doc)
      assert.equal("1-2/*", hdrs["content-range"])
      code, doc = get("rest_spec_items", { { "select", "id" }, { "order", "id" } }, { Range = "3-" })
      assert.same({ { id = 4 }, { id = 5 } }, doc)
    end)

    it("counts with Prefer: count=exact: 200 for all rows, 206 for a part, 416 past the end", function()
      local code, doc, hdrs = get("rest_spec_items", { { "select", "id" } }, { Prefer = "count=exact" })
      assert.equal(200, code)
      assert.equal(5, #doc)
      assert.equal("0-4/5", hdrs["content-range"])
      assert.equal("count=exact", hdrs["preference-applied"])
      code, doc, hdrs = get("rest_spec_items", { { "select", "id" }, { "order", "id" }, { "limit", "2" } }, { Prefer = "count=exact" })
      assert.equal(206, code)
      assert.same({ { id = 1 }, { id = 2 } }, doc)
      assert.equal("0-1/5", hdrs["content-range"])
      code, doc, hdrs = get("rest_spec_items", { { "select", "id" }, { "order", "id" } },
        { Prefer = "count=exact", Range = "2-3" })
      assert.equal(206, code)
      assert.equal("2-3/5", hdrs["content-range"])
      code, doc, hdrs = get("rest_spec_items", { { "select", "id" }, { "qty", "gt.3" } }, { Prefer = "count=exact" })
      assert.equal(200, code)
      assert.equal("0-1/2", hdrs["content-range"], "the count follows the filters")
      code, doc, hdrs = get("rest_spec_items", { { "offset", "5" } }, { Prefer = "count=exact" })
      assert.equal(206, code, "an offset at the end is an empty page")
      assert.same({}, doc)
      assert.equal("*/5", hdrs["content-range"])
      code, doc, hdrs = get("rest_spec_items", { { "offset", "6" } }, { Prefer = "count=exact" })
      assert.equal(416, code)
      is_error(416, "PGRST103", doc)
      assert.equal("An offset of 6 was requested, but there are only 5 rows.", doc.details)
      assert.equal("*/5", hdrs["content-range"])
    end)

    it("answers HEAD with the count and no body", function()
      -- Raw HTTP: a HEAD answer announces a Content-Length it does not send.
      local c = srv.connect(server.port)
      assert(c:send("HEAD /rest/v1/rest_spec_items?qty=gte.3 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " .. SERVICE
        .. "\r\nPrefer: count=exact\r\nConnection: close\r\n\r\n"))
      local status = tonumber(assert(c:receive("*l")):match("^HTTP/1%.1 (%d+)"))
      local hdrs = {}
      while true do
        local line = assert(c:receive("*l"))
        if line == "" then break end
        local k, v = line:match("^([^:]+):%s*(.*)$")
        hdrs[k:lower()] = v
      end
      local rest, _, partial = c:receive("*a")
      rest = rest or partial
      c:close()
      assert.equal(200, status)
      assert.equal("0-2/3", hdrs["content-range"])
      assert.equal("", rest)
    end)

    it("without a count, Content-Range names the page only", function()
      local code, _, hdrs = get("rest_spec_items", { { "limit", "2" } })
      assert.equal(200, code)
      assert.equal("0-1/*", hdrs["content-range"])
    end)
  end)

  describe("single object (Accept: application/vnd.pgrst.object+json)", function()
    setup(reset)

    it("answers the one row as an object", function()
      local code, doc = get("rest_spec_items", { { "select", "id,name" }, { "id", "eq.4" } }, { Accept = SINGLE })
      assert.equal(200, code)
      assert.same({ id = 4, name = "date" }, doc)
    end)

    it("answers 406 PGRST116 for no row and for several rows", function()
      local code, doc = get("rest_spec_items", { { "id", "eq.999" } }, { Accept = SINGLE })
      assert.equal(406, code)
      is_error(406, "PGRST116", doc)
      assert.equal("Cannot coerce the result to a single JSON object", doc.message)
      assert.equal("The result contains 0 rows", doc.details)
      code, doc = get("rest_spec_items", { { "qty", "gte.3" } }, { Accept = SINGLE })
      assert.equal(406, code)
      assert.equal("PGRST116", doc.code)
      assert.equal("The result contains 3 rows", doc.details)
    end)
  end)

  describe("POST", function()
    before_each(reset)

    it("inserts one object; return=representation answers it with 201 and Preference-Applied", function()
      local code, doc, hdrs = call("POST", "rest_spec_items", { body = { name = "fig", qty = 4, tags = { "a,b", 'c"d' }, meta = { k = { 1, 2 } } },
        headers = { Prefer = "return=representation" } })
      assert.equal(201, code, cjson.encode(doc))
      assert.equal("return=representation", hdrs["preference-applied"])
      assert.equal(1, #doc)
      assert.equal("fig", doc[1].name)
      assert.same({ "a,b", 'c"d' }, doc[1].tags)
      assert.same({ k = { 1, 2 } }, doc[1].meta)
      assert.equal(6, doc[1].id)
      assert.equal(1, count_rows("name = 'fig' and qty = 4"))
    end)

    it("inserts an array, answering the columns of select=", function()
      local code, doc = call("POST", "rest_spec_items", { query = { { "select", "name,qty" } },
        body = { { name = "fig", qty = 1 }, { name = "grape", qty = 2 } }, headers = { Prefer = "return=representation" } })
      assert.equal(201, code, cjson.encode(doc))
      assert.same({ { name = "fig", qty = 1 }, { name = "grape", qty = 2 } }, doc)
      assert.equal(7, count_rows())
    end)

    it("inserts only the columns of columns=, plain or quoted as postgrest-js sends them", function()
      local code = call("POST", "rest_spec_items", { query = { { "columns", "name,qty" } },
        body = { { name = "fig", qty = 1, body = "ignored" }, { name = "grape", qty = 2, body = "ignored" } } })
      assert.equal(201, code)
      assert.equal(2, count_rows("name in ('fig', 'grape') and body is null"))
      code = call("POST", "rest_spec_items", { query = { { "columns", '"name","body"' } },
        body = { { name = "kiwi", qty = 9, body = "kept" } } })
      assert.equal(201, code)
      assert.equal(1, count_rows("name = 'kiwi' and qty is null and body = 'kept'"))
    end)

    it("return=minimal and no preference answer 201 without a body", function()
      local code, doc, hdrs = call("POST", "rest_spec_items", { body = { name = "fig" }, headers = { Prefer = "return=minimal" } })
      assert.equal(201, code)
      assert.is_nil(doc)
      assert.equal("return=minimal", hdrs["preference-applied"])
      code, doc = call("POST", "rest_spec_items", { body = { name = "grape" } })
      assert.equal(201, code)
      assert.is_nil(doc)
      assert.equal(2, count_rows("name in ('fig', 'grape')"))
    end)

    it("answers a single object with Accept: vnd.pgrst.object+json", function()
      local code, doc = call("POST", "rest_spec_items", { query = { { "select", "name" } }, body = { name = "fig" },
        headers = { Prefer = "return=representation", Accept = SINGLE } })
      assert.equal(201, code)
      assert.same({ name = "fig" }, doc)
    end)

    it("upserts with on_conflict and resolution=merge-duplicates", function()
      local code, doc, hdrs = call("POST", "rest_spec_items", { query = { { "on_conflict", "name" }, { "select", "id,name,qty" } },
        body = { { name = "apple", qty = 30 }, { name = "fig", qty = 1 } },
        headers = { Prefer = "return=representation,resolution=merge-duplicates" } })
      assert.equal(201, code, cjson.encode(doc))
      assert.same({ { id = 1, name = "apple", qty = 30 }, { id = doc[2].id, name = "fig", qty = 1 } }, doc)
      assert.matches("resolution=merge%-duplicates", hdrs["preference-applied"])
      assert.equal(1, count_rows("id = 1 and qty = 30 and body = 'the quick red apple'"), "only the sent columns change")
      assert.equal(6, count_rows())
    end)

    it("upserts on the primary key without on_conflict", function()
      local code = call("POST", "rest_spec_items", { body = { id = 2, name = "banana", qty = 5 },
        headers = { Prefer = "resolution=merge-duplicates" } })
      assert.equal(201, code)
      assert.equal(1, count_rows("id = 2 and qty = 5"))
      assert.equal(5, count_rows())
    end)

    it("skips existing rows with resolution=ignore-duplicates", function()
      local code, doc, hdrs = call("POST", "rest_spec_items", { query = { { "on_conflict", "name" }, { "select", "name,qty" } },
        body = { { name = "apple", qty = 99 }, { name = "grape", qty = 2 } },
        headers = { Prefer = "return=representation, resolution=ignore-duplicates" } })
      assert.equal(201, code, cjson.encode(doc))
      assert.same({ { name = "grape", qty = 2 } }, doc)
      assert.matches("resolution=ignore%-duplicates", hdrs["preference-applied"])
      assert.equal(1, count_rows("name = 'apple' and qty = 3"))
    end)

    it("refuses an unknown column in the body (400 PGRST204) and bad JSON", function()
      local code, doc = call("POST", "rest_spec_items", { body = { name = "fig", nope = 1 } })
      assert.equal(400, code)
      is_error(400, "PGRST204", doc)
      assert.matches("'nope'", doc.message)
      code, doc = call("POST", "rest_spec_items", { body = "[1, 2]" })
      assert.equal(400, code)
      assert.equal("PGRST102", doc.code)
      code, doc = call("POST", "rest_spec_items", { query = { { "on_conflict", "nope" } }, body = { name = "fig" } })
      assert.equal(400, code)
      assert.equal("42703", doc.code)
      assert.equal(5, count_rows())
    end)

    it("writes nothing when one row of an array fails (one transaction)", function()
      local code, doc = call("POST", "rest_spec_items", { body = { { name = "fig", qty = 1 }, { name = "grape", qty = -1 } } })
      assert.equal(400, code)
      assert.equal("23514", doc.code)
      assert.equal(0, count_rows("name in ('fig', 'grape')"))
      code, doc = call("POST", "rest_spec_items", { query = { { "on_conflict", "name" } },
        body = { { name = "apple", qty = 50 }, { name = "grape" }, { name = "banana", qty = -5 } },
        headers = { Prefer = "resolution=merge-duplicates" } })
      assert.equal(400, code)
      assert.equal("23514", doc.code)
      assert.equal(1, count_rows("name = 'apple' and qty = 3"), "the merged row is rolled back too")
      assert.equal(5, count_rows())
    end)
  end)

  describe("PATCH and DELETE", function()
    before_each(reset)

    it("PATCH changes the filtered rows; return=representation answers them", function()
      local code, doc, hdrs = call("PATCH", "rest_spec_items", { query = { { "name", "eq.apple" }, { "select", "id,qty" } },
        body = { qty = 4 }, headers = { Prefer = "return=representation" } })
      assert.equal(200, code, cjson.encode(doc))
      assert.same({ { id = 1, qty = 4 } }, doc)
      assert.equal("return=representation", hdrs["preference-applied"])
      code, doc = call("PATCH", "rest_spec_items", { query = { { "or", "(qty.is.null,qty.eq.0)" } }, body = { body = "patched" } })
      assert.equal(204, code)
      assert.is_nil(doc)
      assert.equal(2, count_rows("body = 'patched'"))
      code, doc = call("PATCH", "rest_spec_items", { query = { { "id", "eq.999" } }, body = { qty = 1 },
        headers = { Prefer = "return=representation" } })
      assert.equal(200, code)
      assert.same({}, doc)
    end)

    it("PATCH that breaks a constraint changes nothing", function()
      local code, doc = call("PATCH", "rest_spec_items", { query = { { "qty", "not.is.null" } }, body = { qty = -1 } })
      assert.equal(400, code)
      assert.equal("23514", doc.code)
      assert.equal(0, count_rows("qty < 0"))
    end)

    it("DELETE removes the filtered rows; return=representation answers them", function()
      local code, doc = call("DELETE", "rest_spec_items", { query = { { "qty", "gte.7" }, { "select", "name" } },
        headers = { Prefer = "return=representation" } })
      assert.equal(200, code)
      assert.same({ { name = 'carrot, "orange" (v.)' }, { name = "date" } }, doc)
      code, doc = call("DELETE", "rest_spec_items", { query = { { "name", "eq.apple" } } })
      assert.equal(204, code)
      assert.is_nil(doc)
      code = call("DELETE", "rest_spec_items", { query = { { "not.or", "(qty.is.null,qty.gt.0)" } } })
      assert.equal(204, code)
      assert.equal(1, count_rows())
      assert.equal(1, count_rows("name = 'banana'"))
    end)

    it("refuses PATCH and DELETE without a filter (400 21000), changing nothing", function()
      local code, doc = call("PATCH", "rest_spec_items", { body = { qty = 1 } })
      assert.equal(400, code)
      is_error(400, "21000", doc)
      assert.matches("UPDATE requires a WHERE clause", doc.message)
      code, doc = call("DELETE", "rest_spec_items")
      assert.equal(400, code)
      is_error(400, "21000", doc)
      assert.matches("DELETE requires a WHERE clause", doc.message)
      code, doc = call("DELETE", "rest_spec_items", { query = { { "select", "id" }, { "order", "id" }, { "limit", "1" } } })
      assert.equal(400, code, "select, order and limit are not filters")
      assert.equal("21000", doc.code)
      assert.equal(5, count_rows())
      assert.equal(0, count_rows("qty = 1"))
    end)
  end)

  describe("errors", function()
    setup(reset)

    it("404 PGRST205 for an unknown table", function()
      local code, doc = get("no_such_table")
      assert.equal(404, code)
      is_error(404, "PGRST205", doc)
      assert.equal("Could not find the table 'public.no_such_table' in the schema cache", doc.message)
    end)

    it("400 42703 for an unknown column in a filter, select, order", function()
      for _, q in ipairs({ { { "nope", "eq.1" } }, { { "select", "id,nope" } }, { { "order", "nope.desc" } },
          { { "or", "(id.eq.1,nope.eq.2)" } } }) do
        local code, doc = get("rest_spec_items", q)
        assert.equal(400, code)
        is_error(400, "42703", doc)
        assert.equal("column rest_spec_items.nope does not exist", doc.message)
      end
    end)

    it("400 PGRST100 for a filter, logic tree, select or order that does not parse, naming it", function()
      local code, doc = get("rest_spec_items", { { "qty", "xx.1" } })
      assert.equal(400, code)
      is_error(400, "PGRST100", doc)
      assert.matches("qty=xx.1", doc.message, 1, true)
      assert.matches("unknown operator", doc.details)
      code, doc = get("rest_spec_items", { { "qty", "in.(1,2" } })
      assert.equal(400, code)
      assert.matches("qty=in.(1,2", doc.message, 1, true)
      code, doc = get("rest_spec_items", { { "qty", "is.maybe" } })
      assert.equal(400, code)
      assert.matches("maybe", doc.details)
      code, doc = get("rest_spec_items", { { "or", "(qty.gt.1,name)" } })
      assert.equal(400, code)
      assert.equal("PGRST100", doc.code)
      assert.matches("cannot parse 'name'", doc.details, 1, true)
      code, doc = get("rest_spec_items", { { "order", "qty.sideways" } })
      assert.equal(400, code)
      assert.equal("PGRST100", doc.code)
      assert.matches("sideways", doc.details)
      code, doc = get("rest_spec_items", { { "select", "qty::money" } })
      assert.equal(400, code)
      assert.equal("PGRST100", doc.code)
      assert.matches("money", doc.details)
    end)

    it("maps SQLSTATEs: 23505 and 23503 to 409, 23514 and 23502 to 400, with message, details and hint", function()
      local code, doc = call("POST", "rest_spec_items", { body = { name = "apple" } })
      assert.equal(409, code)
      is_error(409, "23505", doc)
      assert.matches("duplicate key value violates unique constraint", doc.message)
      assert.equal("Key (name)=(apple) already exists.", doc.details)
      assert.equal(cjson.null, doc.hint)
      code, doc = call("POST", "rest_spec_children", { body = { item_id = 999, label = "orphan" } })
      assert.equal(409, code)
      is_error(409, "23503", doc)
      assert.matches("foreign key", doc.message)
      assert.matches("is not present in table", doc.details)
      code, doc = call("POST", "rest_spec_items", { body = { name = "neg", qty = -1 } })
      assert.equal(400, code)
      is_error(400, "23514", doc)
      assert.matches("check constraint", doc.message)
      code, doc = call("POST", "rest_spec_items", { body = { qty = 1 } })
      assert.equal(400, code)
      is_error(400, "23502", doc)
      assert.matches("not%-null", doc.message)
      code, doc = call("POST", "rpc/rest_spec_fail", { body = { msg = "refused by rule" } })
      assert.equal(400, code)
      is_error(400, "P0001", doc)
      assert.same({ code = "P0001", message = "refused by rule", details = "the detail", hint = "the hint" }, doc)
      code, doc = call("POST", "rest_spec_items", { body = { name = "x", qty = "many" } })
      assert.equal(400, code)
      assert.equal("22P02", doc.code)
      assert.equal(5, count_rows())
    end)
  end)

  describe("profiles", function()
    it("reads and writes orchestrator and agentflow tables with Accept-Profile / Content-Profile", function()
      local code, doc = get("rest_spec_things", { { "select", "label" } }, { ["Accept-Profile"] = "orchestrator" })
      assert.equal(200, code, cjson.encode(doc))
      assert.same({ { label = "from orchestrator" } }, doc)
      code, doc = get("rest_spec_things", { { "select", "label" } }, { ["Accept-Profile"] = "agentflow" })
      assert.equal(200, code)
      assert.same({ { label = "from agentflow" } }, doc)
      code, doc = get("rest_spec_things")
      assert.equal(404, code, "public is the default profile")
      assert.equal("Could not find the table 'public.rest_spec_things' in the schema cache", doc.message)
      code, doc = call("POST", "rest_spec_things", { body = { label = "written" }, query = { { "select", "label" } },
        headers = { ["Content-Profile"] = "agentflow", Prefer = "return=representation" } })
      assert.equal(201, code, cjson.encode(doc))
      assert.same({ { label = "written" } }, doc)
      assert.equal("1", h.scalar("select count(*) from agentflow.rest_spec_things where label = 'written'"))
      assert.equal("0", h.scalar("select count(*) from orchestrator.rest_spec_things where label = 'written'"))
      code, doc = call("POST", "rpc/rest_spec_hello", { headers = { ["Content-Profile"] = "orchestrator" } })
      assert.equal(200, code)
      assert.equal("orchestrator", doc)
      code, doc = get("rpc/rest_spec_hello", nil, { ["Accept-Profile"] = "orchestrator" })
      assert.equal(200, code)
      assert.equal("orchestrator", doc)
    end)

    it("answers 406 PGRST106 for an unknown profile", function()
      local code, doc = get("rest_spec_items", nil, { ["Accept-Profile"] = "secret_schema" })
      assert.equal(406, code)
      is_error(406, "PGRST106", doc)
      assert.equal("The schema must be one of the following: public, orchestrator, agentflow", doc.message)
      code, doc = call("POST", "rest_spec_items", { body = { name = "x" }, headers = { ["Content-Profile"] = "auth" } })
      assert.equal(406, code)
      assert.equal("PGRST106", doc.code)
    end)
  end)

  describe("RPC", function()
    setup(reset)

    local function context()
      return { p_broker_ids = brokers, p_organization_id = org }
    end

    it("answers a table function with rows keyed by the SQL column names, equal to SQL", function()
      local code, doc = call("POST", "rpc/get_broker_values_for_context", { body = context() })
      assert.equal(200, code, cjson.encode(doc))
      local byid = {}
      for _, r in ipairs(doc) do byid[r.broker_id] = r end
      assert.equal(2, #doc)
      assert.same({ broker_id = brokers[1], value = { o = 1 }, scope_level = "organization", scope_id = org }, byid[brokers[1]])
      assert.same({ broker_id = brokers[2], value = 2, scope_level = "organization", scope_id = org }, byid[brokers[2]])
      local rows = h.query(("select broker_id, scope_level from get_broker_values_for_context(array[%s, %s, %s]::uuid[], p_organization_id => %s)")
        :format(h.lit(brokers[1]), h.lit(brokers[2]), h.lit(brokers[3]), h.lit(org)))
      assert.equal(#rows, #doc)
      for _, r in ipairs(rows) do assert.equal(r.scope_level, byid[r.broker_id].scope_level) end
    end)

    it("applies select, filters, order and limit to table-function results", function()
      local code, doc = call("POST", "rpc/get_broker_values_for_context", { body = context(),
        query = { { "select", "id:broker_id,scope_level,o:value->o" }, { "order", "broker_id.desc" } } })
      assert.equal(200, code, cjson.encode(doc))
      local expect = {
        { id = brokers[1], scope_level = "organization", o = 1 },
        { id = brokers[2], scope_level = "organization", o = cjson.null },
      }
      if brokers[1] < brokers[2] then expect = { expect[2], expect[1] } end
      assert.same(expect, doc)
      code, doc = call("POST", "rpc/get_broker_values_for_context", { body = context(),
        query = { { "broker_id", "eq." .. brokers[2] }, { "select", "broker_id" } } })
      assert.equal(200, code)
      assert.same({ { broker_id = brokers[2] } }, doc)
      code, doc = call("POST", "rpc/get_broker_values_for_context", { body = context(),
        query = { { "select", "broker_id" }, { "order", "broker_id" }, { "limit", "1" } } })
      assert.equal(200, code)
      assert.equal(1, #doc)
      code, doc = call("POST", "rpc/get_broker_values_for_context", { body = context(),
        query = { { "nope", "eq.1" } } })
      assert.equal(400, code)
      assert.equal("42703", doc.code)
      code, doc = call("POST", "rpc/get_broker_values_for_context", { body = context(), query = { { "limit", "many" } } })
      assert.equal(400, code)
      assert.equal("PGRST100", doc.code)
      assert.matches("limit must be a non%-negative integer", doc.message)
      code, doc = call("POST", "rpc/get_broker_values_for_context", { body = context(), query = { { "scope_level", "xx.1" } } })
      assert.equal(400, code)
      assert.matches("scope_level=xx.1", doc.message, 1, true)
      -- A function returning rows of a table: its columns, filtered and ordered.
      code, doc = call("POST", "rpc/rest_spec_items_over", { body = { min_qty = 3 },
        query = { { "select", "name,qty" }, { "order", "qty.desc" }, { "name", "neq.date" } } })
      assert.equal(200, code, cjson.encode(doc))
      assert.same({ { name = 'carrot, "orange" (v.)', qty = 7 }, { name = "apple", qty = 3 } }, doc)
      code, doc = call("POST", "rpc/rest_spec_items_over", { body = { min_qty = 3 },
        query = { { "select", "name" }, { "or", "(qty.eq.3,qty.eq.10)" }, { "order", "id" } } })
      assert.same({ { name = "apple" }, { name = "date" } }, doc)
      code, doc = call("POST", "rpc/rest_spec_items_over", { body = { min_qty = 10 }, query = { { "select", "name" } },
        headers = { Accept = SINGLE } })
      assert.equal(200, code)
      assert.same({ name = "date" }, doc)
      code, doc = call("POST", "rpc/rest_spec_items_over", { body = { min_qty = 0 }, headers = { Accept = SINGLE } })
      assert.equal(406, code)
      assert.equal("PGRST116", doc.code)
    end)

    it("answers a scalar function with the JSON scalar", function()
      local code, doc = call("POST", "rpc/get_missing_broker_ids", { body = context() })
      assert.equal(200, code, cjson.encode(doc))
      assert.same({ brokers[3] }, doc)
      code, doc = call("POST", "rpc/rest_spec_add", { body = { a = 2, b = 5 } })
      assert.equal(200, code)
      assert.equal(7, doc)
      code, doc = call("POST", "rpc/rest_spec_add", { body = { a = 2 } })
      assert.equal(3, doc, "a default argument may be left out")
    end)

    it("GET calls a stable function with query arguments", function()
      local code, doc = get("rpc/get_missing_broker_ids", { { "p_broker_ids", "{" .. table.concat(brokers, ",") .. "}" },
        { "p_organization_id", org } })
      assert.equal(200, code, cjson.encode(doc))
      assert.same({ brokers[3] }, doc)
      code, doc = get("rpc/rest_spec_add", { { "a", "40" }, { "b", "2" } })
      assert.equal(200, code)
      assert.equal(42, doc)
      code, doc = get("rpc/get_broker_values_for_context", { { "p_broker_ids", "{" .. table.concat(brokers, ",") .. "}" },
        { "p_organization_id", org }, { "scope_level", "eq.organization" }, { "broker_id", "eq." .. brokers[1] },
        { "select", "broker_id,value" } })
      assert.equal(200, code, cjson.encode(doc))
      assert.same({ { broker_id = brokers[1], value = { o = 1 } } }, doc, "GET separates arguments from filters")
      code, doc = get("rpc/rest_spec_items_over", { { "min_qty", "7" }, { "select", "id" }, { "order", "id" } })
      assert.equal(200, code)
      assert.same({ { id = 3 }, { id = 4 } }, doc)
    end)

    it("refuses GET on a volatile function (405) and runs it with POST", function()
      local code, doc = get("rpc/rest_spec_bump", { { "p_name", "apple" } })
      assert.equal(405, code)
      is_error(405, "PGRST101", doc)
      assert.equal(1, count_rows("name = 'apple' and qty = 3"), "nothing ran")
      code, doc = call("POST", "rpc/rest_spec_bump", { body = { p_name = "apple" } })
      assert.equal(200, code)
      assert.equal(4, doc)
      reset()
    end)

    it("answers 404 PGRST202 for an unknown function or argument, 300 PGRST203 for an ambiguous overload", function()
      local code, doc = call("POST", "rpc/no_such_function", { body = {} })
      assert.equal(404, code)
      is_error(404, "PGRST202", doc)
      assert.equal("Could not find the function public.no_such_function() in the schema cache", doc.message)
      code, doc = call("POST", "rpc/rest_spec_add", { body = { a = 1, zzz = 2 } })
      assert.equal(404, code)
      assert.equal("Could not find the function public.rest_spec_add(a, zzz) in the schema cache", doc.message)
      code, doc = call("POST", "rpc/rest_spec_add", { body = { b = 1 } })
      assert.equal(404, code, "a required argument is missing")
      assert.equal("PGRST202", doc.code)
      code, doc = call("POST", "rpc/rest_spec_pick", { body = { x = 1 } })
      assert.equal(300, code)
      is_error(300, "PGRST203", doc)
      code, doc = call("POST", "rpc/rest_spec_add", { body = "[1]" })
      assert.equal(400, code)
      assert.equal("PGRST102", doc.code)
    end)
  end)

  describe("auth", function()
    it("answers 401 for a tampered token and for an expired one", function()
      local parts = {}
      for p in SERVICE:gmatch("[^.]+") do parts[#parts + 1] = p end
      local sig = parts[3]
      local flipped = (sig:sub(1, 1) == "A" and "B" or "A") .. sig:sub(2)
      local code, doc, hdrs = get("rest_spec_items", nil, nil, parts[1] .. "." .. parts[2] .. "." .. flipped)
      assert.equal(401, code)
      assert.is_string(doc.code)
      assert.is_not_nil(hdrs["www-authenticate"])
      -- The payload of another token (a user's) under the service token's signature.
      local user_payload = USER:match("^[^.]+%.([^.]+)%.")
      code = get("rest_spec_items", nil, nil, parts[1] .. "." .. user_payload .. "." .. sig)
      assert.equal(401, code)
      -- Signed with another secret.
      local p = assert(io.popen("STRATA_JWT_SECRET=some-other-secret scripts/token --role service_role"))
      local other = p:read("l")
      p:close()
      code = get("rest_spec_items", nil, nil, other)
      assert.equal(401, code)
      code, doc = get("rest_spec_items", nil, nil, mint("--role service_role --exp-in -100"))
      assert.equal(401, code)
      code = get("rest_spec_items", nil, nil, "not-a-jwt")
      assert.equal(401, code)
    end)

    it("answers 401 to anon and 403 to a user on a table without policy; service_role passes", function()
      local code, doc = get("rest_spec_secret", nil, nil, false)
      assert.equal(401, code)
      is_error(401, "42501", doc)
      code, doc = get("rest_spec_secret", nil, nil, USER)
      assert.equal(403, code)
      assert.equal("42501", doc.code)
      code, doc = call("DELETE", "rest_spec_secret", { query = { { "id", "eq.1" } }, token = false })
      assert.equal(401, code)
      code, doc = get("rest_spec_secret", { { "select", "v" } })
      assert.equal(200, code)
      assert.same({ { v = "hidden" } }, doc)
      assert.equal("1", h.scalar("select count(*) from public.rest_spec_secret"))
    end)

    it("lets anon through a table whose policy allows it, and refuses anon RPC without an rpc policy", function()
      reset()
      local code, doc = get("rest_spec_items", { { "select", "id" }, { "id", "eq.1" } }, nil, false)
      assert.equal(200, code)
      assert.same({ { id = 1 } }, doc)
      code, doc = call("POST", "rpc/rest_spec_add", { body = { a = 1 }, token = false })
      assert.equal(401, code)
      assert.equal("42501", doc.code)
    end)
  end)

  describe("row policies on writes", function()
    local A, B, alice, bob

    setup(function()
      A, B = h.uuid(), h.uuid()
      alice = mint("--role authenticated --sub " .. A)
      bob = mint("--role authenticated --sub " .. B)
    end)

    before_each(function()
      h.accepts("truncate public.rest_spec_owned restart identity; insert into public.rest_spec_owned(owner, title) values ("
        .. h.lit(A) .. ", 'alice''s')")
    end)

    local function owned(where)
      return tonumber(h.scalar("select count(*) from public.rest_spec_owned where " .. where))
    end

    it("checks inserted rows as written, defaults included", function()
      local code, doc = call("POST", "rest_spec_owned", { token = alice, body = { owner = A, title = "new" },
        query = { { "select", "title,status" } }, headers = { Prefer = "return=representation" } })
      assert.equal(201, code, cjson.encode(doc))
      assert.same({ { title = "new", status = "draft" } }, doc)
      code, doc = call("POST", "rest_spec_owned", { token = alice, body = { owner = A, title = "live", status = "published" } })
      assert.equal(403, code)
      is_error(403, "42501", doc)
      code, doc = call("POST", "rest_spec_owned", { token = bob, body = { owner = A, title = "forged" } })
      assert.equal(403, code)
      code, doc = call("POST", "rest_spec_owned", { token = false, body = { owner = A, title = "anon" } })
      assert.equal(401, code)
      assert.equal("42501", doc.code)
      assert.equal(0, owned("title in ('live', 'forged', 'anon')"))
    end)

    it("refuses an upsert that would overwrite another owner's row, writing nothing", function()
      for _, conflict in ipairs({ { "on_conflict", "id" }, { "on_conflict", "title" } }) do
        local code, doc = call("POST", "rest_spec_owned", { token = bob, query = { conflict },
          body = { { id = 1, owner = B, title = "alice's" }, { id = 50, owner = B, title = "bob's" } },
          headers = { Prefer = "resolution=merge-duplicates" } })
        assert.equal(403, code, cjson.encode(doc))
        is_error(403, "42501", doc)
        assert.equal(1, owned("id = 1 and owner = " .. h.lit(A) .. " and title = 'alice''s'"))
        assert.equal(0, owned("owner = " .. h.lit(B)), "the row that did not conflict is rolled back too")
      end
      local code = call("POST", "rest_spec_owned", { token = bob, body = { id = 1, owner = B, title = "taken" },
        headers = { Prefer = "resolution=ignore-duplicates" } })
      assert.equal(201, code, "ignore-duplicates leaves the existing row alone")
      assert.equal(1, owned("id = 1 and owner = " .. h.lit(A) .. " and title = 'alice''s'"))
    end)

    it("lets an owner upsert their own row, checking the merged row against the update policy", function()
      local code, doc = call("POST", "rest_spec_owned", { token = alice, query = { { "select", "id,title" } },
        body = { id = 1, owner = A, title = "renamed" }, headers = { Prefer = "return=representation,resolution=merge-duplicates" } })
      assert.equal(201, code, cjson.encode(doc))
      assert.same({ { id = 1, title = "renamed" } }, doc)
      code, doc = call("POST", "rest_spec_owned", { token = alice, body = { id = 1, owner = B, title = "gift" },
        headers = { Prefer = "resolution=merge-duplicates" } })
      assert.equal(403, code, "the merged row would leave the owner's rows")
      assert.equal("42501", doc.code)
      assert.equal(1, owned("id = 1 and owner = " .. h.lit(A) .. " and title = 'renamed'"))
    end)

    it("PATCH sees only the caller's rows and checks the changed rows", function()
      local code, doc = call("PATCH", "rest_spec_owned", { token = bob, query = { { "id", "eq.1" } }, body = { title = "bob was here" },
        headers = { Prefer = "return=representation" } })
      assert.equal(200, code)
      assert.same({}, doc)
      code, doc = call("PATCH", "rest_spec_owned", { token = alice, query = { { "id", "eq.1" } }, body = { owner = B } })
      assert.equal(403, code)
      assert.equal("42501", doc.code)
      code = call("DELETE", "rest_spec_owned", { token = bob, query = { { "id", "eq.1" } } })
      assert.equal(204, code)
      assert.equal(1, owned("id = 1 and owner = " .. h.lit(A) .. " and title = 'alice''s'"))
    end)
  end)

  it("answers the CORS preflight on /rest/v1", function()
    local code, _, hdrs = srv.http(server.port, "OPTIONS", "/rest/v1/rest_spec_items", nil, {
      Origin = "https://app.example.test", ["Access-Control-Request-Method"] = "PATCH",
      ["Access-Control-Request-Headers"] = "authorization, content-type, prefer, accept-profile, range" })
    assert.is_true(code == 200 or code == 204, "status " .. code)
    assert.is_not_nil(hdrs["access-control-allow-origin"])
    assert.matches("PATCH", hdrs["access-control-allow-methods"])
    for _, name in ipairs({ "authorization", "apikey", "content-type", "prefer", "range", "accept-profile", "content-profile" }) do
      assert.matches(name, hdrs["access-control-allow-headers"]:lower(), 1, true)
    end
    local _, _, got = get("rest_spec_items", { { "limit", "1" } }, { Origin = "https://app.example.test" })
    assert.matches("content-range", (got["access-control-expose-headers"] or ""):lower(), 1, true)
  end)
end)

describe("REST API with max_rows #server", function()
  local s

  setup(function()
    SERVICE = SERVICE or mint("--role service_role")
    h.accepts(FIXTURES)
    reset()
    h.accepts("insert into public.rest_spec_items(name, qty) select 'extra ' || g, g from generate_series(1, 4) g")
    s = start({ STRATA_MAX_ROWS = "5" })
  end)

  teardown(function()
    if s then
      assert.equal(0, s.stop(), s.log())
      s.cleanup()
    end
    h.exec(DROP)
  end)

  it("caps every read at max_rows, whatever limit or Range asks", function()
    local code, doc, hdrs = call("GET", "rest_spec_items", { query = { { "select", "id" }, { "order", "id" } },
      headers = { Prefer = "count=exact" } }, s)
    assert.equal(206, code)
    assert.same({ { id = 1 }, { id = 2 }, { id = 3 }, { id = 4 }, { id = 5 } }, doc)
    assert.equal("0-4/9", hdrs["content-range"])
    code, doc = call("GET", "rest_spec_items", { query = { { "select", "id" }, { "limit", "100" } } }, s)
    assert.equal(5, #doc)
    code, doc = call("GET", "rest_spec_items", { query = { { "select", "id" }, { "order", "id" } },
      headers = { Range = "2-100" } }, s)
    assert.same({ { id = 3 }, { id = 4 }, { id = 5 }, { id = 6 }, { id = 7 } }, doc)
    code, doc = call("GET", "rest_spec_items", { query = { { "select", "id" }, { "limit", "2" } } }, s)
    assert.equal(2, #doc, "a smaller limit still applies")
    code, doc = call("POST", "rpc/rest_spec_items_over", { body = { min_qty = 0 }, query = { { "select", "id" } } }, s)
    assert.equal(200, code)
    assert.equal(5, #doc, "table functions are capped too")
  end)
end)
