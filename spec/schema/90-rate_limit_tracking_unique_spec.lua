-- The rate limits' usage rows and admin_config notifications:
-- sql/090_rate_limit_tracking_unique.sql (one row per user, agent type,
-- limit type and period, so batches upsert) and
-- sql/091_admin_config_notify.sql (NOTIFY strata_admin_config per statement).
local h = require("helpers")

local function insert(user, count)
  return ([[insert into public.rate_limit_tracking as t (user_id, agent_type, limit_type, period_start, period_end,
              request_count, limit_value)
            values (%s, 'chat_model_agent', 'hourly', '2024-01-01 10:00', '2024-01-01 11:00', %d, 50)]])
    :format(h.lit(user), count)
end

-- Runs sql in a psql session that LISTENs first; the payloads it received.
local function notifications(sql)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write("listen strata_admin_config;\n", sql, "\nselect 1;\n")
  f:close()
  local p = assert(io.popen(("psql -X -v ON_ERROR_STOP=1 -d %s -f %s 2>&1"):format(
    "'" .. h.url:gsub("'", "'\\''") .. "'", path)))
  local out = p:read("a")
  p:close()
  os.remove(path)
  local list = {}
  for payload in out:gmatch('Asynchronous notification "strata_admin_config" with payload "(.-)" received') do
    list[#list + 1] = payload
  end
  return list, out
end

describe("rate_limit_tracking rows", function()
  it("are unique per user, agent type, limit type and period start", function()
    local user = h.user()
    h.accepts(insert(user, 1))
    h.refuses("23505", insert(user, 1))
  end)

  it("take a batch's counts with one INSERT ... ON CONFLICT DO UPDATE", function()
    local user = h.user()
    h.accepts(insert(user, 2))
    local upsert = (insert(user, 3) .. [[ on conflict (user_id, agent_type, limit_type, period_start) do update
      set request_count = t.request_count + excluded.request_count, limit_value = 60]])
    h.accepts(upsert)
    assert.same({ { request_count = "5", limit_value = "60", n = "1" } },
      assert(h.query(([[select max(request_count) as request_count, max(limit_value) as limit_value, count(*) as n
                          from public.rate_limit_tracking where user_id = %s]]):format(h.lit(user)))))
  end)
end)

describe("strata_admin_config notifications", function()
  it("come once per statement that changes admin_config", function()
    local key = "notify_spec_" .. h.uuid()
    local list, out = notifications(([[
      insert into admin_config(config_key, config_data) values (%s, '{"a": 1}');
      update admin_config set config_data = '{"a": 2}' where config_key = %s;
      delete from admin_config where config_key = %s;]]):format(h.lit(key), h.lit(key), h.lit(key)))
    assert.same({ "INSERT", "UPDATE", "DELETE" }, list, out)
  end)

  it("do not come for reads", function()
    local list = notifications("select count(*) from admin_config;")
    assert.same({}, list)
  end)
end)
