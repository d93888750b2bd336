//! Refunds: the mirror of each tenant's Stripe refunds, and the refunded total of a payment.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::AnyConnection;
use super::counts::{self, Buckets};
use super::customers::Visibility;
use super::listing::{Counted, Page, PageStart, Total};
use super::schema::{payments, refunds};
use super::subscriptions::unix;
use crate::stripe::objects::RefundSnapshot;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = refunds)]
pub struct RefundRow {
    pub id: String,
    pub tenant_id: String,
    pub stripe_refund_id: String,
    pub stripe_payment_intent_id: Option<String>,
    pub stripe_charge_id: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub reason: Option<String>,
    pub metadata: String,
    pub owner_subject: String,
    pub stripe_created: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub watermark: Option<i64>,
}

// A refund first seen in an event belongs to no caller (admins see it).
super::mirror_table! {
    pub fn apply_refunds(refunds by stripe_refund_id, s: RefundSnapshot);
    insert(tenant, now) {
        id: super::new_row_id(),
        tenant_id: tenant,
        stripe_refund_id: &s.id,
        owner_subject: "",
        created_at: unix(Some(s.created)).unwrap_or(now),
    }
    state RefundChangeset<'a> {
        stripe_payment_intent_id: Option<&'a str> = s.payment_intent.as_deref(),
        stripe_charge_id: Option<&'a str> = s.charge.as_deref(),
        amount: i64 = s.amount,
        currency: &'a str = &s.currency,
        status: &'a str = &s.status,
        reason: Option<&'a str> = s.reason.as_deref(),
        stripe_created: i64 = s.created,
    }
}

/// Raises a payment's refunded total to what its charge reports. The total only grows, so the
/// order in which charge events arrive cannot lower it: no watermark is needed. Returns
/// whether the payment changed.
pub fn raise_refunded(
    conn: &mut AnyConnection,
    tenant_id: &str,
    payment_intent: &str,
    amount_refunded: i64,
) -> QueryResult<bool> {
    let changed = super::write_statement(conn, |conn| {
        diesel::update(
            payments::table
                .filter(payments::tenant_id.eq(tenant_id))
                .filter(payments::stripe_payment_intent_id.eq(payment_intent))
                .filter(payments::amount_refunded.lt(amount_refunded)),
        )
        .set(payments::amount_refunded.eq(amount_refunded))
        .execute(conn)
    })?;
    Ok(changed > 0)
}

super::mirror_record_fn!(
    record_state, apply_refunds, refunds, stripe_refund_id, RefundSnapshot, RefundRow,
    owner: owner
);

/// Records a refund we just made at Stripe (owned by `owner`) and raises the payment's
/// refunded total to the sum of its refunds that have not failed. Returns the refund row.
pub fn record(
    conn: &mut AnyConnection,
    tenant_id: &str,
    owner: &str,
    refund: &RefundSnapshot,
    now: i64,
) -> QueryResult<RefundRow> {
    super::write_transaction(conn, |conn| {
        let row = record_state(conn, tenant_id, owner, refund, now)?;
        if let Some(payment_intent) = &refund.payment_intent {
            let amounts: Vec<(i64, String)> = refunds::table
                .filter(refunds::tenant_id.eq(tenant_id))
                .filter(refunds::stripe_payment_intent_id.eq(payment_intent))
                .select((refunds::amount, refunds::status))
                .load(conn)?;
            let total = amounts
                .iter()
                .filter(|(_, status)| status != "failed" && status != "canceled")
                .map(|(amount, _)| amount)
                .sum();
            raise_refunded(conn, tenant_id, payment_intent, total)?;
        }
        Ok(row)
    })
}

/// A refund's place in the list: (Stripe's `created`, our id).
pub type SortKey = (i64, String);

/// The refunds the caller sees, narrowed to one payment intent when given.
fn visible_query<'a>(
    tenant_id: &str,
    payment_intent: Option<&str>,
    visible_payments: &Option<Vec<String>>,
) -> refunds::BoxedQuery<'a, <AnyConnection as Connection>::Backend> {
    let mut query = refunds::table
        .filter(refunds::tenant_id.eq(tenant_id.to_owned()))
        .into_boxed();
    if let Some(pi) = payment_intent {
        query = query.filter(refunds::stripe_payment_intent_id.eq(pi.to_owned()));
    }
    if let Some(ids) = visible_payments {
        query = query.filter(refunds::stripe_payment_intent_id.eq_any(ids.clone()));
    }
    query
}

/// Where a list cursor stands: the key of the refund `any_id` names (our id or the `re_` id)
/// among those the caller sees.
pub fn list_position(
    conn: &mut AnyConnection,
    tenant_id: &str,
    any_id: &str,
    visibility: &Visibility,
) -> QueryResult<Option<SortKey>> {
    let visible_payments = super::payments::visible_ids(conn, tenant_id, visibility)?;
    visible_query(tenant_id, None, &visible_payments)
        .filter(
            refunds::id
                .eq(any_id.to_owned())
                .or(refunds::stripe_refund_id.eq(any_id.to_owned())),
        )
        .select((refunds::stripe_created, refunds::id))
        .first(conn)
        .optional()
}

/// One page of the refunds the caller sees (of one payment intent when given), newest first,
/// and the total across pages (admins' whole list: the tenant's counter).
pub fn list(
    conn: &mut AnyConnection,
    tenant_id: &str,
    payment_intent: Option<&str>,
    visibility: &Visibility,
    start: &PageStart<SortKey>,
    limit: i64,
) -> QueryResult<Page<RefundRow>> {
    let visible_payments = super::payments::visible_ids(conn, tenant_id, visibility)?;
    let build = || visible_query(tenant_id, payment_intent, &visible_payments);
    let counted = match (&visible_payments, payment_intent) {
        (None, None) => Total::Counters(Counted {
            tenant_id,
            list: counts::List::Refunds,
            buckets: Buckets::All,
        }),
        // A non-admin's payments, or one payment.
        _ => Total::Narrow,
    };
    super::listing::read_page!(
        conn,
        build,
        refunds,
        RefundRow,
        (stripe_created: i64, id),
        start,
        limit,
        counted
    )
}
