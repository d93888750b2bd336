//! The catalogue: products and prices created at Stripe by admins and mirrored (also kept
//! current by product.* and price.* events), read by every caller of the app; payment links
//! for a price.

use serde::Deserialize;

use crate::caller::Caller;
use crate::db::catalog::{self as rows, PriceRow, ProductRow};
use crate::domain::{Metadata, bounded, optional_text, query_number, required_currency, stripe_id};
use crate::error::ApiError;
use crate::state::AppState;
use crate::stripe::objects::PaymentLink;
use crate::stripe::requests::{LinkItem, NewPaymentLink, NewProduct, NewProductPrice, Recurring};

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct CreateProductFields {
    /// Required.
    pub name: Option<String>,
    pub description: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct CreatePriceFields {
    /// The product: our unique id or `prod_` id. Required.
    pub product_id: Option<String>,
    /// In the currency's smallest unit. Required.
    pub unit_amount: Option<i64>,
    /// Three-letter ISO code. Required.
    pub currency: Option<String>,
    /// `day`, `week`, `month` or `year` for a recurring price; omitted: one-time.
    pub interval: Option<String>,
    /// Intervals between charges (1 default; at most 3 years in all).
    pub interval_count: Option<i64>,
    pub nickname: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct CreatePaymentLinkFields {
    /// A `price_` id. Required.
    pub price_id: Option<String>,
    /// 1 by default.
    pub quantity: Option<i64>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

/// `page`, `records` and (for prices) `product_id` of a catalogue list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct CatalogQuery {
    pub page: Option<String>,
    pub records: Option<String>,
    /// Prices only: this product's (unique id or `prod_`).
    pub product_id: Option<String>,
}

const ADMINS: &str = "change the catalogue";

pub async fn create_product(
    state: &AppState,
    caller: &Caller,
    fields: CreateProductFields,
    at: &str,
) -> Result<ProductRow, ApiError> {
    caller.require_admin(ADMINS)?;
    let name = optional_text(fields.name, &format!("{at}/name"), 250)?
        .ok_or_else(|| ApiError::validation(format!("{at}/name"), "name is required"))?;
    let new = NewProduct {
        name,
        description: optional_text(fields.description, &format!("{at}/description"), 1000)?,
        metadata: Metadata::parse(fields.metadata.as_ref(), &format!("{at}/metadata"))?.0,
    };
    let product = caller
        .tenant
        .stripe
        .create_product(&new, caller.stripe_key())
        .await?;
    let tenant_id = caller.tenant.id.clone();
    let now = chrono::Utc::now().timestamp();
    state
        .db
        .run(move |conn| Ok(rows::record_product(conn, &tenant_id, &product, now)?))
        .await
}

const INTERVALS: [&str; 4] = ["day", "week", "month", "year"];

pub async fn create_price(
    state: &AppState,
    caller: &Caller,
    fields: CreatePriceFields,
    at: &str,
) -> Result<PriceRow, ApiError> {
    caller.require_admin(ADMINS)?;
    let product_ref = optional_text(fields.product_id, &format!("{at}/product_id"), 255)?
        .ok_or_else(|| {
            ApiError::validation(format!("{at}/product_id"), "product_id is required")
        })?;
    let unit_amount = fields.unit_amount.ok_or_else(|| {
        ApiError::validation(
            format!("{at}/unit_amount"),
            "unit_amount is required: an integer in the currency's smallest unit",
        )
    })?;
    let unit_amount = bounded(
        unit_amount,
        0,
        99_999_999,
        &format!("{at}/unit_amount"),
        "unit_amount",
    )?;
    let currency = required_currency(fields.currency, &format!("{at}/currency"))?;
    let recurring = match optional_text(fields.interval, &format!("{at}/interval"), 10)? {
        None => {
            if fields.interval_count.is_some() {
                return Err(ApiError::validation(
                    format!("{at}/interval_count"),
                    "interval_count needs an interval",
                ));
            }
            None
        }
        Some(interval) if INTERVALS.contains(&interval.as_str()) => {
            // Stripe's limit: at most three years between charges.
            let most = match interval.as_str() {
                "day" => 1095,
                "week" => 156,
                "month" => 36,
                _ => 3,
            };
            let count = bounded(
                fields.interval_count.unwrap_or(1),
                1,
                most,
                &format!("{at}/interval_count"),
                "interval_count",
            )?;
            Some(Recurring {
                interval,
                interval_count: count,
            })
        }
        Some(other) => {
            return Err(ApiError::validation(
                format!("{at}/interval"),
                format!(
                    "interval must be one of {} (got {other:?})",
                    INTERVALS.join(", ")
                ),
            ));
        }
    };
    let nickname = optional_text(fields.nickname, &format!("{at}/nickname"), 250)?;
    let metadata = Metadata::parse(fields.metadata.as_ref(), &format!("{at}/metadata"))?.0;
    let tenant_id = caller.tenant.id.clone();
    let wanted = product_ref.clone();
    let product = state
        .db
        .run(move |conn| Ok::<_, ApiError>(rows::find_product(conn, &tenant_id, &wanted)?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No product {product_ref:?} in this app.")))?;
    let price = caller
        .tenant
        .stripe
        .create_product_price(
            &NewProductPrice {
                product: product.stripe_product_id,
                currency,
                unit_amount,
                recurring,
                nickname,
                metadata,
            },
            caller.stripe_key(),
        )
        .await?;
    let tenant_id = caller.tenant.id.clone();
    let now = chrono::Utc::now().timestamp();
    state
        .db
        .run(move |conn| Ok(rows::record_price(conn, &tenant_id, &price, now)?))
        .await
}

fn paging(query: &CatalogQuery) -> Result<(i64, i64), ApiError> {
    Ok((
        query_number(query.page.as_deref(), "page", 1, 1, 1_000_000)?,
        query_number(query.records.as_deref(), "records", 20, 1, 100)?,
    ))
}

pub async fn list_products(
    state: &AppState,
    caller: &Caller,
    query: &CatalogQuery,
) -> Result<(Vec<ProductRow>, i64, i64, i64), ApiError> {
    let (page, per_page) = paging(query)?;
    let tenant_id = caller.tenant.id.clone();
    let (rows, total) = state
        .db
        .run(move |conn| Ok::<_, ApiError>(rows::list_products(conn, &tenant_id, page, per_page)?))
        .await?;
    Ok((rows, total, page, per_page))
}

pub async fn list_prices(
    state: &AppState,
    caller: &Caller,
    query: &CatalogQuery,
) -> Result<(Vec<PriceRow>, i64, i64, i64), ApiError> {
    let (page, per_page) = paging(query)?;
    let tenant_id = caller.tenant.id.clone();
    let product = query
        .product_id
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned);
    let (rows, total) = state
        .db
        .run(move |conn| {
            let product = match &product {
                None => None,
                Some(any) => Some(
                    rows::find_product(conn, &tenant_id, any)?
                        .ok_or_else(|| {
                            ApiError::not_found(format!("No product {any:?} in this app."))
                        })?
                        .stripe_product_id,
                ),
            };
            Ok::<_, ApiError>(rows::list_prices(
                conn,
                &tenant_id,
                product.as_deref(),
                page,
                per_page,
            )?)
        })
        .await?;
    Ok((rows, total, page, per_page))
}

/// A payment link for a price of the catalogue (any caller of the app may make one: it only
/// lets a buyer pay the listed price).
pub async fn create_payment_link(
    state: &AppState,
    caller: &Caller,
    fields: CreatePaymentLinkFields,
    at: &str,
) -> Result<(PaymentLink, String, i64), ApiError> {
    let price = optional_text(fields.price_id, &format!("{at}/price_id"), 255)?
        .ok_or_else(|| ApiError::validation(format!("{at}/price_id"), "price_id is required"))
        .and_then(|p| stripe_id(&p, &["price_", "plan_"], &format!("{at}/price_id"), "price"))?;
    // A link sells its price to whoever opens it: the catalogue's prices only, unless the
    // app's policy opens others.
    let gate = crate::services::policy::Gate::Price(price.clone(), format!("{at}/price_id"));
    crate::services::policy::enforce(state, caller, &[gate]).await?;
    let quantity = bounded(
        fields.quantity.unwrap_or(1),
        1,
        10_000,
        &format!("{at}/quantity"),
        "quantity",
    )?;
    let metadata = Metadata::parse(fields.metadata.as_ref(), &format!("{at}/metadata"))?.0;
    let link = caller
        .tenant
        .stripe
        .create_payment_link(
            &NewPaymentLink {
                line_items: vec![LinkItem {
                    price: price.clone(),
                    quantity,
                }],
                metadata,
            },
            caller.stripe_key(),
        )
        .await?;
    Ok((link, price, quantity))
}
