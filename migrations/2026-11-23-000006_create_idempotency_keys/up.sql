-- Saved answers to requests sent with an `Idempotency-Key` (STRIPE_RULES.md, Idempotency).
-- A request claims its key by inserting a row `in_flight`; the unique constraint makes that
-- claim atomic across instances, so a concurrent retry loses and is told so (409). The answer
-- is written afterwards (`completed`) and replayed for retries until the key expires (24 h).
-- Portable SQL (PostgreSQL and SQLite).
CREATE TABLE idempotency_keys (
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
    response_body TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
