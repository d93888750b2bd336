-- What a tenant's bearer tokens must satisfy beyond their signature (issue 12, point 2):
-- whether they must be bound to the app (an `app_id` claim equal to its api key), and the
-- longest lifetime (`exp - iat`, seconds) accepted. Portable SQL (PostgreSQL and SQLite).
ALTER TABLE tenants ADD COLUMN jwt_require_app_binding BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE tenants ADD COLUMN jwt_max_lifetime_secs BIGINT NOT NULL DEFAULT 86400;
