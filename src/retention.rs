//! Retention: an hourly job that keeps the log tables bounded (the queries are
//! [`crate::db::retention`]): stored event payloads, event rows, finished notifications
//! with their attempts, ended sync jobs, and expired Connect logins and claims. Expired idempotency keys have their own job
//! ([`crate::idempotency::purge_expired_keys`]).

use std::time::Duration;

use chrono::NaiveDateTime;

use crate::config::Settings;
use crate::db::{Database, DbError, retention};

/// How long an event's row stays at least, whatever the settings: Stripe lets an event be
/// re-sent or listed for 30 days, and the row is what deduplicates it.
pub const EVENT_ROW_MIN_DAYS: u32 = 30;

/// Batches of each kind one run goes through at most (the rest waits for the next run).
const MAX_BATCHES: usize = 200;

/// What to keep, in days; 0 keeps forever.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Stored event payloads.
    pub event_payload_days: u32,
    /// Delivered or failed notifications and their attempts.
    pub notification_days: u32,
}

impl Retention {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            event_payload_days: settings.event_payload_retention_days,
            notification_days: settings.notification_retention_days,
        }
    }

    /// Event rows go with their payload, but never before [`EVENT_ROW_MIN_DAYS`].
    fn event_row_days(self) -> u32 {
        match self.event_payload_days {
            0 => 0,
            days => days.max(EVENT_ROW_MIN_DAYS),
        }
    }
}

/// What one run removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub event_payloads: usize,
    pub events: usize,
    pub notifications: usize,
    /// Expired Connect logins (states) and unclaimed installations.
    pub oauth_pending: usize,
    /// Sync jobs that ended before the notifications' cutoff.
    pub sync_jobs: usize,
}

/// `days` before `now`; `None` for 0 (keep forever) and for an age before the calendar's
/// start (a setting that large keeps everything too, rather than panicking).
fn cutoff(now: NaiveDateTime, days: u32) -> Option<NaiveDateTime> {
    if days == 0 {
        return None;
    }
    now.checked_sub_signed(chrono::Duration::days(i64::from(days)))
}

/// Runs `batch` until it removes less than a full batch (or [`MAX_BATCHES`] times), each
/// batch a short write of its own.
async fn drain(
    db: &Database,
    before: NaiveDateTime,
    batch: fn(&mut crate::db::AnyConnection, NaiveDateTime) -> diesel::QueryResult<usize>,
) -> Result<usize, DbError> {
    let mut total = 0;
    for _ in 0..MAX_BATCHES {
        let done = db
            .run(move |conn| batch(conn, before).map_err(DbError::from))
            .await?;
        total += done;
        if done < retention::BATCH as usize {
            break;
        }
    }
    Ok(total)
}

/// One pass over every table, as of `now`.
pub async fn run_once(
    db: &Database,
    policy: Retention,
    now: NaiveDateTime,
) -> Result<Purged, DbError> {
    let mut purged = Purged::default();
    if let Some(before) = cutoff(now, policy.event_row_days()) {
        purged.events = drain(db, before, retention::delete_events).await?;
    }
    if let Some(before) = cutoff(now, policy.event_payload_days) {
        purged.event_payloads = drain(db, before, retention::clear_event_payloads).await?;
    }
    if let Some(before) = cutoff(now, policy.notification_days) {
        purged.notifications = drain(db, before, retention::delete_notifications).await?;
        // Ended sync jobs are a log like the notifications': kept as long.
        purged.sync_jobs = drain(db, before, retention::delete_sync_jobs).await?;
    }
    // Single use and 10 minutes long: nothing of them is worth keeping once expired.
    purged.oauth_pending = db
        .run(move |conn| crate::db::connect::delete_expired(conn, now).map_err(DbError::from))
        .await?;
    Ok(purged)
}

/// Runs [`run_once`] at start and every hour, for as long as the service runs.
pub async fn run_every_hour(db: Database, policy: Retention) {
    let mut every = tokio::time::interval(Duration::from_secs(60 * 60));
    loop {
        every.tick().await;
        match run_once(&db, policy, chrono::Utc::now().naive_utc()).await {
            Ok(purged) if purged == Purged::default() => {}
            Ok(purged) => tracing::info!(
                retention.event_payloads = purged.event_payloads,
                retention.events = purged.events,
                retention.notifications = purged.notifications,
                "retention"
            ),
            Err(err) => tracing::warn!(error = %err, "retention"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_setting_gives_a_cutoff_or_keeps_everything() {
        let now = chrono::Utc::now().naive_utc();
        assert_eq!(cutoff(now, 0), None);
        assert_eq!(cutoff(now, 1), Some(now - chrono::Duration::days(1)));
        // Billions of days: before the calendar's start, so nothing is old enough.
        assert_eq!(cutoff(now, u32::MAX), None);
        let policy = Retention {
            event_payload_days: u32::MAX,
            notification_days: 0,
        };
        assert_eq!(cutoff(now, policy.event_row_days()), None);
    }
}
