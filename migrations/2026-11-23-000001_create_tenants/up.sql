-- Portable SQL: the same migration runs on PostgreSQL and SQLite.
-- Ids are UUIDs stored as text; secrets are AES-GCM ciphertexts (base64) under the master key.
CREATE TABLE tenants (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    api_key TEXT NOT NULL UNIQUE,
    jwt_algorithm TEXT NOT NULL,
    jwt_secret_enc TEXT,
    jwt_public_key TEXT,
    jwt_issuer TEXT,
    jwt_audience TEXT,
    stripe_secret_key_enc TEXT NOT NULL,
    stripe_api_base TEXT,
    created_at TIMESTAMP NOT NULL
);
