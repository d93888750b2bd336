//! Payment intents.

use std::collections::HashMap;

use serde_json::Value;

use super::fields::{
    Fields::{self, All},
    ID,
};
use super::{id_of, int, metadata, text};

/// A payment intent. `client_secret` is Stripe's answer to the caller who created or reads
/// the payment: shown to that caller, never stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentSnapshot {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub customer: Option<String>,
    pub payment_method: Option<String>,
    pub description: Option<String>,
    pub client_secret: Option<String>,
    pub metadata: HashMap<String, String>,
    pub created: i64,
}

/// What [`payment`] reads, but its client secret: a sync never keeps one (only the caller
/// who created a payment is given it), so its pages are parsed into only this.
pub const FIELDS: Fields = Fields::Only(&[
    ("id", All),
    ("deleted", All),
    ("amount", All),
    ("currency", All),
    ("status", All),
    ("customer", ID),
    ("payment_method", ID),
    ("description", All),
    ("metadata", All),
    ("created", All),
]);

pub fn payment(obj: &Value) -> Option<PaymentSnapshot> {
    Some(PaymentSnapshot {
        id: text(obj, "id")?,
        amount: int(obj, "amount")?,
        currency: text(obj, "currency")?,
        status: text(obj, "status")?,
        customer: id_of(obj, "customer"),
        payment_method: id_of(obj, "payment_method"),
        description: text(obj, "description"),
        client_secret: text(obj, "client_secret"),
        metadata: metadata(obj),
        created: int(obj, "created").unwrap_or_default(),
    })
}
