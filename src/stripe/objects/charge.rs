//! Charges: a payment intent's attempts to move money, as `charge.*` events, re-reads and
//! list answers carry them.

use std::collections::HashMap;

use serde_json::Value;

use super::fields::{
    Fields::{self, All},
    ID,
};
use super::{RefundSnapshot, flag, id_of, int, metadata, refund, text};

#[derive(Debug, Clone)]
pub struct ChargeSnapshot {
    pub id: String,
    pub payment_intent: Option<String>,
    pub customer: Option<String>,
    pub amount: i64,
    pub amount_captured: i64,
    /// Refunded so far: only grows (refunds add to it).
    pub amount_refunded: i64,
    pub currency: String,
    pub captured: bool,
    /// Refunded in full.
    pub refunded: bool,
    pub paid: bool,
    /// `succeeded`, `pending` or `failed`.
    pub status: String,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    /// The `pm_` id.
    pub payment_method: Option<String>,
    /// `payment_method_details.type`: `card`, ...
    pub payment_method_type: Option<String>,
    /// `payment_method_details.card.brand` and `.last4`, for a card.
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub receipt_url: Option<String>,
    pub description: Option<String>,
    pub metadata: HashMap<String, String>,
    pub created: i64,
    /// The refunds the charge carries (older API versions embed them; newer ones only when
    /// expanded).
    pub refunds: Vec<RefundSnapshot>,
}

/// What [`charge`] reads (a sync parses its pages into only this).
pub const FIELDS: Fields = Fields::Only(&[
    ("id", All),
    ("deleted", All),
    ("payment_intent", ID),
    ("customer", ID),
    ("amount", All),
    ("amount_captured", All),
    ("amount_refunded", All),
    ("currency", All),
    ("captured", All),
    ("refunded", All),
    ("paid", All),
    ("status", All),
    ("failure_code", All),
    ("failure_message", All),
    ("payment_method", All),
    (
        "payment_method_details",
        Fields::Only(&[
            ("type", All),
            ("card", Fields::Only(&[("brand", All), ("last4", All)])),
        ]),
    ),
    ("receipt_url", All),
    ("description", All),
    ("metadata", All),
    ("created", All),
    ("refunds", Fields::Only(&[("data", super::refund::FIELDS)])),
]);

/// Reads a charge. Only its id is required: a field an API version leaves out reads as
/// Stripe's zero value (no amount, not captured, ...), never as an unreadable charge.
pub fn charge(obj: &Value) -> Option<ChargeSnapshot> {
    let card = obj.pointer("/payment_method_details/card");
    let card_text = |key: &str| card.and_then(|c| text(c, key));
    let paid = flag(obj, "paid", false);
    Some(ChargeSnapshot {
        id: text(obj, "id")?,
        payment_intent: id_of(obj, "payment_intent"),
        customer: id_of(obj, "customer"),
        amount: int(obj, "amount").unwrap_or_default(),
        amount_captured: int(obj, "amount_captured").unwrap_or_default(),
        amount_refunded: int(obj, "amount_refunded").unwrap_or_default(),
        currency: text(obj, "currency").unwrap_or_default(),
        captured: flag(obj, "captured", false),
        refunded: flag(obj, "refunded", false),
        paid,
        status: text(obj, "status")
            .unwrap_or_else(|| if paid { "succeeded" } else { "pending" }.to_owned()),
        failure_code: text(obj, "failure_code"),
        failure_message: text(obj, "failure_message"),
        payment_method: text(obj, "payment_method"),
        payment_method_type: obj
            .get("payment_method_details")
            .and_then(|d| text(d, "type")),
        card_brand: card_text("brand"),
        card_last4: card_text("last4"),
        receipt_url: text(obj, "receipt_url"),
        description: text(obj, "description"),
        metadata: metadata(obj),
        created: int(obj, "created").unwrap_or_default(),
        refunds: obj
            .pointer("/refunds/data")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(refund).collect())
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_card_charge_is_read_with_its_card_and_failure() {
        let read = charge(&json!({
            "id": "ch_1", "object": "charge", "payment_intent": {"id": "pi_1"},
            "customer": "cus_1", "amount": 500, "amount_captured": 0, "amount_refunded": 0,
            "currency": "usd", "captured": false, "refunded": false, "paid": false,
            "status": "failed", "failure_code": "card_declined",
            "failure_message": "Your card was declined.", "payment_method": "pm_1",
            "payment_method_details": {"type": "card", "card": {"brand": "visa", "last4": "0002"}},
            "receipt_url": null, "created": 7, "metadata": {"order": "o-1"},
            "refunds": {"object": "list", "data": [{"id": "re_1", "amount": 100,
                "currency": "usd", "charge": "ch_1", "status": "succeeded"}]}
        }))
        .unwrap();
        assert_eq!(read.payment_intent.as_deref(), Some("pi_1"));
        assert_eq!(read.status, "failed");
        assert_eq!(read.failure_code.as_deref(), Some("card_declined"));
        assert_eq!(
            (read.card_brand.as_deref(), read.card_last4.as_deref()),
            (Some("visa"), Some("0002"))
        );
        assert_eq!(read.payment_method_type.as_deref(), Some("card"));
        assert_eq!(read.metadata.get("order").map(String::as_str), Some("o-1"));
        assert_eq!(read.refunds.len(), 1);
        assert_eq!(read.created, 7);
    }

    #[test]
    fn a_sparse_charge_is_still_read_and_one_without_an_id_is_not() {
        let read = charge(&json!({"id": "ch_2", "paid": true, "amount_refunded": 30})).unwrap();
        assert_eq!(
            (read.status.as_str(), read.amount_refunded),
            ("succeeded", 30)
        );
        assert_eq!(read.card_brand, None);
        assert!(charge(&json!({"object": "charge"})).is_none());
    }
}
