//! What applying events writes to the mirror: one batch upsert per table, in lock order.

use diesel::result::Error as DieselError;

use super::event::Pending;
use super::target::{Target, write_all};
use crate::db::events;
use crate::db::{AnyConnection, Freshness};

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
