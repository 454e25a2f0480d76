-- One-time tokens (password reset, email verification, email change) are bound to one user and
-- one purpose; `identifier` holds the SHA-256 of the token, never the token.
ALTER TABLE verification ADD COLUMN user_id text REFERENCES "user" (id) ON DELETE CASCADE;
ALTER TABLE verification ADD COLUMN purpose text NOT NULL DEFAULT '';
CREATE INDEX verification_user_id_idx ON verification (user_id);

-- Outgoing mail: written in the transaction that decides to send it, delivered by a background
-- worker with retries. A delivered row keeps only its recipient and times (for the per-address
-- send limit) until it ages out.
CREATE TABLE mail_outbox (
    id text PRIMARY KEY,
    recipient text NOT NULL,
    subject text NOT NULL,
    text_body text NOT NULL,
    html_body text NOT NULL,
    created_at timestamp NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamp NOT NULL,
    locked_until timestamp,
    sent_at timestamp,
    last_error text
);
CREATE INDEX mail_outbox_pending_idx ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL;
CREATE INDEX mail_outbox_recipient_idx ON mail_outbox (recipient, created_at);
