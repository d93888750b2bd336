//! Checkout sessions.

use std::collections::HashMap;

use serde_json::Value;

use super::fields::{
    Fields::{self, All},
    ID,
};
use super::{id_of, int, metadata, text};

#[derive(Debug, Clone, PartialEq)]
pub struct CheckoutSnapshot {
    pub id: String,
    pub mode: String,
    pub status: Option<String>,
    pub payment_status: String,
    pub url: Option<String>,
    pub amount_total: Option<i64>,
    pub currency: Option<String>,
    pub customer: Option<String>,
    pub customer_email: Option<String>,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    pub payment_intent: Option<String>,
    pub subscription: Option<String>,
    pub expires_at: i64,
    pub metadata: HashMap<String, String>,
    pub created: i64,
}

/// What [`checkout_session`] reads (a sync parses its pages into only this).
pub const FIELDS: Fields = Fields::Only(&[
    ("id", All),
    ("deleted", All),
    ("mode", All),
    ("status", All),
    ("payment_status", All),
    ("url", All),
    ("amount_total", All),
    ("currency", All),
    ("customer", ID),
    ("customer_email", All),
    ("customer_details", Fields::Only(&[("email", All)])),
    ("success_url", All),
    ("cancel_url", All),
    ("payment_intent", ID),
    ("subscription", ID),
    ("expires_at", All),
    ("metadata", All),
    ("created", All),
]);

pub fn checkout_session(obj: &Value) -> Option<CheckoutSnapshot> {
    Some(CheckoutSnapshot {
        id: text(obj, "id")?,
        mode: text(obj, "mode")?,
        status: text(obj, "status"),
        payment_status: text(obj, "payment_status")?,
        url: text(obj, "url"),
        amount_total: int(obj, "amount_total"),
        currency: text(obj, "currency"),
        customer: id_of(obj, "customer"),
        customer_email: text(obj, "customer_email").or_else(|| {
            obj.pointer("/customer_details/email")
                .and_then(Value::as_str)
                .map(str::to_owned)
        }),
        success_url: text(obj, "success_url"),
        cancel_url: text(obj, "cancel_url"),
        payment_intent: id_of(obj, "payment_intent"),
        subscription: id_of(obj, "subscription"),
        expires_at: int(obj, "expires_at").unwrap_or_default(),
        metadata: metadata(obj),
        created: int(obj, "created").unwrap_or_default(),
    })
}
