-- Notifications to the tenant's own app (its notify_url): written in the same transaction as
-- the mirror change that causes them (an outbox), delivered at least once by a background
-- worker with back-off, under a lease so several instances never send one at the same time.
ALTER TABLE tenants ADD COLUMN notify_url TEXT;
ALTER TABLE tenants ADD COLUMN notify_secret_enc TEXT;

CREATE TABLE notification_outbox (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    -- The Stripe event that caused it: one notification per event and type.
    source_event_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    -- pending, delivered, or failed (gave up after the last attempt).
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    leased_until TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    delivered_at TIMESTAMP,
    UNIQUE (tenant_id, source_event_id, event_type)
);
CREATE INDEX notification_outbox_due ON notification_outbox (status, next_attempt_at);

-- Every delivery attempt, for admins.
CREATE TABLE notification_attempts (
    id TEXT PRIMARY KEY NOT NULL,
    notification_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    attempted_at TIMESTAMP NOT NULL,
    url TEXT NOT NULL,
    status_code BIGINT,
    error TEXT,
    duration_ms BIGINT NOT NULL
);
CREATE INDEX notification_attempts_tenant ON notification_attempts (tenant_id, attempted_at);
