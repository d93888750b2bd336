//! Stripe's billing vocabulary as requests give it: metadata and currency codes.

use std::collections::HashMap;

use serde_json::Value;

use super::optional_text;
use crate::error::ApiError;

/// Stripe's metadata rules (STRIPE_RULES.md, Metadata), enforced before any Stripe call.
pub const METADATA_MAX_KEYS: usize = 50;
pub const METADATA_MAX_KEY_CHARS: usize = 40;
pub const METADATA_MAX_VALUE_CHARS: usize = 500;

/// Stripe metadata: at most 50 string pairs, keys ≤ 40 chars without brackets, values ≤ 500.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata(pub HashMap<String, String>);

impl Metadata {
    /// `pointer` is where the metadata object sits in the body (`/customer/metadata`).
    /// Numbers and booleans become strings (Stripe stores only strings); null values are
    /// dropped; nested objects and arrays are refused.
    pub fn parse(value: Option<&Value>, pointer: &str) -> Result<Self, ApiError> {
        let map = match value {
            None | Some(Value::Null) => return Ok(Self::default()),
            Some(Value::Object(map)) => map,
            Some(_) => {
                return Err(ApiError::validation(
                    pointer,
                    "metadata must be an object of string keys and string values",
                ));
            }
        };
        if map.len() > METADATA_MAX_KEYS {
            return Err(ApiError::validation(
                pointer,
                format!(
                    "metadata has {} keys; Stripe allows at most {METADATA_MAX_KEYS}",
                    map.len()
                ),
            ));
        }
        let mut out = HashMap::with_capacity(map.len());
        for (key, value) in map {
            let at = format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
            if key.is_empty() {
                return Err(ApiError::validation(at, "metadata keys must not be empty"));
            }
            if key.chars().count() > METADATA_MAX_KEY_CHARS {
                return Err(ApiError::validation(
                    at,
                    format!(
                        "metadata key {key:?} is longer than {METADATA_MAX_KEY_CHARS} characters"
                    ),
                ));
            }
            if key.contains(['[', ']']) {
                return Err(ApiError::validation(
                    at,
                    format!("metadata key {key:?} must not contain square brackets"),
                ));
            }
            let text = match value {
                Value::Null => continue,
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Array(_) | Value::Object(_) => {
                    return Err(ApiError::validation(
                        at,
                        format!(
                            "metadata value for {key:?} must be a string, not a list or object"
                        ),
                    ));
                }
            };
            if text.chars().count() > METADATA_MAX_VALUE_CHARS {
                return Err(ApiError::validation(
                    at,
                    format!(
                        "metadata value for {key:?} is longer than {METADATA_MAX_VALUE_CHARS} characters"
                    ),
                ));
            }
            out.insert(key.clone(), text);
        }
        Ok(Self(out))
    }

    /// Reads metadata back from its stored JSON text.
    pub fn from_stored(text: &str) -> Value {
        serde_json::from_str(text).unwrap_or_else(|_| Value::Object(Default::default()))
    }
}

/// A three-letter ISO currency code, lowercased as Stripe writes it.
pub fn currency(raw: &str, pointer: &str) -> Result<String, ApiError> {
    let code = raw.trim().to_ascii_lowercase();
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_lowercase()) {
        Ok(code)
    } else {
        Err(ApiError::validation(
            pointer,
            format!("{raw:?} is not a three-letter ISO currency code such as usd"),
        ))
    }
}

/// A currency field of a body: `None` when absent or empty, else a checked code.
pub fn currency_field(raw: Option<String>, pointer: &str) -> Result<Option<String>, ApiError> {
    optional_text(raw, pointer, 3)?
        .map(|raw| currency(&raw, pointer))
        .transpose()
}

/// A currency field that must be given.
pub fn required_currency(raw: Option<String>, pointer: &str) -> Result<String, ApiError> {
    currency_field(raw, pointer)?
        .ok_or_else(|| ApiError::validation(pointer, "currency is required, e.g. usd"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metadata_at_the_limits_is_accepted_and_one_past_is_refused() {
        let fifty: serde_json::Map<_, _> = (0..50).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert_eq!(
            Metadata::parse(Some(&Value::Object(fifty.clone())), "/m")
                .unwrap()
                .0
                .len(),
            50
        );
        let mut fifty_one = fifty;
        fifty_one.insert("k50".into(), json!("v"));
        let err = Metadata::parse(Some(&Value::Object(fifty_one)), "/m").unwrap_err();
        assert_eq!(err.status.as_u16(), 422);

        let key40 = "k".repeat(40);
        assert!(Metadata::parse(Some(&json!({ key40: "x" })), "/m").is_ok());
        let key41 = "k".repeat(41);
        let err = Metadata::parse(Some(&json!({ key41.clone(): "x" })), "/m").unwrap_err();
        assert!(
            matches!(err.error_source, Some(crate::error::ErrorSource::Pointer(ref p)) if p == &format!("/m/{key41}"))
        );

        assert!(Metadata::parse(Some(&json!({"a": "v".repeat(500)})), "/m").is_ok());
        assert!(Metadata::parse(Some(&json!({"a": "v".repeat(501)})), "/m").is_err());
        assert!(Metadata::parse(Some(&json!({"a[b]": "x"})), "/m").is_err());
        assert!(Metadata::parse(Some(&json!({"a": {"b": 1}})), "/m").is_err());
        assert_eq!(
            Metadata::parse(Some(&json!({"n": 5, "b": true})), "/m")
                .unwrap()
                .0["n"],
            "5"
        );
    }
}
