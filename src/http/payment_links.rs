//! `POST/GET /stripe/payment_links`, `GET/PUT /stripe/payment_links/{id}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::Value;

use crate::caller::Caller;
use crate::db::payment_links::PaymentLinkRow;
use crate::domain::Metadata;
use crate::error::ApiError;
use crate::http::jsonapi::{self, ListMeta, parse_body, timestamp};
use crate::services::payment_links::{
    self, CreatePaymentLinkFields, PaymentLinksQuery, UpdatePaymentLinkFields,
};
use crate::state::AppState;

const KIND: &str = "stripe_payment_link";

/// A payment link as clients read it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PaymentLinkAttributes {
    pub unique_id: String,
    /// The `plink_...` id.
    pub stripe_payment_link_id: String,
    /// Where the buyer pays.
    pub url: String,
    /// `false`: deactivated, its page sells nothing.
    pub active: bool,
    /// The price it sells (null for a link made elsewhere, e.g. Stripe's Dashboard).
    pub price_id: Option<String>,
    pub quantity: Option<i64>,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub created_at: String,
    pub updated_at: String,
}

impl From<PaymentLinkRow> for PaymentLinkAttributes {
    fn from(l: PaymentLinkRow) -> Self {
        Self {
            unique_id: l.id,
            stripe_payment_link_id: l.stripe_payment_link_id,
            url: l.url,
            active: l.active,
            price_id: l.price_id,
            quantity: l.quantity,
            metadata: Metadata::from_stored(&l.metadata),
            created_at: timestamp(l.created_at),
            updated_at: timestamp(l.updated_at),
        }
    }
}

fn render(status: StatusCode, row: PaymentLinkRow) -> HttpResponse {
    let id = row.id.clone();
    jsonapi::resource(status, KIND, &id, &PaymentLinkAttributes::from(row))
}

#[utoipa::path(
    post, path = "/stripe/payment_links", tag = "catalogue",
    request_body(content = CreatePaymentLinkFields, description = "Wrapped as {\"payment_link\": {...}}"),
    responses(
        (status = 201, description = "The link, created at Stripe and mirrored; the buyer pays at its url", body = PaymentLinkAttributes),
        (status = 403, description = "forbidden_by_policy: a user named a price outside the catalogue"),
        (status = 422, description = "Invalid attribute, or refused by Stripe (unknown price)"),
        (status = 502, description = "Stripe unreachable, or it failed"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn create_payment_link(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (fields, at) = parse_body::<CreatePaymentLinkFields>(body.into_inner(), "payment_link")?;
    let row = payment_links::create(&state, &caller, fields, &at).await?;
    Ok(render(StatusCode::CREATED, row))
}

#[utoipa::path(
    get, path = "/stripe/payment_links", tag = "catalogue",
    params(PaymentLinksQuery),
    responses(
        (status = 200, description = "The app's payment links (active ones unless active=false or all), newest first", body = [PaymentLinkAttributes]),
        (status = 400, description = "A paging parameter out of range, both kinds of paging, both cursors, a cursor naming no link of this app, or active not true, false or all"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn list_payment_links(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PaymentLinksQuery>,
) -> Result<HttpResponse, ApiError> {
    let (page, paging) = payment_links::list(&state, &caller, &query).await?;
    let items: Vec<(String, PaymentLinkAttributes)> = page
        .rows
        .into_iter()
        .map(|row| (row.id.clone(), PaymentLinkAttributes::from(row)))
        .collect();
    let meta = ListMeta::new(&paging, page.total, page.has_more);
    Ok(jsonapi::list(KIND, &items, &meta))
}

#[utoipa::path(
    get, path = "/stripe/payment_links/{payment_link_id}", tag = "catalogue",
    params(("payment_link_id" = String, Path, description = "Our unique id or the plink_ id")),
    responses(
        (status = 200, description = "The link, active or not", body = PaymentLinkAttributes),
        (status = 404, description = "No such payment link in this app"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn get_payment_link(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = payment_links::get(&state, &caller, &path.into_inner()).await?;
    Ok(render(StatusCode::OK, row))
}

#[utoipa::path(
    put, path = "/stripe/payment_links/{payment_link_id}", tag = "catalogue",
    params(("payment_link_id" = String, Path, description = "Our unique id or the plink_ id")),
    request_body(content = UpdatePaymentLinkFields, description = "Wrapped as {\"payment_link\": {...}}"),
    responses(
        (status = 200, description = "The link, changed at Stripe and mirrored", body = PaymentLinkAttributes),
        (status = 403, description = "Only admins deactivate or reactivate links"),
        (status = 404, description = "No such payment link in this app"),
        (status = 422, description = "Invalid attribute, nothing to change, or refused by Stripe"),
        (status = 502, description = "Stripe unreachable, or it failed"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn update_payment_link(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (fields, at) = parse_body::<UpdatePaymentLinkFields>(body.into_inner(), "payment_link")?;
    let change = payment_links::parse_change(&caller, fields, &at)?;
    let row = payment_links::update(&state, &caller, &path.into_inner(), change).await?;
    Ok(render(StatusCode::OK, row))
}
