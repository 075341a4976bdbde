-- The fake upstream (spec/fixtures/fake_upstream.py) for the specs of
-- strata.http.request: start(tls) runs one on a free port, plain or with a
-- self-signed certificate made for it (CN localhost, SAN 127.0.0.1).
local cjson = require("cjson")
local srv = require("server_helpers")

local M = {}

local q = srv.quote

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
  local fake = srv.fake("spec/fixtures/fake_upstream.py", tls and { cert, key } or nil)
  local port = fake.port
  local h = { port = port, pid = fake.pid, cert = tls and cert or nil,
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
    fake.stop()
    os.execute("rm -rf " .. q(dir))
  end
  return h
end

return M
