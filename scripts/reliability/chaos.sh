#!/usr/bin/env bash
# scripts/reliability/chaos.sh (`make chaos`): faults under load, each
# scenario a PASS/FAIL line with its figures (scripts/reliability/chaos.py
# is the client):
#   pg-restart   PostgreSQL restarted under two-row REST inserts: only 503
#                with Retry-After meanwhile, healed without a restart, every
#                2xx write whole, no request with half its rows;
#   pg-stall     a lock held on the written table for 10 s while 48 clients
#                write (their statements wait and fill the pool): the same
#                checks;
#   kill-9       strata killed with SIGKILL under the inserts and started
#                again: every 2xx write whole, none half;
#   slowloris    CHAOS_SLOW connections sending a header byte every 2 s:
#                a normal client's p99 at most 2x its quiet p99;
#   idle         CHAOS_IDLE idle keep-alive connections: memory per
#                connection (target <= 4 KB beyond the kernel's), and
#                max_connections enforced;
#   disk-full    the access log on a full file system (root only: a 256 KB
#                tmpfs): every request still answered.
# The last line is "N passed, N failed".  Environment: CHAOS_ONLY (space-
# separated scenario names), CHAOS_SLOW (2000), CHAOS_IDLE (10000),
# STRATA_BIN (default bin/strata).
set -euo pipefail

BENCH_NAME=chaos
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../bench/lib.sh"

BIN=${STRATA_BIN:-$BENCH_ROOT/bin/strata}
[ -x "$BIN" ] || die "$BIN is missing: run 'make all' first"
SLOW=${CHAOS_SLOW:-2000}
IDLE=${CHAOS_IDLE:-10000}
ONLY=${CHAOS_ONLY:-pg-restart pg-stall kill-9 slowloris idle disk-full}
PY="python3 $BENCH_ROOT/scripts/reliability/chaos.py"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

bench_init
bench_ensure "command -v psql:postgresql-client-15" "command -v python3:python3" "command -v wrk:wrk" "command -v bc:bc" \
  "command -v openssl:openssl"
bench_throwaway_database
bench_psql -c "create table public.chaos_items (id bigserial primary key, req uuid not null, n int not null)" \
  -c "grant all on public.chaos_items to service_role" -c "grant all on sequence public.chaos_items_id_seq to service_role"
STRATA_JWT_SECRET=$(openssl rand -hex 32)
export STRATA_JWT_SECRET
SERVICE=$("$BENCH_ROOT/scripts/token" --role service_role --exp-in 3600)
PORT=$(bench_free_port)
PASSED=0 FAILED=0
result() { # rc line...
  local rc=$1; shift
  echo "$*"
  if [ "$rc" = 0 ]; then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); fi
}

# Starts strata on PORT (extra NAME=value arguments to its environment);
# sets STRATA_PID.
start_strata() {
  STRATA_LOG=$BENCH_TMP/strata.log
  env DATABASE_URL="$BENCH_DATABASE_URL" STRATA_LISTEN="127.0.0.1:$PORT" STRATA_ACCESS_LOG=off \
    STRATA_RATE_LIMIT_ANON_PER_MINUTE=0 "$@" "$BIN" >>"$STRATA_LOG" 2>&1 &
  STRATA_PID=$!
  BENCH_PIDS+=("$STRATA_PID")
  bench_wait_http "http://127.0.0.1:$PORT/ready" "$STRATA_PID" "$STRATA_LOG" "strata"
}
stop_strata() { bench_stop_pid "$STRATA_PID"; }
alive() { kill -0 "$STRATA_PID" 2>/dev/null; }
one_write() { # the status of one more two-row insert
  local rid
  rid=$(python3 -c 'import uuid; print(uuid.uuid4())')
  curl -s -o /dev/null -m 10 -w '%{http_code}' -X POST "http://127.0.0.1:$PORT/rest/v1/chaos_items" \
    -H "Authorization: Bearer $SERVICE" -H "apikey: $SERVICE" -H 'Content-Type: application/json' \
    -d "[{\"req\":\"$rid\",\"n\":1},{\"req\":\"$rid\",\"n\":2}]" || true
}
# Writes for SECONDS while FAULT (a function) runs after DELAY seconds;
# then checks the rows and that strata healed.
under_writes() { # name seconds delay fault [clients]
  local name=$1 seconds=$2 delay=$3 fault=$4 clients=${5:-8} out=$BENCH_TMP/$1.writes heal t0 rc=0
  bench_psql -c "truncate public.chaos_items"
  $PY writes "$PORT" "$SERVICE" "$seconds" "$out" "$clients" &
  local writer=$!
  sleep "$delay"
  "$fault"
  wait "$writer"
  t0=$(date +%s.%N)
  heal=000
  for _ in $(seq 1 100); do heal=$(one_write); [ "$heal" = 201 ] && break; sleep 0.1; done
  local line
  line=$($PY verify "$BENCH_DATABASE_URL" "$out" "$name") || rc=1
  alive || { rc=1; line="$line; strata is not running"; }
  [ "$heal" = 201 ] || rc=1
  result "$rc" "$line; a write after the fault: $heal ($(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)") s)"
}

fault_pg_restart() {
  "$BENCH_ROOT/scripts/db" stop >/dev/null 2>&1
  sleep 2
  "$BENCH_ROOT/scripts/db" start >/dev/null 2>&1
}
fault_pg_stall() {
  psql -X -q -d "$BENCH_DATABASE_URL" -c "begin" -c "lock table public.chaos_items in access exclusive mode" \
    -c "select pg_sleep(10)" -c "commit" >/dev/null 2>&1
}
fault_kill_9() {
  kill -KILL "$STRATA_PID"
  wait "$STRATA_PID" 2>/dev/null || true
  sleep 0.5
  start_strata STRATA_DB_WAIT_TIMEOUT_MS=2000
}

p99_ms() { # wrk's 99% latency in ms, over 10 s, 10 connections
  wrk -t1 -c10 -d10s --latency "http://127.0.0.1:$PORT/v1/hello/probe" 2>/dev/null \
    | awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms/, "", v) } else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 }; print v }'
}

scenario_slowloris() {
  start_strata STRATA_MAX_CONNECTIONS=$((SLOW + 200))
  local quiet loaded slow_out=$BENCH_TMP/slow.json
  quiet=$(p99_ms)
  $PY slowloris "$PORT" "$SLOW" 25 >"$slow_out" &
  local slow=$!
  sleep 5
  loaded=$(p99_ms)
  wait "$slow" || true
  local ratio rc=0
  ratio=$(echo "scale=2; $loaded / $quiet" | bc)
  [ "$(echo "$ratio <= 2" | bc)" = 1 ] && alive || rc=1
  result "$rc" "$([ $rc = 0 ] && echo PASS || echo FAIL) slowloris: $SLOW slow connections $(cat "$slow_out"); a normal client's p99 ${quiet} ms quiet, ${loaded} ms during them: x$ratio (limit 2)"
  stop_strata
}

rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$STRATA_PID/status"; }
scenario_idle() {
  start_strata STRATA_MAX_CONNECTIONS=$((IDLE + 100)) STRATA_IDLE_TIMEOUT_MS=600000
  curl -s -o /dev/null "http://127.0.0.1:$PORT/v1/hello/warm"
  local before after held per rc=0 fifo=$BENCH_TMP/idle.out
  before=$(rss_kb)
  $PY idle "$PORT" "$IDLE" 8 >"$fifo" &
  local idler=$!
  for _ in $(seq 1 300); do [ -s "$fifo" ] && break; sleep 0.1; done
  sleep 1
  after=$(rss_kb)
  held=$(cat "$fifo")
  wait "$idler" || true
  per=$(echo "scale=2; ($after - $before) * 1024 / $IDLE" | bc)
  [ "$(echo "$per <= 4096" | bc)" = 1 ] || rc=1
  stop_strata
  # max_connections: 60 clients against a limit of 40.
  start_strata STRATA_MAX_CONNECTIONS=40
  local capped
  capped=$($PY idle "$PORT" 60 1)
  [[ $capped == *'"answered_200": 40'* ]] || rc=1
  stop_strata
  result "$rc" "$([ $rc = 0 ] && echo PASS || echo FAIL) idle: $IDLE idle keep-alive connections $held: RSS $before -> $after KB, $per bytes per connection (target <= 4096); 60 clients against max_connections 40: $capped"
}

scenario_disk_full() {
  if [ "$(id -u)" != 0 ]; then
    result 0 "SKIP disk-full: needs root to mount a small tmpfs"
    return
  fi
  local dir=$BENCH_TMP/full rc=0 counts
  mkdir -p "$dir"
  mount -t tmpfs -o size=256k tmpfs "$dir" || { result 1 "FAIL disk-full: cannot mount a tmpfs"; return; }
  start_strata STRATA_ACCESS_LOG="$dir/access.log"
  $PY gets "$PORT" 5 "$BENCH_TMP/full.json"
  counts=$(cat "$BENCH_TMP/full.json")
  local used
  used=$(df --output=pcent "$dir" | tail -1 | tr -d ' %')
  alive || rc=1
  python3 -c "import json,sys; c=json.load(open(sys.argv[1])); sys.exit(0 if set(c) == {'200'} and c['200'] > 5000 else 1)" \
    "$BENCH_TMP/full.json" || rc=1
  [ "$used" -ge 99 ] || rc=1
  stop_strata
  umount "$dir"
  result "$rc" "$([ $rc = 0 ] && echo PASS || echo FAIL) disk-full: access log on a 256 KB tmpfs, filled to $used%: requests answered $counts"
}

for s in $ONLY; do
  say "scenario $s"
  case $s in
    pg-restart) start_strata STRATA_DB_WAIT_TIMEOUT_MS=2000; under_writes pg-restart 10 3 fault_pg_restart; stop_strata ;;
    pg-stall) start_strata STRATA_DB_WAIT_TIMEOUT_MS=2000; under_writes pg-stall 16 2 fault_pg_stall 48; stop_strata ;;
    kill-9) start_strata STRATA_DB_WAIT_TIMEOUT_MS=2000; under_writes kill-9 8 3 fault_kill_9; stop_strata ;;
    slowloris) scenario_slowloris ;;
    idle) scenario_idle ;;
    disk-full) scenario_disk_full ;;
    *) die "unknown scenario '$s' (CHAOS_ONLY)" ;;
  esac
done
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
