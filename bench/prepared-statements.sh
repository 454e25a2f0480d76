#!/usr/bin/env bash
# Shows that the session check is one prepared statement, parsed once per pooled connection and
# then only executed: a throw-away PostgreSQL cluster with log_statement=all, one pooled
# connection, three `session` queries; the log shows the same named statement `execute sN`
# three times and nothing else (no write: the daily slide is not due).
#   bench/prepared-statements.sh [path/to/apexkit]   (default: the debug build)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-${CARGO_TARGET_DIR:-target}/debug/apexkit}
PG=/usr/lib/postgresql/15/bin
D=$(mktemp -d); P=${PG_PORT:-55437}; APP_PORT=${APP_PORT:-45437}
as_pg=(); [[ $(id -u) == 0 ]] && { chown postgres:postgres "$D"; as_pg=(runuser -u postgres --); }
"${as_pg[@]}" "$PG/initdb" -D "$D/data" -U postgres --auth=trust --no-sync >/dev/null
"${as_pg[@]}" "$PG/pg_ctl" -D "$D/data" -l "$D/log" -w start \
  -o "-p $P -k $D -c listen_addresses=127.0.0.1 -c log_statement=all" >/dev/null
trap '"${as_pg[@]}" "$PG/pg_ctl" -D "$D/data" -m fast -w stop >/dev/null; rm -rf "$D"' EXIT
DATABASE_URL="postgres://postgres@127.0.0.1:$P/postgres" APEXKIT_LISTEN="127.0.0.1:$APP_PORT" \
  APEXKIT_DB_POOL_SIZE=1 "$BIN" 2>"$D/app.log" &
APP=$!
for _ in $(seq 100); do curl -sf "localhost:$APP_PORT/readyz" >/dev/null && break; sleep 0.1; done
q() { curl -s "localhost:$APP_PORT/graphql" -H 'content-type: application/json' "$@"; }
TOK=$(q -d '{"query":"mutation { signUpEmail(input:{name:\"a\",email:\"p@example.com\",password:\"correct horse battery\"}) { token } }"}' | jq -r .data.signUpEmail.token)
L=$(wc -l <"$D/log")
for _ in 1 2 3; do q -H "authorization: Bearer $TOK" -d '{"query":"{ session { user { id } } }"}' >/dev/null; done
tail -n +$((L + 1)) "$D/log" | grep -E 'LOG:  (statement|execute)' | cut -c1-160
kill -TERM "$APP"; wait "$APP"
