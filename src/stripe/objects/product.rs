//! Products of the catalogue.

use std::collections::HashMap;

use serde_json::Value;

use super::fields::Fields::{self, All};
use super::{flag, int, metadata, text};

/// A product (`deleted`: product.deleted or the object's flag).
#[derive(Debug, Clone)]
pub struct ProductSnapshot {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub active: bool,
    pub metadata: HashMap<String, String>,
    pub created: i64,
    pub deleted: bool,
}

/// What [`product`] reads (a sync parses its pages into only this).
pub const FIELDS: Fields = Fields::Only(&[
    ("id", All),
    ("deleted", All),
    ("name", All),
    ("description", All),
    ("active", All),
    ("metadata", All),
    ("created", All),
]);

pub fn product(obj: &Value, deleted: bool) -> Option<ProductSnapshot> {
    Some(ProductSnapshot {
        id: text(obj, "id")?,
        name: text(obj, "name").unwrap_or_default(),
        description: text(obj, "description"),
        active: flag(obj, "active", true),
        metadata: metadata(obj),
        created: int(obj, "created").unwrap_or_default(),
        deleted: deleted || flag(obj, "deleted", false),
    })
}
