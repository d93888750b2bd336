//! Deadlines on PostgreSQL: a statement that waits for a lock longer than the configured
//! lock timeout is canceled, and the client gets 503 with `Retry-After` at once instead of a
//! request that hangs; the service answers normally once the lock is gone.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use reqwest::Method;

use crate::helpers::{Backend, assert_error, json_body, spawn_app_with};

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
    let url = app.state.settings.database_url.clone();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let mut conn = PgConnection::establish(&url).expect("a second session");
        conn.batch_execute("BEGIN; LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")
            .expect("lock");
        locked_tx.send(()).expect("tell the test");
        let _ = release_rx.recv_timeout(Duration::from_secs(30));
        conn.batch_execute("COMMIT").expect("unlock");
    });
    locked_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the table is locked");

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

    release_tx.send(()).expect("release");
    holder.join().expect("the holder ends");
    let response = list().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(json_body(response).await["data"].is_array());
}
