//! Refunds.

use std::collections::HashMap;

use serde_json::Value;

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
