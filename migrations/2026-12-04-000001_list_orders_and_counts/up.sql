-- Every list is read in an order an index matches exactly (its filters leading), so a page
-- is a range of one index and deep pages can be read from the nearer end.
DROP INDEX subscriptions_tenant_order;
DROP INDEX subscriptions_tenant_customer;
CREATE INDEX subscriptions_list ON subscriptions (tenant_id, stripe_created, created_at, id);
CREATE INDEX subscriptions_list_status ON subscriptions (tenant_id, status, stripe_created, created_at, id);
CREATE INDEX subscriptions_list_customer ON subscriptions (tenant_id, stripe_customer_id, stripe_created, created_at, id);

CREATE INDEX payments_list ON payments (tenant_id, created_at, id);
CREATE INDEX payments_list_status ON payments (tenant_id, status, created_at, id);
CREATE INDEX payments_list_customer ON payments (tenant_id, stripe_customer_id, created_at, id);
CREATE INDEX payments_list_owner ON payments (tenant_id, owner_subject, created_at, id);

CREATE INDEX customers_list ON customers (tenant_id, created_at, id) WHERE deleted_at IS NULL;

DROP INDEX refunds_payment;
CREATE INDEX refunds_list ON refunds (tenant_id, stripe_created, id);
CREATE INDEX refunds_list_payment ON refunds (tenant_id, stripe_payment_intent_id, stripe_created, id);

DROP INDEX payment_methods_customer;
CREATE INDEX payment_methods_list ON payment_methods (tenant_id, created_at, id);
CREATE INDEX payment_methods_list_customer ON payment_methods (tenant_id, stripe_customer_id, created_at, id);

CREATE INDEX notification_outbox_list ON notification_outbox (tenant_id, created_at, id);

-- How many rows each list holds, per tenant, bucket (a status, or live/deleted) and span
-- (the week of the list's first order column), so a page's total is read, not counted, and
-- a deep page is found by summing spans and walking only the span it falls in. Kept by
-- triggers the service installs at start (src/db/counts.rs: their SQL differs between the
-- backends), in the transaction that writes the rows. On PostgreSQL each connection adds to a shard of its own (its backend
-- pid), so concurrent writers never wait for each other here; shard 0 holds what the
-- service folded from connections that are gone.
CREATE TABLE IF NOT EXISTS list_counts (
    tenant_id TEXT NOT NULL,
    list TEXT NOT NULL,
    bucket TEXT NOT NULL,
    span BIGINT NOT NULL,
    shard BIGINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, list, bucket, span, shard)
);

-- The bucket definition each list's triggers were installed with; a changed definition
-- reinstalls them and counts the list again.
CREATE TABLE list_count_definitions (
    list TEXT PRIMARY KEY NOT NULL,
    definition TEXT NOT NULL
);
