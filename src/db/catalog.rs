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

super::mirror_table! {
    pub fn apply_products(products by stripe_product_id, s: ProductSnapshot);
    insert(tenant, now) {
        id: super::new_row_id(),
        tenant_id: tenant,
        stripe_product_id: &s.id,
        created_at: unix(Some(s.created)).unwrap_or(now),
    }
    state ProductChangeset<'a> {
        name: &'a str = &s.name,
        description: Option<&'a str> = s.description.as_deref(),
        active: bool = s.active && !s.deleted,
        deleted_at: Option<NaiveDateTime> = s.deleted.then_some(now),
        stripe_created: i64 = s.created,
    }
}

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

super::mirror_table! {
    pub fn apply_prices(prices by stripe_price_id, s: PriceSnapshot);
    insert(tenant, now) {
        id: super::new_row_id(),
        tenant_id: tenant,
        stripe_price_id: &s.id,
        created_at: unix(Some(s.created)).unwrap_or(now),
    }
    state PriceChangeset<'a> {
        stripe_product_id: &'a str = &s.product,
        active: bool = s.active && !s.deleted,
        currency: &'a str = &s.currency,
        unit_amount: Option<i64> = s.unit_amount,
        price_type: &'a str = &s.price_type,
        recurring_interval: Option<&'a str> = s.recurring_interval.as_deref(),
        recurring_interval_count: Option<i64> = s.recurring_interval_count,
        nickname: Option<&'a str> = s.nickname.as_deref(),
        deleted_at: Option<NaiveDateTime> = s.deleted.then_some(now),
        stripe_created: i64 = s.created,
    }
}

/// Which rows of a catalogue list (`?active=`): the active ones (the default), the archived
/// ones (`active: false`), or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activity {
    #[default]
    Active,
    Archived,
    All,
}

impl Activity {
    /// The `active` value the rows must have; `None`: any.
    pub fn only(self) -> Option<bool> {
        match self {
            Activity::Active => Some(true),
            Activity::Archived => Some(false),
            Activity::All => None,
        }
    }
}

/// One page of the tenant's live products (active, archived or both), newest first, and the
/// total.
pub fn list_products(
    conn: &mut crate::db::AnyConnection,
    tenant_id: &str,
    activity: Activity,
    page: i64,
    per_page: i64,
) -> QueryResult<(Vec<ProductRow>, i64)> {
    let build = || {
        let mut query = products::table
            .filter(products::tenant_id.eq(tenant_id.to_owned()))
            .filter(products::deleted_at.is_null())
            .into_boxed();
        if let Some(active) = activity.only() {
            query = query.filter(products::active.eq(active));
        }
        query
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

/// A live price of the tenant by our unique id or `price_` id.
pub fn find_price(
    conn: &mut crate::db::AnyConnection,
    tenant_id: &str,
    any_id: &str,
) -> QueryResult<Option<PriceRow>> {
    prices::table
        .filter(prices::tenant_id.eq(tenant_id))
        .filter(prices::deleted_at.is_null())
        .filter(prices::id.eq(any_id).or(prices::stripe_price_id.eq(any_id)))
        .select(PriceRow::as_select())
        .first(conn)
        .optional()
}

/// One page of the tenant's live prices (of one product if given; active, archived or both),
/// newest first, and the total.
pub fn list_prices(
    conn: &mut crate::db::AnyConnection,
    tenant_id: &str,
    product: Option<&str>,
    activity: Activity,
    page: i64,
    per_page: i64,
) -> QueryResult<(Vec<PriceRow>, i64)> {
    let build = || {
        let mut query = prices::table
            .filter(prices::tenant_id.eq(tenant_id.to_owned()))
            .filter(prices::deleted_at.is_null())
            .into_boxed();
        if let Some(active) = activity.only() {
            query = query.filter(prices::active.eq(active));
        }
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
