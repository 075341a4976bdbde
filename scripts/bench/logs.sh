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
# The logging_settings row is changed for the run and put back at the end.
# The rows written are deleted at the end (they belong to the bench user).
#
# Environment: BENCH_SECONDS (10), BENCH_WARMUP (2), BENCH_CONNECTIONS (64),
# BENCH_ROUNDS (3), DATABASE_URL (default: the embedded cluster).
set -euo pipefail

BENCH_NAME=bench-logs
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUN_SECONDS=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-2}
CONNS=${BENCH_CONNECTIONS:-64}
ROUNDS=${BENCH_ROUNDS:-3}

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
bench_start_strata "$PORT" "$LUA_DIR" "$SERVER_CPU" STRATA_RATE_LIMIT_USER_PER_MINUTE=0 \
  STRATA_JWT_SECRET="$STRATA_JWT_SECRET"
URL=http://127.0.0.1:$PORT/bench/logged
bench_wait_http "http://127.0.0.1:$PORT/ready" "$STRATA_PID" "$STRATA_LOG" strata

run_wrk() { # seconds
  local out=$BENCH_TMP/wrk.out
  BENCH_AUTH="Bearer $BENCH_DB_TOKEN" taskset -c "$CLIENT_CPU" \
    wrk -t1 -c"$CONNS" -d"$1s" --timeout 5s -s "$BENCH_DIR/wrk_db.lua" "$URL" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed"; }
  local l; l=$(grep '^BENCH ' "$out") || { cat "$out" >&2; die "wrk printed no summary"; }
  [ "$(sed -n 's/.* non2xx=\([0-9]*\).*/\1/p' <<<"$l")" = 0 ] || die "non-2xx answers: $l"
  sed -n 's/.* rps=\([0-9.]*\).*/\1/p' <<<"$l"
}
metric() { curl -s "http://127.0.0.1:$PORT/metrics" | sed -n "s/^$1 \([0-9]*\)$/\1/p"; }

on=() off=()
for ((round = 1; round <= ROUNDS; round++)); do
  for mode in true false; do
    set_logging "$mode"
    [ "$WARMUP" -gt 0 ] && run_wrk "$WARMUP" >/dev/null
    if [ "$mode" = true ]; then
      r0=$(metric 'strata_log_rows_written_total{table="user_activity_logs"}'); i0=$(metric strata_log_inserts_total)
      on+=("$(run_wrk "$RUN_SECONDS")")
      sleep 1 # the last batch
      r1=$(metric 'strata_log_rows_written_total{table="user_activity_logs"}'); i1=$(metric strata_log_inserts_total)
      say "round $round: logging on ${on[-1]} req/s, $((r1 - r0)) rows in $((i1 - i0)) INSERTs"
    else
      off+=("$(run_wrk "$RUN_SECONDS")")
      say "round $round: logging off ${off[-1]} req/s"
    fi
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
m_on=$(median "${on[@]}"); m_off=$(median "${off[@]}")
rows=$(metric 'strata_log_rows_written_total{table="user_activity_logs"}'); ins=$(metric strata_log_inserts_total)
printf '%-28s %12s\n' "logging on (req/s)" "$m_on" "logging off (req/s)" "$m_off"
awk -v a="$m_on" -v b="$m_off" 'BEGIN { printf "%-28s %12.2f  (target >= 0.90)\n", "on / off", a / b }'
awk -v r="$rows" -v i="$ins" 'BEGIN { printf "%-28s %12.1f\n", "rows per INSERT", i ? r / i : 0 }'
