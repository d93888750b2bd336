//! The events a change of a payment method, payment intent, charge, refund, setup intent,
//! subscription or invoice announces (objects with a lifecycle of their own; see
//! [`derive`](super::derive::derive) for the others).

use serde_json::{Map, Value};

use crate::json::str_field;

/// The old values of the top-level fields that differ (absent ones as `null`), leaving out
/// `ignored`.
pub fn changed_fields(before: &Value, after: &Value, ignored: &[&str]) -> Map<String, Value> {
    let empty = Map::new();
    let old = before.as_object().unwrap_or(&empty);
    let new = after.as_object().unwrap_or(&empty);
    let mut changed = Map::new();
    for (key, value) in old {
        if !ignored.contains(&key.as_str()) && new.get(key) != Some(value) {
            changed.insert(key.clone(), value.clone());
        }
    }
    for key in new.keys() {
        if !ignored.contains(&key.as_str()) && !old.contains_key(key) {
            changed.insert(key.clone(), Value::Null);
        }
    }
    changed
}

pub fn status(object: Option<&Value>) -> Option<&str> {
    object.and_then(|o| str_field(o, "status"))
}

fn int(object: Option<&Value>, key: &str) -> i64 {
    object
        .and_then(|o| o.get(key))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// A change as the rules below read it.
#[derive(Clone, Copy)]
pub struct Transition<'v> {
    /// The object before the change (`None` when it was created).
    pub before: Option<&'v Value>,
    /// The object after the change.
    pub after: &'v Value,
    pub created: bool,
    /// Whether an `.updated` event is due when nothing more specific is.
    pub changed: bool,
}

/// A payment method: attached or detached when its `customer` changes, else updated.
pub fn payment_method_events(t: Transition<'_>, types: &mut Vec<&'static str>) {
    let (b, a) = (t.before, t.after);
    let old = b.and_then(|o| str_field(o, "customer"));
    let new = str_field(a, "customer");
    if old.is_some() && old != new {
        types.push("payment_method.detached");
    }
    if new.is_some() && old != new {
        types.push("payment_method.attached");
    }
    let others = b.is_some_and(|b| !changed_fields(b, a, &["customer"]).is_empty() && old == new);
    if others {
        types.push("payment_method.updated");
    }
}

/// A payment intent: created, failed, then by the status it reaches.
pub fn payment_intent_events(t: Transition<'_>, types: &mut Vec<&'static str>) {
    let (b, a) = (t.before, t.after);
    let created = t.created;
    if created {
        types.push("payment_intent.created");
    }
    let error = a.get("last_payment_error").filter(|e| !e.is_null());
    if error.is_some() && error != b.and_then(|b| b.get("last_payment_error")) {
        types.push("payment_intent.payment_failed");
    }
    if status(Some(a)) != status(b) {
        match status(Some(a)) {
            Some("succeeded") => types.push("payment_intent.succeeded"),
            Some("requires_capture") => {
                types.push("payment_intent.amount_capturable_updated");
            }
            Some("requires_action") => types.push("payment_intent.requires_action"),
            Some("processing") => types.push("payment_intent.processing"),
            Some("canceled") => types.push("payment_intent.canceled"),
            _ => {}
        }
    }
}

/// A charge: by its status when created; captured, refunded or updated later.
pub fn charge_events(t: Transition<'_>, types: &mut Vec<&'static str>) {
    let (b, a) = (t.before, t.after);
    let created = t.created;
    let changed = t.changed;
    if created {
        match status(Some(a)) {
            Some("succeeded") => types.push("charge.succeeded"),
            Some("failed") => types.push("charge.failed"),
            Some("pending") => types.push("charge.pending"),
            _ => {}
        }
    } else {
        let captured = |o: Option<&Value>| {
            o.and_then(|o| o.get("captured")).and_then(Value::as_bool) == Some(true)
        };
        if captured(Some(a)) && !captured(b) {
            types.push("charge.captured");
        } else if int(Some(a), "amount_refunded") > int(b, "amount_refunded") {
            types.push("charge.refunded");
        } else if changed {
            types.push("charge.updated");
        }
    }
}

/// A refund: created; updated (also as `charge.refund.updated`).
pub fn refund_events(t: Transition<'_>, types: &mut Vec<&'static str>) {
    let created = t.created;
    let changed = t.changed;
    if created {
        types.push("refund.created");
    } else if changed {
        types.push("refund.updated");
        types.push("charge.refund.updated");
    }
}

/// A setup intent: created, failed (a new `last_setup_error`), then by the status it
/// reaches.
pub fn setup_intent_events(t: Transition<'_>, types: &mut Vec<&'static str>) {
    let (b, a) = (t.before, t.after);
    let created = t.created;
    if created {
        types.push("setup_intent.created");
    }
    let error = a.get("last_setup_error").filter(|e| !e.is_null());
    if error.is_some() && error != b.and_then(|b| b.get("last_setup_error")) {
        types.push("setup_intent.setup_failed");
    }
    if status(Some(a)) != status(b) {
        match status(Some(a)) {
            Some("succeeded") => types.push("setup_intent.succeeded"),
            Some("canceled") => types.push("setup_intent.canceled"),
            Some("requires_action") => types.push("setup_intent.requires_action"),
            _ => {}
        }
    }
}

/// A subscription: created; deleted once ended; paused, resumed, updated.
pub fn subscription_events(t: Transition<'_>, types: &mut Vec<&'static str>) {
    let (b, a) = (t.before, t.after);
    let created = t.created;
    let changed = t.changed;
    let (old, new) = (status(b), status(Some(a)));
    let ended = |s: Option<&str>| matches!(s, Some("canceled" | "incomplete_expired"));
    if created {
        types.push("customer.subscription.created");
    } else if ended(new) && !ended(old) {
        types.push("customer.subscription.deleted");
    } else if changed {
        if new == Some("paused") && old != new {
            types.push("customer.subscription.paused");
        } else if old == Some("paused") && old != new {
            types.push("customer.subscription.resumed");
        }
        types.push("customer.subscription.updated");
    }
}

/// An invoice: created, finalized, then by its status; a failed payment attempt; else updated.
pub fn invoice_events(t: Transition<'_>, types: &mut Vec<&'static str>) {
    let (b, a) = (t.before, t.after);
    let created = t.created;
    let changed = t.changed;
    if created {
        types.push("invoice.created");
    }
    let old = if created { Some("draft") } else { status(b) };
    let new = status(Some(a));
    if old == Some("draft") && new != Some("draft") {
        types.push("invoice.finalized");
    }
    if old != new {
        match new {
            Some("paid") => {
                types.push("invoice.paid");
                types.push("invoice.payment_succeeded");
            }
            Some("void") => types.push("invoice.voided"),
            Some("uncollectible") => types.push("invoice.marked_uncollectible"),
            _ => {}
        }
    }
    if new == Some("open") && int(Some(a), "attempt_count") > int(b, "attempt_count") {
        types.push("invoice.payment_failed");
    }
    if types.is_empty() && changed {
        types.push("invoice.updated");
    }
}
