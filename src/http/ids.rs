//! Bounds on the ids a client sends, in one place (issue 12, point 10): every path segment
//! and query value (a middleware on the whole app), and every id-like field of a JSON body
//! (`parse_body`). An id is at most 255 bytes without control characters; no text anywhere
//! may hold a NUL (PostgreSQL cannot store one: it would be a database error, not a 4xx).
//! Stripe's ids are ASCII and at most 255 characters; ours are UUIDs; a user unique id is a
//! client's string and gets the same bound.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use serde_json::Value;

use crate::error::ApiError;

/// The longest id accepted (Stripe's own bound on its ids).
pub const MAX_ID_BYTES: usize = 255;

/// The longest query value accepted (filters, cursors and page numbers are far shorter).
const MAX_QUERY_VALUE_BYTES: usize = 1024;

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

/// The first problem of a request's path segments or query values, as the error to answer.
fn check_request(path: &str, query: &str) -> Result<(), ApiError> {
    for segment in path.split('/') {
        // Percent-decoded as the router will decode it.
        let problem = match percent_encoding::percent_decode_str(segment).decode_utf8() {
            Err(_) => Some("is not UTF-8"),
            Ok(decoded) => id_problem(&decoded),
        };
        if let Some(problem) = problem {
            return Err(ApiError::bad_request(
                "invalid_path",
                format!("A path segment {problem}; ids are at most {MAX_ID_BYTES} bytes of text."),
            ));
        }
    }
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let problem = if value.len() > MAX_QUERY_VALUE_BYTES {
            Some("is longer than 1024 bytes")
        } else if value.chars().any(char::is_control) || name.chars().any(char::is_control) {
            Some("contains a control character")
        } else {
            None
        };
        if let Some(problem) = problem {
            let shown: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("The query parameter {shown:?} {problem}."),
            )
            .with_parameter(shown));
        }
    }
    Ok(())
}

/// The middleware: a request whose path or query holds an oversized or control-character id
/// is answered 400 before routing, so no handler, and no database, ever sees it.
pub async fn bounded_ids(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::EitherBody<impl MessageBody>>, actix_web::Error> {
    if let Err(err) = check_request(req.path(), req.query_string()) {
        return Ok(req.error_response(err).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
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
    fn path_segments_and_query_values_are_bounded() {
        assert!(check_request("/stripe/customers/cus_123", "page=1&records=20").is_ok());
        assert!(check_request("/stripe/customers/user%40example.com", "").is_ok());
        let long = "a".repeat(256);
        for (path, query) in [
            ("/stripe/customers/abc%00def", ""),
            (&*format!("/stripe/customers/{long}"), ""),
            ("/stripe/customers/%ff%fe", ""),
            ("/stripe/subscriptions", "customer_id=a%00b"),
        ] {
            assert!(check_request(path, query).is_err(), "{path}?{query}");
        }
        assert!(check_request(&format!("/stripe/customers/{}", "a".repeat(255)), "").is_ok());
    }

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
