# Multi-stage release build of the sales-block binary.
FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq-dev libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Without the default `emulator` feature: no Stripe stand-in (nor `demo`) in a production image.
RUN cargo build --release --locked --no-default-features --bin sales-block

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /app sales
COPY --from=build /src/target/release/sales-block /usr/local/bin/sales-block
WORKDIR /app
USER sales
ENV SALES_BIND=0.0.0.0:8080 \
    SALES_LOG_FORMAT=json
EXPOSE 8080
# Set DATABASE_URL (postgres://...), SALES_MASTER_KEY and SALES_PUBLIC_URL in production.
CMD ["sales-block", "serve"]
