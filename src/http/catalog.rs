//! `POST/GET /stripe/products`, `POST/GET /stripe/prices`, `POST /stripe/payment_links`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::Value;

use crate::caller::Caller;
use crate::db::catalog::{PriceRow, ProductRow};
use crate::domain::Metadata;
use crate::error::ApiError;
use crate::http::jsonapi::{self, PageMeta, parse_body, timestamp};
use crate::services::catalog::{
    self, CatalogQuery, CreatePaymentLinkFields, CreatePriceFields, CreateProductFields,
};
use crate::state::AppState;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProductAttributes {
    pub unique_id: String,
    /// The `prod_...` id.
    pub stripe_product_id: String,
    pub name: String,
    pub description: Option<String>,
    pub active: bool,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub created_at: String,
    pub updated_at: String,
}

impl From<ProductRow> for ProductAttributes {
    fn from(p: ProductRow) -> Self {
        Self {
            unique_id: p.id,
            stripe_product_id: p.stripe_product_id,
            name: p.name,
            description: p.description,
            active: p.active,
            metadata: Metadata::from_stored(&p.metadata),
            created_at: timestamp(p.created_at),
            updated_at: timestamp(p.updated_at),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PriceAttributes {
    pub unique_id: String,
    /// The `price_...` id.
    pub stripe_price_id: String,
    pub stripe_product_id: String,
    pub active: bool,
    pub currency: String,
    pub unit_amount: Option<i64>,
    /// `one_time` or `recurring`.
    #[serde(rename = "type")]
    pub price_type: String,
    pub interval: Option<String>,
    pub interval_count: Option<i64>,
    pub nickname: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub created_at: String,
}

impl From<PriceRow> for PriceAttributes {
    fn from(p: PriceRow) -> Self {
        Self {
            unique_id: p.id,
            stripe_price_id: p.stripe_price_id,
            stripe_product_id: p.stripe_product_id,
            active: p.active,
            currency: p.currency,
            unit_amount: p.unit_amount,
            price_type: p.price_type,
            interval: p.recurring_interval,
            interval_count: p.recurring_interval_count,
            nickname: p.nickname,
            metadata: Metadata::from_stored(&p.metadata),
            created_at: timestamp(p.created_at),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PaymentLinkAttributes {
    /// The `plink_...` id.
    pub stripe_payment_link_id: String,
    /// Where the buyer pays.
    pub url: String,
    pub active: bool,
    pub price_id: String,
    pub quantity: i64,
}

#[utoipa::path(
    post, path = "/stripe/products", tag = "catalogue",
    request_body(content = CreateProductFields, description = "Wrapped as {\"product\": {...}}"),
    responses(
        (status = 201, description = "The product, created at Stripe and mirrored", body = ProductAttributes),
        (status = 403, description = "Only admins change the catalogue"),
        (status = 422, description = "Invalid attribute"),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn create_product(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (fields, at) = parse_body::<CreateProductFields>(body.into_inner(), "product")?;
    let row = catalog::create_product(&state, &caller, fields, &at).await?;
    let id = row.id.clone();
    Ok(jsonapi::resource(
        StatusCode::CREATED,
        "stripe_product",
        &id,
        &ProductAttributes::from(row),
    ))
}

#[utoipa::path(
    get, path = "/stripe/products", tag = "catalogue",
    params(CatalogQuery),
    responses((status = 200, description = "The app's products, newest first", body = [ProductAttributes])),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn list_products(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<CatalogQuery>,
) -> Result<HttpResponse, ApiError> {
    let (rows, total, page, per_page) = catalog::list_products(&state, &caller, &query).await?;
    let items: Vec<(String, ProductAttributes)> = rows
        .into_iter()
        .map(|r| (r.id.clone(), ProductAttributes::from(r)))
        .collect();
    Ok(jsonapi::list(
        "stripe_product",
        &items,
        &PageMeta::new(page, per_page, total),
    ))
}

#[utoipa::path(
    post, path = "/stripe/prices", tag = "catalogue",
    request_body(content = CreatePriceFields, description = "Wrapped as {\"price\": {...}}"),
    responses(
        (status = 201, description = "The price, created at Stripe and mirrored", body = PriceAttributes),
        (status = 403, description = "Only admins change the catalogue"),
        (status = 404, description = "No such product in this app"),
        (status = 422, description = "Invalid attribute"),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn create_price(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (fields, at) = parse_body::<CreatePriceFields>(body.into_inner(), "price")?;
    let row = catalog::create_price(&state, &caller, fields, &at).await?;
    let id = row.id.clone();
    Ok(jsonapi::resource(
        StatusCode::CREATED,
        "stripe_price",
        &id,
        &PriceAttributes::from(row),
    ))
}

#[utoipa::path(
    get, path = "/stripe/prices", tag = "catalogue",
    params(CatalogQuery),
    responses(
        (status = 200, description = "The app's prices (of one product with product_id), newest first", body = [PriceAttributes]),
        (status = 404, description = "product_id names no product of this app"),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn list_prices(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<CatalogQuery>,
) -> Result<HttpResponse, ApiError> {
    let (rows, total, page, per_page) = catalog::list_prices(&state, &caller, &query).await?;
    let items: Vec<(String, PriceAttributes)> = rows
        .into_iter()
        .map(|r| (r.id.clone(), PriceAttributes::from(r)))
        .collect();
    Ok(jsonapi::list(
        "stripe_price",
        &items,
        &PageMeta::new(page, per_page, total),
    ))
}

#[utoipa::path(
    post, path = "/stripe/payment_links", tag = "catalogue",
    request_body(content = CreatePaymentLinkFields, description = "Wrapped as {\"payment_link\": {...}}"),
    responses(
        (status = 201, description = "The link; the buyer pays at its url", body = PaymentLinkAttributes),
        (status = 403, description = "forbidden_by_policy: a user named a price outside the catalogue"),
        (status = 422, description = "Invalid attribute, or refused by Stripe (unknown price)"),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn create_payment_link(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (fields, at) = parse_body::<CreatePaymentLinkFields>(body.into_inner(), "payment_link")?;
    let (link, price_id, quantity) =
        catalog::create_payment_link(&state, &caller, fields, &at).await?;
    let id = link.id.clone();
    Ok(jsonapi::resource(
        StatusCode::CREATED,
        "stripe_payment_link",
        &id,
        &PaymentLinkAttributes {
            stripe_payment_link_id: link.id,
            url: link.url,
            active: link.active,
            price_id,
            quantity,
        },
    ))
}
