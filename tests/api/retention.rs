//! Retention: old event payloads cleared, old event rows deleted (never before 30 days),
//! finished notifications deleted with their attempts; nothing recent or still pending is
//! touched, on both databases, over more than one batch.

use chrono::{Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use sales_block::db::events::{self, NewEvent};
use sales_block::db::notifications::{self, NewNotification};
use sales_block::db::schema::{notification_attempts, notification_outbox, stripe_events};
use sales_block::retention::{Purged, Retention, run_once};

use crate::helpers::{Backend, TestApp, spawn_app_with};
use crate::on_both_databases;

fn days_ago(now: NaiveDateTime, days: i64) -> NaiveDateTime {
    now - Duration::days(days)
}

/// Stores `count` events received `age` days ago, with this outcome.
async fn events_aged(app: &TestApp, prefix: &str, count: usize, age: i64, outcome: &'static str) {
    let now = Utc::now().naive_utc();
    let prefix = prefix.to_owned();
    app.query(move |conn| {
        for i in 0..count {
            let id = format!("{prefix}-{i}");
            events::insert(
                conn,
                &NewEvent {
                    id: &id,
                    tenant_id: "t-retention",
                    endpoint_id: "we-retention",
                    event_id: &format!("evt_{id}"),
                    event_type: "customer.updated",
                    object_id: Some("cus_1"),
                    stripe_created: 0,
                    api_version: None,
                    payload: "{\"id\":\"evt\"}",
                    outcome,
                    received_at: days_ago(now, age),
                },
            )?;
        }
        Ok(())
    })
    .await;
}

async fn notification_aged(app: &TestApp, id: &str, age: i64, status: &'static str) {
    let now = Utc::now().naive_utc();
    let id = id.to_owned();
    app.query(move |conn| {
        notifications::enqueue(
            conn,
            &[NewNotification {
                id: id.clone(),
                tenant_id: "t-retention",
                event_type: "payment.succeeded",
                source_event_id: &format!("evt_{id}"),
                payload: "{}".to_owned(),
                status,
                attempts: 1,
                next_attempt_at: days_ago(now, age),
                created_at: days_ago(now, age),
            }],
        )?;
        diesel::insert_into(notification_attempts::table)
            .values((
                notification_attempts::id.eq(format!("att-{id}")),
                notification_attempts::notification_id.eq(&id),
                notification_attempts::tenant_id.eq("t-retention"),
                notification_attempts::attempted_at.eq(days_ago(now, age)),
                notification_attempts::url.eq("https://example.com/hook"),
                notification_attempts::status_code.eq(Some(200_i64)),
                notification_attempts::duration_ms.eq(5_i64),
            ))
            .execute(conn)
            .map(|_| ())
    })
    .await;
}

async fn event_rows(app: &TestApp, prefix: &str) -> Vec<(String, String)> {
    let pattern = format!("{prefix}-%");
    app.query(move |conn| {
        stripe_events::table
            .filter(stripe_events::id.like(pattern))
            .select((stripe_events::id, stripe_events::payload))
            .load(conn)
    })
    .await
}

async fn notification_ids(app: &TestApp) -> Vec<String> {
    let mut ids: Vec<String> = app
        .query(|conn| {
            notification_outbox::table
                .select(notification_outbox::id)
                .load(conn)
        })
        .await;
    ids.sort();
    ids
}

async fn attempt_ids(app: &TestApp) -> Vec<String> {
    let mut ids: Vec<String> = app
        .query(|conn| {
            notification_attempts::table
                .select(notification_attempts::notification_id)
                .load(conn)
        })
        .await;
    ids.sort();
    ids
}

async fn old_logs_go_and_everything_else_stays(backend: Backend) {
    // No notification worker: it would try the pending notification (of a tenant that does
    // not exist), fail it, and so change what retention may delete.
    let app = spawn_app_with(backend, |s| s.notify_worker = false).await;
    // More than one batch (500) of very old events, and some of each other kind.
    events_aged(&app, "ancient", 1_100, 45, events::APPLIED).await;
    events_aged(&app, "stuck", 3, 45, events::REFRESH_PENDING).await;
    events_aged(&app, "month", 4, 20, events::APPLIED).await;
    events_aged(&app, "fresh", 5, 1, events::APPLIED).await;
    notification_aged(&app, "n-old-delivered", 40, notifications::DELIVERED).await;
    notification_aged(&app, "n-old-failed", 40, notifications::FAILED).await;
    notification_aged(&app, "n-old-pending", 40, notifications::PENDING).await;
    notification_aged(&app, "n-new-delivered", 2, notifications::DELIVERED).await;
    // Sync jobs: ended long ago (goes), running since long ago and ended lately (stay); and
    // Connect logins: one expired (goes), one still valid (stays).
    let tenant = app.tenant().await;
    let tenant_id = tenant.created.id.clone();
    let job_ids: Vec<String> = app
        .query(move |conn| {
            use diesel::prelude::*;
            use sales_block::db::sync_jobs::{RUNNING, SUCCEEDED, insert};
            let mut ids = Vec::new();
            for (status, days, kind) in [
                (SUCCEEDED, 40, "historical"),
                (RUNNING, 40, "reconcile"),
                (SUCCEEDED, 2, "historical"),
            ] {
                let mut job = sales_block::sync::new_job(
                    &tenant_id,
                    kind,
                    &["customers".to_owned()],
                    None,
                    None,
                    "t",
                    None,
                )
                .expect("job");
                let at = Utc::now().naive_utc() - chrono::Duration::days(days);
                job.status = status.to_owned();
                job.created_at = at;
                job.finished_at = (status == SUCCEEDED).then_some(at);
                insert(conn, &job)?;
                ids.push(job.id);
            }
            for (hash, minutes) in [("expired", -5), ("valid", 5)] {
                diesel::insert_into(sales_block::db::schema::stripe_oauth_states::table)
                    .values(&sales_block::db::connect::StateRow {
                        state_hash: hash.to_owned(),
                        tenant_id: tenant_id.clone(),
                        subject: "admin-1".into(),
                        flow: "connect".into(),
                        return_url: None,
                        created_at: Utc::now().naive_utc(),
                        expires_at: Utc::now().naive_utc() + chrono::Duration::minutes(minutes),
                    })
                    .execute(conn)?;
            }
            Ok(ids)
        })
        .await;

    // Payloads after 10 days; rows still not before 30.
    let policy = Retention {
        event_payload_days: 10,
        notification_days: 30,
    };
    let purged = run_once(&app.state.db, policy, Utc::now().naive_utc())
        .await
        .expect("retention runs");
    assert_eq!(
        purged,
        Purged {
            event_payloads: 4,
            events: 1_100,
            notifications: 2,
            oauth_pending: 1,
            sync_jobs: 1,
        }
    );
    let mut kept: Vec<String> = app
        .query(|conn| {
            use diesel::prelude::*;
            use sales_block::db::schema::sync_jobs;
            sync_jobs::table.select(sync_jobs::id).load(conn)
        })
        .await;
    kept.sort();
    let mut expected = job_ids[1..].to_vec();
    expected.sort();
    assert_eq!(
        kept, expected,
        "the ended old job went; the running and the recent stayed"
    );
    assert!(event_rows(&app, "ancient").await.is_empty());
    // A refresh still pending keeps its row and payload.
    let stuck = event_rows(&app, "stuck").await;
    assert_eq!(stuck.len(), 3);
    assert!(stuck.iter().all(|(_, payload)| !payload.is_empty()));
    // 20 days old: the row stays (dedup), the payload is gone.
    let month = event_rows(&app, "month").await;
    assert_eq!(month.len(), 4);
    assert!(
        month.iter().all(|(_, payload)| payload.is_empty()),
        "{month:?}"
    );
    let fresh = event_rows(&app, "fresh").await;
    assert!(fresh.iter().all(|(_, payload)| !payload.is_empty()));
    assert_eq!(fresh.len(), 5);
    assert_eq!(
        notification_ids(&app).await,
        ["n-new-delivered", "n-old-pending"]
    );
    assert_eq!(
        attempt_ids(&app).await,
        ["n-new-delivered", "n-old-pending"]
    );

    // A second run finds nothing; 0 days keeps forever.
    let again = run_once(&app.state.db, policy, Utc::now().naive_utc())
        .await
        .expect("retention runs");
    assert_eq!(again, Purged::default());
    let forever = Retention {
        event_payload_days: 0,
        notification_days: 0,
    };
    let later = Utc::now().naive_utc() + Duration::days(400);
    assert_eq!(
        run_once(&app.state.db, forever, later).await.expect("runs"),
        Purged {
            // A login state is single use and 10 minutes long: expired ones always go.
            oauth_pending: 1,
            ..Purged::default()
        }
    );
    assert_eq!(event_rows(&app, "fresh").await.len(), 5);
}

on_both_databases!(old_logs_go_and_everything_else_stays);
