#!/usr/bin/env bash
# scripts/bench/callgrind.sh (`make bench-callgrind`): user-space
# instructions per request of bin/strata, counted by valgrind's callgrind,
# on four routes:
#
#   trivial  GET  /bench/hello       a Lua route answering {"hello":"world"}
#   policy   POST /bench/policy      the policy route of scripts/bench/run.sh
#                                    (scripts/bench/lua/, body policy_body.json)
#   item     GET  /bench/item/:id    one SELECT by primary key through strata.db
#                                    (scripts/bench/db/routes/bench_db.lua)
#   list     GET  /rest/v1/Chat?user_id=eq.X&order=createdAt.desc&limit=20
#                                    through the "Chat" policy, with a user's JWT
#
# The fixture is scripts/bench/db.sh's (bench_db_fixture in lib.sh).
# bin/strata runs under `valgrind --tool=callgrind` with one worker and a
# pool of one connection.  Per route: BENCH_CG_WARMUP requests (answers
# checked), then `callgrind_control -z`, BENCH_CG_REQUESTS requests, then
# `callgrind_control -d`: instructions per request = the dump's Ir / the
# requests.  The requests go on one keep-alive connection, pipelined
# BENCH_CG_DEPTH at a time (1: one at a time, as wrk or a browser; the
# figures move by about 1%); the item route's ids differ.  The count is
# of the whole process: the background threads' work during the batch is
# in it, and is measured alone ("idle": no request, at least as long as
# the slowest batch) to show how little it is.
#
# Figures: one line per route, "route  instructions/request", on stdout.
# Debian strips its shared liblua5.4 and libevent, so a profile of
# bin/strata names none of their internal functions (luaV_execute, ...).
# When build/callgrind/strata-symbols exists (`make bench-callgrind` links
# it: bin/strata's objects with the static liblua5.4.a and libevent.a,
# which keep their symbols), it is measured the same way next, its figures
# shown beside bin/strata's (they agree within about 1%), and the profiles
# are its.  Under build/callgrind/: the dump of each binary and route
# (callgrind.<strata|symbols>.<route>.out, for callgrind_annotate or
# kcachegrind) and item.top.txt and list.top.txt, the 15 costliest
# functions of those routes by self cost, then by inclusive cost.
#
# Environment:
#   BENCH_CG_REQUESTS  measured requests per route (default 2000)
#   BENCH_CG_WARMUP    warm-up requests per route (default 200)
#   BENCH_CG_DEPTH     pipelined requests in flight (default 16)
#   BENCH_CG_ROUTES    routes measured (default "trivial policy item list")
#   BENCH_DB_CHATS     chats of the benchmark user (default 200, as db.sh)
#   DATABASE_URL       database to use (default: the embedded cluster,
#                      started and migrated if needed, then stopped again)
# Installs valgrind (and the other tools it uses) with apt-get when missing.
set -euo pipefail

BENCH_NAME=bench-callgrind
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REQUESTS=${BENCH_CG_REQUESTS:-2000}
WARMUP=${BENCH_CG_WARMUP:-200}
DEPTH=${BENCH_CG_DEPTH:-16}
ROUTES=${BENCH_CG_ROUTES:-trivial policy item list}
CHATS=${BENCH_DB_CHATS:-200}
for v in REQUESTS:"$REQUESTS" WARMUP:"$WARMUP" DEPTH:"$DEPTH" CHATS:"$CHATS"; do
  [[ ${v#*:} =~ ^[0-9]+$ ]] || die "${v%%:*} must be a whole number, got '${v#*:}'"
done
[ "$REQUESTS" -ge 1 ] && [ "$DEPTH" -ge 1 ] && [ "$CHATS" -ge 20 ] \
  || die "BENCH_CG_REQUESTS and BENCH_CG_DEPTH must be at least 1, BENCH_DB_CHATS at least 20"
for r in $ROUTES; do
  [[ $r =~ ^(trivial|policy|item|list)$ ]] || die "unknown route '$r' in BENCH_CG_ROUTES (trivial, policy, item, list)"
done
OUT=$BENCH_ROOT/build/callgrind
SYMBOLS_BIN=$OUT/strata-symbols

bench_init
bench_ensure \
  "command -v valgrind:valgrind" \
  "command -v psql:postgresql-client-15" \
  "lua5.4 -e 'require(\"socket\")':lua-socket" \
  "command -v curl:curl" \
  "command -v openssl:openssl" \
  "command -v taskset:util-linux"
bench_cpus
bench_database_url migrate
bench_db_fixture "$CHATS"
bench_db_token

# --- strata under callgrind --------------------------------------------------
LUA_DIR=$(bench_strata_lua_dir "$BENCH_DIR/lua" "$BENCH_DIR/db")
CG_FILE=$BENCH_TMP/callgrind.out
BENCH_STRATA_WRAPPER=(valgrind --tool=callgrind --callgrind-out-file="$CG_FILE" --vgdb=yes --vgdb-prefix="$BENCH_TMP/vgdb")

cg() { # callgrind_control command [args]: fails when callgrind does not answer
  timeout 120 callgrind_control --vgdb-prefix="$BENCH_TMP/vgdb" "$@" "$STRATA_PID" >>"$BENCH_TMP/control.log" 2>&1
}

# --- the client --------------------------------------------------------------
# Sends COUNT requests on one keep-alive connection, DEPTH at a time in one
# write, and reads every answer (Content-Length framed); fails on any
# status but 200 or on a body without EXPECT.  {id} in the request is
# replaced by 1 + (the request's number mod BENCH_DB_ITEMS).
send() { # route count
  local route=$1 count=$2 req expect
  case $route in
    trivial) req=$'GET /bench/hello HTTP/1.1\r\nHost: bench\r\n\r\n' expect='"hello"' ;;
    policy) req="POST /bench/policy HTTP/1.1"$'\r\n'"Host: bench"$'\r\n'"Content-Type: application/json"$'\r\n'
      req+="Content-Length: $(wc -c <"$BENCH_DIR/policy_body.json")"$'\r\n\r\n'"$(cat "$BENCH_DIR/policy_body.json")"
      expect='"decision"' ;;
    item) req=$'GET /bench/item/{id} HTTP/1.1\r\nHost: bench\r\n\r\n' expect='"payload"' ;;
    list) req="GET $BENCH_DB_LIST_PATH HTTP/1.1"$'\r\n'"Host: bench"$'\r\n'"Authorization: Bearer $BENCH_DB_TOKEN"$'\r\n\r\n'
      expect='"strata-bench"' ;;
  esac
  lua5.4 - "$PORT" "$count" "$DEPTH" "$BENCH_DB_ITEMS" "$req" "$expect" <<'LUA'
local socket = require("socket")
local port, count, depth, items = tonumber(arg[1]), tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
local template, expect = arg[5], arg[6]
local c = assert(socket.connect("127.0.0.1", port))
c:settimeout(300)
local function fail(msg) io.stderr:write("client: ", msg, "\n"); os.exit(1) end
local sent = 0
while sent < count do
  local n, batch = math.min(depth, count - sent), {}
  for i = 1, n do
    batch[i] = template:gsub("{id}", tostring(1 + (sent + i) % items))
  end
  assert(c:send(table.concat(batch)))
  for _ = 1, n do
    local status = c:receive("*l") or fail("connection closed")
    local len
    repeat
      local h = c:receive("*l") or fail("connection closed in headers")
      len = len or tonumber(h:lower():match("^content%-length:%s*(%d+)"))
    until h == ""
    local body = len and len > 0 and c:receive(len) or ""
    if not status:match("^HTTP/1%.1 200 ") or not body:find(expect, 1, true) then
      fail(("answer %q: %s"):format(status, body:sub(1, 300)))
    end
  end
  sent = sent + n
end
c:close()
LUA
}

# --- measure -----------------------------------------------------------------
# The Ir total of callgrind's latest dump, moved to build/callgrind/.
# The calls in progress at the zeroing (the event loop's) are counted 0
# times, and callgrind_annotate 3.19 takes the cost of a call counted 0
# times for the caller's self cost: they become calls counted once.
dump() { # name
  local f
  f=$(ls -t "$CG_FILE".* 2>/dev/null | head -1) || true
  [ -n "$f" ] || die "callgrind wrote no dump"
  sed 's/^calls=0 /calls=1 /' "$f" >"$OUT/callgrind.$1.out"
  rm -f "$f"
  sed -n 's/^totals: *\([0-9]*\).*/\1/p;s/^summary: *\([0-9]*\).*/\1/p' "$OUT/callgrind.$1.out" | head -1
}

# Measures every route on BINARY under callgrind; dumps named
# callgrind.TAG.<route>.out; sets PER[TAG.route] and IDLE[TAG].
measure() { # binary tag
  local bin=$1 tag=$2 route ir t0 t1 ms slowest=0 idle_s
  say "$tag: starting $bin under callgrind"
  PORT=$(bench_free_port)
  BENCH_STRATA_BIN=$bin bench_start_strata "$PORT" "$LUA_DIR" "$SERVER_CPU" \
    STRATA_DB_POOL_MIN=1 STRATA_DB_POOL_MAX=1 STRATA_RATE_LIMIT_USER_PER_MINUTE=0 \
    STRATA_JWT_SECRET="$STRATA_JWT_SECRET"
  bench_wait_http "http://127.0.0.1:$PORT/bench/hello" "$STRATA_PID" "$STRATA_LOG" "strata under callgrind" 120
  bench_db_check_answers "http://127.0.0.1:$PORT"
  cg -z || die "callgrind_control does not reach strata (log: $BENCH_TMP/control.log)"
  for route in $ROUTES; do
    send "$route" "$WARMUP" || die "$route: wrong answers in the warm-up"
    cg -z || die "callgrind_control -z failed"
    t0=$(date +%s%3N)
    send "$route" "$REQUESTS" || die "$route: wrong answers"
    t1=$(date +%s%3N)
    cg -d || die "callgrind_control -d failed"
    ir=$(dump "$tag.$route")
    [[ $ir =~ ^[0-9]+$ ]] || die "$route: no Ir total in the dump"
    PER[$tag.$route]=$((ir / REQUESTS))
    ms=$((t1 - t0))
    [ "$ms" -gt "$slowest" ] && slowest=$ms
    say "$tag: $route: $ir instructions for $REQUESTS requests in $ms ms"
  done
  # The background threads alone, for at least as long as the slowest batch.
  idle_s=$((slowest / 1000 + 1))
  cg -z || die "callgrind_control -z failed"
  sleep "$idle_s"
  cg -d || die "callgrind_control -d failed"
  IDLE[$tag]=$(($(dump "$tag.idle") / idle_s))
  kill -0 "$STRATA_PID" 2>/dev/null || { tail -n 30 "$STRATA_LOG" >&2; die "strata died during the run (log above)"; }
  bench_stop_pid "$STRATA_PID"
  unset 'BENCH_PIDS[-1]'
}

mkdir -p "$OUT"
rm -f "$OUT"/callgrind.*.out "$OUT"/*.top.txt
declare -A PER IDLE
say "$WARMUP warm-up + $REQUESTS measured requests per route, $DEPTH pipelined, one worker"
TAGS=strata
measure "$BENCH_ROOT/bin/strata" strata
# Linked from the same objects: older than bin/strata, it may be stale.
if [ -x "$SYMBOLS_BIN" ] && ! [ "$BENCH_ROOT/bin/strata" -nt "$SYMBOLS_BIN" ]; then
  TAGS+=" symbols"
  measure "$SYMBOLS_BIN" symbols
  TOP=symbols
else
  say "no up-to-date ${SYMBOLS_BIN#"$BENCH_ROOT"/} (make bench-callgrind links it): the profiles name no function inside liblua5.4 and libevent"
  TOP=strata
fi

top() { # dump yes|no: its 15 costliest functions, inclusive or not
  callgrind_annotate --inclusive="$2" "$1" | awk '/file:function/ { getline; on = 1; next } on && n < 15 && NF { print; n++ }'
}
for route in item list; do
  f=$OUT/callgrind.$TOP.$route.out
  [ -f "$f" ] || continue
  {
    echo "# $route route, $REQUESTS requests (${f#"$BENCH_ROOT"/}): the 15 costliest functions by self cost (Ir)"
    top "$f" no
    echo
    echo "# the 15 costliest functions by inclusive cost (Ir)"
    top "$f" yes
  } >"$OUT/$route.top.txt"
done

echo
echo "bin/strata under callgrind, one worker: user-space instructions per request"
echo "($REQUESTS requests per route, $DEPTH pipelined on one keep-alive connection)"
if [ "$TAGS" = strata ]; then
  for route in $ROUTES; do printf '%-8s %10s\n' "$route" "${PER[strata.$route]}"; done
else
  printf '%-8s %10s %22s\n' route bin/strata "static Lua + libevent"
  for route in $ROUTES; do printf '%-8s %10s %22s\n' "$route" "${PER[strata.$route]}" "${PER[symbols.$route]}"; done
fi
echo "idle: ${IDLE[strata]} instructions/s with no request (background threads; counted above too)"
echo "profiles ($TOP): build/callgrind/callgrind.$TOP.<route>.out; the top 15 functions of item and list: build/callgrind/{item,list}.top.txt"
