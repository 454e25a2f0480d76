#!/usr/bin/env bash
# Load benchmark of the release binary on PostgreSQL and SQLite (docs/src/performance.md).
#
#   bench/run.sh                      # full run: 10 s per measurement
#   DURATION=3s bench/run.sh          # quick smoke run
#
# The headline is production mode as deployed (APEXKIT_ENV=production: JSON logs at info, the
# limiter on with every budget out of reach so each field is still counted, metrics on their own
# listener); development mode (what `cargo run` gives) is measured beside it for the `session`
# query. The session workload selects what a frontend asks for on every page load, over SESSIONS
# distinct sessions of as many users, and each row reports the server's CPU per request (from
# /proc). The run ends with `pgbench -S` on the same server, 10,000 idle keep-alive connections'
# memory, and an SVG chart (gnuplot) of throughput and p99 by concurrency.
#
# Environment: DURATION (wrk -d, default 10s), CONCURRENCY (sign-in and sign-up, default
# "1 16 64"), SESSION_CONCURRENCY (default "1 4 16 32 64 128"), MODES (default "production
# development"), SESSIONS (default 200), IDLE_CONNECTIONS (default 10000; 0 skips),
# CHART (default docs/src/bench/session.svg; empty skips), SIGNIN_ROUNDS and
# LIMITER_ROUNDS (default 5 each),
# BACKENDS (default "postgres sqlite"), BENCH_PG_URL (a PostgreSQL server where the script may
# create and drop databases; default postgres://postgres@127.0.0.1:5432/postgres),
# CARGO_TARGET_DIR (honoured), PROFILE (cargo profile, default release; `profiling` is the same
# code generation without LTO and with symbols, for perf), SKIP_BUILD=1 (use the existing binary).
# Needs: cargo, wrk, curl, jq, psql, pgbench, sqlite3, python3, gnuplot (for the chart).
set -euo pipefail

cd "$(dirname "$0")/.."
BENCH_DIR="$(pwd)/bench"
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-"1 16 64"}
SESSION_CONCURRENCY=${SESSION_CONCURRENCY:-"1 4 16 32 64 128"}
MODES=${MODES:-"production development"}
SESSIONS=${SESSIONS:-200}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-10000}
CHART=${CHART-docs/src/bench/session.svg}
BACKENDS=${BACKENDS:-"postgres sqlite"}
BENCH_PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PG_BASE=${BENCH_PG_URL%/*}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
PROFILE=${PROFILE:-release}
BIN="$TARGET_DIR/$PROFILE/apexkit"
PORT=${PORT:-47070}
METRICS_PORT=$((PORT + 1))
METRICS_URL=""
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

for tool in wrk curl jq psql pgbench sqlite3 python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required (apt-get install wrk jq postgresql-client sqlite3 gnuplot-nox)" >&2; exit 1; }
done

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  echo "# building the $PROFILE binary"
  cargo build --profile "$PROFILE" -q
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

start_server() { # start_server DATABASE_URL [MODE production|development] [LIMITER on|off]
  # Production: as deployed, with every rate-limit budget set out of reach (every field is still
  # counted, the cost measured; none is refused). Development: the defaults of `cargo run`.
  local mode=${2:-production} env=()
  if [[ $mode == production ]]; then
    env=(APEXKIT_ENV=production APEXKIT_SECRET=bench-secret-bench-secret-bench-secret-0123
      APEXKIT_BASE_URL="http://127.0.0.1:$PORT" APEXKIT_METRICS_LISTEN="127.0.0.1:$METRICS_PORT"
      APEXKIT_RATE_LIMIT="${3:-on}" APEXKIT_RATE_LIMIT_GENERAL=1000000000/10
      APEXKIT_RATE_LIMIT_CREDENTIAL=1000000000/10 APEXKIT_RATE_LIMIT_MAIL=1000000000/10
      APEXKIT_SIGN_IN_FREE_FAILURES=1000)
    METRICS_URL="http://127.0.0.1:$METRICS_PORT/metrics"
  else
    env=(APEXKIT_ENV=development APEXKIT_RATE_LIMIT="${3:-off}")
    METRICS_URL="http://127.0.0.1:$PORT/metrics"
  fi
  env -u RUST_LOG "${env[@]}" DATABASE_URL="$1" APEXKIT_LISTEN="127.0.0.1:$PORT" \
    APEXKIT_MAX_CONNECTIONS="${MAX_CONNECTIONS:-10000}" "$BIN" 2>"$WORK/server.log" &
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

seed() { # seed DATABASE_URL: one user to sign in as; SESSIONS users with a session each
  gql "mutation { signUpEmail(input: {name: \"Bench\", email: \"bench@example.com\", password: \"$PASSWORD\"}) { token } }" >/dev/null
  gql "mutation { signInEmail(input: {email: \"bench@example.com\", password: \"$PASSWORD\"}) { token } }" \
    | jq -e .data.signInEmail.token >/dev/null
  "$BENCH_DIR/seed-sessions.py" "$SESSIONS" bench@example.com "$WORK/tokens.lua" >"$WORK/seed.sql"
  case $1 in
    sqlite://*) sqlite3 "${1#sqlite://}" <"$WORK/seed.sql" ;;
    *) psql -q -v ON_ERROR_STOP=1 "$1" -f "$WORK/seed.sql" >/dev/null ;;
  esac
}

drain() { # wait until the server has finished the previous run's backlog (only /metrics in flight)
  for _ in $(seq 600); do
    n=$(curl -sf "$METRICS_URL" | awk '/^apexkit_http_requests_in_flight / {print $2}')
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

row() { # row BACKEND SCENARIO CONC RESULT-LINE [BEFORE AFTER] [CPU_US]
  local r=$4 get share="${7:+${7} us}"
  get() { sed -E "s/.* $1=([^ ]+).*/\1/" <<<" $r"; }
  # $5, $6: "CEILING ALL_CORES_RATE" (hashes/s) measured just before and just after the run;
  # the row is compared with their mean.
  [[ -n "${5:-}" ]] && share=$(awk -v r="$(get rps)" -v c1="${5% *}" -v p1="${5#* }" \
    -v c2="${6% *}" -v p2="${6#* }" 'BEGIN {c = (c1 + c2) / 2; p = (p1 + p2) / 2;
      printf "%.1f %% of %.1f/s [%.1f, %.1f] (%.0f %% of %.1f/s)", 100 * r / c, c, c1, c2, 100 * r / p, p}')
  printf "%-13s %-22s %5s %10s %9s %9s %8s %s\n" "$1" "$2" "$3" "$(get rps)" "$(get p50_ms)" "$(get p99_ms)" "$(get failed)" "$share"
}

echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# binary: $BIN ($PROFILE profile); duration per measurement: $DURATION; wrk on the same machine"
hash_ceiling() { # sets hash_ms, sign_in_ceiling_per_s, parallel_per_s (measured now, server idle)
  eval "$("$BIN" bench-hash --iterations 20 --threads "$(nproc)")"
}
hash_ceiling
echo "# argon2id m=${memory_kib} KiB, t=${iterations}, p=1: ${hash_ms} ms per hash on one core -> ceiling ${cores} / hash = ${sign_in_ceiling_per_s}/s (target 90 %); all ${parallel_threads} cores hashing at once: ${parallel_per_s}/s"
echo "# sign-in and sign-up rows: % of the ceiling (cores / one-core hash time), the mean of the ceilings measured just"
echo "# before and just after the run [both in brackets], as the hash time drifts on a shared VM; in parentheses, % of"
echo "# the rate all cores hashing at once reached then"
echo

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
cpu_us() { # cpu_us TICKS_BEFORE TICKS_AFTER REQUESTS -> server CPU microseconds per request
  awk -v t=$(($2 - $1)) -v hz="$(getconf CLK_TCK)" -v n="$3" 'BEGIN {printf "%.1f", n ? t * 1e6 / hz / n : 0}'
}
DATA="$WORK/session.dat" # backend mode conns rps p99_ms cpu_us, for the chart
printf "%-13s %-22s %5s %10s %9s %9s %8s %s\n" backend scenario conns req/s p50_ms p99_ms failed "cpu_us/req | of ceiling [before, after] (of all-cores rate)"
for backend in $BACKENDS; do
  for mode in $MODES; do
    case $backend in
      postgres)
        db="apexkit_bench_${mode}_$$"
        psql -q "$BENCH_PG_URL" -c "CREATE DATABASE $db" >/dev/null
        PG_DBS+=("$db")
        url="$PG_BASE/$db" ;;
      sqlite) url="sqlite://$WORK/bench-$mode.db" ;;
      *) echo "unknown backend $backend" >&2; exit 1 ;;
    esac
    start_server "$url" "$mode"
    sleep 1
    idle_kib=$(kib "$SERVER_PID" VmRSS)
    seed "$url"
    label=$backend; [[ $mode == production ]] || label="$backend/dev"
    for c in $SESSION_CONCURRENCY; do
      drain
      t0=$(cpu_ticks "$SERVER_PID")
      r=$(wrk_run session "$c")
      t1=$(cpu_ticks "$SERVER_PID")
      us=$(cpu_us "$t0" "$t1" "$(sed -E 's/.* requests=([^ ]+).*/\1/' <<<" $r")")
      row "$label" session "$c" "$r" "" "" "$us"
      echo "$backend $mode $c $(sed -E 's/.* rps=([^ ]+).* p99_ms=([^ ]+).*/\1 \2/' <<<" $r") $us" >>"$DATA"
    done
    if [[ $mode != production ]]; then
      stop_server
      continue
    fi
    for scenario in signin:signInEmail signup:signUpEmail; do
      for c in $CONCURRENCY; do
        drain
        hash_ceiling
        before="$sign_in_ceiling_per_s $parallel_per_s"
        result=$(wrk_run "${scenario%%:*}" "$c")
        drain
        hash_ceiling
        row "$label" "${scenario#*:}" "$c" "$result" "$before" "$sign_in_ceiling_per_s $parallel_per_s"
      done
    done
    drain
    # The session path while sign-ins saturate the hash pool.
    wrk_run signin 16 >"$WORK/mixed-signin" &
    mixed=$!
    row "$label" "session+signIn(16)" 16 "$(wrk_run session 16)"
    wait "$mixed"
    row "$label" "  (the signIn load)" 16 "$(cat "$WORK/mixed-signin")"
    drain
    peak_kib=$(kib "$SERVER_PID" VmHWM)
    echo "# $backend: idle RSS $(mib "$idle_kib") MiB (after boot), peak RSS $(mib "$peak_kib") MiB (VmHWM after all runs)"
    stop_server
  done
done

pgbench_tps=""
if [[ " $BACKENDS " == *" postgres "* ]]; then
  echo
  echo "# pgbench -S (select-only, scale 10, 2 threads) on the same server: the database's own ceiling"
  pgdb="apexkit_pgbench_$$"
  psql -q "$BENCH_PG_URL" -c "CREATE DATABASE $pgdb" >/dev/null
  PG_DBS+=("$pgdb")
  pgbench -q -i -s 10 "$PG_BASE/$pgdb" >/dev/null 2>&1
  for c in 16 64; do
    out=$(pgbench -n -S -c "$c" -j 2 -T "$(seconds "$DURATION")" "$PG_BASE/$pgdb" 2>/dev/null)
    tps=$(awk '/^tps/ {printf "%.0f", $3}' <<<"$out")
    [[ $c == 16 ]] && pgbench_tps=$tps
    echo "pgbench -S  $c clients: $tps tps, latency average $(awk '/^latency average/ {print $4, $5}' <<<"$out")"
  done
  if [[ " $MODES " == *" production "* ]] && grep -q '^postgres production 16 ' "$DATA"; then
    awk -v p="$pgbench_tps" '$1 == "postgres" && $3 == 16 {
      printf "# session query, PostgreSQL, 16 connections, %s mode: %.1f %% of pgbench -S (target >= 40 %% in production mode)\n", $2, 100 * $4 / p }' "$DATA"
  fi
fi

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
  seed "$PG_BASE/$db"
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
  echo "# rate limiter cost: session query, 16 connections, PostgreSQL, production mode; $rounds rounds of limiter off and on, back to back"
  db="apexkit_bench_limiter_$$"
  psql -q "$BENCH_PG_URL" -c "CREATE DATABASE $db" >/dev/null
  PG_DBS+=("$db")
  start_server "$PG_BASE/$db" production off
  seed "$PG_BASE/$db"
  stop_server
  limiter_run() { # limiter_run MODE -> sets rps, us (server CPU per request)
    start_server "$PG_BASE/$db" production "$1"
    local t0 t1 r
    t0=$(cpu_ticks "$SERVER_PID")
    r=$(wrk_run session 16)
    t1=$(cpu_ticks "$SERVER_PID")
    stop_server
    rps=$(sed -E 's/.* rps=([^ ]+).*/\1/' <<<" $r")
    us=$(cpu_us "$t0" "$t1" "$(sed -E 's/.* requests=([^ ]+).*/\1/' <<<" $r")")
    row postgres "session (limiter $1)" 16 "$r" "" "" "$us"
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


if (( IDLE_CONNECTIONS > 0 )) && [[ " $BACKENDS " == *" postgres "* ]]; then
  echo
  echo "# idle keep-alive connections: $IDLE_CONNECTIONS, each served one session query, then held open"
  db="apexkit_bench_idle_$$"
  psql -q "$BENCH_PG_URL" -c "CREATE DATABASE $db" >/dev/null
  PG_DBS+=("$db")
  ulimit -n "$(ulimit -Hn)"
  # The cap (APEXKIT_MAX_CONNECTIONS) leaves room for the readiness probe beside them.
  MAX_CONNECTIONS=$((IDLE_CONNECTIONS + 100)) start_server "$PG_BASE/$db"
  seed "$PG_BASE/$db"
  token=$(awk -F'"' 'NR == 2 {print $2}' "$WORK/tokens.lua")
  sleep 1
  before_kib=$(kib "$SERVER_PID" VmRSS)
  coproc IDLE { python3 "$BENCH_DIR/idle-connections.py" 127.0.0.1 "$PORT" "$IDLE_CONNECTIONS" "$token" 60; }
  read -r ready opened failed <&"${IDLE[0]}"
  sleep 2
  held_kib=$(kib "$SERVER_PID" VmRSS)
  conns=$(ls "/proc/$SERVER_PID/fd" | wc -l)
  exec {IDLE[1]}>&-
  wait "$IDLE_PID" || true
  printf "# %s: %s connections open (%s failed), server fds %s; RSS %s MiB before, %s MiB held: %.1f KiB per idle connection\n" \
    "$ready" "$opened" "$failed" "$conns" "$(mib "$before_kib")" "$(mib "$held_kib")" \
    "$(awk -v a="$before_kib" -v b="$held_kib" -v n="$opened" 'BEGIN {print n ? (b - a) / n : 0}')"
  stop_server
fi

if [[ -n "$CHART" ]] && command -v gnuplot >/dev/null; then
  "$BENCH_DIR/chart.sh" "$DATA" "$CHART"
  echo "# chart: $CHART"
fi
echo
echo "# data (backend mode conns rps p99_ms cpu_us):"
cat "$DATA"
