//! Payment links: a hosted page selling a price, mirrored (created by us, kept current by
//! payment_link.* events).

use std::collections::HashMap;

use serde_json::Value;

use super::fields::{
    Fields::{self, All},
    ID,
};
use super::{flag, id_of, int, metadata, text};

/// A payment link. Stripe's object has no `created` (an event's own `created` orders its
/// states), and carries its line items only when they are expanded.
#[derive(Debug, Clone)]
pub struct PaymentLinkSnapshot {
    pub id: String,
    pub url: String,
    pub active: bool,
    pub metadata: HashMap<String, String>,
    pub created: Option<i64>,
    /// The first line item's price and quantity, when the object carries its line items (or
    /// the caller that created the link knows them).
    pub line_item: Option<(String, i64)>,
}

/// What [`payment_link`] reads (a sync parses its pages into only this).
pub const FIELDS: Fields = Fields::Only(&[
    ("id", All),
    ("deleted", All),
    ("url", All),
    ("active", All),
    ("metadata", All),
    ("created", All),
    (
        "line_items",
        Fields::Only(&[("data", Fields::Only(&[("price", ID), ("quantity", All)]))]),
    ),
]);

pub fn payment_link(obj: &Value) -> Option<PaymentLinkSnapshot> {
    let line_item = obj
        .get("line_items")
        .and_then(|items| items.get("data"))
        .and_then(Value::as_array)
        .and_then(|items| items.first())
        .and_then(|item| Some((id_of(item, "price")?, int(item, "quantity").unwrap_or(1))));
    Some(PaymentLinkSnapshot {
        id: text(obj, "id")?,
        url: text(obj, "url")?,
        active: flag(obj, "active", true),
        metadata: metadata(obj),
        created: int(obj, "created"),
        line_item,
    })
}
