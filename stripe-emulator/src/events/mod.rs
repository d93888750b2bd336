//! Stripe events: what each change of an object announces, and the `evt_...` objects that
//! record them.
//!
//! Resource handlers do not announce events themselves: the [`Store`](crate::store::Store) journals every object
//! a request changes (its state before the first change, and after), and [`commit`](record::commit) turns
//! each change into the events Stripe sends for it ([`derive()`](derive::derive)), stores them as `evt_...`
//! objects in the account's store (the newest [`MAX_EVENTS`](record::MAX_EVENTS) are kept) and returns the
//! deliveries to make once the store lock is released.
//!
//! What each change announces (`data.object` is the object as `GET` answers it after the
//! change; `data.previous_attributes` is on `*.updated` events only: the old values of the
//! changed top-level fields):
//! - customer, product, price, coupon: `.created`, `.updated`, `.deleted` (a deleted object
//!   is announced as it was before, as Stripe does; a coupon's redemption count and a
//!   customer's invoice sequence alone are not announced).
//! - payment method: `payment_method.attached` / `.detached` when its `customer` changes,
//!   `.updated` for other changes.
//! - payment intent: `.created`, then by the status it reaches: `.succeeded`,
//!   `.amount_capturable_updated` (manual capture), `.requires_action`, `.processing`,
//!   `.canceled`; `.payment_failed` when a new `last_payment_error` appears.
//! - charge: `.succeeded` / `.failed` / `.pending` when created; `.captured`, `.refunded`
//!   (its `amount_refunded` grew), else `.updated`, on changes.
//! - refund: `refund.created`; on changes (metadata) `refund.updated` and
//!   `charge.refund.updated`. A refund announces `charge.refunded` (the charge, with its new
//!   `amount_refunded`) before `refund.created`.
//! - payment link: `payment_link.created`, `.updated`.
//! - promotion code: `promotion_code.created`, `.updated` (a redemption alone is not
//!   announced).
//! - setup intent: `.created`, `.setup_failed` when a new `last_setup_error` appears,
//!   `.succeeded`, `.canceled`.
//! - subscription: `customer.subscription.created`, `.updated`, `.deleted` (on reaching
//!   `canceled` or `incomplete_expired`), `.paused` / `.resumed`.
//! - invoice: `.created`, then by status: `.finalized` (left draft), `.paid` and
//!   `.payment_succeeded`, `.voided`, `.marked_uncollectible`; `.payment_failed` when a
//!   payment attempt left it open; `.updated` for other changes. A payment of the invoice
//!   (`payments.data`) that became `paid` announces `invoice_payment.paid` (its
//!   InvoicePayment) after `invoice.payment_succeeded`.
//! - invoice item: `invoiceitem.created`, `.deleted`.
//! - checkout session: `checkout.session.completed`, `.expired`.
//!
//! Order within a request: each creation when the object was created, every other event
//! when its object last changed in the request (invoices are also announced as they pass
//! through draft and finalization, with those states). So creating a subscription that is
//! paid at once announces `customer.subscription.created`, `invoiceitem.created` (one-time
//! items), `invoice.created` (draft), `payment_intent.created`, `invoice.finalized` (open),
//! `charge.succeeded`, `payment_intent.succeeded`, `invoice.paid`,
//! `invoice.payment_succeeded`, `invoice_payment.paid` (paid); if the card declines, `charge.failed`,
//! `payment_intent.payment_failed`, `invoice.payment_failed` after `invoice.finalized`
//! (and paying that invoice later: `charge.succeeded`, `payment_intent.succeeded`,
//! `invoice.paid`, `invoice.payment_succeeded`, `customer.subscription.updated`). A
//! customer created with a card announces `customer.created`, `payment_method.attached`.
//! All events of a request share its `created` second and its `request.id`.

pub mod derive;
pub mod record;
pub mod transitions;
pub mod types;
