-- Historical sync (issue 17): durable, resumable jobs that page Stripe's lists into the
-- mirror. A job's progress (per object type: read, written, the cursor of the last page
-- written, done) is saved in the transaction that writes that page, so a job resumed after a
-- restart continues from its last page and counts nothing twice. A worker on each instance
-- leases jobs (lease_owner, lease_until), so two instances never run one job at once.
-- Portable SQL (PostgreSQL and SQLite).
CREATE TABLE sync_jobs (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    objects TEXT NOT NULL,
    created_gte BIGINT,
    created_lt BIGINT,
    progress TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    lease_owner TEXT,
    lease_until TIMESTAMP,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    -- What an admin should know that is not an error (a reconciliation's gap).
    note TEXT,
    created_at TIMESTAMP NOT NULL,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX sync_jobs_due ON sync_jobs (status, lease_until);
CREATE INDEX sync_jobs_tenant ON sync_jobs (tenant_id, created_at);
-- At most one queued or running job of each kind per tenant (a periodic reconciliation on two
-- instances at once enqueues one job).
CREATE UNIQUE INDEX sync_jobs_one_active ON sync_jobs (tenant_id, kind)
    WHERE status IN ('queued', 'running');

-- Reconciliation of missed events, per tenant: every event created before
-- reconciled_through has been listed from Stripe and fed through the receiver; what the last
-- run and all runs recovered (events never delivered); gap_before: events before this second
-- could not be recovered (Stripe lists 30 days), a backfill is needed.
CREATE TABLE sync_state (
    tenant_id TEXT PRIMARY KEY NOT NULL REFERENCES tenants (id),
    reconciled_through BIGINT,
    last_reconciled_at TIMESTAMP,
    last_recovered BIGINT NOT NULL DEFAULT 0,
    total_recovered BIGINT NOT NULL DEFAULT 0,
    gap_before BIGINT,
    updated_at TIMESTAMP NOT NULL
);
