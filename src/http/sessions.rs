//! `POST /stripe/sessions` and `GET /stripe/sessions/{session_id}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::Value;

use crate::caller::Caller;
use crate::db::checkout_sessions::CheckoutSessionRow;
use crate::domain::Metadata;
use crate::error::ApiError;
use crate::http::jsonapi::{self, parse_body, timestamp};
use crate::services::checkout::{self, CreateSessionFields};
use crate::state::AppState;

/// A checkout session as clients read it (API_CONTRACT.md, POST /stripe/sessions).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionAttributes {
    pub unique_id: String,
    pub stripe_session_id: String,
    pub url: Option<String>,
    /// open, complete, expired
    pub status: Option<String>,
    pub mode: String,
    /// paid, unpaid, no_payment_required
    pub payment_status: String,
    pub amount_total: Option<i64>,
    pub currency: Option<String>,
    /// The `cus_...` id.
    pub customer: Option<String>,
    pub customer_email: Option<String>,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    pub payment_intent_id: Option<String>,
    pub subscription_id: Option<String>,
    pub expires_at: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub created_at: String,
    pub updated_at: String,
}

impl From<CheckoutSessionRow> for SessionAttributes {
    fn from(s: CheckoutSessionRow) -> Self {
        Self {
            unique_id: s.id,
            stripe_session_id: s.stripe_session_id,
            url: s.url,
            status: s.status,
            mode: s.mode,
            payment_status: s.payment_status,
            amount_total: s.amount_total,
            currency: s.currency,
            customer: s.stripe_customer_id,
            customer_email: s.customer_email,
            success_url: s.success_url,
            cancel_url: s.cancel_url,
            payment_intent_id: s.stripe_payment_intent_id,
            subscription_id: s.stripe_subscription_id,
            expires_at: s.expires_at.map(timestamp),
            metadata: Metadata::from_stored(&s.metadata),
            created_at: timestamp(s.created_at),
            updated_at: timestamp(s.updated_at),
        }
    }
}

fn render(status: StatusCode, row: CheckoutSessionRow) -> HttpResponse {
    let id = row.id.clone();
    jsonapi::resource(
        status,
        "checkout_session",
        &id,
        &SessionAttributes::from(row),
    )
}

#[utoipa::path(
    post, path = "/stripe/sessions", tag = "checkout",
    request_body(content = CreateSessionFields, description = "Wrapped as {\"session\": {...}}"),
    responses(
        (status = 201, description = "The session, created at Stripe and mirrored", body = SessionAttributes),
        (status = 403, description = "forbidden_by_policy: a user chose what the app's policy keeps for admins (a price outside the catalogue, a coupon not offered, a trial, promotion codes); source.pointer names it"),
        (status = 404, description = "The customer is not one of the caller's"),
        (status = 422, description = "Invalid attribute, or refused by Stripe"),
        (status = 502, description = "Stripe unreachable, or it failed"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn create_session(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (fields, at) = parse_body::<CreateSessionFields>(body.into_inner(), "session")?;
    let request = checkout::parse(fields, &at)?;
    let row = checkout::create_session(&state, &caller, request).await?;
    Ok(render(StatusCode::CREATED, row))
}

#[utoipa::path(
    get, path = "/stripe/sessions/{session_id}", tag = "checkout",
    params(("session_id" = String, Path, description = "Our unique id or the cs_ id")),
    responses(
        (status = 200, description = "The session, refreshed from Stripe", body = SessionAttributes),
        (status = 404, description = "No such session for this caller"),
        (status = 502, description = "Stripe unreachable, or it failed"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn get_session(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = checkout::refresh_session(&state, &caller, &path.into_inner()).await?;
    Ok(render(StatusCode::OK, row))
}
