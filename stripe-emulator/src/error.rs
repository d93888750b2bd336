//! Stripe-shaped API errors.
//!
//! Every failure the emulator reports is an [`ApiError`], rendered as Stripe renders errors:
//! `{"error": {"type", "code", "decline_code", "param", "message", "doc_url"}}` with Stripe's
//! HTTP status. Fields that do not apply are omitted, as Stripe omits them.

use serde_json::{Map, Value, json};

/// The `type` of a Stripe error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// `invalid_request_error`: bad parameters, unknown objects, authentication.
    InvalidRequest,
    /// `card_error`: the card was declined (HTTP 402).
    Card,
    /// `idempotency_error`: an `Idempotency-Key` was reused with other parameters.
    Idempotency,
    /// `api_error`: something went wrong on Stripe's side.
    Api,
}

impl ErrorType {
    /// The wire name of the error type.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::InvalidRequest => "invalid_request_error",
            ErrorType::Card => "card_error",
            ErrorType::Idempotency => "idempotency_error",
            ErrorType::Api => "api_error",
        }
    }
}

/// An error answered to the client in Stripe's shape. Its fields are read through `Deref`
/// (`error.status`, `error.code`, ...); the data is boxed to keep `Result`s small.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError(Box<ApiErrorData>);

/// The contents of an [`ApiError`].
#[derive(Debug, Clone, PartialEq)]
pub struct ApiErrorData {
    /// HTTP status code.
    pub status: u16,
    /// The error's `type`.
    pub kind: ErrorType,
    /// Stripe's machine-readable `code`, e.g. `resource_missing`.
    pub code: Option<String>,
    /// For card declines, the issuer's reason, e.g. `generic_decline`.
    pub decline_code: Option<String>,
    /// The parameter at fault, e.g. `customer` or `metadata[plan]`.
    pub param: Option<String>,
    /// A human-readable message.
    pub message: String,
    /// Further members of the error object (e.g. `payment_intent` on card errors).
    pub extra: Map<String, Value>,
}

impl std::ops::Deref for ApiError {
    type Target = ApiErrorData;

    fn deref(&self) -> &ApiErrorData {
        &self.0
    }
}

impl std::ops::DerefMut for ApiError {
    fn deref_mut(&mut self) -> &mut ApiErrorData {
        &mut self.0
    }
}

/// Shorthand for results of request handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// A bare error with the given status, type and message.
    pub fn new(status: u16, kind: ErrorType, message: impl Into<String>) -> Self {
        ApiError(Box::new(ApiErrorData {
            status,
            kind,
            code: None,
            decline_code: None,
            param: None,
            message: message.into(),
            extra: Map::new(),
        }))
    }

    /// A 400 `invalid_request_error`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(400, ErrorType::InvalidRequest, message)
    }

    /// Sets `code`.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Sets `param`.
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// Sets `decline_code`.
    pub fn with_decline_code(mut self, decline_code: impl Into<String>) -> Self {
        self.decline_code = Some(decline_code.into());
        self
    }

    /// Sets the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Adds a further member to the error object.
    pub fn with_extra(mut self, key: impl Into<String>, value: Value) -> Self {
        self.extra.insert(key.into(), value);
        self
    }

    /// 401: no API key was given.
    pub fn missing_api_key() -> Self {
        Self::new(
            401,
            ErrorType::InvalidRequest,
            "You did not provide an API key. You need to provide your API key in the \
             Authorization header, using Bearer auth (e.g. 'Authorization: Bearer \
             YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or \
             we can help at https://support.stripe.com/.",
        )
    }

    /// 401: the API key is not one Stripe would accept.
    pub fn invalid_api_key(key: &str) -> Self {
        Self::new(
            401,
            ErrorType::InvalidRequest,
            format!("Invalid API Key provided: {}", mask_key(key)),
        )
    }

    /// 401 `api_key_expired`: the key (an OAuth access token) expired.
    pub fn expired_api_key(key: &str) -> Self {
        Self::new(
            401,
            ErrorType::InvalidRequest,
            format!("Expired API Key provided: {}", mask_key(key)),
        )
        .with_code("api_key_expired")
    }

    /// 403 `account_invalid`: `Stripe-Account` names an account the key has no access to
    /// (the account disconnected the platform).
    pub fn account_invalid(key: &str, account: &str) -> Self {
        Self::new(
            403,
            ErrorType::InvalidRequest,
            format!(
                "The provided key '{}' does not have access to account '{account}' (or that \
                 account does not exist). Application access may have been revoked.",
                mask_key(key)
            ),
        )
        .with_code("account_invalid")
    }

    /// 404 for a URL no route serves.
    pub fn unrecognized_url(method: &str, path: &str) -> Self {
        Self::new(
            404,
            ErrorType::InvalidRequest,
            format!(
                "Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs \
                 or we can help at https://support.stripe.com/."
            ),
        )
    }

    /// 400 `parameter_unknown`, as Stripe answers a parameter the endpoint does not take:
    /// `param` names the first, the message all of them.
    /// Stripe's 429 for too many requests.
    pub fn rate_limited() -> Self {
        ApiError::invalid_request("Request rate limit exceeded. You can learn more about rate limits here https://stripe.com/docs/rate-limits.")
            .with_code("rate_limit")
            .with_status(429)
    }

    pub fn parameter_unknown(names: &[String]) -> Self {
        let message = match names {
            [one] => format!("Received unknown parameter: {one}"),
            many => format!("Received unknown parameters: {}", many.join(", ")),
        };
        let error =
            Self::new(400, ErrorType::InvalidRequest, message).with_code("parameter_unknown");
        match names.first() {
            Some(first) => error.with_param(first.clone()),
            None => error,
        }
    }

    /// 400 for a `Stripe-Version` header that names no API version.
    pub fn invalid_api_version(version: &str) -> Self {
        Self::new(
            400,
            ErrorType::InvalidRequest,
            format!("Invalid Stripe API version: {version}"),
        )
    }

    /// 400 for a `Stripe-Version` header that names a real API version other than the one
    /// the emulator speaks (it serves only that one).
    pub fn unsupported_api_version(version: &str, served: &str) -> Self {
        Self::new(
            400,
            ErrorType::InvalidRequest,
            format!(
                "This Stripe emulator serves only API version {served}; the request asked for \
                 {version}. Send `Stripe-Version: {served}` or no Stripe-Version header."
            ),
        )
    }

    /// 400 `parameter_missing`.
    pub fn parameter_missing(param: &str) -> Self {
        Self::invalid_request(format!("Missing required param: {param}."))
            .with_code("parameter_missing")
            .with_param(param)
    }

    /// 400 `parameter_invalid_integer` for a value that is no integer.
    pub fn invalid_integer(param: &str, value: &str) -> Self {
        Self::invalid_request(format!("Invalid integer: {value}"))
            .with_code("parameter_invalid_integer")
            .with_param(param)
    }

    /// 400 for a value of the wrong shape (a hash where a string belongs and so on).
    pub fn invalid_param(param: &str, message: impl Into<String>) -> Self {
        Self::invalid_request(message).with_param(param)
    }

    /// `resource_missing`: `No such <label>: '<id>'`. Status 404 when the id was in the URL
    /// (`param` `id`), 400 when it was a parameter.
    pub fn resource_missing(label: &str, id: &str, param: &str) -> Self {
        let status = if param == "id" { 404 } else { 400 };
        Self::invalid_request(format!("No such {label}: '{id}'"))
            .with_status(status)
            .with_code("resource_missing")
            .with_param(param)
    }

    /// 400 `idempotency_error`: the key was first used with other parameters.
    pub fn idempotency_mismatch(key: &str) -> Self {
        Self::new(
            400,
            ErrorType::Idempotency,
            format!(
                "Keys for idempotent requests can only be used with the same parameters they \
                 were first used with. Try using a key other than '{key}' if you meant to \
                 execute a different request."
            ),
        )
    }

    /// 402 `card_declined` with the issuer's `decline_code`.
    pub fn card_declined(decline_code: &str, message: impl Into<String>) -> Self {
        Self::new(402, ErrorType::Card, message)
            .with_code("card_declined")
            .with_decline_code(decline_code)
    }

    /// The JSON body: `{"error": {...}}`.
    pub fn to_json(&self) -> Value {
        let mut error = Map::new();
        error.insert("type".into(), json!(self.kind.as_str()));
        error.insert("message".into(), json!(self.message));
        if let Some(code) = &self.code {
            error.insert("code".into(), json!(code));
            error.insert(
                "doc_url".into(),
                json!(format!(
                    "https://stripe.com/docs/error-codes/{}",
                    code.replace('_', "-")
                )),
            );
        }
        if let Some(decline_code) = &self.decline_code {
            error.insert("decline_code".into(), json!(decline_code));
        }
        if let Some(param) = &self.param {
            error.insert("param".into(), json!(param));
        }
        for (key, value) in &self.extra {
            error.insert(key.clone(), value.clone());
        }
        json!({ "error": error })
    }
}

/// Masks an API key as Stripe does in its messages: `sk_test_****wxyz`.
fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..chars.len().min(8)].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_missing_in_path_is_404_with_param_id() {
        let err = ApiError::resource_missing("customer", "cus_x", "id");
        assert_eq!(err.status, 404);
        let body = err.to_json();
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["code"], "resource_missing");
        assert_eq!(body["error"]["param"], "id");
        assert_eq!(body["error"]["message"], "No such customer: 'cus_x'");
        assert_eq!(
            body["error"]["doc_url"],
            "https://stripe.com/docs/error-codes/resource-missing"
        );
        assert!(body["error"].get("decline_code").is_none());
    }

    #[test]
    fn resource_missing_in_params_is_400() {
        assert_eq!(
            ApiError::resource_missing("customer", "x", "customer").status,
            400
        );
    }

    #[test]
    fn keys_are_masked() {
        assert_eq!(mask_key("sk_test_abcdefgh1234"), "sk_test_****1234");
        assert_eq!(mask_key("short"), "*****");
    }
}
