//! What a historical sync relies on, over HTTP: seeding a big account, paging every list by
//! `starting_after` / `ending_before` / `created` (same-second ties included), events'
//! filters and 30-day window, charges, nested lists (invoice lines, subscription items)
//! past the 10 embedded, and the fault modes (failed or lost deliveries, a rate limit).

mod common;

use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use common::{Raw, Reply, start, test_key};

async fn post_json(raw: &Raw, path: &str, body: Value) -> Reply {
    raw.send(
        raw.request(reqwest::Method::POST, path)
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await
}

/// Whether the key's request log (`GET /_emulator/requests`) holds a request that `matches`.
async fn logged(raw: &Raw, matches: impl Fn(&Value) -> bool) -> bool {
    let log = get_ok(raw, "/_emulator/requests").await;
    log["data"].as_array().expect("log").iter().any(matches)
}

/// Sets the key's fault mode `fail_path` (`""`: none).
async fn set_fail_path(raw: &Raw, path: &str) -> Reply {
    post_json(raw, "/_emulator/config", json!({ "fail_path": path })).await
}

async fn seed(raw: &Raw, body: Value) -> Value {
    let reply = post_json(raw, "/_emulator/seed", body).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json
}

async fn get_ok(raw: &Raw, path: &str) -> Value {
    let reply = raw.get(path).await;
    assert_eq!(reply.status, 200, "{path}: {}", reply.text);
    reply.json
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|o| o["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Every id of a list, paging forward from the newest (`query` without `limit` or cursor).
async fn page_forward(raw: &Raw, path: &str, query: &str, limit: usize) -> Vec<String> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut url = format!("{path}?limit={limit}{query}");
        if let Some(last) = &after {
            url.push_str(&format!("&starting_after={last}"));
        }
        let page = get_ok(raw, &url).await;
        let page_ids = ids(&page);
        assert!(page_ids.len() <= limit);
        after = page_ids.last().cloned();
        all.extend(page_ids);
        if page["has_more"] != true {
            break;
        }
    }
    all
}

/// Every id of a list, paging backward from the oldest (`ending_before`), newest first.
async fn page_backward(raw: &Raw, path: &str, oldest: &str, limit: usize) -> Vec<String> {
    let mut all = vec![oldest.to_owned()];
    let mut before = oldest.to_owned();
    loop {
        let page = get_ok(raw, &format!("{path}?limit={limit}&ending_before={before}")).await;
        let page_ids = ids(&page);
        if let Some(first) = page_ids.first() {
            before = first.clone();
        }
        let mut merged = page_ids;
        merged.extend(all);
        all = merged;
        if page["has_more"] != true {
            break;
        }
    }
    all
}

#[tokio::test]
async fn a_seeded_account_pages_completely_both_ways_with_same_second_ties() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    // 1,050 customers over ten seconds (105 share each second), 250 more in one second.
    let answer = seed(
        &raw,
        json!({"customers": 1050, "created_from": 1_700_000_000, "created_to": 1_700_000_009}),
    )
    .await;
    assert_eq!(answer["object"], "emulator.seed");
    assert_eq!(answer["created"]["customer"], 1050);
    seed(
        &raw,
        json!({"customers": 250, "created_from": 1_700_000_100, "created_to": 1_700_000_100}),
    )
    .await;

    let forward = page_forward(&raw, "/v1/customers", "", 100).await;
    assert_eq!(forward.len(), 1300);
    let mut unique = forward.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 1300, "no customer twice");
    let created_of = |id: &str| {
        let raw = &raw;
        let id = id.to_owned();
        async move { get_ok(raw, &format!("/v1/customers/{id}")).await["created"].clone() }
    };
    assert_eq!(created_of(&forward[0]).await, 1_700_000_100);
    assert_eq!(created_of(&forward[1299]).await, 1_700_000_000);

    let oldest = forward.last().expect("customers").clone();
    let backward = page_backward(&raw, "/v1/customers", &oldest, 100).await;
    assert_eq!(backward, forward, "ending_before walks the same order back");

    // created bounds seek, and combine with cursors.
    let window = page_forward(
        &raw,
        "/v1/customers",
        "&created[gte]=1700000002&created[lt]=1700000004",
        100,
    )
    .await;
    assert_eq!(window.len(), 210);
    assert_eq!(
        window,
        forward[250 + 6 * 105..250 + 8 * 105].to_vec(),
        "the window is a slice of the full order"
    );
    let exact = page_forward(&raw, "/v1/customers", "&created=1700000100", 100).await;
    assert_eq!(exact, forward[..250].to_vec());
    let none = get_ok(&raw, "/v1/customers?created[gt]=1700000100").await;
    assert_eq!(ids(&none).len(), 0);
    assert_eq!(none["has_more"], false);

    // Bad paging is a Stripe error, never a crash.
    for (query, status, code) in [
        ("limit=101", 400, "parameter_invalid_integer"),
        ("limit=-5", 400, "parameter_invalid_integer"),
        ("created[gt]=abc", 400, "parameter_invalid_integer"),
        ("created[between]=1", 400, "parameter_unknown"),
        ("starting_after=cus_missing", 404, "resource_missing"),
        ("created[lt]=-9223372036854775808&limit=1", 200, ""),
        ("created[gt]=9223372036854775807", 200, ""),
    ] {
        let reply = raw.get(&format!("/v1/customers?{query}")).await;
        assert_eq!(reply.status, status, "{query}: {}", reply.text);
        if status != 200 {
            assert_eq!(reply.json["error"]["code"], code, "{query}");
            assert_eq!(reply.json["error"]["type"], "invalid_request_error");
        }
    }
    emulator.stop().await;
}

#[tokio::test]
async fn seeding_honours_stripe_account_and_refuses_bad_bodies() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    let seeded = raw
        .send(
            raw.request(reqwest::Method::POST, "/_emulator/seed")
                .header("stripe-account", "acct_seeded")
                .body(json!({"customers": 3}).to_string()),
        )
        .await;
    assert_eq!(seeded.status, 200, "{}", seeded.text);
    let own = get_ok(&raw, "/v1/customers").await;
    assert_eq!(ids(&own).len(), 0);
    let connected = raw
        .send(
            raw.request(reqwest::Method::GET, "/v1/customers")
                .header("stripe-account", "acct_seeded"),
        )
        .await;
    assert_eq!(ids(&connected.json).len(), 3);

    for body in [
        "nope",
        "[]",
        r#"{"customers": -1}"#,
        r#"{"customers": 1e30}"#,
        r#"{"customers": 2000000}"#,
        r#"{"unknown": 1}"#,
        r#"{"subscriptions": 1}"#,
        r#"{"customers": 1, "subscriptions": 1, "products": 1, "items_per_subscription": [1, 3]}"#,
        r#"{"customers": 1, "lines_per_invoice": [5, 2]}"#,
        r#"{"created_from": 20, "created_to": 10}"#,
    ] {
        let reply = raw
            .send(
                raw.request(reqwest::Method::POST, "/_emulator/seed")
                    .body(body),
            )
            .await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
        assert_eq!(
            reply.json["error"]["type"], "invalid_request_error",
            "{body}"
        );
    }
    let unauthenticated = reqwest::Client::new()
        .post(format!("{}/_emulator/seed", emulator.base_url()))
        .body("{}")
        .send()
        .await
        .expect("answered");
    assert_eq!(unauthenticated.status(), 401);
    emulator.stop().await;
}

#[tokio::test]
async fn nested_lists_embed_ten_and_page_the_rest() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    seed(
        &raw,
        json!({"customers": 2, "products": 10, "prices_per_product": 3,
               "subscriptions": 2, "items_per_subscription": [25, 25],
               "invoices": 2, "lines_per_invoice": [230, 230]}),
    )
    .await;
    let subs = get_ok(&raw, "/v1/subscriptions").await;
    for sub in subs["data"].as_array().expect("subs") {
        let sub_id = sub["id"].as_str().expect("id");
        assert_eq!(sub["items"]["data"].as_array().expect("items").len(), 10);
        assert_eq!(sub["items"]["has_more"], true);
        let url = sub["items"]["url"].as_str().expect("url");
        assert_eq!(url, format!("/v1/subscription_items?subscription={sub_id}"));
        let items = page_forward(
            &raw,
            "/v1/subscription_items",
            &format!("&subscription={sub_id}"),
            10,
        )
        .await;
        assert_eq!(items.len(), 25);
        let embedded: Vec<String> = ids(&sub["items"]);
        assert_eq!(items[..10].to_vec(), embedded);
        let retrieved = get_ok(&raw, &format!("/v1/subscriptions/{sub_id}")).await;
        assert_eq!(retrieved["items"]["has_more"], true);
    }
    let invoices = get_ok(&raw, "/v1/invoices?limit=100").await;
    let mut big = 0;
    for invoice in invoices["data"].as_array().expect("invoices") {
        let invoice_id = invoice["id"].as_str().expect("id");
        let lines = page_forward(&raw, &format!("/v1/invoices/{invoice_id}/lines"), "", 100).await;
        let embedded = invoice["lines"]["data"].as_array().expect("lines").len();
        assert!(embedded <= 10);
        assert_eq!(invoice["lines"]["has_more"], lines.len() > 10);
        assert_eq!(
            invoice["lines"]["url"],
            format!("/v1/invoices/{invoice_id}/lines")
        );
        if lines.len() == 230 {
            big += 1;
        }
    }
    assert_eq!(big, 2, "both one-off invoices paged all 230 lines");
    emulator.stop().await;
}

#[tokio::test]
async fn charges_list_by_payment_intent_and_customer() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    seed(
        &raw,
        json!({"customers": 3, "payment_intents": 30,
               "created_from": 1_700_000_000, "created_to": 1_700_000_299}),
    )
    .await;
    let charges = page_forward(&raw, "/v1/charges", "", 7).await;
    assert_eq!(charges.len(), 30);
    let charge = get_ok(&raw, &format!("/v1/charges/{}", charges[0])).await;
    assert_eq!(charge["object"], "charge");
    assert_eq!(charge["status"], "succeeded");
    let intent = charge["payment_intent"].as_str().expect("intent");
    let customer = charge["customer"].as_str().expect("customer");
    let of_intent = get_ok(&raw, &format!("/v1/charges?payment_intent={intent}")).await;
    assert_eq!(ids(&of_intent), vec![charges[0].clone()]);
    let of_customer = page_forward(&raw, "/v1/charges", &format!("&customer={customer}"), 3).await;
    assert_eq!(of_customer.len(), 10);
    let recent = page_forward(&raw, "/v1/charges", "&created[gte]=1700000200", 100).await;
    assert_eq!(recent, charges[..10].to_vec());
    let missing = raw.get("/v1/charges/ch_missing").await;
    assert_eq!(missing.status, 404);
    emulator.stop().await;
}

/// A webhook receiver answering 200 to everything.
async fn receiver() -> (String, actix_web::dev::ServerHandle) {
    let server = HttpServer::new(|| App::new().default_service(web::to(HttpResponse::Ok)))
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")
        .expect("binds");
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    (format!("http://{addr}/hook"), handle)
}

async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
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

async fn attempts(raw: &Raw) -> Vec<Value> {
    get_ok(raw, "/_emulator/deliveries").await["data"]
        .as_array()
        .expect("data")
        .clone()
}

#[tokio::test]
async fn events_filter_by_type_delivery_and_age_and_faults_fail_or_lose_deliveries() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    let (url, server) = receiver().await;
    let reply = raw
        .post(
            "/v1/webhook_endpoints",
            &format!(
                "url={}&enabled_events[0]=customer.created",
                url.replace(':', "%3A").replace('/', "%2F")
            ),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let config = post_json(
        &raw,
        "/_emulator/delivery/config",
        json!({"retry_base_ms": 50, "max_attempts": 2}),
    )
    .await;
    assert_eq!(config.status, 200, "{}", config.text);

    // Delivered: delivery_success=true.
    let delivered = raw.post("/v1/customers", "email=a%40example.com").await;
    assert_eq!(delivered.status, 200);
    eventually("a delivery", || async {
        let all = attempts(&raw).await;
        all.iter().any(|a| a["succeeded"] == true).then_some(())
    })
    .await;

    // Failing: each attempt fails without reaching the receiver, and is retried.
    let failing = post_json(&raw, "/_emulator/delivery/config", json!({"fail": true})).await;
    assert_eq!(failing.json["fail"], true);
    raw.post("/v1/customers", "email=b%40example.com").await;
    let failed = eventually("two failed attempts", || async {
        let failed: Vec<Value> = attempts(&raw)
            .await
            .into_iter()
            .filter(|a| a["succeeded"] == false)
            .collect();
        (failed.len() >= 2).then_some(failed)
    })
    .await;
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("fault mode")
    );
    assert_eq!(failed[0]["attempt"], 1);
    assert_eq!(failed[1]["attempt"], 2);

    // Lost: attempts before drop_until are dropped for good.
    post_json(
        &raw,
        "/_emulator/delivery/config",
        json!({"fail": false, "drop_until": 4_102_444_800_i64}),
    )
    .await;
    raw.post("/v1/customers", "email=c%40example.com").await;
    eventually("a dropped attempt", || async {
        let all = attempts(&raw).await;
        all.iter().any(|a| a["dropped"] == true).then_some(())
    })
    .await;
    let cleared = post_json(
        &raw,
        "/_emulator/delivery/config",
        json!({"drop_until": null}),
    )
    .await;
    assert_eq!(cleared.json["drop_until"], Value::Null);

    let ok = get_ok(
        &raw,
        "/v1/events?type=customer.created&delivery_success=true",
    )
    .await;
    assert_eq!(ok["data"].as_array().map(Vec::len), Some(1));
    let not_ok = get_ok(
        &raw,
        "/v1/events?type=customer.created&delivery_success=false",
    )
    .await;
    assert_eq!(not_ok["data"].as_array().map(Vec::len), Some(2));
    assert!(not_ok["data"][0]["pending_webhooks"].as_i64() > Some(0));

    // type with `*`, types[], and their limits.
    let wildcard = get_ok(&raw, "/v1/events?type=customer.*").await;
    assert_eq!(wildcard["data"].as_array().map(Vec::len), Some(3));
    let none = get_ok(&raw, "/v1/events?type=invoice.*").await;
    assert_eq!(none["data"].as_array().map(Vec::len), Some(0));
    let several = get_ok(
        &raw,
        "/v1/events?types[0]=customer.created&types[1]=invoice.paid",
    )
    .await;
    assert_eq!(several["data"].as_array().map(Vec::len), Some(3));
    let too_many: String = (0..21)
        .map(|i| format!("&types[{i}]=customer.created"))
        .collect();
    let reply = raw.get(&format!("/v1/events?limit=1{too_many}")).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    let reply = raw.get("/v1/events?delivery_success=maybe").await;
    assert_eq!(reply.status, 400, "{}", reply.text);

    // Paging events one at a time, both ways.
    let forward = page_forward(&raw, "/v1/events", "&type=customer.created", 1).await;
    assert_eq!(forward.len(), 3);
    let back = get_ok(
        &raw,
        &format!("/v1/events?limit=2&ending_before={}", forward[2]),
    )
    .await;
    assert_eq!(ids(&back), forward[..2].to_vec());

    // 30-day window: aged events drop out of the list.
    let aged = post_json(
        &raw,
        "/_emulator/events/age",
        json!({"seconds": 29 * 86_400}),
    )
    .await;
    assert_eq!(aged.status, 200, "{}", aged.text);
    assert_eq!(aged.json["events"], 3);
    assert_eq!(page_forward(&raw, "/v1/events", "", 100).await.len(), 3);
    post_json(
        &raw,
        "/_emulator/events/age",
        json!({"seconds": 2 * 86_400}),
    )
    .await;
    assert_eq!(page_forward(&raw, "/v1/events", "", 100).await.len(), 0);
    raw.post("/v1/customers", "email=d%40example.com").await;
    assert_eq!(page_forward(&raw, "/v1/events", "", 100).await.len(), 1);
    for bad in [json!({}), json!({"seconds": -1}), json!({"seconds": "x"})] {
        let reply = post_json(&raw, "/_emulator/events/age", bad.clone()).await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.text);
    }
    server.stop(true).await;
    emulator.stop().await;
}

#[tokio::test]
async fn connected_account_events_are_listed_with_its_stripe_account() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    let created = raw
        .send(
            raw.request(reqwest::Method::POST, "/v1/customers")
                .header("stripe-account", "acct_sync")
                .header("content-type", "application/x-www-form-urlencoded")
                .body("email=x%40example.com"),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let own = get_ok(&raw, "/v1/events").await;
    assert_eq!(ids(&own).len(), 0);
    let connected = raw
        .send(
            raw.request(reqwest::Method::GET, "/v1/events?type=customer.*")
                .header("stripe-account", "acct_sync"),
        )
        .await;
    assert_eq!(connected.status, 200);
    assert_eq!(connected.json["data"][0]["account"], "acct_sync");
    assert_eq!(connected.json["data"][0]["type"], "customer.created");
    emulator.stop().await;
}

#[tokio::test]
async fn a_failing_path_is_refused_until_cleared() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    let other = Raw::new(&emulator, &test_key());
    let set = set_fail_path(&raw, "/v1/invoices").await;
    assert_eq!(set.status, 200, "{}", set.text);
    assert_eq!(set.json["fail_path"], "/v1/invoices");
    let refused = raw.get("/v1/invoices").await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(refused.json["error"]["type"], "invalid_request_error");
    // Other paths and other keys are served.
    assert_eq!(raw.get("/v1/customers").await.status, 200);
    assert_eq!(other.get("/v1/invoices").await.status, 200);
    assert!(logged(&raw, |r| r["path"] == "/v1/invoices" && r["status"] == 400).await);
    let cleared = set_fail_path(&raw, "").await;
    assert_eq!(cleared.json["fail_path"], Value::Null);
    assert_eq!(raw.get("/v1/invoices").await.status, 200);
    let bad = set_fail_path(&raw, "/elsewhere").await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    emulator.stop().await;
}

#[tokio::test]
async fn a_rate_limit_answers_429_with_retry_after() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    let other = Raw::new(&emulator, &test_key());
    let set = post_json(&raw, "/_emulator/config", json!({"rate_limit_per_sec": 3})).await;
    assert_eq!(set.status, 200, "{}", set.text);
    assert_eq!(set.json["rate_limit_per_sec"], 3);
    let mut limited = None;
    for _ in 0..12 {
        let reply = raw.get("/v1/customers").await;
        if reply.status == 429 {
            limited = Some(reply);
            break;
        }
        assert_eq!(reply.status, 200);
    }
    let limited = limited.expect("a 429 within 12 requests at 3 per second");
    assert_eq!(limited.json["error"]["type"], "invalid_request_error");
    assert_eq!(limited.json["error"]["code"], "rate_limit");
    assert!(limited.json["error"]["message"].is_string());
    assert_eq!(limited.header("retry-after"), Some("1"));
    assert!(limited.header("request-id").is_some());
    // Other keys are not limited; the test endpoints never are.
    assert_eq!(other.get("/v1/customers").await.status, 200);
    assert!(logged(&raw, |r| r["status"] == 429).await);
    // After the window, requests pass again; 0 turns the limit off.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(raw.get("/v1/customers").await.status, 200);
    post_json(&raw, "/_emulator/config", json!({"rate_limit_per_sec": 0})).await;
    for _ in 0..10 {
        assert_eq!(raw.get("/v1/customers").await.status, 200);
    }
    let bad = post_json(&raw, "/_emulator/config", json!({"rate_limit_per_sec": -1})).await;
    assert_eq!(bad.status, 400);
    emulator.stop().await;
}
