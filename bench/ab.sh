#!/usr/bin/env bash
# A/B of the session check, two release binaries alternating on the same PostgreSQL (fresh database
# each run), for a change on the hot path:  bench/ab-session.sh OLD_BIN NEW_BIN [ROUNDS]
# Prints a wrk RESULT line per run (16 connections, 10 s after a 3 s warm-up). Needs wrk, jq, psql.
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=$1 NEW=$2 ROUNDS=${3:-3}
BENCH_PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
export APEXKIT_BENCH_DIR="$PWD/bench"
WORK=$(mktemp -d); export APEXKIT_BENCH_TOKENS=$WORK/tokens.lua
PORT=47090
run() { # run BIN LABEL
  local db="apexkit_ab_$RANDOM"
  psql -q "$BENCH_PG_URL" -c "CREATE DATABASE $db" >/dev/null
  RUST_LOG=warn APEXKIT_RATE_LIMIT=off DATABASE_URL="${BENCH_PG_URL%/*}/$db" APEXKIT_LISTEN=127.0.0.1:$PORT "$1" 2>$WORK/log &
  local pid=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.1; done
  curl -sf http://127.0.0.1:$PORT/graphql -H 'content-type: application/json' -d '{"query":"mutation { signUpEmail(input: {name: \"B\", email: \"b@example.com\", password: \"ab bench password 1\"}) { token } }"}' >/dev/null
  { echo "return {"; for i in 1 2; do
     t=$(curl -sf http://127.0.0.1:$PORT/graphql -H 'content-type: application/json' -d '{"query":"mutation { signInEmail(input: {email: \"b@example.com\", password: \"ab bench password 1\"}) { token } }"}' | jq -r .data.signInEmail.token)
     echo "\"$t\","; done; echo "}"; } > $WORK/tokens.lua
  wrk -t2 -c16 -d3s -s bench/session.lua http://127.0.0.1:$PORT/graphql >/dev/null
  local r; r=$(wrk -t2 -c16 -d10s -s bench/session.lua http://127.0.0.1:$PORT/graphql | grep '^RESULT')
  echo "$2 $r"
  kill $pid; wait $pid || true
  psql -q "$BENCH_PG_URL" -c "DROP DATABASE $db WITH (FORCE)" >/dev/null
}
for _ in $(seq "$ROUNDS"); do
  run "$OLD" "before"
  run "$NEW" "after "
done
