#!/usr/bin/env bash
# A/B of two release binaries on bench/run.sh's session and sign-in scenarios, alternating on the
# same PostgreSQL (a fresh database each run), for a change on a hot path or a restructuring:
#   bench/ab.sh OLD_BIN NEW_BIN [ROUNDS] [SCENARIOS]
# SCENARIOS defaults to "session signin" (the wrk scripts in bench/). Prints one wrk RESULT line
# per binary, scenario and round (16 connections, 10 s after a 3 s warm-up), then the mean
# requests/s of each. Needs wrk, jq, psql.
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=$1 NEW=$2 ROUNDS=${3:-3} SCENARIOS=${4:-session signin}
BENCH_PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
export APEXKIT_BENCH_DIR="$PWD/bench"
WORK=$(mktemp -d); export APEXKIT_BENCH_TOKENS=$WORK/tokens.lua
PORT=47090
EMAIL=bench@example.com PASSWORD="quiet harbor lantern 42"
gql() { curl -sf "http://127.0.0.1:$PORT/graphql" -H 'content-type: application/json' -d "$1"; }
run() { # run BIN LABEL SCENARIO
  local db="apexkit_ab_$RANDOM"
  psql -q "$BENCH_PG_URL" -c "CREATE DATABASE $db" >/dev/null
  RUST_LOG=warn APEXKIT_RATE_LIMIT=off DATABASE_URL="${BENCH_PG_URL%/*}/$db" APEXKIT_LISTEN=127.0.0.1:$PORT "$1" 2>"$WORK/log" &
  local pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
  gql "{\"query\":\"mutation { signUpEmail(input: {name: \\\"B\\\", email: \\\"$EMAIL\\\", password: \\\"$PASSWORD\\\"}) { token } }\"}" \
    | jq -e .data.signUpEmail.token >/dev/null || { echo "sign-up failed on $1" >&2; cat "$WORK/log" >&2; exit 1; }
  { echo "return {"; for _ in 1 2; do
     gql "{\"query\":\"mutation { signInEmail(input: {email: \\\"$EMAIL\\\", password: \\\"$PASSWORD\\\"}) { token } }\"}" | jq -r '"\"" + .data.signInEmail.token + "\","'
    done; echo "}"; } > "$WORK/tokens.lua"
  wrk -t2 -c16 -d3s -s "bench/$3.lua" "http://127.0.0.1:$PORT/graphql" >/dev/null
  local r; r=$(wrk -t2 -c16 -d10s --timeout 30s -s "bench/$3.lua" "http://127.0.0.1:$PORT/graphql" | grep '^RESULT')
  echo "$2 $3 $r" | tee -a "$WORK/results"
  kill $pid; wait $pid || true
  psql -q "$BENCH_PG_URL" -c "DROP DATABASE $db WITH (FORCE)" >/dev/null
}
for _ in $(seq "$ROUNDS"); do
  for scenario in $SCENARIOS; do
    run "$OLD" before "$scenario"
    run "$NEW" after "$scenario"
  done
done
echo "# mean requests/s over $ROUNDS rounds"
awk '{ split($4, kv, "="); key = $2 " " $1; sum[key] += kv[2]; n[key]++ }
     END { for (k in sum) printf "%-16s %10.1f\n", k, sum[k] / n[k] }' "$WORK/results" | sort
