#!/usr/bin/env bash
# scripts/bench/db.sh (part of `make bench`): strata's database path against
# pgbench running the same SQL with the same number of connections, in the
# same run, on the same PostgreSQL.
#
#   item  GET /bench/item/:id  a Lua route (scripts/bench/db/routes/bench_db.lua)
#         doing one indexed SELECT by primary key through strata.db; wrk
#         picks a random id per request.  pgbench: scripts/bench/db_item.sql
#         (\set id random(1, 100000) + the same SELECT).
#   list  GET /rest/v1/chat?user_id=eq.X&order=createdAt.desc&limit=20 with
#         a user's JWT, through the "Chat" table's row policy
#         (lua/policies/public/Chat.lua); pgbench runs the statement strata
#         generates for it (scripts/bench/db_list.sql: the text strata sends,
#         seen in pg_stat_activity), with the same four parameters.
#   The list is also measured with row level security off on "Chat"
#   (strata and pgbench +settings, "RLS off" lines): what PostgreSQL's
#   generated policy (sql/120, scripts/db rls) costs on top of the
#   predicate the REST layer compiles itself.  RLS is switched back on after
#   each such run and when the script exits.
#   Each route is also measured against pgbench sending, before its
#   statement and in the same pipeline, the request settings strata applies
#   to every statement (claims, method, path, headers, SET LOCAL ROLE): the
#   "+settings" column, the same work asked of PostgreSQL.
#
# strata: one worker on CPU 0, pool of exactly BENCH_DB_CONNECTIONS
# connections (STRATA_DB_POOL_MIN = MAX), rate limits off; wrk -t1 on
# CPU 1.  pgbench -n -c BENCH_DB_CONNECTIONS -j 1 -M prepared on CPU 1.
# The embedded cluster's PostgreSQL is pinned to CPU 1 too (BENCH_PIN_PG=0
# leaves it free; a DATABASE_URL database is never touched): so under both
# runs PostgreSQL shares CPU 1 with the load generator, and strata's CPU 0
# is its own.  Figures: strata requests/s, pgbench transactions/s, and strata
# as a fraction of pgbench (1.00 = the HTTP server, Lua and the pool cost
# nothing on top of PostgreSQL).
#
# Fixture: bench_db_fixture in scripts/bench/lib.sh (100000 items, the
# benchmark user and its BENCH_DB_CHATS chats), created when missing and reused.
#   BENCH_DB_DROP_FIXTURE=1 removes all of it at the end.
#
# Environment:
#   BENCH_SECONDS          seconds per measured run (default 10)
#   BENCH_WARMUP           seconds of warm-up before each run (default 2)
#   BENCH_DB_CONNECTIONS   database connections: pgbench -c and strata's pool (default 4)
#   BENCH_CONNECTIONS      wrk's HTTP connections to strata (default 64)
#   BENCH_ROUNDS           rounds of the four runs; the table shows medians (default 3)
#   BENCH_DB_CHATS         chats of the benchmark user (default 200)
#   BENCH_PIN_PG           1 (default): pin the embedded PostgreSQL to the client CPU
#   DATABASE_URL           database to use (default: the embedded cluster,
#                          started if needed and then stopped again)
# Exits non-zero when something cannot start, when an answer is wrong, or
# when a run saw errors, non-2xx answers or failed transactions.
set -euo pipefail

BENCH_NAME=bench-db
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUN_SECONDS=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-2}
DBCONNS=${BENCH_DB_CONNECTIONS:-4}
CONNS=${BENCH_CONNECTIONS:-64}
ROUNDS=${BENCH_ROUNDS:-3}
CHATS=${BENCH_DB_CHATS:-200}
ITEMS=$BENCH_DB_ITEMS
for v in RUN_SECONDS:"$RUN_SECONDS" WARMUP:"$WARMUP" DBCONNS:"$DBCONNS" CONNS:"$CONNS" ROUNDS:"$ROUNDS" CHATS:"$CHATS"; do
  [[ ${v#*:} =~ ^[0-9]+$ ]] || die "${v%%:*} must be a whole number, got '${v#*:}'"
done
[ "$RUN_SECONDS" -ge 1 ] && [ "$DBCONNS" -ge 1 ] && [ "$CONNS" -ge 1 ] && [ "$ROUNDS" -ge 1 ] && [ "$CHATS" -ge 20 ] \
  || die "BENCH_SECONDS, BENCH_DB_CONNECTIONS, BENCH_CONNECTIONS and BENCH_ROUNDS must be at least 1, BENCH_DB_CHATS at least 20"

BENCH_USER=$BENCH_DB_USER

bench_init
bench_ensure \
  "command -v wrk:wrk" \
  "command -v pgbench:postgresql-15" \
  "command -v psql:postgresql-client-15" \
  "command -v taskset:util-linux" \
  "command -v curl:curl" \
  "command -v openssl:openssl"
bench_cpus
bench_database_url

# --- fixture -----------------------------------------------------------------
bench_db_fixture "$CHATS"
rls_on() { bench_psql -c 'alter table public."Chat" enable row level security'; }
rls_off() { bench_psql -c 'alter table public."Chat" disable row level security'; }
if [ "${BENCH_DB_DROP_FIXTURE:-}" = 1 ]; then
  # lib.sh's trap stops the processes; the fixture goes first.
  trap 'rls_on; bench_db_drop_fixture; bench_cleanup' EXIT
else
  trap 'rls_on; bench_cleanup' EXIT
fi

# --- strata ------------------------------------------------------------------
PG_CPUS="any CPU"
if [ "${BENCH_PIN_PG:-1}" = 1 ] && [ "$SERVER_CPU" != "$CLIENT_CPU" ] && bench_pin_postgres "$CLIENT_CPU"; then
  PG_CPUS="CPU $CLIENT_CPU"
fi
bench_db_token
TOKEN=$BENCH_DB_TOKEN
STRATA_PORT=$(bench_free_port)
LUA_DIR=$(bench_strata_lua_dir "$BENCH_DIR/db")
bench_start_strata "$STRATA_PORT" "$LUA_DIR" "$SERVER_CPU" \
  STRATA_DB_POOL_MIN="$DBCONNS" STRATA_DB_POOL_MAX="$DBCONNS" STRATA_RATE_LIMIT_USER_PER_MINUTE=0 \
  STRATA_JWT_SECRET="$STRATA_JWT_SECRET"
BASE=http://127.0.0.1:$STRATA_PORT
ITEM_URL=$BASE/bench/item/1
LIST_PATH=$BENCH_DB_LIST_PATH
LIST_URL=$BASE$LIST_PATH
bench_wait_http "$ITEM_URL" "$STRATA_PID" "$STRATA_LOG" "strata"

# --- right answers? ----------------------------------------------------------
bench_db_check_answers "$BASE"
a=$(curl -s -m 5 -o /dev/null -w '%{http_code} %{size_download}' "$LIST_URL")
say "the same list without a token: $a (the policy lets anon read nothing)"

# pgbench's statements, answered once through psql as a check.
a=$(bench_psql -c "select id, payload from strata_bench.bench_items where id = 4242")
[ "$a" = "4242|$(printf 4242 | md5sum | cut -d' ' -f1)" ] || die "the item query answered '$a'"
LIST_SQL=$BENCH_DIR/db_list.sql
a=$(bench_psql -v uid="$BENCH_USER" -v lim=20 -v off=0 -f <(sed "s/:uid/:'uid'/g" "$LIST_SQL"))
[ "$(grep -o '"title" *: *"strata-bench"' <<<"$a" | wc -l)" = 20 ] || die "scripts/bench/db_list.sql did not answer 20 chats: ${a:0:300}"

# pgbench doing what strata asks of PostgreSQL per request: the request's
# settings and the statement, in one pipeline and one implicit transaction.
# The settings statement is strata's own (SETTINGS_SQL in core/lua/lmod_pg.c,
# read from there so the two cannot drift), its $1..$7 (claims, sub, role,
# method, path, headers, SQL role) given as literals.
SETTINGS_SQL=$(sed -n '/SETTINGS_SQL\[\] =/,/;$/p' "$BENCH_ROOT/core/lua/lmod_pg.c" | grep -o '"[^"]*"' | tr -d '"\n')
[[ ( $SETTINGS_SQL == "select set_config"* || $SETTINGS_SQL == "select from (select set_config"* ) && $SETTINGS_SQL == *'$7'* ]] \
  || die "cannot read SETTINGS_SQL from core/lua/lmod_pg.c (got '$SETTINGS_SQL')"
as_strata_script() { # source-script role claims path out [sub]
  local src=$1 role=$2 claims=$3 path=$4 out=$5 sub=${6:-} sql=$SETTINGS_SQL i
  local values=("'$claims'" "'$sub'" "'$role'" "'GET'" "'$path'" "'{\"host\":\"127.0.0.1\",\"user-agent\":\"wrk\"}'" "'$role'")
  for i in 7 6 5 4 3 2 1; do sql=${sql//"\$$i"/${values[i - 1]}}; done
  {
    grep '^\\set' "$src" || true
    echo '\startpipeline'
    echo "$sql;"
    grep -v '^\\set' "$src"
    echo '\endpipeline'
  } >"$out"
}
ITEM_AS_STRATA=$BENCH_TMP/db_item_as_strata.sql
LIST_AS_STRATA=$BENCH_TMP/db_list_as_strata.sql
as_strata_script "$BENCH_DIR/db_item.sql" anon '{"role":"anon"}' /bench/item/1 "$ITEM_AS_STRATA"
as_strata_script "$LIST_SQL" authenticated "{\"sub\":\"$BENCH_USER\",\"role\":\"authenticated\"}" /rest/v1/Chat "$LIST_AS_STRATA" "$BENCH_USER"

# --- measure -----------------------------------------------------------------
# Each sets LINE: "rps=R errors=E" (+ latency for wrk).
run_wrk() { # seconds url [items]
  local secs=$1 url=$2 items=${3:-} out=$BENCH_TMP/wrk.out pid
  BENCH_DB_ITEMS=$items BENCH_AUTH="Bearer $TOKEN" taskset -c "$CLIENT_CPU" \
    wrk -t1 -c"$CONNS" -d"${secs}s" --timeout 5s -s "$BENCH_DIR/wrk_db.lua" "$url" >"$out" 2>&1 &
  pid=$!
  BENCH_PIDS+=("$pid")
  wait "$pid" || { cat "$out" >&2; die "wrk failed against $url"; }
  unset 'BENCH_PIDS[-1]'
  local l
  l=$(grep '^BENCH ' "$out") || { cat "$out" >&2; die "wrk printed no summary against $url"; }
  local errs=$(($(field non2xx "$l") + $(field connect "$l") + $(field read "$l") + $(field write "$l") + $(field timeout "$l")))
  LINE="rps=$(field rps "$l") errors=$errs p50_us=$(field p50_us "$l") p99_us=$(field p99_us "$l") requests=$(field requests "$l")"
}

run_pgbench() { # seconds script
  local secs=$1 script=$2 out=$BENCH_TMP/pgbench.out pid
  taskset -c "$CLIENT_CPU" pgbench -n -c "$DBCONNS" -j 1 -T "$secs" -M prepared -D uid="$BENCH_USER" -D lim=20 -D off=0 \
    -f "$script" "$BENCH_DATABASE_URL" >"$out" 2>&1 &
  pid=$!
  BENCH_PIDS+=("$pid")
  wait "$pid" || { cat "$out" >&2; die "pgbench failed ($script)"; }
  unset 'BENCH_PIDS[-1]'
  local tps failed lat
  tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$out")
  failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
  lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$out")
  [ -n "$tps" ] || { cat "$out" >&2; die "pgbench printed no tps ($script)"; }
  LINE="rps=$tps errors=${failed:-0} latency_avg_ms=$lat transactions=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")"
}

field() { sed -n "s/.* $1=\\([0-9.]*\\).*/\\1/p" <<<" $2"; }

# CPU time (clock ticks) used so far by a process and its threads, and the
# machine's busy and total ticks (all CPUs) from /proc/stat.
CLK_TCK=$(getconf CLK_TCK)
NCPU=$(nproc)
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}'; }
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat; }

declare -A RPS SCPU MBUSY
FAILED=0
say "measuring: ${ROUNDS} round(s) x 8 runs of ${RUN_SECONDS} s (+${WARMUP} s warm-up); $DBCONNS database connections;" \
  "strata on CPU ${SERVER_CPU} with wrk -t1 -c${CONNS} on CPU ${CLIENT_CPU}; pgbench -j 1 on CPU ${CLIENT_CPU};" \
  "PostgreSQL on $PG_CPUS; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((round = 1; round <= ROUNDS; round++)); do
  who="strata pgbench pgsettings"
  [ $((round % 2)) = 0 ] && who="pgsettings pgbench strata" # alternate who goes first
  for route in item list; do
    runs=$who
    [ "$route" = list ] && runs="$who strata_norls pgsettings_norls"
    for w in $runs; do
      [ "${w%_norls}" != "$w" ] && rls_off
      if [ "${w%_norls}" = strata ]; then
        if [ "$route" = item ]; then args=("$BASE/bench/item/1" "$ITEMS"); else args=("$LIST_URL"); fi
        [ "$WARMUP" -gt 0 ] && run_wrk "$WARMUP" "${args[@]}"
        read -r m0 t0 < <(machine_ticks)
        c0=$(cpu_ticks "$STRATA_PID")
        run_wrk "$RUN_SECONDS" "${args[@]}"
        c1=$(cpu_ticks "$STRATA_PID")
        read -r m1 t1 < <(machine_ticks)
        read -r cpu busy < <(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$(field requests "$LINE")" -v s="$RUN_SECONDS" \
          'BEGIN { printf "%.1f %.0f\n", d / hz * 1e6 / n, d / hz / s * 100 }')
        LINE="$LINE strata_cpu_us_per_req=$cpu strata_busy=$busy%"
        [ "$w" = strata ] && SCPU[$route]+="$cpu "
      else
        script=$BENCH_DIR/db_item.sql
        [ "$route" = list ] && script=$LIST_SQL
        [ "${w%_norls}" = pgsettings ] && { script=$ITEM_AS_STRATA; [ "$route" = list ] && script=$LIST_AS_STRATA; }
        [ "$WARMUP" -gt 0 ] && run_pgbench "$WARMUP" "$script"
        read -r m0 t0 < <(machine_ticks)
        run_pgbench "$RUN_SECONDS" "$script"
        read -r m1 t1 < <(machine_ticks)
      fi
      mb=$(awk -v b=$((m1 - m0)) -v t=$((t1 - t0)) 'BEGIN { printf "%.0f", (t > 0 ? b / t * 100 : 0) }')
      LINE="$LINE machine_busy=$mb%"
      MBUSY[$route.$w]+="$mb "
      printf '%s: round %d %-4s %-7s %s\n' "$BENCH_NAME" "$round" "$route" "$w" "$LINE" >&2
      errs=$(field errors "$LINE")
      if [ "${errs:-0}" -ne 0 ]; then
        say "round $round $route $w: $errs error(s), non-2xx answers or failed transactions"
        FAILED=1
      fi
      RPS[$route.$w]+="$(field rps "$LINE") "
      [ "${w%_norls}" != "$w" ] && rls_on
      kill -0 "$STRATA_PID" 2>/dev/null || { tail -n 30 "$STRATA_LOG" >&2; die "strata died during the run (log above)"; }
    done
  done
done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

echo
echo "strata vs pgbench on the same PostgreSQL, same SQL, $DBCONNS connections each, ${RUN_SECONDS} s per run$([ "$ROUNDS" -gt 1 ] && echo ", median of $ROUNDS rounds"):"
echo "strata: 1 worker on CPU $SERVER_CPU, pool min = max = $DBCONNS, wrk -t1 -c$CONNS on CPU $CLIENT_CPU;"
echo "pgbench -n -c $DBCONNS -j 1 -M prepared on CPU $CLIENT_CPU; PostgreSQL's backends on $PG_CPUS."
echo
printf '%-6s %-58s %11s %11s %6s %11s %6s   %14s %13s %13s\n' route "" "strata rps" "pgbench tps" ratio \
  "+settings" ratio "strata CPU/req" "machine busy" "machine busy"
printf '%-6s %-58s %11s %11s %6s %11s %6s   %14s %13s %13s\n' "" "" "" "" "" "" "" "" "(strata run)" "(pgbench run)"
for route in item list; do
  s=$(median "${RPS[$route.strata]}") p=$(median "${RPS[$route.pgbench]}") q=$(median "${RPS[$route.pgsettings]}")
  what="GET /bench/item/:id (Lua, db.query by primary key)"
  [ "$route" = list ] && what="GET /rest/v1/Chat?user_id=eq.X&order=createdAt.desc&limit=20"
  c=$(median "${SCPU[$route]}") ms=$(median "${MBUSY[$route.strata]}") mp=$(median "${MBUSY[$route.pgbench]}")
  awk -v r="$route" -v w="$what" -v s="$s" -v p="$p" -v q="$q" -v c="$c" -v ms="$ms" -v mp="$mp" 'BEGIN {
    printf "%-6s %-58s %11.0f %11.0f %6.2f %11.0f %6.2f   %11.1f us %12.0f%% %12.0f%%\n", r, w, s, p, (p > 0 ? s / p : 0),
      q, (q > 0 ? s / q : 0), c, ms, mp }'
done
so=$(median "${RPS[list.strata_norls]}") qo=$(median "${RPS[list.pgsettings_norls]}")
sl=$(median "${RPS[list.strata]}") ql=$(median "${RPS[list.pgsettings]}")
awk -v s="$sl" -v q="$ql" -v so="$so" -v qo="$qo" 'BEGIN {
  printf "%-6s %-58s %11.0f %11s %6s %11.0f %6.2f\n", "list", "  the same with row level security off on \"Chat\"", so, "", "", qo, (qo > 0 ? so / qo : 0)
  printf "%-6s %-58s %10.1f%% %11s %6s %10.1f%%\n", "", "  row level security costs (1 - on / off)", (so > 0 ? (1 - s / so) * 100 : 0), "", "",
    (qo > 0 ? (1 - q / qo) * 100 : 0) }'
echo
echo "ratio = strata requests/s / pgbench transactions/s (1.00: strata costs nothing on top of PostgreSQL)."
echo "pgbench tps: the statement alone; +settings: pgbench also sends the request settings strata applies to"
echo "every statement (claims, method, path, headers, SET LOCAL ROLE) in the same pipeline, as strata does."
echo "strata CPU/req: strata's own CPU time per request (its one worker; 100% of a CPU = 1 s/s)."
echo "machine busy: all $NCPU CPUs, every process (PostgreSQL, strata or pgbench, wrk, and anything else"
echo "running on the machine); near 100%, the runs were CPU-bound and the ratio compares CPU costs."

[ "$FAILED" = 0 ] || die "some runs saw errors, non-2xx answers or failed transactions (see above): the figures are not valid"
