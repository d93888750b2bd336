//! POST /stripe/payments and POST /stripe/payments/{id}/confirm.

use serde_json::json;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{Backend, TestApp, TestTenant, assert_error, json_body, spawn_app};
use crate::on_both_databases;

async fn a_card_payment_from_the_spec_body_succeeds(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("payer");
    let customer = app.customer(&tenant, &token, "payer@example.com").await;
    let cus = customer["stripe_customer_id"].as_str().unwrap();
    let response = app
        .post_json(
            "/stripe/payments",
            &tenant,
            &token,
            &json!({"payment": {"amount": 9999, "currency": "USD", "customer_id": cus,
                "payment_method": "pm_card_visa", "description": "Order payment"}}),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
    let body = json_body(response).await;
    assert_eq!(body["data"]["type"], "stripe_payment");
    let p = &body["data"]["attributes"];
    let pi = p["stripe_payment_id"].as_str().unwrap();
    assert!(pi.starts_with("pi_"));
    assert_eq!(p["payment_intent_id"], pi);
    assert_eq!(p["amount"], 9999);
    assert_eq!(p["currency"], "usd");
    assert_eq!(p["status"], "succeeded");
    assert_eq!(p["customer"], cus);
    assert_eq!(p["description"], "Order payment");
    assert!(p["client_secret"].as_str().unwrap().starts_with(pi));
    let sent = app
        .stripe_params(&tenant, "POST", "/v1/payment_intents")
        .await;
    assert_eq!(sent[0]["confirm"], "true");
    assert_eq!(sent[0]["amount"], "9999");
}

async fn the_sdk_body_keeps_order_fields_in_metadata_and_needs_a_known_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("sdk");
    let sdk = json!({"payment": {"currency": "usd", "order_unique_id": "ord-1",
        "identity_type": "user", "entity_type": "order", "entity_id": "e-9"}});
    // The SDK sends no amount: the order's is charged, and an order nobody recorded is 404.
    let error = assert_error(
        app.post_json("/stripe/payments", &tenant, &token, &sdk)
            .await,
        404,
        "not_found",
    )
    .await;
    assert!(error["detail"].as_str().unwrap().contains("ord-1"));
    assert!(app.stripe_requests(&tenant).await.is_empty());
    // Neither an amount nor an order: 422 naming the amount.
    let error = assert_error(
        app.post_json(
            "/stripe/payments",
            &tenant,
            &token,
            &json!({"payment": {"currency": "usd"}}),
        )
        .await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(error["source"]["pointer"], "/payment/amount");
    assert!(
        error["detail"]
            .as_str()
            .unwrap()
            .contains("amount is required")
    );

    let recorded = app
        .authed(
            Method::PUT,
            "/stripe/orders/ord-1",
            &tenant,
            &tenant.admin_token(),
        )
        .json(&json!({"order": {"amount": 2500, "currency": "usd", "user_unique_id": "sdk"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(recorded.status().as_u16(), 201);
    let response = app
        .post_json("/stripe/payments", &tenant, &token, &sdk)
        .await;
    assert_eq!(response.status().as_u16(), 201);
    let p = json_body(response).await["data"]["attributes"].clone();
    assert_eq!(p["status"], "requires_payment_method");
    assert_eq!(p["amount"], 2500);
    assert_eq!(
        p["metadata"],
        json!({"entity_id": "e-9", "entity_type": "order", "identity_type": "user", "order_unique_id": "ord-1"})
    );
}

async fn a_declined_card_is_402_with_stripes_codes(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let response = app
        .post_json(
            "/stripe/payments",
            &tenant,
            &tenant.user_token("u"),
            &json!({"payment": {"amount": 1000, "currency": "usd", "payment_method": "pm_card_chargeDeclined"}}),
        )
        .await;
    let error = assert_error(response, 402, "card_declined").await;
    assert_eq!(error["meta"]["decline_code"], "generic_decline");
    assert_eq!(error["meta"]["stripe_type"], "card_error");
    // Stripe's id of the refused request comes along (and is logged beside ours).
    let refused = app.stripe_requests(&tenant).await;
    let refused = refused
        .iter()
        .rfind(|r| r["path"] == "/v1/payment_intents")
        .unwrap();
    assert_eq!(error["meta"]["stripe_request_id"], refused["request_id"]);
    assert!(refused["request_id"].as_str().unwrap().starts_with("req_"));
}

async fn a_declined_payment_is_recorded_and_can_be_retried_with_another_card(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("unlucky");
    let response = app
        .post_json(
            "/stripe/payments",
            &tenant,
            &token,
            &json!({"payment": {"amount": 1500, "currency": "usd", "payment_method": "pm_card_chargeDeclined"}}),
        )
        .await;
    let error = assert_error(response, 402, "card_declined").await;
    let pi = error["meta"]["payment_intent_id"]
        .as_str()
        .unwrap_or_default();
    let unique_id = error["meta"]["unique_id"].as_str().unwrap_or_default();
    assert!(pi.starts_with("pi_"), "{error}");
    assert!(!unique_id.is_empty(), "{error}");
    // No webhook endpoint exists: the row comes from the declined request itself.
    let failed = json_body(
        app.authed(
            Method::GET,
            "/stripe/payments?status=failed",
            &tenant,
            &token,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(failed["data"].as_array().map(Vec::len), Some(1), "{failed}");
    let row = &failed["data"][0]["attributes"];
    assert_eq!(row["unique_id"], unique_id);
    assert_eq!(row["payment_intent_id"], pi);
    assert_eq!(row["status"], "requires_payment_method");
    assert_eq!(row["amount"], 1500);
    assert_eq!(row["client_secret"], Value::Null);
    // The client retries with another card.
    let retried = confirm(
        &app,
        &tenant,
        &token,
        unique_id,
        json!({"payment_method": "pm_card_visa"}),
    )
    .await;
    assert_eq!(retried.status().as_u16(), 200);
    let retried = json_body(retried).await["data"]["attributes"].clone();
    assert_eq!(retried["status"], "succeeded");
    assert_eq!(retried["payment_intent_id"], pi);
}

async fn invalid_payments_are_refused_before_stripe(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("u");
    for (payment, pointer) in [
        (json!({"amount": 0, "currency": "usd"}), "/payment/amount"),
        (
            json!({"amount": 100_000_000, "currency": "usd"}),
            "/payment/amount",
        ),
        (
            json!({"amount": "10", "currency": "usd"}),
            "/payment/amount",
        ),
        (
            json!({"amount": 10.5, "currency": "usd"}),
            "/payment/amount",
        ),
        (json!({"amount": 1000}), "/payment/currency"),
        (
            json!({"amount": 1000, "currency": "dollars"}),
            "/payment/currency",
        ),
        (
            json!({"amount": 1000, "currency": "usd", "payment_method": "visa"}),
            "/payment/payment_method",
        ),
    ] {
        let response = app
            .post_json(
                "/stripe/payments",
                &tenant,
                &token,
                &json!({ "payment": payment }),
            )
            .await;
        let error = assert_error(response, 422, "validation_error").await;
        assert_eq!(error["source"]["pointer"], pointer, "{payment}");
    }
    let response = app
        .post_json("/stripe/payments", &tenant, &token, &json!({"payment": {"amount": 1000, "currency": "usd", "customer_id": "someone-elses"}}))
        .await;
    assert_error(response, 404, "not_found").await;
    assert!(app.stripe_requests(&tenant).await.is_empty());
}

const RETURN_URL: &str = "https://shop.example.com/paid";

/// A payment created without a payment method: `requires_payment_method`, to be confirmed.
async fn open_payment(app: &TestApp, tenant: &TestTenant, token: &str) -> Value {
    let response = app
        .post_json(
            "/stripe/payments",
            tenant,
            token,
            &json!({"payment": {"amount": 4200, "currency": "usd"}}),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
    json_body(response).await["data"]["attributes"].clone()
}

async fn confirm(
    app: &TestApp,
    tenant: &TestTenant,
    token: &str,
    id: &str,
    payment: Value,
) -> reqwest::Response {
    app.post_json(
        &format!("/stripe/payments/{id}/confirm"),
        tenant,
        token,
        &json!({ "payment": payment }),
    )
    .await
}

async fn a_confirmation_charges_the_card_and_updates_the_mirror(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("buyer");
    let open = open_payment(&app, &tenant, &token).await;
    assert_eq!(open["status"], "requires_payment_method");
    let pi = open["stripe_payment_id"].as_str().unwrap();
    let path = format!(
        "/stripe/payments/{}/confirm",
        open["unique_id"].as_str().unwrap()
    );
    let card = json!({"payment": {"payment_method": "pm_card_visa", "return_url": RETURN_URL}});
    let send = || {
        app.authed(Method::POST, &path, &tenant, &token)
            .header("Idempotency-Key", "confirm-1")
            .json(&card)
            .send()
    };
    let response = send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body = json_body(response).await;
    // A retry with the key is answered from the first confirmation, not refused by Stripe.
    let retried = send().await.unwrap();
    assert_eq!(retried.headers()["idempotent-replayed"], "true");
    assert_eq!(json_body(retried).await, body);
    assert_eq!(body["data"]["type"], "stripe_payment");
    assert_eq!(body["data"]["id"], open["unique_id"]);
    let confirmed = &body["data"]["attributes"];
    assert_eq!(confirmed["status"], "succeeded");
    assert_eq!(confirmed["stripe_payment_id"], pi);
    assert!(
        confirmed["payment_method"]
            .as_str()
            .unwrap()
            .starts_with("pm_")
    );
    assert_eq!(confirmed["amount"], 4200);
    let sent = app
        .stripe_params(
            &tenant,
            "POST",
            &format!("/v1/payment_intents/{pi}/confirm"),
        )
        .await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["payment_method"], "pm_card_visa");
    let keys: Vec<Value> = app
        .stripe_requests(&tenant)
        .await
        .into_iter()
        .filter(|r| r["path"] == format!("/v1/payment_intents/{pi}/confirm").as_str())
        .map(|r| r["idempotency_key"].clone())
        .collect();
    let tag = sales_block::idempotency::caller_tag("buyer");
    assert_eq!(
        keys,
        vec![json!(format!("confirm-1:payment_intent_confirm:{tag}"))]
    );
    assert_eq!(sent[0]["return_url"], RETURN_URL);
    // The mirror holds Stripe's answer.
    let listed = json_body(
        app.authed(Method::GET, "/stripe/payments", &tenant, &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(listed["data"][0]["attributes"]["status"], "succeeded");
    assert_eq!(
        app.stripe_get(&tenant, &format!("/v1/payment_intents/{pi}"))
            .await["status"],
        "succeeded"
    );

    // By the pi_ id, with the payments service's field name: Stripe refuses a second
    // confirmation, with its code.
    let error = assert_error(
        confirm(
            &app,
            &tenant,
            &token,
            pi,
            json!({"payment_method_id": "pm_card_visa", "return_url": RETURN_URL}),
        )
        .await,
        422,
        "payment_intent_unexpected_state",
    )
    .await;
    assert_eq!(error["meta"]["stripe_type"], "invalid_request_error");
}

async fn a_declined_confirmation_is_402_with_stripes_codes(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("buyer");
    let open = open_payment(&app, &tenant, &token).await;
    let id = open["unique_id"].as_str().unwrap();
    let error = assert_error(
        confirm(
            &app,
            &tenant,
            &token,
            id,
            json!({"payment_method": "pm_card_chargeDeclined", "return_url": RETURN_URL}),
        )
        .await,
        402,
        "card_declined",
    )
    .await;
    assert_eq!(error["meta"]["decline_code"], "generic_decline");
    assert_eq!(error["meta"]["stripe_type"], "card_error");
    // Another card then goes through on the same payment.
    let response = confirm(
        &app,
        &tenant,
        &token,
        id,
        json!({"payment_method": "pm_card_mastercard", "return_url": RETURN_URL}),
    )
    .await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        json_body(response).await["data"]["attributes"]["status"],
        "succeeded"
    );
}

async fn a_confirmation_needs_a_payment_the_caller_sees_and_a_payment_method(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("owner");
    let open = open_payment(&app, &tenant, &token).await;
    let id = open["unique_id"].as_str().unwrap();
    let card = json!({"payment_method": "pm_card_visa", "return_url": RETURN_URL});
    for (tenant, token, id) in [
        (&tenant, tenant.user_token("stranger"), id),
        (&tenant, token.clone(), "pi_unknown"),
        (&tenant, token.clone(), "not-a-payment"),
    ] {
        assert_error(
            confirm(&app, tenant, &token, id, card.clone()).await,
            404,
            "not_found",
        )
        .await;
    }
    let other = app.tenant().await;
    assert_error(
        confirm(&app, &other, &other.admin_token(), id, card.clone()).await,
        404,
        "not_found",
    )
    .await;
    for (payment, pointer) in [
        (json!({"return_url": RETURN_URL}), "/payment/payment_method"),
        (json!({"payment_method": "visa"}), "/payment/payment_method"),
        (
            json!({"payment_method_id": "4242"}),
            "/payment/payment_method_id",
        ),
        (
            json!({"payment_method": "pm_card_visa", "return_url": "not a url"}),
            "/payment/return_url",
        ),
    ] {
        let error = assert_error(
            confirm(&app, &tenant, &token, id, payment.clone()).await,
            422,
            "validation_error",
        )
        .await;
        assert_eq!(error["source"]["pointer"], pointer, "{payment}");
    }
    let pi = open["stripe_payment_id"].as_str().unwrap();
    assert!(
        app.stripe_params(
            &tenant,
            "POST",
            &format!("/v1/payment_intents/{pi}/confirm")
        )
        .await
        .is_empty(),
        "nothing reached Stripe"
    );
    // An admin may confirm any payment of the app.
    let response = confirm(&app, &tenant, &tenant.admin_token(), id, card).await;
    assert_eq!(response.status().as_u16(), 200);
}

on_both_databases!(
    a_declined_payment_is_recorded_and_can_be_retried_with_another_card,
    a_card_payment_from_the_spec_body_succeeds,
    the_sdk_body_keeps_order_fields_in_metadata_and_needs_a_known_order,
    a_declined_card_is_402_with_stripes_codes,
    invalid_payments_are_refused_before_stripe,
    a_confirmation_charges_the_card_and_updates_the_mirror,
    a_declined_confirmation_is_402_with_stripes_codes,
    a_confirmation_needs_a_payment_the_caller_sees_and_a_payment_method,
);
