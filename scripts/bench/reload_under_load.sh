#!/usr/bin/env bash
# scripts/bench/reload_under_load.sh: hot reload under full load.
#
# strata serves GET /v1/behaviour from a temporary Lua directory, answering
# {"v":"A"} or {"v":"B"}.  wrk hammers it for RELOAD_SECONDS while the
# route file is rewritten RELOAD_WRITES times, evenly spread, cycling
#   A (initial) -> broken -> B -> broken -> A -> broken -> B ...
# (broken = a Lua syntax error).  Each write is atomic: the new text is
# written in a directory outside the Lua tree, then renamed over the file.
# After a good write, curl polls until the new behaviour answers (on three
# fresh connections in a row) and the delay from the write is recorded;
# after a broken write, /ready must report the load error while the
# previous behaviour keeps serving.
#
# PASS needs: no socket error, no non-2xx answer (so no 5xx), every body
# {"v":"A"} or {"v":"B"}, every good write visible within 1 s, every broken
# write refused (reported by /ready within 1 s, old behaviour kept), and all
# writes made while wrk was running.  Exits 1 on FAIL.
#
# Environment:
#   RELOAD_SECONDS      load duration (default 30)
#   RELOAD_WRITES       rewrites of the route file (default 50)
#   RELOAD_CONNECTIONS  wrk connections (default 32)
#   RELOAD_THREADS      wrk threads (default 1; counts are summed over threads)
#   RELOAD_WORKERS      strata worker threads (default 0: one per core)
#   RELOAD_MAX_DELAY_MS visibility bound (default 1000)
#   DATABASE_URL        as for scripts/bench/run.sh
set -euo pipefail

BENCH_NAME=reload
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${RELOAD_SECONDS:-30}
WRITES=${RELOAD_WRITES:-50}
CONNS=${RELOAD_CONNECTIONS:-32}
THREADS=${RELOAD_THREADS:-1}
WORKERS=${RELOAD_WORKERS:-0}
MAX_DELAY_MS=${RELOAD_MAX_DELAY_MS:-1000}
for v in RELOAD_SECONDS:"$DURATION" RELOAD_WRITES:"$WRITES" RELOAD_CONNECTIONS:"$CONNS" \
  RELOAD_THREADS:"$THREADS" RELOAD_WORKERS:"$WORKERS" RELOAD_MAX_DELAY_MS:"$MAX_DELAY_MS"; do
  [[ ${v#*:} =~ ^[0-9]+$ ]] || die "${v%%:*} must be a whole number, got '${v#*:}'"
done
[ "$DURATION" -ge 2 ] && [ "$WRITES" -ge 1 ] && [ "$CONNS" -ge 1 ] && [ "$THREADS" -ge 1 ] \
  || die "need RELOAD_SECONDS >= 2 and RELOAD_WRITES, RELOAD_CONNECTIONS, RELOAD_THREADS >= 1"
[ "$CONNS" -ge "$THREADS" ] || die "RELOAD_CONNECTIONS must be at least RELOAD_THREADS"

bench_init
bench_ensure "command -v wrk:wrk" "command -v curl:curl"
bench_database_url

now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

route_text() { # A | B | broken
  case $1 in
    A | B) cat <<LUA ;;
-- reload_under_load.sh: behaviour $1
return {
  { method = "GET", path = "/v1/behaviour", handler = function() return 200, { v = "$1" } end },
}
LUA
    broken) cat <<'LUA' ;;
-- reload_under_load.sh: a broken version (syntax error: a missing "end")
return {
  { method = "GET", path = "/v1/behaviour", handler = function() return 200, { v = "X" } },
}
LUA
  esac
}

STAGING=$BENCH_TMP/staging # outside the Lua tree, same filesystem: rename is atomic
mkdir -p "$STAGING"
LUA_DIR=$(bench_strata_lua_dir)
ROUTE=$LUA_DIR/routes/behaviour.lua
route_text A >"$ROUTE"

PORT=$(bench_free_port)
BASE=http://127.0.0.1:$PORT
bench_start_strata "$PORT" "$LUA_DIR" "0-$(($(nproc) - 1))" STRATA_WORKERS="$WORKERS"
bench_wait_http "$BASE/v1/behaviour" "$STRATA_PID" "$STRATA_LOG" "strata"
[ "$(curl -s -m 2 "$BASE/v1/behaviour")" = '{"v":"A"}' ] || die "GET /v1/behaviour does not answer {\"v\":\"A\"} at start"

write_route() { # A | B | broken
  route_text "$1" >"$STAGING/behaviour.lua"
  mv -f "$STAGING/behaviour.lua" "$ROUTE"
}

# Polls until GET /v1/behaviour answers WANT on 3 fresh connections in a
# row, or DEADLINE (ms) passes.  Prints the time (ms) the first of those
# three answers arrived, or nothing when the deadline passed.
await_behaviour() {
  local want=$1 deadline=$2 first=0 streak=0 got t
  while :; do
    got=$(curl -s -m 1 "$BASE/v1/behaviour" 2>/dev/null || true)
    t=$(now_ms) # when the answer had arrived: the delay is not underestimated
    if [ "$got" = "{\"v\":\"$want\"}" ]; then
      [ "$streak" -eq 0 ] && first=$t
      streak=$((streak + 1))
      [ "$streak" -ge 3 ] && { echo "$first"; return 0; }
    else
      streak=0
    fi
    [ "$(now_ms)" -ge "$deadline" ] && return 0
    sleep 0.01
  done
}

# Polls /ready until it reports a Lua error naming routes/behaviour.lua, or
# DEADLINE passes; prints the time seen.
await_refusal() {
  local deadline=$1 body
  while :; do
    body=$(curl -s -m 1 "$BASE/ready" 2>/dev/null || true)
    if grep -q '"error":"[^"]*behaviour\.lua' <<<"$body"; then now_ms; return 0; fi
    [ "$(now_ms)" -ge "$deadline" ] && return 0
    sleep 0.01
  done
}

# --- load --------------------------------------------------------------------
WRK_OUT=$BENCH_TMP/wrk.out
say "wrk -t$THREADS -c$CONNS -d${DURATION}s on $BASE/v1/behaviour; $WRITES rewrites of routes/behaviour.lua"
wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 5s -s "$BENCH_DIR/reload_count.lua" \
  "$BASE/v1/behaviour" >"$WRK_OUT" 2>&1 &
WRK_PID=$!
BENCH_PIDS+=("$WRK_PID")
T0=$(now_ms)
INTERVAL=$((DURATION * 1000 / (WRITES + 1)))
[ "$INTERVAL" -ge 300 ] || say "warning: ${INTERVAL} ms between writes is close to the reload debounce (200 ms)"

current=A next_good=B
good=0 broken=0 late=0 unseen=0 unrefused=0 off_load=0 stale=0
delays=()
for ((k = 1; k <= WRITES; k++)); do
  target=$((T0 + k * INTERVAL))
  now=$(now_ms)
  if [ "$now" -lt "$target" ]; then
    r=$((target - now))
    sleep "$((r / 1000)).$(printf '%03d' $((r % 1000)))"
  fi
  kill -0 "$WRK_PID" 2>/dev/null || off_load=$((off_load + 1))
  if [ $((k % 2)) = 1 ]; then
    t=$(now_ms)
    write_route broken
    broken=$((broken + 1))
    seen=$(await_refusal $((t + MAX_DELAY_MS)))
    if [ -z "$seen" ]; then
      unrefused=$((unrefused + 1))
      say "write $k (broken): /ready did not report the error within ${MAX_DELAY_MS} ms"
    fi
    # The old behaviour must still answer.
    got=$(curl -s -m 1 "$BASE/v1/behaviour" 2>/dev/null || true)
    if [ "$got" != "{\"v\":\"$current\"}" ]; then
      stale=$((stale + 1))
      say "write $k (broken): GET /v1/behaviour answered '$got', expected the previous {\"v\":\"$current\"}"
    fi
  else
    t=$(now_ms)
    write_route "$next_good"
    good=$((good + 1))
    seen=$(await_behaviour "$next_good" $((t + 5000)))
    if [ -z "$seen" ]; then
      unseen=$((unseen + 1))
      say "write $k ($next_good): not visible after 5000 ms"
    else
      d=$((seen - t))
      delays+=("$d")
      if [ "$d" -ge "$MAX_DELAY_MS" ]; then
        late=$((late + 1))
        say "write $k ($next_good): visible after $d ms"
      fi
    fi
    current=$next_good
    [ "$next_good" = A ] && next_good=B || next_good=A
  fi
done
WRITER_END=$(now_ms)

wait "$WRK_PID" || { cat "$WRK_OUT" >&2; die "wrk failed"; }
unset 'BENCH_PIDS[-1]'
kill -0 "$STRATA_PID" 2>/dev/null || { tail -n 30 "$STRATA_LOG" >&2; die "strata died during the run (log above)"; }
line=$(grep '^RELOAD ' "$WRK_OUT") || { cat "$WRK_OUT" >&2; die "wrk printed no summary"; }
field() { sed -n "s/.* $1=\\([0-9]*\\).*/\\1/p" <<<"$line"; }
ready=$(curl -s -m 2 "$BASE/ready" || true)
generation=$(sed -n 's/.*"generation":\([0-9]*\).*/\1/p' <<<"$ready")

requests=$(field requests)
s2xx=$(field s2xx) s3xx=$(field s3xx) s4xx=$(field s4xx) s5xx=$(field s5xx)
a=$(field a) b=$(field b) other=$(field other)
sock=$(($(field connect) + $(field read) + $(field write) + $(field timeout)))
non2xx=$((s3xx + s4xx + s5xx))
max=0 sum=0
for d in "${delays[@]}"; do
  sum=$((sum + d))
  [ "$d" -gt "$max" ] && max=$d
done
mean=0
[ ${#delays[@]} -gt 0 ] && mean=$(awk -v s="$sum" -v n="${#delays[@]}" 'BEGIN { printf "%.1f", s / n }')
min=$(printf '%s\n' "${delays[@]:-0}" | sort -n | head -n1)

echo
echo "reload under load: ${DURATION} s of wrk -t$THREADS -c$CONNS, $WRITES atomic rewrites every ${INTERVAL} ms"
printf '  %-44s %s\n' \
  "requests (wrk)" "$requests  ($(awk -v r="$requests" -v d="$DURATION" 'BEGIN { printf "%.0f", r / d }') per second)" \
  "2xx / non-2xx / 5xx" "$s2xx / $non2xx / $s5xx" \
  "socket errors (connect+read+write+timeout)" "$sock  ($(sed 's/.*connect=\([0-9]*\) read=\([0-9]*\) write=\([0-9]*\) timeout=\([0-9]*\).*/connect \1, read \2, write \3, timeout \4/' <<<"$line"))" \
  "bodies A / B / other" "$a / $b / $other" \
  "good writes / visible / late" "$good / ${#delays[@]} / $late (bound ${MAX_DELAY_MS} ms)" \
  "visibility delay min / mean / max" "${min} / ${mean} / ${max} ms" \
  "visibility delays, in write order (ms)" "${delays[*]:-none}" \
  "broken writes / refused in /ready" "$broken / $((broken - unrefused)); old behaviour lost after a broken write: $stale" \
  "writes made after wrk had ended" "$off_load (writer finished $((WRITER_END - T0)) ms after the start)" \
  "final Lua generation (/ready)" "${generation:-?} (expected $((good + 1)))"
grep '^RELOAD_OTHER ' "$WRK_OUT" | sed 's/^RELOAD_OTHER /  first other answer: /' || true

fail=()
[ "$sock" -eq 0 ] || fail+=("socket errors")
[ "$non2xx" -eq 0 ] || fail+=("non-2xx answers")
[ "$other" -eq 0 ] || fail+=("answers neither A nor B")
[ "$requests" -gt 0 ] || fail+=("no requests")
[ $((a + b + other)) -eq "$requests" ] || fail+=("counted answers ($((a + b + other))) differ from wrk's requests ($requests)")
[ "$unseen" -eq 0 ] && [ "$late" -eq 0 ] || fail+=("good writes not visible within ${MAX_DELAY_MS} ms")
[ "$unrefused" -eq 0 ] && [ "$stale" -eq 0 ] || fail+=("broken writes not refused cleanly")
[ "$off_load" -eq 0 ] || fail+=("writes after the load ended")
[ "${generation:-0}" = $((good + 1)) ] || fail+=("generation ${generation:-?} instead of $((good + 1))")
if [ ${#fail[@]} -eq 0 ]; then
  echo "PASS"
else
  echo "FAIL: $(IFS=';'; echo "${fail[*]}" | sed 's/;/; /g')"
  exit 1
fi
