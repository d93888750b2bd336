//! Refunds.

use std::collections::HashMap;

use serde_json::Value;

use super::fields::{
    Fields::{self, All},
    ID,
};
use super::{id_of, int, metadata, text};

#[derive(Debug, Clone)]
pub struct RefundSnapshot {
    pub id: String,
    pub payment_intent: Option<String>,
    pub charge: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub reason: Option<String>,
    pub metadata: HashMap<String, String>,
    pub created: i64,
}

/// What [`refund`] reads (a sync parses its pages into only this).
pub const FIELDS: Fields = Fields::Only(&[
    ("id", All),
    ("deleted", All),
    ("payment_intent", ID),
    ("charge", ID),
    ("amount", All),
    ("currency", All),
    ("status", All),
    ("reason", All),
    ("metadata", All),
    ("created", All),
]);

pub fn refund(obj: &Value) -> Option<RefundSnapshot> {
    Some(RefundSnapshot {
        id: text(obj, "id")?,
        payment_intent: id_of(obj, "payment_intent"),
        charge: id_of(obj, "charge"),
        amount: int(obj, "amount")?,
        currency: text(obj, "currency")?,
        status: text(obj, "status").unwrap_or_else(|| "succeeded".to_owned()),
        reason: text(obj, "reason"),
        metadata: metadata(obj),
        created: int(obj, "created").unwrap_or_default(),
    })
}
