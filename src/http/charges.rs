//! `GET /stripe/charges` and `GET /stripe/charges/{charge_id}`: the mirrored charges.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::Value;

use crate::caller::Caller;
use crate::db::charges::ChargeRow;
use crate::domain::Metadata;
use crate::error::ApiError;
use crate::http::jsonapi::{self, ListMeta, timestamp};
use crate::services::charges::{self, ListChargesQuery};
use crate::state::AppState;

const KIND: &str = "stripe_charge";

/// A charge as clients read it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChargeAttributes {
    pub unique_id: String,
    /// The `ch_...` id.
    pub stripe_charge_id: String,
    /// Same as `stripe_charge_id`.
    pub charge_id: String,
    /// The payment's `pi_...` id.
    pub payment_intent_id: Option<String>,
    /// Same as `payment_intent_id`.
    pub stripe_payment_id: Option<String>,
    /// The `cus_...` id.
    pub customer: Option<String>,
    pub amount: i64,
    pub amount_captured: i64,
    pub amount_refunded: i64,
    pub currency: String,
    pub captured: bool,
    /// Refunded in full.
    pub refunded: bool,
    pub paid: bool,
    /// Stripe's: `succeeded`, `pending` or `failed`.
    pub status: String,
    /// Why the charge failed (Stripe's code, e.g. `card_declined`).
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    /// The `pm_...` id.
    pub payment_method: Option<String>,
    /// `card`, ...
    pub payment_method_type: Option<String>,
    /// For a card: its brand (`visa`, ...) and last four digits.
    pub brand: Option<String>,
    pub last4: Option<String>,
    pub receipt_url: Option<String>,
    pub description: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// When Stripe created the charge.
    pub created_at: String,
    pub updated_at: String,
}

impl From<ChargeRow> for ChargeAttributes {
    fn from(c: ChargeRow) -> Self {
        Self {
            unique_id: c.id,
            charge_id: c.stripe_charge_id.clone(),
            stripe_charge_id: c.stripe_charge_id,
            stripe_payment_id: c.stripe_payment_intent_id.clone(),
            payment_intent_id: c.stripe_payment_intent_id,
            customer: c.stripe_customer_id,
            amount: c.amount,
            amount_captured: c.amount_captured,
            amount_refunded: c.amount_refunded,
            currency: c.currency,
            captured: c.captured,
            refunded: c.refunded,
            paid: c.paid,
            status: c.status,
            failure_code: c.failure_code,
            failure_message: c.failure_message,
            payment_method: c.payment_method,
            payment_method_type: c.payment_method_type,
            brand: c.card_brand,
            last4: c.card_last4,
            receipt_url: c.receipt_url,
            description: c.description,
            metadata: Metadata::from_stored(&c.metadata),
            created_at: timestamp(c.created_at),
            updated_at: timestamp(c.updated_at),
        }
    }
}

#[utoipa::path(
    get, path = "/stripe/charges", tag = "charges",
    params(ListChargesQuery),
    responses(
        (status = 200, description = "A page of charges from the mirror (kept by Stripe's charge events), newest first; admins see all of the app's, others those of the payments they see and of their customers. meta as on GET /stripe/payments", body = [ChargeAttributes]),
        (status = 400, description = "page, records or limit out of range, both kinds of paging, both cursors, or a cursor naming no charge the caller sees"),
        (status = 422, description = "A filter value is not acceptable (an unknown status, an id over 255 characters); source.parameter names it"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn list_charges(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListChargesQuery>,
) -> Result<HttpResponse, ApiError> {
    let request = charges::parse_list(&query)?;
    let paging = request.paging.clone();
    let page = charges::list(&state, &caller, request).await?;
    let items: Vec<(String, ChargeAttributes)> = page
        .rows
        .into_iter()
        .map(|row| (row.id.clone(), ChargeAttributes::from(row)))
        .collect();
    let meta = ListMeta::new(&paging, page.total, page.has_more);
    Ok(jsonapi::list(KIND, &items, &meta))
}

#[utoipa::path(
    get, path = "/stripe/charges/{charge_id}", tag = "charges",
    params(("charge_id" = String, Path, description = "Our charge unique id or the ch_ id")),
    responses(
        (status = 200, description = "The charge, from the mirror", body = ChargeAttributes),
        (status = 404, description = "No such charge for this caller (another user's or app's is not found either)"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn get_charge(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = charges::get(&state, &caller, &path.into_inner()).await?;
    let id = row.id.clone();
    Ok(jsonapi::resource(
        StatusCode::OK,
        KIND,
        &id,
        &ChargeAttributes::from(row),
    ))
}
