-- Every Stripe event received, once per tenant (dedup on the unique constraint), and a
-- watermark on each mirrored row: the `created` of the Stripe state it holds, so an older
-- event never overwrites newer state (STRIPE_RULES.md, Delivery).
CREATE TABLE stripe_events (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id),
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    object_id TEXT,
    stripe_created BIGINT NOT NULL,
    api_version TEXT,
    payload TEXT NOT NULL,
    -- applied, stale (older than the mirror), ignored (a type we do not mirror), or
    -- refresh_pending (a same-second tie whose object must be re-read from Stripe).
    outcome TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL,
    UNIQUE (tenant_id, event_id)
);
CREATE INDEX stripe_events_object ON stripe_events (tenant_id, object_id);

ALTER TABLE customers ADD COLUMN deleted_at TIMESTAMP;
ALTER TABLE customers ADD COLUMN watermark BIGINT;
ALTER TABLE subscriptions ADD COLUMN watermark BIGINT;
ALTER TABLE payments ADD COLUMN watermark BIGINT;
ALTER TABLE checkout_sessions ADD COLUMN watermark BIGINT;
