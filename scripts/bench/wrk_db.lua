-- wrk script for scripts/bench/db.sh.  BENCH_DB_ITEMS set: each request
-- asks GET /bench/item/<random id in 1..BENCH_DB_ITEMS> (as pgbench's
-- \set id random(1, N)); else the URL given to wrk, unchanged.
-- BENCH_AUTH set: sent as the Authorization header.  Prints the same
-- BENCH line as scripts/bench/wrk_report.lua.
local items = tonumber(os.getenv("BENCH_DB_ITEMS") or "")
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then wrk.headers["Authorization"] = auth end

if items then
  math.randomseed(os.time())
  local random, format = math.random, wrk.format
  request = function()
    return format("GET", "/bench/item/" .. random(1, items))
  end
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d seconds=%.3f rps=%.1f p50_us=%d p99_us=%d max_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
