-- wrk script for scripts/bench/auth.sh: password sign-ins at
-- /auth/v1/token?grant_type=password, cycling over AUTH_USERS users
-- (bench-auth-<i>@bench.invalid, password "bench-password"), and the same
-- machine-readable line as wrk_report.lua at the end.
local users = tonumber(os.getenv("AUTH_USERS") or "50")
local n = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function request()
  n = n % users + 1
  return wrk.format(nil, nil, nil,
    ('{"email":"bench-auth-%d@bench.invalid","password":"bench-password"}'):format(n))
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
