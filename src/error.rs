//! `ApiError`: every failure a client can see, rendered in ONE place as a JSON:API `errors`
//! array (API_CONTRACT.md, Envelope). Internal causes are logged, never sent.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{Map, Value, json};

use crate::db::DbError;
use crate::stripe::GatewayError;

tokio::task_local! {
    /// The current request's id, set by the request-id middleware for the whole request, so
    /// error bodies can carry it without threading it through every call.
    pub static REQUEST_ID: String;
}

/// Boxed so that `Result<T, ApiError>` stays small on the happy path.
#[derive(Debug, thiserror::Error)]
#[error("{} {}: {}", .0.status, .0.code, .0.detail)]
pub struct ApiError(Box<ErrorDetails>);

#[derive(Debug)]
pub struct ErrorDetails {
    pub status: StatusCode,
    pub code: String,
    pub title: String,
    pub detail: String,
    /// JSON pointer into the request body (`/customer/email`) or a query parameter name.
    pub error_source: Option<ErrorSource>,
    /// Extra facts for clients (Stripe's `decline_code`, `param`...).
    pub meta: Map<String, Value>,
    /// Seconds to send in a `Retry-After` header (429).
    pub retry_after: Option<u64>,
}

#[derive(Debug, Clone)]
pub enum ErrorSource {
    Pointer(String),
    Parameter(String),
    Header(String),
}

/// `Retry-After` of a delivery for a disabled app (Stripe keeps its own schedule anyway).
const DISABLED_RETRY_AFTER_SECS: u64 = 3600;

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<String>,
        title: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self(Box::new(ErrorDetails {
            status,
            code: code.into(),
            title: title.into(),
            detail: detail.into(),
            error_source: None,
            meta: Map::new(),
            retry_after: None,
        }))
    }

    pub fn with_pointer(mut self, pointer: impl Into<String>) -> Self {
        self.0.error_source = Some(ErrorSource::Pointer(pointer.into()));
        self
    }

    pub fn with_parameter(mut self, name: impl Into<String>) -> Self {
        self.0.error_source = Some(ErrorSource::Parameter(name.into()));
        self
    }

    pub fn with_header(mut self, name: impl Into<String>) -> Self {
        self.0.error_source = Some(ErrorSource::Header(name.into()));
        self
    }

    /// The same error with another HTTP status (a Stripe refusal passed through with Stripe's
    /// own status, `services::fetch`).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.0.status = status;
        self
    }

    pub fn with_meta(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.meta.insert(key.to_owned(), value.into());
        self
    }

    /// 429 `rate_limited`, with `Retry-After` (whole seconds, at least 1) and the same number
    /// in `meta.retry_after`.
    pub fn rate_limited(detail: impl Into<String>, retry_after: std::time::Duration) -> Self {
        let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        let secs = secs.max(1);
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many requests",
            detail,
        )
        .with_meta("retry_after", secs);
        error.0.retry_after = Some(secs);
        error
    }

    /// 422: the body parsed but a value is not acceptable.
    pub fn validation(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            "Invalid attribute",
            detail,
        )
        .with_pointer(pointer)
    }

    /// 422: a query parameter parsed but its value is not acceptable (a list filter).
    pub fn invalid_parameter(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            "Invalid parameter",
            detail,
        )
        .with_parameter(name)
    }

    /// 400: the request itself is malformed (not JSON, wrong types).
    pub fn bad_request(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, "Bad request", detail)
    }

    pub fn unauthorized(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, "Unauthorized", detail)
    }

    /// 404 for anything missing or belonging to someone else: existence is never leaked.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not found", detail)
    }

    /// 500: the cause is logged with its chain; the client gets the request id only.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Internal server error",
            "Something went wrong on our side. Quote the request id when reporting it.",
        )
    }

    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "database unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "Service unavailable",
            "The database is not reachable right now; retry shortly.",
        )
    }

    /// 503 with `Retry-After: 1`: the database gave up on the statement (a deadline passed, a
    /// lock was not had in time); retrying shortly is the remedy.
    pub fn database_busy(cause: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "database deadline");
        Self::retry_soon("The database did not answer in time; retry shortly.")
    }

    /// 503 with `Retry-After: 1` for work that could not be taken on or finished now (the
    /// receiver's queue is full, its write did not commit in time): `cause` is logged.
    pub fn busy(cause: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "busy");
        Self::retry_soon(format!("Not stored: {cause}; retry shortly."))
    }

    /// 403 `tenant_disabled`: the operator disabled the app (`sales-block tenant disable`);
    /// its API calls are refused until it is enabled again.
    pub fn tenant_disabled() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "tenant_disabled",
            "Forbidden",
            "This app is disabled by the service's operator; its calls are refused until it is enabled again.",
        )
    }

    /// 503 `tenant_disabled` to Stripe: a delivery for a disabled app is not stored, and
    /// Stripe retries it (for up to three days in live mode), so it lands once the app is
    /// enabled again; reconciliation recovers what is older.
    pub fn tenant_disabled_delivery() -> Self {
        let mut error = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "tenant_disabled",
            "Service unavailable",
            "This endpoint's app is disabled by the service's operator; the event is not stored. Stripe retries it.",
        )
        .with_meta("retry_after", DISABLED_RETRY_AFTER_SECS);
        error.0.retry_after = Some(DISABLED_RETRY_AFTER_SECS);
        error
    }

    fn retry_soon(detail: impl Into<String>) -> Self {
        let mut error = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "Service unavailable",
            detail,
        )
        .with_meta("retry_after", 1);
        error.0.retry_after = Some(1);
        error
    }

    fn to_json(&self) -> Value {
        let mut error = json!({
            "status": self.status.as_str(),
            "code": self.code,
            "title": self.title,
            "detail": self.detail,
        });
        if let Some(source) = &self.error_source {
            error["source"] = match source {
                ErrorSource::Pointer(p) => json!({ "pointer": p }),
                ErrorSource::Parameter(p) => json!({ "parameter": p }),
                ErrorSource::Header(h) => json!({ "header": h }),
            };
        }
        let mut meta = self.meta.clone();
        if let Ok(id) = REQUEST_ID.try_with(Clone::clone) {
            meta.insert("request_id".into(), Value::String(id));
        }
        if !meta.is_empty() {
            error["meta"] = Value::Object(meta);
        }
        json!({ "errors": [error] })
    }
}

impl std::ops::Deref for ApiError {
    type Target = ErrorDetails;

    fn deref(&self) -> &ErrorDetails {
        &self.0
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            response.insert_header((actix_web::http::header::RETRY_AFTER, secs.to_string()));
        }
        response.json(self.to_json())
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::Pool(err) => Self::unavailable(err),
            DbError::Query(err) => err.into(),
            DbError::Join(err) => Self::internal(err),
        }
    }
}

/// PostgreSQL's messages for a statement canceled at its statement or lock timeout, a
/// deadlock it broke, a serialization failure; SQLite's for a write lock not had in time.
fn transient(message: &str) -> bool {
    message.starts_with("canceling statement due to statement timeout")
        || message.starts_with("canceling statement due to lock timeout")
        || message.starts_with("deadlock detected")
        || message.starts_with("could not serialize access")
        || message.starts_with("database is locked")
}

impl From<diesel::result::Error> for ApiError {
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match err {
            Error::NotFound => Self::not_found("The requested resource does not exist."),
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                tracing::warn!(error = info.message(), "unique violation");
                Self::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    "Conflict",
                    "A resource with the same identifier already exists.",
                )
            }
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                Self::unavailable(info.message())
            }
            // Past a deadline or in a conflict the database gave up on: transient.
            Error::DatabaseError(_, info) if transient(info.message()) => {
                Self::database_busy(info.message())
            }
            other => Self::internal(other),
        }
    }
}

impl From<GatewayError> for ApiError {
    fn from(err: GatewayError) -> Self {
        match err {
            GatewayError::Stripe(failure) => {
                let status = match failure.http_status {
                    402 => StatusCode::PAYMENT_REQUIRED,
                    404 => StatusCode::NOT_FOUND,
                    409 => StatusCode::CONFLICT,
                    429 => StatusCode::TOO_MANY_REQUESTS,
                    // The tenant's own key was refused: nothing the caller can fix.
                    401 | 403 => StatusCode::BAD_GATEWAY,
                    s if s >= 500 => StatusCode::BAD_GATEWAY,
                    _ if failure.error_type == "idempotency_error" => StatusCode::CONFLICT,
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                };
                let code = failure
                    .code
                    .clone()
                    .unwrap_or_else(|| "stripe_error".to_owned());
                let title = if failure.error_type == "card_error" {
                    "Card declined"
                } else {
                    "Stripe Error"
                };
                let mut error = Self::new(status, code, title, failure.message.clone())
                    .with_meta("stripe_type", failure.error_type.clone())
                    .with_meta("stripe_status", failure.http_status);
                let failure = *failure;
                if let Some(code) = failure.code.clone() {
                    error = error.with_meta("stripe_code", code);
                }
                if let Some(decline) = failure.decline_code {
                    error = error.with_meta("decline_code", decline);
                }
                if let Some(param) = failure.param {
                    error = error.with_meta("param", param);
                }
                // Logged inside the request's span, so beside our request id.
                tracing::info!(
                    stripe.request_id = failure.request_id.as_deref().unwrap_or("unknown"),
                    stripe.status = failure.http_status,
                    "stripe refused a request"
                );
                if let Some(request_id) = failure.request_id {
                    error = error.with_meta("stripe_request_id", request_id);
                }
                error
            }
            GatewayError::Timeout => Self::new(
                StatusCode::GATEWAY_TIMEOUT,
                "stripe_timeout",
                "Stripe timed out",
                "Stripe did not answer in time. Nothing was confirmed; retry the request.",
            ),
            GatewayError::Unreachable(cause) => {
                tracing::warn!(error = %cause, "stripe unreachable");
                Self::new(
                    StatusCode::BAD_GATEWAY,
                    "stripe_unreachable",
                    "Stripe unreachable",
                    "Stripe could not be reached. Retry the request shortly.",
                )
            }
            GatewayError::BadResponse(cause) => {
                tracing::error!(error = %cause, "unreadable stripe response");
                Self::new(
                    StatusCode::BAD_GATEWAY,
                    "stripe_bad_response",
                    "Unexpected Stripe response",
                    "Stripe answered with something this service could not read. A change may \
                     have been made at Stripe: retry it with the same Idempotency-Key.",
                )
            }
            GatewayError::Config(cause) => Self::internal(cause),
            GatewayError::NotConnected => Self::new(
                StatusCode::CONFLICT,
                "not_connected",
                "Stripe account not connected",
                "This app's Stripe account is disconnected: an admin connects it again \
                 (GET /stripe/auth/login) before calls that reach Stripe can succeed.",
            ),
        }
    }
}
