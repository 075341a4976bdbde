-- Row level security generated from the Lua row policies (lua/strata/rls.lua,
-- sql/120_row_level_security.sql, `scripts/db rls`, which scripts/test's
-- migrate ran): the generator alone, the round trip (for every policy file
-- and action, the generated predicate selects exactly the rows the Lua
-- policy compiled by the REST layer selects, for callers of every kind),
-- and the database refusing what the policies refuse on paths that are not
-- /rest/v1 (a Lua route's db.query, a direct connection).
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")

package.preload["strata.log"] = package.preload["strata.log"] or function()
  return setmetatable({}, { __index = function() return function() end end })
end
local rls = require("strata.rls")

local lit = h.lit
local NULL = cjson.null

describe("strata.rls, the generator", function()
  local catalog = { public = {
    notes = { name = "notes", columns = { id = "uuid", user_id = "uuid", title = "text", owner_name = "text" } },
    shares = { name = "shares", columns = { note_id = "uuid", user_id = "uuid" } },
  } }
  local function pred(f, fns)
    return rls.predicate(f, catalog, "public", catalog.public.notes, fns or rls.collector("public", "notes"))
  end

  it("turns the uid into the initPlan (select auth.uid()), typed as the column, behind guards", function()
    local sql = assert(pred(function(ctx)
      if ctx.role ~= "authenticated" or not ctx.uid then return false end
      return { user_id = ctx.uid }
    end))
    assert.truthy(sql:find('"user_id" = (select auth.uid())', 1, true), sql)
    -- The guards of a term are one initPlan: one boolean per statement.
    assert.truthy(sql:find("(select auth.role() = 'authenticated' and auth.uid() is not null)", 1, true), sql)
    assert.falsy(sql:find("anon", 1, true), sql)
    sql = assert(pred(function(ctx) return ctx.uid and { owner_name = ctx.uid } or false end))
    assert.truthy(sql:find("(select auth.uid()::text)", 1, true), sql)
  end)

  it("answers true and false for callers who always or never pass", function()
    assert.equal("TRUE", pred(function() return true end))
    assert.equal("FALSE", pred(function() return false end))
    assert.equal("FALSE", pred(function(ctx) return ctx.role == "service_role" end))
  end)

  it("sends in_select through a SECURITY DEFINER function of strata_rls, one per distinct subquery", function()
    local fns, list = rls.collector("public", "notes")
    local f = function(ctx)
      if not ctx.uid then return false end
      return { ["$or"] = { { id = { "in_select", "shares", "note_id", { user_id = ctx.uid } } },
        { id = { "in_select", "shares", "note_id", { user_id = ctx.uid } } } } }
    end
    local sql = assert(pred(f, fns))
    assert.truthy(sql:find('"id" IN (SELECT strata_rls."public.notes:1"())', 1, true), sql)
    assert.equal(1, #list)
    assert.equal('SELECT "note_id" FROM "public"."shares" WHERE ("user_id" = (select auth.uid()))', list[1].body)
  end)

  it("models the agent_id claim by its JSON type", function()
    local sql = assert(pred(function(ctx)
      local a = ctx.claims.agent_id
      if type(a) == "string" and a ~= "" then return { id = a } end
      return false
    end))
    assert.truthy(sql:find("'string'", 1, true) and sql:find("(select (auth.jwt() ->> 'agent_id')::uuid)", 1, true), sql)
  end)

  it("finds what SQL cannot express", function()
    local cases = {
      { function() error("boom") end, "raised" },
      { function(ctx) return ctx.uid and { title = "by " .. ctx.uid } or false end, "concatenation" },
      { function(ctx) return ctx.uid ~= nil and #ctx.uid > 16 end, "depends on the value" },
      { function(ctx) return ctx.claims.email == "x" end, "not modelled" },
      { function(ctx) return ctx.request ~= nil end, "not modelled" },
      { function() return 1 end, "answered a number" },
      { function() return { nope = 1 } end, "unknown column" },
      { function(ctx) return ctx.uid and { id = { "in", { ctx.uid } } } or false end, "inside an in list" },
    }
    for _, c in ipairs(cases) do
      local sql, why = pred(c[1])
      assert.is_nil(sql)
      assert.truthy(why:find(c[2], 1, true), why)
    end
  end)

  it("grants the actions a file has, denies the API roles a table without file or not expressible", function()
    local t = catalog.public.notes
    local none = table.concat(rls.table_sql(catalog, "public", t, nil).sql, "\n")
    assert.truthy(none:find("REVOKE ALL ON \"public\".\"notes\" FROM anon, authenticated;", 1, true))
    assert.falsy(none:find("GRANT", 1, true))
    assert.truthy(none:find("TO service_role USING (true) WITH CHECK (true)", 1, true))
    local r = rls.table_sql(catalog, "public", t, { select = function() error("x") end })
    assert.truthy(r.unexpressible)
    assert.falsy(table.concat(r.sql, "\n"):find("strata_select", 1, true))
    local ok = table.concat(rls.table_sql(catalog, "public", t, { update = function() return true end }).sql, "\n")
    assert.truthy(ok:find("GRANT SELECT, UPDATE ON", 1, true))
    assert.truthy(ok:find("FOR UPDATE TO anon, authenticated USING (TRUE) WITH CHECK (TRUE)", 1, true))
  end)
end)

-- The catalog of the exposed schemas, in both shapes: strata.rls's and the
-- REST compiler's (tables[name] = { schema, name, columns }).
local SCHEMAS = { "public", "orchestrator", "agentflow" }
local function catalogs()
  local rows = assert(h.query([[select n.nspname as s, c.relname as t, a.attname as c, format_type(a.atttypid, a.atttypmod) as ty
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
     where c.relkind in ('r', 'p') and n.nspname in ('public', 'orchestrator', 'agentflow')]]))
  local gen, rest = {}, {}
  for _, r in ipairs(rows) do
    gen[r.s] = gen[r.s] or {}
    rest[r.s] = rest[r.s] or { tables = {} }
    gen[r.s][r.t] = gen[r.s][r.t] or { name = r.t, columns = {} }
    rest[r.s].tables[r.t] = rest[r.s].tables[r.t] or { schema = r.s, name = r.t, columns = {} }
    gen[r.s][r.t].columns[r.c] = r.ty
    rest[r.s].tables[r.t].columns[r.c] = { name = r.c, type = r.ty }
  end
  return gen, rest
end

-- A builder for strata.rest.policy.compile that writes values as literals
-- (as untyped as the REST layer's parameters).
local Literal = { __index = { param = function(_, v)
  if type(v) == "boolean" or type(v) == "number" then v = tostring(v) end
  return lit(v)
end } }

-- The request settings strata sets for ctx (lmod_pg.c SETTINGS_SQL), without
-- the role: the comparison runs as the owner, whom RLS leaves alone.
local function settings(ctx, with_role)
  local claims = { role = ctx.role, sub = ctx.uid }
  for k, v in pairs(ctx.claims or {}) do claims[k] = v end
  if ctx.is_admin then claims.user_metadata = { role = "admin" } end
  local sql = ("select set_config('request.jwt.claims', %s, true), set_config('request.jwt.claim.sub', %s, true), "
    .. "set_config('request.jwt.claim.role', %s, true)"):format(lit(cjson.encode(claims)), lit(ctx.uid or ""), lit(ctx.role))
  if with_role then sql = sql .. (", set_config('role', %s, true)"):format(lit(with_role)) end
  return sql
end

describe("generated RLS, round trip against the REST layer's compiler", function()
  local policy = require("strata.rest.policy")
  local A, B, ADMIN

  setup(function()
    A, B, ADMIN = h.user(), h.user(), h.user('{"role":"admin"}')
    local chat_a, chat_b, doc_a, org_a, proj_b, run_a = h.uuid(), h.uuid(), h.uuid(), h.uuid(), h.uuid(), h.uuid()
    h.accepts(([[
      insert into public."Chat"(id, title, user_id) values (%s, 'rt a', %s), (%s, 'rt b', %s);
      insert into public."Message_v2"("chatId", role, parts) values (%s, 'user', '[]'), (%s, 'user', '[]');
      insert into public."Document"(id, title, user_id) values (%s, 'rt doc', %s);
      insert into public.organizations(id, name, slug, created_by) values (%s, 'rt org', %s, %s);
      insert into public.user_organizations(user_id, org_id) values (%s, %s);
      insert into public.workspaces(name, organization_id) values ('rt ws', %s);
      insert into public.projects(id, name, created_by) values (%s, 'rt project', %s);
      insert into public.user_projects(project_id, user_id) values (%s, %s);
      insert into public.tasks(title, user_id, project_id) values ('rt task', %s, %s), ('rt open', %s, null);
      insert into public.ai_runs(id, source_type, user_id) values (%s, 'chat', %s);
      insert into public.data_broker(name, user_id, public_read) values ('rt private', %s, false), ('rt public', null, true);
      insert into public.usage_logs(user_id, agent_type, total_tokens) values (%s, 'chat_model_agent', 1), (%s, 'chat_model_agent', 2);
    ]]):format(lit(chat_a), lit(A), lit(chat_b), lit(B), lit(chat_a), lit(chat_b), lit(doc_a), lit(A),
      lit(org_a), lit("rt-" .. org_a), lit(A), lit(B), lit(org_a), lit(org_a), lit(proj_b), lit(B), lit(proj_b), lit(A),
      lit(B), lit(proj_b), lit(A), lit(run_a), lit(A), lit(A), lit(A), lit(B)))
  end)

  -- Callers of every kind: anon, users, an admin, a token with another
  -- role, and the agentflow CEOs and agents the earlier specs left.
  local function callers()
    local list = {
      { role = "anon", claims = {} },
      { role = "authenticated", uid = A, claims = {} },
      { role = "authenticated", uid = B, claims = {} },
      { role = "authenticated", uid = ADMIN, is_admin = true, claims = {} },
      { role = "anon", uid = A, is_admin = true, claims = {} },
      { role = "other_role", uid = A, claims = {} },
      { role = "authenticated", uid = A, claims = { agent_id = 42 } },
    }
    for _, r in ipairs(assert(h.query("select id::text from agentflow.users order by id limit 3"))) do
      list[#list + 1] = { role = "authenticated", uid = r.id, claims = {} }
    end
    for _, r in ipairs(assert(h.query("select id::text from agentflow.agents order by id limit 4"))) do
      list[#list + 1] = { role = "authenticated", uid = r.id, claims = { agent_id = r.id } }
    end
    return list
  end

  it("selects the same rows as the Lua policy, for every policy file, action and caller", function()
    local gen, rest = catalogs()
    local preds, files = {}, 0
    for _, schema in ipairs(SCHEMAS) do
      local names = {}
      for name in pairs(gen[schema] or {}) do names[#names + 1] = name end
      table.sort(names)
      for _, name in ipairs(names) do
        local ok, mod = pcall(require, "policies." .. schema .. "." .. name)
        if ok and type(mod) == "table" then
          files = files + 1
          local fns = rls.collector(schema, name)
          for _, action in ipairs(rls.ACTIONS) do
            if type(mod[action]) == "function" then
              local sql, why = rls.predicate(mod[action], gen, schema, gen[schema][name], fns)
              assert(sql, ("%s.%s %s: %s"):format(schema, name, action, tostring(why)))
              preds[#preds + 1] = { schema = schema, name = name, action = action, sql = sql }
            end
          end
        end
      end
    end
    assert.is_true(files >= 40, "policy files found: " .. files)
    local selected = 0
    for _, ctx in ipairs(callers()) do
      local parts = {}
      for i, p in ipairs(preds) do
        local t = rest[p.schema].tables[p.name]
        local decision = policy.decide(ctx, p.schema, p.name, p.action)
        local lua = decision and policy.compile(setmetatable({ params = {} }, Literal), t, decision, nil, rest[p.schema])
          or "FALSE"
        parts[i] = ("select %s as k, count(*) filter (where coalesce(%s, false)) as lua, "
          .. "count(*) filter (where coalesce(%s, false) is distinct from coalesce(%s, false)) as diff from %s.%s")
          :format(lit(p.schema .. "." .. p.name .. " " .. p.action), lua, lua, p.sql, rls.qi(p.schema), rls.qi(p.name))
      end
      local rows, err = h.query(table.concat(parts, " union all "), settings(ctx))
      assert(rows, err and err.raw)
      for _, r in ipairs(rows) do
        assert.equal("0", r.diff, ("%s differs for %s"):format(r.k, cjson.encode(ctx)))
        selected = selected + tonumber(r.lua)
      end
    end
    assert.is_true(selected > 0)
  end)
end)

describe("the database refuses what the policies refuse #server", function()
  local SECRET = "rls-spec-secret"
  local server, dir, A, B, chat_a, chat_b
  local ROUTES = [[
local db = require("strata.db")
return {
  { method = "GET", path = "/v1/rls/chats", handler = function()
      local rows, err = db.query('select id::text, user_id::text from "Chat"')
      if not rows then return 500, err end
      return 200, { rows = rows, n = #rows }
    end },
}
]]

  setup(function()
    A, B = h.user(), h.user()
    chat_a, chat_b = h.uuid(), h.uuid()
    h.accepts(('insert into public."Chat"(id, title, user_id) values (%s, \'iso a\', %s), (%s, \'iso b\', %s)')
      :format(lit(chat_a), lit(A), lit(chat_b), lit(B)))
    dir = srv.lua_dir({ ["routes/rls_spec.lua"] = ROUTES })
    server = srv.start({ STRATA_LUA_DIR = dir, STRATA_JWT_SECRET = SECRET })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 10)), server.log())
  end)

  teardown(function()
    assert.equal(0, server.stop(), server.log())
    server.cleanup()
    os.execute("rm -rf " .. srv.quote(dir))
  end)

  local function chats(tok)
    local code, body = srv.http(server.port, "GET", "/v1/rls/chats", nil,
      tok and { Authorization = "Bearer " .. tok } or nil)
    assert.equal(200, code, body)
    return cjson.decode(body)
  end

  it("gives a route's db.query only the signed-in user's chats, and anon none", function()
    local mine = chats(srv.token(SECRET, "--sub " .. A))
    assert.equal(1, mine.n)
    assert.same({ id = chat_a, user_id = A }, mine.rows[1])
    assert.equal(0, chats(nil).n)
    assert.is_true(chats(srv.token(SECRET, "--role service_role")).n >= 2)
  end)

  it("shows a direct connection as authenticated with another user's claims nothing of A", function()
    local ctx = { role = "authenticated", uid = B, claims = {} }
    local rows = assert(h.query('select id::text from public."Chat"', settings(ctx, "authenticated")))
    assert.same({ { id = chat_b } }, rows)
    assert.same({}, assert(h.query(('select id from public."Message_v2" where "chatId" = %s'):format(lit(chat_a)),
      settings(ctx, "authenticated"))))
    -- Nor writes: another user's row is invisible to UPDATE, and a row
    -- given to another user is refused.
    assert.same({}, assert(h.query(('update public."Chat" set title = \'x\' where id = %s returning id'):format(lit(chat_a)),
      settings(ctx, "authenticated"))))
    local _, err = h.query(('insert into public."Chat"(title, user_id) values (\'x\', %s) returning id'):format(lit(A)),
      settings(ctx, "authenticated"))
    assert.equal("42501", err.code)
    -- No claims at all: nothing; anon: nothing; a table without a policy
    -- file: no privilege.
    assert.same({}, assert(h.query('select id from public."Chat"', "select set_config('role', 'authenticated', true)")))
    assert.same({}, assert(h.query('select id from public."Chat"', settings({ role = "anon" }, "anon"))))
    assert.same({}, assert(h.query("select id from agentflow.agent_credentials", settings(ctx, "authenticated"))))
    _, err = h.query("select * from public.strata_migrations", settings(ctx, "authenticated"))
    assert.equal("42501", err.code)
  end)
end)

-- A policy SQL cannot express: `scripts/db rls` lists its table and gives
-- the API roles no policy there (RLS denies them everything); strata's own
-- statements carry the Lua policy and run past RLS, raw SQL as the caller
-- stays denied, and GET /ready lists the table.
describe("a policy SQL cannot express #server", function()
  local SECRET = "rls-gap-spec-secret"
  local server, dir, A, B
  -- assert() on the uid's length: the generator's stand-ins for auth.uid()
  -- are not 36 characters long, so the symbolic run raises.
  local POLICY = [[
local function mine(ctx)
  if ctx.role ~= "authenticated" or not ctx.uid then return false end
  assert(#ctx.uid == 36, "a uuid")
  return { user_id = ctx.uid }
end
return { select = mine, insert = mine, update = mine, delete = mine }
]]
  local ROUTES = [[
local db = require("strata.db")
local data = require("strata.data")
return {
  { method = "GET", path = "/v1/rls_gap", handler = function()
      local _, raw = db.query("select note from public.spec_rls_gap")
      local via_data = assert(data.select("spec_rls_gap", { select = "note" }))
      local in_tx, raw_after
      data.transaction(function(tx)
        in_tx = assert(data.select("spec_rls_gap", { select = "note" }))
        local _, e = tx.query("select note from public.spec_rls_gap")
        raw_after = e
        return nil, e
      end)
      return 200, { raw = raw.code, data = #via_data, in_tx = #in_tx, raw_after = raw_after.code }
    end },
}
]]

  local function rls_regenerate(lua_dir)
    local cmd = ("DATABASE_URL=%s STRATA_LUA_DIR=%s scripts/db rls 2>&1"):format(
      srv.quote(os.getenv("STRATA_TEST_DATABASE_URL")), srv.quote(lua_dir))
    local p = assert(io.popen(cmd))
    local out = p:read("a")
    assert.is_true(p:close(), out)
    return out
  end

  setup(function()
    h.accepts([[create table public.spec_rls_gap (id uuid primary key default gen_random_uuid(),
      user_id uuid not null, note text)]])
    A, B = h.user(), h.user()
    dir = srv.lua_dir({ ["policies/public/spec_rls_gap.lua"] = POLICY, ["routes/rls_gap.lua"] = ROUTES })
    local out = rls_regenerate(dir)
    assert.matches("not expressible in SQL, denied to the API roles: public.spec_rls_gap: select", out, 1, true)
    server = srv.start({ STRATA_LUA_DIR = dir, STRATA_JWT_SECRET = SECRET })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 10)), server.log())
  end)

  teardown(function()
    if server then
      assert.equal(0, server.stop(), server.log())
      server.cleanup()
    end
    os.execute("rm -rf " .. srv.quote(dir))
    h.accepts("drop table if exists public.spec_rls_gap")
    rls_regenerate("lua")
  end)

  it("serves the Lua policy through /rest/v1 and strata.data, and denies raw SQL", function()
    local a = srv.token(SECRET, "--sub " .. A)
    local alice, bob = srv.rest_client(server.port, a), srv.rest_client(server.port, srv.token(SECRET, "--sub " .. B))
    assert.equal(201, (alice.post("spec_rls_gap", { user_id = A, note = "a1" })))
    assert.equal(201, (bob.post("spec_rls_gap", { user_id = B, note = "b1" })))
    -- The Lua policy still refuses a row for someone else.
    local code, err = alice.post("spec_rls_gap", { user_id = B, note = "forged" })
    assert.equal(403, code)
    assert.equal("42501", err.code)
    assert.same({ 200, { { note = "a1" } } }, { alice.get("spec_rls_gap?select=note") })
    assert.same({ 200, {} }, { alice.patch("spec_rls_gap?note=eq.b1&select=note", { note = "hacked" }) })
    assert.same({ 200, { { note = "a2" } } }, { alice.patch("spec_rls_gap?note=eq.a1&select=note", { note = "a2" }) })
    assert.same({ 200, {} }, { alice.delete("spec_rls_gap?note=eq.b1&select=note") })
    assert.equal("1", h.scalar("select count(*) from public.spec_rls_gap where note = 'b1'"))

    local body
    code, body = srv.http(server.port, "GET", "/v1/rls_gap", nil, { Authorization = "Bearer " .. a })
    assert.equal(200, code, body)
    -- The API roles have no privilege on the table: raw SQL is refused,
    -- also after strata.data's statement in the same transaction.
    assert.same({ raw = "42501", data = 1, in_tx = 1, raw_after = "42501" }, cjson.decode(body))

    local _, ready = srv.http(server.port, "GET", "/ready")
    local found
    for _, w in ipairs(cjson.decode(ready).warnings) do
      if w.source == "rls" and w.key == "public.spec_rls_gap" then found = w.message end
    end
    assert.matches("public.spec_rls_gap has no row level security policy for select, insert, update, delete", found, 1, true)
  end)
end)

-- conf rest_rls: by default the REST layer's statements (which carry the
-- Lua policy) pass RLS; with rest_rls = true PostgreSQL checks them again.
-- Seen here with a generated policy made stricter than its Lua file.
describe("rest_rls #server", function()
  local SECRET = "rls-mode-spec-secret"
  local A, dir
  local POLICY = [[
return { select = function(ctx) return ctx.uid ~= nil and { user_id = ctx.uid } or false end }
]]

  setup(function()
    h.accepts("create table public.spec_rls_mode (id serial primary key, user_id uuid not null, note text)")
    A = h.user()
    h.accepts(("insert into public.spec_rls_mode(user_id, note) values (%s, 'mine')"):format(lit(A)))
    dir = srv.lua_dir({ ["policies/public/spec_rls_mode.lua"] = POLICY })
    local p = assert(io.popen(("DATABASE_URL=%s STRATA_LUA_DIR=%s scripts/db rls 2>&1"):format(
      srv.quote(os.getenv("STRATA_TEST_DATABASE_URL")), srv.quote(dir))))
    local out = p:read("a")
    assert.is_true(p:close(), out)
    h.accepts('alter policy strata_select on public.spec_rls_mode using (false)')
  end)

  teardown(function()
    os.execute("rm -rf " .. srv.quote(dir))
    h.accepts("drop table if exists public.spec_rls_mode")
    local p = assert(io.popen(("DATABASE_URL=%s scripts/db rls 2>&1"):format(
      srv.quote(os.getenv("STRATA_TEST_DATABASE_URL")))))
    local out = p:read("a")
    assert.is_true(p:close(), out)
  end)

  local function notes(env)
    env.STRATA_LUA_DIR, env.STRATA_JWT_SECRET = dir, SECRET
    local s = srv.start(env)
    assert.equal(200, (srv.await(s.port, "/ready", 200, 10)), s.log())
    local code, rows = srv.rest_client(s.port, srv.token(SECRET, "--sub " .. A)).get("spec_rls_mode?select=note")
    assert.equal(0, s.stop(), s.log())
    s.cleanup()
    assert.equal(200, code)
    return rows
  end

  it("lets the Lua policy decide by default, and both with rest_rls = true", function()
    assert.same({ { note = "mine" } }, notes({}))
    assert.same({}, notes({ STRATA_REST_RLS = "true" }))
  end)
end)
