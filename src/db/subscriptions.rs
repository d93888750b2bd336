//! Subscription rows: the mirror of each tenant's Stripe subscriptions.

use chrono::{DateTime, NaiveDateTime, Utc};
use std::collections::BTreeMap;

use diesel::prelude::*;

use super::counts::{self, Buckets};
use super::customers::Visibility;
use super::listing::{Counted, Page, PageStart, Total};
use super::schema::{subscription_items, subscriptions};
use super::{AnyConnection, Applied, Rule};
use crate::stripe::objects::SubscriptionSnapshot;

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

pub fn unix(secs: Option<i64>) -> Option<NaiveDateTime> {
    secs.and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
        .map(|t| t.naive_utc())
}

super::mirror_table! {
    pub fn apply_rows(subscriptions by stripe_subscription_id, s: SubscriptionSnapshot);
    insert(tenant, now) {
        id: super::new_row_id(),
        tenant_id: tenant,
        stripe_subscription_id: &s.id,
        created_at: now,
    }
    state SubscriptionChangeset<'a> {
        stripe_customer_id: &'a str = &s.customer,
        status: &'a str = &s.status,
        current_period_start: Option<NaiveDateTime> = unix(s.current_period_start),
        current_period_end: Option<NaiveDateTime> = unix(s.current_period_end),
        trial_end: Option<NaiveDateTime> = unix(s.trial_end),
        cancel_at_period_end: bool = s.cancel_at_period_end,
        canceled_at: Option<NaiveDateTime> = unix(s.canceled_at),
        price_id: Option<&'a str> = s.price_id.as_deref(),
        quantity: Option<i64> = s.quantity,
        plan_amount: Option<i64> = s.plan_amount,
        plan_currency: Option<&'a str> = s.plan_currency.as_deref(),
        plan_interval: Option<&'a str> = s.plan_interval.as_deref(),
        stripe_created: i64 = s.created,
    }
}

/// Writes subscription states (watermark rule; `Rule::NewerOrEqual` for a state read from Stripe
/// just now) and, for each one written, replaces its items: items follow their parent.
pub fn apply_subscriptions(
    conn: &mut AnyConnection,
    items: &[(&str, &SubscriptionSnapshot, i64)],
    rule: Rule,
) -> QueryResult<Vec<Applied>> {
    let outcomes = apply_rows(conn, items, rule)?;
    let mut written: BTreeMap<&str, Vec<&SubscriptionSnapshot>> = BTreeMap::new();
    for ((tenant, subscription, _), outcome) in items.iter().zip(&outcomes) {
        if *outcome == Applied::Written {
            written.entry(tenant).or_default().push(subscription);
        }
    }
    for (tenant_id, subscriptions) in written {
        replace_items(conn, tenant_id, &subscriptions, rule)?;
    }
    Ok(outcomes)
}

#[derive(Debug, Insertable, serde::Serialize)]
#[diesel(table_name = subscription_items)]
struct NewItem<'a> {
    id: String,
    tenant_id: &'a str,
    stripe_subscription_id: &'a str,
    position: i64,
    stripe_item_id: &'a str,
    price_id: Option<&'a str>,
    quantity: Option<i64>,
}

/// Replaces the items of subscriptions whose state was just written, when the state carries
/// all of them (an event's list cut at 10 leaves the stored items as they are).
fn replace_items(
    conn: &mut AnyConnection,
    tenant_id: &str,
    subscriptions: &[&SubscriptionSnapshot],
    rule: Rule,
) -> QueryResult<()> {
    let subscriptions: Vec<&SubscriptionSnapshot> = subscriptions
        .iter()
        .copied()
        .filter(|s| s.items_complete)
        .collect();
    if subscriptions.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = subscriptions.iter().map(|s| s.id.as_str()).collect();
    let rows: Vec<NewItem<'_>> = subscriptions
        .iter()
        .flat_map(|s| {
            s.items.iter().zip(0..).map(|(item, position)| NewItem {
                id: super::new_row_id(),
                tenant_id,
                stripe_subscription_id: &s.id,
                position,
                stripe_item_id: &item.id,
                price_id: item.price_id.as_deref(),
                quantity: item.quantity,
            })
        })
        .collect();
    super::replace_children!(
        conn,
        subscription_items,
        stripe_subscription_id,
        tenant_id,
        &ids,
        rows,
        rule
    )
}

/// The `sub_` ids of a customer's mirrored subscriptions that are not over yet (neither
/// `canceled` nor `incomplete_expired`).
pub fn not_over_of_customer(
    conn: &mut AnyConnection,
    tenant_id: &str,
    stripe_customer_id: &str,
) -> QueryResult<Vec<String>> {
    subscriptions::table
        .filter(subscriptions::tenant_id.eq(tenant_id))
        .filter(subscriptions::stripe_customer_id.eq(stripe_customer_id))
        .filter(subscriptions::status.ne_all(["canceled", "incomplete_expired"]))
        .select(subscriptions::stripe_subscription_id)
        .load(conn)
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
        let visible = super::customers::owned_customer_ids(conn, tenant_id, subject)?;
        query = query.filter(subscriptions::stripe_customer_id.eq_any(visible));
    }
    query
        .select(SubscriptionRow::as_select())
        .first(conn)
        .optional()
}

#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub stripe_customer_id: Option<String>,
    pub status: Option<String>,
}

/// A subscription's place in the list: (Stripe's `created`, ours, our id).
pub type SortKey = (i64, NaiveDateTime, String);

/// Where a list cursor stands: the key of the subscription `any_id` names (our id or the
/// `sub_` id) among those the caller sees.
pub fn list_position(
    conn: &mut AnyConnection,
    tenant_id: &str,
    any_id: &str,
    visibility: &Visibility,
) -> QueryResult<Option<SortKey>> {
    Ok(find_visible(conn, tenant_id, any_id, visibility)?
        .map(|row| (row.stripe_created, row.created_at, row.id)))
}

/// One page of the subscriptions the caller sees, newest first, and the total across pages:
/// read from the tenant's counters unless the list is narrowed to some customers (then
/// counted over those customers' rows, beside a shallow page's rows).
pub fn list(
    conn: &mut AnyConnection,
    tenant_id: &str,
    visibility: &Visibility,
    filter: &ListFilter,
    start: &PageStart<SortKey>,
    limit: i64,
) -> QueryResult<Page<SubscriptionRow>> {
    let visible = match visibility {
        Visibility::All => None,
        Visibility::Subject(subject) => Some(super::customers::owned_customer_ids(
            conn, tenant_id, subject,
        )?),
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
    let one = filter.status.as_deref().map(|status| [status]);
    let counted = match (&visible, &filter.stripe_customer_id) {
        (None, None) => Total::Counters(Counted {
            tenant_id,
            list: counts::List::Subscriptions,
            buckets: one.as_ref().map_or(Buckets::All, |one| Buckets::Only(one)),
        }),
        // A non-admin's customers, or one customer.
        _ => Total::Narrow,
    };
    super::listing::read_page!(
        conn,
        build,
        subscriptions,
        SubscriptionRow,
        (stripe_created: i64, created_at, id),
        start,
        limit,
        counted
    )
}

super::mirror_record_fn!(
    record,
    apply_subscriptions,
    subscriptions,
    stripe_subscription_id,
    SubscriptionSnapshot,
    SubscriptionRow
);
