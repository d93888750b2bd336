//! The line items checkout sessions and payment links keep (internal): a price and a quantity
//! each, shaped as Stripe's `item`.

use serde_json::{Value, json};

use crate::fixtures::fixture;
use crate::ids;
use crate::json::set;
use crate::list::list_object;
use crate::money::line_amount;
use crate::objects::prices;
use crate::store::Store;

/// A line item as stored with the session (internal): price object and quantity (payment
/// links keep theirs the same way).
pub fn item_object(price: &Value, quantity: i64, description: &str, discount: i64) -> Value {
    let subtotal = line_amount(prices::unit_amount(price), quantity);
    let mut item = fixture("item");
    for (key, value) in [
        ("id", json!(ids::long_id("li"))),
        ("object", json!("item")),
        ("adjustable_quantity", Value::Null),
        ("amount_discount", json!(discount)),
        ("amount_subtotal", json!(subtotal)),
        ("amount_tax", json!(0)),
        ("amount_total", json!(subtotal - discount)),
        (
            "currency",
            price.get("currency").cloned().unwrap_or(Value::Null),
        ),
        ("description", json!(description)),
        ("discounts", json!([])),
        ("metadata", json!({})),
        ("price", price.clone()),
        ("quantity", json!(quantity)),
        ("taxes", json!([])),
    ] {
        set(&mut item, key, value);
    }
    item
}

/// The line items stored with an object of `kind` (a checkout session or a payment link).
pub(crate) fn stored_line_items(store: &Store, kind: &str, id: &str) -> Vec<Value> {
    store
        .get(kind, id)
        .and_then(|r| {
            r.internal
                .get("line_items")
                .and_then(Value::as_array)
                .cloned()
        })
        .unwrap_or_default()
}

/// Those line items as a Stripe list at `url`.
pub(crate) fn line_items_list_of(store: &Store, kind: &str, id: &str, url: &str) -> Value {
    list_object(url, stored_line_items(store, kind, id), false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn items() {
        let price = json!({"id": "price_1", "currency": "usd", "unit_amount": 1500});
        let item = item_object(&price, 2, "Shirt", 300);
        assert_eq!(item["amount_subtotal"], 3000);
        assert_eq!(item["amount_total"], 2700);
        assert_eq!(item["currency"], "usd");
        assert_eq!(item["object"], "item");
    }
}
