//! Refunds: the mirror of each tenant's Stripe refunds, and the refunded total of a payment.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::AnyConnection;
use super::schema::{payments, refunds};
use super::subscriptions::unix;
use crate::mirror::{ChargeRefunded, RefundSnapshot};

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

#[derive(Debug, AsChangeset, Insertable)]
#[diesel(table_name = refunds, treat_none_as_null = true)]
struct RefundChangeset<'a> {
    stripe_payment_intent_id: Option<&'a str>,
    stripe_charge_id: Option<&'a str>,
    amount: i64,
    currency: &'a str,
    status: &'a str,
    reason: Option<&'a str>,
    metadata: &'a str,
    stripe_created: i64,
    updated_at: NaiveDateTime,
    watermark: Option<i64>,
}

fn changeset<'a>(
    r: &'a RefundSnapshot,
    metadata: &'a str,
    at: i64,
    now: NaiveDateTime,
) -> RefundChangeset<'a> {
    RefundChangeset {
        stripe_payment_intent_id: r.payment_intent.as_deref(),
        stripe_charge_id: r.charge.as_deref(),
        amount: r.amount,
        currency: &r.currency,
        status: &r.status,
        reason: r.reason.as_deref(),
        metadata,
        stripe_created: r.created,
        updated_at: now,
        watermark: Some(at),
    }
}

// A refund first seen in an event belongs to no caller (admins see it).
super::mirror_apply_fn!(
    apply_refunds, refunds, stripe_refund_id, RefundSnapshot,
    changes: changeset,
    insert(tenant, r, now) => (
        refunds::id.eq(uuid::Uuid::new_v4().to_string()),
        refunds::tenant_id.eq(tenant),
        refunds::stripe_refund_id.eq(&r.id),
        refunds::owner_subject.eq(""),
        refunds::created_at.eq(unix(Some(r.created)).unwrap_or(now)),
    ),
    [
        stripe_payment_intent_id, stripe_charge_id, amount, currency, status, reason, metadata,
        stripe_created, updated_at, watermark,
    ]
);

/// Raises a payment's refunded total to what the charge reports. The total only grows, so the
/// order in which `charge.refunded` events arrive cannot lower it: no watermark is needed.
/// Returns whether the payment changed.
pub fn raise_refunded(
    conn: &mut AnyConnection,
    tenant_id: &str,
    charge: &ChargeRefunded,
) -> QueryResult<bool> {
    let changed = diesel::update(
        payments::table
            .filter(payments::tenant_id.eq(tenant_id))
            .filter(payments::stripe_payment_intent_id.eq(&charge.payment_intent))
            .filter(payments::amount_refunded.lt(charge.amount_refunded)),
    )
    .set(payments::amount_refunded.eq(charge.amount_refunded))
    .execute(conn)?;
    Ok(changed > 0)
}

/// The refunds of a payment intent, oldest first.
pub fn for_payment(
    conn: &mut AnyConnection,
    tenant_id: &str,
    payment_intent: &str,
) -> QueryResult<Vec<RefundRow>> {
    refunds::table
        .filter(refunds::tenant_id.eq(tenant_id))
        .filter(refunds::stripe_payment_intent_id.eq(payment_intent))
        .order((refunds::stripe_created.asc(), refunds::created_at.asc()))
        .select(RefundRow::as_select())
        .load(conn)
}
