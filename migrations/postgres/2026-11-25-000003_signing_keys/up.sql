-- Ed25519 keys that sign access tokens, shared by every replica. `id` is the JWK `kid`
-- (RFC 7638 thumbprint), `public_key` the base64url 32-byte public key, `private_key` the
-- seed sealed with XChaCha20-Poly1305 under a key derived from APEXKIT_SECRET.
-- The active key is the one not retired; a retired key stays published until every token it
-- signed has expired.
CREATE TABLE signing_key (
    id text PRIMARY KEY,
    algorithm text NOT NULL,
    public_key text NOT NULL,
    private_key text NOT NULL,
    created_at timestamp NOT NULL,
    retired_at timestamp
);
-- At most one active key: replicas racing to create or rotate converge on one winner.
CREATE UNIQUE INDEX signing_key_one_active ON signing_key ((retired_at IS NULL)) WHERE retired_at IS NULL;
