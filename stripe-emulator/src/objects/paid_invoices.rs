//! What a succeeded payment settles: the invoice it pays becomes `paid`, and that invoice's
//! subscription, if it was waiting for it, `active` (or `trialing`). However the payment is
//! made (its intent confirmed or captured, the invoice paid out of band), the same rules
//! apply.

use serde_json::{Value, json};

use crate::json::{int_field, opt_str, set, set_in, str_field};
use crate::store::{Store, kinds};

/// Marks an invoice paid by its payment intent `intent`, and tells its subscription.
pub fn mark_paid(store: &mut Store, now: i64, id: &str, intent: &str) {
    let amount = store
        .get(kinds::PAYMENT_INTENT, intent)
        .map_or(0, |r| int_field(&r.object, "amount_received"));
    let charge = store
        .get(kinds::PAYMENT_INTENT, intent)
        .and_then(|r| str_field(&r.object, "latest_charge").map(str::to_owned));
    let Some(record) = store.get_live_mut(kinds::INVOICE, id) else {
        return;
    };
    let o = &mut record.object;
    if str_field(o, "status") != Some("open") {
        return;
    }
    set(o, "status", json!("paid"));
    set(o, "amount_paid", json!(amount));
    set(o, "amount_remaining", json!(0));
    set(o, "attempted", json!(true));
    set(
        o,
        "attempt_count",
        json!(int_field(o, "attempt_count").max(1)),
    );
    set(o, "auto_advance", json!(false));
    set_in(o, &["status_transitions", "paid_at"], json!(now));
    if let Some(payments) = o
        .pointer_mut("/payments/data")
        .and_then(Value::as_array_mut)
    {
        for payment in payments {
            set(payment, "status", json!("paid"));
            set(payment, "amount_paid", json!(amount));
            set_in(payment, &["status_transitions", "paid_at"], json!(now));
            set_in(payment, &["payment", "charge"], opt_str(charge.as_deref()));
        }
    }
    let subscription = record
        .internal
        .get("subscription")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(sub) = subscription {
        on_invoice_paid(store, now, &sub, id);
    }
}

/// Called when an invoice of the subscription is paid: an `incomplete`, `past_due` or
/// `unpaid` subscription becomes `active` (or `trialing`).
pub fn on_invoice_paid(store: &mut Store, now: i64, id: &str, _invoice: &str) {
    let Some(record) = store.get_live_mut(kinds::SUBSCRIPTION, id) else {
        return;
    };
    let o = &mut record.object;
    if matches!(
        str_field(o, "status"),
        Some("incomplete" | "past_due" | "unpaid")
    ) {
        let trialing = o
            .get("trial_end")
            .and_then(Value::as_i64)
            .is_some_and(|t| t > now);
        set(
            o,
            "status",
            json!(if trialing { "trialing" } else { "active" }),
        );
    }
}
