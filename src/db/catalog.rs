//! Products and prices: the mirror of each tenant's Stripe catalogue.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{prices, products};
use super::subscriptions::unix;
use crate::stripe::objects::{PriceSnapshot, ProductSnapshot};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = products)]
pub struct ProductRow {
    pub id: String,
    pub tenant_id: String,
    pub stripe_product_id: String,
    pub name: String,
    pub description: Option<String>,
    pub active: bool,
    pub metadata: String,
    pub deleted_at: Option<NaiveDateTime>,
    pub stripe_created: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub watermark: Option<i64>,
}

#[derive(Debug, AsChangeset, Insertable, serde::Serialize)]
#[diesel(table_name = products, treat_none_as_null = true)]
struct ProductChangeset<'a> {
    name: &'a str,
    description: Option<&'a str>,
    active: bool,
    metadata: &'a str,
    deleted_at: Option<NaiveDateTime>,
    stripe_created: i64,
    updated_at: NaiveDateTime,
    watermark: Option<i64>,
}

fn product_changeset<'a>(
    p: &'a ProductSnapshot,
    metadata: &'a str,
    at: i64,
    now: NaiveDateTime,
) -> ProductChangeset<'a> {
    ProductChangeset {
        name: &p.name,
        description: p.description.as_deref(),
        active: p.active && !p.deleted,
        metadata,
        deleted_at: p.deleted.then_some(now),
        stripe_created: p.created,
        updated_at: now,
        watermark: Some(at),
    }
}

super::mirror_apply_fn!(
    apply_products, products, stripe_product_id, ProductSnapshot,
    changes: product_changeset,
    insert(tenant, p, now) => (
        products::id.eq(uuid::Uuid::new_v4().to_string()),
        products::tenant_id.eq(tenant),
        products::stripe_product_id.eq(&p.id),
        products::created_at.eq(unix(Some(p.created)).unwrap_or(now)),
    ),
    [name, description, active, metadata, deleted_at, stripe_created, updated_at, watermark]
);

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = prices)]
pub struct PriceRow {
    pub id: String,
    pub tenant_id: String,
    pub stripe_price_id: String,
    pub stripe_product_id: String,
    pub active: bool,
    pub currency: String,
    pub unit_amount: Option<i64>,
    pub price_type: String,
    pub recurring_interval: Option<String>,
    pub recurring_interval_count: Option<i64>,
    pub nickname: Option<String>,
    pub metadata: String,
    pub deleted_at: Option<NaiveDateTime>,
    pub stripe_created: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub watermark: Option<i64>,
}

#[derive(Debug, AsChangeset, Insertable, serde::Serialize)]
#[diesel(table_name = prices, treat_none_as_null = true)]
struct PriceChangeset<'a> {
    stripe_product_id: &'a str,
    active: bool,
    currency: &'a str,
    unit_amount: Option<i64>,
    price_type: &'a str,
    recurring_interval: Option<&'a str>,
    recurring_interval_count: Option<i64>,
    nickname: Option<&'a str>,
    metadata: &'a str,
    deleted_at: Option<NaiveDateTime>,
    stripe_created: i64,
    updated_at: NaiveDateTime,
    watermark: Option<i64>,
}

fn price_changeset<'a>(
    p: &'a PriceSnapshot,
    metadata: &'a str,
    at: i64,
    now: NaiveDateTime,
) -> PriceChangeset<'a> {
    PriceChangeset {
        stripe_product_id: &p.product,
        active: p.active && !p.deleted,
        currency: &p.currency,
        unit_amount: p.unit_amount,
        price_type: &p.price_type,
        recurring_interval: p.recurring_interval.as_deref(),
        recurring_interval_count: p.recurring_interval_count,
        nickname: p.nickname.as_deref(),
        metadata,
        deleted_at: p.deleted.then_some(now),
        stripe_created: p.created,
        updated_at: now,
        watermark: Some(at),
    }
}

super::mirror_apply_fn!(
    apply_prices, prices, stripe_price_id, PriceSnapshot,
    changes: price_changeset,
    insert(tenant, p, now) => (
        prices::id.eq(uuid::Uuid::new_v4().to_string()),
        prices::tenant_id.eq(tenant),
        prices::stripe_price_id.eq(&p.id),
        prices::created_at.eq(unix(Some(p.created)).unwrap_or(now)),
    ),
    [
        stripe_product_id, active, currency, unit_amount, price_type, recurring_interval,
        recurring_interval_count, nickname, metadata, deleted_at, stripe_created, updated_at,
        watermark,
    ]
);

/// One page of the tenant's live products, newest first, and the total.
pub fn list_products(
    conn: &mut crate::db::AnyConnection,
    tenant_id: &str,
    page: i64,
    per_page: i64,
) -> QueryResult<(Vec<ProductRow>, i64)> {
    let build = || {
        products::table
            .filter(products::tenant_id.eq(tenant_id.to_owned()))
            .filter(products::deleted_at.is_null())
            .into_boxed()
    };
    let total: i64 = build().count().get_result(conn)?;
    let rows = build()
        .order((products::stripe_created.desc(), products::id.desc()))
        .limit(per_page)
        .offset((page - 1) * per_page)
        .select(ProductRow::as_select())
        .load(conn)?;
    Ok((rows, total))
}

/// A live product of the tenant by our unique id or `prod_` id.
pub fn find_product(
    conn: &mut crate::db::AnyConnection,
    tenant_id: &str,
    any_id: &str,
) -> QueryResult<Option<ProductRow>> {
    products::table
        .filter(products::tenant_id.eq(tenant_id))
        .filter(products::deleted_at.is_null())
        .filter(
            products::id
                .eq(any_id)
                .or(products::stripe_product_id.eq(any_id)),
        )
        .select(ProductRow::as_select())
        .first(conn)
        .optional()
}

/// One page of the tenant's live prices (of one product if given), newest first, and the
/// total.
pub fn list_prices(
    conn: &mut crate::db::AnyConnection,
    tenant_id: &str,
    product: Option<&str>,
    page: i64,
    per_page: i64,
) -> QueryResult<(Vec<PriceRow>, i64)> {
    let build = || {
        let mut query = prices::table
            .filter(prices::tenant_id.eq(tenant_id.to_owned()))
            .filter(prices::deleted_at.is_null())
            .into_boxed();
        if let Some(product) = product {
            query = query.filter(prices::stripe_product_id.eq(product.to_owned()));
        }
        query
    };
    let total: i64 = build().count().get_result(conn)?;
    let rows = build()
        .order((prices::stripe_created.desc(), prices::id.desc()))
        .limit(per_page)
        .offset((page - 1) * per_page)
        .select(PriceRow::as_select())
        .load(conn)?;
    Ok((rows, total))
}

super::mirror_record_fn!(
    record_product,
    apply_products,
    products,
    stripe_product_id,
    ProductSnapshot,
    ProductRow
);
super::mirror_record_fn!(
    record_price,
    apply_prices,
    prices,
    stripe_price_id,
    PriceSnapshot,
    PriceRow
);

/// Which of `ids` are active prices of the tenant's mirrored catalogue (what its users may buy).
pub fn catalogued_prices(
    conn: &mut crate::db::AnyConnection,
    tenant_id: &str,
    ids: &[String],
) -> QueryResult<Vec<String>> {
    prices::table
        .filter(prices::tenant_id.eq(tenant_id))
        .filter(prices::stripe_price_id.eq_any(ids))
        .filter(prices::active.eq(true))
        .filter(prices::deleted_at.is_null())
        .select(prices::stripe_price_id)
        .load(conn)
}
