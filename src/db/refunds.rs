//! Refunds: the mirror of each tenant's Stripe refunds, and the refunded total of a payment.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::AnyConnection;
use super::customers::Visibility;
use super::schema::{payments, refunds};
use super::subscriptions::unix;
use crate::stripe::objects::{ChargeRefunded, RefundSnapshot};

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
        id: uuid::Uuid::new_v4().to_string(),
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

/// Raises a payment's refunded total to what the charge reports. The total only grows, so the
/// order in which `charge.refunded` events arrive cannot lower it: no watermark is needed.
/// Returns whether the payment changed.
pub fn raise_refunded(
    conn: &mut AnyConnection,
    tenant_id: &str,
    charge: &ChargeRefunded,
) -> QueryResult<bool> {
    let changed = super::write_statement(conn, |conn| {
        diesel::update(
            payments::table
                .filter(payments::tenant_id.eq(tenant_id))
                .filter(payments::stripe_payment_intent_id.eq(&charge.payment_intent))
                .filter(payments::amount_refunded.lt(charge.amount_refunded)),
        )
        .set(payments::amount_refunded.eq(charge.amount_refunded))
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
            let charge = ChargeRefunded {
                payment_intent: payment_intent.clone(),
                amount_refunded: total,
                refunds: Vec::new(),
            };
            raise_refunded(conn, tenant_id, &charge)?;
        }
        Ok(row)
    })
}

/// Refunds the caller may see, newest first: of one payment, or all of the tenant's (admins)
/// or of the caller's payments; with the total across pages.
pub fn list(
    conn: &mut AnyConnection,
    tenant_id: &str,
    payment_intent: Option<&str>,
    visibility: &Visibility,
    page: i64,
    per_page: i64,
) -> QueryResult<(Vec<RefundRow>, i64)> {
    let visible_payments = super::payments::visible_ids(conn, tenant_id, visibility)?;
    let build = || {
        let mut query = refunds::table
            .filter(refunds::tenant_id.eq(tenant_id.to_owned()))
            .into_boxed();
        if let Some(pi) = payment_intent {
            query = query.filter(refunds::stripe_payment_intent_id.eq(pi.to_owned()));
        }
        if let Some(ids) = &visible_payments {
            query = query.filter(refunds::stripe_payment_intent_id.eq_any(ids.clone()));
        }
        query
    };
    let total: i64 = build().count().get_result(conn)?;
    let rows = build()
        .order((refunds::stripe_created.desc(), refunds::id.desc()))
        .limit(per_page)
        .offset((page - 1) * per_page)
        .select(RefundRow::as_select())
        .load(conn)?;
    Ok((rows, total))
}

/// Refunded charges: each payment's refunded total is raised, and the refunds a charge
/// carries are written under their own watermarks (as an event's state, whatever the
/// caller's freshness). Always written.
pub fn apply_charges_refunded(
    conn: &mut AnyConnection,
    charges: &[(&str, &ChargeRefunded, i64)],
    _equal_wins: bool,
) -> QueryResult<Vec<super::Applied>> {
    for &(tenant_id, charge, at) in charges {
        raise_refunded(conn, tenant_id, charge)?;
        let refunds: Vec<_> = charge.refunds.iter().map(|r| (tenant_id, r, at)).collect();
        if !refunds.is_empty() {
            apply_refunds(conn, &refunds, false)?;
        }
    }
    Ok(vec![super::Applied::Written; charges.len()])
}
