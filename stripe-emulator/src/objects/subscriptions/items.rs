//! Subscription items: the item objects (each with its full `price` and the `plan` mirroring
//! it) and how lines describe them.

use serde_json::{Map, Value, json};

use crate::fixtures::fixture;
use crate::json::{id_of, set, str_field};
use crate::money::format_amount;
use crate::objects::prices;
use crate::store::{Store, kinds};

/// The product name of a price, for line descriptions.
pub fn product_name(store: &Store, price: &Value) -> String {
    let product = price.get("product").and_then(id_of).unwrap_or_default();
    store
        .get(kinds::PRODUCT, product)
        .and_then(|r| str_field(&r.object, "name").map(str::to_owned))
        .unwrap_or_else(|| product.to_owned())
}

/// `$20.00 / month`, `$50.00 / every 3 months`.
pub fn price_label(price: &Value) -> String {
    let currency = str_field(price, "currency").unwrap_or("usd");
    let amount = format_amount(prices::unit_amount(price), currency);
    match prices::interval_of(price) {
        Some((interval, 1)) => format!("{amount} / {interval}"),
        Some((interval, count)) => format!("{amount} / every {count} {interval}s"),
        None => amount,
    }
}

/// A `plan` object mirroring a recurring price (subscription items still carry one).
pub fn plan_of(price: &Value) -> Value {
    let (interval, count) = prices::interval_of(price).unwrap_or_else(|| ("month".into(), 1));
    let mut plan = fixture("plan");
    for (key, value) in [
        ("id", price.get("id").cloned().unwrap_or(Value::Null)),
        ("object", json!("plan")),
        (
            "active",
            price.get("active").cloned().unwrap_or(json!(true)),
        ),
        (
            "amount",
            price.get("unit_amount").cloned().unwrap_or(Value::Null),
        ),
        (
            "amount_decimal",
            price
                .get("unit_amount_decimal")
                .cloned()
                .unwrap_or(Value::Null),
        ),
        ("billing_scheme", json!("per_unit")),
        ("created", price.get("created").cloned().unwrap_or(json!(0))),
        (
            "currency",
            price.get("currency").cloned().unwrap_or(Value::Null),
        ),
        ("interval", json!(interval)),
        ("interval_count", json!(count)),
        (
            "livemode",
            price.get("livemode").cloned().unwrap_or(json!(false)),
        ),
        (
            "metadata",
            price.get("metadata").cloned().unwrap_or_else(|| json!({})),
        ),
        ("meter", Value::Null),
        (
            "nickname",
            price.get("nickname").cloned().unwrap_or(Value::Null),
        ),
        (
            "product",
            price.get("product").cloned().unwrap_or(Value::Null),
        ),
        ("tiers_mode", Value::Null),
        ("transform_usage", Value::Null),
        ("trial_period_days", Value::Null),
        ("usage_type", json!("licensed")),
    ] {
        set(&mut plan, key, value);
    }
    plan
}

pub fn item_object(
    id: &str,
    subscription: &str,
    price: &Value,
    quantity: i64,
    metadata: &Map<String, Value>,
    period: (i64, i64),
    now: i64,
) -> Value {
    let mut item = fixture("subscription_item");
    for (key, value) in [
        ("id", json!(id)),
        ("object", json!("subscription_item")),
        ("billing_thresholds", Value::Null),
        ("created", json!(now)),
        ("current_period_start", json!(period.0)),
        ("current_period_end", json!(period.1)),
        ("current_trial", Value::Null),
        ("discounts", json!([])),
        ("metadata", Value::Object(metadata.clone())),
        ("plan", plan_of(price)),
        ("price", price.clone()),
        ("quantity", json!(quantity)),
        ("subscription", json!(subscription)),
        ("tax_rates", json!([])),
    ] {
        set(&mut item, key, value);
    }
    item
}

pub fn quantity_label(store: &Store, price: &Value, qty: i64) -> String {
    let name = product_name(store, price);
    if qty == 1 {
        name
    } else {
        format!("{qty} × {name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels() {
        let price = json!({"currency": "usd", "unit_amount": 2000, "recurring": {"interval": "month", "interval_count": 1}});
        assert_eq!(price_label(&price), "$20.00 / month");
        let price = json!({"currency": "usd", "unit_amount": 5000, "recurring": {"interval": "month", "interval_count": 3}});
        assert_eq!(price_label(&price), "$50.00 / every 3 months");
    }
}
