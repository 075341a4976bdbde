-- scripts/check-boundaries on small synthetic trees: each rule fires, a clean tree passes.
local q = function(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local _, _, status = p:close()
  return status, out
end

-- A tree that keeps every rule: files are { path = { included, ... } },
-- each entry written as an #include line ("<x>" stays angled).
local CLEAN = {
  ["main.c"] = { "net/server.h", "base/conf.h" },
  ["net/server.h"] = { "lua/host.h", "conn.h" },
  ["net/conn.h"] = { "http/http.h", "db/pool.h" },
  ["lua/host.h"] = { "engine/limiter.h" },
  ["lua/run.h"] = { "host.h", "<lua.h>", "<lauxlib.h>" },
  ["lua/host.c"] = { "run.h" },
  ["http/http.c"] = { "http.h", "<string.h>" },
  ["http/http.h"] = { "<stddef.h>" },
  ["db/pool.c"] = { "pool.h", "obs/log.h", "engine/resolve.h" },
  ["db/pool.h"] = { "<libpq-fe.h>" },
  ["engine/limiter.c"] = { "limiter.h", "base/buf.h" },
  ["engine/limiter.h"] = {},
  ["engine/resolve.h"] = { "base/buf.h" },
  ["auth/jwt.c"] = { "base/buf.h" },
  ["obs/log.h"] = { "base/buf.h" },
  ["base/buf.h"] = {},
  ["base/conf.h"] = { "buf.h" },
}

describe("scripts/check-boundaries", function()
  local dir

  before_each(function()
    local _, out = sh("mktemp -d")
    dir = out:gsub("%s+$", "")
  end)

  after_each(function()
    os.execute("rm -rf " .. q(dir))
  end)

  -- Writes CLEAN with the given files added or replaced, and runs the script on it.
  local function check(changes, flag)
    local files = {}
    for path, incs in pairs(CLEAN) do files[path] = incs end
    for path, incs in pairs(changes or {}) do files[path] = incs end
    for path, incs in pairs(files) do
      assert(os.execute("mkdir -p " .. q(dir .. "/" .. path:match("^(.-)[^/]*$"))))
      local f = assert(io.open(dir .. "/" .. path, "w"))
      for _, inc in ipairs(incs) do
        f:write(inc:sub(1, 1) == "<" and ("#include " .. inc .. "\n") or ('#include "' .. inc .. '"\n'))
      end
      f:write("/* #include <lua.h> in a comment counts for nothing */\n")
      f:close()
    end
    return sh(("scripts/check-boundaries %s %s"):format(flag or "", q(dir)))
  end

  -- The violation lines of the output, without the tree's directory.
  local function lines(out)
    local found = {}
    for line in out:gmatch("[^\n]+") do
      if line:sub(1, #dir + 1) == dir .. "/" then found[#found + 1] = line:sub(#dir + 2) end
    end
    table.sort(found)
    return found
  end

  it("passes a tree that keeps every rule, printing nothing", function()
    local st, out = check()
    assert.equal(0, st, out)
    assert.equal("", out)
  end)

  it("1: refuses Lua headers outside lua/, angled or quoted", function()
    local st, out = check({ ["base/conf.c"] = { "conf.h", "<lauxlib.h>", "lua.h" } })
    assert.equal(1, st)
    assert.same({
      "base/conf.c: includes <lauxlib.h> (Lua headers only in lua/)",
      "base/conf.c: includes lua.h (Lua headers only in lua/)",
    }, lines(out))
    assert.matches("check%-boundaries: 2 violation%(s%)", out)
  end)

  it("1: refuses Lua headers that reach another room through lua/'s headers", function()
    local st, out = check({ ["net/server.h"] = { "lua/run.h", "conn.h" } })
    assert.equal(1, st)
    local found = table.concat(lines(out), "\n")
    assert.matches("net/server.h: includes <lua.h> via lua/run.h %(Lua headers only in lua/%)", found)
    assert.matches("main.c: includes <lua.h> via net/server.h via lua/run.h %(Lua headers only in lua/%)", found)
  end)

  it("2: keeps the parser, the engine and the pool free of Lua, the router and the worker, through headers", function()
    local st, out = check({
      ["engine/limiter.h"] = { "clock.h" },
      ["engine/clock.h"] = { "<lua.h>" },
      ["db/pool.h"] = { "net/router.h" },
      ["net/router.h"] = {},
    })
    assert.equal(1, st)
    local found = table.concat(lines(out), "\n")
    assert.matches("engine/limiter.c: includes <lua.h> via engine/limiter.h via engine/clock.h %(must stay free of Lua, the router and the worker%)", found)
    assert.matches("engine/limiter.h: includes <lua.h> via engine/clock.h %(must stay free", found)
    assert.matches("db/pool.c: includes net/router.h via db/pool.h %(must stay free", found)
    assert.matches("db/pool.h: includes net/router.h %(must stay free", found)
    -- The same includes break rules 1 and 3 too, and are said so.
    assert.matches("engine/clock.h: includes <lua.h> %(Lua headers only in lua/%)", found)
    assert.matches("db/pool.h: includes net/router.h %(net is above db%)", found)
  end)

  it("2: counts a header of lua/ as Lua", function()
    local _, out = check({ ["http/http.h"] = { "lua/host.h" } })
    assert.matches("http/http.c: includes lua/host.h via http/http.h %(must stay free", out)
  end)

  it("3: refuses an include upwards, between peers, and of the root", function()
    local st, out = check({
      ["obs/metrics.h"] = { "db/pool.h", "base/buf.h" },
      ["engine/usage.c"] = { "auth/jwt.h" },
      ["auth/jwt.h"] = {},
      ["base/x.c"] = { "main.h" },
      ["main.h"] = {},
    })
    assert.equal(1, st)
    assert.same({
      "base/x.c: includes main.h (the root is above base)",
      "engine/usage.c: includes auth/jwt.h (engine and auth are peers)",
      "obs/metrics.h: includes db/pool.h (db is above obs)",
    }, lines(out))
  end)

  it("3: names a room missing from the order", function()
    local st, out = check({ ["cache/c.c"] = { "base/buf.h" } })
    assert.equal(1, st)
    assert.same({ "cache/c.c: includes base/buf.h (room cache is not in scripts/check-boundaries' order)" }, lines(out))
  end)

  it("4: finds an include cycle within a room, once", function()
    local st, out = check({ ["base/a.h"] = { "b.h" }, ["base/b.h"] = { "c.h" }, ["base/c.h"] = { "a.h" } })
    assert.equal(1, st)
    assert.same({ "base/a.h: includes base/b.h (include cycle: base/a.h -> base/b.h -> base/c.h -> base/a.h)" }, lines(out))
  end)

  it("resolves a quoted include against the file's directory first, then the root", function()
    -- With log.h at the root too, net/x.c's "log.h" is its own room's (the root is above net).
    local st, out = check({ ["net/x.c"] = { "log.h", "obs/log.h" }, ["net/log.h"] = {}, ["log.h"] = {} })
    assert.equal(0, st, out)
  end)

  it("--graph prints the room-to-room includes with counts", function()
    local st, out = check(nil, "--graph")
    assert.equal(0, st, out)
    assert.matches("%(root%) %-> net: 1\n", out)
    assert.matches("\ndb %-> engine: 1\n", out)
    assert.matches("\nengine %-> base: 2\n", out)
  end)
end)
