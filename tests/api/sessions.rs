//! POST /stripe/sessions and GET /stripe/sessions/{id}.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestTenant, assert_error, json_body, spawn_app};
use crate::on_both_databases;

async fn post_session(
    app: &TestApp,
    tenant: &TestTenant,
    token: &str,
    body: Value,
) -> reqwest::Response {
    app.post_json("/stripe/sessions", tenant, token, &body)
        .await
}

async fn get_session(
    app: &TestApp,
    tenant: &TestTenant,
    token: &str,
    id: &str,
) -> reqwest::Response {
    app.authed(
        Method::GET,
        &format!("/stripe/sessions/{id}"),
        tenant,
        token,
    )
    .send()
    .await
    .unwrap()
}

async fn a_payment_session_from_the_spec_body_is_created_and_refreshed(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("buyer");
    let customer = app.customer(&tenant, &token, "buyer@example.com").await;
    let cus = customer["stripe_customer_id"].as_str().unwrap();
    let price = app.price(&tenant, 4999, None).await;
    let response = post_session(
        &app,
        &tenant,
        &token,
        json!({"session": {
            "customer_id": cus, "success_url": "https://app.example.com/success",
            "cancel_url": "https://app.example.com/cancel",
            "line_items": [{"price_id": price, "quantity": 2}], "mode": "payment",
            "metadata": {"order": "o-1"}
        }}),
    )
    .await;
    assert_eq!(response.status().as_u16(), 201);
    let body = json_body(response).await;
    assert_eq!(body["data"]["type"], "checkout_session");
    let s = &body["data"]["attributes"];
    assert_eq!(body["data"]["id"], s["unique_id"]);
    let cs = s["stripe_session_id"].as_str().unwrap().to_owned();
    assert!(cs.starts_with("cs_"), "{cs}");
    assert!(s["url"].as_str().unwrap().starts_with("http"));
    assert_eq!(s["status"], "open");
    assert_eq!(s["mode"], "payment");
    assert_eq!(s["payment_status"], "unpaid");
    assert_eq!(s["amount_total"], 9998);
    assert_eq!(s["currency"], "usd");
    assert_eq!(s["customer"], cus);
    assert_eq!(s["metadata"], json!({"order": "o-1"}));
    assert!(s["expires_at"].as_str().unwrap().ends_with('Z'));

    // Completed at Stripe (the emulator's test helper), then read by either id.
    let completed = app
        .http
        .post(format!(
            "{}/_emulator/checkout/sessions/{cs}/complete",
            app.emulator.base_url()
        ))
        .bearer_auth(&tenant.stripe_key)
        .send()
        .await
        .unwrap();
    assert!(completed.status().is_success());
    for id in [s["unique_id"].as_str().unwrap(), cs.as_str()] {
        let refreshed = json_body(get_session(&app, &tenant, &token, id).await).await;
        let r = &refreshed["data"]["attributes"];
        assert_eq!(r["status"], "complete", "{refreshed}");
        assert_eq!(r["payment_status"], "paid");
        assert_eq!(r["unique_id"], s["unique_id"]);
        assert!(r["payment_intent_id"].as_str().unwrap().starts_with("pi_"));
    }
}

async fn a_subscription_session_from_the_sdk_body_passes_trial_and_promotion_codes(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("sdk-user");
    let customer = app.customer(&tenant, &token, "sdk@example.com").await;
    let price = app.price(&tenant, 1500, Some("month")).await;
    let response = post_session(
        &app,
        &tenant,
        &token,
        json!({"session": {
            "customer": customer["unique_id"], "price": price, "quantity": 1,
            "mode": "subscription", "trial_period_days": 7, "allow_promotion_codes": true,
            "success_url": "https://app.example.com/ok", "cancel_url": "https://app.example.com/no"
        }}),
    )
    .await;
    assert_eq!(response.status().as_u16(), 201);
    let s = json_body(response).await["data"]["attributes"].clone();
    assert_eq!(s["mode"], "subscription");
    assert_eq!(s["customer"], customer["stripe_customer_id"]);
    let sent = app
        .stripe_params(&tenant, "POST", "/v1/checkout/sessions")
        .await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["subscription_data"]["trial_period_days"], "7");
    assert_eq!(sent[0]["allow_promotion_codes"], "true");
    assert_eq!(sent[0]["line_items"][0]["price"], json!(price));
}

async fn a_setup_session_needs_no_items(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let response = post_session(
        &app,
        &tenant,
        &tenant.user_token("u"),
        json!({"session": {"mode": "setup", "customer_email": "s@example.com",
            "success_url": "https://a.example.com/s", "cancel_url": "https://a.example.com/c"}}),
    )
    .await;
    assert_eq!(response.status().as_u16(), 201);
    let s = json_body(response).await["data"]["attributes"].clone();
    assert_eq!(s["mode"], "setup");
    assert_eq!(s["payment_status"], "no_payment_required");
}

async fn sessions_of_others_and_unknown_ids_are_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let other = app.tenant().await;
    let price = app.price(&tenant, 1000, None).await;
    let body = json!({"session": {"success_url": "https://a.example.com/s", "cancel_url": "https://a.example.com/c",
        "line_items": [{"price_id": price, "quantity": 1}]}});
    let created =
        json_body(post_session(&app, &tenant, &tenant.user_token("owner"), body).await).await;
    let s = &created["data"]["attributes"];
    for id in [
        s["unique_id"].as_str().unwrap(),
        s["stripe_session_id"].as_str().unwrap(),
    ] {
        assert_error(
            get_session(&app, &other, &other.admin_token(), id).await,
            404,
            "not_found",
        )
        .await;
        assert_error(
            get_session(&app, &tenant, &tenant.user_token("stranger"), id).await,
            404,
            "not_found",
        )
        .await;
        let ok = get_session(&app, &tenant, &tenant.admin_token(), id).await;
        assert_eq!(ok.status().as_u16(), 200);
    }
    assert_error(
        get_session(&app, &tenant, &tenant.admin_token(), "cs_test_nope").await,
        404,
        "not_found",
    )
    .await;
}

async fn invalid_sessions_are_refused_with_a_pointer(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("u");
    let urls =
        json!({"success_url": "https://a.example.com/s", "cancel_url": "https://a.example.com/c"});
    let with = |extra: Value| {
        let mut s = urls.clone();
        for (k, v) in extra.as_object().unwrap() {
            s[k] = v.clone();
        }
        json!({ "session": s })
    };
    let cases = [
        (
            json!({"session": {"cancel_url": "https://a.example.com/c", "line_items": [{"price_id": "price_1", "quantity": 1}]}}),
            "/session/success_url",
        ),
        (
            with(json!({"mode": "rental", "line_items": [{"price_id": "price_1"}]})),
            "/session/mode",
        ),
        (with(json!({"mode": "payment"})), "/session/line_items"),
        (
            with(json!({"line_items": [{"price_id": "prod_1", "quantity": 1}]})),
            "/session/line_items/0/price_id",
        ),
        (
            with(json!({"line_items": [{"price_id": "price_1", "quantity": 0}]})),
            "/session/line_items/0/quantity",
        ),
        (
            with(json!({"line_items": [{"price_id": "price_1", "quantity": "two"}]})),
            "/session/line_items/0/quantity",
        ),
        (
            with(json!({"line_items": [{"price_id": "price_1"}], "trial_period_days": 5})),
            "/session/trial_period_days",
        ),
    ];
    for (body, pointer) in cases {
        let error = assert_error(
            post_session(&app, &tenant, &token, body.clone()).await,
            422,
            "validation_error",
        )
        .await;
        assert_eq!(error["source"]["pointer"], pointer, "{body}");
    }
    assert!(app.stripe_requests(&tenant).await.is_empty());

    // A well-formed but unknown price is Stripe's to refuse.
    let response = post_session(
        &app,
        &tenant,
        &token,
        with(json!({"line_items": [{"price_id": "price_unknown", "quantity": 1}]})),
    )
    .await;
    let error = assert_error(response, 422, "resource_missing").await;
    assert!(error["detail"].as_str().unwrap().contains("price_unknown"));
}

on_both_databases!(
    a_payment_session_from_the_spec_body_is_created_and_refreshed,
    a_subscription_session_from_the_sdk_body_passes_trial_and_promotion_codes,
    a_setup_session_needs_no_items,
    sessions_of_others_and_unknown_ids_are_404,
    invalid_sessions_are_refused_with_a_pointer,
);
