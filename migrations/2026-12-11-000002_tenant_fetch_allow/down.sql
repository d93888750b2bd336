ALTER TABLE tenants DROP COLUMN fetch_allow;
