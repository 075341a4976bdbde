-- The fixture of the /rest/v1 specs 02-10 and 19 (require("rest.fixture")):
-- the rest_spec_* tables and functions, their five known rows, a strata
-- serving them with only these tables' policies, and the requests the specs
-- make.  Each spec file calls M.setup in its setup and M.teardown in its
-- teardown; busted insulates the files, so each has its own server.
local assert = require("luassert") -- busted's, which a required module does not see as a global
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")

local M = {}

local SECRET = "rest-spec-secret-0123456789"
M.SINGLE = "application/vnd.pgrst.object+json"

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

function M.reset()
  h.accepts(ROWS)
end

--- A token signed with the server's secret; args as srv.token's.
function M.mint(args) return srv.token(SECRET, args) end

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

--- Creates the fixture (rows reset), mints M.SERVICE and M.USER and starts
-- the server, M.server (also answered).  opts: env, the server's
-- environment; sql, run after the rows are reset, before the server starts.
function M.setup(opts)
  opts = opts or {}
  M.SERVICE = M.mint("--role service_role")
  M.USER = M.mint("--role authenticated --sub " .. h.uuid())
  h.accepts(FIXTURES)
  M.reset()
  if opts.sql then h.accepts(opts.sql) end
  M.server = start(opts.env)
  return M.server
end

--- Stops the server (its log on stderr with REST_SPEC_LOG set) and drops
-- the fixture.
function M.teardown()
  local server = M.server
  if server then
    if os.getenv("REST_SPEC_LOG") then io.stderr:write(server.log()) end
    assert.equal(0, server.stop(), server.log())
    server.cleanup()
    M.server = nil
  end
  h.exec(DROP)
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

--- One request: opts.query (pairs), opts.body (table -> JSON, or string),
-- opts.headers, opts.token (default the service_role token; false for none).
-- Returns status, decoded body (nil when empty), headers, raw body.
function M.call(method, path, opts, s)
  opts = opts or {}
  local headers = {}
  for k, v in pairs(opts.headers or {}) do headers[k] = v end
  local tok = opts.token
  if tok == nil then tok = M.SERVICE end
  if tok then headers.Authorization = "Bearer " .. tok end
  if opts.body then headers["Content-Type"] = headers["Content-Type"] or "application/json" end
  return srv.rest((s or M.server).port, method, url("/rest/v1/" .. path, opts.query), opts.body, headers)
end

function M.get(path, query, headers, tok)
  return M.call("GET", path, { query = query, headers = headers, token = tok })
end

--- The ids a GET on rest_spec_items answers for the filters (ordered by id).
function M.ids(query)
  local q, ordered = { { "select", "id" } }, false
  for _, kv in ipairs(query) do
    q[#q + 1] = kv
    ordered = ordered or kv[1] == "order"
  end
  if not ordered then q[#q + 1] = { "order", "id" } end
  local code, doc = M.get("rest_spec_items", q)
  assert.equal(200, code, cjson.encode(doc))
  local out = {}
  for i, r in ipairs(doc) do out[i] = r.id end
  return out
end

function M.count_rows(where)
  return tonumber(h.scalar("select count(*) from public.rest_spec_items" .. (where and (" where " .. where) or "")))
end

--- Asserts an error body with the code and every PostgREST key.
function M.is_error(status, code, doc, hdrs)
  assert.is_table(doc, "an error body")
  assert.equal(code, doc.code, cjson.encode(doc))
  for _, k in ipairs({ "message", "details", "hint" }) do
    assert.is_not_nil(doc[k], "error bodies always carry " .. k)
  end
  return doc
end

return M
