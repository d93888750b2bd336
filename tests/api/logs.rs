//! The logs an operator reads: the real binary with `SALES_LOG_FORMAT=json` writes one JSON
//! object per line, and a request's lines carry its span: the request id, the tenant, and for
//! a webhook delivery the Stripe event and object.

use std::process::{Child, Command, Stdio};

use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::helpers::{Backend, eventually, spawn_app};
use crate::on_both_databases;
use crate::receiver::{endpoint, event, stripe_signature};

/// `sales-block serve` in a process of its own, killed on drop.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lines of `log` that parse as JSON.
fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// The field `name` of a line's current span (`span`), as a string.
fn span_field<'a>(line: &'a Value, name: &str) -> Option<&'a str> {
    line["span"][name].as_str()
}

async fn json_logs_name_the_request_the_tenant_and_the_event(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let ep = endpoint(&app, &tenant).await;
    let token = tenant.admin_token();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("service.log");
    let served = Served(
        Command::new(env!("CARGO_BIN_EXE_sales-block"))
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", &app.state.settings.database_url)
            .env(
                "SALES_MASTER_KEY",
                app.state.settings.master_key.expose_secret(),
            )
            .env("SALES_LOG_FORMAT", "json")
            .env("SALES_LOG_FILTER", "info")
            .env("SALES_RECONCILE_INTERVAL_SECS", "0")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .expect("start sales-block serve"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    eventually(30, || async {
        http.get(format!("{base}/health"))
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success())
    })
    .await;

    let response = http
        .get(format!("{base}/stripe/customers/cus_nobody"))
        .header("AppId", tenant.api_key())
        .bearer_auth(&token)
        .header("X-Request-ID", "req_logs_read")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);

    let body = event(
        "evt_logs_1",
        "customer.updated",
        chrono::Utc::now().timestamp(),
        json!({"id": "cus_logs", "object": "customer", "metadata": {}}),
    )
    .to_string();
    let signature = stripe_signature(&body, &ep.secret, chrono::Utc::now().timestamp());
    let response = http
        .post(format!("{base}/stripe/{}/webhook", ep.url_id))
        .header("content-type", "application/json")
        .header("Stripe-Signature", signature)
        .header("X-Request-ID", "req_logs_delivery")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);

    // The request line is written once the answer is ready; give the writer a moment.
    let lines = eventually(10, || async {
        let lines = json_lines(&std::fs::read_to_string(&log_path).unwrap_or_default());
        let done = |id: &str| {
            lines
                .iter()
                .any(|l| l["message"] == "request" && span_field(l, "http.request_id") == Some(id))
        };
        (done("req_logs_read") && done("req_logs_delivery")).then_some(lines)
    })
    .await;
    drop(served);

    let request_line = |id: &str| {
        lines
            .iter()
            .find(|l| l["message"] == "request" && span_field(l, "http.request_id") == Some(id))
            .cloned()
            .unwrap()
    };
    let read = request_line("req_logs_read");
    assert_eq!(read["http.status"], 404, "{read}");
    assert_eq!(
        span_field(&read, "tenant.id"),
        Some(tenant.created.id.as_str()),
        "{read}"
    );
    assert_eq!(span_field(&read, "http.method"), Some("GET"), "{read}");

    let delivery = request_line("req_logs_delivery");
    assert_eq!(delivery["http.status"], 200, "{delivery}");
    assert_eq!(
        span_field(&delivery, "tenant.id"),
        Some(tenant.created.id.as_str()),
        "{delivery}"
    );
    assert_eq!(
        span_field(&delivery, "stripe.event_id"),
        Some("evt_logs_1"),
        "{delivery}"
    );
    assert_eq!(
        span_field(&delivery, "stripe.object_id"),
        Some("cus_logs"),
        "{delivery}"
    );
    // The receiver's own line about the event is inside the same span.
    assert!(
        lines.iter().any(|l| l["message"] == "stripe event"
            && span_field(l, "stripe.event_id") == Some("evt_logs_1")
            && span_field(l, "http.request_id") == Some("req_logs_delivery")),
        "{lines:?}"
    );
    // No secret reaches the log.
    let raw = std::fs::read_to_string(&log_path).unwrap();
    assert!(!raw.contains(&ep.secret), "the signing secret was logged");
    assert!(!raw.contains(&token), "a bearer token was logged");
}

on_both_databases!(json_logs_name_the_request_the_tenant_and_the_event);
