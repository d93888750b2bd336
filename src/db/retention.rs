//! Keeping the log tables bounded: batched deletes (and payload clearing) of old rows, each
//! batch its own short write, so the receiver's path is never held for long.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::AnyConnection;
use super::events::REFRESH_PENDING;
use super::notifications::{DELIVERED, FAILED};
use super::schema::{notification_attempts, notification_outbox, stripe_events};

/// Rows one batch touches.
pub const BATCH: i64 = 500;

/// Clears the stored payload of up to [`BATCH`] events received before `before` (the event
/// row stays: it keeps deduplicating redeliveries). An event still waiting for a refresh is
/// kept whole. Returns how many were cleared.
pub fn clear_event_payloads(conn: &mut AnyConnection, before: NaiveDateTime) -> QueryResult<usize> {
    let ids: Vec<String> = stripe_events::table
        .filter(stripe_events::received_at.lt(before))
        .filter(stripe_events::payload.ne(""))
        .filter(stripe_events::outcome.ne(REFRESH_PENDING))
        .select(stripe_events::id)
        .limit(BATCH)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    super::write_statement(conn, |conn| {
        diesel::update(stripe_events::table.filter(stripe_events::id.eq_any(&ids)))
            .set(stripe_events::payload.eq(""))
            .execute(conn)
    })
}

/// Deletes up to [`BATCH`] events received before `before` (but those still waiting for a
/// refresh). Returns how many.
pub fn delete_events(conn: &mut AnyConnection, before: NaiveDateTime) -> QueryResult<usize> {
    let ids: Vec<String> = stripe_events::table
        .filter(stripe_events::received_at.lt(before))
        .filter(stripe_events::outcome.ne(REFRESH_PENDING))
        .select(stripe_events::id)
        .limit(BATCH)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    super::write_statement(conn, |conn| {
        diesel::delete(stripe_events::table.filter(stripe_events::id.eq_any(&ids))).execute(conn)
    })
}

/// Deletes up to [`BATCH`] notifications that are done (delivered, or failed for good) and
/// were created before `before`, with their attempts. Pending ones stay whatever their age.
/// Returns how many notifications.
pub fn delete_notifications(conn: &mut AnyConnection, before: NaiveDateTime) -> QueryResult<usize> {
    let ids: Vec<String> = notification_outbox::table
        .filter(notification_outbox::created_at.lt(before))
        .filter(notification_outbox::status.eq_any([DELIVERED, FAILED]))
        .select(notification_outbox::id)
        .limit(BATCH)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    super::write_transaction(conn, |conn| {
        diesel::delete(
            notification_attempts::table
                .filter(notification_attempts::notification_id.eq_any(&ids)),
        )
        .execute(conn)?;
        diesel::delete(notification_outbox::table.filter(notification_outbox::id.eq_any(&ids)))
            .execute(conn)
    })
}

/// Deletes up to [`BATCH`] sync jobs that ended (succeeded, failed, canceled) before `before`.
/// Queued and running ones stay whatever their age.
pub fn delete_sync_jobs(conn: &mut AnyConnection, before: NaiveDateTime) -> QueryResult<usize> {
    use super::schema::sync_jobs;
    use super::sync_jobs::{CANCELED, FAILED as JOB_FAILED, SUCCEEDED};
    let ids: Vec<String> = sync_jobs::table
        .filter(sync_jobs::finished_at.lt(before))
        .filter(sync_jobs::status.eq_any([SUCCEEDED, JOB_FAILED, CANCELED]))
        .select(sync_jobs::id)
        .limit(BATCH)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    super::write_statement(conn, |conn| {
        diesel::delete(sync_jobs::table.filter(sync_jobs::id.eq_any(&ids))).execute(conn)
    })
}
