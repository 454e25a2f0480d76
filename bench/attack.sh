#!/usr/bin/env bash
# Issue 13's "done when", measured on the release binary in production mode: /healthz and the
# session check while ten clients send the worst documents, while ten clients keep trickling
# headers on many connections, and how long SIGTERM takes while the documents keep coming.
#
#   bench/attack.sh                    # 10 s per scenario, PostgreSQL and SQLite
#   DURATION=5 BACKENDS=sqlite bench/attack.sh
#
# Environment: DURATION (seconds per scenario, default 10), BACKENDS (default "postgres sqlite"),
# SCENARIOS (default "idle documents slow-headers"; the SIGTERM measurement follows them),
# BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres), SLOW_CONNS (connections per
# slow-header client, default 500), SERVER_NOFILE (default 1024), SKIP_BUILD=1, CARGO_TARGET_DIR.
# Needs: cargo, python3, curl, jq, psql.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
SCENARIOS=${SCENARIOS:-"idle documents slow-headers"}
BACKENDS=${BACKENDS:-"postgres sqlite"}
BENCH_PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PG_BASE=${BENCH_PG_URL%/*}
BIN="${CARGO_TARGET_DIR:-target}/release/apexkit"
export PORT=${PORT:-47071}
WORK=$(mktemp -d)
SERVER_PID=""
PG_DBS=()

cleanup() {
  if [[ -n "$SERVER_PID" ]]; then kill -9 "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  for db in "${PG_DBS[@]}"; do psql -q "$BENCH_PG_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

for tool in python3 curl jq psql; do
  command -v "$tool" >/dev/null || { echo "attack: $tool is required" >&2; exit 1; }
done
# The slow-header clients hold thousands of sockets. The server starts with a soft open-file
# limit of SERVER_NOFILE (default 1024, systemd's default), as a service manager would start it;
# the service raises its own soft limit to the hard one at start.
SERVER_NOFILE=${SERVER_NOFILE:-1024}
ulimit -n "$(ulimit -Hn)"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  echo "# building the release binary"
  cargo build --release -q
fi

start_server() { # start_server DATABASE_URL
  RUST_LOG=warn APEXKIT_ENV=production APEXKIT_SECRET="attack-bench-secret-0123456789abcdef" \
    APEXKIT_BASE_URL="http://127.0.0.1:$PORT" APEXKIT_RATE_LIMIT_GENERAL=1000000000/10 \
    DATABASE_URL="$1" APEXKIT_LISTEN="127.0.0.1:$PORT" \
    bash -c 'ulimit -Sn "$0"; exec "$1"' "$SERVER_NOFILE" "$BIN" 2>"$WORK/server.log" &
  SERVER_PID=$!
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "attack: server did not become ready:" >&2; cat "$WORK/server.log" >&2; exit 1
}

for backend in $BACKENDS; do
  case $backend in
    postgres)
      db="apexkit_attack_$$"; PG_DBS+=("$db")
      psql -q "$BENCH_PG_URL" -c "CREATE DATABASE $db" >/dev/null
      url="$PG_BASE/$db" ;;
    sqlite) url="sqlite://$WORK/attack.db" ;;
    *) echo "attack: unknown backend $backend" >&2; exit 1 ;;
  esac
  echo "## $backend"
  start_server "$url"
  TOKEN=$(curl -sf "http://127.0.0.1:$PORT/graphql" -H 'Content-Type: application/json' \
    -d '{"query":"mutation { signUpEmail(input: {name: \"V\", email: \"victim@example.com\", password: \"attack bench password\"}) { token } }"}' \
    | jq -r .data.signUpEmail.token)
  export TOKEN
  for scenario in $SCENARIOS; do
    python3 bench/attack.py "$scenario" "$DURATION" || echo "($scenario: some probes went unanswered)"
  done
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "the server died:"; tail -3 "$WORK/server.log"; SERVER_PID=""; continue
  fi
  # SIGTERM while ten clients keep sending the worst documents.
  python3 bench/attack.py documents 6 >/dev/null &
  attack=$!
  sleep 3
  started=$(date +%s.%N)
  kill -TERM "$SERVER_PID"
  status=0; wait "$SERVER_PID" || status=$?
  SERVER_PID=""
  ended=$(date +%s.%N)
  wait "$attack" || true
  awk -v s="$started" -v e="$ended" -v st="$status" \
    'BEGIN { printf "sigterm during the document attack: exited %.2f s later, status %d\n", e - s, st }'
done
