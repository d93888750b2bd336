//! GET /metrics: Prometheus text with the series an operator watches, counting what happened;
//! behind a bearer token when `metrics_token` is set.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Backend, TestApp, assert_error, spawn_app, spawn_app_with};
use crate::on_both_databases;
use crate::receiver::{deliver, endpoint, event};

async fn scrape(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    let mut request = app.request(Method::GET, "/metrics");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("scrape")
}

/// The value of the first sample whose line starts with `series` (name and labels).
pub(crate) fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

pub(crate) async fn scraped(app: &TestApp) -> String {
    let response = scrape(app, None).await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .starts_with("text/plain"),
    );
    response.text().await.expect("text")
}

async fn what_happened_is_counted(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    // The recorder is shared by every app of the test process: compare before and after.
    let before = scraped(&app).await;
    let route = "http_requests_total{route=\"/stripe/customers/{unique_id}\",method=\"GET\",status=\"404\"}";
    let was = sample(&before, route).unwrap_or(0.0);
    let batches = "receiver_batch_seconds_count ";
    let batches_were = sample(&before, batches).unwrap_or(0.0);
    for _ in 0..3 {
        let response = app
            .authed(
                Method::GET,
                "/stripe/customers/cus_nobody",
                &tenant,
                &tenant.admin_token(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 404);
    }
    app.customer(&tenant, &tenant.admin_token(), "metrics@example.com")
        .await;
    let ep = endpoint(&app, &tenant).await;
    deliver(
        &app,
        &ep,
        &event(
            "evt_metrics_1",
            "customer.updated",
            chrono::Utc::now().timestamp(),
            json!({"id": "cus_metrics", "object": "customer", "metadata": {}}),
        ),
    )
    .await;

    let after = scraped(&app).await;
    assert!(sample(&after, route).unwrap_or(0.0) >= was + 3.0, "{after}");
    // The delivery was stored by a group commit of the receiver's writer.
    assert!(
        sample(&after, batches).unwrap_or(0.0) >= batches_were + 1.0,
        "{after}"
    );
    for series in [
        "http_request_duration_seconds_bucket{route=\"/stripe/customers/{unique_id}\",method=\"GET\",le=\"",
        "stripe_requests_total{operation=\"customer\",outcome=\"ok\"}",
        "stripe_request_duration_seconds_count{operation=\"customer\"}",
        "receiver_deliveries_total{outcome=\"applied\"}",
        "receiver_batch_size_count ",
        "db_pool_connections{state=\"in_use\"}",
        "receiver_writers ",
        "receiver_queue_bound 4096",
        "notifications_pending ",
    ] {
        assert!(sample(&after, series).is_some(), "no {series} in:\n{after}");
    }
    // No tenant id in any label.
    assert!(
        !after.contains(&tenant.created.id),
        "a tenant id leaked into a label"
    );
}

async fn a_token_guards_the_metrics(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.metrics_token = "m3trics-t0ken".to_owned().into()
    })
    .await;
    assert_error(scrape(&app, None).await, 401, "unauthorized").await;
    assert_error(scrape(&app, Some("wrong")).await, 401, "unauthorized").await;
    let response = scrape(&app, Some("m3trics-t0ken")).await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("http_requests_total")
    );
}

/// A made-up HTTP method is counted as `other`: a client cannot mint label values (and so
/// series, and memory) without bound.
async fn made_up_methods_do_not_make_new_series(backend: Backend) {
    let app = spawn_app(backend).await;
    let method = Method::from_bytes(b"XPROBE7").unwrap();
    for _ in 0..2 {
        let response = app.request(method.clone(), "/health").send().await.unwrap();
        assert!(response.status().is_client_error(), "{}", response.status());
    }
    let text = scraped(&app).await;
    assert!(
        !text.contains("XPROBE7"),
        "a client-made method became a label"
    );
    assert!(
        text.contains("route=\"/health\",method=\"other\""),
        "{text}"
    );
}

/// The histograms' samples are drained by a periodic upkeep, so they do not pile up in memory
/// while nobody scrapes `/metrics` (before: kept until the next scrape, for ever without one).
#[tokio::test]
async fn histogram_samples_are_drained_without_a_scrape() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app.request(Method::GET, "/health").send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let before = sales_block::metrics::upkeeps();
    crate::helpers::eventually(12, || async {
        (sales_block::metrics::upkeeps() > before).then_some(())
    })
    .await;
}

on_both_databases!(
    what_happened_is_counted,
    a_token_guards_the_metrics,
    made_up_methods_do_not_make_new_series,
);
