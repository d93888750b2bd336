//! POST /stripe/payments.

use serde_json::json;

use crate::helpers::{Backend, assert_error, json_body, spawn_app};
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

async fn the_sdk_body_keeps_order_fields_in_metadata_and_needs_an_amount(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("sdk");
    let sdk = json!({"payment": {"currency": "usd", "order_unique_id": "ord-1",
        "identity_type": "user", "entity_type": "order", "entity_id": "e-9"}});
    let error = assert_error(
        app.post_json("/stripe/payments", &tenant, &token, &sdk)
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
    assert!(app.stripe_requests(&tenant).await.is_empty());

    let mut with_amount = sdk.clone();
    with_amount["payment"]["amount"] = json!(2500);
    let response = app
        .post_json("/stripe/payments", &tenant, &token, &with_amount)
        .await;
    assert_eq!(response.status().as_u16(), 201);
    let p = json_body(response).await["data"]["attributes"].clone();
    assert_eq!(p["status"], "requires_payment_method");
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

on_both_databases!(
    a_card_payment_from_the_spec_body_succeeds,
    the_sdk_body_keeps_order_fields_in_metadata_and_needs_an_amount,
    a_declined_card_is_402_with_stripes_codes,
    invalid_payments_are_refused_before_stripe,
);
