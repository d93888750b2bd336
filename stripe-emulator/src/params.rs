//! Request parameters shared by every resource: metadata (with Stripe's limits), enumerations,
//! non-negative integers and parameters the emulator does not implement.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::form::{HashArg, Params, param_name};

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

/// A non-negative integer parameter (`param` named in the error when negative).
pub fn non_negative(p: &Params, path: &[&str]) -> ApiResult<Option<i64>> {
    match p.integer(path)? {
        Some(n) if n < 0 => Err(ApiError::invalid_request(
            "This value must be greater than or equal to 0.",
        )
        .with_code("parameter_invalid_integer")
        .with_param(param_name(path))),
        other => Ok(other),
    }
}

/// Checks that a parameter holds one of `allowed` values (when sent and non-empty).
pub fn one_of<'p>(p: &'p Params, path: &[&str], allowed: &[&str]) -> ApiResult<Option<&'p str>> {
    let Some(value) = p.non_empty(path)? else {
        return Ok(None);
    };
    if allowed.contains(&value) {
        Ok(Some(value))
    } else {
        let name = param_name(path);
        Err(ApiError::invalid_param(
            &name,
            format!("Invalid {name}: must be one of {}", allowed.join(", ")),
        ))
    }
}

/// Rejects parameters this endpoint knows but the emulator does not implement, rather
/// than silently ignoring something that changes the outcome.
pub fn unsupported(p: &Params, names: &[&str]) -> ApiResult<()> {
    for name in names {
        if p.has(&[name]) {
            return Err(ApiError::invalid_param(
                name,
                format!("The Stripe emulator does not support the `{name}` parameter."),
            ));
        }
    }
    Ok(())
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
}
