# scripts/bench/lib.sh: shared by scripts/bench/run.sh and
# scripts/bench/reload_under_load.sh (sourced, not run).  Starting and
# stopping what a benchmark needs, and stopping all of it on exit.
#
# The caller sets BENCH_NAME (message prefix) before sourcing, then calls
# bench_init, which creates BENCH_TMP and installs the exit trap.

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_DIR=$BENCH_ROOT/scripts/bench
BENCH_PIDS=()          # processes we started, stopped on exit (last first)
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
# database URL to start, so no migration is run here.
bench_database_url() {
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
}

# Pins the embedded cluster (its postmaster, whose new backends inherit the
# mask, and the processes it already has) to CPU list $1, so PostgreSQL
# does not compete with the server under test for its CPU.  Does nothing
# (returns 1) for a DATABASE_URL database; cleanup undoes it.
bench_pin_postgres() {
  local cpus=$1 pid child
  [ -z "${DATABASE_URL:-}" ] || return 1
  pid=$(head -1 "${STRATA_VAR_DIR:-$BENCH_ROOT/var}/pg/postmaster.pid" 2>/dev/null) || return 1
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
# showing LOG.
bench_wait_http() {
  local url=$1 pid=$2 log=$3 what=$4 i code
  for i in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || { tail -n 30 "$log" >&2; die "$what exited at start (log above)"; }
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url" 2>/dev/null || true)
    [ "$code" = 200 ] && return 0
    sleep 0.1
  done
  tail -n 30 "$log" >&2
  die "$what did not answer 200 on $url within 15 s (last status ${code:-none}; log above)"
}

# Starts bin/strata (one worker, no access log) on PORT with LUA_DIR,
# pinned to CPU set CPUS; extra "NAME=value" arguments go to its
# environment.  Sets STRATA_PID and STRATA_LOG.
bench_start_strata() {
  local port=$1 lua_dir=$2 cpus=$3
  shift 3
  [ -x "$BENCH_ROOT/bin/strata" ] || die "bin/strata is missing: run 'make all' first"
  STRATA_LOG=$BENCH_TMP/strata.log
  env DATABASE_URL="$BENCH_DATABASE_URL" STRATA_LISTEN="127.0.0.1:$port" STRATA_WORKERS=1 \
    STRATA_LUA_DIR="$lua_dir" STRATA_ACCESS_LOG=off STRATA_RATE_LIMIT_ANON_PER_MINUTE=0 "$@" \
    taskset -c "$cpus" "$BENCH_ROOT/bin/strata" >"$STRATA_LOG" 2>&1 &
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
