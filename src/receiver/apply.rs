//! What applying events writes to the mirror: one batch upsert per table, in lock order.

use diesel::result::Error as DieselError;
use serde_json::Value;

use super::event::Pending;
use super::target::{Target, target_of, write_all};
use crate::db::events;
use crate::db::{self, AnyConnection, Freshness};

/// Writes the target's state with the given freshness; returns the event outcome.
pub(super) fn apply(
    conn: &mut AnyConnection,
    tenant_id: &str,
    target: &Target,
    freshness: Freshness,
) -> Result<&'static str, DieselError> {
    let (at, rule) = freshness.parts();
    let applied = write_all(conn, &[(0, tenant_id, target, at)], rule)?;
    Ok(applied
        .first()
        .map_or(events::IGNORED, |&(_, outcome)| outcome))
}

/// Mirrors an object Stripe just answered a call with (`POST /stripe/fetch`) through the
/// receiver's own path: read by its `object` type as its `*.updated` event would carry it (an
/// answer marked `deleted` as `*.deleted`), and written as Stripe's current state at `now`
/// under the watermark rule, as the services' own writes are. Returns whether the object is
/// of a mirrored type (anything else, a list included, is left alone).
pub fn record_answer(
    conn: &mut AnyConnection,
    tenant_id: &str,
    object: &Value,
    now: i64,
) -> Result<bool, DieselError> {
    let Some(kind) = object.get("object").and_then(Value::as_str) else {
        return Ok(false);
    };
    let family = match kind {
        // Stripe's subscription events are `customer.subscription.*`.
        "subscription" => "customer.subscription",
        other => other,
    };
    let deleted = object.get("deleted").and_then(Value::as_bool) == Some(true);
    let event_type = format!("{family}.{}", if deleted { "deleted" } else { "updated" });
    let target = target_of(&event_type, object);
    if matches!(target, Target::Nothing) {
        return Ok(false);
    }
    db::write_transaction(conn, |conn| {
        apply(conn, tenant_id, &target, Freshness::Current(now))
    })?;
    Ok(true)
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
    write_all(conn, &items, db::Rule::Newer)
}
