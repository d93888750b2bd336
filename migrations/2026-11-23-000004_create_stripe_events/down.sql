ALTER TABLE checkout_sessions DROP COLUMN watermark;
ALTER TABLE payments DROP COLUMN watermark;
ALTER TABLE subscriptions DROP COLUMN watermark;
ALTER TABLE customers DROP COLUMN watermark;
ALTER TABLE customers DROP COLUMN deleted_at;
DROP TABLE stripe_events;
