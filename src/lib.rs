//! sales-block: the service between a company's frontend apps and Stripe, serving the 23blocks
//! sales block's Stripe routes for many tenants at once.

pub mod auth;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod db;
#[cfg(feature = "emulator")]
pub mod demo;
pub mod domain;
pub mod egress;
pub mod error;
pub mod http;
pub mod idempotency;
pub mod misses;
pub mod notifications;
pub mod order_lookup;
pub mod order_terms;
pub mod orders;
pub mod policy;
pub mod ratelimit;
pub mod receiver;
pub mod rekey;
pub mod services;
pub mod signature;
pub mod startup;
pub mod state;
pub mod stripe;
pub mod telemetry;
pub mod tenant_cache;
pub mod tenants;
