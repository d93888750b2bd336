-- Each list's rows per tenant and bucket across all time, kept by the same triggers as
-- list_counts (src/db/counts.rs, in the transaction that writes the rows; a shard per
-- PostgreSQL connection, 0 for what was folded and for SQLite): a page's total sums a few
-- rows (buckets x live shards) instead of every week of the list's history.
-- The triggers that fill it are installed (and the lists counted again) at the next start,
-- because their definition changed.
CREATE TABLE IF NOT EXISTS list_totals (
    tenant_id TEXT NOT NULL,
    list TEXT NOT NULL,
    bucket TEXT NOT NULL,
    shard BIGINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, list, bucket, shard)
);
