#!/usr/bin/env bash
# scripts/bench/ai.sh (make bench-ai): AI_STREAMS streamed executions at once
# (POST /v1/ai/runs/<id>/messages, one run each) against a local fake Gemini
# (scripts/bench/ai_bench.py: AI_CHUNKS deltas, AI_GAP_MS apart), through
# the whole path: render, agent config, task begin, outbound HTTP, SSE to
# the client, ai_task_complete.  Measured on one strata worker:
#   - the p99 of a cheap route (GET /v1/hello/x, one request at a time)
#     without the load, then while the streams are open, and their ratio;
#   - strata's RSS growth with every stream open, per stream;
#   - strata's CPU time (user + system) per delta streamed.
# Runs on a database of its own (created on the embedded cluster, or on
# DATABASE_URL's server, and dropped at the end).
set -euo pipefail

BENCH_NAME=bench-ai
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STREAMS=${AI_STREAMS:-1000}
CHUNKS=${AI_CHUNKS:-100}
GAP_MS=${AI_GAP_MS:-50}
PROBE_S=${AI_PROBE_SECONDS:-5}
SECRET=bench-ai-secret-0123456789

bench_init
bench_ensure "command -v python3:python3" "command -v curl:curl"
bench_database_url
bench_cpus

DB=strata_bench_ai_$$
BASE_URL=$BENCH_DATABASE_URL
bench_psql -c "create database $DB" >/dev/null
ai_cleanup() {
  local rc=$?
  [ -n "${STRATA_PID:-}" ] && bench_stop_pid "$STRATA_PID"
  psql -X -q -d "$BASE_URL" -c "drop database if exists $DB with (force)" >/dev/null 2>&1 || say "could not drop $DB"
  (exit "$rc")
  bench_cleanup
}
trap ai_cleanup EXIT
base=${BASE_URL%%\?*}; query=${BASE_URL#"$base"}
BENCH_DATABASE_URL="${base%/*}/$DB$query"
DATABASE_URL=$BENCH_DATABASE_URL "$BENCH_ROOT/scripts/db" migrate >"$BENCH_TMP/migrate.log" 2>&1 \
  || { cat "$BENCH_TMP/migrate.log" >&2; die "migrations failed"; }

say "fixture: one user, $STREAMS runs (+20 to warm up); chat_model_agent_google's rate limits raised"
USER_ID=$(python3 -c 'import uuid; print(uuid.uuid4())')
bench_psql >/dev/null <<SQL
insert into auth.users(id, email) values ('$USER_ID', 'bench-ai@example.test');
insert into ai_runs(user_id, source_type) select '$USER_ID', 'custom' from generate_series(1, $STREAMS + 20);
update admin_config set config_data = config_data || '{"rateLimit": {"perMinute": 1000000, "perHour": 10000000, "perDay": 100000000}}'
 where config_key = 'chat_model_agent_google';
SQL
bench_psql -c "select id from ai_runs where user_id = '$USER_ID'" >"$BENCH_TMP/runs"
TOKEN=$(STRATA_JWT_SECRET=$SECRET "$BENCH_ROOT/scripts/token" --sub "$USER_ID" --role authenticated --exp-in 3600)

python3 "$BENCH_DIR/ai_bench.py" fake "$BENCH_TMP/fake.port" "$CHUNKS" "$GAP_MS" 2>"$BENCH_TMP/fake.log" &
BENCH_PIDS+=($!)
for _ in $(seq 1 50); do [ -s "$BENCH_TMP/fake.port" ] && break; sleep 0.1; done
FAKE_PORT=$(cat "$BENCH_TMP/fake.port")

PORT=$(bench_free_port)
# AI_WRAPPER="valgrind --tool=callgrind ...": strata runs under it (its CPU
# figures are then the tool's; count instructions with AI_CHUNKS=100 minus
# AI_CHUNKS=20 for the cost of a delta alone).
[ -n "${AI_WRAPPER:-}" ] && read -ra BENCH_STRATA_WRAPPER <<<"$AI_WRAPPER"
bench_start_strata "$PORT" "$BENCH_ROOT/lua" "$SERVER_CPU" STRATA_JWT_SECRET=$SECRET \
  STRATA_GOOGLE_BASE_URL="http://127.0.0.1:$FAKE_PORT" STRATA_RATE_LIMIT_USER_PER_MINUTE=0 \
  STRATA_DB_POOL_MAX=8 STRATA_DB_QUEUE_MAX=100000 STRATA_DB_WAIT_TIMEOUT_MS=60000
bench_wait_http "http://127.0.0.1:$PORT/ready" "$STRATA_PID" "$STRATA_LOG" strata "${AI_WRAPPER:+120}"

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$STRATA_PID/status"; }
cpu_ticks() { awk '{print $14, $15}' "/proc/$STRATA_PID/stat"; } # user, system
p99() { python3 -c 'import json,sys; l=sorted(json.load(sys.stdin)[sys.argv[1]]); print("%.3f" % l[max(int(len(l)*0.99)-1, 0)] if l else "nan")' "${1:-probe}"; }

say "warm-up: 20 streams"
head -n 20 "$BENCH_TMP/runs" >"$BENCH_TMP/warm"
taskset -c "$CLIENT_CPU" python3 "$BENCH_DIR/ai_bench.py" load 127.0.0.1 "$PORT" "$TOKEN" "$BENCH_TMP/warm" 0.1 >/dev/null
tail -n +21 "$BENCH_TMP/runs" >"$BENCH_TMP/load"
N=$(wc -l <"$BENCH_TMP/load")

say "baseline: GET /v1/hello/x for ${PROBE_S} s without the load"
BASE_P99=$(taskset -c "$CLIENT_CPU" python3 "$BENCH_DIR/ai_bench.py" probe 127.0.0.1 "$PORT" "$PROBE_S" | p99)
RSS0=$(rss_kb); read -r USR0 SYS0 < <(cpu_ticks)

say "load: $N streamed executions at once, $CHUNKS deltas each, ${GAP_MS} ms apart"
( peak=0; while kill -0 "$STRATA_PID" 2>/dev/null; do r=$(rss_kb); [ "$r" -gt "$peak" ] && peak=$r && echo "$peak" >"$BENCH_TMP/peak"; sleep 0.2; done ) &
SAMPLER=$!
taskset -c "$CLIENT_CPU" python3 "$BENCH_DIR/ai_bench.py" load 127.0.0.1 "$PORT" "$TOKEN" "$BENCH_TMP/load" "$PROBE_S" >"$BENCH_TMP/load.json"
read -r USR1 SYS1 < <(cpu_ticks)
kill "$SAMPLER" 2>/dev/null || true; wait "$SAMPLER" 2>/dev/null || true
PEAK=$(cat "$BENCH_TMP/peak" 2>/dev/null || echo "$RSS0")

LOAD_P99=$(p99 <"$BENCH_TMP/load.json")
STREAM_P99=$(p99 probe_streaming <"$BENCH_TMP/load.json")
STARTED=$(python3 -c 'import json,sys; print("%.2f" % json.load(open(sys.argv[1]))["started_s"])' "$BENCH_TMP/load.json")
read -r OK ERRS DELTAS < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["ok"], d["errors"], d["deltas"]); s=d.get("sample"); s and print("sample error:", s, file=sys.stderr)' "$BENCH_TMP/load.json")
HZ=$(getconf CLK_TCK)
completed=$(bench_psql -c "select count(*) from ai_tasks where status = 'completed'")
python3 - "$BASE_P99" "$LOAD_P99" "$RSS0" "$PEAK" "$N" "$USR0 $SYS0" "$USR1 $SYS1" "$HZ" "$DELTAS" "$OK" "$ERRS" "$completed" "$STREAM_P99" "$STARTED" <<'PY'
import sys
base, load, rss0, peak, n, c0, c1, hz, deltas, ok, errs, done, streaming, started = sys.argv[1:]
base, load, streaming = float(base), float(load), float(streaming)
print("bench-ai: %s streams: %s done, %s errors, %s deltas received, %s tasks completed in the database" % (n, ok, errs, deltas, done))
print("bench-ai: every stream had its first delta %s s after the start" % started)
print("bench-ai: cheap route p99: %.3f ms alone, %.3f ms under the load (ratio %.2f, target <= 2)" % (base, load, load / base))
print("bench-ai: cheap route p99 once every stream was open: %.3f ms (ratio %.2f)" % (streaming, streaming / base))
print("bench-ai: strata RSS %d KB -> peak %d KB: %.1f KB per open stream (target <= 64)" % (int(rss0), int(peak), (int(peak) - int(rss0)) / int(n)))
(u0, s0), (u1, s1) = map(int, c0.split()), map(int, c1.split())
usr_s, sys_s = (u1 - u0) / int(hz), (s1 - s0) / int(hz)
cpu_s, per = usr_s + sys_s, 1e6 / max(int(deltas), 1)
print("bench-ai: strata CPU %.2f s for the load: %.1f us per delta streamed (user %.1f, system %.1f)" % (cpu_s, cpu_s * per, usr_s * per, sys_s * per))
PY
