//! Products: the object, its lookup, and products made from `product_data[name]`.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::fixtures::fixture;
use crate::ids;
use crate::json::set;
use crate::store::{Record, Store, kinds};

/// How products are named in "No such ..." messages.
pub const LABEL: &str = "product";

/// The live product `id`, or `resource_missing` on `param`.
pub fn require_live<'s>(store: &'s Store, id: &str, param: &str) -> ApiResult<&'s Record> {
    store
        .get_live(kinds::PRODUCT, id)
        .ok_or_else(|| ApiError::resource_missing(LABEL, id, param))
}

/// A new product object with Stripe's defaults.
pub fn new_object(id: &str, name: &str, now: i64, livemode: bool) -> Value {
    let mut product = fixture(kinds::PRODUCT);
    for (key, value) in [
        ("id", json!(id)),
        ("object", json!("product")),
        ("active", json!(true)),
        ("created", json!(now)),
        ("updated", json!(now)),
        ("default_price", Value::Null),
        ("description", Value::Null),
        ("images", json!([])),
        ("livemode", json!(livemode)),
        ("marketing_features", json!([])),
        ("metadata", json!({})),
        ("name", json!(name)),
        ("package_dimensions", Value::Null),
        ("shippable", Value::Null),
        ("statement_descriptor", Value::Null),
        ("tax_code", Value::Null),
        ("tax_details", Value::Null),
        ("unit_label", Value::Null),
        ("url", Value::Null),
        ("type", json!("service")),
    ] {
        set(&mut product, key, value);
    }
    product
}

/// Stores a product made only from a name (as `product_data[name]` does), returning its id.
pub fn insert_named(
    store: &mut Store,
    now: i64,
    name: &str,
    metadata: Map<String, Value>,
) -> String {
    let id = ids::short_id("prod");
    let mut product = new_object(&id, name, now, store.livemode);
    set(&mut product, "metadata", Value::Object(metadata));
    store.insert(kinds::PRODUCT, product);
    id
}
