//! `POST /stripe/payments`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::Value;

use crate::auth::Caller;
use crate::db::payments::PaymentRow;
use crate::domain::Metadata;
use crate::error::ApiError;
use crate::http::jsonapi::{self, parse_body, timestamp};
use crate::payments::{self, CreatePaymentFields};
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
        (status = 201, description = "The payment intent, created (and confirmed when a payment method was given)", body = PaymentAttributes),
        (status = 402, description = "The card was declined; code and meta.decline_code are Stripe's"),
        (status = 422, description = "Invalid attribute (e.g. no amount), or refused by Stripe"),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn create_payment(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (fields, at) = parse_body::<CreatePaymentFields>(body.into_inner(), "payment")?;
    let (new, customer) = payments::parse(fields, &at)?;
    let (row, client_secret) = payments::create_payment(&state, &caller, new, customer).await?;
    let id = row.id.clone();
    Ok(jsonapi::resource(
        StatusCode::CREATED,
        "stripe_payment",
        &id,
        &PaymentAttributes::new(row, client_secret),
    ))
}
