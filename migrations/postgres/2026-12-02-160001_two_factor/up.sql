-- Two-factor authentication (TOTP, backup codes, the second step of sign-in, trusted
-- browsers) and passwordless sign-in codes. Secrets are sealed with APEXKIT_SECRET; codes and
-- tokens are stored only as keyed hashes (backup and mailed codes) or SHA-256 (tokens).
CREATE TABLE two_factor (
    user_id text PRIMARY KEY REFERENCES "user" (id) ON DELETE CASCADE,
    -- The TOTP secret, sealed (auth/seal.rs), bound to the user id.
    secret text NOT NULL,
    -- Active only after the first correct code.
    enabled boolean NOT NULL DEFAULT false,
    -- The last accepted TOTP time step: a code of that step or an earlier one is a replay.
    last_step bigint,
    created_at timestamp NOT NULL,
    updated_at timestamp NOT NULL
);

CREATE TABLE two_factor_backup_code (
    id text PRIMARY KEY,
    user_id text NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
    code_hash text NOT NULL,
    created_at timestamp NOT NULL
);
CREATE UNIQUE INDEX two_factor_backup_code_user_hash_idx ON two_factor_backup_code (user_id, code_hash);

-- A sign-in waiting for its second factor (the twoFactorToken, as its SHA-256).
CREATE TABLE two_factor_challenge (
    token_hash text PRIMARY KEY,
    user_id text NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
    remember_me boolean NOT NULL,
    -- Wrong codes so far (TOTP, backup and mailed codes together); dead at 5.
    failures integer NOT NULL DEFAULT 0,
    -- The mailed second-factor code (keyed hash) and its expiry, when one was sent.
    otp_hash text,
    otp_expires_at timestamp,
    expires_at timestamp NOT NULL,
    created_at timestamp NOT NULL
);
CREATE INDEX two_factor_challenge_user_idx ON two_factor_challenge (user_id);
CREATE INDEX two_factor_challenge_expires_idx ON two_factor_challenge (expires_at);

-- A browser that may skip the second factor (the apexkit.trusted_device cookie, as SHA-256).
CREATE TABLE trusted_device (
    token_hash text PRIMARY KEY,
    user_id text NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
    expires_at timestamp NOT NULL,
    created_at timestamp NOT NULL
);
CREATE INDEX trusted_device_user_idx ON trusted_device (user_id);

-- Sign-in codes by mail (sendSignInOtp): one live code per address, keyed hash, 3 attempts.
CREATE TABLE email_code (
    email text PRIMARY KEY,
    code_hash text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    expires_at timestamp NOT NULL,
    created_at timestamp NOT NULL
);
