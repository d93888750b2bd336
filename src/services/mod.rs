//! The use cases behind the HTTP handlers: each module checks a request, talks to Stripe and
//! records the answer in the mirror.

pub mod cards;
pub mod catalog;
pub mod charges;
pub mod checkout;
pub mod connect;
pub mod customers;
pub mod fetch;
pub mod mirror;
pub mod orders;
pub mod owned;
pub mod paging;
pub mod payment_links;
pub mod payments;
pub mod policy;
pub mod refunds;
pub mod subscriptions;
pub mod sync;
pub mod webhook_endpoints;
