-- Adversarial checks of the REST API's access control, end to end: a
-- signed-in user (and anon) trying to read or write what the row policies
-- (lua/policies/) and their hidden columns keep from them, through
-- embedding, spreads, counts, ordering, CSV, upserts, PUT, Prefer options,
-- error details, role claims, profiles and odd URLs.  Every attempt here is
-- kept as a regression test, whether it ever succeeded or not.
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")
local af = require("fixtures.agentflow")

local SECRET = "security-spec-secret"
local lit = h.lit

local function token(args) return srv.token(SECRET, args) end

-- The whole answer text of a request as the bearer of tok (nil: anon):
-- status, decoded body (raw text when not JSON), headers, raw text.
local function request(port, tok, method, path, body, headers)
  local hs = { ["Content-Type"] = "application/json" }
  if tok then hs.Authorization = "Bearer " .. tok end
  for k, v in pairs(headers or {}) do hs[k] = v or nil end
  return srv.rest(port, method, "/rest/v1/" .. path, body, hs)
end

local AF = { ["Accept-Profile"] = "agentflow", ["Content-Profile"] = "agentflow" }

local function with(base, extra)
  local out = {}
  for k, v in pairs(base or {}) do out[k] = v end
  for k, v in pairs(extra or {}) do out[k] = v end
  return out
end

describe("REST access control under attack #server", function()
  local server, port
  local A, B, C1, C2
  local tA, tB, tC1, tC2
  local chat_a, chat_b, msg_a, msg_b, doc_a, doc_b_in_a
  local W1, W2, P1, G_CTO, G_DEV, G_OTHER, CRED, SLUG1, SLUG2

  setup(function()
    -- A function of another exposed schema named as one rpc.lua lets
    -- every signed-in user call in public.
    h.accepts([[create or replace function agentflow.get_user_role() returns text language sql stable
      as $$ select 'agentflow internals' $$]])
    server = srv.start({ STRATA_JWT_SECRET = SECRET })
    port = server.port
    assert.equal(200, (srv.await(port, "/ready", 200, 10)), server.log())
    A, B = h.user(), h.user()
    tA, tB = token("--sub " .. A), token("--sub " .. B)
    chat_a, chat_b, msg_a, msg_b = h.uuid(), h.uuid(), h.uuid(), h.uuid()
    doc_a, doc_b_in_a = h.uuid(), h.uuid()
    -- Bob's document hangs off Alice's chat; a vote (written past the API)
    -- joins Alice's chat to Bob's message, a junction row Alice may not read.
    h.accepts(([[
      insert into public."Chat"(id, title, user_id) values (%s, 'Alice secret chat', %s), (%s, 'Bob secret chat', %s);
      insert into public."Message_v2"(id, "chatId", role, parts) values
        (%s, %s, 'user', '[{"text":"alice says"}]'), (%s, %s, 'user', '[{"text":"bob whispers"}]');
      insert into public."Document"(id, title, content, user_id, chat_id) values
        (%s, 'Alice doc', 'a', %s, %s), (%s, 'Bob doc in alice chat', 'bob private', %s, %s);
      insert into public."Vote_v2"("chatId", "messageId", "isUpvoted") values (%s, %s, true);
    ]]):format(lit(chat_a), lit(A), lit(chat_b), lit(B), lit(msg_a), lit(chat_a), lit(msg_b), lit(chat_b),
      lit(doc_a), lit(A), lit(chat_a), lit(doc_b_in_a), lit(B), lit(chat_a), lit(chat_a), lit(msg_b)))

    C1, C2, W1, W2, P1 = h.uuid(), h.uuid(), h.uuid(), h.uuid(), h.uuid()
    G_CTO, G_DEV, G_OTHER, CRED = h.uuid(), h.uuid(), h.uuid(), h.uuid()
    SLUG1, SLUG2 = "sec-one-" .. W1:sub(1, 8), "sec-two-" .. W2:sub(1, 8)
    local hash = lit(af.HASH)
    h.accepts(([[
      insert into agentflow.users(id, email, password_hash, name) values
        (%s, %s, %s, 'CEO one'), (%s, %s, %s, 'CEO two');
      insert into agentflow.workspaces(id, owner_id, name, slug) values (%s, %s, 'One', %s), (%s, %s, 'Two', %s);
      insert into agentflow.projects(id, workspace_id, name, slug) values (%s, %s, 'Site', 'site');
      insert into agentflow.agents(id, workspace_id, project_id, agent_level, agent_code, name, role_title, api_key_hash,
          settings) values
        (%s, %s, null, 'organization', 'cto', 'Ada', 'CTO', %s, '{"secret":"cto-settings"}'),
        (%s, %s, %s, 'project', 'dev', 'Dan', 'Developer', %s, '{"secret":"dev-settings"}'),
        (%s, %s, null, 'organization', 'cto', 'Otto', 'CTO', %s, '{}');
      insert into agentflow.agent_credentials(id, agent_id, credential_type, credential_hash, salt) values
        (%s, %s, 'api_key', %s, 'pepper');
    ]]):format(lit(C1), lit(C1 .. "@example.test"), hash, lit(C2), lit(C2 .. "@example.test"), hash,
      lit(W1), lit(C1), lit(SLUG1), lit(W2), lit(C2), lit(SLUG2), lit(P1), lit(W1),
      lit(G_CTO), lit(W1), hash, lit(G_DEV), lit(W1), lit(P1), hash, lit(G_OTHER), lit(W2), hash,
      lit(CRED), lit(G_CTO), hash))
    tC1, tC2 = token("--sub " .. C1), token("--sub " .. C2)
  end)

  teardown(function()
    assert.equal(0, server.stop(), server.log())
    server.cleanup()
    h.accepts("drop function if exists agentflow.get_user_role()")
  end)

  -- As Alice / Bob on the public schema.
  local function alice(method, path, body, hs) return request(port, tA, method, path, body, hs) end
  local function bob(method, path, body, hs) return request(port, tB, method, path, body, hs) end
  -- As CEO one / two (or anon, tok nil) on the agentflow schema.
  local function ceo1(method, path, body, hs) return request(port, tC1, method, path, body, with(AF, hs)) end
  local function ceo2(method, path, body, hs) return request(port, tC2, method, path, body, with(AF, hs)) end
  local function anon_af(method, path, body, hs) return request(port, nil, method, path, body, with(AF, hs)) end

  -- Fails when the raw answer holds any of the secrets.
  local function leaks_none(raw, ...)
    for _, s in ipairs({ ... }) do
      for _, form in ipairs({ s, (s:gsub("/", "\\/")) }) do -- JSON may escape "/"
        assert.is_nil((raw or ""):find(form, 1, true), "the answer leaks " .. s .. ": " .. tostring(raw))
      end
    end
  end

  local function chat_title(id)
    return h.scalar(("select title from public.\"Chat\" where id = %s"):format(lit(id)))
  end

  describe("embedding", function()
    it("to-many: another user's rows under my row embed as []", function()
      local code, rows, _, raw = alice("GET", "Chat?select=id,Document(id,content)&id=eq." .. chat_a)
      assert.equal(200, code, raw)
      assert.same({ { id = chat_a, Document = { { id = doc_a, content = "a" } } } }, rows)
      leaks_none(raw, doc_b_in_a, "bob private")
    end)

    it("to-one: a row I may not read embeds as null, spread as nulls", function()
      local code, rows, _, raw = bob("GET", "Document?select=id,Chat(title,user_id)&id=eq." .. doc_b_in_a)
      assert.equal(200, code, raw)
      assert.same({ { id = doc_b_in_a, Chat = cjson.null } }, rows)
      code, rows, _, raw = bob("GET", "Document?select=id,...Chat(title,user_id)&id=eq." .. doc_b_in_a)
      assert.equal(200, code, raw)
      assert.same({ { id = doc_b_in_a, title = cjson.null, user_id = cjson.null } }, rows)
      leaks_none(raw, "Alice secret chat", A)
    end)

    it("!inner is no oracle: a hidden embedded row does not keep the parent", function()
      local _, rows, _, raw = bob("GET", "Document?select=id,Chat!inner(id)&id=eq." .. doc_b_in_a)
      assert.same({}, rows, raw)
      local code, hdrs
      code, rows, hdrs, raw = alice("GET", "Chat?select=id,Document!inner(id)&Document.id=eq." .. doc_b_in_a, nil,
        { Prefer = "count=exact" })
      assert.equal(200, code, raw)
      assert.same({}, rows, raw)
      assert.equal("*/0", hdrs["content-range"])
      -- nor a filter on a hidden embedded row's column
      _, rows, _, raw = bob("GET", "Document?select=id,Chat!inner(id)&Chat.title=like.Alice*")
      assert.same({}, rows, raw)
    end)

    it("t(count) counts only the rows I may see", function()
      local code, rows, _, raw = alice("GET", "Chat?select=id,Document(count)&id=eq." .. chat_a)
      assert.equal(200, code, raw)
      assert.same({ { id = chat_a, Document = { { count = 1 } } } }, rows)
      _, rows, _, raw = alice("GET", "Chat?select=id,n:Message_v2!Message_v2_chatId_fkey(count)&id=eq." .. chat_b)
      assert.same({}, rows, raw)
    end)

    it("ordering by an embedded column sees only visible rows (no order oracle)", function()
      local code, rows, _, raw = bob("GET", "Document?select=id,Chat(title)&order=Chat(title).asc&id=eq." .. doc_b_in_a)
      assert.equal(200, code, raw)
      assert.same({ { id = doc_b_in_a, Chat = cjson.null } }, rows)
    end)

    it("many-to-many: a junction row I may not read joins nothing", function()
      local code, _, _, raw = alice("GET", "Chat?select=id,Message_v2!Vote_v2(id,parts)&id=eq." .. chat_a)
      assert.is_true(code == 200 or code == 300 or code == 400, raw)
      leaks_none(raw, msg_b, "bob whispers")
      code, _, _, raw = bob("GET", "Message_v2?select=id,Chat!Vote_v2(id,title)&id=eq." .. msg_b)
      assert.is_true(code == 200 or code == 300 or code == 400, raw)
      leaks_none(raw, chat_a, "Alice secret chat")
    end)

    it("embeds of a table without any select policy for me stay empty (agent_credentials)", function()
      local code, rows, _, raw = ceo1("GET", "agents?select=id,agent_credentials(id),n:agent_credentials(count)&id=eq."
        .. G_CTO)
      assert.equal(200, code, raw)
      assert.same({ { id = G_CTO, agent_credentials = {}, n = { { count = 0 } } } }, rows)
      leaks_none(raw, CRED)
    end)

    it("embedding in a write's representation applies the embedded table's policy", function()
      local code, rows, _, raw = bob("PATCH", "Document?select=id,Chat(title)&id=eq." .. doc_b_in_a,
        { content = "bob private" }, { Prefer = "return=representation" })
      assert.equal(200, code, raw)
      assert.same({ { id = doc_b_in_a, Chat = cjson.null } }, rows)
      leaks_none(raw, "Alice secret chat")
    end)
  end)

  describe("hidden columns", function()
    local HASH = af.HASH

    it("are refused by name everywhere: select, alias, cast, json path, filter, or=, order, embed filter", function()
      for _, path in ipairs({
        "agents?select=api_key_hash", "agents?select=k:api_key_hash", "agents?select=api_key_hash::text",
        "agents?select=id,api_key_hash->>x", "agents?api_key_hash=like.*", "agents?api_key_hash->>x=is.null",
        "agents?or=(api_key_hash.like.*,id.is.null)", "agents?not.and=(api_key_hash.is.null)", "agents?order=api_key_hash",
        "workspaces?select=id,agents(api_key_hash)", "workspaces?select=id,agents!inner(id)&agents.api_key_hash=like.*",
        "workspaces?select=id,agents(id)&agents.order=api_key_hash", "workspaces?select=id,agents(id)&agents.or=(api_key_hash.is.null)",
        "workspaces?select=id,users(password_hash)", "workspaces?select=id,...users(password_hash)",
        "agents?select=id,workspaces(users(password_hash))", "users?password_hash=like.$2*",
        "agents?select=id,agent_credentials(salt)", "workspaces?select=id,users(id)&order=users(password_hash)",
        "workspaces?select=id,...users(id)&users.password_hash=like.*", "agents?select=id,...workspaces(id,...users(password_hash))",
        "agents?order=api_key_hash->>x.desc", "agents?select=id&id=eq." .. G_CTO .. "&order=id,api_key_hash",
      }) do
        local code, body, _, raw = ceo1("GET", path)
        assert.equal(403, code, path .. " " .. tostring(raw))
        assert.equal("42501", body.code, path)
        leaks_none(raw, HASH, "pepper")
      end
      assert.equal(401, (anon_af("GET", "agents?select=api_key_hash")))
    end)

    it("are left out of *, embedded *, spread *, CSV and a count", function()
      for _, path in ipairs({ "agents?select=*&id=eq." .. G_CTO, "workspaces?select=*,agents(*),users(*)&id=eq." .. W1,
        "agents?select=*,...workspaces(*)&id=eq." .. G_CTO, "workspaces?select=id,...users(*)&id=eq." .. W1 }) do
        local code, rows, _, raw = ceo1("GET", path)
        assert.equal(200, code, path .. " " .. tostring(raw))
        assert.equal(1, #rows, path)
        leaks_none(raw, HASH, "password_hash", "api_key_hash")
      end
      local code, _, hdrs, raw = ceo1("GET", "agents?select=*,workspaces(*)&id=eq." .. G_CTO, nil, { Accept = "text/csv" })
      assert.equal(200, code, raw)
      assert.matches("^text/csv", hdrs["content-type"])
      leaks_none(raw, HASH, "api_key_hash")
      code, _, hdrs = ceo1("GET", "agents?select=id&id=eq." .. G_CTO, nil, { Prefer = "count=exact" })
      assert.equal(200, code)
      assert.equal("0-0/1", hdrs["content-range"])
    end)

    it("are never in a write's representation (PATCH, PUT, POST, CSV), and cannot be an on_conflict target", function()
      local code, _, _, raw = ceo1("PATCH", "agents?id=eq." .. G_CTO, { role_title = "Chief" },
        { Prefer = "return=representation" })
      assert.equal(200, code, raw)
      leaks_none(raw, HASH, "api_key_hash")
      code, _, _, raw = ceo1("PATCH", "agents?select=id,api_key_hash&id=eq." .. G_CTO, { role_title = "Boss" },
        { Prefer = "return=representation" })
      assert.equal(403, code, raw)
      assert.equal("Chief", h.scalar(("select role_title from agentflow.agents where id = %s"):format(lit(G_CTO))))
      code, _, _, raw = ceo1("PUT", "agents?id=eq." .. G_CTO, { id = G_CTO, workspace_id = W1, agent_level = "organization",
        agent_code = "cto", name = "Ada", role_title = "CTO", api_key_hash = HASH }, { Prefer = "return=representation" })
      assert.equal(200, code, raw)
      leaks_none(raw, HASH, "api_key_hash")
      local id = h.uuid()
      code, _, _, raw = ceo1("POST", "agents?on_conflict=api_key_hash", { id = id, workspace_id = W1,
        agent_level = "organization", agent_code = "probe", name = "Probe", role_title = "P", api_key_hash = HASH },
        { Prefer = "return=representation,resolution=merge-duplicates" })
      assert.equal(403, code, raw)
      code, _, _, raw = ceo1("POST", "agents",
        "id,workspace_id,agent_level,agent_code,name,role_title,api_key_hash\n" .. id .. "," .. W1
          .. ",organization,csvagent,Csv,C," .. HASH .. "\n",
        { ["Content-Type"] = "text/csv", Prefer = "return=representation", Accept = "text/csv" })
      assert.equal(201, code, raw)
      leaks_none(raw, HASH, "api_key_hash")
    end)

    it("cannot be probed by a write's filter (PATCH, DELETE: 403 before anything is written)", function()
      local code, body, _, raw = ceo1("PATCH", "agents?api_key_hash=eq." .. af.HASH, { role_title = "Probed" },
        { Prefer = "count=exact" })
      assert.equal(403, code, raw)
      assert.equal("42501", body.code)
      code = ceo1("DELETE", "agents?id=eq." .. G_OTHER .. "&api_key_hash=like.*", nil, { Prefer = "count=exact" })
      assert.equal(403, code)
      code = ceo1("PATCH", "agents?id=eq." .. G_CTO .. "&or=(api_key_hash.like.$2a*)", { role_title = "Probed" })
      assert.equal(403, code)
      assert.equal("0", h.scalar("select count(*) from agentflow.agents where role_title = 'Probed'"))
    end)

    it("are not echoed by a constraint violation's details (the failing row)", function()
      -- An organization-level agent turned project-level without a project
      -- breaks agents_level_project_check; PostgreSQL's detail would print
      -- the whole row, api_key_hash included.
      local code, body, _, raw = ceo1("PATCH", "agents?id=eq." .. G_CTO, { agent_level = "project" })
      assert.equal(400, code, raw)
      assert.equal("23514", body.code)
      leaks_none(raw, HASH, "cto-settings")
    end)
  end)

  describe("writes to rows I do not own", function()
    -- An upsert onto a row the caller cannot see is refused (403 42501),
    -- whether the REST layer's checks or the generated RLS (sql/120, which
    -- hides that row so the merge skips it) stop it; the row stays as it was.
    local function refused(code, raw)
      assert.equal(403, code, raw)
      assert.equal("42501", cjson.decode(raw).code, raw)
    end

    it("PUT of another user's row is refused and changes nothing", function()
      local code, _, _, raw = alice("PUT", "Chat?id=eq." .. chat_b, { id = chat_b, title = "pwned", user_id = A },
        { Prefer = "return=representation" })
      refused(code, raw)
      leaks_none(raw, "Bob secret chat")
      assert.equal("Bob secret chat", chat_title(chat_b))
    end)

    it("an upsert that merges into another user's row is refused; ignore-duplicates leaves it", function()
      local code, _, _, raw = alice("POST", "Chat", { id = chat_b, title = "pwned", user_id = A },
        { Prefer = "return=representation,resolution=merge-duplicates" })
      refused(code, raw)
      code, _, _, raw = alice("POST", "Chat?on_conflict=id", { { id = chat_b, title = "pwned", user_id = B } },
        { Prefer = "return=representation,resolution=merge-duplicates,missing=default" })
      refused(code, raw)
      code, _, _, raw = alice("POST", "Chat", { id = chat_b, title = "pwned", user_id = A },
        { Prefer = "return=representation,resolution=ignore-duplicates" })
      assert.equal(201, code, raw)
      leaks_none(raw, "Bob secret chat")
      assert.equal("Bob secret chat", chat_title(chat_b))
    end)

    it("an upsert into another user's row does not leak it through a constraint error", function()
      -- Payload columns pass the table's checks alone, but merged with the
      -- victim's project agent they break agents_level_project_check; the
      -- merge must not happen at all for a row the update policy refuses.
      local code, _, _, raw = ceo2("POST", "agents", { id = G_DEV, workspace_id = W2, agent_level = "organization",
        agent_code = "spy", name = "Spy", role_title = "Spy", api_key_hash = af.HASH },
        { Prefer = "return=representation,resolution=merge-duplicates" })
      refused(code, raw)
      leaks_none(raw, P1, "dev-settings", W1)
      code, _, _, raw = ceo2("PUT", "agents?id=eq." .. G_DEV, { id = G_DEV, workspace_id = W2, agent_level = "organization",
        agent_code = "spy", name = "Spy", role_title = "Spy", api_key_hash = af.HASH })
      refused(code, raw)
      leaks_none(raw, P1, "dev-settings", W1)
      -- the unique (workspace_id, project_id, name) key of the victim's row
      code, _, _, raw = ceo2("POST", "agents", { id = G_DEV, workspace_id = W1, project_id = P1, agent_level = "project",
        agent_code = "dev", name = "Dan", role_title = "Spy", api_key_hash = af.HASH },
        { Prefer = "resolution=merge-duplicates" })
      assert.equal(403, code, raw)
      assert.equal("Developer", h.scalar(("select role_title from agentflow.agents where id = %s"):format(lit(G_DEV))))
    end)

    it("a row cannot be handed to, or created for, another user (the update and insert checks)", function()
      local code, _, _, raw = alice("PATCH", "Chat?id=eq." .. chat_a, { user_id = B }, { Prefer = "return=representation" })
      assert.equal(403, code, raw)
      assert.equal(A, h.scalar(("select user_id::text from public.\"Chat\" where id = %s"):format(lit(chat_a))))
      code = alice("POST", "Message_v2", { chatId = chat_b, role = "user", parts = { { text = "injected" } } })
      assert.equal(403, code)
      code = alice("POST", "Vote_v2", { chatId = chat_a, messageId = msg_b, isUpvoted = false },
        { Prefer = "resolution=merge-duplicates" })
      assert.equal(403, code)
      assert.equal("true", h.scalar(("select \"isUpvoted\"::text from public.\"Vote_v2\" where \"chatId\" = %s"):format(
        lit(chat_a))))
    end)

    it("PATCH and DELETE with filters on embeds do not widen what they touch", function()
      local code, rows, _, raw = alice("PATCH", "Chat?select=id,Document!inner(id)&Document.id=eq." .. doc_b_in_a
        .. "&id=eq." .. chat_b, { title = "pwned" }, { Prefer = "return=representation" })
      assert.is_true(code == 200 or code == 400, raw)
      if code == 200 then assert.same({}, rows) end
      code = alice("DELETE", "Document?id=eq." .. doc_b_in_a, nil, { Prefer = "return=representation,count=exact" })
      assert.equal(200, code)
      assert.equal("Bob secret chat", chat_title(chat_b))
      assert.equal("1", h.scalar(("select count(*) from public.\"Document\" where id = %s"):format(lit(doc_b_in_a))))
    end)

    it("a CSV body cannot write rows for another user", function()
      local code, _, _, raw = alice("POST", "Chat", "title,user_id\ncsv pwn," .. B .. "\n",
        { ["Content-Type"] = "text/csv", Prefer = "return=representation" })
      assert.equal(403, code, raw)
      assert.equal("0", h.scalar("select count(*) from public.\"Chat\" where title = 'csv pwn'"))
    end)

    it("missing=default: the policy checks the row as written, defaults included", function()
      local code, _, _, raw = alice("POST", "Chat", { { title = "default pwn", user_id = B }, { title = "x" } },
        { Prefer = "return=representation,missing=default" })
      assert.is_true(code == 403 or code == 400, raw)
      assert.equal("0", h.scalar("select count(*) from public.\"Chat\" where title = 'default pwn'"))
    end)

    it("tx=rollback: a refused write answers the refusal only; an allowed one is taken back", function()
      local code, _, _, raw = alice("POST", "Chat", { title = "rb pwn", user_id = B },
        { Prefer = "return=representation,tx=rollback" })
      assert.equal(403, code, raw)
      leaks_none(raw, "rb pwn")
      code, _, _, raw = alice("PATCH", "Chat?id=eq." .. chat_b, { title = "rb pwn" },
        { Prefer = "return=representation,tx=rollback,count=exact" })
      assert.equal(200, code, raw)
      leaks_none(raw, "Bob secret chat", "rb pwn")
      code = alice("POST", "Chat", { title = "rb ok", user_id = A }, { Prefer = "return=representation,tx=rollback" })
      assert.equal(201, code)
      assert.equal("0", h.scalar("select count(*) from public.\"Chat\" where title in ('rb pwn', 'rb ok')"))
    end)

    it("count on writes counts only rows the policy let me touch", function()
      local code, _, hdrs = alice("PATCH", "Chat?id=in.(" .. chat_a .. "," .. chat_b .. ")", { title = "Alice secret chat" },
        { Prefer = "return=minimal,count=exact" })
      assert.equal(204, code)
      assert.equal("0-0/1", hdrs["content-range"])
    end)
  end)

  describe("roles, profiles and URLs", function()
    it("a signed token claiming supabase_admin or postgres gets no more than anon's rows", function()
      for _, role in ipairs({ "supabase_admin", "postgres" }) do
        local t = token("--sub " .. A .. " --role " .. role)
        local code, rows, _, raw = request(port, t, "GET", "Chat?select=id,title")
        assert.equal(200, code, raw)
        assert.same({}, rows)
        code = request(port, t, "POST", "Chat", { title = "role pwn", user_id = A })
        assert.is_true(code == 401 or code == 403, role)
        code, _, _, raw = request(port, t, "GET", "agents?select=id", nil, AF)
        assert.equal(200, code, raw)
        leaks_none(raw, G_CTO, G_DEV)
      end
      assert.equal("0", h.scalar("select count(*) from public.\"Chat\" where title = 'role pwn'"))
    end)

    it("functions rpc.lua does not list are service_role's only", function()
      for _, fn in ipairs({ "purge_old_activity_logs", "strata_rate_limit_take", "validate_user_id", "get_logging_config" }) do
        local code, _, _, raw = request(port, tA, "POST", "rpc/" .. fn, {})
        assert.is_true(code == 403 or code == 404, fn .. " " .. tostring(raw))
        assert.is_true(request(port, nil, "POST", "rpc/" .. fn, {}) >= 400)
      end
    end)

    it("rpc.lua's entries name public's functions only, not same-named ones of other schemas", function()
      local code, body, _, raw = request(port, tC1, "POST", "rpc/get_user_role", {}, AF)
      assert.equal(403, code, raw)
      assert.equal("42501", body.code)
      leaks_none(raw, "agentflow internals")
      code = request(port, tA, "POST", "rpc/get_user_role", {})
      assert.equal(200, code)
    end)

    it("tokens not signed with the secret, or with alg none, are refused whatever role they claim", function()
      local forged = srv.token("not-the-secret", "--role service_role")
      assert.equal(401, (request(port, forged, "GET", "Chat?select=id")))
      local mime = require("mime")
      local function b64url(x) return (mime.b64(x):gsub("[+/=]", { ["+"] = "-", ["/"] = "_", ["="] = "" })) end
      local none = b64url('{"alg":"none","typ":"JWT"}') .. "." .. b64url('{"role":"service_role","exp":'
        .. (os.time() + 600) .. "}") .. "."
      assert.equal(401, (request(port, none, "GET", "Chat?select=id")))
      -- the signature of a real token on a payload of one's own
      local real = token("--sub " .. A)
      local swapped = real:gsub("^([^.]+)%.[^.]+", "%1." .. b64url('{"role":"service_role","sub":"' .. A .. '","exp":'
        .. (os.time() + 600) .. "}"))
      assert.equal(401, (request(port, swapped, "GET", "Chat?select=id")))
    end)

    it("policy explain is service_role's only", function()
      local ask = { role = "authenticated", uid = B, table = "Chat", action = "select" }
      assert.equal(403, (srv.rest(port, "POST", "/admin/policy/explain", ask,
        { ["Content-Type"] = "application/json", Authorization = "Bearer " .. tA })))
      local code = srv.rest(port, "POST", "/admin/policy/explain", ask, { ["Content-Type"] = "application/json" })
      assert.is_true(code == 401 or code == 403)
    end)

    it("embeds cannot reach a schema that is not exposed (auth.users)", function()
      for _, path in ipairs({ "user_organizations?select=*,users(*)", "user_organizations?select=*,auth.users(*)",
        "Chat?select=id,users!inner(email)" }) do
        local code, _, _, raw = alice("GET", path)
        assert.equal(400, code, path .. " " .. tostring(raw))
        leaks_none(raw, "@example.test")
      end
    end)

    it("Accept-Profile / Content-Profile cannot name a schema that is not exposed", function()
      for _, s in ipairs({ "auth", "pg_catalog", "information_schema", "Public", "public;" }) do
        assert.equal(406, (request(port, tA, "GET", "users", nil, { ["Accept-Profile"] = s })), s)
        assert.equal(406, (request(port, tA, "POST", "users", { id = A }, { ["Content-Profile"] = s })), s)
        assert.equal(406, (request(port, tA, "POST", "rpc/uid", {}, { ["Content-Profile"] = s })), s)
      end
    end)

    it("table names with quotes, dots or unicode are not found, never run", function()
      for _, path in ipairs({ "%22Chat%22", "Chat%22;drop%20table%20x;--", "auth.users", "pg_catalog.pg_authid",
        "Ch%C3%A4t", "Chat%00", "..%2fChat" }) do
        local code = request(port, tA, "GET", path)
        assert.is_true(code == 404 or code == 400, path .. " answered " .. code)
      end
    end)

    it("very long query strings and odd ranges answer 4xx, never 5xx or another user's rows", function()
      local long = "Chat?select=id,title&title=in.(" .. string.rep("x,", 4000) .. "y)"
      local code = request(port, tA, "GET", long)
      assert.is_true(code >= 200 and code < 500, "long query answered " .. code)
      for _, r in ipairs({ "0-", "5-1", "-1-3", "0-99999999999999999999", "abc" }) do
        local c, _, _, raw = request(port, tA, "GET", "Chat?select=id,title", nil, { Range = r })
        assert.is_true(c < 500, r .. " answered " .. c)
        leaks_none(raw, "Bob secret chat")
      end
      for _, q in ipairs({ "limit=-1", "offset=-5", "limit=1e999", "offset=1e999", "offset=1e300", "offset=nan",
        "limit=inf", "limit=1.5" }) do
        local c, _, _, raw = request(port, tA, "GET", "Chat?select=id,title&" .. q, nil, { Prefer = "count=exact" })
        assert.equal(400, c, q .. " answered " .. tostring(raw))
        c, _, _, raw = request(port, tA, "GET", "Chat?select=id,Document(id)&Document." .. q)
        assert.equal(400, c, "Document." .. q .. " answered " .. tostring(raw))
        leaks_none(raw, "Bob secret chat")
      end
      assert.equal(200, (srv.await(port, "/ready", 200, 5)))
    end)

    it("anon reads nothing and writes nothing", function()
      local code, rows = request(port, nil, "GET", "Chat?select=id,Document(id)")
      assert.equal(200, code)
      assert.same({}, rows)
      assert.equal(401, (request(port, nil, "POST", "Chat", { title = "anon pwn", user_id = A })))
      assert.equal(401, (anon_af("GET", "users?select=password_hash")))
    end)
  end)
end)
