//! The Stripe objects the emulator keeps, and the rules that change them: what the API
//! handlers ([`crate::resources`]), the hosted pages and the events engine share. A
//! module here never parses a whole request and never answers one; it builds, finds and
//! changes stored objects (`Store`), so one resource's handler can pay an invoice or create
//! a subscription without reaching into another handler.
//!
//! Layers within: customers, payment methods, products, prices, coupons and the other
//! leaf objects first; then payment intents (which charge, and settle a paid invoice through
//! [`paid_invoices`]); then invoices (which open payment intents); then subscriptions (which
//! bill through invoices).

pub mod balance;
pub mod charges;
pub mod coupons;
pub mod customers;
pub mod invoices;
pub mod line_items;
pub mod paid_invoices;
pub mod payment_intents;
pub mod payment_methods;
pub mod prices;
pub mod products;
pub mod promotion_codes;
pub mod refunds;
pub mod setup_intents;
pub mod subscriptions;
pub mod webhook_endpoints;
