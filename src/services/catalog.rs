//! The catalogue: products and prices created and changed at Stripe by admins and mirrored
//! (also kept current by product.* and price.* events), read by every caller of the app.
//! Archiving (`active: false`) takes a product or price out of the default lists.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::caller::Caller;
use crate::db::catalog::{self as rows, Activity, PriceRow, ProductRow};
use crate::domain::{
    Metadata, bounded, optional_text, query_number, query_text, required_currency,
};
use crate::error::ApiError;
use crate::state::AppState;
use crate::stripe::requests::{NewProduct, NewProductPrice, PriceChange, ProductChange, Recurring};

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

/// The fields of a product change; at least one.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct UpdateProductFields {
    /// Not empty.
    pub name: Option<String>,
    /// An empty string removes it.
    pub description: Option<String>,
    /// Merged into the product's metadata, as Stripe does (an empty value removes a key).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// `false` archives the product (out of the default list); `true` brings it back.
    pub active: Option<bool>,
}

/// The fields of a price change; at least one. A price's amount, currency and interval never
/// change at Stripe (any other field is refused): a new amount is a new price.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct UpdatePriceFields {
    /// An empty string removes it.
    pub nickname: Option<String>,
    /// Merged into the price's metadata, as Stripe does (an empty value removes a key).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// `false` archives the price (out of the default list, and no longer sold to users);
    /// `true` brings it back.
    pub active: Option<bool>,
}

/// `page`, `records`, `active` and (for prices) `product_id` of a catalogue list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CatalogQuery {
    pub page: Option<String>,
    pub records: Option<String>,
    /// Prices only: this product's (unique id or `prod_`).
    pub product_id: Option<String>,
    /// `true` (the default): the active ones; `false`: the archived ones; `all`: both.
    pub active: Option<String>,
}

/// `?active=` of a list: `true` (or absent), `false` or `all`; 400 otherwise.
pub fn activity(raw: Option<&str>) -> Result<Activity, ApiError> {
    match query_text(raw) {
        None | Some("true") => Ok(Activity::Active),
        Some("false") => Ok(Activity::Archived),
        Some("all") => Ok(Activity::All),
        Some(other) => Err(ApiError::bad_request(
            "invalid_query",
            format!("active must be true, false or all (got {other:?})"),
        )
        .with_parameter("active")),
    }
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
    let activity = activity(query.active.as_deref())?;
    let tenant_id = caller.tenant.id.clone();
    let (rows, total) = state
        .db
        .run(move |conn| {
            Ok::<_, ApiError>(rows::list_products(
                conn, &tenant_id, activity, page, per_page,
            )?)
        })
        .await?;
    Ok((rows, total, page, per_page))
}

pub async fn list_prices(
    state: &AppState,
    caller: &Caller,
    query: &CatalogQuery,
) -> Result<(Vec<PriceRow>, i64, i64, i64), ApiError> {
    let (page, per_page) = paging(query)?;
    let activity = activity(query.active.as_deref())?;
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
                activity,
                page,
                per_page,
            )?)
        })
        .await?;
    Ok((rows, total, page, per_page))
}

/// A product of the app (active or archived), by our unique id or `prod_` id.
pub async fn get_product(
    state: &AppState,
    caller: &Caller,
    any_id: &str,
) -> Result<ProductRow, ApiError> {
    let tenant_id = caller.tenant.id.clone();
    let wanted = any_id.to_owned();
    state
        .db
        .run(move |conn| Ok::<_, ApiError>(rows::find_product(conn, &tenant_id, &wanted)?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No product {any_id:?} in this app.")))
}

/// A price of the app (active or archived), by our unique id or `price_` id.
pub async fn get_price(
    state: &AppState,
    caller: &Caller,
    any_id: &str,
) -> Result<PriceRow, ApiError> {
    let tenant_id = caller.tenant.id.clone();
    let wanted = any_id.to_owned();
    state
        .db
        .run(move |conn| Ok::<_, ApiError>(rows::find_price(conn, &tenant_id, &wanted)?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No price {any_id:?} in this app.")))
}

/// Metadata to merge, when given (`null`: not given).
fn metadata_change(value: Option<&Value>, at: &str) -> Result<Option<Metadata>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(value) => Metadata::parse(Some(value), &format!("{at}/metadata")).map(Some),
    }
}

/// Text that may be removed: `Some("")` removes it at Stripe.
fn removable_text(
    raw: Option<String>,
    pointer: &str,
    max_chars: usize,
) -> Result<Option<String>, ApiError> {
    match raw {
        None => Ok(None),
        Some(text) => Ok(Some(
            optional_text(Some(text), pointer, max_chars)?.unwrap_or_default(),
        )),
    }
}

/// Checks a product change (admins only; nothing is asked of Stripe yet).
pub fn parse_product_change(
    caller: &Caller,
    fields: UpdateProductFields,
    at: &str,
) -> Result<ProductChange, ApiError> {
    caller.require_admin(ADMINS)?;
    let name = match fields.name {
        None => None,
        Some(name) => Some(
            optional_text(Some(name), &format!("{at}/name"), 250)?.ok_or_else(|| {
                ApiError::validation(format!("{at}/name"), "name must not be empty")
            })?,
        ),
    };
    let change = ProductChange {
        name,
        description: removable_text(fields.description, &format!("{at}/description"), 1000)?,
        active: fields.active,
        metadata: metadata_change(fields.metadata.as_ref(), at)?.map(|m| m.0),
    };
    if change.name.is_none()
        && change.description.is_none()
        && change.active.is_none()
        && change.metadata.is_none()
    {
        return Err(ApiError::validation(
            at.to_owned(),
            "nothing to change: send name, description, metadata or active",
        ));
    }
    Ok(change)
}

/// Changes a product of the app at Stripe and mirrors Stripe's answer.
pub async fn update_product(
    state: &AppState,
    caller: &Caller,
    any_id: &str,
    change: ProductChange,
) -> Result<ProductRow, ApiError> {
    let product = get_product(state, caller, any_id).await?;
    let snapshot = caller
        .tenant
        .stripe
        .update_product(&product.stripe_product_id, &change, caller.stripe_key())
        .await?;
    let tenant_id = caller.tenant.id.clone();
    let now = chrono::Utc::now().timestamp();
    state
        .db
        .run(move |conn| Ok(rows::record_product(conn, &tenant_id, &snapshot, now)?))
        .await
}

/// What a price change may name: Stripe keeps a price's amount, currency, product and
/// interval for its life.
const PRICE_CHANGES: [&str; 3] = ["nickname", "metadata", "active"];

/// Checks a price change (admins only). `sent` is the body as sent: a field other than
/// nickname, metadata and active is refused, so a new amount is never silently ignored.
pub fn parse_price_change(
    caller: &Caller,
    sent: &Map<String, Value>,
    fields: UpdatePriceFields,
    at: &str,
) -> Result<PriceChange, ApiError> {
    caller.require_admin(ADMINS)?;
    if let Some(field) = sent.keys().find(|k| !PRICE_CHANGES.contains(&k.as_str())) {
        let pointer = format!("{at}/{}", field.replace('~', "~0").replace('/', "~1"));
        return Err(ApiError::new(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            "price_immutable",
            "Prices cannot change",
            format!(
                "{field} cannot change: a price's amount, currency, product and interval are                  fixed at Stripe. Create a new price (POST /stripe/prices) and archive this one                  (active: false). A price change takes {} only.",
                PRICE_CHANGES.join(", ")
            ),
        )
        .with_pointer(pointer));
    }
    let change = PriceChange {
        nickname: removable_text(fields.nickname, &format!("{at}/nickname"), 250)?,
        active: fields.active,
        metadata: metadata_change(fields.metadata.as_ref(), at)?.map(|m| m.0),
    };
    if change.nickname.is_none() && change.active.is_none() && change.metadata.is_none() {
        return Err(ApiError::validation(
            at.to_owned(),
            "nothing to change: send nickname, metadata or active",
        ));
    }
    Ok(change)
}

/// Changes a price of the app at Stripe and mirrors Stripe's answer.
pub async fn update_price(
    state: &AppState,
    caller: &Caller,
    any_id: &str,
    change: PriceChange,
) -> Result<PriceRow, ApiError> {
    let price = get_price(state, caller, any_id).await?;
    let snapshot = caller
        .tenant
        .stripe
        .update_price(&price.stripe_price_id, &change, caller.stripe_key())
        .await?;
    let tenant_id = caller.tenant.id.clone();
    let now = chrono::Utc::now().timestamp();
    state
        .db
        .run(move |conn| Ok(rows::record_price(conn, &tenant_id, &snapshot, now)?))
        .await
}
