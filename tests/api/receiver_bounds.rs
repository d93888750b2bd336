//! The receiver's unauthenticated work is bounded (issue 12, point 9): an oversized
//! `Stripe-Signature` is refused before any HMAC, and repeated unknown api keys and url_ids are
//! answered without asking the database again.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Backend, TestApp, TestTenant, assert_error, spawn_app, spawn_app_with};
use crate::on_both_databases;
use crate::receiver::{deliver_raw, endpoint, events_stored, stripe_signature};

/// 30,000 empty `v1=` entries on a 1 MiB body: today each one costs an HMAC of the whole body
/// (minutes of CPU). Answered 400 at once, nothing stored. The bound is generous (a debug
/// build on a busy 2-core box); the exact guarantee, no HMAC past the caps, is the unit test
/// `signature::tests::a_header_past_the_caps_is_refused_before_any_hmac`.
async fn a_30000_v1_header_on_a_1_mib_body_is_refused_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let ep = endpoint(&app, &tenant).await;
    let padding = "x".repeat(1024 * 1024 - 200);
    let body = json!({"id": "evt_flood", "object": "event", "type": "customer.created",
                      "created": 1, "data": {"object": {"id": "cus_flood", "pad": padding}}})
    .to_string();
    assert!(body.len() <= 1024 * 1024);
    let now = chrono::Utc::now().timestamp();
    let header = format!("t={now}{}", ",v1=".repeat(30_000));
    let started = Instant::now();
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        deliver_raw(&app, &ep.url_id, &body, Some(header)),
    )
    .await
    .expect("answered within 5 s");
    let elapsed = started.elapsed();
    let error = assert_error(response, 400, "invalid_signature").await;
    assert_eq!(error["source"]["header"], "stripe-signature");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert!(events_stored(&app).await.is_empty());

    // The same large body, properly signed, is still received.
    let signed = stripe_signature(&body, &ep.secret, now);
    let response = deliver_raw(&app, &ep.url_id, &body, Some(signed)).await;
    assert_eq!(response.status().as_u16(), 200);
}

/// An event over the receiver's 1 MiB bound is refused with a JSON:API 413, as the OpenAPI
/// document says (it was actix's plain-text refusal), and nothing is stored.
async fn an_event_over_1_mib_is_refused_with_a_json_413(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let ep = endpoint(&app, &tenant).await;
    let padding = "x".repeat(1024 * 1024);
    let body = json!({"id": "evt_big", "object": "event", "type": "customer.created",
                      "created": 1, "data": {"object": {"id": "cus_big", "pad": padding}}})
    .to_string();
    let now = chrono::Utc::now().timestamp();
    let signed = stripe_signature(&body, &ep.secret, now);
    let response = deliver_raw(&app, &ep.url_id, &body, Some(signed)).await;
    assert_error(response, 413, "payload_too_large").await;
    assert!(events_stored(&app).await.is_empty());
}

async fn repeated_unknown_api_keys_and_url_ids_do_not_reach_the_database(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.admin_token();
    let unknown_key = format!("pk_test_{}", "7".repeat(32));
    let before = app.state.database_lookups();
    for _ in 0..3 {
        let response = app
            .request(Method::GET, "/stripe/customers")
            .header("x-api-key", &unknown_key)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_error(response, 401, "invalid_api_key").await;
    }
    assert_eq!(
        app.state.database_lookups() - before,
        1,
        "one query for three"
    );

    // A key no tenant could have (too long) is refused without any query.
    let before = app.state.database_lookups();
    let response = app
        .request(Method::GET, "/stripe/customers")
        .header("x-api-key", "k".repeat(300))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "invalid_api_key").await;
    assert_eq!(app.state.database_lookups(), before);

    let unknown_url = format!("wh_{}", "5".repeat(32));
    let before = app.state.database_lookups();
    for _ in 0..3 {
        let response = deliver_raw(&app, &unknown_url, "{}", Some("t=1,v1=ab".into())).await;
        assert_error(response, 404, "not_found").await;
    }
    assert_eq!(
        app.state.database_lookups() - before,
        1,
        "one query for three"
    );

    // Known ones still work, and a new endpoint is found at once.
    let ep = endpoint(&app, &tenant).await;
    let body = json!({"id": "evt_known", "object": "event", "type": "customer.created",
                      "created": 1, "data": {"object": {"id": "cus_known", "object": "customer"}}})
    .to_string();
    let signed = stripe_signature(&body, &ep.secret, chrono::Utc::now().timestamp());
    let response = deliver_raw(&app, &ep.url_id, &body, Some(signed)).await;
    assert_eq!(response.status().as_u16(), 200);
}

on_both_databases!(
    a_30000_v1_header_on_a_1_mib_body_is_refused_at_once,
    an_event_over_1_mib_is_refused_with_a_json_413,
    repeated_unknown_api_keys_and_url_ids_do_not_reach_the_database,
    an_expired_tenant_is_loaded_once_for_many_requests_at_once,
);

/// An app whose tenant cache keeps an entry 1 s, and a tenant whose entry was loaded by a
/// list and has expired since.
async fn with_an_expired_tenant(backend: Backend) -> (TestApp, TestTenant) {
    let app = spawn_app_with(backend, |s| s.tenant_cache_secs = 1).await;
    let tenant = app.tenant().await;
    assert_eq!(
        list_customers(&app, &tenant, &tenant.admin_token()).await,
        200
    );
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    (app, tenant)
}

/// `GET /stripe/customers` as the tenant's admin: the status.
async fn list_customers(app: &TestApp, tenant: &TestTenant, token: &str) -> u16 {
    let request = app.authed(Method::GET, "/stripe/customers", tenant, token);
    request.send().await.unwrap().status().as_u16()
}

/// When a busy tenant's cache entry expires, the requests that find it stale wait for one
/// load instead of each reading the tenant and building its Stripe client again (which took
/// both cores for a second and stalled every tenant under 32 concurrent callers).
async fn an_expired_tenant_is_loaded_once_for_many_requests_at_once(backend: Backend) {
    let (app, tenant) = with_an_expired_tenant(backend).await;
    let token = tenant.admin_token();
    let list = || list_customers(&app, &tenant, &token);
    let before = app.state.database_lookups();
    let statuses = futures_util::future::join_all((0..24).map(|_| list())).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        app.state.database_lookups() - before,
        1,
        "24 requests at once after the entry expired"
    );
}

/// While the database is down, the requests waiting behind a failed load of an expired tenant
/// fail with it (503) instead of each trying again in turn: each try waits out the pool's
/// 5 s timeout, so eight in a row would take 40 s.
#[tokio::test]
async fn postgres_waiters_behind_a_failed_tenant_load_fail_at_once() {
    use crate::receiver::postgres_admin;
    let (app, tenant) = with_an_expired_tenant(Backend::Postgres).await;
    let token = tenant.admin_token();
    let list = || list_customers(&app, &tenant, &token);
    let db = app.postgres_database().unwrap();
    postgres_admin(format!("ALTER DATABASE \"{db}\" ALLOW_CONNECTIONS false")).await;
    postgres_admin(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}' AND pid <> pg_backend_pid()"
    ))
    .await;
    let started = Instant::now();
    let statuses = futures_util::future::join_all((0..8).map(|_| list())).await;
    let took = started.elapsed();
    postgres_admin(format!("ALTER DATABASE \"{db}\" ALLOW_CONNECTIONS true")).await;
    assert!(statuses.iter().all(|s| *s == 503), "{statuses:?}");
    assert!(took < Duration::from_secs(15), "8 requests took {took:?}");
    assert_eq!(list().await, 200, "back once the database is");
}
