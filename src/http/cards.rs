//! `POST /stripe/cards`, `GET /stripe/cards`, `DELETE /stripe/cards/{card_id}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::Value;

use crate::caller::Caller;
use crate::db::payment_methods::PaymentMethodRow;
use crate::error::ApiError;
use crate::http::jsonapi::{self, ListMeta, parse_body, timestamp};
use crate::services::cards::{self, CardsQuery, SaveCardFields};
use crate::state::AppState;

const KIND: &str = "stripe_card";

/// A saved card as clients read it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CardAttributes {
    pub unique_id: String,
    /// The `pm_...` id.
    pub stripe_payment_method_id: String,
    pub provider: &'static str,
    pub brand: Option<String>,
    pub last4: Option<String>,
    pub exp_month: Option<i64>,
    pub exp_year: Option<i64>,
    pub is_default: bool,
    /// The `cus_...` id; null once detached.
    pub customer: Option<String>,
    pub created_at: String,
}

impl CardAttributes {
    fn new(card: PaymentMethodRow, is_default: bool) -> Self {
        Self {
            unique_id: card.id,
            stripe_payment_method_id: card.stripe_payment_method_id,
            provider: "stripe",
            brand: card.card_brand,
            last4: card.card_last4,
            exp_month: card.card_exp_month,
            exp_year: card.card_exp_year,
            is_default,
            customer: card.stripe_customer_id,
            created_at: timestamp(card.created_at),
        }
    }
}

fn render(status: StatusCode, card: PaymentMethodRow, is_default: bool) -> HttpResponse {
    let id = card.id.clone();
    jsonapi::resource(status, KIND, &id, &CardAttributes::new(card, is_default))
}

#[utoipa::path(
    post, path = "/stripe/cards", tag = "cards",
    request_body(content = SaveCardFields, description = "Wrapped as {\"card\": {...}}"),
    responses(
        (status = 201, description = "The card, attached at Stripe and mirrored", body = CardAttributes),
        (status = 404, description = "The customer is not one of the caller's"),
        (status = 422, description = "Invalid attribute, or refused by Stripe (unknown or used payment method)"),
        (status = 502, description = "Stripe unreachable, or it failed"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn save_card(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (fields, at) = parse_body::<SaveCardFields>(body.into_inner(), "card")?;
    let request = cards::parse(fields, &at)?;
    let (card, is_default) = cards::save(&state, &caller, request).await?;
    Ok(render(StatusCode::CREATED, card, is_default))
}

#[utoipa::path(
    get, path = "/stripe/cards", tag = "cards",
    params(CardsQuery),
    responses(
        (status = 200, description = "A page of the saved cards the caller may see, newest first (20 a page by default; meta as on the other lists)", body = [CardAttributes]),
        (status = 400, description = "A paging parameter out of range, both kinds of paging, both cursors, or a cursor naming no card the caller sees"),
        (status = 404, description = "customer_id names no customer of the caller's"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn list_cards(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<CardsQuery>,
) -> Result<HttpResponse, ApiError> {
    let (page, paging) = cards::list(&state, &caller, &query).await?;
    let items: Vec<(String, CardAttributes)> = page
        .rows
        .into_iter()
        .map(|(card, is_default)| (card.id.clone(), CardAttributes::new(card, is_default)))
        .collect();
    let meta = ListMeta::new(&paging, page.total, page.has_more);
    Ok(jsonapi::list(KIND, &items, &meta))
}

#[utoipa::path(
    delete, path = "/stripe/cards/{card_id}", tag = "cards",
    params(("card_id" = String, Path, description = "The card's unique id or pm_ id")),
    responses(
        (status = 200, description = "The card, detached at Stripe (customer null)", body = CardAttributes),
        (status = 404, description = "No saved card of the caller's has this id"),
        (status = 502, description = "Stripe unreachable, or it failed"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn delete_card(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let card = cards::delete(&state, &caller, &path.into_inner()).await?;
    Ok(render(StatusCode::OK, card, false))
}
