-- Puts the foreign keys to tenants back (see up.sql).

CREATE TABLE customers_rebuilt (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    stripe_customer_id TEXT NOT NULL,
    email TEXT,
    name TEXT,
    phone TEXT,
    description TEXT,
    default_payment_method TEXT,
    metadata TEXT NOT NULL,
    user_unique_id TEXT,
    identity_type TEXT NOT NULL,
    company_unique_id TEXT,
    entity_unique_id TEXT,
    entity_type TEXT,
    owner_subject TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    deleted_at TIMESTAMP,
    watermark BIGINT,
    UNIQUE (tenant_id, stripe_customer_id)
);
INSERT INTO customers_rebuilt (id, tenant_id, stripe_customer_id, email, name, phone, description, default_payment_method, metadata, user_unique_id, identity_type, company_unique_id, entity_unique_id, entity_type, owner_subject, created_at, updated_at, deleted_at, watermark)
    SELECT id, tenant_id, stripe_customer_id, email, name, phone, description, default_payment_method, metadata, user_unique_id, identity_type, company_unique_id, entity_unique_id, entity_type, owner_subject, created_at, updated_at, deleted_at, watermark FROM customers;
DROP TABLE customers;
ALTER TABLE customers_rebuilt RENAME TO customers;
CREATE INDEX customers_tenant_user ON customers (tenant_id, user_unique_id);
CREATE INDEX customers_tenant_owner ON customers (tenant_id, owner_subject);

CREATE TABLE products_rebuilt (
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
INSERT INTO products_rebuilt (id, tenant_id, stripe_product_id, name, description, active, metadata, deleted_at, stripe_created, created_at, updated_at, watermark)
    SELECT id, tenant_id, stripe_product_id, name, description, active, metadata, deleted_at, stripe_created, created_at, updated_at, watermark FROM products;
DROP TABLE products;
ALTER TABLE products_rebuilt RENAME TO products;

CREATE TABLE prices_rebuilt (
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
INSERT INTO prices_rebuilt (id, tenant_id, stripe_price_id, stripe_product_id, active, currency, unit_amount, price_type, recurring_interval, recurring_interval_count, nickname, metadata, deleted_at, stripe_created, created_at, updated_at, watermark)
    SELECT id, tenant_id, stripe_price_id, stripe_product_id, active, currency, unit_amount, price_type, recurring_interval, recurring_interval_count, nickname, metadata, deleted_at, stripe_created, created_at, updated_at, watermark FROM prices;
DROP TABLE prices;
ALTER TABLE prices_rebuilt RENAME TO prices;
CREATE INDEX prices_product ON prices (tenant_id, stripe_product_id);

CREATE TABLE subscriptions_rebuilt (
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
    stripe_created BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    watermark BIGINT,
    UNIQUE (tenant_id, stripe_subscription_id)
);
INSERT INTO subscriptions_rebuilt (id, tenant_id, stripe_subscription_id, stripe_customer_id, status, current_period_start, current_period_end, trial_end, cancel_at_period_end, canceled_at, price_id, quantity, plan_amount, plan_currency, plan_interval, metadata, stripe_created, created_at, updated_at, watermark)
    SELECT id, tenant_id, stripe_subscription_id, stripe_customer_id, status, current_period_start, current_period_end, trial_end, cancel_at_period_end, canceled_at, price_id, quantity, plan_amount, plan_currency, plan_interval, metadata, stripe_created, created_at, updated_at, watermark FROM subscriptions;
DROP TABLE subscriptions;
ALTER TABLE subscriptions_rebuilt RENAME TO subscriptions;
CREATE INDEX subscriptions_tenant_order ON subscriptions (tenant_id, stripe_created, id);
CREATE INDEX subscriptions_tenant_customer ON subscriptions (tenant_id, stripe_customer_id);

CREATE TABLE invoices_rebuilt (
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
INSERT INTO invoices_rebuilt (id, tenant_id, stripe_invoice_id, stripe_customer_id, stripe_subscription_id, status, currency, amount_due, amount_paid, amount_remaining, total, number, hosted_invoice_url, metadata, deleted_at, stripe_created, created_at, updated_at, watermark)
    SELECT id, tenant_id, stripe_invoice_id, stripe_customer_id, stripe_subscription_id, status, currency, amount_due, amount_paid, amount_remaining, total, number, hosted_invoice_url, metadata, deleted_at, stripe_created, created_at, updated_at, watermark FROM invoices;
DROP TABLE invoices;
ALTER TABLE invoices_rebuilt RENAME TO invoices;
CREATE INDEX invoices_subscription ON invoices (tenant_id, stripe_subscription_id);

CREATE TABLE payments_rebuilt (
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
    watermark BIGINT,
    amount_refunded BIGINT NOT NULL DEFAULT 0,
    UNIQUE (tenant_id, stripe_payment_intent_id)
);
INSERT INTO payments_rebuilt (id, tenant_id, stripe_payment_intent_id, amount, currency, status, stripe_customer_id, payment_method, description, metadata, owner_subject, created_at, updated_at, watermark, amount_refunded)
    SELECT id, tenant_id, stripe_payment_intent_id, amount, currency, status, stripe_customer_id, payment_method, description, metadata, owner_subject, created_at, updated_at, watermark, amount_refunded FROM payments;
DROP TABLE payments;
ALTER TABLE payments_rebuilt RENAME TO payments;

CREATE TABLE refunds_rebuilt (
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
INSERT INTO refunds_rebuilt (id, tenant_id, stripe_refund_id, stripe_payment_intent_id, stripe_charge_id, amount, currency, status, reason, metadata, owner_subject, stripe_created, created_at, updated_at, watermark)
    SELECT id, tenant_id, stripe_refund_id, stripe_payment_intent_id, stripe_charge_id, amount, currency, status, reason, metadata, owner_subject, stripe_created, created_at, updated_at, watermark FROM refunds;
DROP TABLE refunds;
ALTER TABLE refunds_rebuilt RENAME TO refunds;
CREATE INDEX refunds_payment ON refunds (tenant_id, stripe_payment_intent_id);

CREATE TABLE checkout_sessions_rebuilt (
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
    watermark BIGINT,
    UNIQUE (tenant_id, stripe_session_id)
);
INSERT INTO checkout_sessions_rebuilt (id, tenant_id, stripe_session_id, mode, status, payment_status, url, amount_total, currency, stripe_customer_id, customer_email, success_url, cancel_url, stripe_payment_intent_id, stripe_subscription_id, expires_at, metadata, owner_subject, created_at, updated_at, watermark)
    SELECT id, tenant_id, stripe_session_id, mode, status, payment_status, url, amount_total, currency, stripe_customer_id, customer_email, success_url, cancel_url, stripe_payment_intent_id, stripe_subscription_id, expires_at, metadata, owner_subject, created_at, updated_at, watermark FROM checkout_sessions;
DROP TABLE checkout_sessions;
ALTER TABLE checkout_sessions_rebuilt RENAME TO checkout_sessions;

CREATE TABLE payment_methods_rebuilt (
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
INSERT INTO payment_methods_rebuilt (id, tenant_id, stripe_payment_method_id, stripe_customer_id, method_type, card_brand, card_last4, card_exp_month, card_exp_year, metadata, owner_subject, stripe_created, created_at, updated_at, watermark)
    SELECT id, tenant_id, stripe_payment_method_id, stripe_customer_id, method_type, card_brand, card_last4, card_exp_month, card_exp_year, metadata, owner_subject, stripe_created, created_at, updated_at, watermark FROM payment_methods;
DROP TABLE payment_methods;
ALTER TABLE payment_methods_rebuilt RENAME TO payment_methods;
CREATE INDEX payment_methods_customer ON payment_methods (tenant_id, stripe_customer_id);
