-- strata.data: /rest/v1's tables and functions for Lua routes.  The policy
-- matrix is differential: for every table with a policy file (lua/policies)
-- and every function of lua/policies/rpc.lua callable without arguments,
-- each verb is asked of /rest/v1 and of a route calling strata.data, as
-- the same caller (two users, an admin, anon, service_role, an agent), and
-- the answers must be equal: status, body text, error value, count.  Then
-- what only strata.data has: Lua answers, validators through its writes,
-- as_service, transactions.
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")

local SECRET = "data-spec-secret-0123456789abcdef"
local SCHEMAS = { "public", "orchestrator", "agentflow" }

local ROUTES = [===[
local data = require("strata.data")
local cjson = require("cjson")

-- One call described by the spec: { verb, table, query, rows, patch, opts,
-- as_service, rollback }; rollback runs it inside a data.transaction that
-- is then taken back (as Prefer: tx=rollback does on /rest/v1).
local function one(c)
  local d = c.as_service and data.as_service() or data
  local function call()
    if c.verb == "select" then return d.select(c.table, c.query, c.opts) end
    if c.verb == "insert" then return d.insert(c.table, c.rows, c.opts) end
    if c.verb == "update" then return d.update(c.table, c.query, c.patch, c.opts) end
    if c.verb == "delete" then return d.delete(c.table, c.query, c.opts) end
    return d.rpc(c.table, c.args, c.opts)
  end
  local value, meta
  if c.rollback then
    d.transaction(function()
      value, meta = call()
      return nil, "taken back"
    end)
  else
    value, meta = call()
  end
  if value == nil then return { err = meta } end
  return { body = value, meta = meta }
end

return {
  { method = "POST", path = "/v1/spec/data", handler = function(req)
      local out = {}
      for i, c in ipairs(req.json) do out[i] = one(c) end
      return 200, out
    end },

  -- Answers as Lua tables, as a route uses them.
  { method = "GET", path = "/v1/spec/lua/:chat", handler = function(req)
      local id = "eq." .. req.params.chat
      local rows, meta = data.select("Chat", { select = "id,title,user_id,visibility,lastContext", id = id }, { count = "exact" })
      local one = data.select("public.Chat", { select = "title", id = id }, { single = true })
      local none, err = data.select("Chat", { id = "eq.00000000-0000-4000-8000-000000000000" }, { single = true })
      local _, unknown = data.select("NoSuchTable", {})
      local _, bad = data.select("Chat", { id = "zz.1" })
      local text = data.select("Chat", { select = "id", id = id }, { json = true })
      local msgs = data.select("Chat", { select = "id,Message_v2!chatId(role)", id = id, limit = 1 })
      return 200, { rows = rows, meta = meta, title = one.title, none = none == nil, single_err = err,
        unknown = unknown, bad = bad, text = text, messages = msgs[1].Message_v2,
        null_is_cjson_null = rows[1].lastContext == cjson.null }
    end },

  { method = "GET", path = "/v1/spec/service/:a/:b", handler = function(req)
      local q = { select = "id", id = ("in.(%s,%s)"):format(req.params.a, req.params.b), order = "id" }
      local mine = assert(data.select("Chat", q))
      local all = assert(data.as_service().select("Chat", q))
      return 200, { mine = #mine, all = #all }
    end },

  { method = "POST", path = "/v1/spec/tx", handler = function(req)
      local j = req.json
      local forged_err
      local ok, res, err = pcall(data.transaction, function(tx)
        assert(data.insert("Chat", { id = j.chat, title = j.title, user_id = j.uid }, { returning = "minimal" }))
        assert(data.insert("Message_v2", { chatId = j.chat, role = "user", parts = { { text = "in tx" } } }))
        if j.mode == "raise" then error("boom") end
        if j.mode == "nil_err" then return nil, "refused by the rule" end
        if j.mode == "partial" then
          local rows, e = data.insert("Chat", { id = j.forged, title = "forged", user_id = j.other })
          forged_err = rows == nil and e or "the forged insert passed"
          local after = assert(tx.query("select count(*)::int as n from \"Chat\" where id = $1", j.chat))
          return after[1].n
        end
        return true
      end)
      return 200, { ok = ok, res = res, err = err ~= nil and tostring(err) or nil, forged_err = forged_err }
    end },

  -- Writes to a validated table (admin_config) by the paths a route has:
  -- raw SQL as the caller, strata.data, raw SQL after strata.data in one
  -- transaction, raw SQL as the service.
  { method = "POST", path = "/v1/spec/validated", handler = function(req)
      local db = require("strata.db")
      local key, data_ = req.json.key, cjson.encode(req.json.data)
      local sql = "update admin_config set config_data = $2::jsonb where config_key = $1"
      local function outcome(rows, err)
        if rows then return { ok = true } end
        return { code = err.code, message = err.message, hint = err.hint }
      end
      local out = {}
      out.raw = outcome(db.query(sql, key, data_))
      out.data = outcome(data.update("admin_config", { config_key = "eq." .. key }, { config_data = req.json.data }))
      local _, err = data.transaction(function(tx)
        assert(data.update("admin_config", { config_key = "eq." .. key }, { config_data = req.json.data }))
        return tx.query(sql, key, data_)
      end)
      out.raw_after_data = outcome(nil, err)
      out.service = outcome(db.query_as_service(sql, key, data_))
      return 200, out
    end },

  { method = "GET", path = "/v1/spec/misuse", handler = function()
      local mixed = { pcall(data.transaction, function() return data.as_service().select("Chat", { limit = 1 }) end) }
      local nested = { pcall(data.transaction, function() return data.transaction(function() return true end) end) }
      local outside = { coroutine.wrap(function() return pcall(data.select, "Chat", {}) end)() }
      local bad_opts = { pcall(data.insert, "Chat", {}, { returning = "everything" }) }
      return 200, { mixed = tostring(mixed[2]), nested = tostring(nested[2]), outside = tostring(outside[2]),
        bad_opts = tostring(bad_opts[2]) }
    end },
}
]===]

local function encode(s)
  return (tostring(s):gsub("[^%w_%.~%-]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- "path?k=v&..." with the keys sorted (a list value repeats its key).
local function url(path, query)
  local keys, parts = {}, {}
  for k in pairs(query or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = query[k]
    for _, one in ipairs(type(v) == "table" and v or { v }) do parts[#parts + 1] = encode(k) .. "=" .. encode(one) end
  end
  return #parts == 0 and path or (path .. "?" .. table.concat(parts, "&"))
end

local function auth(tok, headers)
  headers = headers or {}
  if tok then headers.Authorization = "Bearer " .. tok end
  return headers
end

-- What /rest/v1 answers for call c (as strata.data's route describes it).
local function rest(port, tok, schema, c)
  local prefer = { "return=representation" }
  local opts = c.opts or {}
  if opts.count then prefer[#prefer + 1] = "count=" .. opts.count end
  if opts.resolution then prefer[#prefer + 1] = "resolution=" .. opts.resolution end
  if c.rollback then prefer[#prefer + 1] = "tx=rollback" end
  local headers = auth(tok, { ["Accept-Profile"] = schema, ["Content-Profile"] = schema, Prefer = table.concat(prefer, ", "),
    ["Content-Type"] = "application/json" })
  local query = {}
  for k, v in pairs(c.query or {}) do query[k] = v end
  query.select = query.select or opts.select
  local method, body, path = "GET", nil, (c.table:gsub("^[^.]+%.", ""))
  if c.verb == "insert" then method, body = "POST", c.rows
  elseif c.verb == "update" then method, body = "PATCH", c.patch
  elseif c.verb == "delete" then method = "DELETE"
  elseif c.verb == "rpc" then method, body, path = "POST", c.args or {}, "rpc/" .. c.table end
  local code, doc, hdrs, raw = srv.rest(port, method, url("/rest/v1/" .. path, query), body, headers)
  local total = (hdrs["content-range"] or ""):match("/(%d+)")
  return { status = code, doc = doc, raw = raw, count = total and tonumber(total) }
end

-- strata.data's answers to calls, through the spec route, as the bearer of tok.
local function via_data(port, tok, calls)
  local code, body = srv.http(port, "POST", "/v1/spec/data", cjson.encode(calls),
    auth(tok, { ["Content-Type"] = "application/json" }))
  assert.equal(200, code, body)
  return cjson.decode(body)
end

-- An error's details may print a row whose timestamps (now() defaults)
-- differ between the two sides' transactions: those are not the answer.
local TIMESTAMP = "%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d[%.%d]*"
local function without_times(doc)
  if type(doc) == "table" and type(doc.details) == "string" then
    doc.details = doc.details:gsub(TIMESTAMP, "<time>")
  end
  return doc
end

-- Asserts that strata.data's answer d equals /rest/v1's r; the outcome's kind.
local function same(r, d, label)
  if d.err ~= nil then
    local err = d.err
    assert.equal(r.status, err.status, label .. ": " .. cjson.encode(err))
    err.status = nil
    assert.same(without_times(r.doc), without_times(err), label)
    return r.status
  end
  assert.equal(r.status, d.meta.status, label .. ": " .. tostring(r.raw))
  assert.equal(r.raw, d.body, label)
  assert.equal(r.count, d.meta.count, label)
  return r.status
end

describe("strata.data #server", function()
  local server, callers, tally
  local A, B, ADMIN, G, chat_a, chat_b

  local function start()
    local dir = srv.lua_dir({ ["routes/data_spec.lua"] = ROUTES })
    local s = srv.start({ STRATA_LUA_DIR = dir, STRATA_JWT_SECRET = SECRET, STRATA_RATE_LIMIT_USER_PER_MINUTE = "0",
      STRATA_RATE_LIMIT_ANON_PER_MINUTE = "0" })
    assert.equal(200, (srv.await(s.port, "/ready", 200, 20)), s.log())
    local cleanup = s.cleanup
    s.cleanup = function() cleanup(); os.execute("rm -rf " .. srv.quote(dir)) end
    return s
  end

  -- Rows owned by Alice and Bob in most tables with a policy file, so that
  -- the matrix meets rows each caller may and may not touch.  Alice is
  -- also a CEO in agentflow, whose workspace has the agent G.  {name}
  -- stands for a uuid of the setup.
  local FIXTURE = [[
    insert into public."Chat"(id, title, user_id) values ({chat_a}, 'Alice''s chat', {A}), ({chat_b}, 'Bob''s chat', {B});
    insert into public."Message_v2"(id, "chatId", role, parts) values ({msg_a}, {chat_a}, 'user', '[{"text":"a"}]'),
      ({msg_b}, {chat_b}, 'user', '[{"text":"b"}]');
    insert into public."Vote_v2"("chatId", "messageId", "isUpvoted") values ({chat_a}, {msg_a}, true), ({chat_b}, {msg_b}, false);
    insert into public."Stream"("chatId") values ({chat_a}), ({chat_b});
    insert into public."Document"(id, "createdAt", title, content, user_id) values
      ({doc_a}, '2026-01-01', 'A', 'a', {A}), ({doc_b}, '2026-01-01', 'B', 'b', {B});
    insert into public."Suggestion"("documentId", "documentCreatedAt", "originalText", "suggestedText", user_id) values
      ({doc_a}, '2026-01-01', 'a', 'aa', {A}), ({doc_b}, '2026-01-01', 'b', 'bb', {B});
    insert into public.user_variables(user_id, key, value) values ({A}, 'user_name', 'Alice'), ({B}, 'user_name', 'Bob');
    insert into public.usage_logs(user_id, agent_type, total_tokens) values ({A}, 'chat_model_agent', 1), ({B}, 'chat_model_agent', 2);
    insert into public.organizations(id, name, slug, created_by) values ({org_a}, 'A Inc', {org_a}, {A}), ({org_b}, 'B Inc', {org_b}, {B});
    insert into public.user_organizations(user_id, org_id) values ({A}, {org_a}), ({B}, {org_b});
    insert into public.org_variables(org_id, key, value) values ({org_a}, 'org_name', 'A Inc'), ({org_b}, 'org_name', 'B Inc');
    insert into public.workspaces(organization_id, name, created_by) values ({org_a}, 'A space', {A}), ({org_b}, 'B space', {B});
    insert into public.projects(id, name, created_by) values ({proj_a}, 'A project', {A}), ({proj_b}, 'B project', {B});
    insert into public.user_projects(user_id, project_id) values ({A}, {proj_a}), ({B}, {proj_b});
    insert into public.project_variables(project_id, key, value) values ({proj_a}, 'p', 'a'), ({proj_b}, 'p', 'b');
    insert into public.tasks(title, project_id, user_id) values ('A task', {proj_a}, {A}), ('B task', {proj_b}, {B});
    insert into public.prompts(name, user_id) values ('A prompt', {A}), ('B prompt', {B});
    insert into public.ai_runs(id, user_id, source_type) values ({run_a}, {A}, 'chat'), ({run_b}, {B}, 'chat');
    insert into public.ai_tasks(run_id, user_id, task_id, service, task_name) values
      ({run_a}, {A}, {run_a}, 'openai', 'a'), ({run_b}, {B}, {run_b}, 'openai', 'b');
    insert into public.data_broker(id, name, user_id) values ({broker}, 'spec broker', {A});
    insert into public.broker_values(broker_id, user_id, value) values ({broker}, {A}, '"a"'), ({broker}, {B}, '"b"');
    insert into public.github_repositories(user_id, repo_owner, repo_name) values ({A}, 'a', 'a'), ({B}, 'b', 'b');
    insert into public.error_logs(user_id, error_type, error_category, error_message) values ({A}, 'app', 'c', 'a'), ({B}, 'app', 'c', 'b');
    insert into public.user_activity_logs(user_id, correlation_id, activity_type, activity_category) values
      ({A}, {run_a}, 'auth_login', 'c'), ({B}, {run_b}, 'auth_login', 'c');
    insert into public.agent_activity_logs(user_id, correlation_id, agent_type, operation_type, operation_category) values
      ({A}, {run_a}, 'chat_model_agent', 'initialization', 'c'), ({B}, {run_b}, 'chat_model_agent', 'initialization', 'c');
    insert into orchestrator.users(id, email) values ({A}, {A_mail}), ({B}, {B_mail});
    insert into orchestrator.agent_conversations(id, user_id, agent_name, agent_type) values ({conv_a}, {A}, 'a', 'chat'),
      ({conv_b}, {B}, 'b', 'chat');
    insert into orchestrator.tasks(id, user_id, agent_conversation_id, method, prompt) values ({otask_a}, {A}, {conv_a}, 'm', 'p'),
      ({otask_b}, {B}, {conv_b}, 'm', 'p');
    insert into orchestrator.projects(id, conversation_id) values ({oproj_a}, {conv_a}), ({oproj_b}, {conv_b});
    insert into orchestrator.project_steps(project_id, step_id, step_index, step_type, step_name) values
      ({oproj_a}, 's1', 1, 't', 'a'), ({oproj_b}, 's1', 1, 't', 'b');
    insert into orchestrator.deliverables(id, user_id, title, type) values ({deliv_a}, {A}, 'a', 'doc'), ({deliv_b}, {B}, 'b', 'doc');
    insert into orchestrator.deliverable_versions(deliverable_id, version_number) values ({deliv_a}, 1), ({deliv_b}, 1);
    insert into agentflow.users(id, email, password_hash, name) values ({A}, {A_mail}, {hash}, 'Alice');
    insert into agentflow.workspaces(id, owner_id, name, slug) values ({W}, {A}, 'One', {W});
    insert into agentflow.projects(id, workspace_id, name, slug) values ({P}, {W}, 'Site', 'site');
    insert into agentflow.agents(id, workspace_id, agent_level, agent_code, name, role_title, api_key_hash) values
      ({G}, {W}, 'organization', 'cto', 'Ada', 'CTO', {hash});
    insert into agentflow.agent_credentials(agent_id, credential_type, credential_hash, salt) values ({G}, 'api_key', {hash}, 's');
    insert into agentflow.sessions(id, agent_id, project_id) values ({session}, {G}, {P});
    insert into agentflow.events(session_id, author_id, project_id, type, content) values ({session}, {G}, {P}, 'session_log', '{}');
    insert into agentflow.kpis(agent_id, metrics) values ({G}, '{}');
    insert into agentflow.tasks(project_id, github_issue_id, github_issue_number, title, assigned_agent_id) values
      ({P}, 1001, 1, 'Build', {G});
    insert into agentflow.wiki_entries(workspace_id, proposed_by_agent_id, status, title, slug, content) values
      ({W}, {G}, 'draft', 'Idea', 'idea', 'text');
  ]]

  setup(function()
    A, B, ADMIN = h.user(), h.user(), h.user('{"role":"admin"}')
    local ids = { A = A, B = B, A_mail = A .. "@example.test", B_mail = B .. "@example.test",
      hash = "$2a$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW" }
    for _, name in ipairs({ "chat_a", "chat_b", "msg_a", "msg_b", "doc_a", "doc_b", "org_a", "org_b", "proj_a", "proj_b",
      "run_a", "run_b", "broker", "conv_a", "conv_b", "otask_a", "otask_b", "oproj_a", "oproj_b", "deliv_a", "deliv_b",
      "W", "P", "G", "session" }) do
      ids[name] = h.uuid()
    end
    G, chat_a, chat_b = ids.G, ids.chat_a, ids.chat_b
    h.accepts((FIXTURE:gsub("{([%w_]+)}", function(k) return h.lit(assert(ids[k], k)) end)))
    server = start()
    local function tok(args) return srv.token(SECRET, args) end
    callers = {
      { name = "alice", tok = tok("--sub " .. A) },
      { name = "bob", tok = tok("--sub " .. B) },
      { name = "admin", tok = tok("--sub " .. ADMIN .. " --admin") },
      { name = "anon" },
      { name = "service_role", tok = tok("--role service_role"), as_service = true },
      { name = "agent", tok = tok("--sub " .. G .. " --claims " .. srv.quote(cjson.encode({ agent_id = G }))) },
    }
    tally = {}
  end)

  teardown(function()
    assert.equal(0, server.stop(), server.log())
    server.cleanup()
  end)

  -- Compares every call of calls_for(caller) as each caller; counts the statuses.
  local function differential(schema, calls_for, label)
    for _, who in ipairs(callers) do
      local calls = calls_for(who)
      for _, c in ipairs(calls) do
        c.as_service = who.as_service
        c.opts = c.opts or {}
        c.opts.json = true -- the text, to compare with /rest/v1's byte for byte
      end
      local answers = via_data(server.port, who.tok, calls)
      for i, c in ipairs(calls) do
        local status = same(rest(server.port, who.tok, schema, c), answers[i],
          ("%s %s as %s"):format(c.verb, label, who.name))
        local key = tostring(status)
        tally[key] = (tally[key] or 0) + 1
      end
    end
  end

  -- The tables with a policy file, and their primary keys.
  local function policy_tables()
    local list = {}
    local p = assert(io.popen("cd lua && ls policies/*/*.lua"))
    for path in p:lines() do
      local schema, tbl = path:match("^policies/([^/]+)/([^/]+)%.lua$")
      list[#list + 1] = { schema = schema, name = tbl }
    end
    p:close()
    return list
  end

  local function primary_key(schema, tbl)
    local rows = assert(h.query(([[select a.attname as col, format_type(a.atttypid, a.atttypmod) as type
      from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
      where i.indisprimary and i.indrelid = %s::regclass order by a.attnum]]):format(h.lit(('%s."%s"'):format(schema, tbl)))))
    return rows
  end

  -- A row as service_role reads it, the first by primary key (or nil).
  local function sample(schema, tbl, pk)
    local order = {}
    for i, k in ipairs(pk) do order[i] = k.col end
    local r = rest(server.port, callers[5].tok, schema, { verb = "select", table = tbl,
      query = { select = "*", order = table.concat(order, ","), limit = "1" } })
    assert.equal(200, r.status, r.raw)
    return r.doc[1]
  end

  -- The four verbs on schema.tbl, from its sample row: read a page, insert a
  -- copy under a new key, rewrite a column with its own value, delete the
  -- row; writes ask for the key back and are taken back.
  local function verbs(schema, tbl)
    local pk = primary_key(schema, tbl)
    local row = sample(schema, tbl, pk)
    local keys, filter = {}, {}
    for i, k in ipairs(pk) do
      keys[i] = k.col
      filter[k.col] = row and ("eq." .. tostring(row[k.col])) or "is.null"
    end
    local key_list = #keys > 0 and table.concat(keys, ",") or "*"
    local copy, patch = {}, {}
    if row then
      local fresh = h.uuid()
      for k, v in pairs(row) do copy[k] = v end
      -- A new key: its uuid columns fresh, else its integers moved, else its text suffixed.
      local kinds = {}
      for _, k in ipairs(pk) do
        local v = row[k.col]
        kinds[k.col] = k.type == "uuid" and "uuid" or math.type(v) == "integer" and "integer" or type(v) == "string" and "text"
        kinds[kinds[k.col] or "other"] = true
      end
      for _, k in ipairs(pk) do
        local kind, v = kinds[k.col], row[k.col]
        if kind == "uuid" then copy[k.col] = fresh
        elseif kind == "integer" and not kinds.uuid then copy[k.col] = v + 1000000
        elseif kind == "text" and not kinds.uuid and not kinds.integer then copy[k.col] = v .. "-copy" end
      end
      local cols = {}
      for k in pairs(row) do if not filter[k] then cols[#cols + 1] = k end end
      table.sort(cols)
      if cols[1] then patch[cols[1]] = row[cols[1]] end
    end
    local write = { select = key_list }
    return function()
      return {
        { verb = "select", table = tbl, query = { select = "*", order = key_list ~= "*" and key_list or nil, limit = "5" },
          opts = { count = "exact", schema = schema } },
        { verb = "insert", table = schema .. "." .. tbl, rows = copy, opts = write, rollback = true },
        { verb = "update", table = tbl, query = filter, patch = patch, opts = { select = key_list, schema = schema },
          rollback = true },
        { verb = "delete", table = schema .. "." .. tbl, query = filter, opts = write, rollback = true },
      }
    end
  end

  describe("answers as /rest/v1 for every caller", function()
    for _, t in ipairs(policy_tables()) do
      it(("on %s.%s: select, insert, update, delete"):format(t.schema, t.name), function()
        differential(t.schema, verbs(t.schema, t.name), t.schema .. "." .. t.name)
      end)
    end

    -- The functions of lua/policies/rpc.lua that take no required argument
    -- (those that do are the broker specs' business).
    local bare = {}
    for _, r in ipairs(assert(h.query("select proname from pg_proc where pronamespace = 'public'::regnamespace"
      .. " group by proname having min(pronargs - pronargdefaults) = 0"))) do
      bare[r.proname] = true
    end
    local names = {}
    for name in pairs(require("policies.rpc")) do
      if bare[name] then names[#names + 1] = name end
    end
    table.sort(names)
    for _, name in ipairs(names) do
      it("on rpc " .. name, function()
        differential("public", function()
          return { { verb = "rpc", table = name, args = {}, rollback = true } }
        end, "rpc " .. name)
      end)
    end

    it("met rows read, rows written, and writes refused to users and to anon", function()
      assert.is_true((tally["200"] or 0) > 300, cjson.encode(tally))
      assert.is_true((tally["201"] or 0) > 20, cjson.encode(tally))
      assert.is_true((tally["403"] or 0) > 100, cjson.encode(tally))
      assert.is_true((tally["401"] or 0) > 40, cjson.encode(tally))
    end)
  end)

  describe("answers in Lua", function()
    it("gives rows as tables with cjson.null, the count, one object, and errors as values", function()
      local code, body = srv.http(server.port, "GET", "/v1/spec/lua/" .. chat_a, nil, auth(callers[1].tok))
      assert.equal(200, code, body)
      local doc = cjson.decode(body)
      assert.same({ { id = chat_a, title = "Alice's chat", user_id = A, visibility = "private", lastContext = cjson.null } },
        doc.rows)
      assert.is_true(doc.null_is_cjson_null)
      assert.same({ status = 200, count = 1 }, doc.meta)
      assert.equal("Alice's chat", doc.title)
      assert.is_true(doc.none)
      assert.same({ code = "PGRST116", message = "Cannot coerce the result to a single JSON object",
        details = "The result contains 0 rows", hint = cjson.null, status = 406 }, doc.single_err)
      assert.equal(404, doc.unknown.status)
      assert.equal("PGRST205", doc.unknown.code)
      assert.equal(400, doc.bad.status)
      assert.equal("PGRST100", doc.bad.code)
      assert.equal(('[{"id":"%s"}]'):format(chat_a), doc.text)
      assert.same({ { role = "user" } }, doc.messages)
    end)
  end)

  describe("validators", function()
    local function admin_config(verb, body)
      local c = { verb = verb, table = "admin_config", opts = { select = "config_key" } }
      if verb == "insert" then c.rows = body else c.query, c.patch = { config_key = "eq.app_settings" }, body end
      local who = callers[3]
      local d = via_data(server.port, who.tok, { c })[1]
      local r = rest(server.port, who.tok, "public", c)
      same(r, d, verb .. " admin_config")
      return r
    end

    it("refuse an invalid admin_config insert with /rest/v1's 422 body", function()
      local r = admin_config("insert", { config_key = "chat_model_agent_openai",
        config_data = { enabled = "yes", rateLimit = { perMinute = -1 } } })
      assert.equal(422, r.status)
      assert.equal("23514", r.doc.code)
      assert.is_true(#r.doc.details >= 1)
      assert.equal("0", h.scalar("select count(*) from admin_config where config_key = 'chat_model_agent_openai'"
        .. " and config_data ->> 'enabled' = 'yes'"))
    end)

    it("refuse an invalid admin_config update with /rest/v1's 422 body", function()
      local before = h.scalar("select config_data::text from admin_config where config_key = 'app_settings'")
      local r = admin_config("update", { config_data = { activeProvider = 42 } })
      assert.equal(422, r.status)
      assert.equal(before, h.scalar("select config_data::text from admin_config where config_key = 'app_settings'"))
    end)
  end)

  describe("validated tables", function()
    it("refuse a route's raw write as the caller; strata.data and the service write them", function()
      local key = "document_agent_openai"
      local cfg = { enabled = true, rateLimit = { perMinute = 1, perHour = 2, perDay = 3 },
        tools = { create = { enabled = true } } }
      local seed = h.scalar("select config_data::text from admin_config where config_key = 'document_agent_openai'")
      h.accepts("delete from admin_config where config_key = 'document_agent_openai'")
      h.accepts([[insert into admin_config(config_key, config_data) values ('document_agent_openai', '{"enabled":false,
        "rateLimit":{"perMinute":5,"perHour":6,"perDay":7},"tools":{"create":{"enabled":true}}}')]])
      local code, body = srv.http(server.port, "POST", "/v1/spec/validated", cjson.encode({ key = key, data = cfg }),
        auth(callers[3].tok, { ["Content-Type"] = "application/json" }))
      assert.equal(200, code, body)
      local out = cjson.decode(body)
      assert.equal("42501", out.raw.code)
      assert.equal("table public.admin_config is validated by lua/validators/admin_config.lua; "
        .. "this write did not go through it", out.raw.message)
      assert.matches("strata.data", out.raw.hint, 1, true)
      assert.is_true(out.data.ok, body)
      -- The flag strata.data sets lasts for its own statement only.
      assert.equal("42501", out.raw_after_data.code)
      assert.is_true(out.service.ok, body)
      assert.equal("1", h.scalar("select config_data -> 'rateLimit' ->> 'perMinute' from admin_config"
        .. " where config_key = 'document_agent_openai'"))
      h.accepts("update admin_config set config_data = " .. h.lit(seed) .. "::jsonb where config_key = 'document_agent_openai'")
    end)
  end)

  describe("as_service", function()
    it("reads every row where the caller's policy shows its own, and is logged at debug level", function()
      local code, body = srv.http(server.port, "GET", ("/v1/spec/service/%s/%s"):format(chat_a, chat_b), nil,
        auth(callers[1].tok))
      assert.equal(200, code, body)
      assert.same({ mine = 1, all = 2 }, cjson.decode(body))
      local found
      for line in server.log():gmatch("[^\n]+") do
        if line:find('"strata.data as service"', 1, true) and line:find('"target":"Chat"', 1, true) then found = line end
      end
      assert.is_truthy(found, "a debug line per call")
      assert.matches('"level":"debug"', found, 1, true)
    end)
  end)

  describe("transaction", function()
    local function tx(mode)
      local chat = h.uuid()
      local code, body = srv.http(server.port, "POST", "/v1/spec/tx", cjson.encode({ mode = mode, chat = chat,
        title = "tx " .. mode, uid = A, other = B, forged = h.uuid() }), auth(callers[1].tok, { ["Content-Type"] = "application/json" }))
      assert.equal(200, code, body)
      local chats = h.scalar(("select count(*) from \"Chat\" where id = %s"):format(h.lit(chat)))
      local msgs = h.scalar(("select count(*) from \"Message_v2\" where \"chatId\" = %s"):format(h.lit(chat)))
      return cjson.decode(body), chats, msgs
    end

    it("commits every call when the function returns", function()
      local res, chats, msgs = tx("commit")
      assert.is_true(res.ok)
      assert.is_true(res.res)
      assert.same({ "1", "1" }, { chats, msgs })
    end)

    it("rolls every call back when the function raises", function()
      local res, chats, msgs = tx("raise")
      assert.is_false(res.ok)
      assert.matches("boom", res.res)
      assert.same({ "0", "0" }, { chats, msgs })
    end)

    it("rolls every call back when the function answers nil, err", function()
      local res, chats, msgs = tx("nil_err")
      assert.is_true(res.ok)
      assert.equal("refused by the rule", res.err)
      assert.same({ "0", "0" }, { chats, msgs })
    end)

    it("takes back only a write the policy refuses, and goes on", function()
      local res, chats = tx("partial")
      assert.equal(1, res.res)
      assert.equal("42501", res.forged_err.code)
      assert.equal(403, res.forged_err.status)
      assert.equal("1", chats)
      assert.equal("0", h.scalar("select count(*) from \"Chat\" where title = 'forged'"))
    end)
  end)

  describe("misuse", function()
    it("raises for another identity inside a transaction, nesting, no running request and bad opts", function()
      local code, body = srv.http(server.port, "GET", "/v1/spec/misuse", nil, auth(callers[1].tok))
      assert.equal(200, code, body)
      local doc = cjson.decode(body)
      assert.matches("acts as the caller; a call as the service cannot run inside it", doc.mixed, 1, true)
      assert.matches("already inside a transaction", doc.nested, 1, true)
      assert.matches("can only be used by a request's handler", doc.outside, 1, true)
      assert.matches("opts.returning cannot be everything", doc.bad_opts, 1, true)
    end)
  end)
end)
