//! sales-block: the service between a company's frontend apps and Stripe, serving the 23blocks
//! sales block's Stripe routes for many tenants at once.

pub mod auth;
pub mod cards;
pub mod catalog;
pub mod checkout;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod customers;
pub mod db;
#[cfg(feature = "emulator")]
pub mod demo;
pub mod domain;
pub mod egress;
pub mod error;
pub mod http;
pub mod idempotency;
pub mod notifications;
pub mod order_lookup;
pub mod orders;
pub mod payments;
pub mod policy;
pub mod ratelimit;
pub mod receiver;
pub mod refunds;
pub mod rekey;
pub mod signature;
pub mod startup;
pub mod state;
pub mod stripe;
pub mod subscriptions;
pub mod telemetry;
pub mod tenants;
pub mod webhook_endpoints;
