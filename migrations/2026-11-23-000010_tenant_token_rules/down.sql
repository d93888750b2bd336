ALTER TABLE tenants DROP COLUMN jwt_max_lifetime_secs;
ALTER TABLE tenants DROP COLUMN jwt_require_app_binding;
