//! `POST /stripe/refunds`, `GET /stripe/refunds`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::Value;

use crate::caller::Caller;
use crate::db::refunds::RefundRow;
use crate::domain::Metadata;
use crate::error::ApiError;
use crate::http::jsonapi::{self, ListMeta, parse_body, timestamp};
use crate::services::refunds::{self, CreateRefundFields, ListQuery};
use crate::state::AppState;

const KIND: &str = "stripe_refund";

/// A refund as clients read it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RefundAttributes {
    pub unique_id: String,
    /// The `re_...` id (the spec's `provider_ref`).
    pub stripe_refund_id: String,
    pub provider_ref: String,
    /// The refunded payment's `pi_...` id.
    pub stripe_payment_id: Option<String>,
    /// The refunded charge's `ch_...` id (GET /stripe/charges/{charge_id}).
    pub charge_id: Option<String>,
    /// Same as `charge_id`.
    pub stripe_charge_id: Option<String>,
    pub amount: i64,
    pub currency: String,
    /// Stripe's: `pending`, `succeeded`, `failed`, `canceled` or `requires_action`.
    pub status: String,
    pub reason: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub created_at: String,
}

impl From<RefundRow> for RefundAttributes {
    fn from(r: RefundRow) -> Self {
        Self {
            unique_id: r.id,
            provider_ref: r.stripe_refund_id.clone(),
            stripe_refund_id: r.stripe_refund_id,
            stripe_payment_id: r.stripe_payment_intent_id,
            charge_id: r.stripe_charge_id.clone(),
            stripe_charge_id: r.stripe_charge_id,
            amount: r.amount,
            currency: r.currency,
            status: r.status,
            reason: r.reason,
            metadata: Metadata::from_stored(&r.metadata),
            created_at: timestamp(r.created_at),
        }
    }
}

#[utoipa::path(
    post, path = "/stripe/refunds", tag = "refunds",
    request_body(content = CreateRefundFields, description = "Wrapped as {\"refund\": {...}}"),
    responses(
        (status = 201, description = "The refund, made at Stripe and mirrored", body = RefundAttributes),
        (status = 403, description = "forbidden_by_policy: the app does not let its users refund"),
        (status = 404, description = "The payment is not one of the caller's"),
        (status = 422, description = "Invalid attribute, more than what is left to refund, a payment not succeeded, or refused by Stripe"),
        (status = 502, description = "Stripe unreachable, or it failed"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn create_refund(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (fields, at) = parse_body::<CreateRefundFields>(body.into_inner(), "refund")?;
    let request = refunds::parse(fields, &at)?;
    let row = refunds::create(&state, &caller, request, &at).await?;
    let id = row.id.clone();
    Ok(jsonapi::resource(
        StatusCode::CREATED,
        KIND,
        &id,
        &RefundAttributes::from(row),
    ))
}

#[utoipa::path(
    get, path = "/stripe/refunds", tag = "refunds",
    params(ListQuery),
    responses(
        (status = 200, description = "The refunds the caller may see (of one payment with payment_id), newest first", body = [RefundAttributes]),
        (status = 400, description = "A paging parameter out of range, both kinds of paging, both cursors, or a cursor naming no refund the caller sees"),
        (status = 404, description = "payment_id names no payment of the caller's"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn list_refunds(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let (page, paging) = refunds::list(&state, &caller, &query).await?;
    let items: Vec<(String, RefundAttributes)> = page
        .rows
        .into_iter()
        .map(|row| (row.id.clone(), RefundAttributes::from(row)))
        .collect();
    let meta = ListMeta::new(&paging, page.total, page.has_more);
    Ok(jsonapi::list(KIND, &items, &meta))
}
