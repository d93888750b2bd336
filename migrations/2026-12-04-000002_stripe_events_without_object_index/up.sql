-- No query reads stripe_events by object: dedup and outcome updates go by the unique
-- (tenant_id, event_id), a same-second tie is re-read from Stripe, not from stored events.
-- The (tenant_id, object_id) index was one more B-tree insert and its WAL for every event
-- received (docs/BENCHMARKS.md, issue 15).
DROP INDEX stripe_events_object;
