-- Audit trail. No foreign keys: events outlive the users they are about.
CREATE TABLE audit_event (
    id text PRIMARY KEY,
    created_at timestamp DEFAULT now() NOT NULL,
    type text NOT NULL,
    actor_user_id text,
    subject_user_id text,
    ip_address text,
    user_agent text,
    outcome text NOT NULL,
    detail text
);
CREATE INDEX audit_event_subject_idx ON audit_event (subject_user_id, created_at);
CREATE INDEX audit_event_type_idx ON audit_event (type, created_at);
CREATE INDEX audit_event_created_at_idx ON audit_event (created_at);

-- SHA-256 of each applied migration's up.sql, to notice a migration edited after it ran.
CREATE TABLE apexkit_migration (
    version text PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    recorded_at timestamp DEFAULT now() NOT NULL
);
