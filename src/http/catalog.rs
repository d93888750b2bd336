//! `POST/GET /stripe/products`, `GET/PUT /stripe/products/{id}`, `POST/GET /stripe/prices`,
//! `GET/PUT /stripe/prices/{id}`.

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
    self, CatalogQuery, CreatePriceFields, CreateProductFields, UpdatePriceFields,
    UpdateProductFields,
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
    pub updated_at: String,
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
            updated_at: timestamp(p.updated_at),
        }
    }
}

#[utoipa::path(
    post, path = "/stripe/products", tag = "catalogue",
    request_body(content = CreateProductFields, description = "Wrapped as {\"product\": {...}}"),
    responses(
        (status = 201, description = "The product, created at Stripe and mirrored", body = ProductAttributes),
        (status = 403, description = "Only admins change the catalogue"),
        (status = 422, description = "Invalid attribute"),
        (status = 502, description = "Stripe unreachable, or it failed"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn create_product(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (fields, at) = parse_body::<CreateProductFields>(body.into_inner(), "product")?;
    let row = catalog::create_product(&state, &caller, fields, &at).await?;
    Ok(product(StatusCode::CREATED, row))
}

#[utoipa::path(
    get, path = "/stripe/products", tag = "catalogue",
    params(CatalogQuery),
    responses(
        (status = 200, description = "The app's products (active ones unless active=false or all), newest first", body = [ProductAttributes]),
        (status = 400, description = "A paging parameter out of range, or active not true, false or all"),
    ),
    security(("app_id" = [], "bearer" = []))
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
        (status = 502, description = "Stripe unreachable, or it failed"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn create_price(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (fields, at) = parse_body::<CreatePriceFields>(body.into_inner(), "price")?;
    let row = catalog::create_price(&state, &caller, fields, &at).await?;
    Ok(price(StatusCode::CREATED, row))
}

#[utoipa::path(
    get, path = "/stripe/prices", tag = "catalogue",
    params(CatalogQuery),
    responses(
        (status = 200, description = "The app's prices (of one product with product_id; active ones unless active=false or all), newest first", body = [PriceAttributes]),
        (status = 400, description = "A paging parameter out of range, or active not true, false or all"),
        (status = 404, description = "product_id names no product of this app"),
    ),
    security(("app_id" = [], "bearer" = []))
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

fn product(status: StatusCode, row: ProductRow) -> HttpResponse {
    let id = row.id.clone();
    jsonapi::resource(status, "stripe_product", &id, &ProductAttributes::from(row))
}

fn price(status: StatusCode, row: PriceRow) -> HttpResponse {
    let id = row.id.clone();
    jsonapi::resource(status, "stripe_price", &id, &PriceAttributes::from(row))
}

#[utoipa::path(
    get, path = "/stripe/products/{product_id}", tag = "catalogue",
    params(("product_id" = String, Path, description = "Our unique id or the prod_ id")),
    responses(
        (status = 200, description = "The product, active or archived", body = ProductAttributes),
        (status = 404, description = "No such product in this app"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn get_product(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = catalog::get_product(&state, &caller, &path.into_inner()).await?;
    Ok(product(StatusCode::OK, row))
}

#[utoipa::path(
    put, path = "/stripe/products/{product_id}", tag = "catalogue",
    params(("product_id" = String, Path, description = "Our unique id or the prod_ id")),
    request_body(content = UpdateProductFields, description = "Wrapped as {\"product\": {...}}"),
    responses(
        (status = 200, description = "The product, changed at Stripe and mirrored", body = ProductAttributes),
        (status = 403, description = "Only admins change the catalogue"),
        (status = 404, description = "No such product in this app"),
        (status = 422, description = "Invalid attribute, nothing to change, or refused by Stripe"),
        (status = 502, description = "Stripe unreachable, or it failed"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn update_product(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (fields, at) = parse_body::<UpdateProductFields>(body.into_inner(), "product")?;
    let change = catalog::parse_product_change(&caller, fields, &at)?;
    let row = catalog::update_product(&state, &caller, &path.into_inner(), change).await?;
    Ok(product(StatusCode::OK, row))
}

#[utoipa::path(
    get, path = "/stripe/prices/{price_id}", tag = "catalogue",
    params(("price_id" = String, Path, description = "Our unique id or the price_ id")),
    responses(
        (status = 200, description = "The price, active or archived", body = PriceAttributes),
        (status = 404, description = "No such price in this app"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn get_price(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = catalog::get_price(&state, &caller, &path.into_inner()).await?;
    Ok(price(StatusCode::OK, row))
}

#[utoipa::path(
    put, path = "/stripe/prices/{price_id}", tag = "catalogue",
    params(("price_id" = String, Path, description = "Our unique id or the price_ id")),
    request_body(content = UpdatePriceFields, description = "Wrapped as {\"price\": {...}}"),
    responses(
        (status = 200, description = "The price, changed at Stripe and mirrored", body = PriceAttributes),
        (status = 403, description = "Only admins change the catalogue"),
        (status = 404, description = "No such price in this app"),
        (status = 422, description = "price_immutable: a field other than nickname, metadata and active (a price's amount, currency and interval never change: create a new price); validation_error: invalid attribute or nothing to change; or refused by Stripe"),
        (status = 502, description = "Stripe unreachable, or it failed"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn update_price(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let (sent, at) = parse_body::<serde_json::Map<String, Value>>(body.clone(), "price")?;
    let (fields, _) = parse_body::<UpdatePriceFields>(body, "price")?;
    let change = catalog::parse_price_change(&caller, &sent, fields, &at)?;
    let row = catalog::update_price(&state, &caller, &path.into_inner(), change).await?;
    Ok(price(StatusCode::OK, row))
}
