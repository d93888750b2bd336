DROP TABLE notification_attempts;
DROP TABLE notification_outbox;
ALTER TABLE tenants DROP COLUMN notify_secret_enc;
ALTER TABLE tenants DROP COLUMN notify_url;
