//! What an event changes in the mirror: the object it carries, read by its type. Every
//! mirrored type is registered once, in the table at [`mirrored_types!`]'s call below; the
//! `Target` enum, reading an event into it, the per-type data (`Kind`) and the batch write
//! by table are generated from that table.

use diesel::result::Error as DieselError;
use serde_json::Value;

use crate::db::{self, AnyConnection, Applied, events};
use crate::stripe::objects::{
    self as mirror, ChargeSnapshot, CheckoutSnapshot, CustomerSnapshot, Fields, InvoiceSnapshot,
    PaymentLinkSnapshot, PaymentMethodSnapshot, PaymentSnapshot, PriceSnapshot, ProductSnapshot,
    RefundSnapshot, SubscriptionSnapshot,
};

/// What the receiver keeps per type of mirrored object, in one place: its place in the order
/// in which a batch locks mirror rows (see `writer`), whether it is a state under the
/// watermark rule, and, for the types re-read as JSON after a tie (`refresh`), the `*.updated`
/// event type Stripe's answer is read as and the object's collection under `/v1`.
#[derive(Debug, Clone, Copy)]
struct Kind {
    lock: u8,
    state: bool,
    json: Option<(&'static str, &'static str)>,
}

/// Generates, from one line per mirrored type: the `Target` enum (one variant per type, and
/// `Nothing`); `Target::object` (the type's `Kind` and the object's key); `target_of`
/// (which event types carry it, `[first, second, ...]` slice patterns over the dotted type,
/// and how its object is read: `read(object, deleted)`); and `write_all`, one batch write per
/// type, in registration order, which must be the lock order (a test holds it).
macro_rules! mirrored_types {
    ($(
        $variant:ident($snap:ty) by $key:ident: lock $lock:literal, state $state:literal,
        reread $json:expr, on $($pat:pat_param)|+ => read $read:expr, keep $keep:expr,
        write $write:path;
    )+) => {
        /// What an event changes in the mirror.
        #[derive(Debug, Clone)]
        pub(super) enum Target {
            $($variant($snap),)+
            /// A type we store but do not mirror.
            Nothing,
        }

        /// The registered lock orders, in registration order.
        #[cfg(test)]
        const LOCKS: &[u8] = &[$($lock),+];

        impl Target {
            /// The object's kind and key; `None` for `Nothing`.
            fn object(&self) -> Option<(Kind, &str)> {
                match self {
                    $(Target::$variant(x) => Some((
                        Kind { lock: $lock, state: $state, json: $json },
                        x.$key.as_str(),
                    )),)+
                    Target::Nothing => None,
                }
            }
        }

        /// What an event of this type carrying this object changes; `Nothing` for types we
        /// do not mirror or objects we cannot read.
        pub(super) fn target_of(kind: &str, obj: &Value) -> Target {
            let deleted = kind.ends_with(".deleted");
            let read: fn(&Value, bool) -> Option<Target> =
                match kind.split('.').collect::<Vec<_>>().as_slice() {
                    $($($pat)|+ => |obj, deleted| {
                        let read: fn(&Value, bool) -> Option<$snap> = $read;
                        read(obj, deleted).map(Target::$variant)
                    },)+
                    _ => |_, _| None,
                };
            read(obj, deleted).unwrap_or(Target::Nothing)
        }

        /// What the reader of the objects this type of event carries reads of them (a sync
        /// parses its pages into only that); all of an object of a type we do not mirror.
        pub(super) fn fields_of(kind: &str) -> &'static Fields {
            match kind.split('.').collect::<Vec<_>>().as_slice() {
                $($($pat)|+ => &$keep,)+
                _ => &Fields::All,
            }
        }

        /// Writes `(index, tenant, target, watermark)` items, grouped by type: one batch write
        /// per type (one statement per table on PostgreSQL), types in lock order, objects in
        /// the order given, by `rule` ([`db::Rule`]). Returns each item's outcome.
        pub(super) fn write_all(
            conn: &mut AnyConnection,
            items: &[(usize, &str, &Target, i64)],
            rule: db::Rule,
        ) -> Result<Vec<(usize, &'static str)>, DieselError> {
            let mut applied: Vec<(usize, &'static str)> = items
                .iter()
                .filter(|(_, _, target, _)| matches!(target, Target::Nothing))
                .map(|&(i, ..)| (i, events::IGNORED))
                .collect();
            $(
                let rows: Vec<(usize, (&str, &$snap, i64))> = items
                    .iter()
                    .filter_map(|&(i, tenant, target, at)| match target {
                        Target::$variant(x) => Some((i, (tenant, x, at))),
                        _ => None,
                    })
                    .collect();
                settle(&mut applied, &rows, |x| $write(conn, x, rule))?;
            )+
            Ok(applied)
        }
    };
}

/// A JSON re-read after a tie: the `*.updated` event type the answer is read as and the
/// collection under `/v1`.
const fn json(
    event: &'static str,
    collection: &'static str,
) -> Option<(&'static str, &'static str)> {
    Some((event, collection))
}

/// A payment as an event carries it, without its client secret: Stripe's event has it, but
/// only the caller who created the payment is given it, and the receiver never needs it.
fn payment_event(obj: &Value, _deleted: bool) -> Option<PaymentSnapshot> {
    mirror::payment(obj).map(|p| PaymentSnapshot {
        client_secret: None,
        ..p
    })
}

// The mirrored types, in lock order. `reread None`: re-read by a typed call (`refresh`), or
// never (not a state).
mirrored_types! {
    Customer(CustomerSnapshot) by id: lock 0, state true, reread None,
        on ["customer", _] => read mirror::customer, keep mirror::CUSTOMER_FIELDS,
        write db::customers::apply_customers;
    Product(ProductSnapshot) by id: lock 1, state true, reread json("product.updated", "/products"),
        on ["product", _] => read mirror::product, keep mirror::PRODUCT_FIELDS,
        write db::catalog::apply_products;
    Price(PriceSnapshot) by id: lock 2, state true, reread json("price.updated", "/prices"),
        on ["price", _] => read mirror::price, keep mirror::PRICE_FIELDS,
        write db::catalog::apply_prices;
    Subscription(SubscriptionSnapshot) by id: lock 3, state true, reread None,
        on ["customer", "subscription", _] => read |o, _| mirror::subscription(o),
        keep mirror::SUBSCRIPTION_FIELDS,
        write db::subscriptions::apply_subscriptions;
    Invoice(InvoiceSnapshot) by id: lock 4, state true, reread json("invoice.updated", "/invoices"),
        on ["invoice", _] => read mirror::invoice, keep mirror::INVOICE_FIELDS,
        write db::invoices::apply_invoices;
    Payment(PaymentSnapshot) by id: lock 5, state true, reread None,
        on ["payment_intent", _] => read payment_event, keep mirror::PAYMENT_FIELDS,
        write db::payments::apply_payments;
    // Also raises its payment's refunded total (which only grows: no watermark) and writes
    // the refunds it carries. `charge.refund.updated` carries a refund, `charge.dispute.*` a
    // dispute: not charges.
    Charge(ChargeSnapshot) by id: lock 6, state true, reread json("charge.updated", "/charges"),
        on ["charge", "succeeded" | "failed" | "captured" | "refunded" | "updated" | "pending"
            | "expired"] => read |o, _| mirror::charge(o), keep mirror::CHARGE_FIELDS,
        write db::charges::apply_charge_events;
    Refund(RefundSnapshot) by id: lock 7, state true, reread json("refund.updated", "/refunds"),
        on ["refund", _] | ["charge", "refund", "updated"] => read |o, _| mirror::refund(o),
        keep mirror::REFUND_FIELDS,
        write db::refunds::apply_refunds;
    Checkout(CheckoutSnapshot) by id: lock 8, state true, reread None,
        on ["checkout", "session", _] => read |o, _| mirror::checkout_session(o),
        keep mirror::CHECKOUT_SESSION_FIELDS,
        write db::checkout_sessions::apply_sessions;
    PaymentMethod(PaymentMethodSnapshot) by id: lock 9, state true,
        reread json("payment_method.updated", "/payment_methods"),
        on ["payment_method", _] => read |o, _| mirror::payment_method(o),
        keep mirror::PAYMENT_METHOD_FIELDS,
        write db::payment_methods::apply_payment_methods;
    PaymentLink(PaymentLinkSnapshot) by id: lock 10, state true,
        reread json("payment_link.updated", "/payment_links"),
        on ["payment_link", _] => read |o, _| mirror::payment_link(o),
        keep mirror::PAYMENT_LINK_FIELDS,
        write db::payment_links::apply_payment_links;
}

/// The event outcome a mirror write answers.
pub(super) fn outcome(applied: Applied) -> &'static str {
    match applied {
        Applied::Written => events::APPLIED,
        Applied::Stale => events::STALE,
        Applied::Tie => events::REFRESH_PENDING,
    }
}

/// Runs one type's batch write (if it has rows) and records each event's outcome.
fn settle<T: Copy>(
    applied: &mut Vec<(usize, &'static str)>,
    rows: &[(usize, T)],
    write: impl FnOnce(&[T]) -> Result<Vec<Applied>, DieselError>,
) -> Result<(), DieselError> {
    if rows.is_empty() {
        return Ok(());
    }
    let items: Vec<T> = rows.iter().map(|(_, item)| *item).collect();
    let outcomes = write(&items)?;
    applied.extend(
        rows.iter()
            .map(|(i, _)| *i)
            .zip(outcomes.into_iter().map(outcome)),
    );
    Ok(())
}

impl Target {
    /// The order in which a batch locks mirror rows (see `writer`): by table, then object.
    pub(super) fn lock_key(&self) -> (u8, &str) {
        self.object()
            .map_or((u8::MAX, ""), |(kind, id)| (kind.lock, id))
    }

    /// Whether only the newest of several events of one object in a batch need be written
    /// (states under the watermark rule).
    pub(super) fn is_state(&self) -> bool {
        self.object().is_some_and(|(kind, _)| kind.state)
    }

    /// For an object re-read as JSON (one our gateway has no typed call for): the event type
    /// Stripe's answer is read as, and the object's path under `/v1`.
    pub(super) fn json_reread(&self) -> Option<(&'static str, String)> {
        let (kind, id) = self.object()?;
        let (event_type, collection) = kind.json?;
        Some((event_type, format!("{collection}/{id}")))
    }
}

/// The outcome an event is stored with, before applying it shows otherwise.
pub(super) fn usual_outcome(target: &Target) -> &'static str {
    match target {
        Target::Nothing => events::IGNORED,
        _ => events::APPLIED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payment_event_is_read_without_its_client_secret() {
        let obj = serde_json::json!({
            "id": "pi_1", "object": "payment_intent", "amount": 500, "currency": "usd",
            "status": "succeeded", "created": 1, "client_secret": "pi_1_secret_abc",
            "metadata": {}
        });
        let Target::Payment(payment) = target_of("payment_intent.succeeded", &obj) else {
            panic!("not read as a payment");
        };
        assert_eq!(payment.id, "pi_1");
        assert_eq!(payment.client_secret, None);
        assert!(!format!("{payment:?}").contains("secret_abc"));
    }

    #[test]
    fn the_types_are_registered_in_lock_order() {
        assert!(LOCKS.windows(2).all(|w| w[0] < w[1]), "{LOCKS:?}");
    }
}
