//! Invoice lines and invoice items: the lines an invoice is made of, the items waiting for the
//! next invoice (the proration items `create_prorations` leaves), and the line each becomes.

use serde_json::{Map, Value, json};

use crate::fixtures::fixture;
use crate::ids;
use crate::json::{id_of, int_field, opt_str, set, str_field};
use crate::store::{Store, kinds};

/// One line to put on an invoice.
#[derive(Debug, Clone, PartialEq)]
pub struct LineSpec {
    /// Amount in minor units (negative for credits).
    pub amount: i64,
    /// Quantity.
    pub quantity: i64,
    /// Description.
    pub description: String,
    /// The price object, if the line is priced.
    pub price: Option<Value>,
    /// Service period (start, end).
    pub period: (i64, i64),
    /// Whether the line is a proration.
    pub proration: bool,
    /// The subscription.
    pub subscription: Option<String>,
    /// The subscription item (lines billed for a subscription item directly).
    pub subscription_item: Option<String>,
    /// The invoice item (lines that come from invoice items).
    pub invoice_item: Option<String>,
    /// Whether discounts apply to it.
    pub discountable: bool,
}

/// The `pricing` of a line or invoice item priced by `price`.
fn pricing(price: Option<&Value>, unit_amount_decimal: &str) -> Value {
    match price {
        Some(price) => json!({
            "price_details": {
                "price": str_field(price, "id"),
                "product": id_of(price.get("product").unwrap_or(&Value::Null)),
            },
            "type": "price_details",
            "unit_amount_decimal": unit_amount_decimal,
        }),
        None => Value::Null,
    }
}

fn unit_decimal(amount: i64, quantity: i64) -> String {
    if quantity > 0 && amount % quantity == 0 {
        (amount / quantity).to_string()
    } else if quantity > 0 {
        // Prorated amounts: Stripe gives the unit amount with decimals.
        let unit = amount as f64 / quantity as f64;
        format!("{unit:.12}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    } else {
        amount.to_string()
    }
}

pub fn line_object(spec: &LineSpec, invoice: &str, currency: &str, livemode: bool) -> Value {
    let parent = match &spec.invoice_item {
        Some(item) => json!({
            "invoice_item_details": {
                "invoice_item": item,
                "proration": spec.proration,
                "proration_details": {"credited_items": null},
                "subscription": spec.subscription,
            },
            "subscription_item_details": null,
            "type": "invoice_item_details",
        }),
        None => json!({
            "invoice_item_details": null,
            "subscription_item_details": {
                "invoice_item": null,
                "proration": spec.proration,
                "proration_details": {"credited_items": null},
                "subscription": spec.subscription,
                "subscription_item": spec.subscription_item.as_deref().unwrap_or_default(),
            },
            "type": "subscription_item_details",
        }),
    };
    let mut line = fixture("line_item");
    for (key, value) in [
        ("id", json!(ids::long_id("il"))),
        ("object", json!("line_item")),
        ("amount", json!(spec.amount)),
        ("currency", json!(currency)),
        ("description", json!(spec.description)),
        ("discount_amounts", json!([])),
        ("discountable", json!(spec.discountable)),
        ("discounts", json!([])),
        ("invoice", json!(invoice)),
        ("livemode", json!(livemode)),
        ("metadata", json!({})),
        ("parent", parent),
        (
            "period",
            json!({"start": spec.period.0, "end": spec.period.1}),
        ),
        ("pretax_credit_amounts", json!([])),
        (
            "pricing",
            pricing(
                spec.price.as_ref(),
                &unit_decimal(spec.amount, spec.quantity),
            ),
        ),
        ("quantity", json!(spec.quantity)),
        ("quantity_decimal", json!(spec.quantity.to_string())),
        ("subscription", opt_str(spec.subscription.as_deref())),
        ("subtotal", json!(spec.amount)),
        ("taxes", json!([])),
    ] {
        set(&mut line, key, value);
    }
    line
}

/// Stores an invoice item (pending when `invoice` is `None`) and returns its id.
pub fn insert_item(
    store: &mut Store,
    now: i64,
    customer: &str,
    currency: &str,
    spec: &LineSpec,
    invoice: Option<&str>,
) -> String {
    let id = ids::long_id("ii");
    let parent = spec.subscription.as_ref().map_or(Value::Null, |sub| {
        json!({
            "subscription_details": {
                "subscription": sub,
                "subscription_item": spec.subscription_item,
            },
            "type": "subscription_details",
        })
    });
    let mut item = fixture(kinds::INVOICE_ITEM);
    for (key, value) in [
        ("id", json!(id)),
        ("object", json!("invoiceitem")),
        ("amount", json!(spec.amount)),
        ("currency", json!(currency)),
        ("customer", json!(customer)),
        ("customer_account", Value::Null),
        ("date", json!(now)),
        ("description", json!(spec.description)),
        ("discountable", json!(spec.discountable)),
        ("discounts", json!([])),
        ("invoice", opt_str(invoice)),
        ("livemode", json!(store.livemode)),
        ("metadata", json!({})),
        ("net_amount", json!(spec.amount)),
        ("parent", parent),
        (
            "period",
            json!({"start": spec.period.0, "end": spec.period.1}),
        ),
        (
            "pricing",
            pricing(
                spec.price.as_ref(),
                &unit_decimal(spec.amount, spec.quantity),
            ),
        ),
        ("proration", json!(spec.proration)),
        ("quantity", json!(spec.quantity)),
        ("quantity_decimal", json!(spec.quantity.to_string())),
        ("tax_rates", json!([])),
        ("test_clock", Value::Null),
    ] {
        set(&mut item, key, value);
    }
    let mut internal = Map::new();
    if let Some(price) = &spec.price {
        internal.insert("price".into(), price.clone());
    }
    store.insert_with(kinds::INVOICE_ITEM, item, internal);
    id
}

/// The line an invoice item becomes.
pub fn line_from_item(store: &Store, item_id: &str) -> Option<LineSpec> {
    let record = store.get_live(kinds::INVOICE_ITEM, item_id)?;
    let o = &record.object;
    Some(LineSpec {
        amount: int_field(o, "amount"),
        quantity: int_field(o, "quantity"),
        description: str_field(o, "description").unwrap_or_default().to_owned(),
        price: record.internal.get("price").cloned(),
        period: (
            o.pointer("/period/start")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            o.pointer("/period/end")
                .and_then(Value::as_i64)
                .unwrap_or(0),
        ),
        proration: o.get("proration").and_then(Value::as_bool).unwrap_or(false),
        subscription: o
            .pointer("/parent/subscription_details/subscription")
            .and_then(Value::as_str)
            .map(str::to_owned),
        subscription_item: None,
        invoice_item: Some(item_id.to_owned()),
        discountable: o
            .get("discountable")
            .and_then(Value::as_bool)
            .unwrap_or(true),
    })
}

/// Ids of a customer's pending invoice items (of `subscription`, or of no subscription),
/// oldest first.
pub fn pending_items(store: &Store, customer: &str, subscription: Option<&str>) -> Vec<String> {
    let mut ids: Vec<String> = store
        .live_where(kinds::INVOICE_ITEM, &[("customer", customer)])
        .filter(|r| {
            let o = &r.object;
            let item_sub = o
                .pointer("/parent/subscription_details/subscription")
                .and_then(Value::as_str);
            o.get("invoice").is_none_or(Value::is_null)
                && (item_sub.is_none() || item_sub == subscription)
        })
        .filter_map(|r| str_field(&r.object, "id").map(str::to_owned))
        .collect();
    ids.reverse();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::invoices::record::format_date;

    #[test]
    fn dates_and_decimals() {
        assert_eq!(format_date(1_763_510_400), "19 Nov 2025");
        assert_eq!(unit_decimal(2000, 1), "2000");
        assert_eq!(unit_decimal(1000, 3), "333.333333333333");
        assert_eq!(unit_decimal(-500, 1), "-500");
    }
}
