//! Subscription rows: the mirror of each tenant's Stripe subscriptions.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::PgConnection;
use diesel::prelude::*;

use super::customers::Visibility;
use super::schema::{customers, subscriptions};
use super::{AnyConnection, Applied, Freshness, write_watermarked};
use crate::gateway::subscriptions::SubscriptionSnapshot;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = subscriptions)]
pub struct SubscriptionRow {
    pub id: String,
    pub tenant_id: String,
    pub stripe_subscription_id: String,
    pub stripe_customer_id: String,
    pub status: String,
    pub current_period_start: Option<NaiveDateTime>,
    pub current_period_end: Option<NaiveDateTime>,
    pub trial_end: Option<NaiveDateTime>,
    pub cancel_at_period_end: bool,
    pub canceled_at: Option<NaiveDateTime>,
    pub price_id: Option<String>,
    pub quantity: Option<i64>,
    pub plan_amount: Option<i64>,
    pub plan_currency: Option<String>,
    pub plan_interval: Option<String>,
    pub metadata: String,
    pub stripe_created: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub watermark: Option<i64>,
}

/// Every column Stripe's state decides: inserted as is, or set over an existing row.
#[derive(Debug, AsChangeset, Insertable)]
#[diesel(table_name = subscriptions, treat_none_as_null = true)]
struct SubscriptionChangeset<'a> {
    stripe_customer_id: &'a str,
    status: &'a str,
    current_period_start: Option<NaiveDateTime>,
    current_period_end: Option<NaiveDateTime>,
    trial_end: Option<NaiveDateTime>,
    cancel_at_period_end: bool,
    canceled_at: Option<NaiveDateTime>,
    price_id: Option<&'a str>,
    quantity: Option<i64>,
    plan_amount: Option<i64>,
    plan_currency: Option<&'a str>,
    plan_interval: Option<&'a str>,
    metadata: &'a str,
    stripe_created: i64,
    updated_at: NaiveDateTime,
    watermark: Option<i64>,
}

pub fn unix(secs: Option<i64>) -> Option<NaiveDateTime> {
    secs.and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
        .map(|t| t.naive_utc())
}

fn changeset<'a>(
    snapshot: &'a SubscriptionSnapshot,
    metadata: &'a str,
    at: i64,
    now: NaiveDateTime,
) -> SubscriptionChangeset<'a> {
    SubscriptionChangeset {
        stripe_customer_id: &snapshot.customer,
        status: &snapshot.status,
        current_period_start: unix(snapshot.current_period_start),
        current_period_end: unix(snapshot.current_period_end),
        trial_end: unix(snapshot.trial_end),
        cancel_at_period_end: snapshot.cancel_at_period_end,
        canceled_at: unix(snapshot.canceled_at),
        price_id: snapshot.price_id.as_deref(),
        quantity: snapshot.quantity,
        plan_amount: snapshot.plan_amount,
        plan_currency: snapshot.plan_currency.as_deref(),
        plan_interval: snapshot.plan_interval.as_deref(),
        metadata,
        stripe_created: snapshot.created,
        updated_at: now,
        watermark: Some(at),
    }
}

/// The state an event created at `at` carries, under the watermark rule; the receiver's
/// path, which needs the outcome and not the row (one statement on PostgreSQL).
pub fn apply_event(
    conn: &mut AnyConnection,
    tenant_id: &str,
    snapshot: &SubscriptionSnapshot,
    at: i64,
) -> QueryResult<Applied<()>> {
    let AnyConnection::Postgresql(pg) = conn else {
        return upsert(conn, tenant_id, snapshot, Freshness::Event(at)).map(Applied::forget);
    };
    let now = Utc::now().naive_utc();
    let metadata = super::stored_metadata(&snapshot.metadata);
    let changes = changeset(snapshot, &metadata, at, now);
    super::pg_upsert_if_newer!(
        pg,
        subscriptions,
        (tenant_id, stripe_subscription_id),
        subscriptions::tenant_id
            .eq(tenant_id)
            .and(subscriptions::stripe_subscription_id.eq(&snapshot.id)),
        (
            subscriptions::id.eq(uuid::Uuid::new_v4().to_string()),
            subscriptions::tenant_id.eq(tenant_id),
            subscriptions::stripe_subscription_id.eq(&snapshot.id),
            subscriptions::created_at.eq(now),
            &changes,
        ),
        &changes,
        at
    )
}

/// Several events' states at once on PostgreSQL (the receiver's group commit): each object at
/// most once, in key order, as (tenant id, state, created). Returns each one's outcome.
pub fn apply_events_pg(
    pg: &mut PgConnection,
    items: &[(&str, &SubscriptionSnapshot, i64)],
) -> QueryResult<Vec<Applied<()>>> {
    let now = Utc::now().naive_utc();
    let metadata: Vec<String> = items
        .iter()
        .map(|(_, s, _)| super::stored_metadata(&s.metadata))
        .collect();
    let rows: Vec<_> = items
        .iter()
        .zip(&metadata)
        .map(|((tenant, s, at), metadata)| {
            (
                subscriptions::id.eq(uuid::Uuid::new_v4().to_string()),
                subscriptions::tenant_id.eq(*tenant),
                subscriptions::stripe_subscription_id.eq(&s.id),
                subscriptions::created_at.eq(now),
                changeset(s, metadata, *at, now),
            )
        })
        .collect();
    let keys: Vec<(&str, &str, i64)> = items
        .iter()
        .map(|(tenant, s, at)| (*tenant, s.id.as_str(), *at))
        .collect();
    super::pg_upsert_batch_if_newer!(
        pg,
        subscriptions,
        stripe_subscription_id,
        &keys,
        rows,
        [
            stripe_customer_id,
            status,
            current_period_start,
            current_period_end,
            trial_end,
            cancel_at_period_end,
            canceled_at,
            price_id,
            quantity,
            plan_amount,
            plan_currency,
            plan_interval,
            metadata,
            stripe_created,
            updated_at,
            watermark,
        ]
    )
}

/// Writes a Stripe state of a subscription into the mirror, in one transaction, following
/// the watermark rule (`write_watermarked`). The plan item's fields live on the same row, so
/// they can never be newer or older than the subscription itself.
pub fn upsert(
    conn: &mut AnyConnection,
    tenant_id: &str,
    snapshot: &SubscriptionSnapshot,
    freshness: Freshness,
) -> QueryResult<Applied<SubscriptionRow>> {
    super::retry_on_unique_violation(|| {
        super::write_transaction(conn, |conn| {
            let now = Utc::now().naive_utc();
            let metadata = super::stored_metadata(&snapshot.metadata);
            let changes = changeset(snapshot, &metadata, freshness.at(), now);
            let existing = find_by_stripe_id(conn, tenant_id, &snapshot.id)?
                .map(|row| (row.id, row.watermark));
            write_watermarked(
                conn,
                existing,
                freshness,
                super::update_if_newer!(subscriptions, &changes),
                |conn| {
                    let id = uuid::Uuid::new_v4().to_string();
                    diesel::insert_into(subscriptions::table)
                        .values((
                            subscriptions::id.eq(&id),
                            subscriptions::tenant_id.eq(tenant_id),
                            subscriptions::stripe_subscription_id.eq(&snapshot.id),
                            subscriptions::created_at.eq(now),
                            &changes,
                        ))
                        .execute(conn)?;
                    Ok(id)
                },
                super::load_with_watermark!(subscriptions, SubscriptionRow),
            )
        })
    })
}

pub fn find_by_stripe_id(
    conn: &mut AnyConnection,
    tenant_id: &str,
    stripe_id: &str,
) -> QueryResult<Option<SubscriptionRow>> {
    subscriptions::table
        .filter(subscriptions::tenant_id.eq(tenant_id))
        .filter(subscriptions::stripe_subscription_id.eq(stripe_id))
        .select(SubscriptionRow::as_select())
        .first(conn)
        .optional()
}

/// The caller's subscription by our unique id or the `sub_` id.
pub fn find_visible(
    conn: &mut AnyConnection,
    tenant_id: &str,
    any_id: &str,
    visibility: &Visibility,
) -> QueryResult<Option<SubscriptionRow>> {
    let mut query = subscriptions::table
        .filter(subscriptions::tenant_id.eq(tenant_id))
        .filter(
            subscriptions::stripe_subscription_id
                .eq(any_id)
                .or(subscriptions::id.eq(any_id)),
        )
        .into_boxed();
    if let Visibility::Subject(subject) = visibility {
        let visible = visible_customer_ids(conn, tenant_id, subject)?;
        query = query.filter(subscriptions::stripe_customer_id.eq_any(visible));
    }
    query
        .select(SubscriptionRow::as_select())
        .first(conn)
        .optional()
}

/// The `cus_` ids a non-admin caller may see: customers they created or that stand for them.
fn visible_customer_ids(
    conn: &mut AnyConnection,
    tenant_id: &str,
    subject: &str,
) -> QueryResult<Vec<String>> {
    customers::table
        .filter(customers::tenant_id.eq(tenant_id))
        .filter(
            customers::owner_subject
                .eq(subject)
                .or(customers::user_unique_id.eq(subject)),
        )
        .select(customers::stripe_customer_id)
        .load(conn)
}

#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub stripe_customer_id: Option<String>,
    pub status: Option<String>,
}

/// One page, newest first, and the total across pages.
pub fn list(
    conn: &mut AnyConnection,
    tenant_id: &str,
    visibility: &Visibility,
    filter: &ListFilter,
    page: i64,
    per_page: i64,
) -> QueryResult<(Vec<SubscriptionRow>, i64)> {
    let visible = match visibility {
        Visibility::All => None,
        Visibility::Subject(subject) => Some(visible_customer_ids(conn, tenant_id, subject)?),
    };
    let build = || {
        let mut query = subscriptions::table
            .filter(subscriptions::tenant_id.eq(tenant_id.to_owned()))
            .into_boxed();
        if let Some(visible) = &visible {
            query = query.filter(subscriptions::stripe_customer_id.eq_any(visible.clone()));
        }
        if let Some(customer) = &filter.stripe_customer_id {
            query = query.filter(subscriptions::stripe_customer_id.eq(customer.clone()));
        }
        if let Some(status) = &filter.status {
            query = query.filter(subscriptions::status.eq(status.clone()));
        }
        query
    };
    let total: i64 = build().count().get_result(conn)?;
    let rows = build()
        .order((
            subscriptions::stripe_created.desc(),
            subscriptions::created_at.desc(),
            subscriptions::id.desc(),
        ))
        .limit(per_page)
        .offset((page - 1) * per_page)
        .select(SubscriptionRow::as_select())
        .load(conn)?;
    Ok((rows, total))
}
