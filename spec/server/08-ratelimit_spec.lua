-- Rate limits: lua/ratelimits.lua rules over strata.limit's GCRA counters;
-- 429 with Retry-After and the RateLimit headers; agent limits from
-- admin_config following changes without a restart; rules hot-reloaded.
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")

local SECRET = "ratelimit-spec-secret"

local function token(uid)
  return srv.token(SECRET, "--sub " .. uid .. " --role authenticated")
end

local AGENT_ROUTE = [[
return {
  { method = "POST", path = "/v1/agents/chat", agent_type = "chat_model_agent",
    handler = function() return 200, { started = true } end },
}]]

local function start(env, files)
  local dir = srv.lua_dir(files or { ["routes/agent.lua"] = AGENT_ROUTE })
  env.STRATA_LUA_DIR = dir
  env.STRATA_JWT_SECRET = SECRET
  local s = srv.start(env)
  assert.equal(200, (srv.await(s.port, "/ready", 200, 10)), s.log())
  s.dir = dir
  return s
end

local function stop(s)
  assert.equal(0, s.stop(), s.log())
  s.cleanup()
  os.execute("rm -rf " .. srv.quote(s.dir))
end

describe("rate limits #server", function()
  it("answers 429 with Retry-After and the RateLimit headers once an address spends its anonymous budget", function()
    local s = start({ STRATA_RATE_LIMIT_ANON_PER_MINUTE = "3" })
    local codes, last = {}, nil
    for i = 1, 4 do
      local code, body, headers = srv.http(s.port, "GET", "/v1/hello/x")
      codes[i] = code
      last = { body = body, headers = headers }
      if i == 1 then
        assert.equal('"anon";q=3;w=60', headers["ratelimit-policy"])
        assert.equal('"anon";r=2;t=20', headers["ratelimit"])
        assert.equal("3", headers["x-ratelimit-limit"])
        assert.equal("2", headers["x-ratelimit-remaining"])
      end
    end
    stop(s)
    assert.same({ 200, 200, 200, 429 }, codes)
    local err = cjson.decode(last.body)
    assert.equal("PGRST429", err.code)
    assert.equal("20", last.headers["retry-after"])
    assert.equal("0", last.headers["x-ratelimit-remaining"])
    assert.equal('"anon";r=0;t=60', last.headers["ratelimit"])
  end)

  it("counts each authenticated user separately", function()
    local s = start({ STRATA_RATE_LIMIT_USER_PER_MINUTE = "2", STRATA_RATE_LIMIT_ANON_PER_MINUTE = "0" })
    local a, b = { Authorization = "Bearer " .. token(h.uuid()) }, { Authorization = "Bearer " .. token(h.uuid()) }
    local got = {}
    for _, who in ipairs({ a, a, a, b }) do got[#got + 1] = (srv.http(s.port, "GET", "/v1/hello/x", nil, who)) end
    stop(s)
    assert.same({ 200, 200, 429, 200 }, got)
  end)

  describe("agent types", function()
    local provider, key, saved

    setup(function()
      provider = h.scalar("select config_data->>'activeProvider' from admin_config where config_key = 'app_settings'")
      key = "chat_model_agent_" .. provider
      saved = h.scalar(("select config_data::text from admin_config where config_key = %s"):format(h.lit(key)))
      h.accepts(([[update admin_config set config_data = jsonb_set(config_data, '{rateLimit}',
        '{"perMinute": 2, "perHour": 50, "perDay": 500}') where config_key = %s]]):format(h.lit(key)))
    end)

    teardown(function()
      h.accepts(("update admin_config set config_data = %s::jsonb where config_key = %s"):format(h.lit(saved), h.lit(key)))
    end)

    it("limits a route declaring agent_type by the active provider's admin_config, and follows changes", function()
      local s = start({ STRATA_RATE_LIMIT_ANON_PER_MINUTE = "0", STRATA_RATE_LIMIT_USER_PER_MINUTE = "0" })
      local who = { Authorization = "Bearer " .. token(h.uuid()) }
      local codes, headers = {}, nil
      for i = 1, 3 do
        local code, _, hd = srv.http(s.port, "POST", "/v1/agents/chat", "", who)
        codes[i] = code
        headers = hd
      end
      assert.same({ 200, 200, 429 }, codes)
      assert.equal(('"%s_minute";q=2;w=60'):format(key), headers["ratelimit-policy"])
      -- Raised directly in SQL: applies without a restart.
      h.accepts(([[update admin_config set config_data = jsonb_set(config_data, '{rateLimit,perMinute}', '4')
        where config_key = %s]]):format(h.lit(key)))
      local code
      for _ = 1, 60 do
        code = srv.http(s.port, "POST", "/v1/agents/chat", "", who)
        if code == 200 then break end
        srv.sleep(0.1)
      end
      stop(s)
      assert.equal(200, code)
    end)
  end)

  it("applies a changed rules file without a restart", function()
    local s = start({ STRATA_RATE_LIMIT_ANON_PER_MINUTE = "0", STRATA_RELOAD_DEBOUNCE_MS = "50" })
    assert.equal(200, (srv.http(s.port, "GET", "/v1/hello/a")))
    srv.write(s.dir .. "/ratelimits.lua", [[
      return { { name = "hello", match = function(req)
        if req.path:find("^/v1/hello/") then return "hello:" .. req.remote_addr, { rate = 1, per = 3600 } end
      end } }]])
    local codes = {}
    for _ = 1, 60 do
      local c1 = srv.http(s.port, "GET", "/v1/hello/b")
      local c2 = srv.http(s.port, "GET", "/v1/hello/b")
      if c2 == 429 then codes = { c1, c2 } break end
      srv.sleep(0.1)
    end
    stop(s)
    assert.equal(429, codes[2])
  end)
end)
