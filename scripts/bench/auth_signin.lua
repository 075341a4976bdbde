-- wrk script for scripts/bench/auth.sh: password sign-ins at
-- /auth/v1/token?grant_type=password, cycling over AUTH_USERS users
-- (bench-auth-<i>@bench.invalid, password "bench-password"), and the same
-- machine-readable line as wrk_report.lua at the end.
-- The BENCH line at the end: wrk_report.lua's done().
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_report.lua")
local users = tonumber(os.getenv("AUTH_USERS") or "50")
local n = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function request()
  n = n % users + 1
  return wrk.format(nil, nil, nil,
    ('{"email":"bench-auth-%d@bench.invalid","password":"bench-password"}'):format(n))
end
