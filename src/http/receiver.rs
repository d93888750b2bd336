//! `POST /stripe/{url_id}/webhook`: called by Stripe, authenticated by the signature alone.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::error::ApiError;
use crate::receiver;
use crate::state::AppState;

/// Largest event body accepted (Stripe's events are far smaller).
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// The body of a delivery, or the JSON:API refusal: 413 past [`MAX_EVENT_BYTES`] (actix's own
/// answer would be plain text), 400 when it could not be read.
pub(crate) fn event_body(
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<web::Bytes, ApiError> {
    body.map_err(|err| {
        if err.as_response_error().status_code() == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE {
            super::payload_too_large(MAX_EVENT_BYTES)
        } else {
            ApiError::bad_request(
                "invalid_body",
                format!("The body could not be read: {err}."),
            )
        }
    })
}

#[utoipa::path(
    post, path = "/stripe/{url_id}/webhook", tag = "webhooks",
    params(
        ("url_id" = String, Path, description = "The endpoint's url_id"),
        ("Stripe-Signature" = String, Header, description = "t=<unix>,v1=<hex>[,v1=...]"),
    ),
    request_body(content = Object, description = "A Stripe event, verified over its raw bytes"),
    responses(
        (status = 200, description = "Stored (once) and applied: {\"received\": true}"),
        (status = 410, description = "endpoint_disabled: the endpoint is disabled; nothing written"),
        (status = 400, description = "Missing, malformed, stale or wrong signature, or not an event; nothing written"),
        (status = 404, description = "No endpoint has this url_id; nothing written"),
        (status = 503, description = "Storage unavailable: Stripe retries"),
    )
)]
pub async fn receive_event(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let body = event_body(body)?;
    let signature = req
        .headers()
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let outcome =
        match receiver::receive(&state.receiver, &path.into_inner(), signature, &body).await {
            Ok(outcome) => outcome,
            Err(error) => {
                crate::metrics::delivery(format!("refused_{}", error.status.as_u16()));
                return Err(error);
            }
        };
    crate::metrics::delivery(outcome.to_owned());
    tracing::info!(stripe.outcome = outcome, "stripe event");
    Ok(HttpResponse::Ok().json(json!({ "received": true })))
}
