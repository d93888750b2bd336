ALTER TABLE tenants DROP COLUMN disabled_at;
