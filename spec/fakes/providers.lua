-- The fake AI providers (spec/fakes/providers.py) for the /v1/ai specs:
-- start() runs one on a free port; its handle has url, requests() (what it
-- was sent), stats(), fail({provider = status}) and stop().
local cjson = require("cjson")
local srv = require("server_helpers")

local M = {}

local q = srv.quote

function M.start()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. q(dir)))
  local p = assert(io.popen(("python3 spec/fakes/providers.py %s >%s 2>&1 & echo $!"):format(
    q(dir .. "/port"), q(dir .. "/log"))))
  local pid = assert(tonumber(p:read("l")))
  p:close()
  local port
  for _ = 1, 100 do
    local f = io.open(dir .. "/port")
    port = f and tonumber(f:read("a"))
    if f then f:close() end
    if port then break end
    srv.sleep(0.05)
  end
  assert(port, "the fake providers did not start")
  local h = { port = port, url = "http://127.0.0.1:" .. port }
  local function get(path)
    local code, body = srv.http(port, "GET", path)
    assert(code == 200, "fake providers " .. path .. " answered " .. code)
    return cjson.decode(body)
  end
  function h.requests() return get("/_requests") end
  function h.stats() return get("/_stats") end
  function h.fail(t)
    local code = srv.http(port, "POST", "/_fail", cjson.encode(t or {}))
    assert(code == 200)
  end
  function h.await(pred)
    local st
    for _ = 1, 200 do
      st = h.stats()
      if pred(st) then return st end
      srv.sleep(0.05)
    end
    return st
  end
  function h.stop()
    os.execute(("kill %d 2>/dev/null"):format(pid))
    os.execute("rm -rf " .. q(dir))
  end
  return h
end

return M
