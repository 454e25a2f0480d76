-- Fixed-window rate-limit counters shared by every replica; key = class:client-bucket:window.
CREATE TABLE rate_limit (
    key text PRIMARY KEY,
    count integer NOT NULL,
    expires_at timestamp NOT NULL
);
CREATE INDEX rate_limit_expires_at_idx ON rate_limit (expires_at);

-- Consecutive failed sign-ins per account; key = SHA-256 of the normalised email.
CREATE TABLE sign_in_failure (
    key text PRIMARY KEY,
    failures integer NOT NULL,
    locked_until timestamp NOT NULL,
    updated_at timestamp NOT NULL
);
CREATE INDEX sign_in_failure_updated_at_idx ON sign_in_failure (updated_at);
