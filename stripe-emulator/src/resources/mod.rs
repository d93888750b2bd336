//! The Stripe resources the emulator serves, and the router that maps `/v1` paths to them.
//!
//! Each handler is synchronous: it gets a [`Ctx`] (the account's store, the parsed
//! parameters, ...) and returns the JSON object to answer with, or an [`ApiError`]. Handlers
//! validate everything before changing anything, so a rejected request leaves no trace.

pub mod billing_portal;
pub mod customers;
pub mod payment_methods;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::expand;
use crate::form::{HashArg, Params};
use crate::state::Emulator;
use crate::store::Store;

/// What a handler works with.
pub struct Ctx<'a> {
    /// The account's objects.
    pub store: &'a mut Store,
    /// The request's parameters (query string and body).
    pub params: &'a Params,
    /// The emulator's own base URL as the client reached it, e.g. `http://127.0.0.1:12111`.
    pub base_url: &'a str,
    /// Unix seconds at the start of the request.
    pub now: i64,
    /// Emulator-wide state (hosted pages).
    pub emulator: &'a Emulator,
}

impl Ctx<'_> {
    /// Whether objects are created in live mode.
    pub fn livemode(&self) -> bool {
        self.store.livemode
    }
}

/// Routes a `/v1` request (`segs` are the path segments after `/v1/`). `None` when no
/// endpoint matches (the caller answers Stripe's "Unrecognized request URL").
pub fn route(ctx: &mut Ctx<'_>, method: &str, segs: &[&str]) -> Option<ApiResult<Value>> {
    let result = match (method, segs) {
        ("POST", ["customers"]) => customers::create(ctx),
        ("GET", ["customers"]) => customers::list(ctx),
        ("GET", ["customers", id]) => customers::retrieve(ctx, id),
        ("POST", ["customers", id]) => customers::update(ctx, id),
        ("DELETE", ["customers", id]) => customers::delete(ctx, id),
        ("GET", ["customers", id, "payment_methods"]) => {
            payment_methods::list_for_customer(ctx, id)
        }
        ("GET", ["customers", id, "payment_methods", pm]) => {
            payment_methods::retrieve_for_customer(ctx, id, pm)
        }
        ("GET", ["payment_methods"]) => payment_methods::list(ctx),
        ("GET", ["payment_methods", id]) => payment_methods::retrieve(ctx, id),
        ("POST", ["payment_methods", id]) => payment_methods::update(ctx, id),
        ("POST", ["payment_methods", id, "attach"]) => payment_methods::attach(ctx, id),
        ("POST", ["payment_methods", id, "detach"]) => payment_methods::detach(ctx, id),
        ("POST", ["billing_portal", "sessions"]) => billing_portal::create_session(ctx),
        _ => return None,
    };
    Some(result.and_then(|mut value| {
        let paths = ctx.params.expand()?;
        if !paths.is_empty() {
            expand::apply(ctx.store, &mut value, &paths)?;
        }
        Ok(value)
    }))
}

/// Stripe's metadata limits.
const METADATA_MAX_KEYS: usize = 50;
const METADATA_MAX_KEY_LEN: usize = 40;
const METADATA_MAX_VALUE_LEN: usize = 500;

/// Applies a `metadata` argument to existing metadata as Stripe does: `metadata=` clears
/// it, `metadata[k]=v` sets `k`, `metadata[k]=` deletes `k`. Returns the new metadata after
/// checking Stripe's limits (50 keys, keys up to 40 characters, values up to 500).
pub fn merge_metadata(
    existing: &Map<String, Value>,
    arg: Option<HashArg>,
) -> ApiResult<Map<String, Value>> {
    let mut merged: BTreeMap<String, Value> = existing.clone().into_iter().collect();
    match arg {
        None => {}
        Some(HashArg::Clear) => merged.clear(),
        Some(HashArg::Entries(entries)) => {
            for (key, value) in entries {
                if key.chars().count() > METADATA_MAX_KEY_LEN {
                    return Err(ApiError::invalid_param(
                        &format!("metadata[{key}]"),
                        format!(
                            "Metadata key length can't exceed {METADATA_MAX_KEY_LEN} characters."
                        ),
                    ));
                }
                if value.chars().count() > METADATA_MAX_VALUE_LEN {
                    return Err(ApiError::invalid_param(
                        &format!("metadata[{key}]"),
                        format!(
                            "Metadata values can have up to {METADATA_MAX_VALUE_LEN} characters, but you passed in a value that is {} characters.",
                            value.chars().count()
                        ),
                    ));
                }
                if value.is_empty() {
                    merged.remove(&key);
                } else {
                    merged.insert(key, Value::String(value));
                }
            }
        }
    }
    if merged.len() > METADATA_MAX_KEYS {
        return Err(ApiError::invalid_param(
            "metadata",
            format!(
                "Invalid metadata: metadata can have up to {METADATA_MAX_KEYS} keys, but you have passed in {} keys.",
                merged.len()
            ),
        ));
    }
    Ok(merged.into_iter().collect())
}

/// The `metadata` object of a stored object (empty if it has none).
pub fn metadata_of(object: &Value) -> Map<String, Value> {
    object
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Sets `object[key] = value` if `object` is a JSON object.
pub fn set(object: &mut Value, key: &str, value: Value) {
    if let Some(map) = object.as_object_mut() {
        map.insert(key.to_owned(), value);
    }
}

/// Sets `object[a][b] = value`, creating `object[a]` if needed.
pub fn set_in(object: &mut Value, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = object;
    for seg in parents {
        let Some(map) = node.as_object_mut() else {
            return;
        };
        let child = map
            .entry((*seg).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !child.is_object() {
            *child = Value::Object(Map::new());
        }
        node = child;
    }
    set(node, last, value);
}

/// A string value, or JSON `null` for `None`.
pub fn opt_str(value: Option<&str>) -> Value {
    value.map_or(Value::Null, |s| Value::String(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metadata_merges_like_stripe() {
        let existing = json!({"a": "1", "b": "2"}).as_object().cloned().unwrap();
        let entries = HashArg::Entries(
            [
                ("a".to_owned(), String::new()),
                ("c".to_owned(), "3".to_owned()),
            ]
            .into(),
        );
        let merged = merge_metadata(&existing, Some(entries)).unwrap();
        assert_eq!(Value::Object(merged), json!({"b": "2", "c": "3"}));
        assert!(
            merge_metadata(&existing, Some(HashArg::Clear))
                .unwrap()
                .is_empty()
        );
        assert_eq!(merge_metadata(&existing, None).unwrap(), existing);
        let too_long = HashArg::Entries([("k".repeat(41), "v".to_owned())].into());
        assert!(merge_metadata(&existing, Some(too_long)).is_err());
        let big_value = HashArg::Entries([("k".to_owned(), "v".repeat(501))].into());
        assert!(merge_metadata(&existing, Some(big_value)).is_err());
        let many = HashArg::Entries((0..51).map(|i| (format!("k{i}"), "v".to_owned())).collect());
        assert_eq!(
            merge_metadata(&Map::new(), Some(many))
                .unwrap_err()
                .param
                .as_deref(),
            Some("metadata")
        );
    }

    #[test]
    fn set_in_creates_parents() {
        let mut v = json!({"invoice_settings": null});
        set_in(
            &mut v,
            &["invoice_settings", "default_payment_method"],
            json!("pm_1"),
        );
        assert_eq!(v["invoice_settings"]["default_payment_method"], "pm_1");
    }
}
