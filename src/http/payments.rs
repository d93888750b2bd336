//! `GET/POST /stripe/payments` and `POST /stripe/payments/{id}/confirm`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::Value;

use crate::caller::Caller;
use crate::db::payments::PaymentRow;
use crate::domain::Metadata;
use crate::error::ApiError;
use crate::http::jsonapi::{self, ListMeta, parse_body, timestamp};
use crate::services::payments::{
    self, ConfirmPaymentFields, CreatePaymentFields, ListPaymentsQuery,
};
use crate::state::AppState;

/// A payment as clients read it (API_CONTRACT.md, POST /stripe/payments).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PaymentAttributes {
    pub unique_id: String,
    /// The `pi_...` id.
    pub stripe_payment_id: String,
    /// Same as `stripe_payment_id`.
    pub payment_intent_id: String,
    /// For the browser to confirm the payment with Stripe.js; only in the create response.
    pub client_secret: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    /// The `cus_...` id.
    pub customer: Option<String>,
    pub payment_method: Option<String>,
    pub description: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub created_at: String,
    pub updated_at: String,
}

impl PaymentAttributes {
    fn new(p: PaymentRow, client_secret: Option<String>) -> Self {
        Self {
            unique_id: p.id,
            payment_intent_id: p.stripe_payment_intent_id.clone(),
            stripe_payment_id: p.stripe_payment_intent_id,
            client_secret,
            amount: p.amount,
            currency: p.currency,
            status: p.status,
            customer: p.stripe_customer_id,
            payment_method: p.payment_method,
            description: p.description,
            metadata: Metadata::from_stored(&p.metadata),
            created_at: timestamp(p.created_at),
            updated_at: timestamp(p.updated_at),
        }
    }
}

#[utoipa::path(
    post, path = "/stripe/payments", tag = "payments",
    request_body(content = CreatePaymentFields, description = "Wrapped as {\"payment\": {...}}"),
    responses(
        (status = 201, description = "The payment intent, created (and confirmed when a payment method was given); for an order, of the order's amount", body = PaymentAttributes),
        (status = 200, description = "The order already has this payment: it is answered again, nothing is charged twice", body = PaymentAttributes),
        (status = 402, description = "The card was declined; code and meta.decline_code are Stripe's, meta.payment_intent_id and meta.unique_id name the recorded payment"),
        (status = 403, description = "forbidden_by_policy: a user named an amount (the app's policy decides)"),
        (status = 404, description = "Unknown order, or another user's"),
        (status = 422, description = "Invalid attribute (e.g. no amount and no order), or refused by Stripe"),
        (status = 502, description = "Stripe unreachable, or it failed"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn create_payment(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (fields, at) = parse_body::<CreatePaymentFields>(body.into_inner(), "payment")?;
    let request = payments::parse(fields, &at)?;
    let created = payments::create_payment(&state, &caller, request).await?;
    // Paying an order that already has a payment answers that payment: nothing was created.
    let status = if created.existing {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(render(status, created.row, created.client_secret))
}

const KIND: &str = "stripe_payment";

fn render(status: StatusCode, row: PaymentRow, client_secret: Option<String>) -> HttpResponse {
    let id = row.id.clone();
    jsonapi::resource(
        status,
        KIND,
        &id,
        &PaymentAttributes::new(row, client_secret),
    )
}

#[utoipa::path(
    get, path = "/stripe/payments", tag = "payments",
    params(ListPaymentsQuery),
    responses(
        (status = 200, description = "A page of payments from the mirror, newest first (admins: all of the app's; others: those they created and those of their customers). With page/records (the default), meta has current_page, total_pages, total_count, per_page, totalPages, totalRecords and has_more; with limit/starting_after/ending_before, meta has has_more, limit, per_page, total_count, totalRecords", body = [PaymentAttributes]),
        (status = 400, description = "page, records or limit out of range, both kinds of paging, both cursors, or a cursor naming no payment the caller sees"),
        (status = 422, description = "A filter value is not acceptable; source.parameter names it"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn list_payments(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListPaymentsQuery>,
) -> Result<HttpResponse, ApiError> {
    let request = payments::parse_list(&query)?;
    let paging = request.paging.clone();
    let page = payments::list(&state, &caller, request).await?;
    let items: Vec<(String, PaymentAttributes)> = page
        .rows
        .into_iter()
        .map(|row| (row.id.clone(), PaymentAttributes::new(row, None)))
        .collect();
    let meta = ListMeta::new(&paging, page.total, page.has_more);
    Ok(jsonapi::list(KIND, &items, &meta))
}

#[utoipa::path(
    post, path = "/stripe/payments/{unique_id}/confirm", tag = "payments",
    params(("unique_id" = String, Path, description = "Our payment unique id or the pi_ id")),
    request_body(content = ConfirmPaymentFields, description = "Wrapped as {\"payment\": {...}}"),
    responses(
        (status = 200, description = "The payment after Stripe's confirmation, mirrored", body = PaymentAttributes),
        (status = 402, description = "The card was declined; code and meta.decline_code are Stripe's"),
        (status = 404, description = "No such payment for this caller"),
        (status = 422, description = "Invalid attribute (no payment method), or refused by Stripe (e.g. already succeeded)"),
        (status = 502, description = "Stripe unreachable, or it failed"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn confirm_payment(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (fields, at) = parse_body::<ConfirmPaymentFields>(body.into_inner(), "payment")?;
    let confirm = payments::parse_confirm(fields, &at)?;
    let row = payments::confirm_payment(&state, &caller, &path.into_inner(), confirm, &at).await?;
    Ok(render(StatusCode::OK, row, None))
}
