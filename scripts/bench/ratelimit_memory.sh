#!/usr/bin/env bash
# scripts/bench/ratelimit_memory.sh: the rate limiter's memory stays flat
# under a flood of distinct anonymous clients.
#
# strata (one worker, the shipped rules, anonymous budget 600 a minute per
# address, rate_limit_max_keys 100,000) gets FLOOD_REQUESTS anonymous
# requests (default 1,000,000), each on its own connection from its own
# address: bin/bench_anon_flood binds to 127.16.0.0 + i (all of
# 127.0.0.0/8 is loopback on Linux), so no proxy header is involved.  In
# FLOOD_STEPS equal steps it prints the server's resident memory and the
# limiter's keys, evictions and active evictions from /metrics.  The RSS
# after the first step (the table full) and after the last should be about
# equal; counters evicted while still limiting (evictions_active) should
# stay near 0 since each address is idle 0.1 s after its one request.
#
# Environment:
#   FLOOD_REQUESTS     total requests (default 1000000)
#   FLOOD_STEPS        measurements (default 4)
#   FLOOD_CONCURRENCY  connections in flight (default 64)
#   FLOOD_MAX_KEYS     rate_limit_max_keys (default 100000)
#   DATABASE_URL       as for scripts/bench/run.sh
set -euo pipefail

BENCH_NAME=ratelimit-memory
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TOTAL=${FLOOD_REQUESTS:-1000000}
STEPS=${FLOOD_STEPS:-4}
CONC=${FLOOD_CONCURRENCY:-64}
MAX_KEYS=${FLOOD_MAX_KEYS:-100000}
for v in FLOOD_REQUESTS:"$TOTAL" FLOOD_STEPS:"$STEPS" FLOOD_CONCURRENCY:"$CONC" FLOOD_MAX_KEYS:"$MAX_KEYS"; do
  [[ ${v#*:} =~ ^[1-9][0-9]*$ ]] || die "${v%%:*} must be a positive whole number, got '${v#*:}'"
done

bench_init
bench_ensure "command -v curl:curl"
bench_database_url
bench_cpus
[ -x "$BENCH_ROOT/bin/bench_anon_flood" ] || die "bin/bench_anon_flood is missing: run 'make bench-ratelimit'"

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$STRATA_PID/status"; }
metric() { curl -s -m 5 "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

PORT=$(bench_free_port)
bench_start_strata "$PORT" "$BENCH_ROOT/lua" "$SERVER_CPU" STRATA_RATE_LIMIT_ANON_PER_MINUTE=600 \
  STRATA_RATE_LIMIT_MAX_KEYS="$MAX_KEYS"
bench_wait_http "http://127.0.0.1:$PORT/health" "$STRATA_PID" "$STRATA_LOG" strata
# Warm up (Lua state, route cache) from addresses the flood does not use.
taskset -c "$CLIENT_CPU" "$BENCH_ROOT/bin/bench_anon_flood" "$PORT" 1000 "$CONC" $((14 << 20)) >/dev/null
say "strata $STRATA_PID, rate_limit_max_keys $MAX_KEYS, RSS after warm-up $(rss_kb) kB"
printf '%-10s %-8s %-10s %-10s %-12s %-12s %-8s\n' requests seconds rss_kB keys evictions evict_active 429s
step=$((TOTAL / STEPS)) sent=0 limited=0 t0=$EPOCHREALTIME
while [ "$sent" -lt "$TOTAL" ]; do
  n=$step
  [ $((sent + n)) -le "$TOTAL" ] || n=$((TOTAL - sent))
  out=$(taskset -c "$CLIENT_CPU" "$BENCH_ROOT/bin/bench_anon_flood" "$PORT" "$n" "$CONC" "$sent") \
    || die "the flood failed: $out"
  limited=$((limited + $(awk '{for (i = 1; i < NF; i++) if ($i == "limited") print $(i + 1)}' <<<"$out")))
  sent=$((sent + n))
  printf '%-10s %-8.1f %-10s %-10s %-12s %-12s %-8s\n' "$sent" "$(awk -v a="$EPOCHREALTIME" -v b="$t0" 'BEGIN {print a - b}')" "$(rss_kb)" \
    "$(metric strata_ratelimit_keys)" "$(metric strata_ratelimit_evictions_total)" \
    "$(metric strata_ratelimit_evictions_active_total)" "$limited"
done
say "limiter memory (strata_ratelimit_bytes): $(metric strata_ratelimit_bytes) bytes"
