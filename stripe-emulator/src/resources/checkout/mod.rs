//! Checkout sessions: create, retrieve, list, line items, expire; completion (the test
//! helper `POST /_emulator/checkout/sessions/:id/complete` and the hosted page at
//! `{base}/c/pay/:id`).
//!
//! Amounts: `amount_subtotal` is what is due at completion before discounts (in
//! `subscription` mode with a trial, only the one-time items), `amount_total` after the
//! session's coupon. Completing a session makes what Stripe's hosted page would: in
//! `payment` mode a succeeded payment intent (a customer only with
//! `customer_creation=always`, as in Stripe), in `subscription` mode a customer (if none)
//! and a subscription charged to the card, in `setup` mode a customer (if none) and a
//! succeeded setup intent. A declining card answers the 402 and leaves the session open.

pub mod complete;
pub mod create;
pub mod create_lines;
pub mod create_request;
pub mod session;

pub use complete::complete;
pub use create::create;
pub use session::{LABEL, PAGE_PREFIX, expire, list, list_line_items, retrieve};
