//! Webhook delivery against a real receiver on loopback: signatures verify with
//! async-stripe-webhook and a plain HMAC, events arrive in order and parse into typed
//! objects, failures are retried with growing gaps and a fresh timestamp, and the test
//! helpers (redeliver, arbitrary events, pause and flush, secret roll) work end to end.

mod common;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use common::{Raw, Reply, big_stack, start, test_key};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use stripe_webhook::{EventObject, Webhook};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    content_type: String,
    user_agent: String,
    signature: String,
    body: String,
    json: Value,
    at: Instant,
}

impl Received {
    fn event_type(&self) -> &str {
        self.json["type"].as_str().unwrap_or_default()
    }

    fn event_id(&self) -> &str {
        self.json["id"].as_str().unwrap_or_default()
    }

    /// `t` of `Stripe-Signature`.
    fn timestamp(&self) -> i64 {
        self.signature
            .split(',')
            .find_map(|part| part.strip_prefix("t="))
            .and_then(|t| t.parse().ok())
            .expect("t=")
    }

    /// The `v1` values of `Stripe-Signature`.
    fn v1(&self) -> Vec<String> {
        self.signature
            .split(',')
            .filter_map(|part| part.strip_prefix("v1="))
            .map(str::to_owned)
            .collect()
    }
}

#[derive(Default)]
struct Shared {
    log: Mutex<Vec<Received>>,
    /// Statuses to answer, in order; 200 once empty.
    plan: Mutex<VecDeque<u16>>,
}

/// A webhook receiver on loopback that records every request.
struct Receiver {
    url: String,
    shared: Arc<Shared>,
    server: ServerHandle,
}

async fn receive(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let body = String::from_utf8_lossy(&body).into_owned();
    let received = Received {
        content_type: header("content-type"),
        user_agent: header("user-agent"),
        signature: header("stripe-signature"),
        json: serde_json::from_str(&body).unwrap_or(Value::Null),
        body,
        at: Instant::now(),
    };
    shared.log.lock().expect("log").push(received);
    let status = shared.plan.lock().expect("plan").pop_front().unwrap_or(200);
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status")).finish()
}

impl Receiver {
    async fn start(plan: &[u16]) -> Receiver {
        let shared = Arc::new(Shared::default());
        shared.plan.lock().expect("plan").extend(plan);
        let data = web::Data::from(Arc::clone(&shared));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(receive))
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")
        .expect("receiver binds");
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Receiver {
            url: format!("http://{addr}/webhooks"),
            shared,
            server: handle,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.shared.log.lock().expect("log").clone()
    }

    /// The requests received, once there are at least `n`.
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        eventually(&format!("{n} deliveries"), || async {
            let got = self.received();
            (got.len() >= n).then_some(got)
        })
        .await
    }

    async fn stop(self) {
        self.server.stop(true).await;
    }
}

/// Polls `check` until it answers, for at most 15 s.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn post_ok(raw: &Raw, path: &str, form: &str) -> Reply {
    let reply = raw.post(path, form).await;
    assert_eq!(reply.status, 200, "{path}: {}", reply.text);
    reply
}

async fn post_json(raw: &Raw, path: &str, body: Value) -> Reply {
    raw.send(
        raw.request(reqwest::Method::POST, path)
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await
}

fn id(reply: &Reply) -> String {
    reply.json["id"].as_str().expect("id").to_owned()
}

/// Creates an endpoint for `url` subscribed to `events`; answers (id, secret).
async fn endpoint(raw: &Raw, url: &str, events: &[&str]) -> (String, String) {
    let mut form = format!("url={}", urlencode(url));
    for (i, event) in events.iter().enumerate() {
        form.push_str(&format!("&enabled_events[{i}]={event}"));
    }
    let reply = post_ok(raw, "/v1/webhook_endpoints", &form).await;
    let secret = reply.json["secret"].as_str().expect("secret").to_owned();
    (id(&reply), secret)
}

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A").replace('/', "%2F")
}

fn hmac_hex(secret: &str, payload: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The delivery attempts recorded for the key.
async fn attempts(raw: &Raw, query: &str) -> Vec<Value> {
    let reply = raw.get(&format!("/_emulator/deliveries?{query}")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json["data"].as_array().expect("data").clone()
}

/// Every event of the key, oldest first.
async fn events_oldest_first(raw: &Raw) -> Vec<Value> {
    let reply = raw.get("/v1/events?limit=100").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["has_more"], false);
    let mut events = reply.json["data"].as_array().expect("data").clone();
    events.reverse();
    events
}

#[test]
fn a_subscription_is_delivered_signed_in_order_and_parses_through_async_stripe() {
    big_stack(|| async {
        let emulator = start().await;
        let raw = Raw::new(&emulator, &test_key());
        let receiver = Receiver::start(&[]).await;
        let paid_only = Receiver::start(&[]).await;
        let (_, secret) = endpoint(&raw, &receiver.url, &["*"]).await;
        let (_, paid_secret) = endpoint(&raw, &paid_only.url, &["invoice.paid"]).await;

        let customer = id(&post_ok(
            &raw,
            "/v1/customers",
            "email=w%40example.com&payment_method=pm_card_visa&invoice_settings[default_payment_method]=pm_card_visa",
        )
        .await);
        let price = id(&post_ok(
            &raw,
            "/v1/prices",
            "currency=usd&unit_amount=1500&recurring[interval]=month&product_data[name]=Pro",
        )
        .await);
        let sub = id(&post_ok(
            &raw,
            "/v1/subscriptions",
            &format!("customer={customer}&items[0][price]={price}"),
        )
        .await);

        let events = events_oldest_first(&raw).await;
        let expected: Vec<&str> = vec![
            "customer.created",
            "payment_method.attached",
            "product.created",
            "price.created",
            "customer.subscription.created",
            "invoice.created",
            "payment_intent.created",
            "invoice.finalized",
            "charge.succeeded",
            "payment_intent.succeeded",
            "invoice.paid",
            "invoice.payment_succeeded",
            "invoice_payment.paid",
        ];
        let recorded: Vec<&str> = events
            .iter()
            .map(|e| e["type"].as_str().expect("type"))
            .collect();
        assert_eq!(recorded, expected);

        let got = receiver.wait_for(expected.len()).await;
        let delivered: Vec<&str> = got.iter().map(Received::event_type).collect();
        assert_eq!(delivered, expected, "delivered in the order created");
        for (received, event) in got.iter().zip(&events) {
            assert_eq!(received.event_id(), event["id"]);
            assert_eq!(received.content_type, "application/json; charset=utf-8");
            assert_eq!(
                received.user_agent,
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
            );
            // Stripe's own verification, parsing the typed object as a receiver does.
            let parsed = Webhook::construct_event(&received.body, &received.signature, &secret)
                .unwrap_or_else(|e| panic!("{}: {e:?}", received.event_type()));
            assert_eq!(parsed.id.as_str(), received.event_id());
            assert!(!matches!(parsed.data.object, EventObject::Unknown(_)));
            assert!(
                Webhook::construct_event(&received.body, &received.signature, &paid_secret)
                    .is_err(),
                "another endpoint's secret does not verify"
            );
            // And the plain algorithm: one v1 = hex HMAC-SHA256(secret, "<t>.<body>").
            let t = received.timestamp();
            assert!((t - chrono::Utc::now().timestamp()).abs() < 60);
            assert_eq!(
                received.v1(),
                [hmac_hex(&secret, &format!("{t}.{}", received.body))]
            );
            // What was delivered is what the API records (but for the pending count).
            let mut recorded = event.clone();
            recorded["pending_webhooks"] = received.json["pending_webhooks"].clone();
            assert_eq!(received.json, recorded);
        }
        // An update's data.object is the object as GET answers it.
        let last_sub = got
            .iter()
            .rev()
            .find(|r| r.event_type().starts_with("customer.subscription."))
            .expect("subscription event");
        assert_eq!(
            last_sub.json["data"]["object"],
            raw.get(&format!("/v1/subscriptions/{sub}")).await.json
        );
        let paid = got
            .iter()
            .find(|r| r.event_type() == "invoice.paid")
            .expect("invoice.paid");
        let invoice = paid.json["data"]["object"]["id"].as_str().expect("invoice");
        assert_eq!(
            paid.json["data"]["object"],
            raw.get(&format!("/v1/invoices/{invoice}")).await.json
        );
        assert_eq!(paid.json["pending_webhooks"], 2, "both endpoints want it");

        // The endpoint subscribed to invoice.paid only gets that.
        let only = paid_only.wait_for(1).await;
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].event_type(), "invoice.paid");
        assert_eq!(only[0].event_id(), paid.event_id());

        // Once delivered, no event is pending.
        eventually("every event delivered", || async {
            let pending = raw.get("/v1/events?delivery_success=false").await;
            pending.json["data"]
                .as_array()
                .is_some_and(Vec::is_empty)
                .then_some(())
        })
        .await;
        let log = attempts(&raw, "").await;
        assert_eq!(log.len(), expected.len() + 1);
        assert!(log.iter().all(|a| a["status"] == 200 && a["attempt"] == 1));
        receiver.stop().await;
        paid_only.stop().await;
        emulator.stop().await;
    });
}

#[tokio::test]
async fn failures_are_retried_with_growing_gaps_and_a_fresh_timestamp() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    let config = post_json(
        &raw,
        "/_emulator/delivery/config",
        json!({"retry_base_ms": 600, "max_attempts": 5}),
    )
    .await;
    assert_eq!(config.status, 200, "{}", config.text);
    assert_eq!(config.json["retry_base_ms"], 600);
    assert_eq!(config.json["retry_max_ms"], 60_000);
    let receiver = Receiver::start(&[500, 503]).await;
    let (endpoint_id, secret) = endpoint(&raw, &receiver.url, &["customer.created"]).await;

    post_ok(&raw, "/v1/customers", "name=Retry").await;
    let event = events_oldest_first(&raw).await.remove(0);
    let event_id = event["id"].as_str().expect("id").to_owned();
    let got = receiver.wait_for(3).await;
    let log = eventually("three attempts recorded", || async {
        let log = attempts(&raw, &format!("event={event_id}")).await;
        (log.len() >= 3).then_some(log)
    })
    .await;
    assert_eq!(got.len(), 3);
    assert_eq!(log.len(), 3);
    let statuses: Vec<&Value> = log.iter().map(|a| &a["status"]).collect();
    assert_eq!(statuses, [&json!(500), &json!(503), &json!(200)]);
    let numbers: Vec<&Value> = log.iter().map(|a| &a["attempt"]).collect();
    assert_eq!(numbers, [&json!(1), &json!(2), &json!(3)]);
    assert!(log.iter().all(|a| a["endpoint"] == endpoint_id.as_str()));
    assert_eq!(log[0]["next_retry_in_ms"], 600);
    assert_eq!(log[1]["next_retry_in_ms"], 1200);
    assert_eq!(log[2]["next_retry_in_ms"], Value::Null);
    assert_eq!(log[2]["succeeded"], true);

    // The same event each time, freshly signed.
    assert!(got.iter().all(|r| r.event_id() == event_id));
    let first_gap = got[1].at - got[0].at;
    let second_gap = got[2].at - got[1].at;
    assert!(first_gap >= Duration::from_millis(600), "{first_gap:?}");
    assert!(second_gap >= Duration::from_millis(1200), "{second_gap:?}");
    assert!(second_gap > first_gap);
    assert!(
        got[2].timestamp() > got[0].timestamp(),
        "1.8 s later, the signature's t moved on"
    );
    for received in &got {
        Webhook::construct_event(&received.body, &received.signature, &secret)
            .expect("every attempt verifies");
    }
    eventually("the event delivered", || async {
        let event = raw.get(&format!("/v1/events/{event_id}")).await;
        (event.json["pending_webhooks"] == 0).then_some(())
    })
    .await;
    receiver.stop().await;
    emulator.stop().await;
}

#[tokio::test]
async fn deliveries_stop_after_max_attempts_and_stay_pending() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    post_json(
        &raw,
        "/_emulator/delivery/config",
        json!({"retry_base_ms": 20, "max_attempts": 3}),
    )
    .await;
    let receiver = Receiver::start(&[500, 500, 500, 500]).await;
    endpoint(&raw, &receiver.url, &["product.created"]).await;
    // Nothing listens there: connection errors.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let (dead, _) = endpoint(
        &raw,
        &format!("http://127.0.0.1:{closed}/hook"),
        &["product.created"],
    )
    .await;

    post_ok(&raw, "/v1/products", "name=Nope").await;
    let log = eventually("six attempts", || async {
        let log = attempts(&raw, "").await;
        (log.len() >= 6).then_some(log)
    })
    .await;
    assert_eq!(receiver.wait_for(3).await.len(), 3);
    let to_dead: Vec<&Value> = log
        .iter()
        .filter(|a| a["endpoint"] == dead.as_str())
        .collect();
    assert_eq!(to_dead.len(), 3);
    assert!(to_dead.iter().all(|a| a["status"].is_null()));
    assert!(
        to_dead[0]["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("could not connect")),
        "{}",
        to_dead[0]
    );
    assert_eq!(to_dead[2]["next_retry_in_ms"], Value::Null);
    let pending = raw.get("/v1/events?delivery_success=false").await;
    assert_eq!(pending.json["data"][0]["type"], "product.created");
    assert_eq!(pending.json["data"][0]["pending_webhooks"], 2);
    assert_eq!(
        raw.get("/v1/events?delivery_success=true").await.json["data"],
        json!([])
    );
    receiver.stop().await;
    emulator.stop().await;
}

#[tokio::test]
async fn redeliver_sends_the_same_event_again() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    let receiver = Receiver::start(&[]).await;
    let other = Receiver::start(&[]).await;
    let (endpoint_id, secret) = endpoint(&raw, &receiver.url, &["customer.created"]).await;
    let (other_id, _) = endpoint(&raw, &other.url, &["customer.updated"]).await;
    post_ok(&raw, "/v1/customers", "name=Twice").await;
    let first = receiver.wait_for(1).await.remove(0);

    let again = post_json(
        &raw,
        &format!("/_emulator/events/{}/redeliver", first.event_id()),
        json!({}),
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.json["endpoints"], json!([endpoint_id]));
    let got = receiver.wait_for(2).await;
    assert_eq!(got[1].event_id(), first.event_id());
    assert_eq!(got[1].json["data"], first.json["data"]);
    Webhook::construct_event(&got[1].body, &got[1].signature, &secret).expect("verifies");

    // To a chosen endpoint, even one not subscribed to the type.
    let chosen = post_json(
        &raw,
        &format!("/_emulator/events/{}/redeliver", first.event_id()),
        json!({"endpoint": other_id}),
    )
    .await;
    assert_eq!(chosen.json["endpoints"], json!([other_id]));
    assert_eq!(other.wait_for(1).await[0].event_id(), first.event_id());
    let log = eventually("three attempts", || async {
        let log = attempts(&raw, &format!("event={}", first.event_id())).await;
        (log.len() >= 3).then_some(log)
    })
    .await;
    let redeliveries: Vec<&Value> = log.iter().map(|a| &a["redelivery"]).collect();
    assert_eq!(redeliveries, [&json!(false), &json!(true), &json!(true)]);

    let missing = post_json(&raw, "/_emulator/events/evt_nope/redeliver", json!({})).await;
    assert_eq!(missing.status, 404);
    let bad_endpoint = post_json(
        &raw,
        &format!("/_emulator/events/{}/redeliver", first.event_id()),
        json!({"endpoint": "we_nope"}),
    )
    .await;
    assert_eq!(bad_endpoint.status, 400);
    assert_eq!(bad_endpoint.json["error"]["param"], "endpoint");
    receiver.stop().await;
    other.stop().await;
    emulator.stop().await;
}

#[tokio::test]
async fn pause_and_flush_reverse_delivers_a_pair_reversed() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    let receiver = Receiver::start(&[]).await;
    endpoint(
        &raw,
        &receiver.url,
        &["customer.created", "customer.updated"],
    )
    .await;
    let paused = post_json(&raw, "/_emulator/delivery", json!({"paused": true})).await;
    assert_eq!(paused.json["paused"], true);

    let customer = id(&post_ok(&raw, "/v1/customers", "name=First").await);
    post_ok(&raw, &format!("/v1/customers/{customer}"), "name=Second").await;
    let status = raw.get("/_emulator/delivery").await;
    assert_eq!(status.json["queued"], 2);
    assert!(
        receiver.received().is_empty(),
        "nothing goes out while paused"
    );

    let flushed = post_json(
        &raw,
        "/_emulator/delivery/flush",
        json!({"order": "reverse"}),
    )
    .await;
    assert_eq!(flushed.status, 200, "{}", flushed.text);
    let results: Vec<(&Value, &Value)> = flushed.json["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|a| (&a["type"], &a["status"]))
        .collect();
    assert_eq!(
        results,
        [
            (&json!("customer.updated"), &json!(200)),
            (&json!("customer.created"), &json!(200)),
        ]
    );
    // The flush answered after both first attempts: the receiver has them, reversed.
    let got = receiver.received();
    let order: Vec<&str> = got.iter().map(Received::event_type).collect();
    assert_eq!(order, ["customer.updated", "customer.created"]);
    assert_eq!(got[0].json["data"]["object"]["name"], "Second");
    assert_eq!(
        got[0].json["data"]["previous_attributes"],
        json!({"name": "First"})
    );

    // Still paused: the next event queues until resumed.
    post_ok(&raw, &format!("/v1/customers/{customer}"), "name=Third").await;
    assert_eq!(raw.get("/_emulator/delivery").await.json["queued"], 1);
    let resumed = post_json(&raw, "/_emulator/delivery", json!({"paused": false})).await;
    assert_eq!(resumed.json["paused"], false);
    let got = receiver.wait_for(3).await;
    assert_eq!(got[2].json["data"]["object"]["name"], "Third");

    let bad = post_json(
        &raw,
        "/_emulator/delivery/flush",
        json!({"order": "random"}),
    )
    .await;
    assert_eq!(bad.status, 400);
    receiver.stop().await;
    emulator.stop().await;
}

#[tokio::test]
async fn arbitrary_events_can_be_created_with_a_chosen_time_and_id() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    let receiver = Receiver::start(&[]).await;
    endpoint(&raw, &receiver.url, &["*"]).await;
    let customer = post_ok(&raw, "/v1/customers", "name=Tie").await;
    let real = receiver.wait_for(1).await.remove(0);
    let created = real.json["created"].as_i64().expect("created");

    // An older `customer.updated` for the same second, delivered after the newer state.
    let stale = post_json(
        &raw,
        "/_emulator/events",
        json!({
            "id": "evt_stale_tie",
            "type": "customer.updated",
            "object": customer.json,
            "previous_attributes": {"name": "Before"},
            "created": created,
        }),
    )
    .await;
    assert_eq!(stale.status, 200, "{}", stale.text);
    assert_eq!(stale.json["id"], "evt_stale_tie");
    assert_eq!(stale.json["created"], created);
    assert_eq!(stale.json["pending_webhooks"], 1);
    assert_eq!(
        stale.json["request"],
        json!({"id": null, "idempotency_key": null})
    );
    let got = receiver.wait_for(2).await;
    assert_eq!(got[1].event_id(), "evt_stale_tie");
    assert_eq!(got[1].json["created"], got[0].json["created"], "a tie");
    assert_eq!(got[1].json["data"]["previous_attributes"]["name"], "Before");
    let stored = raw.get("/v1/events/evt_stale_tie").await;
    assert_eq!(stored.json["type"], "customer.updated");

    // Not delivered: it waits, pending, for a redelivery. (A day old: `GET /v1/events`
    // lists the last 30 days.)
    let day_ago = created - 86_400;
    let quiet = post_json(
        &raw,
        "/_emulator/events",
        json!({"type": "invoice.paid", "object": {"id": "in_x", "object": "invoice"}, "deliver": false, "created": day_ago}),
    )
    .await;
    assert_eq!(quiet.status, 200, "{}", quiet.text);
    assert_eq!(quiet.json["created"], day_ago);
    let pending = raw.get("/v1/events?delivery_success=false").await;
    assert_eq!(pending.json["data"][0]["id"], quiet.json["id"]);

    for (body, param) in [
        (
            json!({"type": "customer.updated", "object": {}, "id": "evt_stale_tie"}),
            "id",
        ),
        (json!({"type": "no.such", "object": {}}), "type"),
        (json!({"type": "*", "object": {}}), "type"),
        (json!({"object": {}}), "type"),
        (json!({"type": "customer.updated", "object": []}), "object"),
        (
            json!({"type": "customer.updated", "object": {}, "id": "cus_1"}),
            "id",
        ),
        (
            json!({"type": "customer.updated", "object": {}, "created": "x"}),
            "created",
        ),
    ] {
        let reply = post_json(&raw, "/_emulator/events", body.clone()).await;
        assert_eq!(reply.status, 400, "{body}");
        assert_eq!(reply.json["error"]["param"], param, "{body}");
    }
    receiver.stop().await;
    emulator.stop().await;
}

#[tokio::test]
async fn a_rolled_secret_signs_beside_the_old_one_until_it_expires() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    let receiver = Receiver::start(&[]).await;
    let (endpoint_id, old) = endpoint(&raw, &receiver.url, &["customer.created"]).await;
    let rolled = post_json(
        &raw,
        &format!("/_emulator/webhook_endpoints/{endpoint_id}/roll_secret"),
        json!({"expires_in_secs": 3600}),
    )
    .await;
    assert_eq!(rolled.status, 200, "{}", rolled.text);
    let new = rolled.json["secret"].as_str().expect("secret").to_owned();
    assert!(new.starts_with("whsec_"));
    assert_ne!(new, old);

    post_ok(&raw, "/v1/customers", "name=Roll").await;
    let got = receiver.wait_for(1).await.remove(0);
    let t = got.timestamp();
    let payload = format!("{t}.{}", got.body);
    assert_eq!(
        got.v1(),
        [hmac_hex(&new, &payload), hmac_hex(&old, &payload)]
    );
    for secret in [&new, &old] {
        Webhook::construct_event(&got.body, &got.signature, secret).expect("both verify");
    }

    // Rolled again with no overlap: only the newest signs.
    let again = post_json(
        &raw,
        &format!("/_emulator/webhook_endpoints/{endpoint_id}/roll_secret"),
        json!({"expires_in_secs": 0}),
    )
    .await;
    let newest = again.json["secret"].as_str().expect("secret").to_owned();
    post_ok(&raw, "/v1/customers", "name=Roll2").await;
    let got = receiver.wait_for(2).await.remove(1);
    assert_eq!(got.v1().len(), 1);
    Webhook::construct_event(&got.body, &got.signature, &newest).expect("verifies");
    assert!(Webhook::construct_event(&got.body, &got.signature, &new).is_err());

    let missing = post_json(
        &raw,
        "/_emulator/webhook_endpoints/we_nope/roll_secret",
        json!({}),
    )
    .await;
    assert_eq!(missing.status, 404);
    let too_long = post_json(
        &raw,
        &format!("/_emulator/webhook_endpoints/{endpoint_id}/roll_secret"),
        json!({"expires_in_secs": 86_401}),
    )
    .await;
    assert_eq!(too_long.status, 400);
    receiver.stop().await;
    emulator.stop().await;
}

#[tokio::test]
async fn stopping_the_emulator_stops_its_deliveries() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    post_json(
        &raw,
        "/_emulator/delivery/config",
        json!({"retry_base_ms": 30, "retry_max_ms": 30, "max_attempts": 100}),
    )
    .await;
    let receiver = Receiver::start(&[500; 200]).await;
    endpoint(&raw, &receiver.url, &["customer.created"]).await;
    post_ok(&raw, "/v1/customers", "name=Loop").await;
    receiver.wait_for(3).await;
    emulator.stop().await;
    let count = receiver.received().len();
    // A negative check needs a window: ten retry intervals.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        receiver.received().len() <= count + 1,
        "at most the attempt in flight lands after stop"
    );
    let settled = receiver.received().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), settled);
    receiver.stop().await;
}

#[tokio::test]
async fn deleting_the_data_forgets_queued_deliveries_and_attempts() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    let receiver = Receiver::start(&[]).await;
    endpoint(&raw, &receiver.url, &["customer.created"]).await;
    post_ok(&raw, "/v1/customers", "name=A").await;
    receiver.wait_for(1).await;
    eventually("an attempt", || async {
        (!attempts(&raw, "").await.is_empty()).then_some(())
    })
    .await;
    post_json(&raw, "/_emulator/delivery", json!({"paused": true})).await;
    post_ok(&raw, "/v1/customers", "name=B").await;
    assert_eq!(raw.get("/_emulator/delivery").await.json["queued"], 1);
    assert_eq!(raw.delete("/_emulator/data").await.status, 200);
    assert_eq!(raw.get("/_emulator/delivery").await.json["queued"], 0);
    assert!(attempts(&raw, "").await.is_empty());
    assert!(events_oldest_first(&raw).await.is_empty());
    receiver.stop().await;
    emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_keep_up_with_a_burst_in_order_without_slowing_requests() {
    let emulator = start().await;
    let key = test_key();
    let raw = Raw::new(&emulator, &key);
    let receiver = Receiver::start(&[]).await;
    endpoint(&raw, &receiver.url, &["*"]).await;
    let base = emulator.base_url();
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let (http, base, key) = (http.clone(), base.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..60 {
                let reply = http
                    .post(format!("{base}/v1/customers"))
                    .bearer_auth(&key)
                    .body(format!("name=w{worker}n{i}"))
                    .send()
                    .await
                    .expect("reply");
                assert_eq!(reply.status(), 200);
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let answered = started.elapsed();
    let got = receiver.wait_for(480).await;
    let delivered = started.elapsed();
    println!(
        "480 requests answered in {answered:?} ({:.0} req/s), all delivered after {delivered:?}",
        480.0 / answered.as_secs_f64()
    );
    // Delivered one at a time per endpoint, in the order the events were created.
    let mut created = Vec::new();
    let mut query = "limit=100".to_owned();
    loop {
        let page = raw.get(&format!("/v1/events?{query}")).await;
        let data = page.json["data"].as_array().expect("data").clone();
        let last = data
            .last()
            .map(|e| e["id"].as_str().expect("id").to_owned());
        created.extend(data.into_iter().map(|e| e["id"].clone()));
        match (page.json["has_more"] == true, last) {
            (true, Some(last)) => query = format!("limit=100&starting_after={last}"),
            _ => break,
        }
    }
    created.reverse();
    let arrived: Vec<Value> = got.iter().map(|r| json!(r.event_id())).collect();
    assert_eq!(arrived, created);
    receiver.stop().await;
    emulator.stop().await;
}

#[tokio::test]
async fn connected_account_events_go_to_its_endpoints_and_the_platforms_connect_endpoints() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    let receiver = Receiver::start(&[]).await;
    let as_account = |path: &str, form: &str| {
        raw.request(reqwest::Method::POST, path)
            .header("Stripe-Account", "acct_1Connected")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_owned())
    };
    let url = urlencode(&receiver.url);
    let (platform, _) = endpoint(&raw, &receiver.url, &["customer.created"]).await;
    let connect = id(&post_ok(
        &raw,
        "/v1/webhook_endpoints",
        &format!("url={url}&enabled_events[0]=customer.created&connect=true"),
    )
    .await);
    let own = raw
        .send(as_account(
            "/v1/webhook_endpoints",
            &format!("url={url}&enabled_events[0]=*"),
        ))
        .await;
    assert_eq!(own.status, 200, "{}", own.text);
    let own = id(&own);

    post_json(&raw, "/_emulator/delivery", json!({"paused": true})).await;
    let connected = raw
        .send(as_account("/v1/customers", "name=Connected"))
        .await;
    assert_eq!(connected.status, 200);
    post_ok(&raw, "/v1/customers", "name=Platform").await;
    let flushed = post_json(&raw, "/_emulator/delivery/flush", json!({})).await;
    let mut deliveries: Vec<(String, i64)> = flushed.json["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|a| {
            (
                a["endpoint"].as_str().expect("endpoint").to_owned(),
                a["status"].as_i64().expect("status"),
            )
        })
        .collect();
    deliveries.sort();
    let mut expected = vec![(own, 200), (connect, 200), (platform, 200)];
    expected.sort();
    assert_eq!(deliveries, expected);
    let got = receiver.received();
    let from_account: Vec<&Received> = got
        .iter()
        .filter(|r| r.json["data"]["object"]["name"] == "Connected")
        .collect();
    assert_eq!(from_account.len(), 2);
    assert!(
        from_account
            .iter()
            .all(|r| r.json["account"] == "acct_1Connected")
    );
    let from_platform: Vec<&Received> = got
        .iter()
        .filter(|r| r.json["data"]["object"]["name"] == "Platform")
        .collect();
    assert_eq!(from_platform.len(), 1);
    assert!(from_platform[0].json.get("account").is_none());
    // Each account lists its own events.
    let listed = raw
        .send(
            raw.request(reqwest::Method::GET, "/v1/events")
                .header("Stripe-Account", "acct_1Connected"),
        )
        .await;
    assert_eq!(listed.json["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed.json["data"][0]["account"], "acct_1Connected");
    receiver.stop().await;
    emulator.stop().await;
}
