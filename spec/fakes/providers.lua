-- The fake AI providers (spec/fakes/providers.py) for the /v1/ai specs:
-- start() runs one on a free port; its handle has url, requests() (what it
-- was sent), stats(), fail({provider = status}) and stop().
local cjson = require("cjson")
local srv = require("server_helpers")

local M = {}

function M.start()
  local fake = srv.fake("spec/fakes/providers.py")
  local port = fake.port
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
  h.stop = fake.stop
  return h
end

return M
