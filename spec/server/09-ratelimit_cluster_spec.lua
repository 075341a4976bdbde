-- Rate limits with policy "cluster": one budget in PostgreSQL
-- (sql/070_rate_limit_cells.sql) shared by every strata instance on the
-- database, where policy "local" counts per process.
local h = require("helpers")
local srv = require("server_helpers")

local RULES = [[
return {
  { name = "shared", match = function(req)
      if req.path:find("^/v1/hello/") then
        return "shared:" .. req.path, { rate = 5, per = 3600, policy = "cluster" }
      end
    end },
}]]

local function start(dir)
  local s = srv.start({ STRATA_LUA_DIR = dir, STRATA_RATE_LIMIT_ANON_PER_MINUTE = "0",
    STRATA_RATE_LIMIT_USER_PER_MINUTE = "0" })
  assert.equal(200, (srv.await(s.port, "/ready", 200, 10)), s.log())
  return s
end

describe("cluster rate limits #server", function()
  it("shares one budget between two instances on the same database", function()
    local dir = srv.lua_dir({ ["ratelimits.lua"] = RULES })
    local a, b = start(dir), start(dir)
    -- A path of its own: the specs run twice (normal and sanitizer build) on one database.
    local path = "/v1/hello/" .. h.uuid()
    local codes, last = {}, nil
    for i = 1, 10 do
      local s = i % 2 == 1 and a or b
      local code, _, headers = srv.http(s.port, "GET", path)
      codes[i] = code
      last = headers
      if i == 1 then
        assert.equal('"shared";q=5;w=3600', headers["ratelimit-policy"])
        assert.equal("4", headers["x-ratelimit-remaining"])
      end
    end
    local logs = a.log() .. b.log()
    assert.equal(0, a.stop(), a.log())
    assert.equal(0, b.stop(), b.log())
    a.cleanup()
    b.cleanup()
    os.execute("rm -rf " .. srv.quote(dir))
    local allowed = 0
    for _, c in ipairs(codes) do if c == 200 then allowed = allowed + 1 end end
    assert.equal(5, allowed, logs)
    assert.same({ 200, 200, 200, 200, 200, 429, 429, 429, 429, 429 }, codes)
    -- T = 720 s and the debt is the whole window: the next take in 720 s.
    assert.equal("720", last["retry-after"])
    assert.equal("0", last["x-ratelimit-remaining"])
    assert.equal("1", h.scalar(("select count(*) from strata_rate_limits where key = %s"):format(h.lit("shared:" .. path))))
  end)

  it("keeps policy local per instance", function()
    local dir = srv.lua_dir({ ["ratelimits.lua"] = (RULES:gsub('policy = "cluster"', 'policy = "local"')) })
    local a, b = start(dir), start(dir)
    local path = "/v1/hello/" .. h.uuid()
    local codes = {}
    for i = 1, 12 do
      local s = i % 2 == 1 and a or b
      codes[i] = (srv.http(s.port, "GET", path))
    end
    assert.equal(0, a.stop(), a.log())
    assert.equal(0, b.stop(), b.log())
    a.cleanup()
    b.cleanup()
    os.execute("rm -rf " .. srv.quote(dir))
    -- 5 each: 10 allowed, then both refuse.
    assert.same({ 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 429, 429 }, codes)
  end)
end)
