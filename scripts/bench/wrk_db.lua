-- wrk script for scripts/bench/db.sh.  BENCH_DB_ITEMS set: each request
-- asks GET /bench/item/<random id in 1..BENCH_DB_ITEMS> (as pgbench's
-- \set id random(1, N)); else the URL given to wrk, unchanged.
-- BENCH_AUTH set: sent as the Authorization header.  Prints the same
-- BENCH line as scripts/bench/wrk_report.lua.
-- The BENCH line at the end: wrk_report.lua's done().
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_report.lua")
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
