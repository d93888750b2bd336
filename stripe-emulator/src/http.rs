//! Stripe-shaped HTTP: reading the API key and the body, and answering JSON (with
//! `Request-Id`, `Stripe-Version` and, on errors, `request_log_url`) or HTML.

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use serde_json::Value;

use crate::error::ApiError;
use crate::fixtures::API_VERSION;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Reads the API key from `Authorization: Bearer <key>` or HTTP basic auth (key as user).
pub fn api_key(req: &HttpRequest) -> Result<String, ApiError> {
    let Some(header) = req.headers().get(AUTHORIZATION) else {
        return Err(ApiError::missing_api_key());
    };
    let header = header
        .to_str()
        .map_err(|_| ApiError::invalid_api_key(""))?
        .trim();
    let (scheme, credentials) = header.split_once(' ').unwrap_or((header, ""));
    let credentials = credentials.trim();
    let key = if scheme.eq_ignore_ascii_case("bearer") {
        credentials.to_owned()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| ApiError::invalid_api_key(credentials))?;
        decoded
            .split_once(':')
            .map_or(decoded.as_str(), |(user, _)| user)
            .to_owned()
    } else {
        return Err(ApiError::missing_api_key());
    };
    if key.is_empty() {
        return Err(ApiError::missing_api_key());
    }
    let valid_prefix = ["sk_test_", "sk_live_", "rk_test_", "rk_live_"]
        .iter()
        .any(|prefix| key.len() > prefix.len() && key.starts_with(prefix));
    let valid_chars = key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_prefix || !valid_chars {
        return Err(ApiError::invalid_api_key(&key));
    }
    Ok(key)
}

/// A JSON response with Stripe's headers.
pub fn respond(
    status: u16,
    body: String,
    request_id: &str,
    extra: &[(&str, &str)],
) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = HttpResponse::build(status);
    builder
        .insert_header(("Request-Id", request_id))
        .insert_header((CONTENT_TYPE, "application/json"))
        .insert_header(("Stripe-Version", API_VERSION));
    for (name, value) in extra {
        builder.insert_header((*name, *value));
    }
    builder.body(with_request_log_url(status.as_u16(), body, request_id))
}

/// Stripe's errors link to the request's log in the Dashboard (`request_log_url`), the only
/// place a client library that hides response headers can read the request id from.
pub fn with_request_log_url(status: u16, body: String, request_id: &str) -> String {
    if status < 400 {
        return body;
    }
    let Ok(mut value) = serde_json::from_str::<Value>(&body) else {
        return body;
    };
    match value.get_mut("error").and_then(Value::as_object_mut) {
        Some(error) if !error.contains_key("request_log_url") => {
            error.insert(
                "request_log_url".to_owned(),
                Value::String(format!(
                    "https://dashboard.stripe.com/test/logs/{request_id}"
                )),
            );
            value.to_string()
        }
        _ => body,
    }
}

pub fn respond_json(status: u16, body: &Value, request_id: &str) -> HttpResponse {
    respond(status, body.to_string(), request_id, &[])
}

pub fn respond_error(error: &ApiError, request_id: &str) -> HttpResponse {
    respond_json(error.status, &error.to_json(), request_id)
}

pub fn header<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

pub async fn read_body(payload: web::Payload) -> Result<web::Bytes, ApiError> {
    match payload.to_bytes_limited(MAX_BODY_BYTES).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(ApiError::invalid_request(
            "The request body could not be read.",
        )),
        Err(_) => Err(ApiError::invalid_request(format!(
            "The request body is too large: requests may be at most {MAX_BODY_BYTES} bytes."
        ))
        .with_status(413)),
    }
}

pub fn html_response(status: u16, body: String, request_id: &str) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .insert_header(("Request-Id", request_id))
        .content_type("text/html; charset=utf-8")
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn key_of(header: Option<&str>) -> Result<String, ApiError> {
        let mut req = TestRequest::default();
        if let Some(h) = header {
            req = req.insert_header((AUTHORIZATION, h));
        }
        api_key(&req.to_http_request())
    }

    #[test]
    fn auth_headers() {
        assert_eq!(key_of(Some("Bearer sk_test_abc")).unwrap(), "sk_test_abc");
        assert_eq!(key_of(Some("bearer rk_live_x1")).unwrap(), "rk_live_x1");
        let basic = base64::engine::general_purpose::STANDARD.encode("sk_test_basic:");
        assert_eq!(
            key_of(Some(&format!("Basic {basic}"))).unwrap(),
            "sk_test_basic"
        );
        for bad in [
            None,
            Some("Bearer "),
            Some("Token sk_test_x"),
            Some("Bearer pk_test_x"),
            Some("Bearer sk_test_"),
            Some("Bearer sk_test_a b"),
        ] {
            let err = key_of(bad).unwrap_err();
            assert_eq!(err.status, 401, "{bad:?}");
        }
        assert!(
            key_of(Some("Bearer pk_test_x"))
                .unwrap_err()
                .message
                .starts_with("Invalid API Key provided")
        );
        assert!(
            key_of(None)
                .unwrap_err()
                .message
                .starts_with("You did not provide an API key")
        );
    }
}
