-- strata driven by the real client, @supabase/postgrest-js (the version
-- pinned in spec/js/package.json): spec/js/postgrest_client.mjs runs the
-- scenario a new user would write and prints what the client returned for
-- each step; the assertions are here.  Needs Node.js 20+ and npm; the node
-- modules are installed with `npm ci --prefix spec/js` when missing.
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")

local SECRET = "postgrest-js-spec-secret-42"

local POLICY = [[
-- Everyone reads; only signed-in callers write.
local function signed_in(ctx) return ctx.role ~= "anon" end
return {
  select = function() return true end,
  insert = signed_in,
  update = signed_in,
  delete = signed_in,
}
]]

-- Signed-in callers read the notes; anon embeds them as none.
local NOTES_POLICY = [[
return { select = function(ctx) return ctx.role ~= "anon" end }
]]

local FIXTURES = [[
drop table if exists public.rest_js_notes, public.rest_js_items, agentflow.rest_js_things cascade;
drop function if exists public.rest_js_add(int, int), public.rest_js_items_over(int), public.rest_js_void(),
  public.rest_js_sum(int[]);
create table public.rest_js_items (
  id serial primary key,
  name text not null unique,
  qty int check (qty is null or qty >= 0),
  tags text[]
);
insert into public.rest_js_items(name, qty, tags) values
  ('apple', 3, '{fruit,red}'), ('banana', null, '{fruit}'), ('fig, dried (x)', 7, '{fruit,dried}'),
  ('date', 10, '{}'), ('carrot', 0, '{veg}');
create table public.rest_js_notes (id serial primary key, item_id int not null references public.rest_js_items(id),
  body text);
insert into public.rest_js_notes(item_id, body) values (1, 'crisp'), (1, 'red'), (4, 'sweet');
create table agentflow.rest_js_things (id serial primary key, label text not null);
insert into agentflow.rest_js_things(label) values ('agentflow thing');
create function public.rest_js_add(a int, b int) returns int language sql stable as $$ select a + b $$;
create function public.rest_js_void() returns void language sql as $$ select $$;
create function public.rest_js_sum(arr int[]) returns int language sql stable as $$ select sum(x)::int from unnest(arr) x $$;
create function public.rest_js_items_over(min_qty int) returns setof public.rest_js_items
  language sql stable as $$ select * from public.rest_js_items where qty >= min_qty $$;
]]

local DROP = [[
drop table if exists public.rest_js_notes, public.rest_js_items, agentflow.rest_js_things cascade;
drop function if exists public.rest_js_add(int, int), public.rest_js_items_over(int), public.rest_js_void(),
  public.rest_js_sum(int[]);
]]

-- Runs a shell command; its exit status (0 = success) and its output.
local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok and 0 or (code or 1), out
end

-- Installs spec/js/node_modules from package-lock.json when missing.
local function ensure_node_modules()
  local st, out = sh("node --version")
  assert(st == 0, "spec/rest/30-postgrest_js_spec.lua needs Node.js 20+ (`node` not found: " .. out .. ")")
  local major = tonumber(out:match("^v(%d+)"))
  assert(major and major >= 20, "spec/js needs Node.js 20 or newer, found " .. out)
  local f = io.open("spec/js/node_modules/@supabase/postgrest-js/package.json")
  if f then f:close() return end
  st, out = sh("npm --version")
  assert(st == 0, "spec/js/node_modules is missing and npm is not available to install it: install npm "
    .. "(it comes with Node.js), then `npm ci --prefix spec/js`.\n" .. out)
  st, out = sh("npm ci --prefix spec/js --no-audit --no-fund --loglevel=error")
  assert(st == 0, "`npm ci --prefix spec/js` failed (is the npm registry reachable?):\n" .. out)
end

local function mint(role) return srv.token(SECRET, "--role " .. role) end

local function names(rows)
  local out = {}
  for i, r in ipairs(rows) do out[i] = r.name end
  return out
end

describe("@supabase/postgrest-js against strata #server", function()
  local server, dir, result

  setup(function()
    ensure_node_modules()
    h.accepts(FIXTURES)
    dir = srv.lua_dir({})
    assert(os.execute("rm -rf " .. srv.quote(dir .. "/policies")))
    srv.write(dir .. "/policies/public/rest_js_items.lua", POLICY)
    srv.write(dir .. "/policies/public/rest_js_notes.lua", NOTES_POLICY)
    server = srv.start({ STRATA_LUA_DIR = dir, STRATA_JWT_SECRET = SECRET, STRATA_ACCESS_LOG = "off",
      STRATA_REST_AGGREGATES = "true", STRATA_REST_PLANS = "true" })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 20)), server.log())
    local st, out = sh(("STRATA_REST_URL=%s STRATA_TOKEN=%s STRATA_ANON_TOKEN=%s node spec/js/postgrest_client.mjs"):format(
      srv.quote(("http://127.0.0.1:%d/rest/v1"):format(server.port)), srv.quote(mint("service_role")),
      srv.quote(mint("anon"))))
    assert(st == 0, "node spec/js/postgrest_client.mjs failed:\n" .. out)
    local last = out:match("([^\n]+)\n?$")
    local ok, doc = pcall(cjson.decode, last or "")
    assert(ok and type(doc) == "table", "the script printed no JSON:\n" .. out)
    result = doc
  end)

  teardown(function()
    if server then
      assert.equal(0, server.stop(), server.log())
      server.cleanup()
    end
    if dir then os.execute("rm -rf " .. srv.quote(dir)) end
    h.exec(DROP)
  end)

  -- The step's outcome, asserting that the client saw no error.
  local function ok_step(name, status)
    local r = result[name]
    assert.is_table(r, "no result for step " .. name)
    assert.equal(cjson.null, r.error, name .. ": " .. cjson.encode(r.error))
    assert.equal(status or 200, r.status, name)
    return r
  end

  -- The step's error, asserting its status and code.
  local function err_step(name, status, code)
    local r = result[name]
    assert.is_table(r, "no result for step " .. name)
    assert.equal(status, r.status, name .. ": " .. cjson.encode(r))
    assert.is_table(r.error, name .. " should fail")
    assert.equal(code, r.error.code, name .. ": " .. cjson.encode(r.error))
    assert.equal(cjson.null, r.data)
    return r.error
  end

  it("selects with eq, in (quoted members), ilike, or, not, contains, match, gte/lt", function()
    assert.same({ { id = 1, name = "apple" } }, ok_step("select_eq").data)
    assert.same({ "apple", "fig, dried (x)" }, names(ok_step("select_in").data))
    assert.same({ "banana" }, names(ok_step("select_ilike").data))
    assert.same({ "banana", "fig, dried (x)", "date" }, names(ok_step("select_or").data))
    assert.same({ "apple", "fig, dried (x)" }, names(ok_step("select_not_contains").data))
    assert.same({ "date" }, names(ok_step("select_match_gte_lt").data))
  end)

  it("embeds related tables: one-to-many (ordered, limited), many-to-one under an alias, !inner", function()
    assert.same({ { id = 1, name = "apple", qty = 3, tags = { "fruit", "red" },
      rest_js_notes = { { id = 2, item_id = 1, body = "red" }, { id = 1, item_id = 1, body = "crisp" } } } },
      ok_step("embed_many").data)
    assert.same({ { body = "crisp", item = { name = "apple" } }, { body = "red", item = { name = "apple" } },
      { body = "sweet", item = { name = "date" } } }, ok_step("embed_one").data)
    assert.same({ { name = "date", rest_js_notes = { { body = "sweet" } } } }, ok_step("embed_inner").data)
    assert.same({ { name = "apple", rest_js_notes = { { body = "crisp" } } } }, ok_step("embed_limit").data)
  end)

  it("filters on an embed's presence, spreads a to-many embed, orders by a to-one embed's column", function()
    assert.same({ { name = "apple" }, { name = "date" } }, ok_step("embed_not_null").data)
    assert.same({ { name = "banana" }, { name = "fig, dried (x)" }, { name = "carrot" } }, ok_step("embed_is_null").data)
    assert.same({ { name = "apple", body = { "crisp", "red" } }, { name = "banana", body = {} } }, ok_step("spread_many").data)
    assert.same({ { body = "sweet", item = { name = "date" } }, { body = "crisp", item = { name = "apple" } },
      { body = "red", item = { name = "apple" } } }, ok_step("order_embedded").data)
    local e = err_step("bad_filter", 400, "PGRST100")
    assert.equal('"failed to parse filter (xx.1)" (line 1, column 1)', e.message)
    assert.equal('unexpected "x" expecting "not" or operator (eq, gt, ...)', e.details)
  end)

  it("orders (directions, nulls, several columns), limits and ranges", function()
    assert.same({ { name = "date", qty = 10 }, { name = "fig, dried (x)", qty = 7 } }, ok_step("order_limit").data)
    assert.same({ "banana", "carrot", "apple", "fig, dried (x)", "date" }, names(ok_step("order_two").data))
    assert.same({ { id = 2 }, { id = 3 } }, ok_step("range").data)
  end)

  it("counts with count: 'exact', with head and with a range", function()
    local r = ok_step("count_head")
    assert.equal(5, r.count)
    assert.equal(cjson.null, r.data)
    r = ok_step("count_range", 206)
    assert.equal(5, r.count)
    assert.same({ { id = 1 }, { id = 2 } }, r.data)
    r = ok_step("count_filtered")
    assert.equal(2, r.count)
  end)

  it("single() answers one object, or an error for none and for several rows", function()
    assert.same({ name = "apple", qty = 3 }, ok_step("single").data)
    local e = err_step("single_many", 406, "PGRST116")
    assert.equal("The result contains 5 rows", e.details)
    e = err_step("single_none", 406, "PGRST116")
    assert.equal("The result contains 0 rows", e.details)
  end)

  it("maybeSingle() answers null without error for no row, the row for one, an error for several", function()
    local r = ok_step("maybe_single_none")
    assert.equal(cjson.null, r.data)
    assert.same({ name = "date" }, ok_step("maybe_single_one").data)
    err_step("maybe_single_many", 406, "PGRST116")
  end)

  it("inserts one row and several (columns= quoted), answers a single inserted object", function()
    assert.same({ { name = "grape", qty = 2, tags = { "fruit" } } }, ok_step("insert_one", 201).data)
    local r = ok_step("insert_many", 201)
    assert.equal(cjson.null, r.data)
    assert.same({ name = "mango" }, ok_step("insert_single", 201).data)
    local e = err_step("insert_duplicate", 409, "23505")
    assert.equal("Key (name)=(apple) already exists.", e.details)
  end)

  it("upserts with onConflict, merging or ignoring duplicates", function()
    assert.same({ { name = "apple", qty = 30 } }, ok_step("upsert_merge", 201).data)
    assert.same({ { name = "nectarine", qty = 5 } }, ok_step("upsert_ignore", 201).data)
  end)

  it("updates and deletes with filters; an unfiltered delete is refused", function()
    assert.same({ { name = "grape", qty = 11 } }, ok_step("update").data)
    assert.equal(cjson.null, ok_step("update_minimal", 204).data)
    assert.same({ { name = "kiwi" } }, ok_step("delete").data)
    err_step("delete_unfiltered", 400, "21000")
  end)

  it("calls functions: scalar by POST and GET, table functions with select, filters, order and single()", function()
    assert.equal(5, ok_step("rpc_scalar").data)
    assert.equal(42, ok_step("rpc_get").data)
    assert.same({ { name = "grape", qty = 11 }, { name = "date", qty = 10 }, { name = "fig, dried (x)", qty = 7 },
      { name = "nectarine", qty = 5 }, { name = "mango", qty = 4 } }, ok_step("rpc_table").data)
    assert.same({ name = "apple" }, ok_step("rpc_table_single").data)
    err_step("rpc_unknown", 404, "PGRST202")
  end)

  it("calls a void function (204, null data), counts and HEADs RPCs, passes arrays by GET", function()
    local r = ok_step("rpc_void", 204)
    assert.equal(cjson.null, r.data)
    r = ok_step("rpc_count", 206)
    assert.same({ { name = "mango" } }, r.data)
    assert.equal(6, r.count)
    r = ok_step("rpc_head")
    assert.equal(cjson.null, r.data)
    assert.equal(6, r.count)
    assert.equal(6, ok_step("rpc_get_array").data)
  end)

  it("filters with likeAnyOf / ilikeAllOf, strips nulls, reads CSV, refuses past maxAffected", function()
    assert.same({ { name = "apple" }, { name = "banana" } }, ok_step("like_any").data)
    assert.same({ { name = "apple" }, { name = "date" }, { name = "grape" }, { name = "nectarine" } },
      ok_step("ilike_all").data)
    assert.same({ { name = "banana" } }, ok_step("strip_nulls").data)
    assert.equal("name\napple\nbanana", ok_step("csv").data)
    err_step("max_affected", 400, "PGRST124")
  end)

  it("aggregates (rest_aggregates) and explains (rest_plans) as postgrest-js asks", function()
    assert.same({ { total = 4, n = 2 } }, ok_step("aggregate").data)
    local plan = ok_step("explain").data
    assert.is_table(plan[1].Plan, cjson.encode(plan))
    assert.is_number(ok_step("explain_insert").data[1]["Execution Time"])
    assert.is_table(ok_step("explain_rpc").data[1].Plan)
  end)

  it("switches schema with .schema() (Accept-Profile)", function()
    assert.same({ { label = "agentflow thing" } }, ok_step("schema").data)
  end)

  it("lets the anon key read what the policy allows and refuses its writes", function()
    assert.same({ { name = "banana" } }, ok_step("anon_select").data)
    assert.same({ { name = "apple", rest_js_notes = {} } }, ok_step("anon_embed").data)
    err_step("anon_insert", 401, "42501")
    err_step("anon_rpc", 401, "42501")
  end)

  it("embeds in a write's representation: insert(...).select('*, other(*)')", function()
    assert.same({ { body = "tart", item = { name = "apple", rest_js_notes = { { body = "crisp" }, { body = "red" } } } } },
      ok_step("insert_embed", 201).data)
  end)

  it("leaves the table as the scenario wrote it", function()
    local rows = ok_step("final").data
    assert.same({ "apple", "banana", "carrot", "date", "fig, dried (x)", "grape", "lime", "mango", "nectarine" }, names(rows))
    local by = {}
    for _, r in ipairs(rows) do by[r.name] = r end
    assert.equal(30, by.apple.qty)
    assert.same({ "citrus" }, by.lime.tags)
    assert.equal(cjson.null, by.lime.qty)
    assert.equal("9", h.scalar("select count(*) from public.rest_js_items"))
  end)
end)
