//! `Idempotency-Key` on our POST/PUT/DELETE routes: replays, conflicts, in-flight retries,
//! expiry, and the keys forwarded to Stripe (the emulator records them).

use diesel::prelude::*;
use reqwest::{Method, Response};
use sales_block::db::schema::{idempotency_keys, webhook_secrets};
use sales_block::tenants::TenantSpec;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, TestTenant, assert_error, eventually, json_body, spawn_app,
};
use crate::on_both_databases;

async fn keyed(
    app: &TestApp,
    method: Method,
    path: &str,
    tenant: &TestTenant,
    token: &str,
    key: &str,
    body: &Value,
) -> Response {
    app.authed(method, path, tenant, token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("request")
}

/// The key a request of `subject` with `key_and_step` (`<key>:<step>`) sends Stripe.
fn stripe_key(key_and_step: &str, subject: &str) -> String {
    format!(
        "{key_and_step}:{}",
        sales_block::idempotency::caller_tag(subject)
    )
}

fn replayed(response: &Response) -> bool {
    response
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

/// The tenant's Stripe requests to `path` (oldest first) with the key each carried.
async fn stripe_keys(app: &TestApp, tenant: &TestTenant, method: &str, path: &str) -> Vec<Value> {
    app.stripe_requests(tenant)
        .await
        .into_iter()
        .filter(|r| r["method"] == method && r["path"] == path)
        .map(|r| r["idempotency_key"].clone())
        .collect()
}

async fn key_rows(app: &TestApp) -> Vec<(String, String)> {
    app.query(|conn| {
        idempotency_keys::table
            .select((idempotency_keys::idempotency_key, idempotency_keys::state))
            .load(conn)
    })
    .await
}

async fn a_retried_create_replays_the_first_answer_and_stripe_creates_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("u1");
    let body = json!({"customer": {"email": "once@example.com", "name": "Once",
        "metadata": {"a": "1", "b": "2"}}});
    let first = keyed(
        &app,
        Method::POST,
        "/stripe/customers",
        &tenant,
        &token,
        "order-1",
        &body,
    )
    .await;
    assert_eq!(first.status().as_u16(), 201);
    assert!(!replayed(&first));
    let first = json_body(first).await;

    // The same request again, its JSON written in another order: the first answer, replayed.
    let again = app
        .authed(Method::POST, "/stripe/customers", &tenant, &token)
        .header("Idempotency-Key", "order-1")
        .header("content-type", "application/json")
        .body(r#"{"customer": {"metadata": {"b": "2", "a": "1"}, "name": "Once", "email": "once@example.com"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 201);
    assert!(replayed(&again));
    assert_eq!(json_body(again).await, first);

    // One customer at Stripe and in the mirror; Stripe got the key too.
    assert_eq!(app.stripe_list(&tenant, "/v1/customers").await.len(), 1);
    assert_eq!(app.customer_count().await, 1);
    assert_eq!(
        stripe_keys(&app, &tenant, "POST", "/v1/customers").await,
        vec![json!(stripe_key("order-1:customer", "u1"))]
    );
    assert_eq!(
        key_rows(&app).await,
        vec![("order-1".to_owned(), "completed".to_owned())]
    );
}

async fn every_stripe_call_of_a_request_carries_a_key_of_its_own(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("sub-owner");
    let customer = app.customer(&tenant, &token, "sub@example.com").await;
    let price = app.price(&tenant, 1500, Some("month")).await;
    let body = json!({"subscription": {"customer_id": customer["unique_id"], "price_id": price,
        "card_token": "pm_card_visa"}});
    let created = keyed(
        &app,
        Method::POST,
        "/stripe/subscriptions",
        &tenant,
        &token,
        "sub-1",
        &body,
    )
    .await;
    assert_eq!(created.status().as_u16(), 201);
    let created = json_body(created).await;
    let attaches = app
        .stripe_requests(&tenant)
        .await
        .into_iter()
        .filter(|r| r["method"] == "POST" && r["path"].as_str().unwrap().ends_with("/attach"))
        .map(|r| r["idempotency_key"].clone())
        .collect::<Vec<_>>();
    assert_eq!(
        attaches,
        vec![json!(stripe_key(
            "sub-1:attach_payment_method",
            "sub-owner"
        ))]
    );
    assert_eq!(
        stripe_keys(&app, &tenant, "POST", "/v1/subscriptions").await,
        vec![json!(stripe_key("sub-1:subscription", "sub-owner"))]
    );
    let retried = keyed(
        &app,
        Method::POST,
        "/stripe/subscriptions",
        &tenant,
        &token,
        "sub-1",
        &body,
    )
    .await;
    assert!(replayed(&retried));
    assert_eq!(json_body(retried).await, created);
    let subs = app.stripe_list(&tenant, "/v1/subscriptions").await;
    assert_eq!(subs.len(), 1);

    // PUT and DELETE are keyed the same way.
    let sub = created["data"]["attributes"]["stripe_subscription_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/stripe/subscriptions/{sub}");
    let change = json!({"subscription": {"cancel_at_period_end": true}});
    let updated = keyed(&app, Method::PUT, &path, &tenant, &token, "put-1", &change).await;
    assert_eq!(updated.status().as_u16(), 200);
    let stripe_path = format!("/v1/subscriptions/{sub}");
    assert_eq!(
        stripe_keys(&app, &tenant, "POST", &stripe_path).await,
        vec![json!(stripe_key("put-1:subscription_update", "sub-owner"))]
    );
    let canceled = keyed(
        &app,
        Method::DELETE,
        &path,
        &tenant,
        &token,
        "del-1",
        &json!({}),
    )
    .await;
    assert_eq!(canceled.status().as_u16(), 200);
    assert!(!replayed(&canceled));
    let canceled = json_body(canceled).await;
    assert_eq!(canceled["data"]["attributes"]["status"], "canceled");
    let again = keyed(
        &app,
        Method::DELETE,
        &path,
        &tenant,
        &token,
        "del-1",
        &json!({}),
    )
    .await;
    assert_eq!(
        again.status().as_u16(),
        200,
        "a replay, not Stripe's error for a canceled subscription"
    );
    assert!(replayed(&again));
    assert_eq!(json_body(again).await, canceled);
}

async fn errors_after_work_started_are_replayed_and_early_rejections_are_not_saved(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let admin = tenant.admin_token();

    // Refused by Stripe (an unknown customer): the 422 is the request's answer, replayed.
    let body =
        json!({"payment": {"amount": 1200, "currency": "usd", "customer_id": "cus_missing"}});
    let first = keyed(
        &app,
        Method::POST,
        "/stripe/payments",
        &tenant,
        &admin,
        "pay-1",
        &body,
    )
    .await;
    assert!(!replayed(&first));
    let first = assert_error(first, 422, "resource_missing").await;
    let again = keyed(
        &app,
        Method::POST,
        "/stripe/payments",
        &tenant,
        &admin,
        "pay-1",
        &body,
    )
    .await;
    assert!(replayed(&again));
    assert_eq!(assert_error(again, 422, "resource_missing").await, first);
    assert_eq!(
        stripe_keys(&app, &tenant, "POST", "/v1/payment_intents").await,
        vec![json!(stripe_key("pay-1:payment_intent", "admin-1"))],
        "the retry never reached Stripe"
    );

    // A decline is replayed with Stripe's codes.
    let declined = json!({"payment": {"amount": 1000, "currency": "usd",
        "payment_method": "pm_card_chargeDeclined"}});
    let first = keyed(
        &app,
        Method::POST,
        "/stripe/payments",
        &tenant,
        &admin,
        "pay-2",
        &declined,
    )
    .await;
    let first = assert_error(first, 402, "card_declined").await;
    let again = keyed(
        &app,
        Method::POST,
        "/stripe/payments",
        &tenant,
        &admin,
        "pay-2",
        &declined,
    )
    .await;
    assert!(replayed(&again));
    let again = assert_error(again, 402, "card_declined").await;
    assert_eq!(again["meta"]["decline_code"], "generic_decline");
    assert_eq!(again, first);

    // Rejected by validation before any work: not saved, so the corrected request runs.
    let incomplete = json!({"payment": {"currency": "usd"}});
    let refused = keyed(
        &app,
        Method::POST,
        "/stripe/payments",
        &tenant,
        &admin,
        "pay-3",
        &incomplete,
    )
    .await;
    assert_error(refused, 422, "validation_error").await;
    let fixed = json!({"payment": {"currency": "usd", "amount": 700}});
    let created = keyed(
        &app,
        Method::POST,
        "/stripe/payments",
        &tenant,
        &admin,
        "pay-3",
        &fixed,
    )
    .await;
    assert_eq!(created.status().as_u16(), 201);
    assert!(!replayed(&created));
}

async fn a_request_run_again_after_a_lost_answer_gets_stripes_replay(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let admin = tenant.admin_token();
    let body = json!({"webhook": {"events": ["customer.created"]}});
    let create = || {
        keyed(
            &app,
            Method::POST,
            "/stripe/webhooks",
            &tenant,
            &admin,
            "wh-1",
            &body,
        )
    };
    let first = create().await;
    assert_eq!(first.status().as_u16(), 201);
    let first = json_body(first).await["data"]["attributes"].clone();
    // As if the first run had failed after Stripe answered (the database went away): nothing
    // of ours kept, so the retry runs again.
    app.query(|conn| {
        diesel::delete(idempotency_keys::table).execute(conn)?;
        diesel::delete(webhook_secrets::table).execute(conn)?;
        diesel::delete(sales_block::db::schema::webhook_endpoints::table).execute(conn)
    })
    .await;
    let again = create().await;
    assert_eq!(again.status().as_u16(), 201);
    assert!(!replayed(&again), "run again, not replayed by us");
    let again = json_body(again).await["data"]["attributes"].clone();
    // The same endpoint as Stripe's replay: same url (the url_id follows the key), same secret.
    assert_eq!(again["url_id"], first["url_id"]);
    assert_eq!(again["signing_secret"], first["signing_secret"]);
    assert_eq!(again["stripe_endpoint_id"], first["stripe_endpoint_id"]);
    assert_eq!(
        app.stripe_list(&tenant, "/v1/webhook_endpoints")
            .await
            .len(),
        1
    );
    let keys = stripe_keys(&app, &tenant, "POST", "/v1/webhook_endpoints").await;
    assert_eq!(
        keys,
        vec![json!(stripe_key("wh-1:webhook_endpoint", "admin-1")); 2]
    );
    // Without a key every endpoint gets a random url_id of its own.
    let plain = json_body(
        app.post_json("/stripe/webhooks", &tenant, &admin, &body)
            .await,
    )
    .await;
    assert_ne!(plain["data"]["attributes"]["url_id"], first["url_id"]);
}

async fn server_errors_are_not_saved(backend: Backend) {
    let app = spawn_app(backend).await;
    // A tenant whose Stripe cannot be reached: 502, and a retry runs again.
    let tenant = app
        .tenant_with(TenantSpec {
            stripe_api_base: Some("http://127.0.0.1:9".into()),
            ..TenantSpec::default()
        })
        .await;
    let token = tenant.user_token("u");
    let body = json!({"customer": {"email": "down@example.com"}});
    for _ in 0..2 {
        let response = keyed(
            &app,
            Method::POST,
            "/stripe/customers",
            &tenant,
            &token,
            "k-502",
            &body,
        )
        .await;
        assert!(!replayed(&response));
        assert_error(response, 502, "stripe_unreachable").await;
    }
    assert!(key_rows(&app).await.is_empty());
}

async fn the_same_key_for_another_request_is_409(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("u1");
    let body = json!({"customer": {"email": "first@example.com"}});
    let first = keyed(
        &app,
        Method::POST,
        "/stripe/customers",
        &tenant,
        &token,
        "k1",
        &body,
    )
    .await;
    assert_eq!(first.status().as_u16(), 201);

    let other_body = json!({"customer": {"email": "second@example.com"}});
    let error = assert_error(
        keyed(
            &app,
            Method::POST,
            "/stripe/customers",
            &tenant,
            &token,
            "k1",
            &other_body,
        )
        .await,
        409,
        "idempotency_error",
    )
    .await;
    assert!(
        error["detail"]
            .as_str()
            .unwrap()
            .contains("different parameters"),
        "{error}"
    );
    assert_eq!(error["source"]["header"], "Idempotency-Key");

    let error = assert_error(
        keyed(
            &app,
            Method::POST,
            "/stripe/payments",
            &tenant,
            &token,
            "k1",
            &json!({"payment": {"amount": 100, "currency": "usd"}}),
        )
        .await,
        409,
        "idempotency_error",
    )
    .await;
    assert!(
        error["detail"].as_str().unwrap().contains("another route"),
        "{error}"
    );

    // Keys are per caller: another user of the app with the same key makes a request of
    // their own (no replay of someone else's answer, no 409 telling the key exists).
    let stranger = tenant.user_token("u2");
    let own = keyed(
        &app,
        Method::POST,
        "/stripe/customers",
        &tenant,
        &stranger,
        "k1",
        &body,
    )
    .await;
    assert_eq!(own.status().as_u16(), 201);
    assert!(!replayed(&own));

    // Keys are per app: another tenant's request with the same key is its own.
    let other = app.tenant().await;
    let theirs = keyed(
        &app,
        Method::POST,
        "/stripe/customers",
        &other,
        &other.user_token("u1"),
        "k1",
        &body,
    )
    .await;
    assert_eq!(theirs.status().as_u16(), 201);
    assert!(!replayed(&theirs));
    assert_eq!(app.customer_count().await, 3);
}

async fn a_retry_while_the_first_is_in_flight_is_409_then_replays(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("u1");
    // Stripe answers slowly, so the first request is still running when the retry comes.
    app.stripe_post(&tenant, "/_emulator/config", &[("latency_ms", "1500")])
        .await;
    let body = json!({"customer": {"email": "slow@example.com"}});
    let request = app
        .authed(Method::POST, "/stripe/customers", &tenant, &token)
        .header("Idempotency-Key", "slow-1")
        .json(&body);
    let first = tokio::spawn(async move { request.send().await.unwrap() });
    eventually(10, || async {
        key_rows(&app)
            .await
            .iter()
            .any(|(key, state)| key == "slow-1" && state == "in_flight")
            .then_some(())
    })
    .await;
    let error = assert_error(
        keyed(
            &app,
            Method::POST,
            "/stripe/customers",
            &tenant,
            &token,
            "slow-1",
            &body,
        )
        .await,
        409,
        "idempotency_error",
    )
    .await;
    assert!(
        error["detail"].as_str().unwrap().contains("in progress"),
        "{error}"
    );

    let first = first.await.unwrap();
    assert_eq!(first.status().as_u16(), 201);
    let first = json_body(first).await;
    let retried = keyed(
        &app,
        Method::POST,
        "/stripe/customers",
        &tenant,
        &token,
        "slow-1",
        &body,
    )
    .await;
    assert!(replayed(&retried));
    assert_eq!(json_body(retried).await, first);
    assert_eq!(app.stripe_list(&tenant, "/v1/customers").await.len(), 1);
}

async fn concurrent_requests_with_one_key_create_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("u1");
    app.stripe_post(&tenant, "/_emulator/config", &[("latency_ms", "300")])
        .await;
    let body = json!({"customer": {"email": "race@example.com"}});
    let requests = (0..6).map(|_| {
        keyed(
            &app,
            Method::POST,
            "/stripe/customers",
            &tenant,
            &token,
            "race-1",
            &body,
        )
    });
    let responses = futures_util::future::join_all(requests).await;
    let mut created = 0;
    let mut replays = 0;
    let mut conflicts = 0;
    for response in responses {
        match (response.status().as_u16(), replayed(&response)) {
            (201, false) => created += 1,
            (201, true) => replays += 1,
            (409, false) => {
                assert_error(response, 409, "idempotency_error").await;
                conflicts += 1;
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(created, 1, "{replays} replays, {conflicts} conflicts");
    assert_eq!(replays + conflicts, 5);
    assert_eq!(app.stripe_list(&tenant, "/v1/customers").await.len(), 1);
    assert_eq!(app.customer_count().await, 1);
}

async fn an_expired_or_abandoned_key_is_treated_as_new(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let admin = tenant.admin_token();
    let endpoint = json_body(
        app.post_json(
            "/stripe/webhooks",
            &tenant,
            &admin,
            &json!({"webhook": {"events": ["*"], "url": "http://127.0.0.1:9/elsewhere"}}),
        )
        .await,
    )
    .await["data"]["attributes"]["url_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/stripe/webhooks/{endpoint}/secrets");
    let body = json!({"secret": {"signing_secret": "whsec_rolled_secret_1"}});
    let secrets = || app.query(|conn| webhook_secrets::table.count().get_result::<i64>(conn));
    let roll = || keyed(&app, Method::POST, &path, &tenant, &admin, "roll-1", &body);

    let first = roll().await;
    assert_eq!(first.status().as_u16(), 201);
    assert!(!replayed(&first));
    assert!(replayed(&roll().await));
    assert_eq!(secrets().await, 2, "the replay stored nothing");

    // 25 hours later the key is forgotten: the same request runs again.
    let day_ago = chrono::Utc::now().naive_utc() - chrono::TimeDelta::hours(25);
    app.query(move |conn| {
        diesel::update(idempotency_keys::table)
            .set(idempotency_keys::created_at.eq(day_ago))
            .execute(conn)
    })
    .await;
    let again = roll().await;
    assert_eq!(again.status().as_u16(), 201);
    assert!(!replayed(&again));
    assert_eq!(secrets().await, 3);
    assert!(replayed(&roll().await));

    // A claim left in flight by an instance that died is taken over after its lease.
    let stale = chrono::Utc::now().naive_utc() - chrono::TimeDelta::minutes(6);
    app.query(move |conn| {
        diesel::update(idempotency_keys::table)
            .set((
                idempotency_keys::state.eq("in_flight"),
                idempotency_keys::updated_at.eq(stale),
            ))
            .execute(conn)
    })
    .await;
    let taken_over = roll().await;
    assert_eq!(taken_over.status().as_u16(), 201);
    assert!(!replayed(&taken_over));
    assert_eq!(secrets().await, 4);
}

async fn without_a_key_nothing_changes_and_bad_keys_are_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("u1");
    let body = json!({"customer": {"email": "twice@example.com"}});
    for _ in 0..2 {
        let response = app
            .post_json("/stripe/customers", &tenant, &token, &body)
            .await;
        assert_eq!(response.status().as_u16(), 201);
        assert!(!replayed(&response));
    }
    assert_eq!(app.customer_count().await, 2);
    assert_eq!(
        stripe_keys(&app, &tenant, "POST", "/v1/customers").await,
        vec![Value::Null, Value::Null]
    );

    for key in [String::new(), "k".repeat(256)] {
        let error = assert_error(
            keyed(
                &app,
                Method::POST,
                "/stripe/customers",
                &tenant,
                &token,
                &key,
                &body,
            )
            .await,
            400,
            "invalid_idempotency_key",
        )
        .await;
        assert_eq!(error["source"]["header"], "Idempotency-Key");
    }
    let longest = "k".repeat(255);
    let response = keyed(
        &app,
        Method::POST,
        "/stripe/customers",
        &tenant,
        &token,
        &longest,
        &body,
    )
    .await;
    assert_eq!(response.status().as_u16(), 201);
    // Stripe's limit holds for the derived key as well.
    let sent = stripe_keys(&app, &tenant, "POST", "/v1/customers").await;
    assert!(sent[2].as_str().unwrap().len() <= 255, "{sent:?}");

    // GETs ignore keys; requests that fail authentication are refused as without one.
    let listed = app
        .authed(Method::GET, "/stripe/subscriptions", &tenant, &token)
        .header("Idempotency-Key", "get-1")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status().as_u16(), 200);
    let anonymous = app
        .request(Method::POST, "/stripe/customers")
        .header("Idempotency-Key", "anon-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_error(anonymous, 401, "missing_api_key").await;
    let forged = keyed(
        &app,
        Method::POST,
        "/stripe/customers",
        &tenant,
        "not-a-jwt",
        "anon-2",
        &body,
    )
    .await;
    assert_error(forged, 401, "invalid_token").await;
    assert_eq!(key_rows(&app).await.len(), 1, "only the 255-character key");
}

/// Issue 12, point 4: keys belong to the caller. Two admins of one app (server-side
/// integrations may set an amount) use one key for the same payment: each gets a payment of
/// their own, and a retry replays only their own answer.
async fn two_callers_of_an_app_with_one_key_each_get_their_own_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let (alice, bob) = (tenant.token("admin-a", true), tenant.token("admin-b", true));
    let body = json!({"payment": {"amount": 1500, "currency": "usd"}});
    let pay = |token: &str| {
        let token = token.to_owned();
        let (app, tenant, body) = (&app, &tenant, &body);
        async move {
            keyed(
                app,
                Method::POST,
                "/stripe/payments",
                tenant,
                &token,
                "pay-shared",
                body,
            )
            .await
        }
    };

    let first = pay(&alice).await;
    assert_eq!(first.status().as_u16(), 201);
    assert!(!replayed(&first));
    let first = json_body(first).await["data"]["attributes"].clone();
    let second = pay(&bob).await;
    assert_eq!(
        second.status().as_u16(),
        201,
        "another caller's key is not a conflict"
    );
    assert!(!replayed(&second));
    let second = json_body(second).await["data"]["attributes"].clone();

    assert_ne!(first["payment_intent_id"], second["payment_intent_id"]);
    assert_ne!(first["client_secret"], second["client_secret"]);
    assert_eq!(
        app.stripe_list(&tenant, "/v1/payment_intents").await.len(),
        2,
        "two payment intents at Stripe"
    );
    // Each retry gets its own caller's answer back, and nothing runs again.
    for (token, mine) in [(&alice, &first), (&bob, &second)] {
        let again = pay(token).await;
        assert!(replayed(&again));
        let again = json_body(again).await["data"]["attributes"].clone();
        assert_eq!(again["payment_intent_id"], mine["payment_intent_id"]);
        assert_eq!(again["client_secret"], mine["client_secret"]);
    }
    assert_eq!(
        app.stripe_list(&tenant, "/v1/payment_intents").await.len(),
        2
    );
}

/// Every text a saved answer leaves in the idempotency table.
async fn stored_answer_texts(app: &TestApp) -> String {
    let rows: Vec<(String, String, String, String, String, Option<String>)> = app
        .query(|conn| {
            idempotency_keys::table
                .select((
                    idempotency_keys::idempotency_key,
                    idempotency_keys::path,
                    idempotency_keys::request_hash,
                    idempotency_keys::caller_subject,
                    idempotency_keys::state,
                    idempotency_keys::response_body,
                ))
                .load(conn)
        })
        .await;
    assert!(!rows.is_empty(), "answers were saved");
    format!("{rows:?}")
}

/// Issue 12, point 4: saved answers hold no secret in clear text, and a replay still shows it.
async fn saved_answers_keep_no_secret_in_clear_text(backend: Backend) {
    use sales_block::db::schema::tenants;
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let admin = tenant.admin_token();

    // A webhook endpoint's signing secret, the notification signing secret and a payment
    // intent's client secret, each in the first answer of a keyed request.
    let requests = [
        (
            Method::POST,
            "/stripe/webhooks",
            "wh-secret",
            json!({"webhook": {"events": ["*"], "url": "http://127.0.0.1:9/elsewhere"}}),
            201,
            "signing_secret",
            "whsec_",
        ),
        (
            Method::PUT,
            "/stripe/notifications/settings",
            "nsec-1",
            json!({"notification_settings": {"url": "http://127.0.0.1:9/hooks"}}),
            200,
            "signing_secret",
            "nsec_",
        ),
        (
            Method::POST,
            "/stripe/payments",
            "pay-secret",
            json!({"payment": {"amount": 900, "currency": "usd"}}),
            201,
            "client_secret",
            "_secret_",
        ),
    ];
    let mut answers = Vec::new();
    for (method, path, key, body, status, field, marker) in &requests {
        let response = keyed(&app, method.clone(), path, &tenant, &admin, key, body).await;
        assert_eq!(response.status().as_u16(), *status, "{path}");
        let answer = json_body(response).await;
        let secret = answer["data"]["attributes"][*field]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(secret.contains(marker), "{path}: {secret}");
        answers.push((answer, secret));
    }
    let (whsec, nsec, client_secret) = (&answers[0].1, &answers[1].1, &answers[2].1);

    let stored = stored_answer_texts(&app).await;
    for secret in [
        "whsec_",
        "nsec_",
        "_secret_",
        whsec.as_str(),
        nsec.as_str(),
        client_secret.as_str(),
    ] {
        assert!(!stored.contains(secret), "{secret} in clear text: {stored}");
    }
    let (secrets, notify_secret): (Vec<String>, Option<String>) = (
        app.query(|conn| {
            webhook_secrets::table
                .select(webhook_secrets::secret_enc)
                .load(conn)
        })
        .await,
        app.query(|conn| {
            tenants::table
                .select(tenants::notify_secret_enc)
                .first(conn)
        })
        .await,
    );
    let sealed = format!("{secrets:?} {notify_secret:?}");
    assert!(
        !sealed.contains("whsec_") && !sealed.contains("nsec_"),
        "{sealed}"
    );

    // The replays still show each secret, exactly as first answered.
    for ((method, path, key, body, ..), (first, _)) in requests.iter().zip(&answers) {
        let again = keyed(&app, method.clone(), path, &tenant, &admin, key, body).await;
        assert!(replayed(&again), "{path}");
        assert_eq!(&json_body(again).await, first, "{path}");
    }
}

on_both_databases!(
    a_retried_create_replays_the_first_answer_and_stripe_creates_once,
    every_stripe_call_of_a_request_carries_a_key_of_its_own,
    a_request_run_again_after_a_lost_answer_gets_stripes_replay,
    errors_after_work_started_are_replayed_and_early_rejections_are_not_saved,
    server_errors_are_not_saved,
    the_same_key_for_another_request_is_409,
    a_retry_while_the_first_is_in_flight_is_409_then_replays,
    concurrent_requests_with_one_key_create_once,
    an_expired_or_abandoned_key_is_treated_as_new,
    without_a_key_nothing_changes_and_bad_keys_are_400,
    two_callers_of_an_app_with_one_key_each_get_their_own_answer,
    saved_answers_keep_no_secret_in_clear_text,
);
