//! sales-block: the service between a company's frontend apps and Stripe, serving the 23blocks
//! sales block's Stripe routes for many tenants at once.

pub mod app;
pub mod bounded;
pub mod caller;
pub mod config;
pub mod crypto;
pub mod db;
pub mod domain;
pub mod error;
pub mod http;
pub mod idempotency;
pub mod metrics;
pub mod misses;
pub mod orders;
pub mod outbound;
pub mod ratelimit;
pub mod receiver;
pub mod rekey;
pub mod retention;
pub mod services;
pub mod signature;
pub mod state;
pub mod stripe;
pub mod sync;
pub mod telemetry;
pub mod tenant_cache;
pub mod tenants;
