#!/usr/bin/env bash
# Where a sign-in's CPU goes (README "Performance"): starts the release binary on a fresh
# PostgreSQL database, drives signInEmail with wrk, and prints CPU milliseconds per sign-in for
# the server's argon2 threads, its async workers, PostgreSQL, and the whole machine (busy and
# idle), from /proc before and after the run.
#
#   bench/cpu-split.sh            # 16 connections, 10 s
#   CONNS=64 DURATION=20s bench/cpu-split.sh
#
# Environment: CONNS, DURATION, BENCH_PG_URL (as in bench/run.sh), CARGO_TARGET_DIR, PORT.
# Needs: a release build (cargo build --release), wrk, curl, psql.
set -euo pipefail

cd "$(dirname "$0")/.."
export APEXKIT_BENCH_DIR="$(pwd)/bench"
CONNS=${CONNS:-16}
DURATION=${DURATION:-10s}
BENCH_PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
BIN="${CARGO_TARGET_DIR:-target}/release/apexkit"
PORT=${PORT:-47071}
DB="apexkit_cpu_split_$$"
WORK=$(mktemp -d)
SERVER_PID=""

cleanup() {
  if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  psql -q "$BENCH_PG_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

psql -q "$BENCH_PG_URL" -c "CREATE DATABASE $DB" >/dev/null
RUST_LOG=warn APEXKIT_ENV=development APEXKIT_RATE_LIMIT=off DATABASE_URL="${BENCH_PG_URL%/*}/$DB" \
  APEXKIT_LISTEN="127.0.0.1:$PORT" "$BIN" 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/graphql" -H 'Content-Type: application/json' \
  -d '{"query":"mutation { signUpEmail(input: {name: \"Bench\", email: \"bench@example.com\", password: \"quiet harbor lantern 42\"}) { token } }"}' >/dev/null

snapshot() { # "group ticks" lines: server threads by name (digits dropped), PostgreSQL, machine
  for task in /proc/"$SERVER_PID"/task/*; do
    awk '{name = $2; gsub(/[()]/, "", name); sub(/[0-9]+$/, "", name); sub(/-$/, "", name); print "server:" name, $14 + $15}' "$task/stat" 2>/dev/null
  done | awk '{t[$1] += $2} END {for (k in t) print k, t[k]}'
  for p in $(pgrep -x postgres); do awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null; done |
    awk '{t += $1} END {print "postgres", t + 0}'
  awk '/^cpu / {print "machine:busy", $2 + $3 + $4 + $7 + $8 + $9; print "machine:idle", $5 + $6}' /proc/stat
}

snapshot >"$WORK/before"
result=$(wrk -t"$(( CONNS < 2 ? 1 : 2 ))" -c"$CONNS" -d"$DURATION" --timeout 30s \
  -s bench/signin.lua "http://127.0.0.1:$PORT/graphql" | grep '^RESULT')
snapshot >"$WORK/after"
echo "$result"
n=$(sed -E 's/.* requests=([^ ]+).*/\1/' <<<" $result")
# /proc/stat counts every CPU; per-process ticks likewise (USER_HZ).
join <(sort "$WORK/before") <(sort "$WORK/after") |
  awk -v n="$n" -v hz="$(getconf CLK_TCK)" '{printf "%-24s %8.3f ms CPU per sign-in\n", $1, ($3 - $2) * 1000 / hz / n}'
