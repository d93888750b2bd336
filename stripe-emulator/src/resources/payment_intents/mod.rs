//! Payment intents: create (optionally confirming), retrieve, update, confirm, capture,
//! cancel, list.
//!
//! Confirming charges the intent's payment method: a test card that succeeds gives
//! `succeeded` (or `requires_capture` with `capture_method=manual`) and a `ch_...` charge;
//! a declining card gives HTTP 402 with a `card_error` that carries the intent (now
//! `requires_payment_method`, with `last_payment_error`), and leaves a failed charge. The
//! same engine ([`crate::objects::payment_intents`]) pays invoices.

pub mod create;
pub mod lifecycle;
pub mod read;
pub mod update;

pub use create::create;
pub use lifecycle::{cancel, capture, confirm, list, retrieve};
pub use update::update;
