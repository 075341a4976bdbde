-- strata.runtime: turns a snapshot of scripts into the request dispatcher.
-- The C host (core/lua/lua_host.c) calls boot() once per Lua state; if boot
-- fails, the state is thrown away and the previous scripts keep serving.
-- dispatch(req) then runs inside one coroutine per request.

local cjson = require("cjson")
local router = require("strata.router")
local checks = require("strata.checks")
local ratelimit = require("strata.ratelimit")
local stream = require("strata.stream")
local logrules = require("strata.logrules")
require("strata.activity") -- log.activity & co. for every script

local type, pcall, ipairs, tostring, math_type = type, pcall, ipairs, tostring, math.type
local find = string.find

local M = {}

local function error_body(code, message)
  return { code = code, message = message, details = cjson.null, hint = cjson.null }
end

-- Runs a chunk loaded from the snapshot; its value, or nil and the error.
local function run_file(loadscript, path)
  local chunk, err = loadscript(path)
  if not chunk then return nil, err end
  local ok, value = pcall(chunk)
  if not ok then return nil, tostring(value) end
  return value
end

local function load_routes(r, loadscript, path)
  local list, err = run_file(loadscript, path)
  if err then return nil, err end
  if type(list) ~= "table" then return nil, path .. ": a route file must return a list of routes" end
  for i, route in ipairs(list) do
    local ok, why = checks.route(path, i, route)
    if not ok then return nil, why end
    route.method = route.method:upper()
    ok, why = r:add(route, path)
    if not ok then return nil, why end
  end
  return true
end

local function check_file(loadscript, path)
  local value, err = run_file(loadscript, path)
  if err then return nil, err end
  if path == "policies/rpc.lua" then return checks.rpc_policy(path, value) end
  if path == "auth/hooks.lua" then return checks.auth_hooks(path, value) end
  if find(path, "^policies/") then return checks.policy(path, value) end
  if find(path, "^rules/") then return checks.rule(path, value) end
  return checks.validator(path, value)
end

-- Normalises what a handler returned into status, body string, content
-- type and headers for the C host.
local function finish(status, body, headers)
  if math_type(status) ~= "integer" or status < 100 or status > 599 then
    error("handler returned an invalid status: " .. tostring(status), 0)
  end
  if headers ~= nil and type(headers) ~= "table" then
    error("handler returned headers that are not a table", 0)
  end
  local t = type(body)
  if t == "table" then return status, cjson.encode(body), "application/json", headers end
  if t == "string" then return status, body, "text/plain; charset=utf-8", headers end
  if body == nil then return status, "", nil, headers end
  error("handler returned a body that is neither a table, a string nor nil: " .. t, 0)
end

-- `res`, the handler's second argument: a streamed answer.  One table for
-- every request: strata.stream acts on the request of the running handler.
local stream_start, stream_write, stream_started = stream.start, stream.write, stream.started
local current_req = require("strata.request").current
local EXTRA = {} -- key in req: headers the dispatcher adds to every answer (the rate limit's)
local SSE_HEADERS = { ["Content-Type"] = "text/event-stream", ["Cache-Control"] = "no-cache",
  ["X-Accel-Buffering"] = "no" }
local res = {}

-- Starts the stream with `headers` and the dispatcher's extra headers.
local function start(status, headers, ctype)
  local req = current_req()
  local extra = req and rawget(req, EXTRA)
  if extra then
    local all = {}
    for k, v in pairs(extra) do all[k] = v end
    for k, v in pairs(headers or {}) do all[k] = v end
    headers = all
  end
  return stream_start(status, headers, ctype)
end

--- res.start(status[, headers]) -> true | nil, "closed": sends the head now.
function res.start(status, headers)
  return start(status or 200, headers, "application/octet-stream")
end

--- res.write(chunk) -> true | nil, "closed" | nil, "slow client".
function res.write(chunk)
  if not stream_started() then
    local ok, err = start(200, nil, "text/plain; charset=utf-8")
    if not ok then return nil, err end
  end
  return stream_write(chunk)
end

--- res.sse(event, data) -> like res.write; data a table (sent as JSON) or a
-- string (as is; a line break in it starts another data line).
function res.sse(event, data)
  if not stream_started() then
    local ok, err = start(200, SSE_HEADERS)
    if not ok then return nil, err end
  end
  if type(data) == "table" then data = cjson.encode(data) end
  data = tostring(data)
  -- The matcher only for data with a line break (never JSON's): it runs at every byte.
  if find(data, "\n", 1, true) then data = data:gsub("\r?\n", "\ndata: ") end
  if event then
    return stream_write("event: " .. event .. "\ndata: " .. data .. "\n\n")
  end
  return stream_write("data: " .. data .. "\n\n")
end

--- Builds the dispatcher from `files` (the snapshot's paths, sorted) and
-- `loadscript(path)` (compiles a snapshot file).  Returns dispatch, or nil
-- and a message naming the file (and line when Lua gives one).
function M.boot(files, loadscript)
  local r = router.new()
  -- The PostgREST-compatible API is built in; a team route on the same
  -- paths is a collision, reported like any other.
  r:add({ method = "*", path = "/rest/v1/*rest", handler = function(req) return require("strata.rest").handle(req) end },
    "strata/rest (built in)")
  -- Supabase Auth's API (lua/auth/): its errors are GoTrue's, bad JSON too.
  local auth = { method = "*", path = "/auth/v1/*rest", handler = function(req) return require("auth").handle(req) end,
    json_error = function(message) return require("auth").json_error(message) end,
    limit_error = function(_, headers) return require("auth").limit_error(headers) end }
  r:add(auth, "auth (built in)")
  r:add({ method = "POST", path = "/admin/policy/explain",
    handler = function(req) return require("strata.rest.explain").handle(req) end }, "strata/rest/explain (built in)")
  -- The scheduler (lua/jobs.lua): the C host's tick, and the jobs' counts.
  r:add({ method = "POST", path = "/_strata/jobs/tick",
    handler = function(req) return require("strata.jobs").tick(req) end }, "strata/jobs (built in)")
  r:add({ method = "GET", path = "/_strata/jobs", handler = function(req) return require("strata.jobs").list(req) end },
    "strata/jobs (built in)")
  for _, path in ipairs(files) do
    -- Every file must compile, even those nothing requires yet.
    local ok, err = loadscript(path)
    if not ok then return nil, err end
    if find(path, "^routes/.+%.lua$") then
      ok, err = load_routes(r, loadscript, path)
    elseif find(path, "^policies/.+%.lua$") or find(path, "^validators/.+%.lua$") or find(path, "^rules/.+%.lua$")
      or path == "auth/hooks.lua" then
      ok, err = check_file(loadscript, path)
    elseif path == "jobs.lua" then
      local value
      value, err = run_file(loadscript, path)
      if not err then ok, err = require("strata.jobs").check(path, value) else ok = nil end
    elseif path == "logging.lua" then
      local value
      value, err = run_file(loadscript, path)
      if not err then ok, err = logrules.check_file(path, value) else ok = nil end
    end
    if not ok then return nil, err end
  end

  -- json_text: the body when its Content-Type is JSON (the host decides
  -- that in C, so a request without one never builds req.headers or req.body).
  return function(req, json_text)
    local route, why = r:match(req.method, req.path)
    if not route then
      if why == "method_not_allowed" then
        return 405, cjson.encode(error_body("method_not_allowed",
          ("%s is not allowed on %s"):format(req.method, req.path))), "application/json"
      end
      return 404, cjson.encode(error_body("not_found", "no route for " .. req.path)), "application/json"
    end
    req.params = why
    if json_text then
      local ok, value = pcall(cjson.decode, json_text)
      if not ok and route.json_error then
        local status, rbody, ctype, headers = finish(route.json_error(tostring(value)))
        return status, rbody, ctype, headers, route.path
      end
      if not ok then
        return 400, cjson.encode(error_body("invalid_json", "request body is not valid JSON: " .. tostring(value))),
          "application/json", nil, route.path
      end
      req.json = value
    end
    local limited, lbody, lheaders = ratelimit.check(req, route)
    if limited and route.limit_error then
      local status, rbody, ctype, headers = finish(route.limit_error(lbody, lheaders))
      return status, rbody, ctype, headers, route.path
    end
    if limited then
      return limited, cjson.encode(lbody), "application/json", lheaders, route.path
    end
    if lbody then rawset(req, EXTRA, lbody) end -- a streamed answer's head takes them too
    -- No pcall here: an error must reach the host with its traceback.
    local rstatus, rbody, rheaders = route.handler(req, res)
    -- A streamed answer is ended by the host; what the handler returned is ignored.
    if stream_started() then return 200, nil, nil, nil, route.path end
    local status, body, ctype, headers = finish(rstatus, rbody, rheaders)
    if lbody then
      headers = headers or {}
      for k, v in pairs(lbody) do if headers[k] == nil then headers[k] = v end end
    end
    return status, body, ctype, headers, route.path
  end
end

return M
