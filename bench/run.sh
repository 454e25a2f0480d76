#!/usr/bin/env bash
# Load benchmark of the release binary on PostgreSQL and SQLite (README "Performance").
#
#   bench/run.sh                      # full run: 10 s per measurement
#   DURATION=3s bench/run.sh          # quick smoke run
#
# Environment: DURATION (wrk -d, default 10s), CONCURRENCY (default "1 16 64"), SIGNIN_ROUNDS and
# LIMITER_ROUNDS (default 5 each),
# BACKENDS (default "postgres sqlite"), BENCH_PG_URL (a PostgreSQL server where the script may
# create and drop databases; default postgres://postgres@127.0.0.1:5432/postgres),
# CARGO_TARGET_DIR (honoured), SKIP_BUILD=1 (use the existing release binary).
# Needs: cargo, wrk, curl, jq, psql, pgbench.
set -euo pipefail

cd "$(dirname "$0")/.."
BENCH_DIR="$(pwd)/bench"
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-"1 16 64"}
BACKENDS=${BACKENDS:-"postgres sqlite"}
BENCH_PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PG_BASE=${BENCH_PG_URL%/*}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN="$TARGET_DIR/release/apexkit"
PORT=${PORT:-47070}
PASSWORD="quiet harbor lantern 42"
WORK=$(mktemp -d)
export APEXKIT_BENCH_DIR="$BENCH_DIR" APEXKIT_BENCH_TOKENS="$WORK/tokens.lua"
SERVER_PID=""
PG_DBS=()

cleanup() {
  if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  for db in "${PG_DBS[@]}"; do psql -q "$BENCH_PG_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

for tool in wrk curl jq psql pgbench; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required (apt-get install wrk jq postgresql-client)" >&2; exit 1; }
done

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  echo "# building the release binary"
  cargo build --release -q
fi

seconds() { local d=$1; case $d in *m) echo $(( ${d%m} * 60 ));; *s) echo "${d%s}";; *) echo "$d";; esac; }
kib() { awk '/^'"$2"':/ {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

gql() { # gql QUERY [TOKEN] -> JSON body
  local auth=()
  [[ -n "${2:-}" ]] && auth=(-H "Authorization: Bearer $2")
  curl -sf "http://127.0.0.1:$PORT/graphql" -H 'Content-Type: application/json' "${auth[@]}" \
    -d "$(jq -nc --arg q "$1" '{query: $q}')"
}

start_server() { # start_server DATABASE_URL [RATE_LIMIT on|off, default off]
  # With the limiter on, the general budget is set out of reach: every field is still counted
  # (the cost measured), none is refused.
  RUST_LOG=warn APEXKIT_ENV=development APEXKIT_RATE_LIMIT="${2:-off}" \
    APEXKIT_RATE_LIMIT_GENERAL=1000000000/10 DATABASE_URL="$1" \
    APEXKIT_LISTEN="127.0.0.1:$PORT" "$BIN" 2>"$WORK/server.log" &
  SERVER_PID=$!
  for _ in $(seq 200); do
    curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "bench: server did not become ready:" >&2; cat "$WORK/server.log" >&2; exit 1
}

stop_server() {
  kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""
}

seed() { # one user to sign in as, and a session token per wrk thread
  gql "mutation { signUpEmail(input: {name: \"Bench\", email: \"bench@example.com\", password: \"$PASSWORD\"}) { token } }" >/dev/null
  { echo "return {"
    for i in 1 2 3 4; do
      t=$(gql "mutation { signInEmail(input: {email: \"bench@example.com\", password: \"$PASSWORD\"}) { token } }" | jq -r .data.signInEmail.token)
      echo "  \"$t\","
    done
    echo "}"; } > "$WORK/tokens.lua"
}

drain() { # wait until the server has finished the previous run's backlog (only /metrics in flight)
  for _ in $(seq 600); do
    n=$(curl -sf "http://127.0.0.1:$PORT/metrics" | awk '/^apexkit_http_requests_in_flight / {print $2}')
    [[ "${n:-1}" == 1 || "${n:-1}" == 0 ]] && return 0
    sleep 0.1
  done
}

wrk_run() { # wrk_run SCRIPT CONNECTIONS -> RESULT line
  # Hash-bound runs at 64 connections queue for seconds: a generous timeout keeps wrk from
  # abandoning (and re-sending) requests the server still works on.
  local c=$2 t=$(( $2 < 2 ? 1 : 2 ))
  wrk -t"$t" -c"$c" -d"$DURATION" --timeout 30s -s "$BENCH_DIR/$1.lua" "http://127.0.0.1:$PORT/graphql" | grep '^RESULT'
}

row() { # row BACKEND SCENARIO CONC RESULT-LINE [BEFORE AFTER]
  local r=$4 get share=""
  get() { sed -E "s/.* $1=([^ ]+).*/\1/" <<<" $r"; }
  # $5, $6: "CEILING ALL_CORES_RATE" (hashes/s) measured just before and just after the run;
  # the row is compared with their mean.
  [[ -n "${5:-}" ]] && share=$(awk -v r="$(get rps)" -v c1="${5% *}" -v p1="${5#* }" \
    -v c2="${6% *}" -v p2="${6#* }" 'BEGIN {c = (c1 + c2) / 2; p = (p1 + p2) / 2;
      printf "%.1f %% of %.1f/s [%.1f, %.1f] (%.0f %% of %.1f/s)", 100 * r / c, c, c1, c2, 100 * r / p, p}')
  printf "%-9s %-22s %5s %10s %9s %9s %8s %s\n" "$1" "$2" "$3" "$(get rps)" "$(get p50_ms)" "$(get p99_ms)" "$(get failed)" "$share"
}

echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# duration per measurement: $DURATION; wrk on the same machine"
hash_ceiling() { # sets hash_ms, sign_in_ceiling_per_s, parallel_per_s (measured now, server idle)
  eval "$("$BIN" bench-hash --iterations 20 --threads "$(nproc)")"
}
hash_ceiling
echo "# argon2id m=${memory_kib} KiB, t=${iterations}, p=1: ${hash_ms} ms per hash on one core -> ceiling ${cores} / hash = ${sign_in_ceiling_per_s}/s (target 90 %); all ${parallel_threads} cores hashing at once: ${parallel_per_s}/s"
echo "# sign-in and sign-up rows: % of the ceiling (cores / one-core hash time), the mean of the ceilings measured just"
echo "# before and just after the run [both in brackets], as the hash time drifts on a shared VM; in parentheses, % of"
echo "# the rate all cores hashing at once reached then"
echo

printf "%-9s %-22s %5s %10s %9s %9s %8s %s\n" backend scenario conns req/s p50_ms p99_ms failed "of ceiling [before, after] (of all-cores rate)"
for backend in $BACKENDS; do
  case $backend in
    postgres)
      db="apexkit_bench_$$"
      psql -q "$BENCH_PG_URL" -c "CREATE DATABASE $db" >/dev/null
      PG_DBS+=("$db")
      url="$PG_BASE/$db" ;;
    sqlite) url="sqlite://$WORK/bench.db" ;;
    *) echo "unknown backend $backend" >&2; exit 1 ;;
  esac
  start_server "$url"
  sleep 1
  idle_kib=$(kib "$SERVER_PID" VmRSS)
  seed
  for scenario in session:session signin:signInEmail signup:signUpEmail; do
    for c in $CONCURRENCY; do
      drain
      if [[ $scenario == session:* ]]; then
        row "$backend" "${scenario#*:}" "$c" "$(wrk_run "${scenario%%:*}" "$c")"
        continue
      fi
      hash_ceiling
      before="$sign_in_ceiling_per_s $parallel_per_s"
      result=$(wrk_run "${scenario%%:*}" "$c")
      drain
      hash_ceiling
      row "$backend" "${scenario#*:}" "$c" "$result" "$before" "$sign_in_ceiling_per_s $parallel_per_s"
    done
  done
  drain
  # The session path while sign-ins saturate the hash pool.
  wrk_run signin 16 >"$WORK/mixed-signin" &
  mixed=$!
  row "$backend" "session+signIn(16)" 16 "$(wrk_run session 16)"
  wait "$mixed"
  row "$backend" "  (the signIn load)" 16 "$(cat "$WORK/mixed-signin")"
  drain
  peak_kib=$(kib "$SERVER_PID" VmHWM)
  echo "# $backend: idle RSS $(mib "$idle_kib") MiB (after boot), peak RSS $(mib "$peak_kib") MiB (VmHWM after all runs)"
  stop_server
done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

if [[ " $BACKENDS " == *" postgres "* ]]; then
  # The sign-in target, judged on more than one run: the hash time drifts by more than the margin.
  rounds=${SIGNIN_ROUNDS:-5}
  echo
  echo "# sign-in against the ceiling: signInEmail, 16 connections, PostgreSQL; $rounds rounds, each against the mean"
  echo "# of the ceilings measured just before and after it"
  db="apexkit_bench_signin_$$"
  psql -q "$BENCH_PG_URL" -c "CREATE DATABASE $db" >/dev/null
  PG_DBS+=("$db")
  start_server "$PG_BASE/$db"
  seed
  shares="" all_cores=""
  for round in $(seq "$rounds"); do
    drain
    hash_ceiling
    before="$sign_in_ceiling_per_s $parallel_per_s"
    result=$(wrk_run signin 16)
    drain
    hash_ceiling
    line=$(row postgres "signInEmail (round $round)" 16 "$result" "$before" "$sign_in_ceiling_per_s $parallel_per_s")
    echo "$line"
    shares+="$(sed -E 's/.* ([0-9.]+) % of .*/\1/' <<<"$line") "
    all_cores+="$(sed -E 's/.*\(([0-9.]+) % of .*/\1/' <<<"$line") "
  done
  stop_server
  sorted=$(tr ' ' '\n' <<<"$shares" | grep . | sort -g | tr '\n' ' ')
  echo "# sign-in reaches $(median "$shares") % of the ceiling (median of rounds; all: ${sorted% }) and $(median "$all_cores") % of the all-cores hashing rate"
fi

if [[ " $BACKENDS " == *" postgres "* ]]; then
  # The VM's speed drifts over tens of seconds, more than the limiter costs: runs alternate
  # (off/on, then on/off), and each round compares its two neighbouring runs.
  rounds=${LIMITER_ROUNDS:-5}
  echo
  echo "# rate limiter cost: session query, 16 connections, PostgreSQL; $rounds rounds of limiter off and on, back to back"
  db="apexkit_bench_limiter_$$"
  psql -q "$BENCH_PG_URL" -c "CREATE DATABASE $db" >/dev/null
  PG_DBS+=("$db")
  start_server "$PG_BASE/$db" off
  seed
  stop_server
  cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
  limiter_run() { # limiter_run MODE -> sets rps, us (server CPU per request)
    start_server "$PG_BASE/$db" "$1"
    local t0 t1 r n
    t0=$(cpu_ticks "$SERVER_PID")
    r=$(wrk_run session 16)
    t1=$(cpu_ticks "$SERVER_PID")
    stop_server
    rps=$(sed -E 's/.* rps=([^ ]+).*/\1/' <<<" $r")
    n=$(sed -E 's/.* requests=([^ ]+).*/\1/' <<<" $r")
    us=$(awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v n="$n" 'BEGIN {printf "%.1f", t * 1e6 / hz / n}')
    row postgres "session (limiter $1)" 16 "$r" ""
  }
  costs=""
  for round in $(seq "$rounds"); do
    order="off on"; (( round % 2 == 0 )) && order="on off"
    declare -A r_rps=() r_us=()
    for mode in $order; do limiter_run "$mode"; r_rps[$mode]=$rps; r_us[$mode]=$us; done
    cost=$(awk -v off="${r_rps[off]}" -v on="${r_rps[on]}" 'BEGIN {printf "%.1f", 100 * (off - on) / off}')
    echo "#   round $round: throughput cost ${cost} %; server CPU per request off ${r_us[off]} us, on ${r_us[on]} us"
    costs+="$cost "
  done
  sorted=$(tr ' ' '\n' <<<"$costs" | grep . | sort -g | tr '\n' ' ')
  median=$(median "$costs")
  echo "# the limiter costs the session query ${median} % of throughput (median of rounds; all: ${sorted% })"
fi

echo
echo "# pgbench -S (select-only, scale 10, 16 clients, 2 threads): the database's own ceiling"
pgdb="apexkit_pgbench_$$"
psql -q "$BENCH_PG_URL" -c "CREATE DATABASE $pgdb" >/dev/null
PG_DBS+=("$pgdb")
pgbench -q -i -s 10 "$PG_BASE/$pgdb" >/dev/null 2>&1
pgbench -n -S -c 16 -j 2 -T "$(seconds "$DURATION")" "$PG_BASE/$pgdb" 2>/dev/null | grep -E '^(tps|latency average)'
