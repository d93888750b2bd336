-- Payment links, mirrored like the other Stripe objects (issue 19): created through
-- `POST /stripe/payment_links` and kept current by payment_link.created/updated events under
-- the watermark rule. Stripe's payment link has no `created`: the list is ordered by when we
-- first saw the link. `price_id` and `quantity` are the link's line item as we created it
-- (Stripe's events do not carry line items): set once, never by an event.
CREATE TABLE payment_links (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL,
    stripe_payment_link_id TEXT NOT NULL,
    url TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    price_id TEXT,
    quantity BIGINT,
    metadata TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    watermark BIGINT,
    UNIQUE (tenant_id, stripe_payment_link_id)
);
CREATE INDEX payment_links_list ON payment_links (tenant_id, created_at, id);
CREATE INDEX payment_links_list_active ON payment_links (tenant_id, active, created_at, id);

-- The catalogue's lists: live rows newest first, all of them or only the active (or
-- archived) ones.
CREATE INDEX products_list ON products (tenant_id, stripe_created, id) WHERE deleted_at IS NULL;
CREATE INDEX products_list_active ON products (tenant_id, active, stripe_created, id) WHERE deleted_at IS NULL;
CREATE INDEX prices_list ON prices (tenant_id, stripe_created, id) WHERE deleted_at IS NULL;
CREATE INDEX prices_list_active ON prices (tenant_id, active, stripe_created, id) WHERE deleted_at IS NULL;
