-- The rest of the Stripe mirror: products, prices, invoices with their lines, subscription
-- items, refunds and payment methods (each with the watermark of the state it holds; children
-- are replaced together with their parent, so they follow its watermark), and the refunded
-- amount of a payment. Portable SQL (PostgreSQL and SQLite).
--
-- stripe_events loses its foreign keys: it is an append-only log written at webhook rate, and
-- a key check per row on the same tenant and endpoint rows made concurrent batches share
-- locks on them (measured: ~10% of the receiver's throughput). The rebuild is how SQLite drops
-- a constraint; it is the same statements on PostgreSQL.
CREATE TABLE stripe_events_log (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    object_id TEXT,
    stripe_created BIGINT NOT NULL,
    api_version TEXT,
    payload TEXT NOT NULL,
    outcome TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL,
    UNIQUE (tenant_id, event_id)
);
INSERT INTO stripe_events_log
    SELECT id, tenant_id, endpoint_id, event_id, event_type, object_id, stripe_created,
           api_version, payload, outcome, received_at
    FROM stripe_events;
DROP TABLE stripe_events;
ALTER TABLE stripe_events_log RENAME TO stripe_events;
CREATE INDEX stripe_events_object ON stripe_events (tenant_id, object_id);

CREATE TABLE products (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    stripe_product_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    active BOOLEAN NOT NULL,
    metadata TEXT NOT NULL,
    deleted_at TIMESTAMP,
    stripe_created BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    watermark BIGINT,
    UNIQUE (tenant_id, stripe_product_id)
);

CREATE TABLE prices (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    stripe_price_id TEXT NOT NULL,
    stripe_product_id TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    currency TEXT NOT NULL,
    unit_amount BIGINT,
    price_type TEXT NOT NULL,
    recurring_interval TEXT,
    recurring_interval_count BIGINT,
    nickname TEXT,
    metadata TEXT NOT NULL,
    deleted_at TIMESTAMP,
    stripe_created BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    watermark BIGINT,
    UNIQUE (tenant_id, stripe_price_id)
);
CREATE INDEX prices_product ON prices (tenant_id, stripe_product_id);

CREATE TABLE invoices (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    stripe_invoice_id TEXT NOT NULL,
    stripe_customer_id TEXT,
    stripe_subscription_id TEXT,
    status TEXT,
    currency TEXT NOT NULL,
    amount_due BIGINT NOT NULL,
    amount_paid BIGINT NOT NULL,
    amount_remaining BIGINT NOT NULL,
    total BIGINT NOT NULL,
    number TEXT,
    hosted_invoice_url TEXT,
    metadata TEXT NOT NULL,
    deleted_at TIMESTAMP,
    stripe_created BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    watermark BIGINT,
    UNIQUE (tenant_id, stripe_invoice_id)
);
CREATE INDEX invoices_subscription ON invoices (tenant_id, stripe_subscription_id);

-- Children carry their parent's Stripe id and are replaced whenever the parent's state is.
CREATE TABLE invoice_lines (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL,
    stripe_invoice_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    stripe_line_id TEXT NOT NULL,
    description TEXT,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    quantity BIGINT,
    price_id TEXT,
    UNIQUE (tenant_id, stripe_invoice_id, position)
);

CREATE TABLE subscription_items (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL,
    stripe_subscription_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    stripe_item_id TEXT NOT NULL,
    price_id TEXT,
    quantity BIGINT,
    UNIQUE (tenant_id, stripe_subscription_id, position)
);

CREATE TABLE refunds (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    stripe_refund_id TEXT NOT NULL,
    stripe_payment_intent_id TEXT,
    stripe_charge_id TEXT,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    metadata TEXT NOT NULL,
    owner_subject TEXT NOT NULL,
    stripe_created BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    watermark BIGINT,
    UNIQUE (tenant_id, stripe_refund_id)
);
CREATE INDEX refunds_payment ON refunds (tenant_id, stripe_payment_intent_id);

CREATE TABLE payment_methods (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    stripe_payment_method_id TEXT NOT NULL,
    stripe_customer_id TEXT,
    method_type TEXT NOT NULL,
    card_brand TEXT,
    card_last4 TEXT,
    card_exp_month BIGINT,
    card_exp_year BIGINT,
    metadata TEXT NOT NULL,
    owner_subject TEXT NOT NULL,
    stripe_created BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    watermark BIGINT,
    UNIQUE (tenant_id, stripe_payment_method_id)
);
CREATE INDEX payment_methods_customer ON payment_methods (tenant_id, stripe_customer_id);

-- Grows with each refund (charge.refunded); only ever raised, so the order of events cannot
-- lower it.
ALTER TABLE payments ADD COLUMN amount_refunded BIGINT NOT NULL DEFAULT 0;
