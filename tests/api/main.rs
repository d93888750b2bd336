//! Integration tests: the real service over HTTP, the Stripe emulator over loopback, and both
//! databases (every scenario runs once on SQLite and once on PostgreSQL).

mod helpers;

mod auth;
mod cards;
mod catalog;
mod charges;
mod cli;
mod concurrent_writes;
mod connect;
mod customer_changes;
mod customer_reads;
mod customers;
mod deadlines;
mod egress;
mod fetch;
mod http;
mod idempotency;
mod input_ids;
mod lists;
mod logs;
mod master_key;
mod metrics;
mod mirror;
mod notifications;
mod operator;
mod orders;
mod ownership;
mod payment_reads;
mod payments;
mod policy;
mod rate_limits;
mod receiver;
mod receiver_bounds;
mod refunds;
mod retention;
mod sessions;
mod subscriptions;
mod sweep;
mod sync;
mod token_rules;
mod webhook_changes;
mod webhooks;
mod wire;
