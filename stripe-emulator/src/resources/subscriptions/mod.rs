//! Subscriptions and their items: create, retrieve, update (plan changes with prorations,
//! cancel at period end, trial changes), cancel, list; `GET /v1/subscription_items`.
//!
//! Items are kept inside the subscription object (`items.data`, each with its full
//! `price` and its own `current_period_start`/`end`, as at this API version). How a new
//! subscription's status is decided: see [`create`](create::create).

pub mod cancel;
pub mod create;
pub mod list;
pub mod read;
pub mod update;
pub mod update_billing;
pub mod update_request;

pub use cancel::cancel;
pub use create::create;
pub use list::{list, list_items, retrieve, retrieve_item};
pub use update::update;
