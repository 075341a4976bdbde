#!/usr/bin/env bash
# scripts/reliability/multi.sh (`make multi`): MULTI_INSTANCES strata
# processes (default 3, one worker each) on one throwaway database, checked
# by scripts/reliability/multi.py:
#   broker      a broker value committed by plain SQL answered by every
#               instance's native engine within 100 ms;
#   rate-limit  a cluster rate limit (30/hour) exact across the instances
#               under concurrent clients;
#   revocation  a session ended on one instance refused by all within 1 s;
#   reload      one instance's Lua reloaded (good, broken, removed) while
#               clients go round-robin across all: no request fails;
#   jobs-once   the log retention purge runs once per period across the
#               instances, not once per instance.
# Each check prints PASS/FAIL with its figures; the last line is
# "N passed, N failed".  Environment: MULTI_INSTANCES, MULTI_PURGE_MS,
# MULTI_JOB_SECONDS, STRATA_BIN (default bin/strata).
set -euo pipefail

BENCH_NAME=multi
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../bench/lib.sh"

N=${MULTI_INSTANCES:-3}
[[ $N =~ ^[1-9][0-9]*$ ]] && [ "$N" -ge 2 ] || die "MULTI_INSTANCES must be a whole number of at least 2, got '$N'"
export MULTI_PURGE_MS=${MULTI_PURGE_MS:-1000}
BIN=${STRATA_BIN:-$BENCH_ROOT/bin/strata}
[ -x "$BIN" ] || die "$BIN is missing: run 'make all' first"

bench_init
bench_ensure "command -v psql:postgresql-client-15" "command -v python3:python3" "command -v openssl:openssl"
bench_throwaway_database

STRATA_JWT_SECRET=$(openssl rand -hex 32)
export STRATA_JWT_SECRET
SERVICE=$("$BENCH_ROOT/scripts/token" --role service_role --exp-in 3600)

# Each instance has a Lua directory of its own (a reload of one must not
# reach the others), with one more rate-limit rule: a cluster budget.
PORTS=()
for i in $(seq 1 "$N"); do
  dir=$BENCH_TMP/lua-$i
  mkdir -p "$dir"
  cp -r "$BENCH_ROOT/lua/." "$dir/"
  sed -i '0,/^return {$/s//return {\n  { name = "multi", match = function(req)\n      if req.path:find("^\/v1\/hello\/limited%-") then\n        return "multi:" .. req.path, { rate = 30, per = 3600, policy = "cluster" }\n      end\n    end },/' "$dir/ratelimits.lua"
  grep -q 'name = "multi"' "$dir/ratelimits.lua" || die "could not add the cluster rule to $dir/ratelimits.lua"
  port=$(bench_free_port)
  env DATABASE_URL="$BENCH_DATABASE_URL" STRATA_LISTEN="127.0.0.1:$port" STRATA_WORKERS=1 \
    STRATA_LUA_DIR="$dir" STRATA_ACCESS_LOG=off STRATA_RATE_LIMIT_ANON_PER_MINUTE=0 \
    STRATA_LOG_PURGE_INTERVAL_MS="$MULTI_PURGE_MS" "$BIN" >"$BENCH_TMP/strata-$i.log" 2>&1 &
  BENCH_PIDS+=($!)
  bench_wait_http "http://127.0.0.1:$port/ready" "$!" "$BENCH_TMP/strata-$i.log" "strata #$i"
  PORTS+=("$port")
done
say "$N instances on ports ${PORTS[*]}"
rc=0
python3 "$BENCH_ROOT/scripts/reliability/multi.py" "$BENCH_DATABASE_URL" "$SERVICE" "$BENCH_TMP/lua-2" "${PORTS[@]}" || rc=$?
if [ "$rc" != 0 ]; then
  for i in $(seq 1 "$N"); do say "strata #$i log (tail):"; tail -n 15 "$BENCH_TMP/strata-$i.log" >&2; done
fi
exit "$rc"
