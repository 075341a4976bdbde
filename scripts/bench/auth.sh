#!/usr/bin/env bash
# scripts/bench/auth.sh (make bench-auth): /auth/v1 under load.
#
#  1. a cheap route (GET /v1/hello/x) alone: its throughput and p99 with
#     AUTH_CHEAP_CONNECTIONS connections;
#  2. the same while AUTH_CLIENTS clients sign in with passwords (bcrypt at
#     the default cost 10, on the bcrypt threads): sign-ins per second, and
#     the cheap route's p99 next to step 1's (PASS when it grew at most
#     AUTH_MAX_SLOWDOWN times: bcrypt never runs on a worker's loop);
#  3. access-token verification with the revoked-session check: the cheap
#     route with a real access token (HS256, with a session_id looked up in
#     a set holding AUTH_REVOKED ended sessions) next to the same without a
#     token, as requests per second of each.
# Each phase lasts AUTH_SECONDS.  The server gets all CPUs (bcrypt threads
# need them); wrk shares them, so the figures are ratios of one run.
#
# Environment: AUTH_SECONDS (5), AUTH_CLIENTS (50), AUTH_USERS (50),
# AUTH_CHEAP_CONNECTIONS (4), AUTH_REVOKED (10000), AUTH_MAX_SLOWDOWN (2),
# DATABASE_URL (else the embedded cluster, migrated).
set -euo pipefail

BENCH_NAME=bench-auth
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SECONDS_EACH=${AUTH_SECONDS:-5}
CLIENTS=${AUTH_CLIENTS:-50}
USERS=${AUTH_USERS:-50}
CHEAP=${AUTH_CHEAP_CONNECTIONS:-4}
REVOKED=${AUTH_REVOKED:-10000}
MAX_SLOWDOWN=${AUTH_MAX_SLOWDOWN:-2}
for v in AUTH_SECONDS:"$SECONDS_EACH" AUTH_CLIENTS:"$CLIENTS" AUTH_USERS:"$USERS" \
  AUTH_CHEAP_CONNECTIONS:"$CHEAP" AUTH_REVOKED:"$REVOKED" AUTH_MAX_SLOWDOWN:"$MAX_SLOWDOWN"; do
  [[ ${v#*:} =~ ^[0-9]+$ ]] && [ "${v#*:}" -ge 1 ] || die "${v%%:*} must be a whole number >= 1, got '${v#*:}'"
done

bench_init
bench_ensure "command -v wrk:wrk" "command -v curl:curl" "command -v psql:postgresql-client-15"
bench_database_url migrate

# The users (bcrypt cost 10, as a Supabase export has them) and the ended
# sessions, made once and reused.
say "fixture: $USERS users, $REVOKED ended sessions"
bench_psql -c "insert into auth.users (id, aud, role, email, encrypted_password, email_confirmed_at)
  select gen_random_uuid(), 'authenticated', 'authenticated', 'bench-auth-' || i || '@bench.invalid',
         extensions.crypt('bench-password', extensions.gen_salt('bf', 10)), now()
  from generate_series(1, $USERS) i
  where not exists (select 1 from auth.users u where u.email = 'bench-auth-' || i || '@bench.invalid')" >/dev/null
bench_psql -c "insert into auth.revoked_sessions (session_id)
  select gen_random_uuid() from generate_series(1, greatest(0, $REVOKED - (select count(*) from auth.revoked_sessions)))" >/dev/null

export STRATA_JWT_SECRET
STRATA_JWT_SECRET=$(openssl rand -hex 32)
PORT=$(bench_free_port)
BASE=http://127.0.0.1:$PORT
bench_start_strata "$PORT" "$BENCH_ROOT/lua" "0-$(($(nproc) - 1))" STRATA_WORKERS=0 \
  STRATA_AUTH_RATE_LIMIT_ADDRESS=0 STRATA_AUTH_RATE_LIMIT_EMAIL=0 STRATA_RATE_LIMIT_USER_PER_MINUTE=0
bench_wait_http "$BASE/ready" "$STRATA_PID" "$STRATA_LOG" "strata" 30

TOKEN=$(curl -s -m 10 -H 'Content-Type: application/json' \
  -d '{"email":"bench-auth-1@bench.invalid","password":"bench-password"}' \
  "$BASE/auth/v1/token?grant_type=password" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
[ -n "$TOKEN" ] || die "the sign-in of bench-auth-1 did not answer a token"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$BASE/v1/hello/x")" = 200 ] \
  || die "GET /v1/hello/x with the token does not answer 200"

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" "$2"; }
cheap() { # out-file [header]
  wrk -t1 -c"$CHEAP" -d"${SECONDS_EACH}s" --timeout 5s -s "$BENCH_DIR/wrk_report.lua" ${2:+-H "$2"} \
    "$BASE/v1/hello/x" >"$1" 2>&1
}

say "1/3 cheap route alone (${SECONDS_EACH}s, $CHEAP connections)"
cheap "$BENCH_TMP/alone.out"
say "2/3 cheap route while $CLIENTS clients sign in"
AUTH_USERS=$USERS wrk -t1 -c"$CLIENTS" -d"$((SECONDS_EACH + 2))s" --timeout 10s -s "$BENCH_DIR/auth_signin.lua" \
  "$BASE/auth/v1/token?grant_type=password" >"$BENCH_TMP/signin.out" 2>&1 &
SIGNIN_PID=$!
BENCH_PIDS+=("$SIGNIN_PID")
sleep 1
cheap "$BENCH_TMP/loaded.out"
wait "$SIGNIN_PID" || true
say "3/3 cheap route with an access token (revocation set of $REVOKED) and without"
cheap "$BENCH_TMP/token.out" "Authorization: Bearer $TOKEN"
cheap "$BENCH_TMP/anon.out"

for f in alone loaded signin token anon; do
  grep -q '^BENCH ' "$BENCH_TMP/$f.out" || { cat "$BENCH_TMP/$f.out" >&2; die "wrk printed no summary ($f)"; }
done
p99_alone=$(field p99_us "$BENCH_TMP/alone.out")
p99_loaded=$(field p99_us "$BENCH_TMP/loaded.out")
signin_rps=$(field rps "$BENCH_TMP/signin.out")
signin_non2xx=$(field non2xx "$BENCH_TMP/signin.out")
signin_p99=$(field p99_us "$BENCH_TMP/signin.out")
token_rps=$(field rps "$BENCH_TMP/token.out")
anon_rps=$(field rps "$BENCH_TMP/anon.out")
slowdown=$(awk -v a="$p99_alone" -v b="$p99_loaded" 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }')
ratio=$(awk -v a="$anon_rps" -v b="$token_rps" 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }')
printf 'sign-ins: %s/s with %s clients (p99 %s us, non-2xx %s)\n' "$signin_rps" "$CLIENTS" "$signin_p99" "$signin_non2xx"
printf 'cheap route p99: %s us alone, %s us during sign-ins: x%s (limit x%s)\n' "$p99_alone" "$p99_loaded" "$slowdown" "$MAX_SLOWDOWN"
printf 'cheap route with an access token (revocation check, %s ended sessions): %s rps, %s of the %s rps without a token\n' \
  "$REVOKED" "$token_rps" "$ratio" "$anon_rps"
if awk -v s="$slowdown" -v m="$MAX_SLOWDOWN" 'BEGIN { exit !(s <= m) }' && [ "${signin_non2xx:-1}" = 0 ]; then
  echo "bench-auth: PASS"
else
  echo "bench-auth: FAIL"
  exit 1
fi
