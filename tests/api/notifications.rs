//! Notifications to the tenant's app: enqueued with the mirror change (an outbox), signed like
//! Stripe signs, retried with back-off until the app answers 2xx, delivered once per event,
//! by any instance (one that starts later included); the delivery log for admins.

use std::sync::{Arc, Mutex};

use actix_web::{HttpRequest, HttpResponse, web};
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{
    Backend, TestApp, TestTenant, assert_error, eventually, json_body, spawn_app, spawn_app_with,
};
use crate::on_both_databases;
use crate::receiver::{deliver, endpoint, event};

/// The tenant's app: records every notification and fails the first `fail_first`.
struct AppTarget {
    url: String,
    received: Arc<Mutex<Vec<(String, String)>>>,
}

fn app_target(fail_first: usize) -> AppTarget {
    target_with(fail_first, std::time::Duration::ZERO)
}

/// An app that fails the first `fail_first` notifications and takes `delay` over each.
fn target_with(fail_first: usize, delay: std::time::Duration) -> AppTarget {
    let received: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let log = received.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/sales", listener.local_addr().unwrap());
    let server = actix_web::HttpServer::new(move || {
        let log = log.clone();
        actix_web::App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
            let log = log.clone();
            async move {
                let signature = req
                    .headers()
                    .get("sales-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let count = {
                    let mut log = log.lock().unwrap();
                    log.push((signature, String::from_utf8_lossy(&body).into_owned()));
                    log.len()
                };
                tokio::time::sleep(delay).await;
                if count <= fail_first {
                    HttpResponse::InternalServerError().finish()
                } else {
                    HttpResponse::Ok().finish()
                }
            }
        }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    AppTarget { url, received }
}

async fn notify_to(app: &TestApp, tenant: &TestTenant, url: &str) -> String {
    let response = crate::egress::put_notify_url(app, tenant, url).await;
    assert_eq!(response.status().as_u16(), 200);
    let body = json_body(response).await;
    body["data"]["attributes"]["signing_secret"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Verifies `t=..,v1=..` over the body, written out independently of the service.
fn signed_with(signature: &str, body: &str, secret: &str) -> bool {
    let mut t = "";
    let mut v1 = "";
    for part in signature.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = value,
            Some(("v1", value)) => v1 = value,
            _ => {}
        }
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    hex::encode(mac.finalize().into_bytes()) == v1
}

fn succeeded(id: &str, amount: i64) -> Value {
    json!({"id": id, "object": "payment_intent", "amount": amount, "currency": "usd",
           "status": "succeeded", "customer": "cus_n", "created": 1_800_000_000, "metadata": {}})
}

const T: i64 = 1_800_000_000;

async fn a_notification_fails_twice_then_arrives_signed(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let target = app_target(2);
    let secret = notify_to(&app, &tenant, &target.url).await;
    let ep = endpoint(&app, &tenant).await;
    deliver(
        &app,
        &ep,
        &event(
            "evt_n1",
            "payment_intent.succeeded",
            T,
            succeeded("pi_n", 4200),
        ),
    )
    .await;
    // A repeat of the event and an older state of the payment change nothing: no notification.
    deliver(
        &app,
        &ep,
        &event(
            "evt_n1",
            "payment_intent.succeeded",
            T,
            succeeded("pi_n", 4200),
        ),
    )
    .await;
    deliver(
        &app,
        &ep,
        &event(
            "evt_n0",
            "payment_intent.succeeded",
            T - 10,
            succeeded("pi_n", 1),
        ),
    )
    .await;

    let received = eventually(15, || async {
        let got = target.received.lock().unwrap().clone();
        (got.len() >= 3).then_some(got)
    })
    .await;
    // The same notification three times (two 500s, then a 200), each signed.
    let bodies: Vec<Value> = received
        .iter()
        .map(|(_, b)| serde_json::from_str(b).unwrap())
        .collect();
    assert!(
        bodies.iter().all(|b| b["id"] == bodies[0]["id"]),
        "{bodies:?}"
    );
    assert!(
        received
            .iter()
            .all(|(sig, body)| signed_with(sig, body, &secret))
    );
    assert!(!signed_with(&received[0].0, &received[0].1, "nsec_wrong"));
    assert_eq!(bodies[0]["type"], "payment.completed");
    assert_eq!(bodies[0]["stripe_event_id"], "evt_n1");
    assert_eq!(
        (
            bodies[0]["data"]["payment_intent"].as_str(),
            bodies[0]["data"]["amount"].as_i64()
        ),
        (Some("pi_n"), Some(4200))
    );

    let log = eventually(10, || async {
        let body = json_body(
            app.authed(
                Method::GET,
                "/stripe/notifications",
                &tenant,
                &tenant.admin_token(),
            )
            .send()
            .await
            .unwrap(),
        )
        .await;
        (body["data"][0]["attributes"]["status"] == "delivered").then_some(body)
    })
    .await;
    assert_eq!(log["data"].as_array().unwrap().len(), 1, "{log}");
    let n = &log["data"][0]["attributes"];
    assert_eq!(n["attempts"], 3);
    let codes: Vec<Value> = n["delivery_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].clone())
        .collect();
    assert_eq!(codes, vec![json!(500), json!(500), json!(200)]);
    // Nothing more arrives.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(target.received.lock().unwrap().len(), 3);

    // Users may not read or change the settings.
    let user = tenant.user_token("someone");
    let denied = app
        .authed(Method::GET, "/stripe/notifications", &tenant, &user)
        .send()
        .await
        .unwrap();
    assert_error(denied, 403, "admin_required").await;
    let bad = app
        .authed(
            Method::PUT,
            "/stripe/notifications/settings",
            &tenant,
            &tenant.admin_token(),
        )
        .json(&json!({"notification_settings": {"url": "ftp://nowhere"}}))
        .send()
        .await
        .unwrap();
    let error = assert_error(bad, 422, "validation_error").await;
    assert_eq!(error["source"]["pointer"], "/notification_settings/url");
}

/// Enqueued by an instance without a worker, delivered by another that starts afterwards;
/// with two workers running, each notification still arrives once.
async fn a_notification_survives_a_restart(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.notify_worker = false).await;
    let tenant = app.tenant().await;
    let target = app_target(0);
    notify_to(&app, &tenant, &target.url).await;
    let ep = endpoint(&app, &tenant).await;
    for i in 0..5 {
        let sub = json!({"id": format!("sub_n{i}"), "object": "subscription", "customer": "cus_n",
            "status": "active", "cancel_at_period_end": false, "created": T, "metadata": {},
            "items": {"object": "list", "data": []}});
        deliver(
            &app,
            &ep,
            &event(
                &format!("evt_s{i}"),
                "customer.subscription.created",
                T,
                sub,
            ),
        )
        .await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(target.received.lock().unwrap().is_empty());

    // Two instances with workers start on the same database.
    app.second_instance_with(|s| s.notify_worker = true).await;
    app.second_instance_with(|s| s.notify_worker = true).await;
    let received = eventually(15, || async {
        let got = target.received.lock().unwrap().clone();
        (got.len() >= 5).then_some(got)
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let received_now = target.received.lock().unwrap().len();
    assert_eq!(received_now, 5, "{received:?}");
    let mut events: Vec<String> = received
        .iter()
        .map(|(_, b)| {
            serde_json::from_str::<Value>(b).unwrap()["stripe_event_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    events.sort();
    assert_eq!(
        events,
        (0..5).map(|i| format!("evt_s{i}")).collect::<Vec<_>>()
    );
    assert!(
        received
            .iter()
            .all(|(_, b)| b.contains("\"subscription.created\""))
    );
}

async fn notifications_log(app: &TestApp, tenant: &TestTenant) -> Value {
    json_body(
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
    .await
}

async fn retry(app: &TestApp, tenant: &TestTenant, token: &str, id: &str) -> reqwest::Response {
    app.authed(
        Method::POST,
        &format!("/stripe/notifications/{id}/retry"),
        tenant,
        token,
    )
    .send()
    .await
    .unwrap()
}

/// A notification that failed for good is sent again when an admin asks, with a fresh count
/// of attempts and its earlier attempts kept in the log.
async fn an_admin_retries_a_failed_notification(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.notify_max_attempts = 1).await;
    let tenant = app.tenant().await;
    let target = app_target(1);
    notify_to(&app, &tenant, &target.url).await;
    let ep = endpoint(&app, &tenant).await;
    deliver(
        &app,
        &ep,
        &event(
            "evt_r1",
            "payment_intent.succeeded",
            T,
            succeeded("pi_r", 900),
        ),
    )
    .await;
    let failed = eventually(15, || async {
        let log = notifications_log(&app, &tenant).await;
        (log["data"][0]["attributes"]["status"] == "failed").then_some(log)
    })
    .await;
    let id = failed["data"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(target.received.lock().unwrap().len(), 1);

    // Users may not; another app's admin does not find it.
    assert_error(
        retry(&app, &tenant, &tenant.user_token("u"), &id).await,
        403,
        "admin_required",
    )
    .await;
    let other = app.tenant().await;
    assert_error(
        retry(&app, &other, &other.admin_token(), &id).await,
        404,
        "not_found",
    )
    .await;

    let response = retry(&app, &tenant, &tenant.admin_token(), &id).await;
    assert_eq!(response.status().as_u16(), 202);
    let queued = json_body(response).await["data"]["attributes"].clone();
    assert_eq!(queued["status"], "pending");
    assert_eq!(queued["attempts"], 0);
    assert_eq!(queued["delivery_log"].as_array().unwrap().len(), 1);
    let delivered = eventually(15, || async {
        let log = notifications_log(&app, &tenant).await;
        (log["data"][0]["attributes"]["status"] == "delivered").then_some(log)
    })
    .await;
    let n = &delivered["data"][0]["attributes"];
    let codes: Vec<Value> = n["delivery_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].clone())
        .collect();
    assert_eq!(codes, vec![json!(500), json!(200)]);
    assert_eq!(target.received.lock().unwrap().len(), 2);
}

/// Stores a due notification of `tenant` directly (no worker runs in these apps).
async fn pending(app: &TestApp, tenant: &str, id: &str, age_secs: i64) {
    let (tenant, id) = (tenant.to_owned(), id.to_owned());
    app.query(move |conn| {
        let at = chrono::Utc::now().naive_utc() - chrono::Duration::seconds(age_secs);
        sales_block::db::notifications::enqueue(
            conn,
            &[sales_block::db::notifications::NewNotification {
                id: id.clone(),
                tenant_id: &tenant,
                event_type: "payment.completed",
                source_event_id: &format!("evt_{id}"),
                payload: "{}".to_owned(),
                status: sales_block::db::notifications::PENDING,
                attempts: 0,
                next_attempt_at: at,
                created_at: at,
            }],
        )
    })
    .await;
}

/// One round takes at most a few of one tenant's notifications: a tenant with a backlog (or
/// a URL that hangs) cannot keep another's waiting. A pending notification cannot be retried.
async fn one_tenant_cannot_fill_a_round(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.notify_worker = false).await;
    for i in 0..12 {
        pending(&app, "t-busy", &format!("busy-{i:02}"), 600 - i).await;
    }
    pending(&app, "t-quiet", "quiet-0", 10).await;
    pending(&app, "t-quiet", "quiet-1", 5).await;
    let claim = |limit: i64, busy: &[&str]| {
        let app = &app;
        let busy: Vec<String> = busy.iter().map(|t| (*t).to_owned()).collect();
        async move {
            app.query(move |conn| {
                let now = chrono::Utc::now().naive_utc();
                sales_block::db::notifications::claim_due(
                    conn,
                    now,
                    now + chrono::Duration::seconds(300),
                    limit,
                    5,
                    &busy,
                )
            })
            .await
            .into_iter()
            .map(|due| due.id)
            .collect::<std::collections::BTreeSet<String>>()
            .into_iter()
            .collect::<Vec<String>>()
        }
    };
    // Oldest first, but five of the busy tenant's at most (the claim's own order is not
    // kept: PostgreSQL's UPDATE ... RETURNING answers in any order).
    assert_eq!(
        claim(7, &[]).await,
        [
            "busy-00", "busy-01", "busy-02", "busy-03", "busy-04", "quiet-0", "quiet-1"
        ]
    );
    // Leased ones are not claimed again; the next five of the busy tenant come next.
    assert_eq!(
        claim(20, &[]).await,
        ["busy-05", "busy-06", "busy-07", "busy-08", "busy-09"]
    );
    // A tenant the worker is still delivering to is left out of the claim.
    pending(&app, "t-quiet", "quiet-2", 3).await;
    assert_eq!(claim(20, &["t-busy"]).await, ["quiet-2"]);
    assert_eq!(claim(20, &["t-quiet"]).await, ["busy-10", "busy-11"]);

    let tenant = app.tenant().await;
    pending(&app, &tenant.created.id, "mine-0", 1).await;
    assert_error(
        retry(&app, &tenant, &tenant.admin_token(), "mine-0").await,
        409,
        "notification_pending",
    )
    .await;
    assert_error(
        retry(&app, &tenant, &tenant.admin_token(), "busy-00").await,
        404,
        "not_found",
    )
    .await;
}

/// A stop (SIGTERM) lets the delivery in flight finish and gives back the leases of the rest
/// of the round, so another instance (or this one, restarted) sends them at once instead of
/// after the lease; nothing more is sent after the stop.
async fn a_stop_finishes_the_delivery_in_flight_and_gives_back_the_rest(backend: Backend) {
    use diesel::prelude::*;
    use sales_block::db::schema::notification_outbox;
    let app = spawn_app_with(backend, |s| s.notify_worker = false).await;
    let tenant = app.tenant().await;
    let target = target_with(0, std::time::Duration::from_millis(1_500));
    notify_to(&app, &tenant, &target.url).await;
    for i in 0..4 {
        pending(&app, &tenant.created.id, &format!("stop-{i}"), 10 - i).await;
    }
    // A second app on the same database, with its worker: it claims the four at once.
    let worker = app.stoppable_instance(|s| s.notify_worker = true).await;
    eventually(10, || async {
        (!target.received.lock().unwrap().is_empty()).then_some(())
    })
    .await;
    worker.stop(true).await;
    let rows = eventually(15, || async {
        let rows: Vec<(String, String, Option<chrono::NaiveDateTime>)> = app
            .query(|conn| {
                notification_outbox::table
                    .select((
                        notification_outbox::id,
                        notification_outbox::status,
                        notification_outbox::leased_until,
                    ))
                    .load(conn)
            })
            .await;
        let delivered = rows
            .iter()
            .filter(|(_, status, _)| status == "delivered")
            .count();
        (delivered == 1 && rows.iter().all(|(_, _, lease)| lease.is_none())).then_some(rows)
    })
    .await;
    let pending_left = rows
        .iter()
        .filter(|(_, status, _)| status == "pending")
        .count();
    assert_eq!(pending_left, 3, "{rows:?}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        target.received.lock().unwrap().len(),
        1,
        "nothing sent after the stop"
    );
}

/// An app that accepts connections and never answers; tells `accepted` of each one.
async fn hanging_app() -> (String, tokio::sync::mpsc::UnboundedReceiver<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/sales", listener.local_addr().unwrap());
    let (accepted, calls) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
            let _ = accepted.send(());
        }
    });
    (url, calls)
}

/// A tenant whose app hangs holds back only its own notifications: another tenant's,
/// enqueued while the worker waits on the hanging app (up to 10 s per attempt, for each of
/// that tenant's notifications in the round), arrives at once.
async fn a_hanging_app_does_not_hold_back_another_tenants_notifications(backend: Backend) {
    let app = spawn_app(backend).await;
    let (hang_url, mut calls) = hanging_app().await;
    let stuck = app.tenant().await;
    notify_to(&app, &stuck, &hang_url).await;
    for i in 0..5 {
        pending(&app, &stuck.created.id, &format!("stuck-{i}"), 60 - i).await;
    }
    tokio::time::timeout(std::time::Duration::from_secs(10), calls.recv())
        .await
        .expect("the worker calls the hanging app");

    let other = app.tenant().await;
    let target = app_target(0);
    notify_to(&app, &other, &target.url).await;
    pending(&app, &other.created.id, "other-0", 0).await;
    let waited = std::time::Instant::now();
    eventually(5, || async {
        (!target.received.lock().unwrap().is_empty()).then_some(())
    })
    .await;
    assert!(
        waited.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        waited.elapsed()
    );
}

on_both_databases!(
    a_hanging_app_does_not_hold_back_another_tenants_notifications,
    a_stop_finishes_the_delivery_in_flight_and_gives_back_the_rest,
    a_notification_fails_twice_then_arrives_signed,
    a_notification_survives_a_restart,
    an_admin_retries_a_failed_notification,
    one_tenant_cannot_fill_a_round,
);
