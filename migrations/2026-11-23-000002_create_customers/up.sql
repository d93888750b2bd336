-- The mirror of Stripe customers, one row per customer created through (or seen by) a tenant.
CREATE TABLE customers (
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
    -- The JWT subject that created it: non-admin callers see only their own customers.
    owner_subject TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (tenant_id, stripe_customer_id)
);
CREATE INDEX customers_tenant_user ON customers (tenant_id, user_unique_id);
CREATE INDEX customers_tenant_owner ON customers (tenant_id, owner_subject);
