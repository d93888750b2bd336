-- Charges (issue 17), mirrored like the other Stripe objects: written from the charge.*
-- events under the watermark rule (charge.refund.updated carries a refund, not a charge).
-- Charges are never created by our API, so a row has no owner: who sees it follows its
-- payment and its customer (src/db/charges.rs). The refunds table already links a refund to
-- its charge (stripe_charge_id). Portable SQL (PostgreSQL and SQLite).
CREATE TABLE charges (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL,
    stripe_charge_id TEXT NOT NULL,
    stripe_payment_intent_id TEXT,
    stripe_customer_id TEXT,
    amount BIGINT NOT NULL,
    amount_captured BIGINT NOT NULL,
    amount_refunded BIGINT NOT NULL,
    currency TEXT NOT NULL,
    captured BOOLEAN NOT NULL,
    refunded BOOLEAN NOT NULL,
    paid BOOLEAN NOT NULL,
    status TEXT NOT NULL,
    failure_code TEXT,
    failure_message TEXT,
    payment_method TEXT,
    payment_method_type TEXT,
    card_brand TEXT,
    card_last4 TEXT,
    receipt_url TEXT,
    description TEXT,
    metadata TEXT NOT NULL,
    stripe_created BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    watermark BIGINT,
    UNIQUE (tenant_id, stripe_charge_id)
);
-- The list newest first (Stripe's created, then our id), whole or narrowed by one filter.
CREATE INDEX charges_list ON charges (tenant_id, stripe_created, id);
CREATE INDEX charges_list_payment ON charges (tenant_id, stripe_payment_intent_id, stripe_created, id);
CREATE INDEX charges_list_customer ON charges (tenant_id, stripe_customer_id, stripe_created, id);
CREATE INDEX charges_list_status ON charges (tenant_id, status, stripe_created, id);
