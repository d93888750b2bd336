//! Prices of the catalogue.

use std::collections::HashMap;

use serde_json::Value;

use super::fields::{
    Fields::{self, All},
    ID,
};
use super::{flag, id_of, int, metadata, text};

#[derive(Debug, Clone)]
pub struct PriceSnapshot {
    pub id: String,
    pub product: String,
    pub active: bool,
    pub currency: String,
    pub unit_amount: Option<i64>,
    /// `one_time` or `recurring`.
    pub price_type: String,
    pub recurring_interval: Option<String>,
    pub recurring_interval_count: Option<i64>,
    pub nickname: Option<String>,
    pub metadata: HashMap<String, String>,
    pub created: i64,
    pub deleted: bool,
}

/// What [`price`] reads (a sync parses its pages into only this).
pub const FIELDS: Fields = Fields::Only(&[
    ("id", All),
    ("deleted", All),
    ("product", ID),
    ("active", All),
    ("currency", All),
    ("unit_amount", All),
    ("type", All),
    (
        "recurring",
        Fields::Only(&[("interval", All), ("interval_count", All)]),
    ),
    ("nickname", All),
    ("metadata", All),
    ("created", All),
]);

pub fn price(obj: &Value, deleted: bool) -> Option<PriceSnapshot> {
    let recurring = obj.get("recurring").filter(|r| r.is_object());
    Some(PriceSnapshot {
        id: text(obj, "id")?,
        product: id_of(obj, "product")?,
        active: flag(obj, "active", true),
        currency: text(obj, "currency")?,
        unit_amount: int(obj, "unit_amount"),
        price_type: text(obj, "type").unwrap_or_else(|| {
            if recurring.is_some() {
                "recurring"
            } else {
                "one_time"
            }
            .to_owned()
        }),
        recurring_interval: recurring.and_then(|r| text(r, "interval")),
        recurring_interval_count: recurring.and_then(|r| int(r, "interval_count")),
        nickname: text(obj, "nickname"),
        metadata: metadata(obj),
        created: int(obj, "created").unwrap_or_default(),
        deleted: deleted || flag(obj, "deleted", false),
    })
}
