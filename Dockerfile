# Multi-stage release build of the sales-block binary.
#
#   docker build -t sales-block .
#   docker run -p 8080:8080 -v sales-data:/app/data sales-block
#
# runs it with its defaults: SQLite in /app/data (a volume) and, outside production, a master key
# generated once into /app/data/master.key. For PostgreSQL and an explicit master key see
# compose.yaml.
FROM rust:1.95-bookworm AS build
# A C compiler (in the image) builds the bundled SQLite and libpq; OpenSSL's headers and
# pkg-config serve native-tls and libpq's TLS. No libpq-dev.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Without the default `emulator` feature: no Stripe stand-in (nor `demo`) in a production image.
RUN cargo build --release --locked --no-default-features --bin sales-block

FROM debian:bookworm-slim
# libpq and SQLite are linked in; OpenSSL and the CA certificates are the system's.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /app --shell /usr/sbin/nologin sales \
 && mkdir -p /app/data \
 && chown sales:sales /app/data
COPY --from=build /src/target/release/sales-block /usr/local/bin/sales-block
WORKDIR /app
USER sales
ENV SALES_BIND=0.0.0.0:8080 \
    SALES_LOG_FORMAT=json
# The SQLite default (sqlite://data/sales.db) and a generated master key (data/master.key) are
# written here; a named volume keeps them across containers.
VOLUME ["/app/data"]
EXPOSE 8080
# Liveness: `sales-block health` asks GET /health on the bound port (no curl in the image).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["sales-block", "health"]
# In production set SALES_ENV=production, DATABASE_URL (postgres://...), SALES_MASTER_KEY and
# SALES_PUBLIC_URL, in the environment or in an env file named by SALES_ENV_FILE.
CMD ["sales-block", "serve"]
