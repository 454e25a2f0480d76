-- Passkeys (WebAuthn credentials), Better Auth's `passkey` table in snake_case plus
-- `last_used_at`. `public_key` holds the whole credential as the verifier serialises it
-- (COSE public key, counter, flags, policy): public data, nothing secret.
CREATE TABLE passkey (
    id text PRIMARY KEY,
    name text,
    public_key text NOT NULL,
    user_id text NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
    credential_id text NOT NULL UNIQUE,
    counter bigint NOT NULL DEFAULT 0,
    device_type text NOT NULL,
    backed_up boolean NOT NULL DEFAULT false,
    transports text,
    created_at timestamp NOT NULL DEFAULT now(),
    last_used_at timestamp,
    aaguid text
);
CREATE INDEX passkey_user_id_idx ON passkey (user_id);
