-- The fake upstream (spec/fixtures/fake_upstream.py) for the specs of
-- strata.http.request: start(tls) runs one on a free port, plain or with a
-- self-signed certificate made for it (CN localhost, SAN 127.0.0.1).
local cjson = require("cjson")
local srv = require("server_helpers")

local M = {}

local q = srv.quote

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

--- A self-signed certificate and its key in `dir`: cert path, key path.
function M.self_signed(dir)
  local cert, key = dir .. "/cert.pem", dir .. "/key.pem"
  assert(os.execute(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
    .. "-addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' -keyout %s -out %s >/dev/null 2>&1"):format(q(key), q(cert))))
  return cert, key
end

--- Starts a fake upstream; tls: true for HTTPS.  Returns a handle with
-- port, url (base URL), cert (the CA file clients must trust, with tls),
-- stats() (its counters) and stop().
function M.start(tls)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. q(dir)))
  local cert, key = "", ""
  if tls then cert, key = M.self_signed(dir) end
  local p = assert(io.popen(("python3 spec/fixtures/fake_upstream.py %s %s %s >%s 2>&1 & echo $!"):format(
    q(dir .. "/port"), tls and q(cert) or "", tls and q(key) or "", q(dir .. "/log"))))
  local pid = assert(tonumber(p:read("l")))
  p:close()
  local port
  for _ = 1, 100 do
    port = tonumber(read(dir .. "/port") or "")
    if port then break end
    srv.sleep(0.05)
  end
  assert(port, "the fake upstream did not start: " .. (read(dir .. "/log") or ""))
  local h = { port = port, pid = pid, cert = tls and cert or nil,
    url = (tls and "https://localhost:" or "http://127.0.0.1:") .. port }
  function h.stats()
    local code, body = srv.http(port, "GET", "/stats")
    assert(code == 200, "fake upstream /stats answered " .. code)
    return cjson.decode(body)
  end
  --- Polls stats() until pred(stats) holds (10 s at most); the last stats.
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
    os.execute(("kill %d >/dev/null 2>&1"):format(pid))
    os.execute("rm -rf " .. q(dir))
  end
  return h
end

return M
