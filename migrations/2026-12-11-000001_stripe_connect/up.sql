-- Stripe Connect and Stripe Apps onboarding (issue 18). Portable SQL (PostgreSQL and SQLite).
--
-- How a tenant reaches Stripe: `secret_key` (its own key, as before), `connect` (the
-- platform's key plus `Stripe-Account`), `app` (a Stripe Apps OAuth access token, refreshed
-- with the stored refresh token), or `none` (disconnected: its Stripe calls answer 409).
ALTER TABLE tenants ADD COLUMN stripe_access TEXT NOT NULL DEFAULT 'secret_key';
ALTER TABLE tenants ADD COLUMN stripe_account_id TEXT;
ALTER TABLE tenants ADD COLUMN stripe_livemode BOOLEAN;
ALTER TABLE tenants ADD COLUMN stripe_scope TEXT;
ALTER TABLE tenants ADD COLUMN stripe_connected_at TIMESTAMP;
ALTER TABLE tenants ADD COLUMN stripe_disconnected_at TIMESTAMP;
-- Stripe Apps only, encrypted under the master key: the refresh token (voided by each
-- refresh), the current access token and when it expires, and the lease of the instance
-- refreshing it now (one refresh at a time per tenant, across instances).
ALTER TABLE tenants ADD COLUMN stripe_refresh_token_enc TEXT;
ALTER TABLE tenants ADD COLUMN stripe_access_token_enc TEXT;
ALTER TABLE tenants ADD COLUMN stripe_access_token_expires_at TIMESTAMP;
ALTER TABLE tenants ADD COLUMN stripe_token_lease_until TIMESTAMP;
-- Where a browser may be sent back after connecting (JSON list of origins); NULL: the
-- operator's connect_return_origins, else its cors_origins.
ALTER TABLE tenants ADD COLUMN connect_return_origins TEXT;
-- One tenant per connected account and mode: the platform webhook routes by it.
CREATE UNIQUE INDEX tenants_stripe_account ON tenants (stripe_account_id, stripe_livemode);

-- A login in progress: the single-use `state` (stored as its SHA-256), bound to the tenant
-- and the caller that started it.
CREATE TABLE stripe_oauth_states (
    state_hash TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    subject TEXT NOT NULL,
    flow TEXT NOT NULL,
    return_url TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX stripe_oauth_states_expiry ON stripe_oauth_states (expires_at);

-- An installation started on Stripe's side, waiting to be claimed by a signed-in admin: the
-- credentials of the token exchange, encrypted, under a one-time claim token (its SHA-256).
CREATE TABLE stripe_oauth_claims (
    token_hash TEXT PRIMARY KEY NOT NULL,
    flow TEXT NOT NULL,
    stripe_account_id TEXT NOT NULL,
    livemode BOOLEAN NOT NULL,
    scope TEXT,
    refresh_token_enc TEXT,
    access_token_enc TEXT,
    access_token_expires_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX stripe_oauth_claims_expiry ON stripe_oauth_claims (expires_at);
