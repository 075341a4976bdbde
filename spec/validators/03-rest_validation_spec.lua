-- Validators on the REST API end to end: POST, PATCH and upsert of
-- admin_config and model_config through /rest/v1.  An invalid write answers
-- 422 with every failure and its JSON path, and writes nothing; a valid one
-- is stored; a validator that raises refuses the write; a validator added
-- while the server runs applies after the reload.
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")

local SECRET = "validators-spec-secret"

local function token(args) return srv.token(SECRET, args) end

local client = srv.rest_client

-- The details of a 422 as "path: message" strings.
local function details(body)
  assert.is_table(body, tostring(body))
  assert.equal("23514", body.code)
  assert.is_table(body.details)
  local out = {}
  for i, d in ipairs(body.details) do out[i] = d.path .. ": " .. d.message end
  return out
end

local function stored_config(key)
  local text = h.scalar("select config_data::text from public.admin_config where config_key = " .. h.lit(key))
  return text and cjson.decode(text) or nil
end

local UPSERT = { Prefer = "return=representation,resolution=merge-duplicates" }

describe("validators on REST writes #server", function()
  local server, dir, service, admin, alice
  local saved = {} -- config_key -> config_data text, restored at the end
  local KEYS = { "mermaid_agent_anthropic", "git_mcp_agent_openai", "document_agent_google", "app_settings" }

  setup(function()
    for _, k in ipairs(KEYS) do
      saved[k] = assert(h.scalar("select config_data::text from public.admin_config where config_key = " .. h.lit(k)))
    end
    dir = srv.lua_dir()
    server = srv.start({ STRATA_JWT_SECRET = SECRET, STRATA_LUA_DIR = dir, STRATA_RELOAD_WATCH = "false" })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 10)), server.log())
    service = client(server.port, token("--role service_role"))
    admin = client(server.port, token("--sub " .. h.user('{"role":"admin"}') .. " --admin"))
    alice = client(server.port, token("--sub " .. h.user()))
  end)

  teardown(function()
    for k, text in pairs(saved) do
      h.accepts(("insert into public.admin_config(config_key, config_data) values (%s, %s)"
        .. " on conflict (config_key) do update set config_data = excluded.config_data"):format(h.lit(k), h.lit(text)))
    end
    h.accepts("update public.admin_config set updated_by = null where config_key = 'app_settings'")
    h.accepts("delete from public.model_config where model_id like 'spec-validator-%'")
    assert.equal(0, server.stop(), server.log())
    server.cleanup()
    os.execute("rm -rf " .. srv.quote(dir))
  end)

  describe("admin_config", function()
    it("refuses an invalid POST with every failure and its path, writing nothing", function()
      h.accepts("delete from public.admin_config where config_key = 'mermaid_agent_anthropic'")
      local code, body = service.post("admin_config", { config_key = "mermaid_agent_anthropic", config_data = {
        enabled = "yes", rateLimit = { perMinute = 10, perHour = 5, perDay = 0 } } })
      assert.equal(422, code, cjson.encode(body))
      -- Within rateLimit: the fields' own rules, then the cross-field check.
      assert.same({
        "/config_data/enabled: expected a boolean, got a string",
        "/config_data/rateLimit/perDay: must be greater than 0",
        "/config_data/rateLimit/perHour: must be at least perMinute (10)",
        "/config_data/tools: is required",
      }, details(body))
      assert.matches('4 values of table "admin_config" failed validation %(validators/admin_config.lua%)', body.message)
      assert.equal(cjson.null, body.hint)
      assert.equal("0", h.scalar("select count(*) from public.admin_config where config_key = 'mermaid_agent_anthropic'"))
    end)

    it("refuses an unknown config_key", function()
      local code, body = service.post("admin_config", { config_key = "spec_agent_google", config_data = {} })
      assert.equal(422, code)
      local d = details(body)
      assert.equal(1, #d)
      assert.matches("^/config_key: must be app_settings, logging_settings or", d[1])
      assert.equal("0", h.scalar("select count(*) from public.admin_config where config_key = 'spec_agent_google'"))
    end)

    it("stores a valid POST", function()
      h.accepts("delete from public.admin_config where config_key = 'mermaid_agent_anthropic'")
      local data = cjson.decode(saved.mermaid_agent_anthropic)
      data.rateLimit.perDay = 41
      local code, rows = service.post("admin_config", { config_key = "mermaid_agent_anthropic", config_data = data })
      assert.equal(201, code, cjson.encode(rows))
      assert.equal("mermaid_agent_anthropic", rows[1].config_key)
      assert.equal(41, stored_config("mermaid_agent_anthropic").rateLimit.perDay)
    end)

    it("checks every object of a bulk POST, with its index, and writes none of them", function()
      h.accepts("delete from public.admin_config where config_key in ('mermaid_agent_anthropic', 'git_mcp_agent_openai')")
      local good = cjson.decode(saved.mermaid_agent_anthropic)
      local bad = cjson.decode(saved.git_mcp_agent_openai)
      bad.rateLimit = nil
      local code, body = service.post("admin_config", {
        { config_key = "mermaid_agent_anthropic", config_data = good },
        { config_key = "git_mcp_agent_openai", config_data = bad } })
      assert.equal(422, code)
      assert.same({ "/1/config_data/rateLimit: is required" }, details(body))
      assert.equal("0", h.scalar([[select count(*) from public.admin_config
                                    where config_key in ('mermaid_agent_anthropic', 'git_mcp_agent_openai')]]))
      bad.rateLimit = { perMinute = 1, perHour = 10, perDay = 40 }
      code = service.post("admin_config", {
        { config_key = "mermaid_agent_anthropic", config_data = good },
        { config_key = "git_mcp_agent_openai", config_data = bad } })
      assert.equal(201, code)
      assert.equal("2", h.scalar([[select count(*) from public.admin_config
                                    where config_key in ('mermaid_agent_anthropic', 'git_mcp_agent_openai')]]))
    end)

    it("checks an upsert (on_conflict + merge-duplicates) as a whole row", function()
      local data = cjson.decode(saved.document_agent_google)
      data.tools = nil
      local code, body = service.post("admin_config?on_conflict=config_key",
        { config_key = "document_agent_google", config_data = data }, UPSERT)
      assert.equal(422, code)
      assert.same({ "/config_data/tools: is required" }, details(body))
      assert.same(cjson.decode(saved.document_agent_google), stored_config("document_agent_google"))
      data = cjson.decode(saved.document_agent_google)
      data.rateLimit.perMinute = 4
      code = service.post("admin_config?on_conflict=config_key", { config_key = "document_agent_google", config_data = data }, UPSERT)
      assert.equal(201, code)
      assert.equal(4, stored_config("document_agent_google").rateLimit.perMinute)
    end)

    it("checks a PATCH's config_data against the key of its filter", function()
      local before = stored_config("app_settings")
      local code, body = service.patch("admin_config?config_key=eq.app_settings",
        { config_data = { activeProvider = "openai", availableProviders = { "google", "mistral" } } })
      assert.equal(422, code)
      assert.same({
        "/config_data/availableProviders/1: must be one of google, openai, anthropic (got 'mistral')",
      }, details(body))
      assert.same(before, stored_config("app_settings"))
      local rows
      code, rows = service.patch("admin_config?config_key=eq.app_settings",
        { config_data = { activeProvider = "openai", availableProviders = { "google", "openai" } } })
      assert.equal(200, code)
      assert.equal(1, #rows)
      assert.equal("openai", stored_config("app_settings").activeProvider)
      code, body = service.patch("admin_config?config_key=eq.app_settings",
        { config_data = { activeProvider = "anthropic", availableProviders = { "google", "openai" } } })
      assert.equal(422, code)
      assert.same({ "/config_data/activeProvider: must be one of availableProviders (google, openai)" }, details(body))
    end)

    it("refuses a PATCH of config_data whose key it cannot know", function()
      local id = h.scalar("select id from public.admin_config where config_key = 'app_settings'")
      local before = stored_config("app_settings")
      local code, body = service.patch("admin_config?id=eq." .. id, { config_data = { activeProvider = "google" } })
      assert.equal(422, code)
      local d = details(body)
      assert.equal(1, #d)
      assert.matches("^/config_key: is needed to check config_data", d[1])
      assert.same(before, stored_config("app_settings"))
    end)

    it("lets a PATCH of other columns through", function()
      local who = h.uuid()
      local code, rows = service.patch("admin_config?config_key=eq.app_settings", { updated_by = who })
      assert.equal(200, code, cjson.encode(rows))
      assert.equal(who, rows[1].updated_by)
    end)

    it("applies to admins too; a caller the policy refuses gets the policy's answer", function()
      local code, body = admin.patch("admin_config?config_key=eq.document_agent_google", { config_data = { enabled = true } })
      assert.equal(422, code)
      assert.same({ "/config_data/rateLimit: is required", "/config_data/tools: is required" }, details(body))
      code = alice.post("admin_config", { config_key = "rogue", config_data = {} })
      assert.equal(403, code)
      assert.same({ 200, {} }, { alice.patch("admin_config?config_key=eq.app_settings", { config_data = { x = 1 } }) })
    end)
  end)

  describe("model_config", function()
    local function new_model(changes)
      local row = { model_id = "spec-validator-" .. h.uuid(), name = "Spec model", provider = "google",
        is_default = false, input_pricing_per_million_tokens = 0.5, output_pricing_per_million_tokens = "1.2500",
        metadata = { contextWindow = 32768, maxOutputTokens = 8192 } }
      for k, v in pairs(changes or {}) do row[k] = v end
      return row
    end
    local function count(id)
      return h.scalar("select count(*) from public.model_config where model_id = " .. h.lit(id))
    end

    it("refuses an invalid POST with every failure, writing nothing", function()
      local row = new_model({ provider = "mistral", input_pricing_per_million_tokens = -1,
        metadata = { contextWindow = 1024, maxOutputTokens = 4096 } })
      local code, body = service.post("model_config", row)
      assert.equal(422, code)
      assert.same({
        "/provider: must be one of google, openai, anthropic (got 'mistral')",
        "/input_pricing_per_million_tokens: must be at least 0",
        "/metadata/contextWindow: must be at least maxOutputTokens (4096)",
      }, details(body))
      assert.equal("0", count(row.model_id))
    end)

    it("stores a valid POST", function()
      local row = new_model()
      local code, rows = service.post("model_config", row)
      assert.equal(201, code, cjson.encode(rows))
      assert.equal("1", count(row.model_id))
      assert.equal("1.2500", h.scalar("select output_pricing_per_million_tokens::text from public.model_config where model_id = "
        .. h.lit(row.model_id)))
    end)

    it("checks PATCH and upsert", function()
      local row = new_model()
      assert.equal(201, (service.post("model_config", row)))
      local code, body = service.patch("model_config?model_id=eq." .. row.model_id,
        { output_pricing_per_million_tokens = -2, metadata = { contextWindow = 0 } })
      assert.equal(422, code)
      assert.same({ "/output_pricing_per_million_tokens: must be at least 0", "/metadata/contextWindow: must be greater than 0" },
        details(body))
      assert.equal("1.2500", h.scalar("select output_pricing_per_million_tokens::text from public.model_config where model_id = "
        .. h.lit(row.model_id)))
      code = service.patch("model_config?model_id=eq." .. row.model_id, { output_pricing_per_million_tokens = 2 })
      assert.equal(200, code)
      row.provider = "nobody"
      code, body = service.post("model_config?on_conflict=model_id", row, UPSERT)
      assert.equal(422, code)
      assert.same({ "/provider: must be one of google, openai, anthropic (got 'nobody')" }, details(body))
      row.provider = "anthropic"
      code = service.post("model_config?on_conflict=model_id", row, UPSERT)
      assert.equal(201, code)
      assert.equal("anthropic", h.scalar("select provider from public.model_config where model_id = " .. h.lit(row.model_id)))
    end)
  end)

  describe("a validator added while the server runs", function()
    local user

    setup(function()
      user = h.user()
      srv.write(dir .. "/validators/Chat.lua", [[
        return {
          validate = function(row)
            if row.title == "boom" then error("the validator broke") end
            if row.title == "" then return nil, { { path = "/title", message = "must not be empty" } } end
            return true
          end,
          examples = { { input = { title = "ok" }, valid = true }, { input = { title = "" }, valid = false } },
        }]])
      local code, body = srv.http(server.port, "POST", "/admin/reload")
      assert.equal(200, code, body)
    end)

    local function chats(title)
      return h.scalar(("select count(*) from public.\"Chat\" where user_id = %s and title = %s"):format(h.lit(user), h.lit(title)))
    end

    it("applies after the reload", function()
      local code, body = service.post("Chat", { title = "", user_id = user })
      assert.equal(422, code)
      assert.same({ "/title: must not be empty" }, details(body))
      assert.equal("0", chats(""))
      assert.equal(201, (service.post("Chat", { title = "fine", user_id = user })))
      assert.equal("1", chats("fine"))
    end)

    it("refuses the write when it raises (fail closed), and logs why", function()
      local code, body = service.post("Chat", { title = "boom", user_id = user })
      assert.equal(422, code, cjson.encode(body))
      assert.equal("23514", body.code)
      assert.matches("the validator validators/Chat.lua failed; the write is refused", body.message, 1, true)
      assert.equal("0", chats("boom"))
      local log
      for _ = 1, 20 do
        log = server.log()
        if log:find("the validator broke", 1, true) then break end
        srv.sleep(0.1)
      end
      assert.matches("validator raised; refusing the write", log, 1, true)
      assert.matches("the validator broke", log, 1, true)
    end)
  end)
end)
