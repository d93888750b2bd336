//! Customers.

use std::collections::HashMap;

use serde_json::Value;

use super::fields::{
    Fields::{self, All},
    ID,
};
use super::{id_of, metadata, text};

/// What the mirror keeps of a customer.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerSnapshot {
    pub id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub description: Option<String>,
    pub default_payment_method: Option<String>,
    pub metadata: HashMap<String, String>,
    pub deleted: bool,
}

/// What [`customer`] reads (a sync parses its pages into only this).
pub const FIELDS: Fields = Fields::Only(&[
    ("id", All),
    ("deleted", All),
    ("email", All),
    ("name", All),
    ("phone", All),
    ("description", All),
    (
        "invoice_settings",
        Fields::Only(&[("default_payment_method", ID)]),
    ),
    ("metadata", All),
]);

/// `deleted` is the event's verdict (`customer.deleted`) or the object's own flag.
pub fn customer(obj: &Value, deleted: bool) -> Option<CustomerSnapshot> {
    Some(CustomerSnapshot {
        id: text(obj, "id")?,
        email: text(obj, "email"),
        name: text(obj, "name"),
        phone: text(obj, "phone"),
        description: text(obj, "description"),
        default_payment_method: obj
            .get("invoice_settings")
            .and_then(|s| id_of(s, "default_payment_method")),
        metadata: metadata(obj),
        deleted: deleted || obj.get("deleted").and_then(Value::as_bool) == Some(true),
    })
}
