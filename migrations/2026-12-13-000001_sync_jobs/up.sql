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
    created_at TIMESTAMP NOT NULL,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX sync_jobs_due ON sync_jobs (status, lease_until);
CREATE INDEX sync_jobs_tenant ON sync_jobs (tenant_id, created_at);
