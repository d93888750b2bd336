//! Reading Stripe objects out of event payloads leniently: an older or newer API version, or
//! fields we do not know, must not stop an event from being stored and applied as far as we
//! understand it (issue: parse leniently). Only what the mirror keeps is read.

use std::collections::HashMap;

use serde_json::Value;

use crate::gateway::CustomerSnapshot;
use crate::gateway::checkout::CheckoutSnapshot;
use crate::gateway::payments::PaymentSnapshot;
use crate::gateway::subscriptions::SubscriptionSnapshot;

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn int(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

/// An expandable field: the id string, or the object's `id`.
fn id_of(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(id) => Some(id.clone()),
        Value::Object(obj) => obj.get("id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

fn metadata(v: &Value) -> HashMap<String, String> {
    v.get("metadata")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| match v {
                    Value::String(s) => Some((k.clone(), s.clone())),
                    Value::Number(n) => Some((k.clone(), n.to_string())),
                    Value::Bool(b) => Some((k.clone(), b.to_string())),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn subscription(obj: &Value) -> Option<SubscriptionSnapshot> {
    let item = obj.pointer("/items/data/0");
    let price = item.and_then(|i| i.get("price").or_else(|| i.get("plan")));
    Some(SubscriptionSnapshot {
        id: text(obj, "id")?,
        customer: id_of(obj, "customer")?,
        status: text(obj, "status")?,
        // Since API 2025-03-31 on the item; before that on the subscription.
        current_period_start: item
            .and_then(|i| int(i, "current_period_start"))
            .or_else(|| int(obj, "current_period_start")),
        current_period_end: item
            .and_then(|i| int(i, "current_period_end"))
            .or_else(|| int(obj, "current_period_end")),
        trial_end: int(obj, "trial_end"),
        cancel_at_period_end: obj
            .get("cancel_at_period_end")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        canceled_at: int(obj, "canceled_at"),
        price_id: price.and_then(|p| text(p, "id")),
        quantity: item.and_then(|i| int(i, "quantity")),
        plan_amount: price.and_then(|p| int(p, "unit_amount").or_else(|| int(p, "amount"))),
        plan_currency: price.and_then(|p| text(p, "currency")),
        plan_interval: price.and_then(|p| {
            p.pointer("/recurring/interval")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| text(p, "interval"))
        }),
        metadata: metadata(obj),
        created: int(obj, "created").unwrap_or_default(),
    })
}

/// `deleted` is the event's verdict (`customer.deleted`) or the object's own flag.
pub fn customer(obj: &Value, deleted: bool) -> Option<CustomerSnapshot> {
    Some(CustomerSnapshot {
        id: text(obj, "id")?,
        email: text(obj, "email"),
        name: text(obj, "name"),
        phone: text(obj, "phone"),
        description: text(obj, "description"),
        default_payment_method: obj
            .get("invoice_settings")
            .and_then(|s| id_of(s, "default_payment_method")),
        metadata: metadata(obj),
        deleted: deleted || obj.get("deleted").and_then(Value::as_bool) == Some(true),
    })
}

pub fn payment(obj: &Value) -> Option<PaymentSnapshot> {
    Some(PaymentSnapshot {
        id: text(obj, "id")?,
        amount: int(obj, "amount")?,
        currency: text(obj, "currency")?,
        status: text(obj, "status")?,
        customer: id_of(obj, "customer"),
        payment_method: id_of(obj, "payment_method"),
        description: text(obj, "description"),
        client_secret: None,
        metadata: metadata(obj),
        created: int(obj, "created").unwrap_or_default(),
    })
}

pub fn checkout_session(obj: &Value) -> Option<CheckoutSnapshot> {
    Some(CheckoutSnapshot {
        id: text(obj, "id")?,
        mode: text(obj, "mode")?,
        status: text(obj, "status"),
        payment_status: text(obj, "payment_status")?,
        url: text(obj, "url"),
        amount_total: int(obj, "amount_total"),
        currency: text(obj, "currency"),
        customer: id_of(obj, "customer"),
        customer_email: text(obj, "customer_email").or_else(|| {
            obj.pointer("/customer_details/email")
                .and_then(Value::as_str)
                .map(str::to_owned)
        }),
        success_url: text(obj, "success_url"),
        cancel_url: text(obj, "cancel_url"),
        payment_intent: id_of(obj, "payment_intent"),
        subscription: id_of(obj, "subscription"),
        expires_at: int(obj, "expires_at").unwrap_or_default(),
        metadata: metadata(obj),
        created: int(obj, "created").unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_subscription_of_an_older_api_version_still_reads() {
        let old = json!({
            "id": "sub_1", "customer": {"id": "cus_1", "object": "customer"}, "status": "active",
            "current_period_start": 10, "current_period_end": 20, "unknown_field": {"x": 1},
            "items": {"data": [{"plan": {"id": "plan_1", "amount": 500, "currency": "eur", "interval": "year"}, "quantity": 2}]},
            "metadata": {"n": 3}
        });
        let s = subscription(&old).unwrap();
        assert_eq!(
            (s.customer.as_str(), s.current_period_end),
            ("cus_1", Some(20))
        );
        assert_eq!(
            (s.plan_amount, s.plan_interval.as_deref()),
            (Some(500), Some("year"))
        );
        assert_eq!(s.metadata["n"], "3");
        assert!(subscription(&json!({"id": "sub_1"})).is_none());
    }
}
