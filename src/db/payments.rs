//! Payment rows: the mirror of the payment intents each tenant created.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::AnyConnection;
use super::counts::{self, Buckets};
use super::customers::Visibility;
use super::listing::{Counted, Page, PageStart, Total};
use super::schema::{customers, payments};
use super::subscriptions::unix;
use crate::stripe::objects::PaymentSnapshot;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = payments)]
pub struct PaymentRow {
    pub id: String,
    pub tenant_id: String,
    pub stripe_payment_intent_id: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub stripe_customer_id: Option<String>,
    pub payment_method: Option<String>,
    pub description: Option<String>,
    pub metadata: String,
    pub owner_subject: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub watermark: Option<i64>,
    /// Refunded so far (charge.refunded raises it).
    pub amount_refunded: i64,
}

// A payment first seen in an event belongs to no caller (admins see it).
super::mirror_table! {
    pub fn apply_payments(payments by stripe_payment_intent_id, s: PaymentSnapshot);
    insert(tenant, now) {
        id: super::new_row_id(),
        tenant_id: tenant,
        stripe_payment_intent_id: &s.id,
        owner_subject: "",
        created_at: unix(Some(s.created)).unwrap_or(now),
    }
    state PaymentChangeset<'a> {
        amount: i64 = s.amount,
        currency: &'a str = &s.currency,
        status: &'a str = &s.status,
        stripe_customer_id: Option<&'a str> = s.customer.as_deref(),
        payment_method: Option<&'a str> = s.payment_method.as_deref(),
        description: Option<&'a str> = s.description.as_deref(),
    }
}

type BoxedPayments<'a> = payments::BoxedQuery<'a, <AnyConnection as Connection>::Backend>;

/// Narrows a query to the payments the caller sees: admins all of the tenant's; others those
/// they created and those of the customers they see.
fn visible_to<'a>(
    query: BoxedPayments<'a>,
    tenant_id: &str,
    visibility: &Visibility,
) -> BoxedPayments<'a> {
    let Visibility::Subject(subject) = visibility else {
        return query;
    };
    let their_customers = customers::table
        .filter(customers::tenant_id.eq(tenant_id.to_owned()))
        .filter(super::customers::owned_by(subject.clone()))
        .select(customers::stripe_customer_id.nullable());
    query.filter(
        payments::owner_subject
            .eq(subject.clone())
            .or(payments::stripe_customer_id.eq_any(their_customers)),
    )
}

/// The `pi_` ids of the payments the caller sees (`None`: all of the tenant's).
pub(crate) fn visible_ids(
    conn: &mut AnyConnection,
    tenant_id: &str,
    visibility: &Visibility,
) -> QueryResult<Option<Vec<String>>> {
    if matches!(visibility, Visibility::All) {
        return Ok(None);
    }
    let query = payments::table
        .filter(payments::tenant_id.eq(tenant_id.to_owned()))
        .into_boxed();
    visible_to(query, tenant_id, visibility)
        .select(payments::stripe_payment_intent_id)
        .load(conn)
        .map(Some)
}

/// The caller's payment by our unique id or the `pi_` id.
pub fn find_visible(
    conn: &mut AnyConnection,
    tenant_id: &str,
    any_id: &str,
    visibility: &Visibility,
) -> QueryResult<Option<PaymentRow>> {
    let query = payments::table
        .filter(payments::tenant_id.eq(tenant_id.to_owned()))
        .filter(
            payments::id
                .eq(any_id.to_owned())
                .or(payments::stripe_payment_intent_id.eq(any_id.to_owned())),
        )
        .into_boxed();
    visible_to(query, tenant_id, visibility)
        .select(PaymentRow::as_select())
        .first(conn)
        .optional()
}

/// What a payment list keeps; every filter given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentFilter {
    /// Any of these statuses.
    pub statuses: Option<Vec<String>>,
    pub currency: Option<String>,
    pub min_amount: Option<i64>,
    pub max_amount: Option<i64>,
    pub stripe_customer_id: Option<String>,
    /// Created at or after.
    pub since: Option<NaiveDateTime>,
    /// Created before.
    pub until: Option<NaiveDateTime>,
}

/// A payment's place in the list: (Stripe's `created`, our id).
pub type SortKey = (NaiveDateTime, String);

/// Where a list cursor stands: the key of the payment `any_id` names (our id or the `pi_` id)
/// among those the caller sees.
pub fn list_position(
    conn: &mut AnyConnection,
    tenant_id: &str,
    any_id: &str,
    visibility: &Visibility,
) -> QueryResult<Option<SortKey>> {
    Ok(find_visible(conn, tenant_id, any_id, visibility)?.map(|row| (row.created_at, row.id)))
}

/// One page of the payments the caller sees, newest first (by Stripe's `created`), and the
/// total across pages: the tenant's counters when only statuses narrow the list; counted
/// beside a shallow page's rows when it is narrowed to some customers; else counted over the
/// narrowest index.
pub fn list(
    conn: &mut AnyConnection,
    tenant_id: &str,
    visibility: &Visibility,
    filter: &PaymentFilter,
    start: &PageStart<SortKey>,
    limit: i64,
) -> QueryResult<Page<PaymentRow>> {
    let build = || {
        let mut query = payments::table
            .filter(payments::tenant_id.eq(tenant_id.to_owned()))
            .into_boxed();
        if let Some(statuses) = &filter.statuses {
            query = query.filter(payments::status.eq_any(statuses.clone()));
        }
        if let Some(currency) = &filter.currency {
            query = query.filter(payments::currency.eq(currency.clone()));
        }
        if let Some(min) = filter.min_amount {
            query = query.filter(payments::amount.ge(min));
        }
        if let Some(max) = filter.max_amount {
            query = query.filter(payments::amount.le(max));
        }
        if let Some(customer) = &filter.stripe_customer_id {
            query = query.filter(payments::stripe_customer_id.eq(customer.clone()));
        }
        if let Some(since) = filter.since {
            query = query.filter(payments::created_at.ge(since));
        }
        if let Some(until) = filter.until {
            query = query.filter(payments::created_at.lt(until));
        }
        visible_to(query, tenant_id, visibility)
    };
    let only_statuses = PaymentFilter {
        statuses: None,
        ..filter.clone()
    } == PaymentFilter::default();
    let statuses: Option<Vec<&str>> = filter
        .statuses
        .as_ref()
        .map(|s| s.iter().map(String::as_str).collect());
    let counted = match visibility {
        Visibility::All if only_statuses => Total::Counters(Counted {
            tenant_id,
            list: counts::List::Payments,
            buckets: statuses.as_deref().map_or(Buckets::All, Buckets::Only),
        }),
        Visibility::All if filter.stripe_customer_id.is_none() => Total::Count,
        // A non-admin's customers, or one customer.
        _ => Total::Narrow,
    };
    super::listing::read_page!(
        conn,
        build,
        payments,
        PaymentRow,
        (created_at: NaiveDateTime, id),
        start,
        limit,
        counted
    )
}

super::mirror_record_fn!(
    record, apply_payments, payments, stripe_payment_intent_id, PaymentSnapshot, PaymentRow,
    owner: owner
);
