//! Payment links: the mirror of each tenant's Stripe payment links.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::AnyConnection;
use super::catalog::Activity;
use super::counts::{self, Buckets};
use super::listing::{Counted, Page, PageStart, Total};
use super::schema::payment_links;
use super::subscriptions::unix;
use crate::stripe::objects::PaymentLinkSnapshot;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = payment_links)]
pub struct PaymentLinkRow {
    pub id: String,
    pub tenant_id: String,
    pub stripe_payment_link_id: String,
    pub url: String,
    pub active: bool,
    pub price_id: Option<String>,
    pub quantity: Option<i64>,
    pub metadata: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub watermark: Option<i64>,
}

// The line item is set once (Stripe's events do not carry it): from the object when it has
// its line items, else by `record_created`.
super::mirror_table! {
    pub fn apply_payment_links(payment_links by stripe_payment_link_id, s: PaymentLinkSnapshot);
    insert(tenant, now) {
        id: super::new_row_id(),
        tenant_id: tenant,
        stripe_payment_link_id: &s.id,
        price_id: s.line_item.as_ref().map(|(price, _)| price.as_str()),
        quantity: s.line_item.as_ref().map(|(_, quantity)| *quantity),
        created_at: unix(s.created).unwrap_or(now),
    }
    state PaymentLinkChangeset<'a> {
        url: &'a str = &s.url,
        active: bool = s.active,
    }
}

super::mirror_record_fn!(
    record,
    apply_payment_links,
    payment_links,
    stripe_payment_link_id,
    PaymentLinkSnapshot,
    PaymentLinkRow
);

/// Records a link we just created, with the line item we created it with: a
/// payment_link.created event may have made the row first, without one.
pub fn record_created(
    conn: &mut AnyConnection,
    tenant_id: &str,
    snapshot: &PaymentLinkSnapshot,
    now: i64,
) -> QueryResult<PaymentLinkRow> {
    super::write_transaction(conn, |conn| {
        let row = record(conn, tenant_id, snapshot, now)?;
        let Some((price, quantity)) = &snapshot.line_item else {
            return Ok(row);
        };
        if row.price_id.is_some() {
            return Ok(row);
        }
        let mine = payment_links::table
            .filter(payment_links::tenant_id.eq(tenant_id))
            .filter(payment_links::stripe_payment_link_id.eq(&snapshot.id));
        diesel::update(mine.filter(payment_links::price_id.is_null()))
            .set((
                payment_links::price_id.eq(price),
                payment_links::quantity.eq(quantity),
            ))
            .execute(conn)?;
        mine.select(PaymentLinkRow::as_select()).first(conn)
    })
}

/// A payment link of the tenant by our unique id or `plink_` id.
pub fn find(
    conn: &mut AnyConnection,
    tenant_id: &str,
    any_id: &str,
) -> QueryResult<Option<PaymentLinkRow>> {
    payment_links::table
        .filter(payment_links::tenant_id.eq(tenant_id))
        .filter(
            payment_links::id
                .eq(any_id)
                .or(payment_links::stripe_payment_link_id.eq(any_id)),
        )
        .select(PaymentLinkRow::as_select())
        .first(conn)
        .optional()
}

/// A link's place in the list: (when we first saw it, our id).
pub type SortKey = (NaiveDateTime, String);

fn list_query<'a>(
    tenant_id: &str,
    activity: Activity,
) -> payment_links::BoxedQuery<'a, <AnyConnection as Connection>::Backend> {
    let mut query = payment_links::table
        .filter(payment_links::tenant_id.eq(tenant_id.to_owned()))
        .into_boxed();
    if let Some(active) = activity.only() {
        query = query.filter(payment_links::active.eq(active));
    }
    query
}

/// Where a list cursor stands: the key of the link `any_id` names (our id or the `plink_` id).
pub fn list_position(
    conn: &mut AnyConnection,
    tenant_id: &str,
    any_id: &str,
) -> QueryResult<Option<SortKey>> {
    find(conn, tenant_id, any_id).map(|row| row.map(|row| (row.created_at, row.id)))
}

/// One page of the tenant's payment links (active, deactivated or both), newest first, and
/// the total (the tenant's counters).
pub fn list(
    conn: &mut AnyConnection,
    tenant_id: &str,
    activity: Activity,
    start: &PageStart<SortKey>,
    limit: i64,
) -> QueryResult<Page<PaymentLinkRow>> {
    let build = || list_query(tenant_id, activity);
    let buckets = match activity {
        Activity::Active => Buckets::Only(&[counts::ACTIVE]),
        Activity::Archived => Buckets::Only(&[counts::INACTIVE]),
        Activity::All => Buckets::All,
    };
    let counted = Total::Counters(Counted {
        tenant_id,
        list: counts::List::PaymentLinks,
        buckets,
    });
    super::listing::read_page!(
        conn,
        build,
        payment_links,
        PaymentLinkRow,
        (created_at: NaiveDateTime, id),
        start,
        limit,
        counted
    )
}
