//! Subscriptions and their items, as the API, checkout and invoices change them.
//!
//! Items are kept inside the subscription object (`items.data`, each with its full `price`
//! and its own `current_period_start`/`end`, as at this API version).

pub mod create;
pub mod items;
pub mod prorations;
pub mod record;
pub mod spec;
