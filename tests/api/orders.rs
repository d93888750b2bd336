//! Orders (issue 12, point 5): the published SDK's `createPaymentIntent` sends no amount; the
//! service charges what the tenant's backend recorded for the order (`PUT /stripe/orders/{id}`)
//! or what its `order_lookup_url` answers, never twice, and never another user's order.

use std::sync::{Arc, Mutex};

use actix_web::{HttpRequest, HttpResponse, web};
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{
    Backend, TestApp, TestTenant, assert_error, json_body, spawn_app, spawn_app_with,
};
use crate::on_both_databases;

async fn put_order(
    app: &TestApp,
    tenant: &TestTenant,
    token: &str,
    id: &str,
    order: Value,
) -> reqwest::Response {
    app.authed(Method::PUT, &format!("/stripe/orders/{id}"), tenant, token)
        .json(&json!({ "order": order }))
        .send()
        .await
        .unwrap()
}

/// Records an order as the tenant's admin, expecting 201.
async fn record(app: &TestApp, tenant: &TestTenant, id: &str, order: Value) {
    let response = put_order(app, tenant, &tenant.admin_token(), id, order).await;
    assert_eq!(
        response.status().as_u16(),
        201,
        "{}",
        json_body(response).await
    );
}

async fn get_order(app: &TestApp, tenant: &TestTenant, token: &str, id: &str) -> reqwest::Response {
    app.authed(Method::GET, &format!("/stripe/orders/{id}"), tenant, token)
        .send()
        .await
        .unwrap()
}

/// The body the SDK's `createPaymentIntent` sends.
fn sdk_payment(customer: &str, order: &str) -> Value {
    json!({"payment": {"customer_id": customer, "currency": "usd", "order_unique_id": order,
        "identity_type": "user", "entity_type": "order", "entity_id": "e-9"}})
}

async fn intents_at_stripe(app: &TestApp, tenant: &TestTenant) -> Vec<Value> {
    app.stripe_params(tenant, "POST", "/v1/payment_intents")
        .await
}

async fn the_sdk_flow_pays_the_order_the_backend_recorded(backend: Backend) {
    let app = spawn_app(backend).await;
    // The default policy: users never name amounts.
    let tenant = app.strict_tenant().await;
    let admin = tenant.admin_token();
    let user = tenant.user_token("sdk-user");

    // An order nobody recorded: 404, nothing at Stripe.
    let customer = app.customer(&tenant, &user, "sdk@example.com").await;
    let cus = customer["stripe_customer_id"].as_str().unwrap().to_owned();
    let response = app
        .post_json(
            "/stripe/payments",
            &tenant,
            &user,
            &sdk_payment(&cus, "ord-1"),
        )
        .await;
    assert_error(response, 404, "not_found").await;
    assert!(intents_at_stripe(&app, &tenant).await.is_empty());

    // Only admins record orders.
    let order = json!({"amount": 2500, "currency": "USD", "description": "Order #1",
        "metadata": {"cart": "c-1"}, "user_unique_id": "sdk-user"});
    let response = put_order(&app, &tenant, &user, "ord-1", order.clone()).await;
    assert_error(response, 403, "admin_required").await;
    let response = put_order(&app, &tenant, &admin, "ord-1", order.clone()).await;
    assert_eq!(response.status().as_u16(), 201);
    let recorded = json_body(response).await["data"]["attributes"].clone();
    assert_eq!(
        (
            recorded["amount"].as_i64(),
            recorded["currency"].as_str(),
            recorded["source"].as_str()
        ),
        (Some(2500), Some("usd"), Some("recorded"))
    );
    assert_eq!(recorded["payment_intent_id"], Value::Null);

    // The SDK's call, with no amount, charges the order's.
    let response = app
        .post_json(
            "/stripe/payments",
            &tenant,
            &user,
            &sdk_payment(&cus, "ord-1"),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
    let paid = json_body(response).await["data"]["attributes"].clone();
    let pi = paid["payment_intent_id"].as_str().unwrap().to_owned();
    assert!(pi.starts_with("pi_"));
    assert!(paid["client_secret"].as_str().unwrap().starts_with(&pi));
    assert_eq!(paid["status"], "requires_payment_method");
    assert_eq!(paid["amount"], 2500);
    assert_eq!(paid["currency"], "usd");
    assert_eq!(paid["description"], "Order #1");
    assert_eq!(paid["metadata"]["order_unique_id"], "ord-1");
    assert_eq!(paid["metadata"]["cart"], "c-1");
    let sent = intents_at_stripe(&app, &tenant).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["amount"], "2500");
    assert_eq!(sent[0]["customer"], cus.as_str());

    // Paying it again answers the same payment: nothing is charged twice.
    let again = app
        .post_json(
            "/stripe/payments",
            &tenant,
            &user,
            &sdk_payment(&cus, "ord-1"),
        )
        .await;
    assert_eq!(again.status().as_u16(), 200);
    let again = json_body(again).await["data"]["attributes"].clone();
    assert_eq!(again["payment_intent_id"], pi.as_str());
    assert!(again["client_secret"].as_str().unwrap().starts_with(&pi));
    assert_eq!(intents_at_stripe(&app, &tenant).await.len(), 1);

    // The order shows its payment, to its user and admins only.
    let read = json_body(get_order(&app, &tenant, &user, "ord-1").await).await;
    assert_eq!(read["data"]["attributes"]["payment_intent_id"], pi.as_str());
    assert_eq!(
        get_order(&app, &tenant, &admin, "ord-1")
            .await
            .status()
            .as_u16(),
        200
    );
    let stranger = tenant.user_token("stranger");
    assert_error(
        get_order(&app, &tenant, &stranger, "ord-1").await,
        404,
        "not_found",
    )
    .await;
    let other_tenant = app.strict_tenant().await;
    assert_error(
        get_order(&app, &other_tenant, &other_tenant.admin_token(), "ord-1").await,
        404,
        "not_found",
    )
    .await;

    // Another user cannot pay it (nor learn its payment).
    let theirs = app
        .customer(&tenant, &stranger, "stranger@example.com")
        .await;
    let response = app
        .post_json(
            "/stripe/payments",
            &tenant,
            &stranger,
            &sdk_payment(theirs["stripe_customer_id"].as_str().unwrap(), "ord-1"),
        )
        .await;
    assert_error(response, 404, "not_found").await;

    // A paid order's terms are fixed; the same terms again are fine.
    let response = put_order(
        &app,
        &tenant,
        &admin,
        "ord-1",
        json!({"amount": 1, "currency": "usd", "user_unique_id": "sdk-user"}),
    )
    .await;
    assert_error(response, 409, "order_paid").await;
    let response = put_order(&app, &tenant, &admin, "ord-1", order).await;
    assert_eq!(response.status().as_u16(), 200);
}

async fn an_order_is_charged_only_its_own_amount(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.strict_tenant().await;
    let admin = tenant.admin_token();
    let user = tenant.user_token("buyer");
    let response = put_order(
        &app,
        &tenant,
        &admin,
        "ord-2",
        json!({"amount": 900, "currency": "eur", "user_unique_id": "buyer"}),
    )
    .await;
    assert_eq!(response.status().as_u16(), 201);
    // Changed while unpaid: the latest terms count.
    let response = put_order(
        &app,
        &tenant,
        &admin,
        "ord-2",
        json!({"amount": 1900, "currency": "eur", "user_unique_id": "buyer"}),
    )
    .await;
    assert_eq!(response.status().as_u16(), 200);
    for (payment, pointer) in [
        (
            json!({"order_unique_id": "ord-2", "amount": 1, "currency": "eur"}),
            "/payment/amount",
        ),
        (
            json!({"order_unique_id": "ord-2", "currency": "usd"}),
            "/payment/currency",
        ),
    ] {
        let response = app
            .post_json(
                "/stripe/payments",
                &tenant,
                &user,
                &json!({ "payment": payment }),
            )
            .await;
        let error = assert_error(response, 422, "validation_error").await;
        assert_eq!(error["source"]["pointer"], pointer);
    }
    assert!(intents_at_stripe(&app, &tenant).await.is_empty());
    // Bad orders are refused and change nothing.
    for (order, pointer) in [
        (json!({"currency": "eur"}), "/order/amount"),
        (json!({"amount": 0, "currency": "eur"}), "/order/amount"),
        // 2^63 does not fit an i64; 2^63 - 1 is over Stripe's ceiling.
        (
            serde_json::from_str(r#"{"amount": 9223372036854775808, "currency": "eur"}"#).unwrap(),
            "/order/amount",
        ),
        (
            json!({"amount": i64::MAX, "currency": "eur"}),
            "/order/amount",
        ),
        (json!({"amount": 5, "currency": "euro"}), "/order/currency"),
        (
            json!({"amount": 5, "currency": "eur", "description": "a\u{1b}[2Jb"}),
            "/order/description",
        ),
        (
            json!({"amount": 5, "currency": "eur", "metadata": {"k": "a\u{0}b"}}),
            "/order/metadata/k",
        ),
    ] {
        let response = put_order(&app, &tenant, &admin, "ord-2", order).await;
        let error = assert_error(response, 422, "validation_error").await;
        assert_eq!(error["source"]["pointer"], pointer);
    }
    // An amount equal to the order's is fine.
    let response = app
        .post_json(
            "/stripe/payments",
            &tenant,
            &user,
            &json!({"payment": {"order_unique_id": "ord-2", "amount": 1900, "payment_method": "pm_card_visa"}}),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
    let paid = json_body(response).await["data"]["attributes"].clone();
    assert_eq!(
        (paid["amount"].as_i64(), paid["status"].as_str()),
        (Some(1900), Some("succeeded"))
    );
    // Someone else paying the same order learns only that it is paid.
    let response = app
        .post_json(
            "/stripe/payments",
            &tenant,
            &tenant.user_token("late"),
            &json!({"payment": {"order_unique_id": "ord-2"}}),
        )
        .await;
    assert_error(response, 404, "not_found").await;
    assert_eq!(intents_at_stripe(&app, &tenant).await.len(), 1);

    // An order for no user in particular is the backend's to pay: a stranger can neither pay
    // it nor lock it with an unconfirmed payment.
    let response = put_order(
        &app,
        &tenant,
        &admin,
        "ord-open",
        json!({"amount": 300, "currency": "eur"}),
    )
    .await;
    assert_eq!(response.status().as_u16(), 201);
    let response = app
        .post_json(
            "/stripe/payments",
            &tenant,
            &user,
            &json!({"payment": {"order_unique_id": "ord-open"}}),
        )
        .await;
    assert_error(response, 404, "not_found").await;
    let response = app
        .post_json(
            "/stripe/payments",
            &tenant,
            &admin,
            &json!({"payment": {"order_unique_id": "ord-open"}}),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
}

async fn the_orders_terms_win_over_the_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.strict_tenant().await;
    let user = tenant.user_token("upgrader");
    let order = json!({"amount": 5000, "currency": "usd", "description": "Basic plan",
        "metadata": {"plan": "basic"}, "user_unique_id": "upgrader"});
    let response = put_order(&app, &tenant, &tenant.admin_token(), "ord-5", order).await;
    assert_eq!(response.status().as_u16(), 201);
    let response = app
        .post_json(
            "/stripe/payments",
            &tenant,
            &user,
            &json!({"payment": {"order_unique_id": "ord-5", "description": "FREE GOLD",
                "metadata": {"plan": "gold", "note": "mine"}}}),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
    let sent = intents_at_stripe(&app, &tenant).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["metadata"]["plan"], "basic");
    assert_eq!(sent[0]["metadata"]["note"], "mine");
    assert_eq!(sent[0]["description"], "Basic plan");
}

/// Moves an order's payment claim back past its lease (as if its request died long ago).
async fn lapse_claim(app: &TestApp, order: &'static str) {
    use diesel::prelude::*;
    use sales_block::db::schema::orders;
    let long_ago = chrono::Utc::now().naive_utc() - chrono::TimeDelta::minutes(10);
    app.query(move |conn| {
        diesel::update(orders::table.filter(orders::order_unique_id.eq(order)))
            .set(orders::payment_claimed_at.eq(Some(long_ago)))
            .execute(conn)
    })
    .await;
}

async fn a_retry_after_stripe_timed_out_never_charges_an_order_twice(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.stripe_timeout_secs = 1).await;
    let tenant = app.strict_tenant().await;
    let user = tenant.user_token("unlucky");
    record(
        &app,
        &tenant,
        "ord-6",
        json!({"amount": 5000, "currency": "usd", "user_unique_id": "unlucky"}),
    )
    .await;
    // Stripe does the work but answers too late.
    app.stripe_post(&tenant, "/_emulator/config", &[("latency_ms", "1500")])
        .await;
    let pay = |card: &str| json!({"payment": {"order_unique_id": "ord-6", "payment_method": card}});
    let response = app
        .post_json("/stripe/payments", &tenant, &user, &pay("pm_card_visa"))
        .await;
    assert_error(response, 504, "stripe_timeout").await;
    // While the first attempt's outcome is unknown, the order stays claimed.
    app.stripe_post(&tenant, "/_emulator/config", &[("latency_ms", "0")])
        .await;
    let response = app
        .post_json(
            "/stripe/payments",
            &tenant,
            &user,
            &pay("pm_card_mastercard"),
        )
        .await;
    assert_error(response, 409, "order_payment_in_progress").await;
    // Long after, the user tries again with another card: one intent, charged once.
    lapse_claim(&app, "ord-6").await;
    let response = app
        .post_json(
            "/stripe/payments",
            &tenant,
            &user,
            &pay("pm_card_mastercard"),
        )
        .await;
    let status = response.status().as_u16();
    let body = json_body(response).await;
    assert!(matches!(status, 200 | 201), "{status} {body}");
    assert_eq!(body["data"]["attributes"]["status"], "succeeded", "{body}");
    let intents = app.stripe_list(&tenant, "/v1/payment_intents").await;
    let succeeded = intents
        .iter()
        .filter(|pi| pi["status"] == "succeeded")
        .count();
    assert_eq!(succeeded, 1, "{intents:?}");
}

async fn an_orders_terms_are_fixed_while_its_payment_is_made(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.strict_tenant().await;
    let admin = tenant.admin_token();
    let user = tenant.user_token("payer");
    let order = json!({"amount": 5000, "currency": "usd", "user_unique_id": "payer"});
    let response = put_order(&app, &tenant, &admin, "ord-7", order).await;
    assert_eq!(response.status().as_u16(), 201);
    app.stripe_post(&tenant, "/_emulator/config", &[("latency_ms", "1500")])
        .await;
    let body = json!({"payment": {"order_unique_id": "ord-7"}});
    let payment = app.post_json("/stripe/payments", &tenant, &user, &body);
    let change = async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        put_order(
            &app,
            &tenant,
            &admin,
            "ord-7",
            json!({"amount": 9999, "currency": "eur", "user_unique_id": "payer"}),
        )
        .await
    };
    let (paid, changed) = tokio::join!(payment, change);
    assert_error(changed, 409, "order_payment_in_progress").await;
    assert_eq!(paid.status().as_u16(), 201);
    let paid = json_body(paid).await["data"]["attributes"].clone();
    assert_eq!(
        (paid["amount"].as_i64(), paid["currency"].as_str()),
        (Some(5000), Some("usd"))
    );
    let order = json_body(get_order(&app, &tenant, &admin, "ord-7").await).await;
    assert_eq!(order["data"]["attributes"]["amount"], 5000);
    assert_eq!(
        order["data"]["attributes"]["payment_intent_id"],
        paid["payment_intent_id"]
    );
}

async fn an_order_whose_payment_was_canceled_takes_a_new_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.strict_tenant().await;
    let user = tenant.user_token("returning");
    let order = json!({"amount": 800, "currency": "usd", "user_unique_id": "returning"});
    let response = put_order(&app, &tenant, &tenant.admin_token(), "ord-8", order).await;
    assert_eq!(response.status().as_u16(), 201);
    let pay = json!({"payment": {"order_unique_id": "ord-8"}});
    let first = json_body(
        app.post_json("/stripe/payments", &tenant, &user, &pay)
            .await,
    )
    .await;
    let first = first["data"]["attributes"]["payment_intent_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.stripe_post(&tenant, &format!("/v1/payment_intents/{first}/cancel"), &[])
        .await;
    let response = app
        .post_json("/stripe/payments", &tenant, &user, &pay)
        .await;
    assert_eq!(response.status().as_u16(), 201);
    let second = json_body(response).await["data"]["attributes"]["payment_intent_id"].clone();
    assert_ne!(second, first.as_str());
    let order = json_body(get_order(&app, &tenant, &user, "ord-8").await).await;
    assert_eq!(order["data"]["attributes"]["payment_intent_id"], second);
}

async fn concurrent_payments_of_one_order_make_one_intent(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.strict_tenant().await;
    let user = tenant.user_token("double-clicker");
    record(
        &app,
        &tenant,
        "ord-3",
        json!({"amount": 4200, "currency": "usd", "user_unique_id": "double-clicker"}),
    )
    .await;
    let body = json!({"payment": {"order_unique_id": "ord-3", "currency": "usd"}});
    let responses = futures_util::future::join_all(
        (0..4).map(|_| app.post_json("/stripe/payments", &tenant, &user, &body)),
    )
    .await;
    let mut paid = Vec::new();
    for response in responses {
        let status = response.status().as_u16();
        let body = json_body(response).await;
        // A request that met another one in flight at Stripe may be told to retry (409).
        assert!(matches!(status, 200 | 201 | 409), "{status} {body}");
        if status != 409 {
            paid.push(body["data"]["attributes"]["payment_intent_id"].clone());
        }
    }
    assert!(!paid.is_empty());
    assert!(paid.iter().all(|pi| pi == &paid[0]), "{paid:?}");
    let intents = app.stripe_list(&tenant, "/v1/payment_intents").await;
    assert_eq!(intents.len(), 1, "{intents:?}");
}

async fn an_order_refused_or_declined_at_stripe_can_be_paid_again(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.strict_tenant().await;
    let admin = tenant.admin_token();
    let response = put_order(
        &app,
        &tenant,
        &admin,
        "ord-4",
        json!({"amount": 1200, "currency": "usd", "user_unique_id": "payer"}),
    )
    .await;
    assert_eq!(response.status().as_u16(), 201);
    // Stripe refuses before any intent exists (no such customer): the order stays payable.
    let response = app
        .post_json(
            "/stripe/payments",
            &tenant,
            &admin,
            &json!({"payment": {"order_unique_id": "ord-4", "customer_id": "cus_doesnotexist"}}),
        )
        .await;
    assert_error(response, 422, "resource_missing").await;
    // Corrected at once, with a declining card: the intent Stripe kept pays the order...
    let user = tenant.user_token("payer");
    let response = app
        .post_json(
            "/stripe/payments",
            &tenant,
            &user,
            &json!({"payment": {"order_unique_id": "ord-4", "payment_method": "pm_card_chargeDeclined"}}),
        )
        .await;
    let error = assert_error(response, 402, "card_declined").await;
    let pi = error["meta"]["payment_intent_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // ...so paying again answers it, to be confirmed with another card; nothing new is made.
    let response = app
        .post_json(
            "/stripe/payments",
            &tenant,
            &user,
            &json!({"payment": {"order_unique_id": "ord-4"}}),
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let again = json_body(response).await["data"]["attributes"].clone();
    assert_eq!(again["payment_intent_id"], pi.as_str());
    assert_eq!(again["status"], "requires_payment_method");
    let confirmed = app
        .post_json(
            &format!("/stripe/payments/{pi}/confirm"),
            &tenant,
            &user,
            &json!({"payment": {"payment_method": "pm_card_visa"}}),
        )
        .await;
    assert_eq!(confirmed.status().as_u16(), 200);
    assert_eq!(
        app.stripe_list(&tenant, "/v1/payment_intents").await.len(),
        1
    );
}

/// The tenant's backend answering order lookups: `orders` maps an order id to its answer;
/// every request's path and query and `Sales-Signature` are kept.
struct OrderBackend {
    url: String,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

fn order_backend(orders: Vec<(&'static str, Value)>) -> OrderBackend {
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let log = seen.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api/orders", listener.local_addr().unwrap());
    let orders = Arc::new(orders);
    let server = actix_web::HttpServer::new(move || {
        let (log, orders) = (log.clone(), orders.clone());
        actix_web::App::new().default_service(web::to(move |req: HttpRequest| {
            let (log, orders) = (log.clone(), orders.clone());
            async move {
                let signature = req
                    .headers()
                    .get("sales-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let target = req
                    .uri()
                    .path_and_query()
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                log.lock().unwrap().push((target, signature));
                let id = req.path().rsplit('/').next().unwrap_or_default().to_owned();
                if id.starts_with("slow") {
                    // A backend that takes its time, then has no such order.
                    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
                }
                match orders.iter().find(|(o, _)| *o == id) {
                    Some((_, answer)) => HttpResponse::Ok().json(answer),
                    None => HttpResponse::NotFound().finish(),
                }
            }
        }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    OrderBackend { url, seen }
}

/// Verifies `t=..,v1=..` over `"<t>.<path and query>"`, written out independently.
fn signed_with(signature: &str, signed: &str, secret: &str) -> bool {
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
    mac.update(format!("{t}.{signed}").as_bytes());
    hex::encode(mac.finalize().into_bytes()) == v1
}

async fn an_unknown_order_is_looked_up_at_the_apps_backend(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.strict_tenant().await;
    let admin = tenant.admin_token();
    let user = tenant.user_token("looker");
    let shop = order_backend(vec![
        (
            "ord-9",
            json!({"data": {"type": "order", "attributes": {"amount": 3100, "currency": "usd", "description": "Looked up"}}}),
        ),
        ("ord-10", json!({"amount": 700, "currency": "usd"})),
        (
            "ord-11",
            json!({"amount": 800, "currency": "usd", "user_unique_id": "someone-else"}),
        ),
        ("ord-12", json!({"amount": "lots", "currency": "usd"})),
        (
            "ord-13",
            json!({"amount": 5, "currency": "usd", "description": "a\u{0}b"}),
        ),
    ]);
    let response = app
        .authed(Method::PUT, "/stripe/policy", &tenant, &admin)
        .json(&json!({"policy": {"order_lookup_url": shop.url}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let policy = json_body(response).await["data"]["attributes"].clone();
    let secret = policy["order_lookup_signing_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(policy["order_lookup_url"], shop.url.as_str());
    // Read back: the secret is never shown again.
    let read = json_body(
        app.authed(Method::GET, "/stripe/policy", &tenant, &admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        read["data"]["attributes"]
            .get("order_lookup_signing_secret")
            .is_none()
    );

    let pay = |order: &str| json!({"payment": {"order_unique_id": order}});
    let response = app
        .post_json("/stripe/payments", &tenant, &user, &pay("ord-9"))
        .await;
    assert_eq!(response.status().as_u16(), 201);
    let paid = json_body(response).await["data"]["attributes"].clone();
    assert_eq!(
        (paid["amount"].as_i64(), paid["description"].as_str()),
        (Some(3100), Some("Looked up"))
    );
    let (target, signature) = shop.seen.lock().unwrap()[0].clone();
    assert_eq!(target, "/api/orders/ord-9?user_unique_id=looker");
    assert!(signed_with(&signature, &target, &secret), "{signature}");
    // Recorded for the caller, from the lookup.
    let order = json_body(get_order(&app, &tenant, &user, "ord-9").await).await;
    assert_eq!(order["data"]["attributes"]["source"], "lookup");
    assert_eq!(order["data"]["attributes"]["user_unique_id"], "looker");
    // A plain answer works too; a paid order is not looked up again.
    let response = app
        .post_json("/stripe/payments", &tenant, &user, &pay("ord-10"))
        .await;
    assert_eq!(response.status().as_u16(), 201);
    let response = app
        .post_json("/stripe/payments", &tenant, &user, &pay("ord-9"))
        .await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(shop.seen.lock().unwrap().len(), 2);

    // Unknown to the backend, another user's, or a nonsense answer: nothing is charged.
    let response = app
        .post_json("/stripe/payments", &tenant, &user, &pay("nope"))
        .await;
    assert_error(response, 404, "not_found").await;
    // Asked again at once, the miss is remembered: the backend is not called again.
    let calls = shop.seen.lock().unwrap().len();
    let response = app
        .post_json("/stripe/payments", &tenant, &user, &pay("nope"))
        .await;
    assert_error(response, 404, "not_found").await;
    assert_eq!(shop.seen.lock().unwrap().len(), calls);
    let response = app
        .post_json("/stripe/payments", &tenant, &user, &pay("ord-11"))
        .await;
    assert_error(response, 404, "not_found").await;
    let response = app
        .post_json("/stripe/payments", &tenant, &user, &pay("ord-12"))
        .await;
    let error = assert_error(response, 502, "order_lookup_failed").await;
    // The app's URL is for its operators' logs, never shown to its users.
    let port = shop
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        !error["detail"].as_str().unwrap().contains(&port),
        "{error}"
    );
    let response = app
        .post_json("/stripe/payments", &tenant, &user, &pay("ord-13"))
        .await;
    assert_error(response, 502, "order_lookup_failed").await;
    assert_eq!(intents_at_stripe(&app, &tenant).await.len(), 2);
}

async fn a_flood_of_unknown_orders_holds_few_lookups_per_app(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.strict_tenant().await;
    let shop = order_backend(vec![]);
    let response = app
        .authed(
            Method::PUT,
            "/stripe/policy",
            &tenant,
            &tenant.admin_token(),
        )
        .json(&json!({"policy": {"order_lookup_url": shop.url}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let user = tenant.user_token("flooder");
    let bodies: Vec<Value> = (0..7)
        .map(|i| json!({"payment": {"order_unique_id": format!("slow-{i}")}}))
        .collect();
    let responses = futures_util::future::join_all(
        bodies
            .iter()
            .map(|body| app.post_json("/stripe/payments", &tenant, &user, body)),
    )
    .await;
    let mut statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    statuses.sort_unstable();
    // Four lookups at once per app; the others are told to come back.
    assert_eq!(
        statuses,
        vec![404, 404, 404, 404, 429, 429, 429],
        "{statuses:?}"
    );
    let refused = responses
        .into_iter()
        .find(|r| r.status().as_u16() == 429)
        .unwrap();
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(shop.seen.lock().unwrap().len(), 4);
}

async fn an_order_lookup_url_must_pass_the_egress_policy(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.egress_allow_http = false;
        settings.egress_allow_loopback = false;
    })
    .await;
    let tenant = app.strict_tenant().await;
    let admin = tenant.admin_token();
    for url in [
        "https://127.0.0.1/orders",
        "https://10.0.0.5/orders",
        "https://169.254.169.254/latest",
        "https://localhost/orders",
        "http://shop.example.com/orders",
        "https://backend:s3cret@shop.example.com/orders",
    ] {
        let response = app
            .authed(Method::PUT, "/stripe/policy", &tenant, &admin)
            .json(&json!({"policy": {"order_lookup_url": url}}))
            .send()
            .await
            .unwrap();
        let error = assert_error(response, 422, "validation_error").await;
        assert_eq!(
            error["source"]["pointer"], "/policy/order_lookup_url",
            "{url}"
        );
    }
    let read = json_body(
        app.authed(Method::GET, "/stripe/policy", &tenant, &admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(read["data"]["attributes"]["order_lookup_url"], Value::Null);
}

on_both_databases!(
    the_sdk_flow_pays_the_order_the_backend_recorded,
    an_order_is_charged_only_its_own_amount,
    concurrent_payments_of_one_order_make_one_intent,
    an_order_refused_or_declined_at_stripe_can_be_paid_again,
    the_orders_terms_win_over_the_body,
    a_retry_after_stripe_timed_out_never_charges_an_order_twice,
    an_orders_terms_are_fixed_while_its_payment_is_made,
    an_order_whose_payment_was_canceled_takes_a_new_one,
    an_unknown_order_is_looked_up_at_the_apps_backend,
    a_flood_of_unknown_orders_holds_few_lookups_per_app,
    an_order_lookup_url_must_pass_the_egress_policy,
);
