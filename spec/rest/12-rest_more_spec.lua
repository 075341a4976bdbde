-- /rest/v1 end to end, the PostgREST features beyond specs 02-10 and 19: Prefer
-- (handling=strict|lenient, tx=rollback|commit, missing=default, count= on
-- writes and RPC, Preference-Applied), CSV answers and Accept negotiation,
-- PUT (single-row upsert) and the columns a row policy hides.
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")

local SECRET = "rest-more-spec-secret-0123456789"

local ALLOW_ALL = [[
return {
  select = function() return true end,
  insert = function() return true end,
  update = function() return true end,
  delete = function() return true end,
}
]]

-- Everyone reads and writes accounts, but only admins read `secret` and
-- `vault`: the policy hides them from everyone else.
local ACCOUNTS = [[
return {
  hidden = function(ctx) return ctx.is_admin and {} or { "secret", "vault" } end,
  select = function() return true end,
  insert = function() return true end,
  update = function() return true end,
  delete = function() return true end,
  examples = { { action = "hidden", ctx = { role = "authenticated" }, expect = { "secret", "vault" } } },
}
]]

-- A hidden function that raises: every request to the table is denied.
local BROKEN = [[
return {
  hidden = function() error("no list today") end,
  select = function() return true end,
}
]]

-- Owners see and change their rows only (PUT's policies).
local OWNED = [[
local function me(ctx) return ctx.uid and { owner = ctx.uid } or false end
return { select = me, insert = me, update = me, delete = me }
]]

local RPC = [[return { ["*"] = function() return true end }]]

local FIXTURES = [[
drop table if exists public.rest_more_items, public.rest_more_pairs, public.rest_more_accounts,
  public.rest_more_broken, public.rest_more_owned cascade;
drop function if exists public.rest_more_over(int), public.rest_more_bump(), public.rest_more_accounts_all(),
  public.rest_more_labels(), public.rest_more_total();
create table public.rest_more_items (
  id serial primary key,
  name text not null unique,
  qty int default 5,
  note text default 'n/a',
  tags text[]
);
create table public.rest_more_pairs (a int, b int, label text, primary key (a, b));
create table public.rest_more_accounts (
  id serial primary key,
  login text not null,
  secret text,
  vault jsonb
);
create table public.rest_more_broken (id serial primary key);
create table public.rest_more_owned (id int primary key, owner text not null, title text);
create function public.rest_more_over(min_qty int) returns setof public.rest_more_items
  language sql stable as $$ select * from public.rest_more_items where qty >= min_qty order by id $$;
create function public.rest_more_bump() returns setof public.rest_more_items
  language sql volatile as $$ update public.rest_more_items set qty = qty + 1 returning * $$;
create function public.rest_more_accounts_all() returns setof public.rest_more_accounts
  language sql stable as $$ select * from public.rest_more_accounts order by id $$;
create function public.rest_more_labels() returns table (id int, label text, tags text[])
  language sql stable as $$ select id, name, tags from public.rest_more_items order by id $$;
create function public.rest_more_total() returns bigint
  language sql stable as $$ select sum(qty) from public.rest_more_items $$;
]]

local DROP = [[
drop table if exists public.rest_more_items, public.rest_more_pairs, public.rest_more_accounts,
  public.rest_more_broken, public.rest_more_owned cascade;
drop function if exists public.rest_more_over(int), public.rest_more_bump(), public.rest_more_accounts_all(),
  public.rest_more_labels(), public.rest_more_total();
]]

local ROWS = [[
truncate public.rest_more_items, public.rest_more_pairs, public.rest_more_accounts, public.rest_more_owned
  restart identity;
insert into public.rest_more_items(name, qty, note, tags) values
  ('apple', 3, 'red', '{fruit,red}'),
  ('carrot, "orange"', 7, null, '{veg}'),
  ('date', 10, '', '{}');
insert into public.rest_more_pairs values (1, 1, 'one-one');
insert into public.rest_more_accounts(login, secret, vault) values ('ann', 's3cret', '{"pin": "1234"}'), ('bob', 'hunter2', null);
]]

local function reset() h.accepts(ROWS) end

local function scalar(sql) return h.scalar(sql) end

local server, SERVICE, USER, ADMIN, OWNER

local function start()
  local dir = srv.lua_dir({})
  assert(os.execute("rm -rf " .. srv.quote(dir .. "/policies")))
  srv.write(dir .. "/policies/public/rest_more_items.lua", ALLOW_ALL)
  srv.write(dir .. "/policies/public/rest_more_pairs.lua", ALLOW_ALL)
  srv.write(dir .. "/policies/public/rest_more_accounts.lua", ACCOUNTS)
  srv.write(dir .. "/policies/public/rest_more_broken.lua", BROKEN)
  srv.write(dir .. "/policies/public/rest_more_owned.lua", OWNED)
  srv.write(dir .. "/policies/rpc.lua", RPC)
  local s = srv.start({ STRATA_LUA_DIR = dir, STRATA_JWT_SECRET = SECRET, STRATA_ACCESS_LOG = "off" })
  assert.equal(200, (srv.await(s.port, "/ready", 200, 20)), s.log())
  local cleanup = s.cleanup
  s.cleanup = function() cleanup(); os.execute("rm -rf " .. srv.quote(dir)) end
  return s
end

-- One request: opts.body (table -> JSON, or string), opts.headers, opts.token
-- (default service_role; false for anon).  Answers status, decoded body (raw
-- text when not JSON), headers, raw body.
local function call(method, path, opts)
  opts = opts or {}
  local headers = {}
  for k, v in pairs(opts.headers or {}) do headers[k] = v end
  local tok = opts.token
  if tok == nil then tok = SERVICE end
  if tok then headers.Authorization = "Bearer " .. tok end
  if opts.body then headers["Content-Type"] = headers["Content-Type"] or "application/json" end
  return srv.rest(server.port, method, "/rest/v1/" .. path, opts.body, headers)
end

local function is_error(code, doc)
  assert.is_table(doc, "an error body")
  assert.equal(code, doc.code, cjson.encode(doc))
  return doc
end

local function names_of(rows)
  local out = {}
  for i, r in ipairs(rows) do out[i] = r.name end
  return out
end

describe("REST API, more of PostgREST #server", function()
  setup(function()
    SERVICE = srv.token(SECRET, "--role service_role")
    USER = srv.token(SECRET, "--sub " .. h.uuid())
    ADMIN = srv.token(SECRET, "--sub " .. h.uuid() .. " --admin")
    OWNER = h.uuid()
    h.accepts(FIXTURES)
    server = start()
  end)

  teardown(function()
    if server then
      assert.equal(0, server.stop(), server.log())
      server.cleanup()
    end
    h.exec(DROP)
  end)

  before_each(reset)

  describe("Prefer: handling", function()
    it("refuses an unknown preference with 400 PGRST122 under handling=strict, naming it", function()
      local code, doc = call("GET", "rest_more_items", { headers = { Prefer = "handling=strict, foo, bar=baz" } })
      assert.equal(400, code)
      is_error("PGRST122", doc)
      assert.equal("Invalid preferences given with handling=strict", doc.message)
      assert.equal("Invalid preferences: foo, bar=baz", doc.details)
    end)

    it("refuses an invalid value, and writes nothing, under handling=strict", function()
      local code, doc = call("POST", "rest_more_items", { body = { name = "strict" },
        headers = { Prefer = "return=representation, count=sometimes, handling=strict" } })
      assert.equal(400, code)
      assert.equal("Invalid preferences: count=sometimes", is_error("PGRST122", doc).details)
      assert.equal("0", scalar("select count(*) from public.rest_more_items where name = 'strict'"))
    end)

    it("refuses an unknown preference on RPC too", function()
      local code, doc = call("POST", "rpc/rest_more_over", { body = { min_qty = 0 },
        headers = { Prefer = "handling=strict, anything" } })
      assert.equal(400, code)
      is_error("PGRST122", doc)
    end)

    it("ignores unknown preferences with handling=lenient and by default, and echoes handling", function()
      local code, doc, hdrs = call("GET", "rest_more_items", { headers = { Prefer = "handling=lenient, foo" } })
      assert.equal(200, code)
      assert.equal(3, #doc)
      assert.equal("handling=lenient", hdrs["preference-applied"])
      code, doc = call("GET", "rest_more_items", { headers = { Prefer = "foo, timezone=UTC" } })
      assert.equal(200, code)
      -- An unknown zone is PostgreSQL's error whatever the handling (PostgREST's TimezoneSpec).
      code, doc = call("GET", "rest_more_items", { headers = { Prefer = "foo, timezone=Mars/Olympus" } })
      assert.equal(400, code)
      assert.equal("22023", doc.code)
    end)

    it("answers valid preferences under handling=strict and echoes them in PostgREST's order", function()
      local code, _, hdrs = call("GET", "rest_more_items", { headers = { Prefer = "handling=strict, count=exact" } })
      assert.equal(200, code)
      assert.equal("count=exact, handling=strict", hdrs["preference-applied"])
    end)
  end)

  describe("Prefer: tx", function()
    it("answers an insert with tx=rollback as committed, and keeps nothing", function()
      local code, doc, hdrs = call("POST", "rest_more_items", { body = { name = "ghost" },
        headers = { Prefer = "return=representation, tx=rollback" } })
      assert.equal(201, code)
      assert.same({ "ghost" }, names_of(doc))
      assert.equal("return=representation, tx=rollback", hdrs["preference-applied"])
      assert.equal("0", scalar("select count(*) from public.rest_more_items where name = 'ghost'"))
    end)

    it("rolls back updates and deletes with tx=rollback", function()
      local code, doc = call("PATCH", "rest_more_items?name=eq.apple", { body = { qty = 99 },
        headers = { Prefer = "return=representation, tx=rollback" } })
      assert.equal(200, code)
      assert.equal(99, doc[1].qty)
      assert.equal("3", scalar("select qty from public.rest_more_items where name = 'apple'"))
      code = call("DELETE", "rest_more_items?name=eq.apple", { headers = { Prefer = "tx=rollback" } })
      assert.equal(204, code)
      assert.equal("1", scalar("select count(*) from public.rest_more_items where name = 'apple'"))
    end)

    it("rolls back a volatile RPC with tx=rollback", function()
      local code, doc, hdrs = call("POST", "rpc/rest_more_bump", { body = {}, headers = { Prefer = "tx=rollback" } })
      assert.equal(200, code)
      assert.equal(3, #doc)
      assert.equal("tx=rollback", hdrs["preference-applied"])
      assert.equal("3", scalar("select qty from public.rest_more_items where name = 'apple'"))
    end)

    it("commits with tx=commit and echoes it", function()
      local code, _, hdrs = call("POST", "rest_more_items", { body = { name = "kept" }, headers = { Prefer = "tx=commit" } })
      assert.equal(201, code)
      assert.equal("tx=commit", hdrs["preference-applied"])
      assert.equal("1", scalar("select count(*) from public.rest_more_items where name = 'kept'"))
    end)
  end)

  describe("Prefer: missing=default", function()
    it("gives the keys an object lacks their column DEFAULT, and keeps explicit nulls", function()
      local code, doc, hdrs = call("POST", "rest_more_items?columns=name,qty,note&select=name,qty,note&order=name",
        { body = { { name = "fig" }, { name = "kiwi", qty = 1, note = cjson.null } },
          headers = { Prefer = "return=representation, missing=default" } })
      assert.equal(201, code, cjson.encode(doc))
      assert.equal("missing=default, return=representation", hdrs["preference-applied"])
      table.sort(doc, function(a, b) return a.name < b.name end)
      assert.same({ name = "fig", qty = 5, note = "n/a" }, doc[1])
      assert.same({ name = "kiwi", qty = 1, note = cjson.null }, doc[2])
    end)

    it("leaves absent keys NULL without it", function()
      local code, doc = call("POST", "rest_more_items?columns=name,qty", { body = { { name = "lime" } },
        headers = { Prefer = "return=representation" } })
      assert.equal(201, code)
      assert.equal(cjson.null, doc[1].qty)
    end)

    it("works with an upsert", function()
      local code, doc = call("POST", "rest_more_items?on_conflict=name&columns=name,qty,note", {
        body = { { name = "apple", qty = 4 }, { name = "plum" } },
        headers = { Prefer = "return=representation, missing=default, resolution=merge-duplicates" } })
      assert.equal(201, code, cjson.encode(doc))
      assert.equal("n/a", scalar("select note from public.rest_more_items where name = 'apple'"))
      assert.equal("4", scalar("select qty from public.rest_more_items where name = 'apple'"))
      assert.equal("5", scalar("select qty from public.rest_more_items where name = 'plum'"))
    end)
  end)

  describe("Prefer: count= on writes and RPC", function()
    it("answers Content-Range */N for an insert and a delete", function()
      local code, _, hdrs = call("POST", "rest_more_items", { body = { { name = "a1" }, { name = "a2" } },
        headers = { Prefer = "count=exact" } })
      assert.equal(201, code)
      assert.equal("*/2", hdrs["content-range"])
      assert.equal("count=exact", hdrs["preference-applied"])
      code, _, hdrs = call("DELETE", "rest_more_items?name=in.(a1,a2,nothing)", { headers = { Prefer = "count=exact" } })
      assert.equal(204, code)
      assert.equal("*/2", hdrs["content-range"])
    end)

    it("answers Content-Range 0-(n-1)/N for an update, */0 when nothing matched", function()
      local code, _, hdrs = call("PATCH", "rest_more_items?qty=gte.5", { body = { note = "big" },
        headers = { Prefer = "count=exact, return=representation" } })
      assert.equal(200, code)
      assert.equal("0-1/2", hdrs["content-range"])
      _, _, hdrs = call("PATCH", "rest_more_items?qty=gte.500", { body = { note = "huge" },
        headers = { Prefer = "count=exact" } })
      assert.equal("*/0", hdrs["content-range"])
    end)

    it("leaves the total * without count", function()
      local _, _, hdrs = call("POST", "rest_more_items", { body = { name = "b1" } })
      assert.equal("*/*", hdrs["content-range"])
      _, _, hdrs = call("PATCH", "rest_more_items?name=eq.b1", { body = { qty = 1 } })
      assert.equal("0-0/*", hdrs["content-range"])
    end)

    it("counts the rows of a table function, 206 for a partial page", function()
      local code, doc, hdrs = call("POST", "rpc/rest_more_over?limit=2", { body = { min_qty = 0 },
        headers = { Prefer = "count=exact" } })
      assert.equal(206, code)
      assert.equal(2, #doc)
      assert.equal("0-1/3", hdrs["content-range"])
      assert.equal("count=exact", hdrs["preference-applied"])
      code, doc, hdrs = call("POST", "rpc/rest_more_over?qty=gt.3", { body = { min_qty = 0 }, headers = { Prefer = "count=exact" } })
      assert.equal(200, code)
      assert.equal("0-1/2", hdrs["content-range"])
      code, _, hdrs = call("POST", "rpc/rest_more_over", { body = { min_qty = 0 } })
      assert.equal(200, code)
      assert.equal("0-2/*", hdrs["content-range"])
    end)

    it("runs a volatile table function once while counting it", function()
      local code, doc, hdrs = call("POST", "rpc/rest_more_bump", { body = {}, headers = { Prefer = "count=exact" } })
      assert.equal(200, code)
      assert.equal("0-2/3", hdrs["content-range"])
      assert.equal(3, #doc)
      assert.equal("4", scalar("select qty from public.rest_more_items where name = 'apple'"))
    end)
  end)

  describe("CSV", function()
    it("answers text/csv built by PostgreSQL, with a header line and RFC 4180 quoting", function()
      local code, body, hdrs = call("GET", "rest_more_items?select=id,name,qty,note,tags&order=id",
        { headers = { Accept = "text/csv" } })
      assert.equal(200, code)
      assert.matches("^text/csv", hdrs["content-type"])
      assert.equal('id,name,qty,note,tags\n1,apple,3,red,"{fruit,red}"\n2,"carrot, ""orange""",7,,{veg}\n3,date,10,"",{}',
        body)
      assert.equal("0-2/*", hdrs["content-range"])
    end)

    it("answers the header line alone when no row matches, and honours aliases", function()
      local _, body = call("GET", "rest_more_items?select=label:name&id=eq.999", { headers = { Accept = "text/csv" } })
      assert.equal("label\n", body)
    end)

    it("answers a write's representation as CSV", function()
      local code, body, hdrs = call("POST", "rest_more_items?select=name,qty,note", {
        body = { name = "pear", qty = 2, note = "two\r\nlines" },
        headers = { Accept = "text/csv", Prefer = "return=representation" } })
      assert.equal(201, code)
      assert.matches("^text/csv", hdrs["content-type"])
      assert.equal('name,qty,note\npear,2,"two\r\nlines"', body)
    end)

    it("inserts a text/csv body: a header line, empty fields as '', NULL as null", function()
      local code, doc = call("POST", "rest_more_items?select=name,qty,note,tags", {
        body = 'name,qty,note,tags\r\n"grape, green",4,,"{a,b}"\r\nkiwi,NULL,NULL,{}\r\n',
        headers = { ["Content-Type"] = "text/csv", Prefer = "return=representation" } })
      assert.equal(201, code, cjson.encode(doc))
      assert.same({ { name = "grape, green", qty = 4, note = "", tags = { "a", "b" } },
        { name = "kiwi", qty = cjson.null, note = cjson.null, tags = {} } }, doc)
      code, doc = call("POST", "rest_more_items", { body = 'name,qty\n"open', headers = { ["Content-Type"] = "text/csv" } })
      assert.equal(400, code)
      is_error("PGRST102", doc)
    end)

    it("answers 406 PGRST107 to a media type it cannot produce", function()
      local code, doc = call("GET", "rest_more_items", { headers = { Accept = "text/xml" } })
      assert.equal(406, code)
      assert.equal("None of these media types are available: text/xml", is_error("PGRST107", doc).message)
      code = call("POST", "rest_more_items", { body = { name = "never" }, headers = { Accept = "image/png" } })
      assert.equal(406, code)
      assert.equal("0", scalar("select count(*) from public.rest_more_items where name = 'never'"))
    end)

    it("answers a table function's rows as CSV, with select, filters, order and Content-Range", function()
      local code, body, hdrs = call("POST", "rpc/rest_more_over?select=name,qty,tags&order=qty.desc",
        { body = { min_qty = 4 }, headers = { Accept = "text/csv", Prefer = "count=exact" } })
      assert.equal(200, code)
      assert.matches("^text/csv", hdrs["content-type"])
      assert.equal('name,qty,tags\ndate,10,{}\n"carrot, ""orange""",7,{veg}', body)
      assert.equal("0-1/2", hdrs["content-range"])
      code, body, hdrs = call("GET", "rpc/rest_more_labels?select=n:label,tags&id=lte.2&order=id",
        { headers = { Accept = "application/json;q=0.5, text/csv" } })
      assert.equal(200, code)
      assert.matches("^text/csv", hdrs["content-type"])
      assert.equal('n,tags\napple,"{fruit,red}"\n"carrot, ""orange""",{veg}', body)
      _, body = call("GET", "rpc/rest_more_labels?id=eq.999", { headers = { Accept = "text/csv" } })
      assert.equal("id,label,tags\n", body)
    end)

    it("refuses CSV for a scalar function (406), and still answers JSON when it comes first", function()
      local code, doc = call("POST", "rpc/rest_more_total", { body = {}, headers = { Accept = "text/csv" } })
      assert.equal(406, code)
      is_error("PGRST107", doc)
      local _, value, hdrs = call("POST", "rpc/rest_more_total", { body = {}, headers = { Accept = "application/json, text/csv" } })
      assert.matches("^application/json", hdrs["content-type"])
      assert.equal(20, value)
      code = call("POST", "rpc/rest_more_bump", { body = {}, headers = { Accept = "text/xml" } })
      assert.equal(406, code)
      assert.equal("3", scalar("select qty from public.rest_more_items where name = 'apple'"))
    end)

    it("chooses by quality among the accepted types", function()
      local code, doc, hdrs = call("GET", "rest_more_items", { headers = { Accept = "text/xml, */*;q=0.5" } })
      assert.equal(200, code)
      assert.matches("^application/json", hdrs["content-type"])
      assert.equal(3, #doc)
      _, _, hdrs = call("GET", "rest_more_items", { headers = { Accept = "text/csv;q=0.9, application/json" } })
      assert.matches("^application/json", hdrs["content-type"])
      _, _, hdrs = call("GET", "rest_more_items", { headers = { Accept = "application/json;q=0.1, text/csv" } })
      assert.matches("^text/csv", hdrs["content-type"])
    end)
  end)

  describe("PUT", function()
    local REP = { Prefer = "return=representation" }

    it("inserts the row of its URL (201), then replaces it (200)", function()
      local code, doc = call("PUT", "rest_more_items?id=eq.50", { body = { id = 50, name = "melon", qty = 1 }, headers = REP })
      assert.equal(201, code, cjson.encode(doc))
      assert.same({ { id = 50, name = "melon", qty = 1, note = "n/a", tags = cjson.null } }, doc)
      code, doc = call("PUT", "rest_more_items?id=eq.50", { body = { id = 50, name = "melon", qty = 2 }, headers = REP })
      assert.equal(200, code)
      assert.equal(2, doc[1].qty)
      code = call("PUT", "rest_more_items?id=eq.50", { body = { id = 50, name = "melon", qty = 3 } })
      assert.equal(204, code)
      assert.equal("3", scalar("select qty from public.rest_more_items where id = 50"))
    end)

    it("upserts by a composite primary key", function()
      local code = call("PUT", "rest_more_pairs?a=eq.1&b=eq.1", { body = { a = 1, b = 1, label = "changed" } })
      assert.equal(204, code)
      assert.equal("changed", scalar("select label from public.rest_more_pairs where a = 1 and b = 1"))
    end)

    it("answers 400 PGRST105 unless the filters are all and only the primary key with eq", function()
      local msg = "Filters must include all and only primary key columns with 'eq' operators"
      for _, path in ipairs({ "rest_more_items?name=eq.melon", "rest_more_items?id=gt.5",
        "rest_more_items?id=eq.5&name=eq.x", "rest_more_items?id=not.eq.5", "rest_more_items",
        "rest_more_pairs?a=eq.1", "rest_more_items?or=(id.eq.5)" }) do
        local code, doc = call("PUT", path, { body = { id = 5, name = "x", a = 1, b = 1 } })
        assert.equal(400, code, path)
        assert.equal(msg, is_error("PGRST105", doc).message, path)
      end
    end)

    it("answers 400 PGRST115 when the payload's key is not the URL's, and writes nothing", function()
      local code, doc = call("PUT", "rest_more_items?id=eq.60", { body = { id = 61, name = "wrong" } })
      assert.equal(400, code)
      assert.equal("Payload values do not match URL in primary key column(s)", is_error("PGRST115", doc).message)
      code = call("PUT", "rest_more_items?id=eq.60", { body = { name = "keyless" } })
      assert.equal(400, code)
      assert.equal("0", scalar("select count(*) from public.rest_more_items where id in (60, 61) or name = 'keyless'"))
    end)

    it("puts the first object of an array, as PostgREST (UpsertSpec.hs); anything but objects is PGRST102", function()
      local code, doc = call("PUT", "rest_more_items?id=eq.70", { body = { { id = 70, name = "seventy" },
        { id = 71, name = "seventy-one" } }, headers = REP })
      assert.equal(201, code)
      assert.equal(1, #doc)
      assert.equal("seventy", doc[1].name)
      assert.equal("1", scalar("select count(*) from public.rest_more_items where id in (70, 71)"))
      code, doc = call("PUT", "rest_more_items?id=eq.70", { body = "[1]" })
      assert.equal(400, code)
      is_error("PGRST102", doc)
    end)

    it("applies the insert and update policies as an upsert", function()
      local me = srv.token(SECRET, "--sub " .. OWNER)
      h.accepts("insert into public.rest_more_owned values (2, 'someone else', 'theirs')")
      local code = call("PUT", "rest_more_owned?id=eq.1", { body = { id = 1, owner = OWNER, title = "mine" }, token = me })
      assert.equal(204, code)
      code = call("PUT", "rest_more_owned?id=eq.1", { body = { id = 1, owner = OWNER, title = "still mine" }, token = me })
      assert.equal(204, code)
      local doc
      code, doc = call("PUT", "rest_more_owned?id=eq.2", { body = { id = 2, owner = OWNER, title = "taken" }, token = me })
      assert.equal(403, code)
      is_error("42501", doc)
      code = call("PUT", "rest_more_owned?id=eq.3", { body = { id = 3, owner = "someone else" }, token = me })
      assert.equal(403, code)
      assert.equal("theirs", scalar("select title from public.rest_more_owned where id = 2"))
      assert.equal("still mine", scalar("select title from public.rest_more_owned where id = 1"))
    end)
  end)

  describe("hidden columns", function()
    it("leaves them out of select=* for a role they are hidden from", function()
      local code, doc = call("GET", "rest_more_accounts?order=id", { token = USER })
      assert.equal(200, code)
      assert.same({ { id = 1, login = "ann" }, { id = 2, login = "bob" } }, doc)
      code, doc = call("GET", "rest_more_accounts?order=id", { token = false })
      assert.equal(200, code)
      assert.is_nil(doc[1].secret)
    end)

    it("shows them to a role the policy's function does not hide them from, and to service_role", function()
      local _, doc = call("GET", "rest_more_accounts?order=id&select=login,secret", { token = ADMIN })
      assert.equal("s3cret", doc[1].secret)
      _, doc = call("GET", "rest_more_accounts?order=id")
      assert.equal("s3cret", doc[1].secret)
      assert.same({ pin = "1234" }, doc[1].vault)
    end)

    it("answers 403 42501 (401 for anon) when select, a filter, order or a JSON path names one", function()
      for _, path in ipairs({ "rest_more_accounts?select=id,secret", "rest_more_accounts?secret=eq.s3cret",
        "rest_more_accounts?order=secret", "rest_more_accounts?select=vault->>pin", "rest_more_accounts?vault->>pin=eq.1234",
        "rest_more_accounts?or=(login.eq.x,secret.like.s*)", "rest_more_accounts?select=s:secret::text" }) do
        local code, doc = call("GET", path, { token = USER })
        assert.equal(403, code, path)
        assert.matches("permission denied for column", is_error("42501", doc).message)
      end
      local code = call("GET", "rest_more_accounts?select=secret", { token = false })
      assert.equal(401, code)
    end)

    it("never returns them from a write, which may still set them", function()
      local code, doc = call("POST", "rest_more_accounts", { body = { login = "cy", secret = "pw" }, token = USER,
        headers = { Prefer = "return=representation" } })
      assert.equal(201, code)
      assert.same({ { id = 3, login = "cy" } }, doc)
      assert.equal("pw", scalar("select secret from public.rest_more_accounts where id = 3"))
      code, doc = call("PATCH", "rest_more_accounts?id=eq.3", { body = { secret = "pw2" }, token = USER,
        headers = { Prefer = "return=representation" } })
      assert.equal(200, code)
      assert.same({ { id = 3, login = "cy" } }, doc)
      code = call("POST", "rest_more_accounts?select=secret", { body = { login = "dee" }, token = USER,
        headers = { Prefer = "return=representation" } })
      assert.equal(403, code)
      assert.equal("0", scalar("select count(*) from public.rest_more_accounts where login = 'dee'"))
    end)

    it("refuses one as an upsert's on_conflict target", function()
      local code, doc = call("POST", "rest_more_accounts?on_conflict=secret", { body = { login = "eve", secret = "s3cret" },
        token = USER, headers = { Prefer = "resolution=ignore-duplicates" } })
      assert.equal(403, code)
      is_error("42501", doc)
    end)

    it("refuses a filter on one in an update or a delete, changing nothing", function()
      local code = call("PATCH", "rest_more_accounts?secret=eq.s3cret", { body = { login = "guessed" }, token = USER })
      assert.equal(403, code)
      code = call("DELETE", "rest_more_accounts?secret=like.s*", { token = USER })
      assert.equal(403, code)
      assert.equal("2", scalar("select count(*) from public.rest_more_accounts where login in ('ann', 'bob')"))
    end)

    it("leaves them out of CSV", function()
      local _, body = call("GET", "rest_more_accounts?order=id", { token = USER, headers = { Accept = "text/csv" } })
      assert.equal("id,login\n1,ann\n2,bob", body)
    end)

    it("does not touch RPC results", function()
      local code, doc = call("POST", "rpc/rest_more_accounts_all", { body = {}, token = USER })
      assert.equal(200, code)
      assert.equal("s3cret", doc[1].secret)
    end)

    it("denies every request when the policy's hidden function fails", function()
      local code, doc = call("GET", "rest_more_broken", { token = USER })
      assert.equal(403, code)
      is_error("42501", doc)
      assert.equal(200, (call("GET", "rest_more_broken")))
    end)

    it("are listed by policy explain for the imagined caller", function()
      local code, body = srv.http(server.port, "POST", "/admin/policy/explain",
        cjson.encode({ role = "authenticated", uid = h.uuid(), table = "rest_more_accounts", action = "select" }),
        { Authorization = "Bearer " .. SERVICE, ["Content-Type"] = "application/json" })
      assert.equal(200, code, body)
      assert.same({ "secret", "vault" }, cjson.decode(body).hidden_columns)
      _, body = srv.http(server.port, "POST", "/admin/policy/explain",
        cjson.encode({ role = "authenticated", is_admin = true, table = "rest_more_accounts" }),
        { Authorization = "Bearer " .. SERVICE, ["Content-Type"] = "application/json" })
      assert.equal(cjson.null, cjson.decode(body).hidden_columns)
    end)
  end)
end)

describe("strata.checks: a policy's hidden columns", function()
  local checks = require("strata.checks")
  local F = "policies/public/t.lua"

  it("accepts a list of names or a function, and runs 'hidden' examples against either", function()
    assert.is_true(checks.policy(F, { hidden = { "a", "b" },
      examples = { { action = "hidden", ctx = {}, expect = { "a", "b" } } } }))
    assert.is_true(checks.policy(F, { hidden = function(ctx) return ctx.is_admin and {} or { "a" } end,
      examples = { { action = "hidden", ctx = { is_admin = true }, expect = {} } } }))
  end)

  it("refuses anything else, and an example that does not hold, naming the file", function()
    local ok, err = checks.policy(F, { hidden = "a" })
    assert.is_nil(ok)
    assert.matches("t.lua: 'hidden' must be a list", err, 1, true)
    assert.is_nil((checks.policy(F, { hidden = { "a", 3 } })))
    ok, err = checks.policy(F, { hidden = { "a" }, examples = { { action = "hidden", ctx = {}, expect = { "b" } } } })
    assert.is_nil(ok)
    assert.matches("example 1", err, 1, true)
  end)
end)
