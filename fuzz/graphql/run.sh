#!/usr/bin/env bash
# Schema-driven GraphQL fuzzing with schemathesis against a fresh development server.
# Usage: fuzz/graphql/run.sh [SECONDS] [APEXKIT_BINARY]   (defaults: 60, target/debug/apexkit)
# DATABASE_URL (default: a fresh SQLite file) runs it on another database, e.g. an empty
# PostgreSQL database: DATABASE_URL=postgres://postgres@127.0.0.1:5432/fuzz fuzz/graphql/run.sh
# Fails on any 5xx and on any GraphQL error without a contract code (hooks.py). Schemathesis'
# own `not_a_server_error` and `positive_data_acceptance` checks are excluded: they count every
# GraphQL error (UNAUTHENTICATED, INVALID_EMAIL, ...) as a failure, while the contract answers
# refusals exactly that way; hooks.py checks what the contract promises instead.
set -euo pipefail
here="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
root="$(dirname "$(dirname "$here")")"
SECONDS_BUDGET="${1:-60}"
BIN="${2:-${CARGO_TARGET_DIR:-$root/target}/debug/apexkit}"
[ -x "$BIN" ] || { echo "graphql fuzz: no apexkit binary at $BIN (cargo build first)" >&2; exit 1; }
cd "$here"
command -v schemathesis >/dev/null 2>&1 || python3 -m pip install --quiet 'schemathesis>=4,<5'
ST="$(command -v schemathesis || echo "python3 -m schemathesis.cli")"

work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
DATABASE_URL="${DATABASE_URL:-sqlite://$work/fuzz.db}" APEXKIT_LISTEN="127.0.0.1:$port" RUST_LOG=warn \
    APEXKIT_ADMIN_EMAILS=fuzz-admin@example.com \
    "$BIN" >"$work/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 50); do
    python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/healthz', timeout=1)" \
        >/dev/null 2>&1 && break
    sleep 0.2
done

# Signed in (as the admin address, where the service grants it), so the fields behind a session
# (revokeSession, admin queries with IDs, searches and cursors) are reached too.
token="$(python3 - "$port" <<'PY'
import json, sys, urllib.request
query = ("mutation($i: SignUpEmailInput!) { signUpEmail(input: $i) { token } }")
body = {"query": query, "variables": {"i": {"name": "Fuzz", "email": "fuzz-admin@example.com",
                                            "password": "a fuzzing passphrase"}}}
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/graphql",
                             data=json.dumps(body).encode(),
                             headers={"content-type": "application/json"})
print(json.load(urllib.request.urlopen(req, timeout=10))["data"]["signUpEmail"]["token"])
PY
)"

SCHEMATHESIS_HOOKS=hooks $ST run ../../schema.graphql \
    --url "http://127.0.0.1:$port/graphql" \
    -H "Authorization: Bearer $token" \
    --checks all --exclude-checks not_a_server_error,positive_data_acceptance \
    --max-time "$SECONDS_BUDGET" --workers 2 --no-color
if grep -qi "panicked" "$work/server.log"; then
    echo "graphql fuzz: the server panicked:" >&2
    grep -i -A5 panicked "$work/server.log" >&2
    exit 1
fi
