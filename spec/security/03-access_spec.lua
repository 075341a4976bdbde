-- Access control of the whole REST surface, generated rather than listed:
-- every table and view of the exposed schemas and every function in them
-- (from pg_catalog), tried as anon, as a user who owns nothing, and as an
-- agent of another workspace.  What each may do is what its policy file
-- (lua/policies/) answers for that caller, as /admin/policy/explain
-- compiles it to SQL; the database, read past the API, says which rows
-- that covers.  Reads count exactly the allowed rows, a DELETE (rolled
-- back with Prefer: tx=rollback) touches none outside them, an insert or
-- RPC the policy refuses is refused, hidden columns never leave, and no
-- attempt answers 5xx.
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")
local af = require("fixtures.agentflow")

local SECRET = "access-spec-secret"
local SCHEMAS = { "public", "orchestrator", "agentflow" }
local lit = h.lit

-- The exposed relations: { schema, name, first column }.
local function relations()
  return h.query(([[
    select n.nspname as schema, c.relname as name,
      (select a.attname from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
        order by a.attnum limit 1) as col
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname in (%s) and c.relkind in ('r', 'p', 'v', 'm', 'f')
      and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e')
    order by 1, 2]]):format(table.concat({ lit(SCHEMAS[1]), lit(SCHEMAS[2]), lit(SCHEMAS[3]) }, ", ")))
end

-- The exposed functions an RPC could name: { schema, name }.
local function functions()
  return h.query(([[
    select distinct n.nspname as schema, p.proname as name
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname in (%s) and p.prokind = 'f' and p.prorettype <> 'trigger'::regtype
      and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
    order by 1, 2]]):format(table.concat({ lit(SCHEMAS[1]), lit(SCHEMAS[2]), lit(SCHEMAS[3]) }, ", ")))
end

-- A parameter of an explained predicate as an SQL literal.
local function sql_value(v)
  if type(v) == "number" then return tostring(v) end
  if type(v) == "boolean" then return v and "true" or "false" end
  if v == cjson.null then return "NULL" end
  if type(v) == "table" then
    local items = {}
    for i, x in ipairs(v) do items[i] = sql_value(x) end
    return "ARRAY[" .. table.concat(items, ", ") .. "]"
  end
  return lit(v)
end

-- The explained predicate with its parameters written in.
local function predicate(ex)
  local sql = ex.predicate or "FALSE"
  local params = ex.params or {}
  for i = #params, 1, -1 do
    sql = sql:gsub("%$" .. i .. "%f[%D]", (sql_value(params[i]):gsub("%%", "%%%%")))
  end
  return sql
end

describe("generated access checks #server", function()
  local s, port, svc_headers
  local IDS -- { name, token, role, uid, claims }

  setup(function()
    s = srv.start({ STRATA_JWT_SECRET = SECRET })
    port = s.port
    assert.equal(200, (srv.await(port, "/ready", 200, 10)), s.log())
    svc_headers = { ["Content-Type"] = "application/json",
                    Authorization = "Bearer " .. srv.token(SECRET, "--role service_role") }
    -- Rows for others to want: a user's chat and document, a workspace of
    -- one CEO with an agent and credentials, and a second workspace whose
    -- agent is the intruder.
    local A, B = h.user(), h.user()
    local chat, doc = h.uuid(), h.uuid()
    local C1, C2, W1, W2, G1, G2 = h.uuid(), h.uuid(), h.uuid(), h.uuid(), h.uuid(), h.uuid()
    local hash = lit(af.HASH)
    h.accepts(([[
      insert into public."Chat"(id, title, user_id) values (%s, 'access spec chat', %s);
      insert into public."Document"(id, title, content, user_id, chat_id) values (%s, 'access doc', 'x', %s, %s);
      insert into agentflow.users(id, email, password_hash, name) values (%s, %s, %s, 'CEO one'), (%s, %s, %s, 'CEO two');
      insert into agentflow.workspaces(id, owner_id, name, slug) values (%s, %s, 'One', %s), (%s, %s, 'Two', %s);
      insert into agentflow.agents(id, workspace_id, agent_level, agent_code, name, role_title, api_key_hash) values
        (%s, %s, 'organization', 'cto', 'Ada', 'CTO', %s), (%s, %s, 'organization', 'cto', 'Otto', 'CTO', %s);
    ]]):format(lit(chat), lit(A), lit(doc), lit(A), lit(chat),
      lit(C1), lit(C1 .. "@example.test"), hash, lit(C2), lit(C2 .. "@example.test"), hash,
      lit(W1), lit(C1), lit("acc-one-" .. W1:sub(1, 8)), lit(W2), lit(C2), lit("acc-two-" .. W2:sub(1, 8)),
      lit(G1), lit(W1), hash, lit(G2), lit(W2), hash))
    IDS = {
      { name = "anon", role = "anon", claims = {} },
      { name = "a user who owns nothing", role = "authenticated", uid = B, claims = { sub = B },
        token = srv.token(SECRET, "--sub " .. B) },
      { name = "an agent of another workspace", role = "authenticated", uid = G2, claims = { sub = G2, agent_id = G2 },
        token = srv.token(SECRET, "--sub " .. G2 .. " --claims " .. srv.quote(cjson.encode({ agent_id = G2 }))) },
    }
  end)

  teardown(function()
    assert.equal(0, s.stop(), s.log())
    s.cleanup()
  end)

  local function explain(id, ask)
    ask.role, ask.uid, ask.claims = id.role, id.uid, id.claims
    local code, doc = srv.rest(port, "POST", "/admin/policy/explain", ask, svc_headers)
    assert.equal(200, code, cjson.encode(doc))
    return doc
  end

  local function call(id, schema, method, path, body, prefer)
    local hs = { ["Content-Type"] = "application/json", ["Accept-Profile"] = schema, ["Content-Profile"] = schema,
                 Prefer = prefer }
    if id.token then hs.Authorization = "Bearer " .. id.token end
    return srv.rest(port, method, "/rest/v1/" .. path, body, hs)
  end

  local function count_where(rel, where)
    return tonumber(h.scalar(('select count(*) from %q.%q where %s'):format(rel.schema, rel.name, where)))
  end

  -- Fails when a row of `rows` holds a hidden column, or lies outside `allowed` (SQL).
  local function check_rows(rel, rows, ex, allowed, what)
    if type(rows) ~= "table" then return end
    local keys = {}
    for _, row in ipairs(rows) do
      for _, col in ipairs(ex.hidden_columns ~= cjson.null and ex.hidden_columns or {}) do
        assert.is_nil(row[col], ("%s.%s: %s returned hidden column %s"):format(rel.schema, rel.name, what, col))
      end
      local v = row[rel.col]
      if v ~= nil and v ~= cjson.null then keys[#keys + 1] = lit(type(v) == "table" and cjson.encode(v) or v) end
    end
    if #keys == 0 then return end
    local outside = count_where(rel, ("%q::text in (%s) and not (%s)"):format(rel.col, table.concat(keys, ", "), allowed))
    assert.equal(0, outside, ("%s.%s: %s reached %d rows its policy does not allow"):format(rel.schema, rel.name, what,
      outside))
  end

  it("reads exactly the rows each table's select policy allows, and no hidden column", function()
    local n = 0
    for _, rel in ipairs(relations()) do
      for _, id in ipairs(IDS) do
        local ex = explain(id, { schema = rel.schema, table = rel.name, action = "select" })
        local code, rows, headers, raw = call(id, rel.schema, "GET", ('%s?select=*&limit=200'):format(rel.name), nil,
          "count=exact")
        local where = ("%s.%s as %s"):format(rel.schema, rel.name, id.name)
        assert.is_true(code < 500, where .. ": " .. tostring(code) .. " " .. tostring(raw))
        if code == 200 or code == 206 then
          local allowed = predicate(ex)
          local total = tonumber((headers["content-range"] or ""):match("/(%d+)$"))
          assert.equal(count_where(rel, allowed), total, where .. ": rows counted")
          check_rows(rel, rows, ex, allowed, "a read")
          n = n + 1
        end
      end
    end
    assert.is_true(n > 0)
  end)

  it("deletes no row outside each table's delete policy (rolled back)", function()
    for _, rel in ipairs(relations()) do
      for _, id in ipairs(IDS) do
        local ex = explain(id, { schema = rel.schema, table = rel.name, action = "delete" })
        local code, rows, headers, raw = call(id, rel.schema, "DELETE", ("%s?%s=not.is.null"):format(rel.name, rel.col),
          nil, "return=representation, tx=rollback, count=exact")
        local where = ("%s.%s as %s"):format(rel.schema, rel.name, id.name)
        assert.is_true(code < 500, where .. ": " .. tostring(code) .. " " .. tostring(raw))
        if code >= 200 and code < 300 then
          local allowed = predicate(ex)
          local total = tonumber((headers["content-range"] or ""):match("/(%d+)$")) or #rows
          assert.is_true(total <= count_where(rel, allowed), where .. ": deleted more than allowed")
          check_rows(rel, rows, ex, allowed, "a delete")
        end
      end
    end
  end)

  it("refuses an insert wherever the insert policy says no (rolled back otherwise)", function()
    for _, rel in ipairs(relations()) do
      for _, id in ipairs(IDS) do
        local ex = explain(id, { schema = rel.schema, table = rel.name, action = "insert" })
        local code, _, _, raw = call(id, rel.schema, "POST", rel.name, "{}", "return=minimal, tx=rollback")
        local where = ("%s.%s as %s"):format(rel.schema, rel.name, id.name)
        assert.is_true(code < 500, where .. ": " .. tostring(code) .. " " .. tostring(raw))
        if ex.decision == false then
          assert.is_true(code >= 400, where .. ": inserted though its policy refuses")
        end
      end
    end
  end)

  it("refuses every RPC rpc.lua does not allow the caller, and no RPC answers 5xx", function()
    local n = 0
    for _, fn in ipairs(functions()) do
      for _, id in ipairs(IDS) do
        local ex = explain(id, { schema = fn.schema, ["function"] = fn.name })
        local code, _, _, raw = call(id, fn.schema, "POST", "rpc/" .. fn.name, "{}", "tx=rollback")
        local where = ("%s.%s() as %s"):format(fn.schema, fn.name, id.name)
        assert.is_true(code < 500, where .. ": " .. tostring(code) .. " " .. tostring(raw))
        if ex.allowed == false then
          assert.is_true(code == 401 or code == 403 or code == 404, where .. ": answered " .. code .. " " .. tostring(raw))
        end
        n = n + 1
      end
    end
    assert.is_true(n > 0)
  end)
end)
