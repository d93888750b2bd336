//! Saved cards: attached at Stripe to the caller's customer (found or created by email), the
//! default tracked, listed, detached; other users see none of them.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestTenant, assert_error, json_body, spawn_app};
use crate::on_both_databases;

async fn save(app: &TestApp, tenant: &TestTenant, token: &str, fields: Value) -> reqwest::Response {
    app.post_json("/stripe/cards", tenant, token, &json!({ "card": fields }))
        .await
}

/// The attributes of the cards `token` sees.
pub(crate) async fn listed(app: &TestApp, tenant: &TestTenant, token: &str) -> Vec<Value> {
    let body = json_body(
        app.authed(Method::GET, "/stripe/cards", tenant, token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|c| c["attributes"].clone())
        .collect()
}

async fn cards_are_saved_listed_and_detached(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("holder");

    // No customer yet: one is created for the email, and the card becomes its default.
    let first = save(
        &app,
        &tenant,
        &token,
        json!({"payment_method_id": "pm_card_visa",
        "customer_email": "holder@example.com", "customer_name": "Card Holder"}),
    )
    .await;
    assert_eq!(first.status().as_u16(), 201);
    let first = json_body(first).await["data"]["attributes"].clone();
    assert_eq!(
        (
            first["brand"].as_str(),
            first["last4"].as_str(),
            first["is_default"].as_bool()
        ),
        (Some("visa"), Some("4242"), Some(true)),
        "{first}"
    );
    assert!(first["exp_year"].as_i64().unwrap() > 2025);
    let pm = first["stripe_payment_method_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cus = first["customer"].as_str().unwrap().to_owned();
    let at_stripe = app
        .stripe_get(&tenant, &format!("/v1/customers/{cus}"))
        .await;
    assert_eq!(
        at_stripe["invoice_settings"]["default_payment_method"],
        pm.as_str()
    );
    assert_eq!(at_stripe["name"], "Card Holder");

    // The same email finds the same customer; this card is not made the default.
    let second = json_body(
        save(
            &app,
            &tenant,
            &token,
            json!({"payment_method_id": "pm_card_mastercard",
            "customer_email": "holder@example.com", "set_default": false}),
        )
        .await,
    )
    .await["data"]["attributes"]
        .clone();
    assert_eq!(
        (second["customer"].as_str(), second["is_default"].as_bool()),
        (Some(cus.as_str()), Some(false))
    );
    assert_eq!(app.stripe_list(&tenant, "/v1/customers").await.len(), 1);
    let cards = listed(&app, &tenant, &token).await;
    let mut brands: Vec<(String, bool)> = cards
        .iter()
        .map(|c| {
            (
                c["brand"].as_str().unwrap().to_owned(),
                c["is_default"].as_bool().unwrap(),
            )
        })
        .collect();
    brands.sort();
    assert_eq!(
        brands,
        vec![("mastercard".to_owned(), false), ("visa".to_owned(), true)]
    );

    // Another user sees nothing and cannot delete.
    let stranger = tenant.user_token("stranger");
    assert!(listed(&app, &tenant, &stranger).await.is_empty());
    let denied = app
        .authed(
            Method::DELETE,
            &format!("/stripe/cards/{pm}"),
            &tenant,
            &stranger,
        )
        .send()
        .await
        .unwrap();
    assert_error(denied, 404, "not_found").await;

    // Deleting detaches at Stripe; the card leaves the list and is no one's default.
    let deleted = app
        .authed(
            Method::DELETE,
            &format!("/stripe/cards/{pm}"),
            &tenant,
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 200);
    assert_eq!(
        json_body(deleted).await["data"]["attributes"]["customer"],
        Value::Null
    );
    assert_eq!(
        app.stripe_get(&tenant, &format!("/v1/payment_methods/{pm}"))
            .await["customer"],
        Value::Null
    );
    let cards = listed(&app, &tenant, &token).await;
    assert_eq!(cards.len(), 1);
    assert_eq!(cards[0]["brand"], "mastercard");
    let again = app
        .authed(
            Method::DELETE,
            &format!("/stripe/cards/{pm}"),
            &tenant,
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_error(again, 404, "not_found").await;
}

async fn bad_card_requests_are_refused_before_stripe(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("holder");
    for (fields, pointer) in [
        (
            json!({"customer_email": "a@example.com"}),
            "/card/payment_method_id",
        ),
        (
            json!({"payment_method_id": "tok_visa", "customer_email": "a@example.com"}),
            "/card/payment_method_id",
        ),
        (
            json!({"payment_method_id": "pm_card_visa"}),
            "/card/customer_id",
        ),
        (
            json!({"payment_method_id": "pm_card_visa", "customer_email": "not an email"}),
            "/card/customer_email",
        ),
    ] {
        let error = assert_error(
            save(&app, &tenant, &token, fields).await,
            422,
            "validation_error",
        )
        .await;
        assert_eq!(error["source"]["pointer"], pointer, "{error}");
    }
    assert_error(
        save(
            &app,
            &tenant,
            &token,
            json!({"payment_method_id": "pm_card_visa", "customer_id": "cus_someone"}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert!(app.stripe_requests(&tenant).await.is_empty());
}

/// A saved card is charged off-session; a declining one keeps Stripe's codes.
async fn a_saved_card_is_charged_off_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("subscriber");
    let card = json_body(
        save(
            &app,
            &tenant,
            &token,
            json!({"payment_method_id": "pm_card_visa",
            "customer_email": "sub@example.com"}),
        )
        .await,
    )
    .await["data"]
        .clone();
    let pay = |fields: Value| {
        let (app, tenant, token) = (&app, &tenant, &token);
        async move {
            app.post_json(
                "/stripe/payments",
                tenant,
                token,
                &json!({ "payment": fields }),
            )
            .await
        }
    };
    let paid = pay(json!({"amount": 2999, "currency": "usd", "saved_card_id": card["id"]})).await;
    assert_eq!(paid.status().as_u16(), 201);
    let paid = json_body(paid).await["data"]["attributes"].clone();
    assert_eq!(paid["status"], "succeeded", "{paid}");
    assert_eq!(paid["customer"], card["attributes"]["customer"]);
    let sent = app
        .stripe_params(&tenant, "POST", "/v1/payment_intents")
        .await;
    let last = sent.last().unwrap();
    assert_eq!(
        (last["off_session"].as_str(), last["confirm"].as_str()),
        (Some("true"), Some("true")),
        "{last}"
    );
    assert_eq!(
        last["payment_method"],
        card["attributes"]["stripe_payment_method_id"]
    );

    let declining = json_body(
        save(
            &app,
            &tenant,
            &token,
            json!({"payment_method_id": "pm_card_chargeDeclinedInsufficientFunds",
            "customer_email": "sub@example.com", "set_default": false}),
        )
        .await,
    )
    .await["data"]
        .clone();
    let declined = pay(json!({"amount": 2999, "currency": "usd", "saved_card_id": declining["attributes"]["stripe_payment_method_id"]})).await;
    let error = assert_error(declined, 402, "card_declined").await;
    assert_eq!(
        error["meta"]["decline_code"], "insufficient_funds",
        "{error}"
    );

    // Both a card and a saved card, or someone else's card: refused.
    let both = pay(json!({"amount": 100, "currency": "usd", "saved_card_id": card["id"], "payment_method": "pm_card_visa"})).await;
    let error = assert_error(both, 422, "validation_error").await;
    assert_eq!(error["source"]["pointer"], "/payment/saved_card_id");
    let stranger = tenant.user_token("stranger");
    let theirs = app
        .post_json(
            "/stripe/payments",
            &tenant,
            &stranger,
            &json!({"payment": {"amount": 100, "currency": "usd", "saved_card_id": card["id"]}}),
        )
        .await;
    assert_error(theirs, 404, "not_found").await;
}

on_both_databases!(
    a_saved_card_is_charged_off_session,
    cards_are_saved_listed_and_detached,
    bad_card_requests_are_refused_before_stripe,
);
