//! Ids are bounded (issue 12, point 10): a NUL byte or an oversize id, in a signed Stripe event,
//! a path, a query, a body or a token's subject, is a 400/422/401 in the JSON:API error format
//! and changes nothing; never a database error (PostgreSQL refuses NUL in text).

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestTenant, assert_error, sign_hs256, spawn_app};
use crate::on_both_databases;
use crate::receiver::{deliver_raw, endpoint, events_stored, stripe_signature};

async fn a_signed_event_with_a_nul_or_oversize_id_is_400_and_not_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let ep = endpoint(&app, &tenant).await;
    let customer = |id: &str| json!({"id": id, "object": "customer", "email": "n@example.com"});
    let long = format!("evt_{}", "x".repeat(300));
    for event in [
        json!({"id": "evt_\u{0}nul", "type": "customer.created", "created": 1,
               "data": {"object": customer("cus_nul")}}),
        json!({"id": long, "type": "customer.created", "created": 1,
               "data": {"object": customer("cus_long")}}),
        json!({"id": "evt_obj", "type": "customer.created", "created": 1,
               "data": {"object": customer("cus_\u{0}")}}),
        json!({"id": "evt_name", "type": "customer.created", "created": 1,
               "data": {"object": {"id": "cus_name", "object": "customer", "name": "a\u{0}b"}}}),
    ] {
        let body = event.to_string();
        let signed = stripe_signature(&body, &ep.secret, chrono::Utc::now().timestamp());
        let response = deliver_raw(&app, &ep.url_id, &body, Some(signed)).await;
        assert_error(response, 400, "invalid_event").await;
    }
    assert!(events_stored(&app).await.is_empty());
    assert_eq!(app.customer_count().await, 0);
}

async fn send(app: &TestApp, tenant: &TestTenant, method: Method, path: &str) -> reqwest::Response {
    let mut request = app.authed(method.clone(), path, tenant, &tenant.admin_token());
    if method != Method::GET && method != Method::DELETE {
        request = request.json(&json!({}));
    }
    request.send().await.unwrap()
}

async fn nul_or_oversize_ids_in_paths_queries_and_tokens_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let long = "a".repeat(300);
    for id in ["cus%00nul", long.as_str()] {
        for (method, path) in [
            (Method::GET, format!("/stripe/customers/{id}")),
            (Method::POST, format!("/stripe/customers/{id}/portal")),
            (Method::POST, format!("/stripe/payments/{id}/confirm")),
            (Method::PUT, format!("/stripe/subscriptions/{id}")),
            (Method::DELETE, format!("/stripe/subscriptions/{id}")),
            (Method::DELETE, format!("/stripe/cards/{id}")),
            (Method::GET, format!("/stripe/sessions/{id}")),
        ] {
            let response = send(&app, &tenant, method.clone(), &path).await;
            assert_eq!(response.status().as_u16(), 400, "{method} {path}");
            assert_error(response, 400, "invalid_path").await;
        }
    }
    for query in ["customer_id=cus%00nul", "status=a%00"] {
        let response = send(
            &app,
            &tenant,
            Method::GET,
            &format!("/stripe/subscriptions?{query}"),
        )
        .await;
        let error = assert_error(response, 400, "invalid_query").await;
        assert!(error["source"]["parameter"].is_string(), "{error}");
    }
    // A token whose subject holds a NUL (the tenant's identity provider minted it).
    let now = chrono::Utc::now().timestamp();
    let token = sign_hs256(
        tenant.secret(),
        &json!({"sub": "user\u{0}x", "iat": now, "exp": now + 60}),
    );
    let response = app
        .authed(Method::GET, "/stripe/customers", &tenant, &token)
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "invalid_token").await;
    assert!(app.stripe_requests(&tenant).await.is_empty());
}

async fn nul_or_oversize_ids_in_bodies_are_422_with_a_pointer(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let admin = tenant.admin_token();
    let long = "c".repeat(300);
    let cases: [(&str, Value, &str); 6] = [
        (
            "/stripe/payments",
            json!({"payment": {"amount": 500, "currency": "usd", "customer_id": "cus_\u{0}x"}}),
            "/payment/customer_id",
        ),
        (
            "/stripe/payments",
            json!({"payment": {"amount": 500, "currency": "usd", "customer_id": long}}),
            "/payment/customer_id",
        ),
        (
            "/stripe/subscriptions",
            json!({"subscription": {"customer_id": "cus_1", "price_id": "price_\u{0}"}}),
            "/subscription/price_id",
        ),
        (
            "/stripe/subscriptions",
            json!({"subscription": {"customer_id": long, "price_id": "price_1"}}),
            "/subscription/customer_id",
        ),
        (
            "/stripe/sessions",
            json!({"session": {"success_url": "https://a.example/s", "cancel_url": "https://a.example/c",
                            "line_items": [{"price_id": "price_\u{0}", "quantity": 1}]}}),
            "/session/line_items/0/price_id",
        ),
        (
            "/stripe/customers",
            json!({"customer": {"email": "u@example.com", "user_unique_id": "alice\u{0}"}}),
            "/customer/user_unique_id",
        ),
    ];
    for (path, body, pointer) in cases {
        let response = app.post_json(path, &tenant, &admin, &body).await;
        let error = assert_error(response, 422, "validation_error").await;
        assert_eq!(error["source"]["pointer"], pointer, "{path} {body}");
    }
    assert_eq!(app.customer_count().await, 0);
    assert!(app.stripe_requests(&tenant).await.is_empty());
}

on_both_databases!(
    a_signed_event_with_a_nul_or_oversize_id_is_400_and_not_stored,
    nul_or_oversize_ids_in_paths_queries_and_tokens_are_refused,
    nul_or_oversize_ids_in_bodies_are_422_with_a_pointer,
);
