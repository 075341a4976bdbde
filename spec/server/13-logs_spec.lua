-- Seed 003's logging: error_logs for 5xx answers, user / agent activity and
-- usage rows from scripts (strata.activity), batched off the request path
-- (core/db/log_db.c), under logging_settings applied live, with privacy,
-- the rule file lua/logging.lua, retention purge and the admin RPCs.
local cjson = require("cjson")
local socket = require("socket")
local h = require("helpers")
local srv = require("server_helpers")

local SECRET = "logs-spec-secret"

local ROUTES = [[
local cjson = require("cjson")
local log = require("strata.log")
local function out(id, why) return 200, { id = id or cjson.null, why = why or cjson.null } end
return {
  { method = "POST", path = "/v1/spec/act/:cat/:action",
    handler = function(req) return out(log.activity(req.params.cat, req.params.action, req.json or {})) end },
  { method = "POST", path = "/v1/spec/many/:n", handler = function(req)
      local ids = {}
      for i = 1, tonumber(req.params.n) do
        ids[i] = log.activity("chat", "view", { metadata = { tag = req.query.tag } }) or cjson.null
      end
      return 200, ids
    end },
  { method = "POST", path = "/v1/spec/agent", handler = function(req) return out(log.agent_activity(req.json)) end },
  { method = "POST", path = "/v1/spec/error", handler = function(req) return out(log.error_row(req.json)) end },
  { method = "POST", path = "/v1/spec/usage", handler = function(req) return out(log.usage(req.json)) end },
  { method = "GET", path = "/v1/spec/settings", handler = function() return 200, (log.settings()) or "{}" end },
  { method = "GET", path = "/v1/spec/boom", handler = function() error("spec boom") end },
  { method = "GET", path = "/v1/spec/stream-boom", handler = function(_, res)
      res.write("part one\n")
      error("spec stream boom")
    end },
  { method = "GET", path = "/v1/spec/anon", handler = function(req) return 200, log.anonymize_ip(req.query.ip) end },
}]]

-- Seed 003's logging_settings (sql/029_seed_data.sql), made quick to flush.
local function base_settings()
  return {
    error_logging_enabled = true, user_activity_logging_enabled = true, agent_activity_logging_enabled = true,
    log_retention_days = { error_logs = 90, user_activity_logs = 30, agent_activity_logs = 7 },
    category_toggles = { log_auth_events = true, log_chat_events = true, log_document_events = true,
      log_admin_events = true, log_vote_events = true, log_file_events = true, log_artifact_events = true,
      log_ai_operations = true, log_tool_invocations = true, log_code_execution = true },
    performance_settings = { batch_writes = true, batch_size = 100, batch_interval_ms = 100, async_logging = true,
      sampling_enabled = false, sampling_rate = 1.0 },
    privacy_settings = { anonymize_ip = false, hash_email = false, log_user_agent = true,
      exclude_sensitive_paths = { "/api/auth/callback" } },
  }
end

local function merge(into, from)
  for k, v in pairs(from) do
    if type(v) == "table" and type(into[k]) == "table" and #v == 0 and next(v) then merge(into[k], v)
    else into[k] = v end
  end
  return into
end

-- Writes logging_settings in SQL, then waits until the server read them.
local function settings(s, changes)
  local t = merge(base_settings(), changes or {})
  t.spec_marker = h.uuid()
  h.accepts("update public.admin_config set config_data = " .. h.lit(cjson.encode(t))
    .. "::jsonb where config_key = 'logging_settings'")
  for _ = 1, 200 do
    local _, body = srv.http(s.port, "GET", "/v1/spec/settings")
    local ok, got = pcall(cjson.decode, body)
    if ok and got.spec_marker == t.spec_marker then return end
    srv.sleep(0.05)
  end
  error("the server did not read the new logging_settings")
end

local SEED_SETTINGS
local function restore_settings()
  h.accepts("update public.admin_config set config_data = " .. h.lit(SEED_SETTINGS)
    .. "::jsonb where config_key = 'logging_settings'")
end

local function start(env, files)
  files = files or {}
  files["routes/spec_logs.lua"] = files["routes/spec_logs.lua"] or ROUTES
  local dir = srv.lua_dir(files)
  env = env or {}
  env.STRATA_LUA_DIR = dir
  env.STRATA_JWT_SECRET = SECRET
  local s = srv.start(env)
  assert.equal(200, (srv.await(s.port, "/ready", 200, 10)), s.log())
  s.dir = dir
  return s
end

local function stop(s)
  assert.equal(0, s.stop(), s.log())
  s.cleanup()
  os.execute("rm -rf " .. srv.quote(s.dir))
end

-- Waits until `sql` (a count) answers want; the last answer.
local function await_count(sql, want, seconds)
  local n
  for _ = 1, (seconds or 15) * 20 do
    n = tonumber(h.scalar(sql))
    if n == want then return n end
    srv.sleep(0.05)
  end
  return n
end

local function post(s, path, body, headers)
  local code, raw = srv.http(s.port, "POST", path, body and cjson.encode(body) or "{}",
    merge({ ["Content-Type"] = "application/json" }, headers or {}))
  return code, code == 200 and cjson.decode(raw) or raw
end

local function as(uid, rid, more)
  return merge({ Authorization = "Bearer " .. srv.token(SECRET, "--sub " .. uid .. " --role authenticated"),
    ["X-Request-Id"] = rid, ["User-Agent"] = "spec-agent/1.0" }, more or {})
end

local function metric(text, name)
  return tonumber(text:match(name:gsub("[%[%]{}\"=]", "%%%0") .. " (%d+)")) or 0
end

describe("logging #server", function()
  local s
  setup(function()
    SEED_SETTINGS = h.scalar("select config_data::text from public.admin_config where config_key = 'logging_settings'")
    s = start()
  end)
  teardown(function()
    stop(s)
    restore_settings()
  end)

  it("writes an error_logs row for a 5xx with the request id, and none for a 4xx", function()
    settings(s)
    local rid = h.uuid()
    local uid = h.uuid()
    local code = srv.http(s.port, "GET", "/v1/spec/boom", nil, as(uid, rid))
    assert.equal(500, code)
    local rid404 = h.uuid()
    assert.equal(404, (srv.http(s.port, "GET", "/v1/spec/nothing-here", nil, { ["X-Request-Id"] = rid404 })))
    local where = "from public.error_logs where error_details->>'request_id' = "
    assert.equal(1, await_count("select count(*) " .. where .. h.lit(rid), 1))
    local row = h.query("select user_id, error_type, error_category, severity, error_message, request_path, "
      .. "request_method, user_agent, ip_address, error_details->>'lua_error' as lua_error " .. where .. h.lit(rid))[1]
    assert.equal(uid, row.user_id)
    assert.equal("app", row.error_type)
    assert.equal("lua_error", row.error_category)
    assert.equal("critical", row.severity)
    assert.matches("spec boom", row.error_message)
    assert.matches("stack traceback", row.lua_error)
    assert.equal("/v1/spec/boom", row.request_path)
    assert.equal("GET", row.request_method)
    assert.equal("spec-agent/1.0", row.user_agent)
    assert.equal("127.0.0.1", row.ip_address)
    assert.equal("0", h.scalar("select count(*) " .. where .. h.lit(rid404)))
  end)

  it("writes an error_logs row for a Lua error after a streamed answer's head (the stream is cut)", function()
    settings(s)
    local rid = h.uuid()
    assert.equal(200, (srv.http(s.port, "GET", "/v1/spec/stream-boom", nil, as(h.uuid(), rid))))
    local where = "from public.error_logs where error_details->>'request_id' = " .. h.lit(rid)
    assert.equal(1, await_count("select count(*) " .. where, 1))
    local row = h.query("select error_category, severity, error_message, error_details->>'status' as status, "
      .. "error_details->>'stream_cut' as cut, error_details->>'lua_error' as lua_error " .. where)[1]
    assert.equal("lua_error", row.error_category)
    assert.equal("critical", row.severity)
    assert.matches("spec stream boom", row.error_message)
    assert.matches("stack traceback", row.lua_error)
    assert.equal("200", row.status)
    assert.equal("true", row.cut)
  end)

  it("writes no error row when error_logging_enabled is off", function()
    settings(s, { error_logging_enabled = false })
    local rid = h.uuid()
    assert.equal(500, (srv.http(s.port, "GET", "/v1/spec/boom", nil, { ["X-Request-Id"] = rid })))
    local _, err = post(s, "/v1/spec/error", { error_message = "background failure" })
    assert.equal("off", err.why)
    settings(s) -- back on: a later row proves the earlier one was not merely late
    local rid2 = h.uuid()
    assert.equal(500, (srv.http(s.port, "GET", "/v1/spec/boom", nil, { ["X-Request-Id"] = rid2 })))
    assert.equal(1, await_count("select count(*) from public.error_logs where error_details->>'request_id' = "
      .. h.lit(rid2), 1))
    assert.equal("0", h.scalar("select count(*) from public.error_logs where error_details->>'request_id' = "
      .. h.lit(rid)))
  end)

  it("writes user and agent activity with one correlation id per request, and usage rows", function()
    settings(s)
    local uid, rid = h.user(), h.uuid()
    local _, a = post(s, "/v1/spec/act/chat/create", { resource_type = "Chat", metadata = { title = "t" } }, as(uid, rid))
    assert.is_string(a.id, cjson.encode(a))
    local _, b = post(s, "/v1/spec/agent", { agent_type = "chat_model_agent", operation_type = "tool_invocation",
      model_id = "gemini-2.0-flash", provider = "google", input_tokens = 10, output_tokens = 5, total_tokens = 15,
      total_cost = 0.000123, duration_ms = 42, retry_count = 1, success = false, error_message = "tool failed" },
      as(uid, rid))
    assert.is_string(b.id, cjson.encode(b))
    local _, u = post(s, "/v1/spec/usage", { agent_type = "chat_model_agent", model_used = "gemini-2.0-flash",
      provider = "google", input_tokens = 10, output_tokens = 5, total_tokens = 15, total_cost = 0.5 }, as(uid, rid))
    assert.is_string(u.id, cjson.encode(u))
    assert.equal(1, await_count("select count(*) from public.user_activity_logs where id = " .. h.lit(a.id), 1))
    assert.equal(1, await_count("select count(*) from public.agent_activity_logs where id = " .. h.lit(b.id), 1))
    assert.equal(1, await_count("select count(*) from public.usage_logs where id = " .. h.lit(u.id), 1))
    local ua = h.query("select * from public.user_activity_logs where id = " .. h.lit(a.id))[1]
    assert.equal("chat_create", ua.activity_type)
    assert.equal("chat", ua.activity_category)
    assert.equal(rid, ua.correlation_id)
    assert.equal(uid, ua.user_id)
    assert.equal("/v1/spec/act/chat/create", ua.request_path)
    assert.equal("POST", ua.request_method)
    local ag = h.query("select * from public.agent_activity_logs where id = " .. h.lit(b.id))[1]
    assert.equal(rid, ag.correlation_id)
    assert.equal("tool_invocation", ag.operation_type)
    assert.equal("0.000123", ag.total_cost)
    assert.equal("1", ag.retry_count)
    assert.equal("f", ag.success)
    assert.equal(uid, h.scalar("select user_id from public.usage_logs where id = " .. h.lit(u.id)))
  end)

  it("applies the switches, the category toggles and an unknown type", function()
    local uid = h.uuid()
    settings(s, { user_activity_logging_enabled = false, agent_activity_logging_enabled = false })
    assert.equal("off", select(2, post(s, "/v1/spec/act/chat/create", {}, as(uid, h.uuid()))).why)
    assert.equal("off", select(2, post(s, "/v1/spec/agent", { agent_type = "chat_model_agent",
      operation_type = "streaming" }, as(uid, h.uuid()))).why)
    settings(s, { category_toggles = { log_chat_events = false, log_tool_invocations = false } })
    assert.equal("off", select(2, post(s, "/v1/spec/act/chat/create", {}, as(uid, h.uuid()))).why)
    assert.is_string(select(2, post(s, "/v1/spec/act/auth/login", { success = false }, as(uid, h.uuid()))).id)
    assert.equal("off", select(2, post(s, "/v1/spec/agent", { agent_type = "chat_model_agent",
      operation_type = "search" }, as(uid, h.uuid()))).why)
    assert.is_string(select(2, post(s, "/v1/spec/agent", { agent_type = "chat_model_agent",
      operation_type = "streaming" }, as(uid, h.uuid()))).id)
    assert.equal("unknown activity type chat_archive",
      select(2, post(s, "/v1/spec/act/chat/archive", {}, as(uid, h.uuid()))).why)
    settings(s, { privacy_settings = { exclude_sensitive_paths = { "/v1/spec/act/auth" } } })
    assert.equal("excluded_path", select(2, post(s, "/v1/spec/act/auth/login", {}, as(uid, h.uuid()))).why)
  end)

  it("keeps the previous settings when logging_settings written in SQL cannot be read", function()
    settings(s, { user_activity_logging_enabled = false })
    local _, before = srv.http(s.port, "GET", "/v1/spec/settings")
    h.accepts("update public.admin_config set config_data = jsonb_set(config_data, '{error_logging_enabled}', "
      .. "'\"maybe\"') where config_key = 'logging_settings'")
    local warned
    for _ = 1, 200 do
      warned = s.log():find("logging_settings: cannot read them, the previous ones stay", 1, true)
      if warned then break end
      srv.sleep(0.05)
    end
    assert.truthy(warned, "the server tried the new settings")
    local _, after = srv.http(s.port, "GET", "/v1/spec/settings")
    assert.equal(before, after)
    local rid = h.uuid()
    assert.equal(500, (srv.http(s.port, "GET", "/v1/spec/boom", nil, { ["X-Request-Id"] = rid })))
    assert.equal(1, await_count("select count(*) from public.error_logs where error_details->>'request_id' = "
      .. h.lit(rid), 1))
    assert.equal("off", select(2, post(s, "/v1/spec/act/chat/create", {}, as(h.uuid(), h.uuid()))).why)
  end)

  it("samples activity by sampling_rate but never error rows", function()
    local uid = h.uuid()
    settings(s, { performance_settings = { sampling_enabled = true, sampling_rate = 0 } })
    local _, ids = post(s, "/v1/spec/many/50?tag=x", {}, as(uid, h.uuid()))
    for _, id in ipairs(ids) do assert.equal(cjson.null, id) end
    assert.is_string(select(2, post(s, "/v1/spec/error", { error_message = "sampled?" })).id)
    settings(s, { performance_settings = { sampling_enabled = true, sampling_rate = 0.5 } })
    _, ids = post(s, "/v1/spec/many/200?tag=x", {}, as(uid, h.uuid()))
    local kept = 0
    for _, id in ipairs(ids) do if id ~= cjson.null then kept = kept + 1 end end
    assert.is_true(kept > 40 and kept < 160, "kept " .. kept .. " of 200 at rate 0.5")
    settings(s, { performance_settings = { sampling_enabled = true, sampling_rate = 1 } })
    _, ids = post(s, "/v1/spec/many/50?tag=x", {}, as(uid, h.uuid()))
    for _, id in ipairs(ids) do assert.is_string(id) end
  end)

  it("keeps addresses, user agents, e-mails and secrets out of the four tables as the privacy settings say", function()
    settings(s, { privacy_settings = { anonymize_ip = true, hash_email = true, log_user_agent = false } })
    local uid, rid = h.user(), h.uuid()
    local meta = { email = "Someone@Example.test", password = "hunter2", access_token = "tok", api_key = "k",
      nested = { refresh_token = "r", contact = "other@example.test", note = "kept" } }
    local _, a = post(s, "/v1/spec/act/auth/login", { metadata = meta }, as(uid, rid))
    local _, b = post(s, "/v1/spec/agent", { agent_type = "chat_model_agent", operation_type = "streaming",
      metadata = meta }, as(uid, rid))
    local _, e = post(s, "/v1/spec/error", { error_message = "x", details = meta }, as(uid, rid))
    local _, u = post(s, "/v1/spec/usage", { agent_type = "chat_model_agent", metadata = meta }, as(uid, rid))
    assert.equal(500, (srv.http(s.port, "GET", "/v1/spec/boom", nil, as(uid, rid))))
    assert.equal(1, await_count("select count(*) from public.usage_logs where id = " .. h.lit(u.id), 1))
    assert.equal(2, await_count("select count(*) from public.error_logs where error_details->>'request_id' = "
      .. h.lit(rid), 2))
    local checks = {
      { "user_activity_logs", a.id, "activity_metadata" }, { "agent_activity_logs", b.id, "operation_metadata" },
      { "error_logs", e.id, "error_details" }, { "usage_logs", u.id, "metadata" },
    }
    local expected = "hmac-sha256:" .. h.scalar("select encode(extensions.hmac('someone@example.test', "
      .. h.lit(SECRET) .. ", 'sha256'), 'hex')")
    for _, c in ipairs(checks) do
      local m = cjson.decode(h.scalar(("select %s::text from public.%s where id = %s"):format(c[3], c[1], h.lit(c[2]))))
      assert.equal(expected, m.email, c[1])
      assert.is_nil(m.password, c[1])
      assert.is_nil(m.access_token, c[1])
      assert.is_nil(m.api_key, c[1])
      assert.is_nil(m.nested.refresh_token, c[1])
      assert.matches("^hmac%-sha256:", m.nested.contact, c[1])
      assert.equal("kept", m.nested.note, c[1])
    end
    for _, t in ipairs({ "user_activity_logs", "error_logs" }) do
      local r = h.query(("select ip_address, user_agent from public.%s where id = %s"):format(t,
        h.lit(t == "error_logs" and e.id or a.id)))[1]
      assert.equal("127.0.0.0", r.ip_address, t)
      assert.is_nil(r.user_agent, t)
    end
    local r = h.query("select ip_address, user_agent from public.error_logs where error_details->>'request_id' = "
      .. h.lit(rid) .. " and error_category = 'lua_error'")[1]
    assert.equal("127.0.0.0", r.ip_address)
    assert.is_nil(r.user_agent)
  end)

  it("anonymizes IPv4 to /24 and IPv6 to /48", function()
    local function anon(ip) return select(2, srv.http(s.port, "GET", "/v1/spec/anon?ip=" .. ip)) end
    assert.equal("203.0.113.0", anon("203.0.113.77"))
    assert.equal("2001:db8:1234::", anon("2001:db8:1234:5678:9abc::1"))
    assert.equal("", anon("not-an-address"))
  end)

  it("logs the REST writes lua/logging.lua names, as the caller", function()
    settings(s)
    local uid, rid, chat = h.user(), h.uuid(), h.uuid()
    local code = srv.rest(s.port, "POST", "/rest/v1/Chat", { id = chat, title = "logged", user_id = uid }, as(uid, rid, { ["Content-Type"] = "application/json" }))
    assert.equal(201, code)
    assert.equal(1, await_count("select count(*) from public.user_activity_logs where correlation_id = "
      .. h.lit(rid), 1))
    local row = h.query("select * from public.user_activity_logs where correlation_id = " .. h.lit(rid))[1]
    assert.equal("chat_create", row.activity_type)
    assert.equal("Chat", row.resource_type)
    assert.equal(uid, row.user_id)
    code = srv.rest(s.port, "DELETE", "/rest/v1/Chat?id=eq." .. chat, nil, as(uid, rid))
    assert.equal(204, code)
    assert.equal(1, await_count("select count(*) from public.user_activity_logs where correlation_id = "
      .. h.lit(rid) .. " and activity_type = 'chat_delete' and resource_id = " .. h.lit(chat), 1))
  end)

  it("stamps resolved_by and resolved_at itself when an admin resolves an error", function()
    local admin, other = h.uuid(), h.uuid()
    local id = h.uuid()
    h.accepts("insert into public.error_logs (id, error_type, error_category, error_message) values ("
      .. h.lit(id) .. ", 'app', 'spec', 'to resolve')")
    local tok = srv.token(SECRET, "--sub " .. admin .. " --role authenticated --admin")
    local code = srv.rest(s.port, "PATCH", "/rest/v1/error_logs?id=eq." .. id,
      { resolved = true, resolved_by = other, resolved_at = "2000-01-01T00:00:00" },
      { Authorization = "Bearer " .. tok, ["Content-Type"] = "application/json" })
    assert.equal(204, code)
    local row = h.query("select resolved_by, resolved_at > localtimestamp - interval '1 hour' as recent "
      .. "from public.error_logs where id = " .. h.lit(id))[1]
    assert.equal(admin, row.resolved_by)
    assert.equal("t", row.recent)
  end)

  it("answers the dashboards' RPCs to admins only", function()
    local uid = h.user()
    h.accepts(("insert into public.usage_logs (user_id, agent_type, model_used, provider, total_tokens, total_cost) "
      .. "values (%s, 'document_agent', 'spec-model', 'spec-provider', 7, 1.25)"):format(h.lit(uid)))
    h.accepts("insert into public.error_logs (error_type, error_category, error_message, severity) "
      .. "values ('app', 'spec_dashboard', 'x', 'warning')")
    local admin = { Authorization = "Bearer " .. srv.token(SECRET, "--sub " .. h.uuid() .. " --role authenticated --admin"),
      ["Content-Type"] = "application/json" }
    local user = { Authorization = "Bearer " .. srv.token(SECRET, "--sub " .. uid .. " --role authenticated"),
      ["Content-Type"] = "application/json" }
    local function found(rows, pred) for _, r in ipairs(rows) do if pred(r) then return r end end end
    local code, rows = srv.rest(s.port, "POST", "/rest/v1/rpc/admin_usage_by_day_agent", {}, admin)
    assert.equal(200, code, cjson.encode(rows))
    assert.truthy(found(rows, function(r) return r.agent_type == "document_agent" end))
    code, rows = srv.rest(s.port, "POST", "/rest/v1/rpc/admin_cost_by_model_provider", {}, admin)
    assert.equal(200, code)
    assert.truthy(found(rows, function(r) return r.provider == "spec-provider" and r.model_used == "spec-model" end))
    code, rows = srv.rest(s.port, "POST", "/rest/v1/rpc/admin_error_counts", {}, admin)
    assert.equal(200, code)
    assert.truthy(found(rows, function(r) return r.error_category == "spec_dashboard" and r.severity == "warning" end))
    code, rows = srv.rest(s.port, "POST", "/rest/v1/rpc/admin_top_users", { p_limit = 1000 }, admin)
    assert.equal(200, code)
    assert.truthy(found(rows, function(r) return r.user_id == uid end))
    for _, fn in ipairs({ "admin_usage_by_day_agent", "admin_cost_by_model_provider", "admin_error_counts",
      "admin_top_users" }) do
      code = srv.rest(s.port, "POST", "/rest/v1/rpc/" .. fn, {}, user)
      assert.is_true(code == 403 or code == 401, fn .. " answered " .. code .. " to a user")
      assert.is_true((srv.rest(s.port, "POST", "/rest/v1/rpc/" .. fn, {}, { ["Content-Type"] = "application/json" }))
        >= 401, fn .. " to anon")
    end
  end)
end)

describe("logging's access log #server", function()
  it("zeroes the last octet of the address when anonymize_ip is on", function()
    local seed = h.scalar("select config_data::text from public.admin_config where config_key = 'logging_settings'")
    SEED_SETTINGS = seed
    local file = os.tmpname()
    local s = start({ STRATA_ACCESS_LOG = file })
    settings(s, { privacy_settings = { anonymize_ip = true } })
    local rid = h.uuid()
    srv.http(s.port, "GET", "/health", nil, { ["X-Request-Id"] = rid })
    stop(s)
    restore_settings()
    local f = assert(io.open(file))
    local text = f:read("a")
    f:close()
    os.remove(file)
    local line = text:match('[^\n]*"id":"' .. rid:gsub("%-", "%%-") .. '"[^\n]*')
    assert.is_string(line, text)
    assert.matches('"remote":"127.0.0.0"', line)
  end)

  it("leaves out the requests to exclude_sensitive_paths (prefixes)", function()
    SEED_SETTINGS = SEED_SETTINGS or
      h.scalar("select config_data::text from public.admin_config where config_key = 'logging_settings'")
    local file = os.tmpname()
    local s = start({ STRATA_ACCESS_LOG = file })
    settings(s, { privacy_settings = { exclude_sensitive_paths = { "/v1/spec/an" } } })
    local hidden, shown = h.uuid(), h.uuid()
    assert.equal(200, (srv.http(s.port, "GET", "/v1/spec/anon?ip=10.1.2.3", nil, { ["X-Request-Id"] = hidden })))
    assert.equal(200, (srv.http(s.port, "GET", "/health", nil, { ["X-Request-Id"] = shown })))
    stop(s)
    restore_settings()
    local f = assert(io.open(file))
    local text = f:read("a")
    f:close()
    os.remove(file)
    assert.matches('"id":"' .. shown:gsub("%-", "%%-") .. '"', text)
    assert.is_nil(text:find(hidden, 1, true), text)
    assert.is_nil(text:find("/v1/spec/anon", 1, true), text)
  end)
end)

describe("logging's writer #server", function()
  local var = os.getenv("STRATA_TEST_VAR_DIR")
  before_each(function()
    SEED_SETTINGS = SEED_SETTINGS or
      h.scalar("select config_data::text from public.admin_config where config_key = 'logging_settings'")
  end)
  after_each(function() restore_settings() end)

  it("keeps every row while the database is down for two seconds, and stores each exactly once", function()
    assert.is_not_nil(var, "needs the embedded test cluster (scripts/test without DATABASE_URL)")
    local s = start()
    settings(s)
    local uid, tag = h.uuid(), h.uuid()
    os.execute(("(sleep 0.3; STRATA_VAR_DIR=%s scripts/db stop >/dev/null 2>&1; sleep 2; "
      .. "STRATA_VAR_DIR=%s scripts/db start >/dev/null 2>&1) &"):format(srv.quote(var), srv.quote(var)))
    local ids, t0, most_waiting = {}, socket.gettime(), 0
    for i = 1, 100 do
      local code, got = post(s, "/v1/spec/many/5?tag=" .. tag, {}, as(uid, h.uuid()))
      assert.equal(200, code, got)
      for _, id in ipairs(got) do ids[#ids + 1] = id end
      if i % 5 == 0 then
        local _, m = srv.http(s.port, "GET", "/metrics")
        most_waiting = math.max(most_waiting, metric(m, "strata_log_queue_rows"))
      end
      -- Spread over the outage: about four seconds in all.
      local left = 4 - (socket.gettime() - t0)
      if left > 0 then srv.sleep(math.min(0.04, left / 50)) end
    end
    assert.equal(500, #ids)
    for _, id in ipairs(ids) do assert.is_string(id) end
    assert.equal(200, (srv.await(s.port, "/ready", 200, 20)))
    local where = "from public.user_activity_logs where activity_metadata->>'tag' = " .. h.lit(tag)
    assert.equal(500, await_count("select count(*) " .. where, 500, 30))
    assert.equal("500", h.scalar("select count(distinct id) " .. where))
    local list = {}
    for i, id in ipairs(ids) do list[i] = h.lit(id) end
    assert.equal("500", h.scalar("select count(*) " .. where .. " and id in (" .. table.concat(list, ",") .. ")"))
    local _, metrics = srv.http(s.port, "GET", "/metrics")
    stop(s)
    -- Rows waited while the database was away (flushed every 100 ms
    -- otherwise), and the writer's connection was made again.
    assert.is_true(most_waiting >= 25, "most rows seen waiting: " .. most_waiting)
    assert.is_true(metric(metrics, "strata_log_settings_loads_total") >= 3)
    assert.equal(0, metric(metrics, 'strata_log_rows_dropped_total{table="user_activity_logs"}'))
  end)

  it("stores each row exactly once when the answers to committed INSERTs are lost", function()
    -- conf log_test_lose_answers: the writer drops its connection right
    -- after the next two INSERTs commit, as if their answers were lost.
    local s = start({ STRATA_LOG_TEST_LOSE_ANSWERS = "2" })
    settings(s, { performance_settings = { batch_size = 10 } })
    local uid, tag, ids = h.uuid(), h.uuid(), {}
    for _ = 1, 5 do
      local code, got = post(s, "/v1/spec/many/10?tag=" .. tag, {}, as(uid, h.uuid()))
      assert.equal(200, code, got)
      for _, id in ipairs(got) do ids[#ids + 1] = id end
    end
    assert.equal(50, #ids)
    local where = "from public.user_activity_logs where activity_metadata->>'tag' = " .. h.lit(tag)
    assert.equal(50, await_count("select count(*) " .. where, 50, 30))
    -- The lost batches were retried (each retry skipped the stored ids):
    -- wait until nothing is left to retry.
    local m
    for _ = 1, 200 do
      _, m = srv.http(s.port, "GET", "/metrics")
      if metric(m, "strata_log_flush_failures_total") >= 2 and metric(m, "strata_log_queue_rows") == 0 then break end
      srv.sleep(0.05)
    end
    stop(s)
    assert.is_true(metric(m, "strata_log_flush_failures_total") >= 2, m)
    assert.equal(0, metric(m, "strata_log_queue_rows"))
    assert.equal("50", h.scalar("select count(*) " .. where))
    assert.equal("50", h.scalar("select count(distinct id) " .. where))
    local list = {}
    for i, id in ipairs(ids) do list[i] = h.lit(id) end
    assert.equal("50", h.scalar("select count(*) " .. where .. " and id in (" .. table.concat(list, ",") .. ")"))
  end)

  it("writes what is queued at shutdown", function()
    local s = start()
    settings(s, { performance_settings = { batch_interval_ms = 3600000, batch_size = 10000 } })
    local tag = h.uuid()
    local _, ids = post(s, "/v1/spec/many/40?tag=" .. tag, {}, as(h.uuid(), h.uuid()))
    assert.equal(40, #ids)
    local where = "from public.user_activity_logs where activity_metadata->>'tag' = " .. h.lit(tag)
    assert.equal("0", h.scalar("select count(*) " .. where))
    stop(s)
    assert.equal("40", h.scalar("select count(*) " .. where))
  end)

  it("writes each row on its own with batch_writes off, and drops past log_queue_max (counted)", function()
    local s = start({ STRATA_LOG_QUEUE_MAX = "10" })
    settings(s, { performance_settings = { batch_writes = false } })
    local tag = h.uuid()
    local _, ids = post(s, "/v1/spec/many/5?tag=" .. tag, {}, as(h.uuid(), h.uuid()))
    local where = "from public.user_activity_logs where activity_metadata->>'tag' = " .. h.lit(tag)
    assert.equal(5, await_count("select count(*) " .. where, 5))
    local _, m1 = srv.http(s.port, "GET", "/metrics")
    settings(s, { performance_settings = { batch_interval_ms = 3600000, batch_size = 10000 } })
    _, ids = post(s, "/v1/spec/many/15?tag=" .. tag, {}, as(h.uuid(), h.uuid()))
    local kept = 0
    for _, id in ipairs(ids) do if id ~= cjson.null then kept = kept + 1 end end
    local _, m2 = srv.http(s.port, "GET", "/metrics")
    stop(s)
    assert.is_true(metric(m1, "strata_log_inserts_total") >= 5)
    assert.equal(10, kept)
    assert.equal(5, metric(m2, 'strata_log_rows_dropped_total{table="user_activity_logs"}'))
  end)

  it("refuses a rule file naming an unknown activity type, with its line", function()
    local s = start()
    srv.write(s.dir .. "/logging.lua", 'local r = require("strata.logrules").new()\n'
      .. 'r.user("chat_create", "chat", "log_chat_events")\nr.user("chat_archive", "chat", "log_chat_events")\nreturn r\n')
    local code, body = srv.http(s.port, "POST", "/admin/reload")
    assert.equal(422, code)
    assert.matches("logging.lua:3: unknown activity type 'chat_archive'", cjson.decode(body).error, 1, true)
    srv.write(s.dir .. "/logging.lua", 'local r = require("strata.logrules").new()\n'
      .. 'r.user("chat_create", "chat", "log_chat_fun")\nreturn r\n')
    code, body = srv.http(s.port, "POST", "/admin/reload")
    assert.equal(422, code)
    assert.matches("logging.lua:2: activity type 'chat_create': unknown toggle 'log_chat_fun'", cjson.decode(body).error,
      1, true)
    -- A rule file that drops a type: that type is no longer logged.
    srv.write(s.dir .. "/logging.lua", 'local r = require("strata.logrules").new()\n'
      .. 'r.user("chat_create", "chat", "log_chat_events")\nreturn r\n')
    assert.equal(200, (srv.http(s.port, "POST", "/admin/reload")))
    settings(s)
    assert.equal("unknown activity type chat_view",
      select(2, post(s, "/v1/spec/act/chat/view", {}, as(h.uuid(), h.uuid()))).why)
    stop(s)
  end)

  local OLD = "localtimestamp - interval '40 days'"
  local function seed_old_rows(tag, n)
    h.accepts(("insert into public.user_activity_logs (user_id, correlation_id, activity_type, activity_category, "
      .. "activity_metadata, created_at) select gen_random_uuid(), gen_random_uuid(), 'chat_view', 'chat', "
      .. "jsonb_build_object('tag', %s, 'old', g > %d), case when g > %d then %s else localtimestamp end "
      .. "from generate_series(1, %d) g"):format(h.lit(tag), n, n, OLD, 2 * n))
  end

  it("purges rows past their retention on its timer, in batches, and counts them", function()
    local tag = h.uuid()
    seed_old_rows(tag, 25)
    local s = start({ STRATA_LOG_PURGE_INTERVAL_MS = "200", STRATA_LOG_PURGE_BATCH = "10" })
    local where = "from public.user_activity_logs where activity_metadata->>'tag' = " .. h.lit(tag)
    assert.equal(0, await_count("select count(*) " .. where .. " and activity_metadata->>'old' = 'true'", 0))
    assert.equal("25", h.scalar("select count(*) " .. where))
    local _, metrics = srv.http(s.port, "GET", "/metrics")
    stop(s)
    assert.is_true(metric(metrics, 'strata_log_rows_purged_total{table="user_activity_logs"}') >= 25)
    assert.is_true(metric(metrics, 'strata_log_purges_total{result="ok"}') >= 1)
  end)

  it("purges from one instance at a time (advisory lock), two instances sharing the database", function()
    -- A third party holds the lock: neither instance purges meanwhile.
    local holder = os.tmpname()
    local p = io.popen(("psql -X -q %s -c 'select pg_advisory_lock(7305826157261902451)' "
      .. "-c 'select pg_sleep(10)' >/dev/null 2>&1; echo done > %s"):format(srv.quote(h.url), srv.quote(holder)), "r")
    srv.sleep(0.5)
    local tag = h.uuid()
    seed_old_rows(tag, 20)
    local env = { STRATA_LOG_PURGE_INTERVAL_MS = "200" }
    local a, b = start(env), start(merge({}, env))
    srv.sleep(1)
    local where = "from public.user_activity_logs where activity_metadata->>'tag' = " .. h.lit(tag)
    local during = h.scalar("select count(*) " .. where)
    local _, ma = srv.http(a.port, "GET", "/metrics")
    p:close() -- waits for the holder to end
    assert.equal(20, await_count("select count(*) " .. where, 20))
    srv.sleep(1) -- both tick at least twice more: one of each period's ticks finds it claimed
    local _, ma2 = srv.http(a.port, "GET", "/metrics")
    local _, mb2 = srv.http(b.port, "GET", "/metrics")
    stop(a)
    stop(b)
    os.remove(holder)
    assert.equal("40", during)
    assert.is_true(metric(ma, 'strata_log_purges_total{result="locked"}') > 0)
    assert.is_true(metric(ma2, 'strata_log_purges_total{result="ok"}') + metric(mb2, 'strata_log_purges_total{result="ok"}') > 0)
    -- Once per period across the instances (strata_jobs.claim, sql/157_jobs.sql), not once each.
    assert.is_true(metric(ma2, 'strata_log_purges_total{result="skipped"}')
      + metric(mb2, 'strata_log_purges_total{result="skipped"}') > 0,
      (ma2:match("strata_log_purges_total.-\n#") or "") .. (mb2:match("strata_log_purges_total.-\n#") or ""))
  end)
end)
