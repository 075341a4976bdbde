# scripts/bench/lib.sh: shared by the scripts of scripts/bench/ (sourced,
# not run).  Starting and stopping what a benchmark needs, and stopping all
# of it on exit; the database fixture of db.sh and callgrind.sh.
#
# The caller sets BENCH_NAME (message prefix) before sourcing, then calls
# bench_init, which creates BENCH_TMP and installs the exit trap.

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_DIR=$BENCH_ROOT/scripts/bench
BENCH_PIDS=()          # processes we started, stopped on exit (last first)
BENCH_STRATA_WRAPPER=() # see bench_start_strata
BENCH_DB_STARTED=0     # we started the embedded cluster: stop it on exit
BENCH_TMP=

say() { printf '%s: %s\n' "$BENCH_NAME" "$*" >&2; }
die() { printf '%s: error: %s\n' "$BENCH_NAME" "$*" >&2; exit 1; }

# Stops one process we started: TERM, up to 5 s, then KILL.  Only while it
# is still our child, so that a recycled process id is never signalled.
bench_stop_pid() {
  local pid=$1 i
  if [ "$(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ')" != "$$" ]; then
    wait "$pid" 2>/dev/null || true
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "process $pid did not stop on TERM; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

bench_cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  set +e # stop everything, whatever fails on the way
  for ((i = ${#BENCH_PIDS[@]} - 1; i >= 0; i--)); do
    bench_stop_pid "${BENCH_PIDS[i]}"
  done
  [ -n "${BENCH_PG_PINNED:-}" ] && bench_pin_postgres "0-$(($(nproc) - 1))" >/dev/null 2>&1
  if [ "$BENCH_DB_STARTED" = 1 ]; then
    "$BENCH_ROOT/scripts/db" stop >/dev/null 2>&1 || say "could not stop the embedded database (scripts/db stop)"
  fi
  if [ -n "$BENCH_TMP" ] && [ -d "$BENCH_TMP" ] && [ -z "${BENCH_KEEP_TMP:-}" ]; then
    rm -rf "$BENCH_TMP"
  fi
  exit "$rc"
}

bench_init() {
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  BENCH_TMP=$(mktemp -d "/tmp/strata-${BENCH_NAME}.XXXXXX") || die "cannot create a temporary directory"
  # nginx's worker drops root for "nobody": it must be able to read in here.
  chmod 755 "$BENCH_TMP"
  cd "$BENCH_ROOT"
}

# Installs the Debian packages named (each as "test:package", split at the last colon), only those
# whose test fails; quiet when everything is present.
bench_ensure() {
  local missing=() item test pkg
  for item in "$@"; do
    test=${item%:*}
    pkg=${item##*:}
    eval "$test" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      die "missing packages: ${missing[*]}; run as root (or with passwordless sudo), or: sudo apt-get install -y ${missing[*]}"
    fi
  fi
  say "installing ${missing[*]}"
  local log=$BENCH_TMP/apt.log
  # Installing nginx may start the distribution's nginx service (where no
  # policy-rc.d forbids it): we stop it again if it was not running before.
  local service_before=0
  [ -s /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null && service_before=1
  if ! DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -qq >>"$log" 2>&1 || true
    if ! DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
      tail -n 30 "$log" >&2
      die "apt-get install ${missing[*]} failed (log above)"
    fi
  fi
  if [ "$service_before" = 0 ] && [ -s /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
    say "stopping the nginx service the package installation started"
    "${sudo[@]}" systemctl stop nginx >/dev/null 2>&1 || "${sudo[@]}" invoke-rc.d nginx stop >/dev/null 2>&1 || true
  fi
  for item in "$@"; do
    test=${item%:*}
    eval "$test" >/dev/null 2>&1 || die "package ${item##*:} was installed but '$test' still fails"
  done
}

# A TCP port on 127.0.0.1 nobody listens on (below the ephemeral range).
bench_free_port() {
  local port i
  for i in $(seq 1 200); do
    port=$((20000 + RANDOM % 12000))
    if ! ss -Htln 2>/dev/null | awk '{print $4}' | grep -q ":$port\$"; then
      echo "$port"
      return 0
    fi
  done
  die "no free TCP port found"
}

# DATABASE_URL, or the embedded cluster's (started when not running; it is
# then stopped on exit).  Lua routes do not query it: strata only needs a
# database URL to start, so no migration is run here unless $1 is
# "migrate" (then the migrations not yet applied are, on either database).
bench_database_url() {
  local migrate=${1:-}
  if [ -n "${DATABASE_URL:-}" ]; then
    BENCH_DATABASE_URL=$DATABASE_URL
    return 0
  fi
  if ! "$BENCH_ROOT/scripts/db" status >/dev/null 2>&1; then
    say "starting the embedded database (scripts/db start)"
    "$BENCH_ROOT/scripts/db" start >"$BENCH_TMP/db.log" 2>&1 || { cat "$BENCH_TMP/db.log" >&2; die "the embedded database could not start"; }
    BENCH_DB_STARTED=1
  fi
  BENCH_DATABASE_URL=$("$BENCH_ROOT/scripts/db" url)
  if [ "$migrate" = migrate ]; then
    "$BENCH_ROOT/scripts/db" migrate >"$BENCH_TMP/migrate.log" 2>&1 \
      || { cat "$BENCH_TMP/migrate.log" >&2; die "the migrations failed (scripts/db migrate)"; }
  fi
}

bench_psql() { psql -X -q -v ON_ERROR_STOP=1 -tA -d "$BENCH_DATABASE_URL" "$@"; }

# A throwaway cluster under BENCH_TMP, started and migrated (stopped by
# the cleanup, scripts/db stop reading STRATA_VAR_DIR, before BENCH_TMP
# goes), then BENCH_DATABASE_URL set to it.
bench_throwaway_database() {
  export STRATA_VAR_DIR=$BENCH_TMP/var
  say "starting a throwaway database in $STRATA_VAR_DIR and migrating it"
  BENCH_DB_STARTED=1
  { "$BENCH_ROOT/scripts/db" start && "$BENCH_ROOT/scripts/db" migrate; } >"$BENCH_TMP/db.log" 2>&1 \
    || { cat "$BENCH_TMP/db.log" >&2; die "the throwaway database could not start"; }
  bench_database_url
}

# --- the database fixture of scripts/bench/db.sh and callgrind.sh ------------
# Schema strata_bench (not one the REST API exposes, not checked by
# scripts/verify-schema.sh): table bench_items(id int primary key, payload
# text), BENCH_DB_ITEMS rows (also in scripts/bench/db_item.sql), readable
# by the API roles (requests' statements run as the caller's role); the
# auth.users row BENCH_DB_USER (strata-bench@bench.invalid) and CHATS rows
# of "Chat" owned by it, titled 'strata-bench'.  Created when missing and
# reused; nothing else is touched.
BENCH_DB_ITEMS=100000
BENCH_DB_USER=b0000000-0000-4000-8000-00000000be9c

bench_db_fixture() { # chats
  local chats=$1 n_items n_chats
  say "preparing the fixture (strata_bench.bench_items, $chats chats of user $BENCH_DB_USER)"
  bench_psql -v items="$BENCH_DB_ITEMS" -v uid="$BENCH_DB_USER" -v chats="$chats" >"$BENCH_TMP/fixture.log" 2>&1 <<'SQL' \
    || { cat "$BENCH_TMP/fixture.log" >&2; die "could not create the fixture (is the database migrated? scripts/db migrate)"; }
create schema if not exists strata_bench;
create table if not exists strata_bench.bench_items (id int primary key, payload text not null);
-- Requests' statements run as the caller's API role (here anon).
grant usage on schema strata_bench to anon, authenticated, service_role;
grant select on strata_bench.bench_items to anon, authenticated, service_role;
insert into strata_bench.bench_items (id, payload)
  select g, md5(g::text) from generate_series(1, :items) g
  where (select count(*) from strata_bench.bench_items) <> :items
  on conflict (id) do nothing;
insert into auth.users (id, email) values (:'uid', 'strata-bench@bench.invalid') on conflict do nothing;
-- Exactly :chats chats for the user, made again only when the count differs.
delete from "Chat" where user_id = :'uid'
  and (select count(*) from "Chat" where user_id = :'uid' and title = 'strata-bench') <> :chats;
insert into "Chat" (user_id, title, "createdAt")
  select :'uid', 'strata-bench', timestamp '2024-01-01' + g * interval '1 minute'
  from generate_series(1, :chats) g
  where not exists (select 1 from "Chat" where user_id = :'uid');
analyze strata_bench.bench_items;
analyze "Chat";
SQL
  n_items=$(bench_psql -c "select count(*) from strata_bench.bench_items")
  n_chats=$(bench_psql -c "select count(*) from \"Chat\" where user_id = '$BENCH_DB_USER'")
  [ "$n_items" = "$BENCH_DB_ITEMS" ] && [ "$n_chats" = "$chats" ] \
    || die "fixture: $n_items items (want $BENCH_DB_ITEMS), $n_chats chats (want $chats)"
}

bench_db_drop_fixture() {
  bench_psql -c "drop schema if exists strata_bench cascade" \
    -c "delete from \"Chat\" where user_id = '$BENCH_DB_USER'" \
    -c "delete from auth.users where id = '$BENCH_DB_USER'" >/dev/null 2>&1 \
    || say "could not remove the fixture"
}

# A fresh JWT secret (exported as STRATA_JWT_SECRET, which strata must be
# given) and BENCH_DB_TOKEN, a day's token of BENCH_DB_USER.
bench_db_token() {
  STRATA_JWT_SECRET=$(openssl rand -hex 32)
  export STRATA_JWT_SECRET
  BENCH_DB_TOKEN=$("$BENCH_ROOT/scripts/token" --sub "$BENCH_DB_USER" --role authenticated --exp-in 86400)
}

# The two database routes of the fixture, relative to strata's base URL:
# a Lua route (scripts/bench/db/routes/bench_db.lua) and a REST list
# through the "Chat" table's row policy (with BENCH_DB_TOKEN).
BENCH_DB_LIST_PATH="/rest/v1/Chat?user_id=eq.$BENCH_DB_USER&order=createdAt.desc&limit=20"

# Dies unless strata at base URL $1 answers both routes rightly.
bench_db_check_answers() {
  local base=$1 a status body n first want
  a=$(curl -s -m 5 -w ' %{http_code}' "$base/bench/item/4242")
  say "GET /bench/item/4242: $a"
  [ "$a" = "{\"id\":4242,\"payload\":\"$(printf 4242 | md5sum | cut -d' ' -f1)\"} 200" ] \
    || [ "$a" = "{\"payload\":\"$(printf 4242 | md5sum | cut -d' ' -f1)\",\"id\":4242} 200" ] \
    || die "GET /bench/item/4242 answered '$a'"
  a=$(curl -s -m 5 -w '\n%{http_code}' -H "Authorization: Bearer $BENCH_DB_TOKEN" "$base$BENCH_DB_LIST_PATH")
  status=${a##*$'\n'} body=${a%$'\n'*}
  n=$(grep -o '"title" *: *"strata-bench"' <<<"$body" | wc -l)
  say "GET $BENCH_DB_LIST_PATH: $status, $n chats, ${#body} bytes"
  [ "$status" = 200 ] && [ "$n" = 20 ] || die "the list answered $status with $n chats (want 200 and 20): ${body:0:300}"
  first=$(grep -o '"createdAt" *: *"[^"]*"' <<<"$body" | head -1)
  want=$(bench_psql -c "select to_json(max(\"createdAt\")) from \"Chat\" where user_id = '$BENCH_DB_USER'")
  [ "${first#*: }" = "$want" ] || [ "${first#*:}" = "$want" ] || die "the list does not start with the newest chat ($first, want $want)"
}

# Pins the embedded cluster (its postmaster, whose new backends inherit the
# mask, and the processes it already has) to CPU list $1, so PostgreSQL
# does not compete with the server under test for its CPU.  Does nothing
# (returns 1) for a DATABASE_URL database; cleanup undoes it.
bench_pin_postgres() {
  local cpus=$1 pid child
  [ -z "${DATABASE_URL:-}" ] || return 1
  pid=$(head -1 "$("$BENCH_ROOT/scripts/db" dir)/pg/postmaster.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  taskset -a -p -c "$cpus" "$pid" >/dev/null || return 1
  for child in $(pgrep -P "$pid"); do
    taskset -a -p -c "$cpus" "$child" >/dev/null 2>&1 || true # may have exited meanwhile
  done
  BENCH_PG_PINNED=1
}

# A Lua directory for strata: the repository's lua/ plus the given extra
# trees copied over it.  Prints its path.
bench_strata_lua_dir() {
  local dir=$BENCH_TMP/strata-lua extra
  mkdir -p "$dir"
  cp -r "$BENCH_ROOT/lua/." "$dir/"
  for extra in "$@"; do
    cp -r "$extra/." "$dir/"
  done
  echo "$dir"
}

# Waits until `curl URL` answers 200, the process PID living; else dies
# showing LOG after SECONDS (default 15).
bench_wait_http() {
  local url=$1 pid=$2 log=$3 what=$4 seconds=${5:-15} i code
  for i in $(seq 1 $((seconds * 10))); do
    kill -0 "$pid" 2>/dev/null || { tail -n 30 "$log" >&2; die "$what exited at start (log above)"; }
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url" 2>/dev/null || true)
    [ "$code" = 200 ] && return 0
    sleep 0.1
  done
  tail -n 30 "$log" >&2
  die "$what did not answer 200 on $url within $seconds s (last status ${code:-none}; log above)"
}

# Starts bin/strata (one worker, no access log) on PORT with LUA_DIR,
# pinned to CPU set CPUS; extra "NAME=value" arguments go to its
# environment.  BENCH_STRATA_BIN names another binary, and the command in
# the array BENCH_STRATA_WRAPPER (valgrind, say) runs it.  Sets STRATA_PID
# and STRATA_LOG.
bench_start_strata() {
  local port=$1 lua_dir=$2 cpus=$3 bin=${BENCH_STRATA_BIN:-$BENCH_ROOT/bin/strata}
  shift 3
  [ -x "$bin" ] || die "$bin is missing: run 'make all' first"
  STRATA_LOG=$BENCH_TMP/strata.log
  env DATABASE_URL="$BENCH_DATABASE_URL" STRATA_LISTEN="127.0.0.1:$port" STRATA_WORKERS=1 \
    STRATA_LUA_DIR="$lua_dir" STRATA_ACCESS_LOG=off STRATA_RATE_LIMIT_ANON_PER_MINUTE=0 "$@" \
    taskset -c "$cpus" "${BENCH_STRATA_WRAPPER[@]}" "$bin" >"$STRATA_LOG" 2>&1 &
  STRATA_PID=$!
  BENCH_PIDS+=("$STRATA_PID")
}

# The CPUs for the server and for the load generator: 0 and 1 when the
# machine has two or more, else both on 0 (with a warning).
bench_cpus() {
  local n
  n=$(nproc 2>/dev/null || echo 1)
  if [ "$n" -ge 2 ]; then
    SERVER_CPU=0
    CLIENT_CPU=1
  else
    say "warning: one CPU only: server and load generator share it"
    SERVER_CPU=0
    CLIENT_CPU=0
  fi
}
