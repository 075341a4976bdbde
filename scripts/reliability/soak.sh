#!/usr/bin/env bash
# scripts/reliability/soak.sh (`make soak`): SOAK_MINUTES (default 60) of
# mixed traffic against one strata (default workers) on a throwaway
# database, with logging on and a Lua reload every minute; the traffic,
# the per-window report (SOAK_WINDOW_S, default 300) and the PASS/FAIL
# lines are scripts/reliability/soak.py's.  The last line is
# "N passed, N failed".  STRATA_BIN names another binary.
set -euo pipefail

BENCH_NAME=soak
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../bench/lib.sh"

MINUTES=${SOAK_MINUTES:-60}
WINDOW=${SOAK_WINDOW_S:-300}
[[ $MINUTES =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "SOAK_MINUTES must be a number, got '$MINUTES'"
[[ $WINDOW =~ ^[1-9][0-9]*$ ]] || die "SOAK_WINDOW_S must be a whole number of seconds, got '$WINDOW'"
BIN=${STRATA_BIN:-$BENCH_ROOT/bin/strata}
[ -x "$BIN" ] || die "$BIN is missing: run 'make all' first"

bench_init
bench_ensure "command -v psql:postgresql-client-15" "command -v python3:python3" "command -v openssl:openssl"
bench_throwaway_database

STRATA_JWT_SECRET=$(openssl rand -hex 32)
export STRATA_JWT_SECRET
uid() { python3 -c 'import uuid; print(uuid.uuid4())'; }
CEO=$(uid) WS=$(uid) PROJECT=$(uid) AGENT=$(uid)
HASH='$2a$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW'
# Logging on (every category), the AI agent's limits raised, an AgentFlow
# company with one agent, a broker value.
read -r ORG BROKER < <(bench_psql -F ' ' <<SQL
update admin_config set config_data = config_data || '{"user_activity_logging_enabled": true, "agent_activity_logging_enabled": true}'
 where config_key = 'logging_settings';
update admin_config set config_data = config_data || '{"rateLimit": {"perMinute": 1000000, "perHour": 10000000, "perDay": 100000000}}'
 where config_key = 'chat_model_agent_google';
insert into agentflow.users(id, email, password_hash, name) values ('$CEO', 'ceo-$CEO@example.test', '$HASH', 'CEO');
insert into agentflow.workspaces(id, owner_id, name, slug) values ('$WS', '$CEO', 'Soak', 'soak');
insert into agentflow.projects(id, workspace_id, name, slug) values ('$PROJECT', '$WS', 'Soak', 'soak');
insert into agentflow.agents(id, workspace_id, project_id, agent_level, agent_code, name, role_title, api_key_hash)
  values ('$AGENT', '$WS', '$PROJECT', 'project', 'soak-dev', 'Soak Dev', 'Developer', '$HASH');
with o as (insert into organizations(name, slug) values ('soak', 'soak') returning id),
     b as (insert into data_broker(name) values ('soak') returning id),
     v as (insert into broker_values(broker_id, organization_id, value) select b.id, o.id, '"soak"' from b, o)
select o.id, b.id from o, b;
SQL
)

python3 "$BENCH_ROOT/scripts/bench/ai_bench.py" fake "$BENCH_TMP/fake.port" 20 20 2>"$BENCH_TMP/fake.log" &
BENCH_PIDS+=($!)
for _ in $(seq 1 50); do [ -s "$BENCH_TMP/fake.port" ] && break; sleep 0.1; done
[ -s "$BENCH_TMP/fake.port" ] || die "the fake provider did not start"

# The users' access tokens outlive the soak (they are signed in once).
JWT_EXP=$(awk -v m="$MINUTES" 'BEGIN { printf "%d", m * 60 + 600 }')
LUA_DIR=$(bench_strata_lua_dir)
PORT=$(bench_free_port)
STRATA_LOG=$BENCH_TMP/strata.log
env DATABASE_URL="$BENCH_DATABASE_URL" STRATA_LISTEN="127.0.0.1:$PORT" STRATA_LUA_DIR="$LUA_DIR" \
  STRATA_ACCESS_LOG="$BENCH_TMP/access.log" STRATA_RATE_LIMIT_ANON_PER_MINUTE=0 STRATA_RATE_LIMIT_USER_PER_MINUTE=0 \
  STRATA_AUTH_RATE_LIMIT_ADDRESS=0 STRATA_AUTH_RATE_LIMIT_EMAIL=0 STRATA_AUTH_JWT_EXP="$JWT_EXP" \
  STRATA_GOOGLE_BASE_URL="http://127.0.0.1:$(cat "$BENCH_TMP/fake.port")" "$BIN" >"$STRATA_LOG" 2>&1 &
STRATA_PID=$!
BENCH_PIDS+=("$STRATA_PID")
bench_wait_http "http://127.0.0.1:$PORT/ready" "$STRATA_PID" "$STRATA_LOG" strata

EMAIL="soak-$(openssl rand -hex 4)@example.test" PASSWORD=soak-secret-pw
signup=$(curl -s -m 10 -X POST "http://127.0.0.1:$PORT/auth/v1/signup" -H 'Content-Type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}")
read -r USER_TOKEN USER_ID < <(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["access_token"], d["user"]["id"])' "$signup") \
  || die "sign-up failed: $signup"
signup=$(curl -s -m 10 -X POST "http://127.0.0.1:$PORT/auth/v1/signup" -H 'Content-Type: application/json' \
  -d "{\"email\":\"rpc-$EMAIL\",\"password\":\"$PASSWORD\"}")
RPC_TOKEN=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["access_token"])' "$signup") \
  || die "sign-up failed: $signup"
python3 - "$BENCH_TMP/soak.json" <<PY
import json, sys
json.dump({"port": $PORT, "pid": $STRATA_PID, "db": "$BENCH_DATABASE_URL", "lua_dir": "$LUA_DIR",
           "minutes": float("$MINUTES"), "window_s": $WINDOW, "user_token": "$USER_TOKEN", "user_id": "$USER_ID", "rpc_token": "$RPC_TOKEN",
           "service_token": "$("$BENCH_ROOT/scripts/token" --role service_role --exp-in 86400)",
           "agent_token": "$("$BENCH_ROOT/scripts/token" --sub "$AGENT" --claims "{\"agent_id\":\"$AGENT\"}" --exp-in 86400)",
           "email": "$EMAIL", "password": "$PASSWORD", "project": "$PROJECT", "org": "$ORG", "broker": "$BROKER"},
          open(sys.argv[1], "w"))
PY
say "soaking for $MINUTES min (windows of $WINDOW s) on port $PORT"
rc=0
python3 "$BENCH_ROOT/scripts/reliability/soak.py" "$BENCH_TMP/soak.json" || rc=$?
if [ "$rc" != 0 ]; then say "strata's log (errors):"; grep -E '"level":"(error|warn)"' "$STRATA_LOG" | tail -n 20 >&2 || true; fi
exit "$rc"
