-- Mirrors of checkout sessions, payment intents and subscriptions, and the tenant's Stripe
-- webhook endpoints with their signing secrets. Portable SQL (PostgreSQL and SQLite).

CREATE TABLE checkout_sessions (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    stripe_session_id TEXT NOT NULL,
    mode TEXT NOT NULL,
    status TEXT,
    payment_status TEXT NOT NULL,
    url TEXT,
    amount_total BIGINT,
    currency TEXT,
    stripe_customer_id TEXT,
    customer_email TEXT,
    success_url TEXT,
    cancel_url TEXT,
    stripe_payment_intent_id TEXT,
    stripe_subscription_id TEXT,
    expires_at TIMESTAMP,
    metadata TEXT NOT NULL,
    owner_subject TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (tenant_id, stripe_session_id)
);

CREATE TABLE payments (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    stripe_payment_intent_id TEXT NOT NULL,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    stripe_customer_id TEXT,
    payment_method TEXT,
    description TEXT,
    metadata TEXT NOT NULL,
    owner_subject TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (tenant_id, stripe_payment_intent_id)
);

CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    stripe_subscription_id TEXT NOT NULL,
    stripe_customer_id TEXT NOT NULL,
    status TEXT NOT NULL,
    current_period_start TIMESTAMP,
    current_period_end TIMESTAMP,
    trial_end TIMESTAMP,
    cancel_at_period_end BOOLEAN NOT NULL,
    canceled_at TIMESTAMP,
    price_id TEXT,
    quantity BIGINT,
    plan_amount BIGINT,
    plan_currency TEXT,
    plan_interval TEXT,
    metadata TEXT NOT NULL,
    -- Stripe's `created` (unix seconds): the list's newest-first order.
    stripe_created BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (tenant_id, stripe_subscription_id)
);
CREATE INDEX subscriptions_tenant_order ON subscriptions (tenant_id, stripe_created, id);
CREATE INDEX subscriptions_tenant_customer ON subscriptions (tenant_id, stripe_customer_id);

CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    -- Random and unguessable: the receiver's path is /stripe/<url_id>/webhook.
    url_id TEXT NOT NULL UNIQUE,
    stripe_endpoint_id TEXT NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, created_at);

-- More than one secret per endpoint, for rotation (STRIPE_RULES.md, Webhook signatures).
CREATE TABLE webhook_secrets (
    id TEXT PRIMARY KEY NOT NULL,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id),
    secret_enc TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP
);
CREATE INDEX webhook_secrets_endpoint ON webhook_secrets (endpoint_id);
