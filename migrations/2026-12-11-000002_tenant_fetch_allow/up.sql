-- POST /stripe/fetch: the tenant's own narrowing of the operator's `fetch_allowed` list, a
-- JSON array of `METHOD /v1/...` rules; NULL: the operator's list as it is. Set by
-- `sales-block tenant set-fetch-allow`. Portable SQL (PostgreSQL and SQLite).
ALTER TABLE tenants ADD COLUMN fetch_allow TEXT;
