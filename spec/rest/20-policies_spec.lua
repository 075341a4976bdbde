-- Row policies of the public schema (lua/policies/public/*.lua and
-- lua/policies/rpc.lua) end to end: two users, an admin, anon and
-- service_role against the chat platform (seed 003), the scoped variables
-- (seed 001), admin and model configuration, logs, and the RPC functions.
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")

local SECRET = "policies-spec-secret"

-- A token from scripts/token, e.g. token("--sub " .. id .. " --admin").
local function token(args) return srv.token(SECRET, args) end

-- A REST client speaking as the bearer of `tok` (nil: anon); writes ask for the rows back.
local client = srv.rest_client

-- The values of `key` in a list of rows, sorted.
local function pluck(rows, key)
  local out = {}
  for i, r in ipairs(rows) do out[i] = r[key] end
  table.sort(out)
  return out
end

local function sorted(...)
  local t = { ... }
  table.sort(t)
  return t
end

local lit = h.lit

describe("row policies of the public schema #server", function()
  local server, alice, bob, admin, anon, service
  local A, B, ADMIN
  local chat_a, chat_b, msg_a, msg_b, doc_a, doc_b, var_a, var_b

  setup(function()
    server = srv.start({ STRATA_JWT_SECRET = SECRET })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 10)), server.log())
    A, B, ADMIN = h.user(), h.user(), h.user('{"role":"admin"}')
    alice = client(server.port, token("--sub " .. A))
    bob = client(server.port, token("--sub " .. B))
    admin = client(server.port, token("--sub " .. ADMIN .. " --admin"))
    anon = client(server.port, nil)
    service = client(server.port, token("--role service_role"))

    chat_a, chat_b, msg_a, msg_b = h.uuid(), h.uuid(), h.uuid(), h.uuid()
    doc_a, doc_b, var_a, var_b = h.uuid(), h.uuid(), h.uuid(), h.uuid()
    h.accepts(([[
      insert into public."Chat"(id, title, user_id) values (%s, 'Alice''s chat', %s), (%s, 'Bob''s chat', %s);
      insert into public."Message_v2"(id, "chatId", role, parts) values
        (%s, %s, 'user', '[{"text":"hi from alice"}]'), (%s, %s, 'user', '[{"text":"hi from bob"}]');
      insert into public."Document"(id, title, content, user_id) values
        (%s, 'Alice''s notes', 'a', %s), (%s, 'Bob''s notes', 'b', %s);
      insert into public.user_variables(id, user_id, key, value) values
        (%s, %s, 'user_name', 'Alice'), (%s, %s, 'user_email', 'bob@example.test');
      insert into public.usage_logs(user_id, agent_type, total_tokens) values (%s, 'chat_model_agent', 10), (%s, 'chat_model_agent', 20);
    ]]):format(lit(chat_a), lit(A), lit(chat_b), lit(B), lit(msg_a), lit(chat_a), lit(msg_b), lit(chat_b),
      lit(doc_a), lit(A), lit(doc_b), lit(B), lit(var_a), lit(A), lit(var_b), lit(B), lit(A), lit(B)))
  end)

  teardown(function()
    assert.equal(0, server.stop(), server.log())
    server.cleanup()
  end)

  local function both_chats() return ("Chat?select=id,title,user_id&id=in.(%s,%s)"):format(chat_a, chat_b) end

  describe("Chat", function()
    it("shows a user only their own chats", function()
      local code, rows = alice.get("Chat?select=id,user_id")
      assert.equal(200, code)
      assert.is_true(#rows >= 1)
      for _, r in ipairs(rows) do assert.equal(A, r.user_id) end
      assert.same({ chat_a }, pluck(select(2, alice.get(both_chats())), "id"))
    end)

    it("does not show another user's chat even when asked for it by id", function()
      assert.same({ 200, {} }, { bob.get("Chat?id=eq." .. chat_a) })
    end)

    it("lets an admin read every chat", function()
      assert.same(sorted(chat_a, chat_b), pluck(select(2, admin.get(both_chats())), "id"))
    end)

    it("changes nothing when a user updates someone else's chat", function()
      assert.same({ 200, {} }, { bob.patch("Chat?id=eq." .. chat_a, { title = "mine now" }) })
      assert.equal("Alice's chat", h.scalar("select title from public.\"Chat\" where id = " .. lit(chat_a)))
    end)

    it("deletes nothing when a user deletes someone else's chat", function()
      assert.same({ 200, {} }, { bob.delete("Chat?id=eq." .. chat_a) })
      assert.equal("1", h.scalar("select count(*) from public.\"Chat\" where id = " .. lit(chat_a)))
    end)

    it("lets an admin read but not change another user's chat", function()
      assert.same({ 200, {} }, { admin.patch("Chat?id=eq." .. chat_b, { title = "moderated" }) })
      assert.equal("Bob's chat", h.scalar("select title from public.\"Chat\" where id = " .. lit(chat_b)))
    end)

    it("lets a user rename their own chat", function()
      local code, rows = alice.patch("Chat?id=eq." .. chat_a, { title = "Alice's chat" })
      assert.equal(200, code)
      assert.same({ chat_a }, pluck(rows, "id"))
    end)

    it("refuses to hand a chat over to another user", function()
      local code, err = alice.patch("Chat?id=eq." .. chat_a, { user_id = B })
      assert.equal(403, code)
      assert.equal("42501", err.code)
      assert.equal(A, h.scalar("select user_id from public.\"Chat\" where id = " .. lit(chat_a)))
    end)

    it("lets a user create a chat of their own, and not one in someone else's name", function()
      local code, rows = alice.post("Chat", { title = "new", user_id = A })
      assert.equal(201, code)
      assert.equal(A, rows[1].user_id)
      local denied, err = alice.post("Chat", { title = "forged", user_id = B })
      assert.equal(403, denied)
      assert.equal("42501", err.code)
      assert.equal("0", h.scalar("select count(*) from public.\"Chat\" where title = 'forged'"))
    end)

    it("gives anon no chats and answers 401 to its writes", function()
      assert.same({ 200, {} }, { anon.get(both_chats()) })
      local code, err = anon.post("Chat", { title = "anon", user_id = A })
      assert.equal(401, code)
      assert.equal("42501", err.code)
    end)

    it("lets service_role see every chat", function()
      assert.same(sorted(chat_a, chat_b), pluck(select(2, service.get(both_chats())), "id"))
    end)

    it("refuses an upsert that would take over another user's chat", function()
      local code, err = bob.post("Chat", { id = chat_a, title = "taken", user_id = B },
        { Prefer = "resolution=merge-duplicates,return=representation" })
      -- Under the generated RLS (sql/120) bob cannot see the row, so the
      -- merge skips it: a refusal all the same.
      assert.equal(403, code)
      assert.equal("42501", err.code)
      assert.equal(A, h.scalar(("select user_id from \"Chat\" where id = %s"):format(h.lit(chat_a))))
    end)
  end)

  describe("Message_v2", function()
    local function both() return ("Message_v2?select=id&chatId=in.(%s,%s)"):format(chat_a, chat_b) end

    it("shows a user only the messages of their own chats", function()
      assert.same({ msg_a }, pluck(select(2, alice.get(both())), "id"))
      assert.same({ msg_b }, pluck(select(2, bob.get(both())), "id"))
    end)

    it("does not show an admin the messages of other users' chats", function()
      assert.same({ 200, {} }, { admin.get(both()) })
    end)

    it("lets a user write into their own chat and not into another user's", function()
      local code = alice.post("Message_v2", { chatId = chat_a, role = "user", parts = { { text = "more" } } })
      assert.equal(201, code)
      local denied, err = alice.post("Message_v2", { chatId = chat_b, role = "user", parts = { { text = "intruder" } } })
      assert.equal(403, denied)
      assert.equal("42501", err.code)
    end)

    it("lets nobody but service_role edit or delete a message", function()
      assert.equal(403, (alice.patch("Message_v2?id=eq." .. msg_a, { parts = { { text = "edited" } } })))
      assert.equal(403, (alice.delete("Message_v2?id=eq." .. msg_a)))
      assert.equal(401, (anon.delete("Message_v2?id=eq." .. msg_a)))
      assert.equal(200, (service.patch("Message_v2?id=eq." .. msg_a, { model_used = "spec" })))
    end)
  end)

  describe("Document", function()
    local function both() return ("Document?select=id&id=in.(%s,%s)"):format(doc_a, doc_b) end

    it("shows a user only their own documents, and an admin no more than that", function()
      assert.same({ doc_a }, pluck(select(2, alice.get(both())), "id"))
      assert.same({ 200, {} }, { admin.get(both()) })
    end)

    it("changes nothing when a user updates someone else's document", function()
      assert.same({ 200, {} }, { alice.patch("Document?id=eq." .. doc_b, { content = "overwritten" }) })
      assert.equal("b", h.scalar("select content from public.\"Document\" where id = " .. lit(doc_b)))
    end)

    it("lets a user save a new version of their own document but not one owned by another user", function()
      assert.equal(201, (alice.post("Document", { id = doc_a, title = "Alice's notes", content = "a2", user_id = A,
        version_number = 2 })))
      assert.equal(403, (alice.post("Document", { title = "planted", content = "x", user_id = B })))
    end)
  end)

  describe("user_variables", function()
    local function both() return ("user_variables?select=id,value&id=in.(%s,%s)"):format(var_a, var_b) end

    it("shows a user only their own variables", function()
      assert.same({ var_a }, pluck(select(2, alice.get(both())), "id"))
      assert.same({ 200, {} }, { anon.get(both()) })
    end)

    it("lets a user change their own variable, and changes nothing of another user's", function()
      local code, rows = alice.patch("user_variables?id=eq." .. var_a, { value = "Alice A." })
      assert.equal(200, code)
      assert.equal("Alice A.", rows[1].value)
      assert.same({ 200, {} }, { alice.patch("user_variables?id=eq." .. var_b, { value = "hacked" }) })
      assert.equal("bob@example.test", h.scalar("select value from public.user_variables where id = " .. lit(var_b)))
    end)

    it("refuses to move a variable to another user", function()
      assert.equal(403, (alice.patch("user_variables?id=eq." .. var_a, { user_id = B })))
    end)

    it("leaves creating and deleting variables to the system (service_role)", function()
      assert.equal(403, (alice.post("user_variables", { user_id = A, key = "user_locale", value = "en-US" })))
      assert.equal(403, (alice.delete("user_variables?id=eq." .. var_a)))
      assert.equal(201, (service.post("user_variables", { user_id = A, key = "user_locale", value = "en-US" })))
    end)
  end)

  describe("admin_config", function()
    it("lets an admin read the configuration", function()
      local code, rows = admin.get("admin_config?select=config_key&config_key=eq.app_settings")
      assert.equal(200, code)
      assert.same({ "app_settings" }, pluck(rows, "config_key"))
    end)

    it("shows a normal user and anon no configuration", function()
      assert.same({ 200, {} }, { alice.get("admin_config?select=config_key") })
      assert.same({ 200, {} }, { anon.get("admin_config?select=config_key") })
    end)

    it("does not let a normal user write it", function()
      local before = h.scalar("select config_data::text from public.admin_config where config_key = 'app_settings'")
      assert.same({ 200, {} }, { alice.patch("admin_config?config_key=eq.app_settings", { config_data = { hacked = true } }) })
      local code, err = alice.post("admin_config", { config_key = "rogue", config_data = {} })
      assert.equal(403, code)
      assert.equal("42501", err.code)
      assert.equal(401, (anon.post("admin_config", { config_key = "rogue", config_data = {} })))
      assert.equal(before, h.scalar("select config_data::text from public.admin_config where config_key = 'app_settings'"))
    end)

    it("lets an admin change it", function()
      local data = cjson.decode(h.scalar("select config_data::text from public.admin_config where config_key = 'app_settings'"))
      local code, rows = admin.patch("admin_config?config_key=eq.app_settings", { config_data = data })
      assert.equal(200, code)
      assert.same({ "app_settings" }, pluck(rows, "config_key"))
    end)
  end)

  describe("model_config", function()
    it("is read by every signed-in user and by no anon", function()
      local code, rows = alice.get("model_config?select=model_id&model_id=eq.gpt-4o")
      assert.equal(200, code)
      assert.same({ "gpt-4o" }, pluck(rows, "model_id"))
      assert.same({ 200, {} }, { anon.get("model_config?select=model_id") })
    end)

    it("is changed by admins only", function()
      assert.same({ 200, {} }, { alice.patch("model_config?model_id=eq.gpt-4o", { description = "cheap" }) })
      local code, rows = admin.patch("model_config?model_id=eq.gpt-4o", { description = "reviewed" })
      assert.equal(200, code)
      assert.equal("reviewed", rows[1].description)
    end)
  end)

  describe("usage_logs", function()
    local function both() return ("usage_logs?select=user_id&user_id=in.(%s,%s)"):format(A, B) end

    it("shows a user their own usage and an admin everyone's", function()
      assert.same({ A }, pluck(select(2, alice.get(both())), "user_id"))
      assert.same(sorted(A, B), pluck(select(2, admin.get(both())), "user_id"))
    end)

    it("is written by the server (service_role) only", function()
      assert.equal(403, (alice.post("usage_logs", { user_id = B, agent_type = "chat_model_agent", total_cost = 99 })))
      assert.equal(201, (service.post("usage_logs", { user_id = B, agent_type = "chat_model_agent", total_cost = 1 })))
    end)
  end)

  describe("tables without a policy file", function()
    it("are reached by service_role only", function()
      assert.equal(401, (anon.get("strata_migrations")))
      assert.equal(403, (admin.get("strata_migrations")))
      assert.equal(200, (service.get("strata_migrations?limit=1")))
    end)
  end)

  describe("hidden columns", function()
    -- A misspelt name would leave the real column readable without a sound.
    it("name columns that exist, in every policy file that declares them", function()
      local p = assert(io.popen("cd lua && ls policies/*/*.lua"))
      local checked = 0
      for path in p:lines() do
        local schema, tbl = path:match("^policies/([^/]+)/([^/]+)%.lua$")
        local hidden = require("policies." .. schema .. "." .. tbl).hidden
        if type(hidden) == "function" then hidden = hidden({ role = "authenticated", claims = {} }) end
        for _, col in ipairs(hidden or {}) do
          assert.equal("1", h.scalar(("select count(*) from information_schema.columns where table_schema = %s"
            .. " and table_name = %s and column_name = %s"):format(lit(schema), lit(tbl), lit(col))), path .. ": " .. col)
          checked = checked + 1
        end
      end
      p:close()
      assert.is_true(checked >= 4, "the agentflow secrets are hidden")
    end)
  end)

  describe("rpc", function()
    it("lets a signed-in user, and not anon, read their own usage summary", function()
      local code, rows = alice.rpc("get_current_user_usage_summary")
      assert.equal(200, code)
      assert.equal(1, rows[1].total_calls)
      assert.equal(401, (anon.rpc("get_current_user_usage_summary")))
    end)

    it("tells a user whether they are an admin", function()
      assert.same({ 200, false }, { alice.rpc("is_current_user_admin") })
      assert.same({ 200, true }, { admin.rpc("is_current_user_admin") })
    end)

    it("leaves the log purge to service_role, admins included out", function()
      assert.equal(403, (admin.rpc("purge_old_activity_logs")))
      assert.equal(200, (service.rpc("purge_old_activity_logs")))
    end)

    it("lets admins, and not users, read the logging configuration", function()
      assert.equal(200, (admin.rpc("get_logging_config")))
      assert.equal(403, (alice.rpc("get_logging_config")))
    end)

    describe("broker functions", function()
      local org_b, broker

      setup(function()
        org_b, broker = h.uuid(), h.uuid()
        h.accepts(([[
          insert into public.organizations(id, name, slug, created_by) values (%s, 'Bob Inc', %s, %s);
          insert into public.data_broker(id, name) values (%s, 'spec broker');
          insert into public.broker_values(broker_id, organization_id, value) values (%s, %s, '"bob''s secret"');
          insert into public.broker_values(broker_id, user_id, value) values (%s, %s, '"alice''s own"');
        ]]):format(lit(org_b), lit("bob-" .. org_b:sub(1, 8)), lit(B), lit(broker), lit(broker), lit(org_b),
          lit(broker), lit(A)))
      end)

      it("resolve a user's own values", function()
        local code, rows = alice.rpc("get_broker_values_for_context", { p_broker_ids = { broker }, p_user_id = A })
        assert.equal(200, code)
        assert.same({ "alice's own" }, pluck(rows, "value"))
      end)

      it("refuse to resolve for another user or an organization the caller does not belong to", function()
        assert.equal(403, (alice.rpc("get_broker_values_for_context", { p_broker_ids = { broker }, p_user_id = B })))
        assert.equal(403, (alice.rpc("get_broker_values_for_context", { p_broker_ids = { broker }, p_organization_id = org_b })))
      end)

      it("resolve an organization's values for its members", function()
        h.accepts(("insert into public.user_organizations(user_id, org_id) values (%s, %s)"):format(lit(A), lit(org_b)))
        local code, rows = alice.rpc("get_broker_values_for_context", { p_broker_ids = { broker }, p_organization_id = org_b })
        assert.equal(200, code)
        assert.same({ "bob's secret" }, pluck(rows, "value"))
      end)

      it("describe a private broker only to its owner", function()
        local private = h.uuid()
        h.accepts(("insert into public.data_broker(id, name, user_id, public_read, authenticated_read) values (%s, 'bob''s own', %s, false, false)")
          :format(lit(private), lit(B)))
        assert.equal(403, (alice.rpc("get_complete_broker_data_for_context", { p_broker_ids = { private }, p_user_id = A })))
        local code, rows = bob.rpc("get_complete_broker_data_for_context", { p_broker_ids = { private }, p_user_id = B })
        assert.equal(200, code)
        assert.same({ "bob's own" }, pluck(rows, "broker_name"))
      end)

      it("let a member write at the organization's scope only if they created it, and nobody but service_role globally", function()
        assert.equal(403, (alice.rpc("upsert_broker_value", { p_broker_id = broker, p_value = 1, p_organization_id = org_b })))
        assert.equal(200, (bob.rpc("upsert_broker_value", { p_broker_id = broker, p_value = 2, p_organization_id = org_b })))
        assert.equal(403, (bob.rpc("upsert_broker_value", { p_broker_id = broker, p_value = 3, p_is_global = true })))
        assert.equal(401, (anon.rpc("get_missing_broker_ids", { p_broker_ids = { broker } })))
      end)
    end)
  end)
end)
