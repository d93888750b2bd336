//! Charges, as far as the mirror reads them: what a `charge.refunded` event tells.

use serde_json::Value;

use super::{RefundSnapshot, id_of, int, refund};

/// What a `charge.refunded` event tells about a payment: its refunded total so far.
#[derive(Debug, Clone)]
pub struct ChargeRefunded {
    pub payment_intent: String,
    pub amount_refunded: i64,
    /// The refunds the charge carries (older API versions embed them).
    pub refunds: Vec<RefundSnapshot>,
}

pub fn charge_refunded(obj: &Value) -> Option<ChargeRefunded> {
    Some(ChargeRefunded {
        payment_intent: id_of(obj, "payment_intent")?,
        amount_refunded: int(obj, "amount_refunded")?,
        refunds: obj
            .pointer("/refunds/data")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(refund).collect())
            .unwrap_or_default(),
    })
}
