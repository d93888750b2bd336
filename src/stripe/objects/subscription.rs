//! Subscriptions: the plan (first item) and every item.

use std::collections::HashMap;

use serde_json::Value;

use super::fields::{
    Fields::{self, All},
    ID,
};
use super::{id_of, int, metadata, text};

/// What the mirror keeps of a subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionSnapshot {
    pub id: String,
    pub customer: String,
    pub status: String,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    pub trial_end: Option<i64>,
    pub cancel_at_period_end: bool,
    pub canceled_at: Option<i64>,
    pub price_id: Option<String>,
    pub quantity: Option<i64>,
    pub plan_amount: Option<i64>,
    pub plan_currency: Option<String>,
    pub plan_interval: Option<String>,
    pub metadata: HashMap<String, String>,
    pub created: i64,
    /// Every item, in Stripe's order (the first is the plan above).
    pub items: Vec<SubscriptionItemSnapshot>,
    /// `items` is the whole list (Stripe embeds at most 10: with `has_more`, the stored
    /// items are left as they are, and a sync pages the rest).
    pub items_complete: bool,
}

/// One item of a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionItemSnapshot {
    pub id: String,
    pub price_id: Option<String>,
    pub quantity: Option<i64>,
}

/// What a subscription's price (or older plan) is read for.
const PRICE: Fields = Fields::Only(&[
    ("id", All),
    ("unit_amount", All),
    ("amount", All),
    ("currency", All),
    ("recurring", Fields::Only(&[("interval", All)])),
    ("interval", All),
]);

/// What [`subscription`] reads of each item (also a page of `/v1/subscription_items`).
const ITEM_FIELDS: Fields = Fields::Only(&[
    ("id", All),
    ("price", PRICE),
    ("plan", PRICE),
    ("quantity", All),
    ("current_period_start", All),
    ("current_period_end", All),
]);

/// What [`subscription`] reads (a sync parses its pages into only this).
pub const FIELDS: Fields = Fields::Only(&[
    ("id", All),
    ("deleted", All),
    ("customer", ID),
    ("status", All),
    ("current_period_start", All),
    ("current_period_end", All),
    ("trial_end", All),
    ("cancel_at_period_end", All),
    ("canceled_at", All),
    ("metadata", All),
    ("created", All),
    (
        "items",
        Fields::Only(&[("data", ITEM_FIELDS), ("has_more", All)]),
    ),
]);

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
        items: obj
            .pointer("/items/data")
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(item_of).collect())
            .unwrap_or_default(),
        items_complete: obj.pointer("/items/has_more").and_then(Value::as_bool) != Some(true),
    })
}

fn item_of(i: &Value) -> Option<SubscriptionItemSnapshot> {
    Some(SubscriptionItemSnapshot {
        id: text(i, "id")?,
        price_id: i
            .get("price")
            .or_else(|| i.get("plan"))
            .and_then(|p| text(p, "id")),
        quantity: int(i, "quantity"),
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
