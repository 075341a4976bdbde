-- Starting bin/strata (or bin/strata-asan: scripts/test sets STRATA_BIN) for
-- the #server specs, and talking HTTP to it with curl.

local socket = require("socket")
local cjson = require("cjson")

local M = {}

M.bin = os.getenv("STRATA_BIN") or "bin/strata"

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.quote = q

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function sleep(seconds)
  socket.sleep(seconds)
end
M.sleep = sleep

--- A port nothing listens on now (other suites may run on this machine:
-- a random pick alone collides now and then).
function M.free_port()
  for _ = 1, 50 do
    local port = math.random(10240, 32000)
    local probe = socket.bind("127.0.0.1", port)
    if probe then
      probe:close()
      return port
    end
  end
  error("no free port found")
end

--- Starts the server in the background with `env` (a table of variables)
-- and `args` (a string).  Returns a handle with port, log() and stop().
-- DATABASE_URL defaults to the test database; STRATA_LISTEN to a free port.
function M.start(env, args)
  env = env or {}
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. q(dir)))
  -- Below the kernel's ephemeral range (32768+), where client sockets could hold it.
  local port = env.port or M.free_port()
  local vars = {
    DATABASE_URL = os.getenv("STRATA_TEST_DATABASE_URL"),
    STRATA_LISTEN = "127.0.0.1:" .. port,
    STRATA_READY_INTERVAL_MS = "100",
    STRATA_WORKERS = "2",
    ASAN_OPTIONS = "detect_leaks=1",
  }
  for k, v in pairs(env) do
    if k ~= "port" then vars[k] = v end
  end
  local assigns = {}
  for k, v in pairs(vars) do assigns[#assigns + 1] = k .. "=" .. q(v) end
  -- The wrapper shell records the exit status, which Lua could not wait for.
  local script = ("%s %s %s >%s 2>&1; echo $? >%s"):format(
    table.concat(assigns, " "), q(M.bin), args or "",
    q(dir .. "/log"), q(dir .. "/status"))
  local p = assert(io.popen(("sh -c %s >/dev/null 2>&1 & echo $!"):format(q(script))))
  local pid = assert(tonumber(p:read("l")))
  p:close()
  local h = { port = port, dir = dir, shell_pid = pid }
  function h.log() return read_file(dir .. "/log") or "" end
  function h.status() local s = read_file(dir .. "/status"); return s and tonumber(s) end
  --- Waits up to `seconds` for the process to exit; its exit status or nil.
  function h.wait(seconds)
    for _ = 1, seconds * 20 do
      local st = h.status()
      if st then return st end
      sleep(0.05)
    end
    return nil
  end
  --- Sends `sig` (default TERM) to the server and waits for its exit status.
  function h.stop(sig)
    os.execute(("pkill -%s -P %d >/dev/null 2>&1"):format(sig or "TERM", pid))
    local st = h.wait(10)
    if not st then os.execute(("pkill -KILL -P %d >/dev/null 2>&1"):format(pid)) end
    return st
  end
  function h.cleanup()
    if not h.status() then h.stop("KILL") end
    os.execute("rm -rf " .. q(dir))
  end
  return h
end

--- One HTTP request with curl.  Returns status (number, 0 when no answer),
-- body (string) and headers (table, lower-case names).
function M.http(port, method, path, body, headers)
  local bodyfile, hdrfile = os.tmpname(), os.tmpname()
  local hs = {}
  for k, v in pairs(headers or {}) do hs[#hs + 1] = "-H " .. q(k .. ": " .. v) end
  local cmd = ("curl -s -m 10 -X %s -o %s -D %s -w '%%{http_code}' %s %s %s"):format(
    q(method), q(bodyfile), q(hdrfile), table.concat(hs, " "),
    body and ("--data-binary " .. q(body)) or "",
    q("http://127.0.0.1:" .. port .. path))
  local p = assert(io.popen(cmd))
  local code = tonumber(p:read("a")) or 0
  p:close()
  local headers = {}
  for line in (read_file(hdrfile) or ""):gmatch("[^\r\n]+") do
    local k, v = line:match("^([^:]+):%s*(.*)$")
    if k then headers[k:lower()] = v end
  end
  local out = read_file(bodyfile) or ""
  os.remove(bodyfile)
  os.remove(hdrfile)
  return code, out, headers
end

--- A JWT from scripts/token signed with `secret`; `args` is the rest of its
-- command line, e.g. "--role service_role" or "--sub " .. id .. " --admin".
function M.token(secret, args)
  args = args or ""
  local p = assert(io.popen(("STRATA_JWT_SECRET=%s scripts/token %s"):format(q(secret), args)))
  local t = p:read("l")
  p:close()
  assert(t and t:match("^[%w_-]+%.[%w_-]+%.[%w_-]+$"), "scripts/token printed no token for " .. args)
  return t
end

--- Many tokens at once, as M.token would mint them with "--sub <sub>"
-- (role authenticated, an hour's lifetime): one openssl process signs them
-- all, where M.token spawns several per token (1,000 tokens: 0.2 s, not 90).
-- The secret is on openssl's command line: test secrets only.
function M.tokens(secret, subs)
  local mime = require("mime")
  local function b64url(s) return (mime.b64(s):gsub("[+/=]", { ["+"] = "-", ["/"] = "_", ["="] = "" })) end
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. q(dir)))
  local now, inputs = os.time(), {}
  local header = b64url('{"alg":"HS256","typ":"JWT"}')
  for i, sub in ipairs(subs) do
    inputs[i] = header .. "." .. b64url(('{"sub":"%s","role":"authenticated","iat":%d,"exp":%d}'):format(sub, now, now + 3600))
    local f = assert(io.open(("%s/%d"):format(dir, i), "wb"))
    f:write(inputs[i])
    f:close()
  end
  -- xargs keeps the file list under the command-line limit; -r: output "HMAC-SHA256(<dir>/<i>)= <hex>".
  local p = assert(io.popen(("cd %s && ls | xargs openssl dgst -sha256 -hmac %s -r"):format(q(dir), q(secret))))
  local out = p:read("a")
  p:close()
  os.execute("rm -rf " .. q(dir))
  local tokens = {}
  for hex, i in out:gmatch("(%x+) %*?(%d+)") do
    tokens[tonumber(i)] = inputs[tonumber(i)] .. "." .. b64url((hex:gsub("%x%x", function(b) return string.char(tonumber(b, 16)) end)))
  end
  for i = 1, #subs do assert(tokens[i], "openssl signed no token for " .. subs[i]) end
  return tokens
end

--- One REST request: `body` a table (sent as JSON) or a string.  Returns
-- status, the decoded body (the raw text when it is not JSON, nil when
-- empty), headers and the raw body.
function M.rest(port, method, path, body, headers)
  if type(body) == "table" then body = cjson.encode(body) end
  local code, raw, hdrs = M.http(port, method, path, body, headers)
  local doc
  if raw ~= "" then
    local ok, d = pcall(cjson.decode, raw)
    if ok then doc = d else doc = raw end
  end
  return code, doc, hdrs, raw
end

--- A REST client on /rest/v1 as the bearer of `tok` (nil: anon).  Every
-- request sends Content-Type: application/json and Prefer:
-- return=representation (writes ask for the rows back), then `headers`
-- (false drops a default), then the headers of the call.  Its get, post,
-- patch, delete and rpc answer status and the decoded body (the raw text,
-- "" when empty, when it is not JSON).
function M.rest_client(port, tok, headers)
  local function call(method, path, body, extra)
    local hs = { ["Content-Type"] = "application/json", Prefer = "return=representation" }
    if tok then hs.Authorization = "Bearer " .. tok end
    for k, v in pairs(headers or {}) do hs[k] = v or nil end
    for k, v in pairs(extra or {}) do hs[k] = v or nil end
    local code, doc, _, raw = M.rest(port, method, "/rest/v1/" .. path, body, hs)
    if doc == nil then doc = raw end
    return code, doc
  end
  return {
    get = function(path, extra) return call("GET", path, nil, extra) end,
    post = function(path, body, extra) return call("POST", path, body, extra) end,
    patch = function(path, body, extra) return call("PATCH", path, body, extra) end,
    delete = function(path, extra) return call("DELETE", path, nil, extra) end,
    rpc = function(fn, args, extra) return call("POST", "rpc/" .. fn, args or {}, extra) end,
  }
end

--- A configuration file holding `values` (strings, numbers, booleans and
-- lists of strings); returns its path.
function M.conf_file(values)
  local lines = { "return {" }
  for k, v in pairs(values) do
    local text
    if type(v) == "table" then
      local items = {}
      for i, s in ipairs(v) do items[i] = ("%q"):format(s) end
      text = "{" .. table.concat(items, ", ") .. "}"
    elseif type(v) == "string" then
      text = ("%q"):format(v)
    else
      text = tostring(v)
    end
    lines[#lines + 1] = ("  %s = %s,"):format(k, text)
  end
  lines[#lines + 1] = "}"
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(table.concat(lines, "\n"))
  f:close()
  return path
end

--- A copy of lua/ in a temporary directory, for specs that rewrite scripts.
-- Returns its path; `files` (path -> text) are written into it.
function M.lua_dir(files)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute(("mkdir -p %s && cp -r lua/. %s/"):format(q(dir), q(dir))))
  for path, text in pairs(files or {}) do M.write(dir .. "/" .. path, text) end
  return dir
end

--- Writes a file atomically (write then rename), creating directories.
function M.write(path, text)
  assert(os.execute("mkdir -p " .. q(path:match("^(.*)/[^/]*$"))))
  local tmp = path .. ".tmp~"
  local f = assert(io.open(tmp, "w"))
  f:write(text)
  f:close()
  assert(os.rename(tmp, path))
end

--- A raw TCP connection to the server, for what curl cannot send
-- (pipelining, malformed requests, slow clients).
function M.connect(port)
  local c = assert(socket.tcp())
  c:settimeout(5)
  assert(c:connect("127.0.0.1", port))
  return c
end

--- Reads one HTTP response from a raw connection: status, headers (lower-
-- case names), body; nil and the error when the connection closes first.
function M.read_response(c)
  local line, err = c:receive("*l")
  if not line then return nil, err end
  local status = tonumber(line:match("^HTTP/1%.%d (%d%d%d)"))
  local headers = {}
  while true do
    local h = assert(c:receive("*l"))
    if h == "" then break end
    local k, v = h:match("^([^:]+):%s*(.*)$")
    headers[k:lower()] = v
  end
  local n = tonumber(headers["content-length"] or "0")
  local body = n > 0 and assert(c:receive(n)) or ""
  return status, headers, body
end

--- Sends `bytes` on a new connection and reads one response.
function M.raw(port, bytes)
  local c = M.connect(port)
  assert(c:send(bytes))
  local status, headers, body = M.read_response(c)
  c:close()
  return status, headers, body
end

--- Polls `path` until it answers `want` or `seconds` pass; the last answer.
function M.await(port, path, want, seconds)
  local code, body, headers
  for _ = 1, (seconds or 10) * 10 do
    code, body, headers = M.http(port, "GET", path)
    if code == want then break end
    sleep(0.1)
  end
  return code, body, headers
end

--- Runs a fake server of the specs (`python3 script portfile [args...]`,
-- which writes its port to portfile once it listens) in a temporary
-- directory.  Returns { port, pid, dir, log(), stop() }; raises with the
-- fake's output when it does not start within 5 s.
function M.fake(script, args)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. q(dir)))
  local quoted = {}
  for i, a in ipairs(args or {}) do quoted[i] = q(a) end
  local p = assert(io.popen(("python3 %s %s %s >%s 2>&1 & echo $!"):format(q(script), q(dir .. "/port"),
    table.concat(quoted, " "), q(dir .. "/log"))))
  local pid = assert(tonumber(p:read("l")))
  p:close()
  local function read(name)
    local f = io.open(dir .. "/" .. name, "rb")
    if not f then return nil end
    local text = f:read("a")
    f:close()
    return text
  end
  local port
  for _ = 1, 100 do
    port = tonumber(read("port") or "")
    if port then break end
    sleep(0.05)
  end
  assert(port, script .. " did not start: " .. (read("log") or ""))
  return { port = port, pid = pid, dir = dir, log = function() return read("log") or "" end,
    stop = function()
      os.execute(("kill %d >/dev/null 2>&1"):format(pid))
      os.execute("rm -rf " .. q(dir))
    end }
end

return M
