//! The egress policy on the URLs a tenant gives us (issue 12, point 8): a notify_url that is
//! not https or does not resolve only to public addresses is refused (422, nothing stored), by
//! the API and the CLI; the worker never follows a redirect, and refuses at send time a stored
//! URL whose host is (or now resolves to) an address the policy refuses. No traffic ever leaves
//! loopback: the private and link-local URLs are refused before any connection is tried.

use std::process::Command;
use std::sync::{Arc, Mutex};

use actix_web::{HttpResponse, web};
use diesel::prelude::*;
use reqwest::Method;
use sales_block::db::schema::tenants;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, TestTenant, assert_error, eventually, json_body, spawn_app, spawn_app_with,
};
use crate::on_both_databases;
use crate::receiver::{deliver, endpoint, event};

/// A loopback server that answers every request with `answer` and counts what it received.
fn loopback_server(
    answer: impl Fn() -> HttpResponse + Clone + Send + 'static,
) -> (String, Arc<Mutex<usize>>) {
    let hits: Arc<Mutex<usize>> = Arc::default();
    let counter = hits.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = actix_web::HttpServer::new(move || {
        let (counter, answer) = (counter.clone(), answer.clone());
        actix_web::App::new().default_service(web::to(move || {
            let (counter, answer) = (counter.clone(), answer.clone());
            async move {
                *counter.lock().unwrap() += 1;
                answer()
            }
        }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    (format!("127.0.0.1:{port}"), hits)
}

async fn stored_notify_url(app: &TestApp, tenant: &TestTenant) -> Option<String> {
    let id = tenant.created.id.clone();
    app.query(move |conn| {
        tenants::table
            .find(id)
            .select(tenants::notify_url)
            .first::<Option<String>>(conn)
    })
    .await
}

/// `PUT /stripe/notifications/settings` as the tenant's admin.
pub(crate) async fn put_notify_url(
    app: &TestApp,
    tenant: &TestTenant,
    url: &str,
) -> reqwest::Response {
    app.authed(
        Method::PUT,
        "/stripe/notifications/settings",
        tenant,
        &tenant.admin_token(),
    )
    .json(&json!({"notification_settings": {"url": url}}))
    .send()
    .await
    .unwrap()
}

fn strict(settings: &mut sales_block::config::Settings) {
    settings.egress_allow_http = false;
    settings.egress_allow_loopback = false;
}

async fn a_notify_url_to_a_non_public_address_or_over_http_is_refused_and_not_stored(
    backend: Backend,
) {
    let app = spawn_app_with(backend, strict).await;
    let tenant = app.tenant().await;
    for url in [
        "https://127.0.0.1/hooks",
        "https://10.0.0.5/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://[::ffff:127.0.0.1]/hooks",
        "https://[fd00::5]/hooks",
        // A host name that resolves to loopback.
        "https://localhost/hooks",
        // http is refused before the host is even looked at.
        "http://app.example.com/hooks",
    ] {
        let response = put_notify_url(&app, &tenant, url).await;
        let error = assert_error(response, 422, "validation_error").await;
        assert_eq!(
            error["source"]["pointer"], "/notification_settings/url",
            "{url}"
        );
        assert_eq!(stored_notify_url(&app, &tenant).await, None, "{url}");
    }
}

/// The operator's CLI applies the same policy (the default settings: https, public only).
async fn the_cli_refuses_a_notify_url_to_a_private_address(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let (url, key) = (
        app.state.settings.database_url.clone(),
        app.state.settings.master_key.expose_secret().to_owned(),
    );
    let api_key = tenant.api_key().to_owned();
    let outputs = tokio::task::spawn_blocking(move || {
        ["https://10.0.0.5/hooks", "https://localhost/hooks"].map(|target| {
            Command::new(env!("CARGO_BIN_EXE_sales-block"))
                .args(["tenant", "notify", "--api-key", &api_key, "--url", target])
                .env("DATABASE_URL", &url)
                .env("SALES_MASTER_KEY", &key)
                .env("SALES_LOG_FILTER", "warn")
                .env_remove("SALES_EGRESS_ALLOW_LOOPBACK")
                .env_remove("SALES_EGRESS_ALLOW_HTTP")
                .output()
                .expect("run sales-block")
        })
    })
    .await
    .unwrap();
    for output in outputs {
        assert!(!output.status.success(), "accepted: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--url"), "{stderr}");
    }
    assert_eq!(stored_notify_url(&app, &tenant).await, None);
}

/// The attempts the notification log shows for the tenant's first notification, once at
/// least `n` are recorded.
async fn attempts(app: &TestApp, tenant: &TestTenant, n: usize) -> Vec<Value> {
    eventually(15, || async {
        let body = json_body(
            app.authed(
                Method::GET,
                "/stripe/notifications",
                tenant,
                &tenant.admin_token(),
            )
            .send()
            .await
            .unwrap(),
        )
        .await;
        let log = body["data"][0]["attributes"]["delivery_log"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        (log.len() >= n).then_some(log)
    })
    .await
}

fn succeeded(id: &str) -> Value {
    json!({"id": id, "object": "payment_intent", "amount": 700, "currency": "usd",
           "status": "succeeded", "customer": "cus_e", "created": 1_800_000_000, "metadata": {}})
}

/// The tenant's app answers 302 to another loopback server: the worker records the 302 and
/// never follows it.
async fn the_notification_worker_does_not_follow_a_redirect(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let (elsewhere, elsewhere_hits) = loopback_server(|| HttpResponse::Ok().finish());
    let location = format!("http://{elsewhere}/stolen");
    let (target, target_hits) = loopback_server(move || {
        HttpResponse::Found()
            .insert_header(("location", location.clone()))
            .finish()
    });
    let response = put_notify_url(&app, &tenant, &format!("http://{target}/hooks")).await;
    assert_eq!(response.status().as_u16(), 200);
    let ep = endpoint(&app, &tenant).await;
    deliver(
        &app,
        &ep,
        &event(
            "evt_redirect",
            "payment_intent.succeeded",
            1_800_000_000,
            succeeded("pi_redirect"),
        ),
    )
    .await;
    let log = attempts(&app, &tenant, 2).await;
    assert!(log.iter().all(|a| a["status_code"] == 302), "{log:?}");
    assert!(*target_hits.lock().unwrap() >= 2);
    assert_eq!(
        *elsewhere_hits.lock().unwrap(),
        0,
        "the redirect was followed"
    );
}

/// A notify_url stored before (or around) the policy, whose host is a refused address: a
/// literal one is refused before sending, a name is resolved only to allowed addresses (DNS
/// rebinding: the name passed when it was set, and points at loopback now).
async fn a_stored_notify_url_to_a_refused_address_is_never_called(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.egress_allow_loopback = false).await;
    let (listener, hits) = loopback_server(|| HttpResponse::Ok().finish());
    let port = listener.rsplit_once(':').unwrap().1.to_owned();
    for (i, url) in [
        format!("http://127.0.0.1:{port}/hooks"),
        format!("http://localhost:{port}/hooks"),
    ]
    .into_iter()
    .enumerate()
    {
        let tenant = app.tenant().await;
        let (id, master) = (tenant.created.id.clone(), app.state.master.clone());
        let stored = url.clone();
        app.state
            .db
            .run(move |conn| {
                sales_block::outbound::notifications::set_target(&master, conn, &id, Some(&stored))
            })
            .await
            .unwrap();
        let ep = endpoint(&app, &tenant).await;
        deliver(
            &app,
            &ep,
            &event(
                &format!("evt_stored_{i}"),
                "payment_intent.succeeded",
                1_800_000_000,
                succeeded(&format!("pi_stored_{i}")),
            ),
        )
        .await;
        let log = attempts(&app, &tenant, 1).await;
        assert_eq!(log[0]["status_code"], Value::Null, "{url}: {log:?}");
        assert!(log[0]["error"].as_str().is_some(), "{url}: {log:?}");
    }
    assert_eq!(*hits.lock().unwrap(), 0);
}

on_both_databases!(
    a_notify_url_to_a_non_public_address_or_over_http_is_refused_and_not_stored,
    the_cli_refuses_a_notify_url_to_a_private_address,
    the_notification_worker_does_not_follow_a_redirect,
    a_stored_notify_url_to_a_refused_address_is_never_called,
);
