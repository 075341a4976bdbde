-- Rows of admin_config written around the validators (an operator's psql):
-- strata re-validates each row when the table's NOTIFY arrives, serves the
-- last valid data of an invalid key, logs the failure, and reports it in
-- GET /ready's warnings and /metrics until the row is valid again.
local cjson = require("cjson")
local h = require("helpers")
local srv = require("server_helpers")

local ROUTE = [[
local cjson = require("cjson")
local admin_config = require("strata.admin_config")
return {
  { method = "GET", path = "/v1/spec/admin_config/:key", handler = function(req)
      return 200, { data = admin_config.get(req.params.key) or cjson.null }
    end },
}]]

local KEY = "mermaid_agent_openai"

local function config(per_minute)
  return cjson.encode({ enabled = true, rateLimit = { perMinute = per_minute, perHour = 100, perDay = 1000 },
    tools = { render = { enabled = true } } })
end

local function write(data)
  h.accepts(("insert into admin_config(config_key, config_data) values (%s, %s::jsonb)"
    .. " on conflict (config_key) do update set config_data = excluded.config_data"):format(h.lit(KEY), h.lit(data)))
end

-- Polls until fn(ready document, served data) holds; the last pair.
local function until_(port, fn)
  local ready, served
  for _ = 1, 50 do
    local _, body = srv.http(port, "GET", "/ready")
    ready = cjson.decode(body)
    local _, sbody = srv.http(port, "GET", "/v1/spec/admin_config/" .. KEY)
    served = cjson.decode(sbody).data
    if fn(ready, served) then break end
    os.execute("sleep 0.1")
  end
  return ready, served
end

local function metric(port, name)
  local _, body = srv.http(port, "GET", "/metrics")
  return tonumber(body:match(name:gsub("[%%%-%.%[%]%(%)%+%*%?%^%$]", "%%%0") .. " (%d+)"))
end

describe("admin_config re-validation #server", function()
  local server, dir

  setup(function()
    h.accepts(("delete from admin_config where config_key = %s"):format(h.lit(KEY)))
    dir = srv.lua_dir({ ["routes/admin_config_spec.lua"] = ROUTE })
    -- One worker: each worker's Lua state keeps its own view (a worker that
    -- never read the valid row has no last valid data to keep).
    server = srv.start({ STRATA_LUA_DIR = dir, STRATA_WORKERS = "1" })
    assert.equal(200, (srv.await(server.port, "/ready", 200, 20)), server.log())
  end)

  teardown(function()
    if server then server.stop(); server.cleanup() end
    os.execute("rm -rf " .. srv.quote(dir))
    h.accepts(("delete from admin_config where config_key = %s"):format(h.lit(KEY)))
  end)

  it("keeps serving the last valid data of a key whose row turned invalid, and says so", function()
    write(config(7))
    local ready, served = until_(server.port, function(_, s) return s ~= cjson.null and s.rateLimit.perMinute == 7 end)
    assert.equal(7, served.rateLimit.perMinute)
    assert.same({}, ready.warnings)

    -- perMinute above perHour: seed 003's rule, which the validator holds.
    write(config(500))
    ready, served = until_(server.port, function(r) return #r.warnings > 0 end)
    assert.equal(200, (srv.http(server.port, "GET", "/ready")), "a warning, not an outage")
    assert.equal(1, #ready.warnings, cjson.encode(ready))
    local w = ready.warnings[1]
    assert.same({ "admin_config", KEY }, { w.source, w.key })
    assert.matches('admin_config row "mermaid_agent_openai" is invalid and not served', w.message, 1, true)
    assert.matches("/config_data/rateLimit", w.message, 1, true)
    assert.equal(7, served.rateLimit.perMinute, "the last valid data")
    assert.equal(500, tonumber(h.scalar(("select config_data->'rateLimit'->>'perMinute' from admin_config"
      .. " where config_key = %s"):format(h.lit(KEY)))))
    assert.equal(1, metric(server.port, 'strata_config_invalid_total{source="admin_config"}'))
    assert.equal(1, metric(server.port, 'strata_config_warnings{source="admin_config"}'))
    -- Logged once, although the state read the table again since.
    local lines = 0
    for line in server.log():gmatch("[^\n]+") do
      if line:find('"level":"error"', 1, true) and line:find("is invalid and not served", 1, true) then lines = lines + 1 end
    end
    assert.equal(1, lines, server.log())

    write(config(9))
    ready, served = until_(server.port, function(r, s) return #r.warnings == 0 and s.rateLimit.perMinute == 9 end)
    assert.same({}, ready.warnings)
    assert.equal(9, served.rateLimit.perMinute)
    assert.equal(0, metric(server.port, 'strata_config_warnings{source="admin_config"}'))
    assert.equal(1, metric(server.port, 'strata_config_invalid_total{source="admin_config"}'))
  end)

  it("serves nothing for a key whose only row is invalid", function()
    h.accepts(("delete from admin_config where config_key = %s"):format(h.lit(KEY)))
    until_(server.port, function(_, s) return s == cjson.null end)
    write(cjson.encode({ enabled = "yes" }))
    local ready, served = until_(server.port, function(r) return #r.warnings > 0 end)
    assert.equal(cjson.null, served)
    assert.matches("/config_data/enabled", ready.warnings[1].message, 1, true)
    h.accepts(("delete from admin_config where config_key = %s"):format(h.lit(KEY)))
    ready = until_(server.port, function(r) return #r.warnings == 0 end)
    assert.same({}, ready.warnings, "a deleted row takes its warning with it")
  end)
end)
