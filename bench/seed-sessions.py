#!/usr/bin/env python3
"""Seed N users, each with one session, by copying the bench user's row and its session.

    bench/seed-sessions.py N EMAIL TOKENS_LUA  > seed.sql

Prints SQL valid on PostgreSQL and SQLite (run it with psql or sqlite3) and writes the N fresh
session tokens, as a Lua list for the wrk scripts, to TOKENS_LUA. Tokens are what the service
issues (32 random bytes, base64url) and only their SHA-256 (base64url) goes to the database.
"""
import base64
import hashlib
import secrets
import sys

n, email, tokens_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


tokens = []
print("BEGIN;")
for i in range(n):
    token = b64(secrets.token_bytes(32))
    tokens.append(token)
    token_hash = b64(hashlib.sha256(token.encode()).digest())
    user = f"bench-user-{i:04d}"
    print(
        'INSERT INTO "user" (id, name, email, email_verified, image, created_at, updated_at, role, banned) '
        f"SELECT '{user}', 'Bench User {i}', 'bench-{i:04d}@example.com', email_verified, image, "
        f"created_at, updated_at, role, banned FROM \"user\" WHERE email = '{email}';"
    )
    print(
        "INSERT INTO session (id, expires_at, token_hash, created_at, updated_at, ip_address, user_agent, user_id) "
        f"SELECT 'bench-session-{i:04d}', s.expires_at, '{token_hash}', s.created_at, s.updated_at, "
        f"s.ip_address, s.user_agent, '{user}' FROM session s JOIN \"user\" u ON u.id = s.user_id "
        f"WHERE u.email = '{email}' LIMIT 1;"
    )
print("COMMIT;")
with open(tokens_path, "w") as f:
    f.write("return {\n" + "".join(f'  "{t}",\n' for t in tokens) + "}\n")
