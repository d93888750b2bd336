//! What applying events writes to the mirror: one batch upsert per table, in lock order.

use diesel::result::Error as DieselError;

use super::event::Pending;
use super::target::{Target, write_all};
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
    let applied = write_all(conn, &[(0, tenant_id, target, at)], equal_wins)?;
    Ok(applied
        .first()
        .map_or(events::IGNORED, |&(_, outcome)| outcome))
}

/// Refunded charges: each payment's refunded total is raised, and the refunds a charge
/// carries are written under their own watermarks (as an event's state, whatever the
/// caller's freshness). Always written.
pub(super) fn apply_charges_refunded(
    conn: &mut AnyConnection,
    charges: &[(&str, &ChargeRefunded, i64)],
    _equal_wins: bool,
) -> Result<Vec<Applied>, DieselError> {
    for &(tenant_id, charge, at) in charges {
        db::refunds::raise_refunded(conn, tenant_id, charge)?;
        let refunds: Vec<_> = charge.refunds.iter().map(|r| (tenant_id, r, at)).collect();
        if !refunds.is_empty() {
            db::refunds::apply_refunds(conn, &refunds, false)?;
        }
    }
    Ok(vec![Applied::Written; charges.len()])
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
    let items: Vec<_> = newest
        .iter()
        .map(|&i| {
            let Pending {
                tenant_id, event, ..
            } = &batch[i];
            (i, tenant_id.as_str(), &event.target, event.created)
        })
        .collect();
    write_all(conn, &items, false)
}
