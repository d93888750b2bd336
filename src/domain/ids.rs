//! Ids as requests give them: a Stripe id's shape, and the bounds on every id-like value
//! (issue 12, point 10): an id is at most 255 bytes without control characters, and no text
//! anywhere may hold a NUL (PostgreSQL cannot store one: it would be a database error, not a
//! 4xx).

use serde_json::Value;

use crate::error::ApiError;

/// The longest id accepted (Stripe's own bound on its ids).
pub const MAX_ID_BYTES: usize = 255;

/// Body keys that carry an id besides those ending in `_id`.
const ID_KEYS: [&str; 9] = [
    "id",
    "customer",
    "price",
    "payment_method",
    "token",
    "card_token",
    "coupon",
    "promotion_code",
    "subscription",
];

/// Why a value is not an acceptable id; `None` when it is.
pub fn id_problem(value: &str) -> Option<&'static str> {
    if value.len() > MAX_ID_BYTES {
        Some("is longer than 255 bytes")
    } else if value.chars().any(char::is_control) {
        Some("contains a control character")
    } else {
        None
    }
}

/// A Stripe object id with the expected prefix (`price_`, `pm_`...), trimmed.
pub fn stripe_id(
    raw: &str,
    prefixes: &[&str],
    pointer: &str,
    what: &str,
) -> Result<String, ApiError> {
    let id = raw.trim();
    let well_formed = id.len() <= 255
        && prefixes
            .iter()
            .any(|p| id.starts_with(p) && id.len() > p.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if well_formed {
        Ok(id.to_owned())
    } else {
        Err(ApiError::validation(
            pointer,
            format!(
                "{raw:?} is not a {what} id (expected one starting with {})",
                prefixes.join(" or ")
            ),
        ))
    }
}

/// Checks a request body's fields (under `prefix`, the JSON pointer they live at): no NUL in
/// any string or key, and id-like fields (`*_id`, `customer`, `price`...) bounded as ids.
/// 422 `validation_error` with the field's pointer.
pub fn check_body(value: &Value, prefix: &str) -> Result<(), ApiError> {
    walk(value, None, &mut prefix.to_owned())
}

fn walk(value: &Value, key: Option<&str>, pointer: &mut String) -> Result<(), ApiError> {
    match value {
        Value::String(text) => {
            let is_id = key.is_some_and(|k| k.ends_with("_id") || ID_KEYS.contains(&k));
            let problem = if is_id {
                id_problem(text)
            } else if text.contains('\0') {
                Some("contains a NUL character")
            } else {
                None
            };
            match problem {
                Some(problem) => Err(ApiError::validation(
                    pointer.clone(),
                    format!(
                        "`{}` {problem}",
                        key.unwrap_or("value").replace('\0', "\\0")
                    ),
                )),
                None => Ok(()),
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = pointer.len();
                pointer.push_str(&format!("/{i}"));
                walk(item, key, pointer)?;
                pointer.truncate(len);
            }
            Ok(())
        }
        Value::Object(map) => {
            for (k, item) in map {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&k.replace('~', "~0").replace('/', "~1"));
                if k.contains('\0') {
                    return Err(ApiError::validation(
                        pointer.replace('\0', "\\0"),
                        "a key contains a NUL character",
                    ));
                }
                walk(item, Some(k), pointer)?;
                pointer.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn body_ids_are_bounded_and_no_text_holds_a_nul() {
        let ok = json!({"customer_id": "cus_1", "description": "two\nlines",
                        "line_items": [{"price_id": "price_1"}]});
        assert!(check_body(&ok, "/session").is_ok());
        let err = check_body(&json!({"customer_id": "x".repeat(300)}), "/payment").unwrap_err();
        assert_eq!(err.status.as_u16(), 422);
        assert!(
            matches!(err.error_source, Some(crate::error::ErrorSource::Pointer(ref p)) if p == "/payment/customer_id")
        );
        let err = check_body(&json!({"line_items": [{"price_id": "p\u{0}"}]}), "/s").unwrap_err();
        assert!(
            matches!(err.error_source, Some(crate::error::ErrorSource::Pointer(ref p)) if p == "/s/line_items/0/price_id")
        );
        assert!(check_body(&json!({"metadata": {"k": "v\u{0}"}}), "/c").is_err());
        assert!(check_body(&json!({"description": "x".repeat(300)}), "/c").is_ok());
    }
}
