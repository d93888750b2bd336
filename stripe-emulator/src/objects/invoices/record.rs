//! An invoice as stored: its lookup and internal links (subscription, payment intent),
//! voiding, dates as lines show them, and the fields sent only when expanded.

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::json::{set, set_in, str_field};
use crate::store::{Store, kinds};

/// How invoices are named in "No such ..." messages.
pub const LABEL: &str = "invoice";

/// How invoice items are named in "No such ..." messages.
pub const ITEM_LABEL: &str = "invoiceitem";

/// A date as Stripe writes it in line descriptions: `19 Nov 2025`.
pub fn format_date(ts: i64) -> String {
    Utc.timestamp_opt(ts, 0)
        .single()
        .map(|t| t.format("%-d %b %Y").to_string())
        .unwrap_or_default()
}

pub fn stored(store: &Store, id: &str, param: &str) -> ApiResult<Value> {
    store
        .get_live(kinds::INVOICE, id)
        .map(|r| r.object.clone())
        .ok_or_else(|| ApiError::resource_missing(LABEL, id, param))
}

/// The subscription an invoice belongs to.
pub fn subscription_of(store: &Store, invoice: &str) -> Option<String> {
    store
        .get(kinds::INVOICE, invoice)?
        .internal
        .get("subscription")?
        .as_str()
        .map(str::to_owned)
}

/// The payment intent of a finalized invoice.
pub fn intent_of(store: &Store, invoice: &str) -> Option<String> {
    store
        .get(kinds::INVOICE, invoice)?
        .internal
        .get("payment_intent")?
        .as_str()
        .map(str::to_owned)
}

/// Voids an open invoice and cancels its payment intent.
pub fn void_stored(store: &mut Store, now: i64, id: &str) {
    if let Some(pi) = intent_of(store, id)
        && let Some(record) = store.get_live_mut(kinds::PAYMENT_INTENT, &pi)
        && str_field(&record.object, "status") != Some("succeeded")
    {
        set(&mut record.object, "status", json!("canceled"));
        set(&mut record.object, "canceled_at", json!(now));
        set(
            &mut record.object,
            "cancellation_reason",
            json!("void_invoice"),
        );
    }
    if let Some(record) = store.get_live_mut(kinds::INVOICE, id) {
        let o = &mut record.object;
        set(o, "status", json!("void"));
        set(o, "amount_remaining", json!(0));
        set(o, "auto_advance", json!(false));
        set_in(o, &["status_transitions", "voided_at"], json!(now));
        if let Some(payments) = o
            .pointer_mut("/payments/data")
            .and_then(Value::as_array_mut)
        {
            for payment in payments {
                set(payment, "status", json!("canceled"));
                set_in(payment, &["status_transitions", "canceled_at"], json!(now));
            }
        }
    }
}

/// Voids the open invoices of a subscription (when an incomplete subscription is canceled).
pub fn void_open_of_subscription(store: &mut Store, now: i64, subscription: &str) {
    let open = store.ids_where(kinds::INVOICE, |r| {
        r.internal.get("subscription").and_then(Value::as_str) == Some(subscription)
            && str_field(&r.object, "status") == Some("open")
    });
    for id in open {
        void_stored(store, now, &id);
    }
}

/// Fields Stripe includes in invoices only when asked for with `expand[]`.
pub const INCLUDABLE: &[&str] = &["payments", "confirmation_secret"];

/// Removes the includable fields of every invoice in `value` (the response, possibly a
/// list or an object with an expanded invoice) unless an `expand[]` path names them.
pub fn strip_includable(value: &mut Value, expand: &[String]) {
    let keep: Vec<&str> = INCLUDABLE
        .iter()
        .copied()
        .filter(|field| {
            expand.iter().any(|path| {
                path.rsplit('.').next() == Some(*field) || path.contains(&format!("{field}."))
            })
        })
        .collect();
    strip(value, &keep, 0);
}

fn strip(value: &mut Value, keep: &[&str], depth: usize) {
    if depth > 6 {
        return;
    }
    match value {
        Value::Object(map) => {
            if map.get("object").and_then(Value::as_str) == Some("invoice") {
                for field in INCLUDABLE {
                    if !keep.contains(field) {
                        map.remove(*field);
                    }
                }
            }
            for child in map.values_mut() {
                if child.is_object() || child.is_array() {
                    strip(child, keep, depth + 1);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                strip(item, keep, depth + 1);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn includable_fields_are_stripped_unless_expanded() {
        let mut sub = json!({"object": "subscription", "latest_invoice": {"object": "invoice", "payments": {}, "confirmation_secret": {}}});
        strip_includable(&mut sub, &["latest_invoice.payments".to_owned()]);
        assert!(sub["latest_invoice"].get("payments").is_some());
        assert!(sub["latest_invoice"].get("confirmation_secret").is_none());
        let mut list = json!({"object": "list", "data": [{"object": "invoice", "payments": {}}]});
        strip_includable(&mut list, &[]);
        assert!(list["data"][0].get("payments").is_none());
    }
}
