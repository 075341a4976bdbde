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
  local server, dir, saved

  setup(function()
    saved = h.scalar(("select config_data::text from admin_config where config_key = %s"):format(h.lit(KEY)))
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
    if saved then write(saved) end -- the seed's row
  end)

  -- This spec's warning (other specs leave rows of their own, which the
  -- server finds invalid too).
  local function mine(ready)
    for _, w in ipairs(ready.warnings) do
      if w.source == "admin_config" and w.key == KEY then return w end
    end
  end

  it("keeps serving the last valid data of a key whose row turned invalid, and says so", function()
    write(config(7))
    local ready, served = until_(server.port, function(_, s) return s ~= cjson.null and s.rateLimit.perMinute == 7 end)
    assert.equal(7, served.rateLimit.perMinute)
    assert.is_nil(mine(ready))
    local raised = metric(server.port, 'strata_config_invalid_total{source="admin_config"}') or 0
    local held = metric(server.port, 'strata_config_warnings{source="admin_config"}') or 0

    -- perMinute above perHour: seed 003's rule, which the validator holds.
    write(config(500))
    ready, served = until_(server.port, function(r) return mine(r) ~= nil end)
    assert.equal(200, (srv.http(server.port, "GET", "/ready")), "a warning, not an outage")
    local w = mine(ready)
    assert.is_truthy(w, cjson.encode(ready))
    assert.matches('admin_config row "mermaid_agent_openai" is invalid and not served', w.message, 1, true)
    assert.matches("/config_data/rateLimit", w.message, 1, true)
    assert.equal(7, served.rateLimit.perMinute, "the last valid data")
    assert.equal(500, tonumber(h.scalar(("select config_data->'rateLimit'->>'perMinute' from admin_config"
      .. " where config_key = %s"):format(h.lit(KEY)))))
    assert.equal(raised + 1, metric(server.port, 'strata_config_invalid_total{source="admin_config"}'))
    assert.equal(held + 1, metric(server.port, 'strata_config_warnings{source="admin_config"}'))
    -- Logged once, although the state read the table again since.
    local lines = 0
    for line in server.log():gmatch("[^\n]+") do
      if line:find('"level":"error"', 1, true) and line:find(KEY .. '\\" is invalid and not served', 1, true) then
        lines = lines + 1
      end
    end
    assert.equal(1, lines, server.log())

    write(config(9))
    ready, served = until_(server.port, function(r, s) return not mine(r) and s.rateLimit.perMinute == 9 end)
    assert.is_nil(mine(ready))
    assert.equal(9, served.rateLimit.perMinute)
    assert.equal(held, metric(server.port, 'strata_config_warnings{source="admin_config"}'))
    assert.equal(raised + 1, metric(server.port, 'strata_config_invalid_total{source="admin_config"}'))
  end)

  it("serves nothing for a key whose only row is invalid", function()
    h.accepts(("delete from admin_config where config_key = %s"):format(h.lit(KEY)))
    until_(server.port, function(_, s) return s == cjson.null end)
    write(cjson.encode({ enabled = "yes" }))
    local ready, served = until_(server.port, function(r) return mine(r) ~= nil end)
    assert.equal(cjson.null, served)
    assert.matches("/config_data/enabled", mine(ready).message, 1, true)
    h.accepts(("delete from admin_config where config_key = %s"):format(h.lit(KEY)))
    ready = until_(server.port, function(r) return not mine(r) end)
    assert.is_nil(mine(ready), "a deleted row takes its warning with it")
  end)
end)
