//! POST /stripe/refunds and GET /stripe/refunds: partial refunds up to the total, checked
//! before Stripe is called, mirrored, listed per payment.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestTenant, assert_error, json_body, spawn_app};
use crate::on_both_databases;

async fn paid(app: &TestApp, tenant: &TestTenant, token: &str, amount: i64) -> Value {
    let body = json_body(
        app.post_json("/stripe/payments", tenant, token,
            &json!({"payment": {"amount": amount, "currency": "usd", "payment_method": "pm_card_visa"}}))
            .await,
    )
    .await;
    assert_eq!(body["data"]["attributes"]["status"], "succeeded", "{body}");
    body["data"].clone()
}

async fn refund(
    app: &TestApp,
    tenant: &TestTenant,
    token: &str,
    fields: Value,
) -> reqwest::Response {
    app.post_json(
        "/stripe/refunds",
        tenant,
        token,
        &json!({ "refund": fields }),
    )
    .await
}

async fn refunds_at_stripe(app: &TestApp, tenant: &TestTenant) -> usize {
    app.stripe_requests(tenant)
        .await
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/v1/refunds")
        .count()
}

async fn partial_refunds_add_up_to_the_total_and_no_further(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("buyer");
    let payment = paid(&app, &tenant, &token, 5000).await;
    let unique_id = payment["id"].as_str().unwrap();
    let pi = payment["attributes"]["stripe_payment_id"].as_str().unwrap();

    let first = refund(
        &app,
        &tenant,
        &token,
        json!({"payment_id": unique_id, "amount": 2000,
        "reason": "requested_by_customer", "metadata": {"ticket": "T-1"}}),
    )
    .await;
    assert_eq!(first.status().as_u16(), 201);
    let first = json_body(first).await["data"]["attributes"].clone();
    assert_eq!(
        (first["amount"].as_i64(), first["status"].as_str()),
        (Some(2000), Some("succeeded"))
    );
    assert_eq!(first["stripe_payment_id"], pi);
    assert!(first["provider_ref"].as_str().unwrap().starts_with("re_"));
    assert_eq!(first["metadata"], json!({"ticket": "T-1"}));
    // By the pi_ id too, under seed 001's name; two names for two payments are refused.
    let other = paid(&app, &tenant, &token, 700).await;
    let before = refunds_at_stripe(&app, &tenant).await;
    let error = assert_error(
        refund(
            &app,
            &tenant,
            &token,
            json!({"payment_id": other["id"], "payment_intent_id": pi, "amount": 100}),
        )
        .await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(error["source"]["pointer"], "/refund/payment_intent_id");
    assert_eq!(refunds_at_stripe(&app, &tenant).await, before);
    let second = refund(
        &app,
        &tenant,
        &token,
        json!({"payment_intent_id": pi, "amount": 2000}),
    )
    .await;
    assert_eq!(second.status().as_u16(), 201);
    assert_eq!(
        json_body(second).await["data"]["attributes"]["stripe_payment_id"],
        pi
    );

    // 1,000 left: 2,000 more is refused before Stripe is asked.
    let before = refunds_at_stripe(&app, &tenant).await;
    let error = assert_error(
        refund(
            &app,
            &tenant,
            &token,
            json!({"payment_id": unique_id, "amount": 2000}),
        )
        .await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(error["source"]["pointer"], "/refund/amount");
    assert!(
        error["detail"].as_str().unwrap().contains("1000"),
        "{error}"
    );
    assert_eq!(refunds_at_stripe(&app, &tenant).await, before);

    // No amount: the rest.
    let rest =
        json_body(refund(&app, &tenant, &token, json!({"payment_id": unique_id})).await).await;
    assert_eq!(rest["data"]["attributes"]["amount"], 1000, "{rest}");
    assert_error(
        refund(
            &app,
            &tenant,
            &token,
            json!({"payment_id": unique_id, "amount": 1}),
        )
        .await,
        422,
        "validation_error",
    )
    .await;

    // Stripe agrees: the charge is refunded in full, in three refunds.
    let at_stripe = app
        .stripe_list(&tenant, &format!("/v1/refunds?payment_intent={pi}"))
        .await;
    assert_eq!(at_stripe.len(), 3);
    let listed = json_body(
        app.authed(
            Method::GET,
            &format!("/stripe/refunds?payment_id={unique_id}"),
            &tenant,
            &token,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    let amounts: Vec<i64> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["attributes"]["amount"].as_i64().unwrap())
        .collect();
    let mut sorted = amounts.clone();
    sorted.sort();
    assert_eq!(sorted, vec![1000, 2000, 2000], "{listed}");
    assert_eq!(listed["meta"]["total_count"], 3, "{listed}");
}

async fn refunds_are_checked_scoped_and_stripes_refusal_is_kept(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("buyer");
    let payment = paid(&app, &tenant, &token, 3000).await;
    let unique_id = payment["id"].as_str().unwrap();
    let pi = payment["attributes"]["stripe_payment_id"].as_str().unwrap();

    for (fields, pointer) in [
        (json!({"amount": 100}), "/refund/payment_id"),
        (
            json!({"payment_id": unique_id, "amount": 0}),
            "/refund/amount",
        ),
        (
            json!({"payment_id": unique_id, "reason": "changed_mind"}),
            "/refund/reason",
        ),
        (
            json!({"payment_id": unique_id, "metadata": {"a[b]": "x"}}),
            "/refund/metadata/a[b]",
        ),
    ] {
        let error = assert_error(
            refund(&app, &tenant, &token, fields).await,
            422,
            "validation_error",
        )
        .await;
        assert_eq!(error["source"]["pointer"], pointer, "{error}");
    }
    // Someone else's payment does not exist for them.
    let stranger = tenant.user_token("stranger");
    assert_error(
        refund(&app, &tenant, &stranger, json!({"payment_id": unique_id})).await,
        404,
        "not_found",
    )
    .await;
    let theirs = app
        .authed(
            Method::GET,
            &format!("/stripe/refunds?payment_id={pi}"),
            &tenant,
            &stranger,
        )
        .send()
        .await
        .unwrap();
    assert_error(theirs, 404, "not_found").await;
    assert_eq!(refunds_at_stripe(&app, &tenant).await, 0);

    // Refunded at Stripe behind our back (no webhook here): Stripe's own refusal comes through.
    app.stripe_post(
        &tenant,
        "/v1/refunds",
        &[("payment_intent", pi), ("amount", "2500")],
    )
    .await;
    let error = assert_error(
        refund(
            &app,
            &tenant,
            &token,
            json!({"payment_id": unique_id, "amount": 1000}),
        )
        .await,
        422,
        "amount_too_large",
    )
    .await;
    assert!(
        error["detail"].as_str().unwrap().contains("greater than"),
        "{error}"
    );
}

on_both_databases!(
    partial_refunds_add_up_to_the_total_and_no_further,
    refunds_are_checked_scoped_and_stripes_refusal_is_kept,
);
