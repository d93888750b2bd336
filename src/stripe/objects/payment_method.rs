//! Payment methods (saved cards).

use std::collections::HashMap;

use serde_json::Value;

use super::fields::{
    Fields::{self, All},
    ID,
};
use super::{id_of, int, metadata, text};

#[derive(Debug, Clone)]
pub struct PaymentMethodSnapshot {
    pub id: String,
    /// `None` once detached.
    pub customer: Option<String>,
    pub method_type: String,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub card_exp_month: Option<i64>,
    pub card_exp_year: Option<i64>,
    pub metadata: HashMap<String, String>,
    pub created: i64,
}

/// What [`payment_method`] reads (a sync parses its pages into only this).
pub const FIELDS: Fields = Fields::Only(&[
    ("id", All),
    ("deleted", All),
    ("customer", ID),
    ("type", All),
    (
        "card",
        Fields::Only(&[
            ("brand", All),
            ("last4", All),
            ("exp_month", All),
            ("exp_year", All),
        ]),
    ),
    ("metadata", All),
    ("created", All),
]);

pub fn payment_method(obj: &Value) -> Option<PaymentMethodSnapshot> {
    let card = obj.get("card").filter(|c| c.is_object());
    Some(PaymentMethodSnapshot {
        id: text(obj, "id")?,
        customer: id_of(obj, "customer"),
        method_type: text(obj, "type").unwrap_or_else(|| "card".to_owned()),
        card_brand: card.and_then(|c| text(c, "brand")),
        card_last4: card.and_then(|c| text(c, "last4")),
        card_exp_month: card.and_then(|c| int(c, "exp_month")),
        card_exp_year: card.and_then(|c| int(c, "exp_year")),
        metadata: metadata(obj),
        created: int(obj, "created").unwrap_or_default(),
    })
}
