#!/usr/bin/env bash
# scripts/bench/logs.sh (`make bench-logs`, part of `make bench`): the cost
# of activity logging on the request path.  One strata (one worker, CPU 0)
# serves GET /bench/logged (scripts/bench/logs/routes/bench_logs.lua: one
# log.activity per request, as the caller); wrk -t1 on CPU 1.  Runs
# alternate, in the same strata process, between logging_settings with
# user_activity_logging_enabled on (rows queued, written in batches) and
# off (the call returns at once); the figures are medians over the rounds:
# requests/s on and off, their ratio (issue 14's target: >= 0.90), and
# the rows written per INSERT at full load (from /metrics).
#
# Requests/s move with whatever else runs on the machine; the CPU time
# each part spends per request does much less, so it is reported too
# (utime + stime from /proc, in microseconds, medians over the rounds):
#   worker  strata's threads but the log writer: the request path, where
#           log.activity runs;
#   writer  strata's log writer thread (named strata-logs): the INSERTs'
#           client side;
#   pg      every process of the embedded cluster (its backends, WAL
#           writer, ...): the INSERTs' server side.  Not measured with
#           DATABASE_URL (the cluster is not ours to look into).
# "worker on - worker off" is strata's cost of one logged request; pg is
# the database's, on the same cores (also per row written in the run).
#
# BENCH_LOGS_CALLGRIND=1: strata runs under valgrind's callgrind instead
# (wrk -c4, BENCH_SECONDS per run), and the figures are its instructions
# per request, on and off: counted, so they hold on a busy machine.  The
# whole process is counted (worker and log writer); PostgreSQL is not.
# The profiles: build/callgrind/logs.{on,off}.out.
#
# BENCH_LOGS_STRACE=1: strace -c -f is attached to strata for each
# measured run, and the figures are its system calls per request, on and
# off (the whole process: workers and log writer); the tables are kept in
# build/strace/logs.{on,off}.txt.
#
# The logging_settings row is changed for the run and put back at the end.
# The rows written are deleted at the end (they belong to the bench user).
#
# Environment: BENCH_SECONDS (10), BENCH_WARMUP (2), BENCH_CONNECTIONS (64),
# BENCH_ROUNDS (3), BENCH_LOGS_CALLGRIND (unset), BENCH_LOGS_STRACE (unset), DATABASE_URL (default:
# the embedded cluster).
set -euo pipefail

BENCH_NAME=bench-logs
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUN_SECONDS=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-2}
CONNS=${BENCH_CONNECTIONS:-64}
ROUNDS=${BENCH_ROUNDS:-3}
CALLGRIND=${BENCH_LOGS_CALLGRIND:-}
STRACE=${BENCH_LOGS_STRACE:-}

bench_init
bench_ensure "command -v wrk:wrk" "command -v psql:postgresql-client-15" "command -v taskset:util-linux" \
  "command -v curl:curl" "command -v openssl:openssl"
bench_cpus
bench_database_url migrate
bench_db_token

SAVED=$(bench_psql -c "select config_data::text from public.admin_config where config_key = 'logging_settings'")
[ -n "$SAVED" ] || die "no logging_settings row (is the database migrated?)"
restore() {
  local rc=$?
  # psql interpolates :'saved' in what it reads, not in -c.
  bench_psql -v saved="$SAVED" >/dev/null <<<"update public.admin_config set config_data = :'saved'::jsonb where config_key = 'logging_settings'" \
    || say "could not restore logging_settings"
  bench_psql -c "delete from public.user_activity_logs where user_id = '$BENCH_DB_USER'" >/dev/null || true
  (exit "$rc") # bench_cleanup exits with the status it finds
  bench_cleanup
}
trap restore EXIT

set_logging() { # true|false
  bench_psql -c "update public.admin_config set config_data = jsonb_set(config_data, '{user_activity_logging_enabled}', '$1') where config_key = 'logging_settings'" >/dev/null
  sleep 1 # applied through NOTIFY; well within a second
}

PORT=$(bench_free_port)
LUA_DIR=$(bench_strata_lua_dir "$BENCH_DIR/logs")
if [ -n "$CALLGRIND" ]; then
  bench_ensure "command -v valgrind:valgrind"
  CONNS=4
  CG_FILE=$BENCH_TMP/callgrind.out
  BENCH_STRATA_WRAPPER=(valgrind --tool=callgrind --callgrind-out-file="$CG_FILE" --vgdb=yes --vgdb-prefix="$BENCH_TMP/vgdb")
fi
[ -z "$STRACE" ] || bench_ensure "command -v strace:strace"
bench_start_strata "$PORT" "$LUA_DIR" "$SERVER_CPU" STRATA_RATE_LIMIT_USER_PER_MINUTE=0 \
  STRATA_JWT_SECRET="$STRATA_JWT_SECRET"
URL=http://127.0.0.1:$PORT/bench/logged
bench_wait_http "http://127.0.0.1:$PORT/ready" "$STRATA_PID" "$STRATA_LOG" strata 120
cg() { # callgrind_control -z | -d
  timeout 120 callgrind_control --vgdb-prefix="$BENCH_TMP/vgdb" "$1" "$STRATA_PID" >>"$BENCH_TMP/control.log" 2>&1 \
    || die "callgrind_control $1 failed (log: $BENCH_TMP/control.log)"
}
# The Ir total of callgrind's latest dump, moved to
# build/callgrind/logs.<name>.out (for callgrind_annotate).
cg_total() { # name
  local f out=$BENCH_ROOT/build/callgrind/logs.$1.out
  f=$(ls -t "$CG_FILE".* 2>/dev/null | head -1) || true
  [ -n "$f" ] || die "callgrind wrote no dump"
  mkdir -p "$(dirname "$out")"
  mv "$f" "$out"
  sed -n 's/^totals: *\([0-9]*\).*/\1/p;s/^summary: *\([0-9]*\).*/\1/p' "$out" | head -1
}

# CPU clock ticks (utime + stime) of strata's threads but the writer, of
# the writer, and of the cluster's processes: "worker writer pg".
PG_PID=
[ -z "${DATABASE_URL:-}" ] && PG_PID=$(head -1 "$("$BENCH_ROOT/scripts/db" dir)/pg/postmaster.pid" 2>/dev/null || true)
ticks() {
  local w=0 lw=0 pg=0 t c
  for t in /proc/"$STRATA_PID"/task/*; do
    c=$(awk '{print $14 + $15}' "$t/stat" 2>/dev/null) || continue
    if [ "$(cat "$t/comm" 2>/dev/null)" = strata-logs ]; then lw=$((lw + c)); else w=$((w + c)); fi
  done
  if [ -n "$PG_PID" ]; then
    for t in $(pgrep -P "$PG_PID"); do
      c=$(awk '{print $14 + $15}' "/proc/$t/stat" 2>/dev/null) || continue
      pg=$((pg + c))
    done
  fi
  echo "$w $lw $pg"
}
HZ=$(getconf CLK_TCK)

# Prints "req/s requests worker_us writer_us pg_us" (CPU microseconds per
# request).
run_wrk() { # seconds
  local out=$BENCH_TMP/wrk.out t0 t1
  t0=$(ticks)
  BENCH_AUTH="Bearer $BENCH_DB_TOKEN" taskset -c "$CLIENT_CPU" \
    wrk -t1 -c"$CONNS" -d"$1s" --timeout 5s -s "$BENCH_DIR/wrk_db.lua" "$URL" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed"; }
  sleep 0.5 # the last batch: its INSERT is this run's
  t1=$(ticks)
  local l; l=$(grep '^BENCH ' "$out") || { cat "$out" >&2; die "wrk printed no summary"; }
  [ "$(sed -n 's/.* non2xx=\([0-9]*\).*/\1/p' <<<"$l")" = 0 ] || die "non-2xx answers: $l"
  local rps n
  rps=$(sed -n 's/.* rps=\([0-9.]*\).*/\1/p' <<<"$l")
  n=$(sed -n 's/^BENCH requests=\([0-9]*\).*/\1/p' <<<"$l")
  awk -v rps="$rps" -v n="$n" -v hz="$HZ" -v a="$t0" -v b="$t1" 'BEGIN {
    split(a, x, " "); split(b, y, " "); f = 1e6 / hz / (n ? n : 1)
    printf "%s %d %.2f %.2f %.2f\n", rps, n, (y[1] - x[1]) * f, (y[2] - x[2]) * f, (y[3] - x[3]) * f }'
}
# strace -c on the whole process while the run lasts; its table to
# build/strace/logs.<name>.txt.
st_start() { # name
  ST_OUT=$BENCH_ROOT/build/strace/logs.$1.txt
  mkdir -p "$(dirname "$ST_OUT")"
  strace -c -f -p "$STRATA_PID" -o "$ST_OUT" 2>>"$BENCH_TMP/strace.log" &
  ST_PID=$!
  sleep 1 # attached to every thread
}
st_stop() { # sets ST_CALLS, the number of system calls counted
  kill -INT "$ST_PID"
  wait "$ST_PID" || true # here, not in a $(...): the subshell has no such child
  ST_CALLS=$(awk '$NF == "total" {print $4}' "$ST_OUT")
}
metric() { curl -s "http://127.0.0.1:$PORT/metrics" | sed -n "s/^$1 \([0-9]*\)$/\1/p"; }

declare -A fig # fig[mode,column] = one value per round
for ((round = 1; round <= ROUNDS; round++)); do
  for mode in on off; do
    set_logging "$([ "$mode" = on ] && echo true || echo false)"
    [ "$WARMUP" -gt 0 ] && run_wrk "$WARMUP" >/dev/null
    r0=$(metric 'strata_log_rows_written_total{table="user_activity_logs"}'); i0=$(metric strata_log_inserts_total)
    [ -n "$CALLGRIND" ] && cg -z
    [ -n "$STRACE" ] && st_start "$mode"
    read -r rps n w lw pg < <(run_wrk "$RUN_SECONDS")
    r1=$(metric 'strata_log_rows_written_total{table="user_activity_logs"}'); i1=$(metric strata_log_inserts_total)
    rows_us=$(awk -v p="$pg" -v n="$n" -v r="$((r1 - r0))" 'BEGIN { printf "%.2f", r ? p * n / r : 0 }')
    fig[$mode,rps]+="$rps "; fig[$mode,worker]+="$w "; fig[$mode,writer]+="$lw "; fig[$mode,pg]+="$pg "
    fig[$mode,pgrow]+="$rows_us "
    say "round $round: logging $mode $rps req/s, $((r1 - r0)) rows in $((i1 - i0)) INSERTs;" \
      "CPU us/request: worker $w, writer $lw, pg $pg (pg per row written: $rows_us)"
    if [ -n "$STRACE" ]; then
      st_stop
      fig[$mode,sys]+="$(awk -v c="$ST_CALLS" -v n="$n" 'BEGIN { printf "%.3f", c / n }') "
      say "round $round: logging $mode: $ST_CALLS system calls for $n requests under strace ($ST_OUT)"
    fi
    if [ -n "$CALLGRIND" ]; then
      cg -d
      ir=$(cg_total "$mode")
      fig[$mode,ir]+="$((ir / n)) "
      say "round $round: logging $mode: $ir instructions for $n requests under callgrind"
    fi
  done
done
median() { printf '%s\n' $1 | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
m_on=$(median "${fig[on,rps]}"); m_off=$(median "${fig[off,rps]}")
rows=$(metric 'strata_log_rows_written_total{table="user_activity_logs"}'); ins=$(metric strata_log_inserts_total)
printf '%-28s %12s\n' "logging on (req/s)" "$m_on" "logging off (req/s)" "$m_off"
awk -v a="$m_on" -v b="$m_off" 'BEGIN { printf "%-28s %12.2f  (target >= 0.90)\n", "on / off", a / b }'
awk -v r="$rows" -v i="$ins" 'BEGIN { printf "%-28s %12.1f\n", "rows per INSERT", i ? r / i : 0 }'
for part in worker writer pg; do
  printf '%-28s %12s %12s\n' "CPU us/request $part" "$(median "${fig[on,$part]}") on" "$(median "${fig[off,$part]}") off"
done
printf '%-28s %12s\n' "CPU us/row written pg" "$(median "${fig[on,pgrow]}") on"
[ -n "$PG_PID" ] || say "pg: not measured (DATABASE_URL)"
if [ -n "$STRACE" ]; then
  printf '%-28s %12s %12s\n' "system calls/request" "$(median "${fig[on,sys]}") on" "$(median "${fig[off,sys]}") off"
fi
if [ -n "$CALLGRIND" ]; then
  printf '%-28s %12s %12s\n' "instructions/request" "$(median "${fig[on,ir]}") on" "$(median "${fig[off,ir]}") off"
fi
