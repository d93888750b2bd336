-- Idempotency keys belong to the caller (tenant + JWT subject), not the whole tenant: another
-- caller's use of the same key is a request of its own (issue 12, point 4). Saved answers are
-- stored sealed with the master key from now on.
--
-- The unique constraint changes, which SQLite can only do by rebuilding the table (the same
-- statements on PostgreSQL). Rows saved before are not carried over: their answers are in
-- clear text and keyed per app. Keys may be forgotten anyway (24 h); a request retried across
-- the upgrade runs again.
CREATE TABLE idempotency_keys_per_caller (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    idempotency_key TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    -- SHA-256 over the method, path and query, the caller and the body: a retry must match.
    request_hash TEXT NOT NULL,
    -- in_flight or completed
    state TEXT NOT NULL,
    response_status INTEGER,
    -- The answer's body, sealed with the master key (mk1:<key id>:<base64>).
    response_body TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    -- The JWT subject of the caller the key belongs to.
    caller_subject TEXT NOT NULL,
    UNIQUE (tenant_id, caller_subject, idempotency_key)
);
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_per_caller RENAME TO idempotency_keys;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
