//! `POST /stripe/fetch`: one Stripe call passed through for a tenant admin
//! (`services::fetch`). The answer is a `stripe_response` resource carrying Stripe's status and
//! JSON; Stripe's refusals are JSON:API errors with Stripe's status.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::Value;

use crate::caller::Caller;
use crate::error::{ApiError, REQUEST_ID};
use crate::http::jsonapi::{self, parse_body};
use crate::services::fetch::{self, FetchFields};
use crate::state::AppState;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StripeResponseAttributes {
    /// Stripe's HTTP status (a success: 200).
    pub status: u16,
    /// The call as sent: `GET`, `POST` or `DELETE`, and its `/v1/...` path.
    pub method: String,
    pub path: String,
    /// Stripe's JSON answer, as Stripe sent it.
    #[schema(value_type = Object)]
    pub body: Value,
    /// Whether the answer was recorded in the mirror (a write answered with a mirrored
    /// object: customer, product, price, payment intent, refund, subscription, ...).
    pub mirrored: bool,
}

#[utoipa::path(
    post, path = "/stripe/fetch", tag = "fetch",
    request_body(content = FetchFields, description = "Wrapped as {\"fetch\": {...}} (or {\"data\": {\"attributes\": {...}}})"),
    responses(
        (status = 200, description = "Stripe's answer; the resource id is the Stripe object's id (else our request id)", body = StripeResponseAttributes),
        (status = 403, description = "Not an admin (admin_required), or the method and path are not allowed for this app (fetch_not_allowed)"),
        (status = 422, description = "A method other than GET, POST or DELETE, a malformed path, or params that are not an object, too deep or too many"),
        (status = "4XX", description = "Stripe's refusal, with Stripe's status, code, decline_code, param, message and request id"),
        (status = 502, description = "Stripe unreachable, or it failed"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn fetch_stripe(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (fields, at) = parse_body::<FetchFields>(body.into_inner(), "fetch")?;
    let answer = fetch::fetch(&state, &caller, fields, &at).await?;
    let id = answer
        .body
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| REQUEST_ID.try_with(Clone::clone).ok())
        .unwrap_or_default();
    Ok(jsonapi::resource(
        StatusCode::OK,
        "stripe_response",
        &id,
        &StripeResponseAttributes {
            status: 200,
            method: answer.method.as_str().to_owned(),
            path: answer.path.to_string(),
            body: answer.body,
            mirrored: answer.mirrored,
        },
    ))
}
