//! Request ids: the client's `X-Request-ID` (the SDK sends `req_...`) or a new one, echoed
//! back, put on every log line of the request, and into error bodies.
//!
//! Each request's span (`http`) carries `http.request_id`, `http.method`, `http.path`, and,
//! once known, `tenant.id` (the authenticated app), `stripe.event_id` and `stripe.object_id`
//! (a webhook delivery's) and `stripe.request_id` (the Stripe request behind a refusal); see
//! [`crate::telemetry`]. Database work keeps the span (`Database::run`).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

use crate::error::REQUEST_ID;

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

fn acceptable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(&HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("req_{}", uuid::Uuid::new_v4().simple()));
    let span = tracing::info_span!(
        "http",
        http.request_id = %id,
        http.method = %req.method(),
        http.path = %req.path(),
        tenant.id = tracing::field::Empty,
        stripe.event_id = tracing::field::Empty,
        stripe.object_id = tracing::field::Empty,
        stripe.request_id = tracing::field::Empty,
    );
    let started = std::time::Instant::now();
    let result = REQUEST_ID
        .scope(id.clone(), next.call(req))
        .instrument(span.clone())
        .await;
    let mut response = result?;
    span.in_scope(|| {
        tracing::info!(
            http.status = response.status().as_u16(),
            http.elapsed_ms = started.elapsed().as_millis() as u64,
            "request"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    Ok(response)
}
