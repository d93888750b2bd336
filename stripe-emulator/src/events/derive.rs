//! What each change of an object announces: the event types, in order, with the object as
//! `GET` answers it and, on `*.updated` events, the old values of the changed fields.

use serde_json::Value;

use crate::events::transitions::{
    Transition, changed_fields, charge_events, invoice_events, payment_intent_events,
    payment_method_events, refund_events, setup_intent_events, status, subscription_events,
};
use crate::events::types::EVENT_TYPES;
use crate::objects::coupons;
use crate::objects::invoices::record::strip_includable;
use crate::store::{Change, kinds};

/// One event a change announces.
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    /// The event type, e.g. `customer.updated`.
    pub event_type: &'static str,
    /// `data.object`.
    pub object: Value,
    /// `data.previous_attributes` (on `*.updated` events).
    pub previous_attributes: Option<Value>,
}

fn is_deleted(object: &Value) -> bool {
    object.get("deleted").and_then(Value::as_bool) == Some(true)
}

/// The object as `GET` answers it.
fn present(kind: &str, object: &Value, now: i64) -> Value {
    match kind {
        kinds::INVOICE => {
            let mut invoice = object.clone();
            strip_includable(&mut invoice, &[]);
            invoice
        }
        kinds::COUPON => coupons::current(object, now),
        _ => object.clone(),
    }
}

/// Fields whose change alone Stripe does not announce, per object type.
fn unannounced(kind: &str) -> &'static [&'static str] {
    match kind {
        kinds::CUSTOMER => &["next_invoice_sequence"],
        kinds::COUPON => &["times_redeemed", "valid"],
        kinds::PROMOTION_CODE => &["times_redeemed"],
        _ => &[],
    }
}

/// The `.created`/`.updated`/`.deleted` prefix of an object type, if Stripe announces its
/// lifecycle that way.
fn lifecycle_prefix(kind: &str) -> Option<&'static str> {
    Some(match kind {
        kinds::CUSTOMER => "customer",
        kinds::PRODUCT => "product",
        kinds::PRICE => "price",
        kinds::COUPON => "coupon",
        kinds::PAYMENT_LINK => "payment_link",
        kinds::PROMOTION_CODE => "promotion_code",
        _ => return None,
    })
}

/// An event type as a `'static` name (every name used here is a known event type).
fn name(event_type: &str) -> &'static str {
    EVENT_TYPES
        .iter()
        .copied()
        .find(|known| *known == event_type)
        .unwrap_or("unknown")
}

/// The events one change announces, in order.
pub fn derive(change: &Change, now: i64) -> Vec<Derived> {
    let kind = change.kind.as_str();
    let before = change
        .before
        .as_ref()
        .filter(|o| !is_deleted(o))
        .map(|o| present(kind, o, now));
    let after = change
        .after
        .as_ref()
        .filter(|o| !is_deleted(o))
        .map(|o| present(kind, o, now));
    if (before.is_none() && after.is_none()) || before == after {
        return Vec::new();
    }
    let mut types: Vec<&'static str> = Vec::new();
    // Whether an `.updated` event is due when nothing more specific is.
    let changed = match (&before, &after) {
        (Some(b), Some(a)) => !changed_fields(b, a, unannounced(kind)).is_empty(),
        _ => false,
    };
    let created = before.is_none();
    let (b, a) = (before.as_ref(), after.as_ref());
    if let Some(prefix) = lifecycle_prefix(kind) {
        match (b, a) {
            (None, Some(_)) => types.push(name(&format!("{prefix}.created"))),
            (Some(_), None) => types.push(name(&format!("{prefix}.deleted"))),
            _ if changed => types.push(name(&format!("{prefix}.updated"))),
            _ => {}
        }
    } else if let Some(a) = a {
        let transition = Transition {
            before: b,
            after: a,
            created,
            changed,
        };
        match kind {
            kinds::PAYMENT_METHOD => payment_method_events(transition, &mut types),
            kinds::PAYMENT_INTENT => payment_intent_events(transition, &mut types),
            kinds::CHARGE => charge_events(transition, &mut types),
            kinds::REFUND => refund_events(transition, &mut types),
            kinds::SETUP_INTENT => setup_intent_events(transition, &mut types),
            kinds::SUBSCRIPTION => subscription_events(transition, &mut types),
            kinds::INVOICE => invoice_events(transition, &mut types),
            kinds::INVOICE_ITEM if created => types.push("invoiceitem.created"),
            kinds::CHECKOUT_SESSION if status(Some(a)) != status(b) && !created => {
                match status(Some(a)) {
                    Some("complete") => types.push("checkout.session.completed"),
                    Some("expired") => types.push("checkout.session.expired"),
                    _ => {}
                }
            }
            _ => {}
        }
    } else if kind == kinds::INVOICE_ITEM {
        types.push("invoiceitem.deleted");
    }

    let mut events: Vec<Derived> = types
        .into_iter()
        .map(|event_type| {
            let previous_attributes = match (event_type.ends_with(".updated"), b, a) {
                (true, Some(b), Some(a)) => {
                    Some(Value::Object(changed_fields(b, a, unannounced(kind))))
                }
                _ => None,
            };
            Derived {
                event_type,
                // A deleted object is announced as it was.
                object: a.or(b).cloned().unwrap_or(Value::Null),
                previous_attributes,
            }
        })
        .collect();
    if kind == kinds::INVOICE {
        events.extend(paid_invoice_payments(change));
    }
    events
}

/// The payments of an invoice (`payments.data`, as stored) by id.
fn invoice_payments(invoice: Option<&Value>) -> Vec<&Value> {
    invoice
        .and_then(|i| i.pointer("/payments/data"))
        .and_then(Value::as_array)
        .map(|payments| payments.iter().collect())
        .unwrap_or_default()
}

/// `invoice_payment.paid` for each payment of the invoice that became `paid` (Stripe sends
/// it with the invoice's `invoice.paid`; `data.object` is the InvoicePayment).
fn paid_invoice_payments(change: &Change) -> Vec<Derived> {
    let before = invoice_payments(change.before.as_ref());
    let was_paid = |payment: &Value| {
        before.iter().any(|old| {
            old.get("id") == payment.get("id")
                && old.get("status").and_then(Value::as_str) == Some("paid")
        })
    };
    invoice_payments(change.after.as_ref())
        .into_iter()
        .filter(|p| p.get("status").and_then(Value::as_str) == Some("paid") && !was_paid(p))
        .map(|payment| Derived {
            event_type: "invoice_payment.paid",
            object: payment.clone(),
            previous_attributes: None,
        })
        .collect()
}

#[cfg(test)]
mod tests;
