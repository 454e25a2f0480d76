#!/usr/bin/env bash
# Three release replicas behind HAProxy, through PgBouncer (transaction pooling) on one
# PostgreSQL, with rate-limit counters in Redis (docs: "Deploying", "Performance").
#
#   bench/replicas.sh                 # correctness checks, then 10 s per measurement
#   DURATION=3s bench/replicas.sh     # quick run;  SKIP_BUILD=1 uses the existing binary
#
# 1. Correctness (the script fails when one does not hold): sign in on replica 1, use the session
#    on replica 2, revoke it on replica 3, and every replica refuses it afterwards; the credential
#    budget (3 per 10 s) holds across the replicas through HAProxy; the counter keys in Redis carry
#    the prefix and a TTL.
# 2. Session-check throughput and p99 through HAProxy with one replica behind it, then three
#    (CONCURRENCY, default "16 64").
#
# On a 2-core machine (wrk, HAProxy, PgBouncer, PostgreSQL, Redis and the replicas share the two
# cores) three replicas cannot be faster than one: the point is correctness and no collapse.
#
# Environment: DURATION, CONCURRENCY, BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/
# postgres; the script creates and drops a database there), BASE_PORT (default 47180),
# CARGO_TARGET_DIR, SKIP_BUILD=1.
# Needs: cargo, wrk, curl, jq, psql, haproxy, pgbouncer, redis-server
# (apt-get install wrk jq postgresql-client haproxy pgbouncer redis-server).
set -euo pipefail

cd "$(dirname "$0")/.."
BENCH_DIR="$(pwd)/bench"
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-"16 64"}
BENCH_PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PG_BASE=${BENCH_PG_URL%/*}
PG_AUTHORITY=${PG_BASE#*://}; PG_AUTHORITY=${PG_AUTHORITY#*@}
PG_HOST=${PG_AUTHORITY%:*}; PG_PORT=${PG_AUTHORITY##*:}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN="$TARGET_DIR/release/apexkit"
BASE_PORT=${BASE_PORT:-47180}
LB1=$BASE_PORT               # HAProxy, one replica behind it
LB3=$((BASE_PORT + 1))       # HAProxy, three replicas
BOUNCER=$((BASE_PORT + 2))
REDIS=$((BASE_PORT + 3))
REPLICA_PORTS=($((BASE_PORT + 4)) $((BASE_PORT + 5)) $((BASE_PORT + 6)))
PASSWORD="quiet harbor lantern 42"
PREFIX="bench:"
# One secret for all replicas: the signing keys are sealed with it.
SECRET=$(head -c 32 /dev/urandom | base64)
WORK=$(mktemp -d)
chmod 755 "$WORK"
export APEXKIT_BENCH_DIR="$BENCH_DIR" APEXKIT_BENCH_TOKENS="$WORK/tokens.lua"
export PATH="$PATH:/usr/sbin"
PIDS=()
DB="apexkit_replicas_$$"

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  psql -q "$BENCH_PG_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() { echo "replicas: FAILED: $*" >&2; for f in "$WORK"/replica*.log; do [[ -f $f ]] && tail -n 5 "$f" >&2; done; exit 1; }
for tool in wrk curl jq psql haproxy pgbouncer redis-server; do
  command -v "$tool" >/dev/null || fail "$tool is required (apt-get install wrk jq postgresql-client haproxy pgbouncer redis-server)"
done

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  echo "# building the release binary"
  cargo build --release -q
fi

wait_port() { # wait_port PORT NAME
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  fail "$2 did not listen on $1"
}

# --- the components --------------------------------------------------------------------------
psql -q "$BENCH_PG_URL" -c "CREATE DATABASE $DB" >/dev/null
DIRECT="$PG_BASE/$DB"
POOLED="postgres://postgres@127.0.0.1:$BOUNCER/$DB"

redis-server --port "$REDIS" --bind 127.0.0.1 --save '' --appendonly no >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
wait_port "$REDIS" redis-server

printf '"postgres" ""\n"root" ""\n' >"$WORK/users.txt"
sed -e "s/@PG_HOST@/$PG_HOST/" -e "s/@PG_PORT@/$PG_PORT/" -e "s/@PORT@/$BOUNCER/" \
  -e "s#@AUTH_FILE@#$WORK/users.txt#" -e "s/@POOL_MODE@/transaction/" \
  -e 's/^default_pool_size = .*/default_pool_size = 20/' \
  tests/pgbouncer/pgbouncer.ini >"$WORK/pgbouncer.ini"
chmod 644 "$WORK/users.txt" "$WORK/pgbouncer.ini"
as_user=(); [[ $(id -u) == 0 ]] && as_user=(-u postgres)
pgbouncer "${as_user[@]}" "$WORK/pgbouncer.ini" >"$WORK/pgbouncer.log" 2>&1 &
PIDS+=($!)
wait_port "$BOUNCER" pgbouncer

# Migrations once, on the direct URL (what the init container / one-shot service does).
DATABASE_URL="$DIRECT" RUST_LOG=warn "$BIN" --migrate-only

REPLICA_PIDS=()
for i in 0 1 2; do
  RUST_LOG=warn APEXKIT_ENV=development APEXKIT_SECRET="$SECRET" APEXKIT_LISTEN="127.0.0.1:${REPLICA_PORTS[$i]}" \
    DATABASE_URL="$POOLED" APEXKIT_MIGRATION_DATABASE_URL="$DIRECT" APEXKIT_DB_PREPARED_STATEMENTS=false \
    APEXKIT_RATE_LIMIT=on APEXKIT_RATE_LIMIT_STORAGE=redis APEXKIT_REDIS_URL="redis://127.0.0.1:$REDIS" \
    APEXKIT_REDIS_KEY_PREFIX="$PREFIX" APEXKIT_RATE_LIMIT_CREDENTIAL=3/10 \
    APEXKIT_RATE_LIMIT_GENERAL=1000000000/10 APEXKIT_TRUSTED_PROXIES=127.0.0.1/32 \
    "$BIN" 2>"$WORK/replica$i.log" &
  PIDS+=($!); REPLICA_PIDS+=($!)
done
for i in 0 1 2; do
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:${REPLICA_PORTS[$i]}/readyz" >/dev/null 2>&1 && continue 2
    sleep 0.1
  done
  cat "$WORK/replica$i.log" >&2; fail "replica $((i + 1)) did not become ready"
done

haproxy_cfg() { # haproxy_cfg PORT N -> config with the first N replicas
  cat <<EOF
global
    maxconn 4096
defaults
    mode http
    option forwardfor
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend http
    bind 127.0.0.1:$1
    default_backend apexkit
backend apexkit
    balance roundrobin
    option httpchk GET /readyz
    http-reuse always
EOF
  for i in $(seq 0 $(($2 - 1))); do
    echo "    server r$((i + 1)) 127.0.0.1:${REPLICA_PORTS[$i]} check inter 2s"
  done
}
haproxy_cfg "$LB1" 1 >"$WORK/lb1.cfg"
haproxy_cfg "$LB3" 3 >"$WORK/lb3.cfg"
for lb in lb1 lb3; do
  haproxy -f "$WORK/$lb.cfg" -db >"$WORK/$lb.log" 2>&1 &
  PIDS+=($!)
done
wait_port "$LB1" haproxy; wait_port "$LB3" haproxy

# --- correctness -----------------------------------------------------------------------------
gql() { # gql PORT QUERY [TOKEN] [CLIENT-IP] -> JSON body
  local auth=() xff=()
  [[ -n "${3:-}" ]] && auth=(-H "Authorization: Bearer $3")
  [[ -n "${4:-}" ]] && xff=(-H "X-Forwarded-For: $4")
  # No -f: a refusal (429 RATE_LIMITED) has a JSON body too.
  curl -s "http://127.0.0.1:$1/graphql" -H 'Content-Type: application/json' "${auth[@]}" "${xff[@]}" \
    -d "$(jq -nc --arg q "$2" '{query: $q}')"
}
r1=${REPLICA_PORTS[0]} r2=${REPLICA_PORTS[1]} r3=${REPLICA_PORTS[2]}
sign_in_q="mutation { signInEmail(input: {email: \"bench@example.com\", password: \"$PASSWORD\"}) { token session { id } } }"

echo "# correctness: 3 replicas behind HAProxy, PgBouncer (transaction mode), Redis counters"
gql "$r1" "mutation { signUpEmail(input: {name: \"Bench\", email: \"bench@example.com\", password: \"$PASSWORD\"}) { token } }" "" 10.9.0.1 \
  | jq -e '.data.signUpEmail.token' >/dev/null || fail "sign-up on replica 1"
a=$(gql "$r1" "$sign_in_q" "" 10.9.0.2)
token=$(jq -r '.data.signInEmail.token' <<<"$a"); sid=$(jq -r '.data.signInEmail.session.id' <<<"$a")
[[ -n "$token" && "$token" != null ]] || fail "sign-in on replica 1: $a"
b=$(gql "$r1" "$sign_in_q" "" 10.9.0.3); other=$(jq -r '.data.signInEmail.token' <<<"$b")
session_q='{ session { session { id } user { email } } }'
[[ $(gql "$r2" "$session_q" "$token" | jq -r '.data.session.user.email') == bench@example.com ]] \
  || fail "the session made on replica 1 is not valid on replica 2"
echo "ok   signed in on replica 1, session used on replica 2"
[[ $(gql "$r3" "mutation { revokeSession(id: \"$sid\") }" "$other" | jq -r '.data.revokeSession') == true ]] \
  || fail "revoking on replica 3"
for port in "$r1" "$r2" "$r3" "$LB3"; do
  [[ $(gql "$port" "$session_q" "$token" | jq -r '.data.session') == null ]] \
    || fail "the session revoked on replica 3 still works on port $port"
done
echo "ok   revoked on replica 3: refused on replicas 1, 2, 3 and through HAProxy"

# The credential budget (3 per 10 s per client) across the replicas, round-robin through HAProxy.
while (( $(date +%s) % 10 > 5 )); do sleep 0.2; done
codes=()
for n in 1 2 3 4 5 6; do
  codes+=("$(gql "$LB3" "mutation { signInEmail(input: {email: \"nobody$n@example.com\", password: \"wrong horse\"}) { token } }" "" 10.9.1.1 \
    | jq -r '.errors[0].extensions.code')")
done
[[ "${codes[*]}" == "INVALID_EMAIL_OR_PASSWORD INVALID_EMAIL_OR_PASSWORD INVALID_EMAIL_OR_PASSWORD RATE_LIMITED RATE_LIMITED RATE_LIMITED" ]] \
  || fail "budget of 3 across 3 replicas: ${codes[*]}"
echo "ok   3 sign-ins per 10 s hold across the 3 replicas (6 tries round-robin: ${codes[*]})"
keys=$(redis-cli -p "$REDIS" --raw KEYS '*')
[[ -n "$keys" ]] || fail "no counter in Redis"
while read -r key; do
  [[ $key == "$PREFIX"* ]] || fail "key without the prefix: $key"
  ttl=$(redis-cli -p "$REDIS" PTTL "$key")
  (( ttl > 0 && ttl <= 10000 )) || fail "key $key has PTTL $ttl"
done <<<"$keys"
echo "ok   $(wc -l <<<"$keys") counter key(s) in Redis, all under \"$PREFIX\" with a TTL <= 10 s"

# --- throughput ------------------------------------------------------------------------------
# One session token per wrk thread, each signed in on another replica.
{ echo "return {"
  for i in 1 2 3 4; do
    port=${REPLICA_PORTS[$(( i % 3 ))]}
    t=$(gql "$port" "$sign_in_q" "" "10.9.2.$i" | jq -r .data.signInEmail.token)
    [[ -n "$t" && "$t" != null ]] || fail "seeding tokens: $(gql "$port" "$sign_in_q" "" "10.9.2.$i")"
    echo "  \"$t\","
  done
  echo "}"; } >"$WORK/tokens.lua"

wrk_run() { # wrk_run PORT CONNECTIONS -> RESULT line
  local c=$2 t=$(( $2 < 2 ? 1 : 2 ))
  wrk -t"$t" -c"$c" -d"$DURATION" --timeout 10s -s "$BENCH_DIR/session.lua" "http://127.0.0.1:$1/graphql" | grep '^RESULT'
}
row() {
  local r=" $3" get
  get() { sed -E "s/.* $1=([^ ]+).*/\1/" <<<"$r"; }
  printf "%-10s %5s %10s %9s %9s %8s %8s\n" "$1" "$2" "$(get rps)" "$(get p50_ms)" "$(get p99_ms)" "$(get failed)" "$(get socket_errors)"
  [[ $(get failed) == 0 && $(get socket_errors) == 0 ]] || fail "requests failed: $3"
}
echo
echo "# session query through HAProxy; $(nproc) cores shared by wrk, HAProxy, PgBouncer, PostgreSQL, Redis"
echo "# and the replicas; $DURATION per run"
printf "%-10s %5s %10s %9s %9s %8s %8s\n" replicas conns req/s p50_ms p99_ms failed sock_err
for c in $CONCURRENCY; do
  row "1" "$c" "$(wrk_run "$LB1" "$c")"
  row "3" "$c" "$(wrk_run "$LB3" "$c")"
done
for i in 0 1 2; do
  echo "# replica $((i + 1)): peak RSS $(awk '/^VmHWM:/ {printf "%.1f MiB", $2 / 1024}' "/proc/${REPLICA_PIDS[$i]}/status")"
done
echo "replicas: all checks passed"
