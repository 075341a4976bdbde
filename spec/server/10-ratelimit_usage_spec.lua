-- Rate limits and the database: allowed agent requests counted in
-- public.rate_limit_tracking (in memory, written in batches, kept through
-- a database outage), admin_config changes heard through NOTIFY
-- strata_admin_config rather than polled, and the idle cluster cells swept.
local h = require("helpers")
local srv = require("server_helpers")

local SECRET = "ratelimit-usage-spec-secret"

local AGENT_ROUTE = [[
return {
  { method = "POST", path = "/v1/agents/chat", agent_type = "chat_model_agent",
    handler = function() return 200, { started = true } end },
}]]

local function bearer(uid)
  return { Authorization = "Bearer " .. srv.token(SECRET, "--sub " .. uid .. " --role authenticated") }
end

local function start(env)
  local dir = srv.lua_dir({ ["routes/agent.lua"] = AGENT_ROUTE })
  env.STRATA_LUA_DIR = dir
  env.STRATA_JWT_SECRET = SECRET
  env.STRATA_RATE_LIMIT_ANON_PER_MINUTE = "0"
  env.STRATA_RATE_LIMIT_USER_PER_MINUTE = "0"
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

-- Sends n agent requests as who; their status codes.
local function calls(s, who, n)
  local codes = {}
  for i = 1, n do codes[i] = (srv.http(s.port, "POST", "/v1/agents/chat", "", who)) end
  return codes
end

local function metric(s, name)
  local _, text = srv.http(s.port, "GET", "/metrics")
  return tonumber(text:match("\n" .. name:gsub("[%[%]{}\"=]", "%%%0") .. " (%d+)"))
end

-- user's rows as { hourly = {...}, daily = {...} }.
local function rows(user)
  local list = assert(h.query(([[
    select limit_type, request_count, limit_value,
           extract(epoch from period_end - period_start)::int as seconds,
           period_start = date_trunc(case limit_type when 'hourly' then 'hour' else 'day' end, period_start) as aligned,
           period_start between (now() at time zone 'UTC') - interval '1 day' and now() at time zone 'UTC' as recent
      from public.rate_limit_tracking where user_id = %s and agent_type = 'chat_model_agent']]):format(h.lit(user))))
  local by = {}
  for _, r in ipairs(list) do by[r.limit_type] = r end
  return by, #list
end

-- Polls until user's hourly count is `want` (or 10 s pass); the rows.
local function await_count(user, want)
  local by, n
  for _ = 1, 100 do
    by, n = rows(user)
    if by.hourly and tonumber(by.hourly.request_count) == want then break end
    srv.sleep(0.1)
  end
  return by, n
end

describe("rate limits and the database #server", function()
  local key, saved

  local function set_limits(json)
    local sql = ([[update admin_config set config_data = jsonb_set(config_data, '{rateLimit}', %s::jsonb)
                   where config_key = %s]]):format(h.lit(json), h.lit(key))
    h.accepts(sql)
  end

  setup(function()
    local provider = h.scalar("select config_data->>'activeProvider' from admin_config where config_key = 'app_settings'")
    key = "chat_model_agent_" .. provider
    saved = h.scalar(("select config_data::text from admin_config where config_key = %s"):format(h.lit(key)))
    set_limits('{"perMinute": 5, "perHour": 50, "perDay": 500}')
  end)

  teardown(function()
    h.accepts("alter table admin_config enable trigger strata_admin_config_notify")
    h.accepts(("update admin_config set config_data = %s::jsonb where config_key = %s"):format(h.lit(saved), h.lit(key)))
  end)

  describe("rate_limit_tracking", function()
    it("counts the allowed agent requests of each user in hourly and daily rows, written in batches", function()
      local s = start({})
      local a, b, stranger = h.user(), h.user(), h.uuid()
      local got_a = calls(s, bearer(a), 6)
      local got_b = calls(s, bearer(b), 2)
      calls(s, bearer(stranger), 1) -- not in auth.users: skipped, not a failed batch
      local odd = calls(s, bearer("not-a-uuid"), 1) -- allowed, but user_id is a uuid: not counted
      local ra, na = await_count(a, 5)
      local rb = await_count(b, 2)
      -- The stranger's rows may go in a later batch than a's and b's.
      local skipped
      for _ = 1, 100 do
        skipped = metric(s, "strata_ratelimit_usage_rows_skipped_total")
        if skipped >= 2 then break end
        srv.sleep(0.05)
      end
      local recorded = metric(s, "strata_ratelimit_usage_recorded_total")
      local flushes = metric(s, "strata_ratelimit_usage_flushes_total")
      stop(s)
      assert.same({ 200, 200, 200, 200, 200, 429 }, got_a)
      assert.same({ 200, 200 }, got_b)
      assert.same({ 200 }, odd)
      assert.equal(2, na)
      assert.same({ limit_type = "hourly", request_count = "5", limit_value = "50", seconds = "3600",
        aligned = "t", recent = "t" }, ra.hourly)
      assert.same({ limit_type = "daily", request_count = "5", limit_value = "500", seconds = "86400",
        aligned = "t", recent = "t" }, ra.daily)
      assert.equal("2", rb.hourly.request_count)
      assert.equal("2", rb.daily.request_count)
      assert.equal(8, recorded)
      -- 8 requests within about a second: a few statements, not one each.
      assert.is_true(flushes >= 1 and flushes <= 4, "flushes: " .. tostring(flushes))
      assert.equal(2, skipped)
      assert.equal("0", h.scalar(("select count(*) from rate_limit_tracking where user_id = %s"):format(h.lit(stranger))))
    end)

    it("writes what is pending at shutdown and adds to the rows already there", function()
      local user = h.user()
      local s = start({ STRATA_RATE_LIMIT_FLUSH_MS = "3600000" })
      calls(s, bearer(user), 2)
      assert.same({}, (rows(user)))
      stop(s)
      assert.equal("2", rows(user).hourly.request_count)
      s = start({ STRATA_RATE_LIMIT_FLUSH_MS = "3600000" })
      calls(s, bearer(user), 1)
      stop(s)
      local by, n = rows(user)
      assert.equal(2, n)
      assert.equal("3", by.hourly.request_count)
      assert.equal("3", by.daily.request_count)
    end)

    it("keeps counting while the database is down and writes the counts when it is back", function()
      local var = os.getenv("STRATA_TEST_VAR_DIR")
      assert.is_not_nil(var, "needs the embedded test cluster (scripts/test without DATABASE_URL)")
      local user = h.user()
      -- One worker: its Lua state has read admin_config before the outage
      -- (a state that never could would apply no agent limit, count nothing).
      local s = start({ STRATA_WORKERS = "1", STRATA_RATE_LIMIT_FLUSH_MS = "100", STRATA_DB_WAIT_TIMEOUT_MS = "300" })
      local who = bearer(user)
      local first = calls(s, who, 1)
      await_count(user, 1)
      assert(os.execute(("STRATA_VAR_DIR=%s scripts/db stop >/dev/null 2>&1"):format(srv.quote(var))))
      local during = calls(s, who, 4)
      srv.sleep(0.5) -- some writes fail meanwhile
      assert(os.execute(("STRATA_VAR_DIR=%s scripts/db start >/dev/null 2>&1"):format(srv.quote(var))))
      local by = await_count(user, 5)
      local failures = metric(s, "strata_ratelimit_usage_flush_failures_total")
      local dropped = metric(s, "strata_ratelimit_usage_dropped_total")
      stop(s)
      assert.same({ 200 }, first)
      assert.same({ 200, 200, 200, 200 }, during)
      assert.equal("5", by.hourly and by.hourly.request_count)
      assert.equal("5", by.daily.request_count)
      assert.is_true(failures >= 1, "failures: " .. tostring(failures))
      assert.equal(0, dropped)
    end)
  end)

  describe("admin_config", function()
    -- Until a 429 or `seconds`: the number of 200s.
    local function until_refused(s, who, seconds)
      local ok = 0
      for _ = 1, seconds * 10 do
        local code = srv.http(s.port, "POST", "/v1/agents/chat", "", who)
        if code == 429 then return ok, true end
        ok = ok + 1
        srv.sleep(0.1)
      end
      return ok, false
    end

    it("is re-read when it NOTIFYs or the listening connection comes back, not polled", function()
      -- One worker: one Lua state, one cache to observe.
      local s = start({ STRATA_WORKERS = "1" })
      local who = bearer(h.uuid())
      assert.same({ 200 }, calls(s, who, 1)) -- loads admin_config
      h.accepts("alter table admin_config disable trigger strata_admin_config_notify")
      set_limits('{"perMinute": 1, "perHour": 50, "perDay": 500}')
      srv.sleep(1.5)
      -- No notification: the cached limit (5 a minute) still applies.
      local before = calls(s, who, 2)
      h.accepts("select pg_notify('strata_admin_config', 'spec')")
      -- A changed limit is a fresh window: one request, then 429.
      local heard, refused = until_refused(s, who, 5)

      set_limits('{"perMinute": 2, "perHour": 50, "perDay": 500}')
      srv.sleep(0.5)
      local still = calls(s, who, 1) -- perMinute 1 still cached: refused
      local resyncs = metric(s, "strata_broker_resyncs_total")
      assert(h.scalar([[select count(pg_terminate_backend(pid)) from pg_stat_activity
                        where application_name = 'strata-broker-feed']]))
      -- The feed notices, reconnects and counts a resync; only then is the
      -- re-read due (asking before that would race the reconnect).
      for _ = 1, 150 do
        if metric(s, "strata_broker_resyncs_total") > resyncs then break end
        srv.sleep(0.1)
      end
      local after_reconnect, refused2 = until_refused(s, who, 10)
      h.accepts("alter table admin_config enable trigger strata_admin_config_notify")
      stop(s)
      assert.same({ 200, 200 }, before)
      assert.is_true(refused, "the notified limit applies")
      assert.equal(1, heard)
      assert.same({ 429 }, still)
      assert.is_true(refused2, "the limit read after the reconnect applies")
      assert.is_true(after_reconnect >= 2, "after the reconnect: " .. after_reconnect)
    end)
  end)

  describe("strata_rate_limit_sweep", function()
    it("runs on schedule and deletes only the idle cluster cells", function()
      local idle, busy = "sweep-spec:" .. h.uuid(), "sweep-spec:" .. h.uuid()
      h.accepts(([[insert into strata_rate_limits(key, tat) values (%s, 0),
                   (%s, (extract(epoch from now() + interval '1 hour') * 1000000)::bigint)]]):format(h.lit(idle), h.lit(busy)))
      local s = start({ STRATA_RATE_LIMIT_SWEEP_MS = "200" })
      local left
      for _ = 1, 50 do
        left = h.scalar(("select string_agg(key, ',') from strata_rate_limits where key in (%s, %s)")
          :format(h.lit(idle), h.lit(busy)))
        if left == busy then break end
        srv.sleep(0.1)
      end
      local sweeps = metric(s, 'strata_ratelimit_sweeps_total{result="ok"}')
      local swept = metric(s, "strata_ratelimit_swept_rows_total")
      stop(s)
      h.accepts(("delete from strata_rate_limits where key = %s"):format(h.lit(busy)))
      assert.equal(busy, left)
      assert.is_true(sweeps >= 1)
      assert.is_true(swept >= 1)
    end)
  end)
end)
