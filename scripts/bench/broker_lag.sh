#!/usr/bin/env bash
# scripts/bench/broker_lag.sh (`make bench-broker-lag`): how long after a
# direct SQL COMMIT strata's native broker engine answers the new data.
# bin/bench_broker_lag (scripts/bench/broker_lag.c) writes broker_values
# with libpq and polls POST /rest/v1/rpc/get_broker_values_for_context (one
# keep-alive connection, every 0.2 ms) until the engine answers the
# committed value:
#   - BROKER_LAG_SINGLE single-row commits, one after the other: p50, p99, max;
#   - BROKER_LAG_ROUNDS transactions of 12,000 rows written by two statements;
#   - BROKER_LAG_ROUNDS transactions of 12,000 rows written by 12,000
#     single-row statements (the shape of an import script or an ORM).
# For each shape also what strata_broker_apply_lag_seconds counted (/metrics).
# Goals on a 2-core machine: p99 under 50 ms for single rows, under 200 ms
# for both 12,000-row shapes ("met"/"MISSED" in the last line).
#
# strata: one worker on CPU 0; the client on CPU 1; PostgreSQL unpinned.
# Database: a throwaway cluster under the run's temporary directory, migrated
# and removed at the end; or DATABASE_URL (migrated already), where the
# client's fixture (an organization "lagbench" and 12,001 data_broker rows
# named lagbench-<org>-N, with their values) is deleted at the end.
#
# Environment:
#   BROKER_LAG_SINGLE   single-row commits (default 500)
#   BROKER_LAG_ROUNDS   transactions of each 12,000-row shape (default 3)
#   DATABASE_URL        database to use instead of a throwaway cluster
# Exits non-zero when something cannot start or the engine never answers.
set -euo pipefail

BENCH_NAME=bench-broker-lag
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SINGLE=${BROKER_LAG_SINGLE:-500}
ROUNDS=${BROKER_LAG_ROUNDS:-3}
for v in SINGLE:"$SINGLE" ROUNDS:"$ROUNDS"; do
  [[ ${v#*:} =~ ^[1-9][0-9]*$ ]] || die "BROKER_LAG_${v%%:*} must be a whole number of at least 1, got '${v#*:}'"
done

bench_init
bench_ensure \
  "command -v psql:postgresql-client-15" \
  "command -v taskset:util-linux" \
  "command -v curl:curl" \
  "command -v openssl:openssl"
[ -x "$BENCH_ROOT/bin/bench_broker_lag" ] || die "bin/bench_broker_lag is missing: run 'make bench-broker-lag'"
bench_cpus

if [ -z "${DATABASE_URL:-}" ]; then
  bench_throwaway_database
else
  bench_database_url
fi

STRATA_JWT_SECRET=$(openssl rand -hex 32)
export STRATA_JWT_SECRET # for scripts/token only; strata gets it below
TOKEN=$("$BENCH_ROOT/scripts/token" --role service_role --exp-in 86400)
STRATA_PORT=$(bench_free_port)
LUA_DIR=$(bench_strata_lua_dir)
bench_start_strata "$STRATA_PORT" "$LUA_DIR" "$SERVER_CPU" STRATA_JWT_SECRET="$STRATA_JWT_SECRET"
bench_wait_http "http://127.0.0.1:$STRATA_PORT/ready" "$STRATA_PID" "$STRATA_LOG" "strata"

say "measuring ($SINGLE single-row commits, $ROUNDS rounds of each 12,000-row shape)"
echo "broker feed lag, COMMIT to the native engine answering ($(git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) CPUs):"
taskset -c "$CLIENT_CPU" "$BENCH_ROOT/bin/bench_broker_lag" "$STRATA_PORT" "$TOKEN" "$BENCH_DATABASE_URL" "$SINGLE" "$ROUNDS" \
  || { tail -n 20 "$STRATA_LOG" >&2; die "the measurement failed (strata's log above)"; }
