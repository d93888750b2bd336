//! Invoices and invoice items.
//!
//! Subscriptions create invoices through [`create_draft`](draft::create_draft),
//! [`finalize`](payment::finalize) and [`pay`](payment::pay); `POST /v1/invoices` makes a
//! draft of a customer's pending invoice items (the proration items `create_prorations`
//! leaves). Totals: `subtotal` is the sum of the lines; each of the invoice's discounts takes
//! its coupon's share of the discountable lines; `total = subtotal - discounts`; the
//! customer's balance is applied on finalization (`amount_due = max(total +
//! starting_balance, 0)`, a credit left over becomes the new balance, an amount below the
//! currency's minimum charge is carried over). A finalized invoice with an amount due has a
//! payment intent (see `payments`, and `confirmation_secret`, both returned only when
//! expanded, as in Stripe); when that intent succeeds, however it is confirmed, the invoice
//! is `paid` and its subscription is told (see [`mark_paid`](super::paid_invoices::mark_paid)).

pub mod draft;
pub mod lines;
pub mod payment;
pub mod record;
