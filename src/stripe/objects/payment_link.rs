//! Payment links (not mirrored: returned to the caller).

use serde_json::Value;

use super::{flag, int, text};

/// A created payment link, reduced to what we return.
#[derive(Debug, Clone)]
pub struct PaymentLink {
    pub id: String,
    pub url: String,
    pub active: bool,
    pub created: Option<i64>,
}

pub fn payment_link(obj: &Value) -> Option<PaymentLink> {
    Some(PaymentLink {
        id: text(obj, "id")?,
        url: text(obj, "url")?,
        active: flag(obj, "active", true),
        created: int(obj, "created"),
    })
}
