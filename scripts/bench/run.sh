#!/usr/bin/env bash
# scripts/bench/run.sh (`make bench`): strata against nginx + lua-nginx-module
# on the same two Lua handlers, in one run, on one machine.
#
#   hello   GET  /bench/hello   -> {"hello":"world"}
#   policy  POST /bench/policy  a 302-byte JSON document, checked against
#           a table of 8 rules (required keys, types, allowed roles and
#           actions, numeric ranges, lengths) and a role/action grant
#           table; the decision is answered as JSON.
#
# Both servers run the same Lua: scripts/bench/lua/bench/policy.lua is
# loaded verbatim by strata (scripts/bench/lua/routes/bench.lua) and by
# nginx (scripts/bench/nginx.conf.in, content_by_lua_block + cjson).  Each
# server gets one worker pinned to CPU 0; wrk runs on CPU 1 with keep-alive
# connections.  Before measuring, both servers' answers are compared.
#
# Environment:
#   BENCH_SECONDS      seconds per measured run (default 10)
#   BENCH_WARMUP       seconds of warm-up before each run (default 2)
#   BENCH_CONNECTIONS  wrk connections (default 64), one wrk thread
#   BENCH_ROUNDS       rounds of the four runs, interleaved; the table shows
#                      medians (default 3: one run alone is at the mercy of
#                      whatever else the machine does)
#   DATABASE_URL       database strata starts on (default: the embedded
#                      cluster, started if needed and then stopped again)
#
# Installs wrk, nginx-light, libnginx-mod-http-lua and lua-cjson with
# apt-get when missing (root or passwordless sudo needed only then).
# Exits non-zero when something cannot start, when the two servers answer
# differently, or when a run saw errors or non-2xx answers.
set -euo pipefail

BENCH_NAME=bench
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUN_SECONDS=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-2}
CONNS=${BENCH_CONNECTIONS:-64}
ROUNDS=${BENCH_ROUNDS:-3}
for v in RUN_SECONDS:"$RUN_SECONDS" WARMUP:"$WARMUP" CONNS:"$CONNS" ROUNDS:"$ROUNDS"; do
  [[ ${v#*:} =~ ^[0-9]+$ ]] || die "${v%%:*} must be a whole number, got '${v#*:}'"
done
[ "$RUN_SECONDS" -ge 1 ] && [ "$CONNS" -ge 1 ] && [ "$ROUNDS" -ge 1 ] \
  || die "BENCH_SECONDS, BENCH_CONNECTIONS and BENCH_ROUNDS must be at least 1"

bench_init
bench_ensure \
  "command -v wrk:wrk" \
  "command -v nginx:nginx-light" \
  "test -f /usr/lib/nginx/modules/ngx_http_lua_module.so:libnginx-mod-http-lua" \
  "dpkg-query -W -f='\${db:Status-Status}' lua-cjson | grep -qx installed:lua-cjson" \
  "command -v lua5.4:lua5.4" \
  "command -v taskset:util-linux" \
  "command -v curl:curl"
bench_cpus
bench_database_url

BODY_FILE=$BENCH_DIR/policy_body.json

# --- strata ------------------------------------------------------------------
STRATA_PORT=$(bench_free_port)
LUA_DIR=$(bench_strata_lua_dir "$BENCH_DIR/lua")
bench_start_strata "$STRATA_PORT" "$LUA_DIR" "$SERVER_CPU"
bench_wait_http "http://127.0.0.1:$STRATA_PORT/bench/hello" "$STRATA_PID" "$STRATA_LOG" "strata"

# --- nginx -------------------------------------------------------------------
NGINX_PORT=$(bench_free_port)
while [ "$NGINX_PORT" = "$STRATA_PORT" ]; do NGINX_PORT=$(bench_free_port); done
NGX=$BENCH_TMP/nginx
mkdir -p "$NGX/nginx-tmp" "$NGX/lua"
cp -r "$BENCH_DIR/lua/bench" "$NGX/lua/"
sed -e "s#@DIR@#$NGX#g" -e "s#@PORT@#$NGINX_PORT#g" "$BENCH_DIR/nginx.conf.in" >"$NGX/nginx.conf"
chmod -R a+rX "$NGX"
NGINX_LOG=$NGX/nginx-error.log
nginx -p "$NGX" -c "$NGX/nginx.conf" -t -e "$NGINX_LOG" >"$NGX/nginx-test.log" 2>&1 \
  || { cat "$NGX/nginx-test.log" >&2; die "nginx refused the benchmark configuration (above)"; }
taskset -c "$SERVER_CPU" nginx -p "$NGX" -c "$NGX/nginx.conf" -e "$NGINX_LOG" >"$NGX/nginx.out" 2>&1 &
NGINX_PID=$!
BENCH_PIDS+=("$NGINX_PID")
bench_wait_http "http://127.0.0.1:$NGINX_PORT/bench/hello" "$NGINX_PID" "$NGINX_LOG" "nginx"

# --- same answers? -----------------------------------------------------------
# Compares status, content type and JSON value (key order may differ:
# Lua 5.4 and LuaJIT iterate tables differently); says whether the bytes match.
same_json() {
  lua5.4 - "$1" "$2" <<'LUA'
    local cjson = require("cjson")
    local function eq(a, b)
      if type(a) ~= type(b) then return false end
      if type(a) ~= "table" then return a == b end
      for k, v in pairs(a) do if not eq(v, b[k]) then return false end end
      for k in pairs(b) do if a[k] == nil then return false end end
      return true
    end
    local ok1, a = pcall(cjson.decode, arg[1])
    local ok2, b = pcall(cjson.decode, arg[2])
    os.exit(ok1 and ok2 and eq(a, b) and 0 or 1)
LUA
}

ask() { # port method path [body file] -> "status content-type" on line 1, body after
  local port=$1 method=$2 path=$3 body=${4:-}
  local args=(-s -m 5 -X "$method" -o "$BENCH_TMP/answer" -w '%{http_code} %{content_type}')
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "@$body")
  curl "${args[@]}" "http://127.0.0.1:$port$path"
  echo
  cat "$BENCH_TMP/answer"
}

for route in "GET /bench/hello" "POST /bench/policy $BODY_FILE"; do
  # shellcheck disable=SC2086
  set -- $route
  a=$(ask "$STRATA_PORT" "$@")
  b=$(ask "$NGINX_PORT" "$@")
  a_head=${a%%$'\n'*} a_body=${a#*$'\n'}
  b_head=${b%%$'\n'*} b_body=${b#*$'\n'}
  say "$1 $2: strata $a_head $a_body"
  say "$1 $2: nginx  $b_head $b_body"
  [ "$a_head" = "$b_head" ] || die "$1 $2: strata answers '$a_head', nginx '$b_head'"
  [ "${a_head%% *}" = 200 ] || die "$1 $2: the handlers answer ${a_head%% *}, not 200"
  same_json "$a_body" "$b_body" || die "$1 $2: strata and nginx answer different JSON"
  if [ "$a_body" = "$b_body" ]; then
    say "$1 $2: same answer, byte for byte"
  else
    say "$1 $2: same JSON value (key order differs)"
  fi
done

# --- measure -----------------------------------------------------------------
# wrk once; sets LINE to the BENCH line of scripts/bench/wrk_report.lua.
# wrk runs in the background so that a signal stops the script at once.
run_wrk() { # seconds url method [body file]
  local secs=$1 url=$2 method=$3 body=${4:-} out=$BENCH_TMP/wrk.out pid
  BENCH_METHOD=$method BENCH_BODY_FILE=$body taskset -c "$CLIENT_CPU" \
    wrk -t1 -c"$CONNS" -d"${secs}s" --timeout 5s -s "$BENCH_DIR/wrk_report.lua" "$url" >"$out" 2>&1 &
  pid=$!
  BENCH_PIDS+=("$pid")
  wait "$pid" || { cat "$out" >&2; die "wrk failed against $url"; }
  unset 'BENCH_PIDS[-1]'
  LINE=$(grep '^BENCH ' "$out") || { cat "$out" >&2; die "wrk printed no summary against $url"; }
}

field() { sed -n "s/.* $1=\\([0-9.]*\\).*/\\1/p" <<<"$2"; }

# CPU time (user + system, clock ticks) used so far by a process, its
# threads and its child processes (nginx's worker is the master's child).
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() {
  local pid total=0 t
  for pid in "$1" $(pgrep -P "$1" || true); do
    t=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
    total=$((total + ${t:-0}))
  done
  echo "$total"
}

declare -A RPS P99 CPU
FAILED=0
BUSY_LOW=0
say "measuring: ${ROUNDS} round(s) x 4 runs of ${RUN_SECONDS} s (+${WARMUP} s warm-up), wrk -t1 -c${CONNS}; server on CPU ${SERVER_CPU}, wrk on CPU ${CLIENT_CPU}; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((round = 1; round <= ROUNDS; round++)); do
  servers="strata nginx"
  [ $((round % 2)) = 0 ] && servers="nginx strata" # alternate who goes first
  for route in hello policy; do
    for server in $servers; do
      port=$STRATA_PORT
      [ "$server" = nginx ] && port=$NGINX_PORT
      if [ "$route" = hello ]; then
        args=("http://127.0.0.1:$port/bench/hello" GET)
      else
        args=("http://127.0.0.1:$port/bench/policy" POST "$BODY_FILE")
      fi
      pid=$STRATA_PID
      [ "$server" = nginx ] && pid=$NGINX_PID
      [ "$WARMUP" -gt 0 ] && run_wrk "$WARMUP" "${args[@]}"
      before=$(cpu_ticks "$pid")
      run_wrk "$RUN_SECONDS" "${args[@]}"
      after=$(cpu_ticks "$pid")
      line=$LINE
      rps=$(field rps "$line")
      p99=$(field p99_us "$line")
      # Server CPU time per request (much less sensitive than rps to other
      # load on the machine) and how busy the server's CPU was (under ~90%,
      # something other than the server limited the rate).
      read -r cpu busy < <(awk -v d=$((after - before)) -v hz="$CLK_TCK" -v n="$(field requests "$line")" \
        -v s="$(field seconds "$line")" 'BEGIN { printf "%.2f %.0f\n", d / hz * 1e6 / n, d / hz / s * 100 }')
      line="$line cpu_us_per_req=$cpu server_busy=$busy%"
      errs=$(($(field non2xx "$line") + $(field connect "$line") + $(field read "$line") + $(field write "$line") + $(field timeout "$line")))
      printf '%s: round %d %-6s %-6s %s\n' "$BENCH_NAME" "$round" "$route" "$server" "${line#BENCH }" >&2
      [ "$busy" -ge 90 ] || BUSY_LOW=$((BUSY_LOW + 1))
      if [ "$errs" -ne 0 ]; then
        say "round $round $route $server: $errs error(s) or non-2xx answer(s)"
        FAILED=1
      fi
      RPS[$route.$server]+="$rps "
      CPU[$route.$server]+="$cpu "
      P99[$route.$server]+="$p99 "
      kill -0 "$STRATA_PID" 2>/dev/null || { tail -n 30 "$STRATA_LOG" >&2; die "strata died during the run (log above)"; }
      kill -0 "$NGINX_PID" 2>/dev/null || { tail -n 30 "$NGINX_LOG" >&2; die "nginx died during the run (log above)"; }
    done
  done
done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

echo
echo "strata vs nginx + lua-nginx-module: same Lua handlers, 1 worker each on CPU $SERVER_CPU,"
echo "wrk -t1 -c$CONNS on CPU $CLIENT_CPU, keep-alive, ${RUN_SECONDS} s per run$([ "$ROUNDS" -gt 1 ] && echo ", median of $ROUNDS rounds")"
echo
printf '%-7s %10s %10s %6s   %10s %10s %6s   %13s %13s %6s\n' route "strata rps" "nginx rps" ratio \
  "strata p99" "nginx p99" ratio "strata CPU/req" "nginx CPU/req" ratio
for route in hello policy; do
  sr=$(median "${RPS[$route.strata]}") nr=$(median "${RPS[$route.nginx]}")
  sp=$(median "${P99[$route.strata]}") np=$(median "${P99[$route.nginx]}")
  sc=$(median "${CPU[$route.strata]}") nc=$(median "${CPU[$route.nginx]}")
  awk -v r="$route" -v sr="$sr" -v nr="$nr" -v sp="$sp" -v np="$np" -v sc="$sc" -v nc="$nc" 'BEGIN {
    printf "%-7s %10.0f %10.0f %6.2f   %7.2f ms %7.2f ms %6.2f   %10.2f us %10.2f us %6.2f\n", r, sr, nr,
      (nr > 0 ? sr / nr : 0), sp / 1000, np / 1000, (np > 0 ? sp / np : 0), sc, nc, (nc > 0 ? sc / nc : 0) }'
done
echo
echo "ratio = strata / nginx.  rps: above 1, strata serves more.  p99 and CPU/req (server CPU time"
echo "per request, the figure least disturbed by other load on the machine): below 1, strata is better."

if [ "$BUSY_LOW" -gt 0 ]; then
  echo "note: in $BUSY_LOW of $((ROUNDS * 4)) runs the server's CPU was busy less than 90% of the time: other"
  echo "load on the machine (or the client) limited the rate, so rps and p99 are disturbed; CPU/req holds better."
fi

[ "$FAILED" = 0 ] || die "some runs saw errors or non-2xx answers (see above): the figures are not valid"
