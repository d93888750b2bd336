//! What applying events writes to the mirror: one batch upsert per table, in lock order.

use diesel::result::Error as DieselError;

use super::event::Pending;
use super::target::Target;
use crate::db::events;
use crate::db::{self, AnyConnection, Applied, Freshness};
use crate::stripe::objects::ChargeRefunded;

/// Writes the target's state with the given freshness; returns the event outcome.
pub(super) fn apply(
    conn: &mut AnyConnection,
    tenant_id: &str,
    target: &Target,
    freshness: Freshness,
) -> Result<&'static str, DieselError> {
    let (at, equal_wins) = freshness.parts();
    let applied = apply_all(conn, [(0, tenant_id, target, at)], equal_wins)?;
    Ok(applied
        .first()
        .map_or(events::IGNORED, |&(_, outcome)| outcome))
}

/// A refunded charge: the payment's refunded total is raised, and the refunds the charge
/// carries are written under their own watermarks.
fn apply_charge_refunded(
    conn: &mut AnyConnection,
    tenant_id: &str,
    charge: &ChargeRefunded,
    at: i64,
) -> Result<(), DieselError> {
    db::refunds::raise_refunded(conn, tenant_id, charge)?;
    let refunds: Vec<_> = charge.refunds.iter().map(|r| (tenant_id, r, at)).collect();
    if !refunds.is_empty() {
        db::refunds::apply_refunds(conn, &refunds, false)?;
    }
    Ok(())
}

pub(super) fn outcome(applied: Applied) -> &'static str {
    match applied {
        Applied::Written => events::APPLIED,
        Applied::Stale => events::STALE,
        Applied::Tie => events::REFRESH_PENDING,
    }
}

/// The mirror writes of a batch: one call per table (one statement on PostgreSQL) with its
/// objects in key order (`newest` holds each object at most once), tables in `lock_key`
/// order. Returns each event's outcome.
pub(super) fn apply_batch(
    conn: &mut AnyConnection,
    batch: &[Pending],
    newest: &[usize],
) -> Result<Vec<(usize, &'static str)>, DieselError> {
    let items = newest.iter().map(|&i| {
        let Pending {
            tenant_id, event, ..
        } = &batch[i];
        (i, tenant_id.as_str(), &event.target, event.created)
    });
    apply_all(conn, items, false)
}

/// Writes `(index, tenant, target, watermark)` items, grouped by table: one upsert per table,
/// tables in `lock_key` order, objects in the order given. `equal_wins`: a state of the
/// row's own second replaces it (a state just read from Stripe). Returns each item's outcome.
fn apply_all<'a>(
    conn: &mut AnyConnection,
    items: impl IntoIterator<Item = (usize, &'a str, &'a Target, i64)>,
    equal_wins: bool,
) -> Result<Vec<(usize, &'static str)>, DieselError> {
    let mut applied = Vec::new();
    let (mut customers, mut products, mut prices, mut subscriptions, mut invoices) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut payments, mut charges, mut refunds, mut sessions, mut methods) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, tenant, target, at) in items {
        match target {
            Target::Customer(c) => customers.push((i, (tenant, c, at))),
            Target::Product(p) => products.push((i, (tenant, p, at))),
            Target::Price(p) => prices.push((i, (tenant, p, at))),
            Target::Subscription(s) => subscriptions.push((i, (tenant, s, at))),
            Target::Invoice(v) => invoices.push((i, (tenant, v, at))),
            Target::Payment(p) => payments.push((i, (tenant, p, at))),
            Target::ChargeRefunded(c) => charges.push((i, (tenant, c, at))),
            Target::Refund(r) => refunds.push((i, (tenant, r, at))),
            Target::Checkout(c) => sessions.push((i, (tenant, c, at))),
            Target::PaymentMethod(m) => methods.push((i, (tenant, m, at))),
            Target::Nothing => applied.push((i, events::IGNORED)),
        }
    }
    use db::{catalog, checkout_sessions, customers as cus, invoices as inv};
    settle(&mut applied, &customers, |x| {
        cus::apply_customers(conn, x, equal_wins)
    })?;
    settle(&mut applied, &products, |x| {
        catalog::apply_products(conn, x, equal_wins)
    })?;
    settle(&mut applied, &prices, |x| {
        catalog::apply_prices(conn, x, equal_wins)
    })?;
    settle(&mut applied, &subscriptions, |x| {
        db::subscriptions::apply_subscriptions(conn, x, equal_wins)
    })?;
    settle(&mut applied, &invoices, |x| {
        inv::apply_invoices(conn, x, equal_wins)
    })?;
    settle(&mut applied, &payments, |x| {
        db::payments::apply_payments(conn, x, equal_wins)
    })?;
    for (i, (tenant, charge, at)) in charges {
        apply_charge_refunded(conn, tenant, charge, at)?;
        applied.push((i, events::APPLIED));
    }
    settle(&mut applied, &refunds, |x| {
        db::refunds::apply_refunds(conn, x, equal_wins)
    })?;
    settle(&mut applied, &sessions, |x| {
        checkout_sessions::apply_sessions(conn, x, equal_wins)
    })?;
    settle(&mut applied, &methods, |x| {
        db::payment_methods::apply_payment_methods(conn, x, equal_wins)
    })?;
    Ok(applied)
}

/// Runs one table's batch upsert (if it has rows) and records each event's outcome.
fn settle<T: Copy>(
    applied: &mut Vec<(usize, &'static str)>,
    rows: &[(usize, T)],
    upsert: impl FnOnce(&[T]) -> Result<Vec<Applied>, DieselError>,
) -> Result<(), DieselError> {
    if rows.is_empty() {
        return Ok(());
    }
    let items: Vec<T> = rows.iter().map(|(_, item)| *item).collect();
    let outcomes = upsert(&items)?;
    applied.extend(
        rows.iter()
            .map(|(i, _)| *i)
            .zip(outcomes.into_iter().map(outcome)),
    );
    Ok(())
}
