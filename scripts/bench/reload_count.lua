-- wrk script for scripts/bench/reload_under_load.sh: counts the answers
-- of GET /v1/behaviour by status class and by body ({"v":"A"}, {"v":"B"},
-- anything else), over all threads, and prints one line at the end:
--   RELOAD requests=N s2xx=N s3xx=N s4xx=N s5xx=N a=N b=N other=N
--          connect=N read=N write=N timeout=N status_errors=N
-- and, when some body was neither A nor B, "RELOAD_OTHER <first such body>".

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

-- Per-thread counters (each wrk thread has its own Lua state).
s2xx, s3xx, s4xx, s5xx, a, b, other = 0, 0, 0, 0, 0, 0, 0
other_sample = ""

local find = string.find

function response(status, headers, body)
  if status >= 500 then s5xx = s5xx + 1
  elseif status >= 400 then s4xx = s4xx + 1
  elseif status >= 300 then s3xx = s3xx + 1
  elseif status >= 200 then s2xx = s2xx + 1 end
  if status == 200 and body == '{"v":"A"}' then
    a = a + 1
  elseif status == 200 and body == '{"v":"B"}' then
    b = b + 1
  else
    other = other + 1
    if other_sample == "" then
      other_sample = tostring(status) .. " " .. tostring(body):sub(1, 300)
    end
  end
end

function done(summary, latency, requests)
  local t = { s2xx = 0, s3xx = 0, s4xx = 0, s5xx = 0, a = 0, b = 0, other = 0 }
  local sample = ""
  for _, thread in ipairs(threads) do
    for k in pairs(t) do t[k] = t[k] + (thread:get(k) or 0) end
    local s = thread:get("other_sample")
    if sample == "" and s and s ~= "" then sample = s end
  end
  local e = summary.errors
  io.write(string.format(
    "RELOAD requests=%d s2xx=%d s3xx=%d s4xx=%d s5xx=%d a=%d b=%d other=%d connect=%d read=%d write=%d timeout=%d status_errors=%d p99_us=%d max_us=%d\n",
    summary.requests, t.s2xx, t.s3xx, t.s4xx, t.s5xx, t.a, t.b, t.other,
    e.connect, e.read, e.write, e.timeout, e.status, latency:percentile(99), latency.max))
  if sample ~= "" then io.write("RELOAD_OTHER " .. sample .. "\n") end
end
