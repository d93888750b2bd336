-- What a tenant lets its end users (non-admin callers) choose that moves money (issue 12):
-- by default none of it; admins always may. `allow` is a JSON array of choice names,
-- `offered_coupons` a JSON array of coupon ids users may apply.
CREATE TABLE tenant_policies (
    tenant_id TEXT PRIMARY KEY NOT NULL,
    allow TEXT NOT NULL,
    offered_coupons TEXT NOT NULL,
    -- Where an unknown order's amount is looked up (GET <url>/<order_unique_id>, signed).
    order_lookup_url TEXT,
    order_lookup_secret_enc TEXT,
    updated_at TIMESTAMP NOT NULL
);

-- Orders the tenant's backend recorded (or its order_lookup_url answered): what a payment
-- for `order_unique_id` charges. Users never name an amount for an order.
CREATE TABLE orders (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL,
    order_unique_id TEXT NOT NULL,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    description TEXT,
    metadata TEXT NOT NULL,
    -- The user the order is for: only they (and admins) read or pay it.
    user_unique_id TEXT,
    -- recorded (PUT by an admin) or lookup (answered by order_lookup_url).
    source TEXT NOT NULL,
    -- The payment intent that pays it, once one was created.
    stripe_payment_intent_id TEXT,
    -- Set while a request is creating its payment at Stripe (a lease), so two requests never
    -- create two intents for one order.
    payment_claimed_at TIMESTAMP,
    -- Bumped when the order's payment intent is dropped (canceled at Stripe), so the next
    -- payment gets a Stripe idempotency key of its own.
    payment_attempt BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (tenant_id, order_unique_id)
);
