//! Deadlines on PostgreSQL: a statement that waits for a lock longer than the configured
//! lock timeout is canceled, and the client gets 503 with `Retry-After` at once instead of a
//! request that hangs; the service answers normally once the lock is gone.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use reqwest::Method;

use crate::helpers::{Backend, assert_error, json_body, spawn_app_with};

/// A table locked by another session (`ACCESS EXCLUSIVE`) until released.
struct Locked {
    release: std::sync::mpsc::Sender<()>,
    holder: std::thread::JoinHandle<()>,
}

impl Locked {
    /// Locks `table` in a session of its own; returns once the lock is held.
    fn take(url: &str, table: &'static str) -> Self {
        let url = url.to_owned();
        let (locked_tx, locked_rx) = std::sync::mpsc::channel::<()>();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            let mut conn = PgConnection::establish(&url).expect("a second session");
            conn.batch_execute(&format!(
                "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
            ))
            .expect("lock");
            locked_tx.send(()).expect("tell the test");
            let _ = release_rx.recv_timeout(Duration::from_secs(30));
            conn.batch_execute("COMMIT").expect("unlock");
        });
        locked_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the table is locked");
        Self { release, holder }
    }

    fn release(self) {
        self.release.send(()).expect("release");
        self.holder.join().expect("the holder ends");
    }
}

#[tokio::test]
async fn postgres_a_locked_table_is_503_within_the_lock_timeout() {
    let app = spawn_app_with(Backend::Postgres, |s| {
        s.database_lock_timeout_ms = 300;
    })
    .await;
    let tenant = app.tenant().await;
    let admin = tenant.admin_token();
    let list = || {
        app.authed(Method::GET, "/stripe/customers", &tenant, &admin)
            .send()
    };
    // One customer, so the list has rows to read (an empty one is answered from counters).
    app.customer(&tenant, &admin, "locked@example.com").await;
    assert_eq!(list().await.unwrap().status().as_u16(), 200);

    // Another session (a long migration, an operator's LOCK) holds the customers table.
    let lock = Locked::take(&app.state.settings.database_url, "customers");

    let started = Instant::now();
    let response = list().await.expect("an answer, not a hang");
    let waited = started.elapsed();
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let error = assert_error(response, 503, "service_unavailable").await;
    assert!(
        error["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("did not answer in time"),
        "{error}"
    );
    assert!(
        waited < Duration::from_secs(5),
        "answered after {waited:?}, the lock timeout is 300 ms"
    );

    lock.release();
    let response = list().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(json_body(response).await["data"].is_array());
}

/// The receiver sheds load: with its writer stuck (the events table locked by another
/// session), a delivery waits at most `receiver_answer_timeout_ms` for its commit, one more
/// than `receiver_queue` is refused at once, both with 503 and `Retry-After` (Stripe retries),
/// and `/ready` says the receiver is backlogged. Once the lock is gone, Stripe's retries are
/// stored exactly once each.
#[tokio::test]
async fn postgres_a_stuck_receiver_answers_503_at_once_and_stores_each_retry_once() {
    use crate::receiver::{deliver, deliver_raw, endpoint, event, events_stored, stripe_signature};
    use serde_json::json;

    let app = spawn_app_with(Backend::Postgres, |s| {
        s.receiver_writers = 1;
        s.receiver_queue = 1;
        s.receiver_answer_timeout_ms = 3_000;
        // The writer waits for the lock as long as it is held.
        s.database_lock_timeout_ms = 0;
    })
    .await;
    let tenant = app.tenant().await;
    let ep = endpoint(&app, &tenant).await;
    let now = chrono::Utc::now().timestamp();
    let events: Vec<serde_json::Value> = ["evt_q_a", "evt_q_b", "evt_q_c"]
        .iter()
        .map(|id| {
            event(
                id,
                "customer.created",
                now,
                json!({"id": format!("cus_{id}"), "object": "customer", "metadata": {}}),
            )
        })
        .collect();
    let signed = |e: &serde_json::Value| {
        let body = e.to_string();
        let signature = stripe_signature(&body, &ep.secret, chrono::Utc::now().timestamp());
        (body, signature)
    };

    let lock = Locked::take(&app.state.settings.database_url, "stripe_events");

    let (a, b, c) = (signed(&events[0]), signed(&events[1]), signed(&events[2]));
    let first = deliver_raw(&app, &ep.url_id, &a.0, Some(a.1.clone()));
    let second = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        deliver_raw(&app, &ep.url_id, &b.0, Some(b.1.clone())).await
    };
    let third = async {
        tokio::time::sleep(Duration::from_millis(900)).await;
        let started = Instant::now();
        let response = deliver_raw(&app, &ep.url_id, &c.0, Some(c.1.clone())).await;
        let took = started.elapsed();
        let ready = app.request(Method::GET, "/ready").send().await.unwrap();
        (response, took, ready)
    };
    let started = Instant::now();
    let (first, second, (third, third_took, ready)) = tokio::join!(first, second, third);
    let all_took = started.elapsed();

    // The third found the queue full (the first in the stuck writer, the second waiting).
    assert!(
        third_took < Duration::from_millis(1_500),
        "refused after {third_took:?}"
    );
    assert_eq!(
        third
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let error = assert_error(third, 503, "service_unavailable").await;
    assert!(
        error["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("queue is full"),
        "{error}"
    );
    assert_eq!(ready.status().as_u16(), 503);
    let ready = json_body(ready).await;
    assert_eq!(ready["receiver"]["status"], "backlogged", "{ready}");
    // The first two gave up waiting for their commit, within the answer timeout.
    for response in [first, second] {
        let error = assert_error(response, 503, "service_unavailable").await;
        assert!(
            error["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("not stored in time"),
            "{error}"
        );
    }
    assert!(all_took < Duration::from_secs(10), "{all_took:?}");

    lock.release();
    // Stripe retries each until it is answered 2xx (the queue drains meanwhile): stored once
    // each, whatever committed before.
    for e in &events {
        let mut tries = 0;
        loop {
            let (body, signature) = signed(e);
            let response = deliver_raw(&app, &ep.url_id, &body, Some(signature)).await;
            if response.status().is_success() {
                break;
            }
            assert_eq!(response.status().as_u16(), 503);
            tries += 1;
            assert!(tries < 100, "{e} still refused");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    deliver(&app, &ep, &events[0]).await;
    let ready = app.request(Method::GET, "/ready").send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let stored = events_stored(&app).await;
    for id in ["evt_q_a", "evt_q_b", "evt_q_c"] {
        assert_eq!(
            stored.iter().filter(|(event, _)| event == id).count(),
            1,
            "{id}: {stored:?}"
        );
    }
}

/// Settings past what PostgreSQL or tokio take (timeouts of u64::MAX ms, a queue of
/// usize::MAX) mean "as long / as many as allowed": the service starts and answers, instead
/// of failing every connection or panicking at start.
#[tokio::test]
async fn postgres_out_of_range_deadlines_and_queue_are_clamped() {
    let app = spawn_app_with(Backend::Postgres, |s| {
        s.database_statement_timeout_ms = u64::MAX;
        s.database_lock_timeout_ms = u64::MAX;
        s.database_connect_timeout_secs = u64::MAX;
        s.receiver_queue = usize::MAX;
    })
    .await;
    let ready = app.request(Method::GET, "/ready").send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let body = json_body(ready).await;
    assert_eq!(body["database"], "ok", "{body}");
    assert_eq!(body["receiver"]["bound"], 1 << 20, "{body}");
}
