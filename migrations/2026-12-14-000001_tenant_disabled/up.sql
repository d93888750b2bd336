-- `sales-block tenant disable` / `enable` (issue 14, operator tooling): when set, the operator
-- has disabled the tenant: its API calls answer 403 `tenant_disabled`, Stripe's deliveries
-- for it 503 (Stripe retries them), and it is not reconciled on its own. NULL: enabled.
-- Portable SQL (PostgreSQL and SQLite).
ALTER TABLE tenants ADD COLUMN disabled_at TIMESTAMP;
