//! Who owns a customer (issue 12, points 1 and 7): a non-admin's customer always stands for
//! the token's `sub`, so nobody can plant a customer under another user's id and then see or
//! charge that user's cards; and a customer whose `customer.created` delivery was mirrored
//! before the creating request wrote its row is still answered 201, owned by the caller.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, TestTenant, assert_error, eventually, json_body, spawn_app,
};
use crate::on_both_databases;

async fn post(
    app: &TestApp,
    tenant: &TestTenant,
    token: &str,
    path: &str,
    body: Value,
) -> reqwest::Response {
    app.post_json(path, tenant, token, &body).await
}

async fn a_planted_customer_cannot_capture_another_users_card(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let mallory = tenant.user_token("mallory");
    let alice = tenant.user_token("alice");

    // Mallory plants a customer for Alice, with Alice's email.
    let planted = post(
        &app,
        &tenant,
        &mallory,
        "/stripe/customers",
        json!({"customer": {"email": "alice@example.com", "user_unique_id": "alice"}}),
    )
    .await;
    let error = assert_error(planted, 403, "identity_not_yours").await;
    assert_eq!(error["source"]["pointer"], "/customer/user_unique_id");
    // The same with a company id that is not Mallory's.
    let planted = post(
        &app,
        &tenant,
        &mallory,
        "/stripe/customers",
        json!({"customer": {"email": "alice@example.com", "identity_type": "customer",
            "company_unique_id": "alice"}}),
    )
    .await;
    let error = assert_error(planted, 403, "identity_not_yours").await;
    assert_eq!(error["source"]["pointer"], "/customer/company_unique_id");
    assert!(
        app.stripe_params(&tenant, "POST", "/v1/customers")
            .await
            .is_empty(),
        "nothing may reach Stripe"
    );
    // Mallory may still make a customer of his own with Alice's email...
    let own = post(
        &app,
        &tenant,
        &mallory,
        "/stripe/customers",
        json!({"customer": {"email": "alice@example.com"}}),
    )
    .await;
    assert_eq!(own.status().as_u16(), 201);
    let own = json_body(own).await["data"]["attributes"].clone();

    // ...but Alice saving her card by her email never finds it: she gets a customer of her own.
    let saved = post(
        &app,
        &tenant,
        &alice,
        "/stripe/cards",
        json!({"card": {"payment_method_id": "pm_card_visa", "customer_email": "alice@example.com"}}),
    )
    .await;
    assert_eq!(saved.status().as_u16(), 201);
    let card = json_body(saved).await["data"].clone();
    assert_ne!(card["attributes"]["customer"], own["stripe_customer_id"]);
    let hers = json_body(
        app.authed(
            Method::GET,
            &format!(
                "/stripe/customers/{}",
                card["attributes"]["customer"].as_str().unwrap()
            ),
            &tenant,
            &alice,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        hers["data"]["attributes"]["email"], "alice@example.com",
        "{hers}"
    );

    // Mallory sees none of Alice's cards and cannot charge hers.
    assert!(
        crate::cards::listed(&app, &tenant, &mallory)
            .await
            .is_empty()
    );
    let charge = post(
        &app,
        &tenant,
        &mallory,
        "/stripe/payments",
        json!({"payment": {"amount": 5000, "currency": "usd", "saved_card_id": card["id"]}}),
    )
    .await;
    assert_eq!(charge.status().as_u16(), 404, "{}", json_body(charge).await);
    assert!(
        app.stripe_params(&tenant, "POST", "/v1/payment_intents")
            .await
            .is_empty()
    );
    // Alice sees her card.
    assert_eq!(crate::cards::listed(&app, &tenant, &alice).await.len(), 1);
}

async fn an_admin_may_create_a_customer_for_anyone(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let created = post(
        &app,
        &tenant,
        &tenant.admin_token(),
        "/stripe/customers",
        json!({"customer": {"email": "bob@example.com", "user_unique_id": "bob",
            "identity_type": "customer", "company_unique_id": "co-7"}}),
    )
    .await;
    assert_eq!(created.status().as_u16(), 201);
    let created = json_body(created).await["data"]["attributes"].clone();
    assert_eq!(created["company_unique_id"], "co-7");
    // Bob sees it as his; another user does not.
    for (who, status) in [("bob", 200), ("carol", 404)] {
        let response = app
            .authed(
                Method::GET,
                "/stripe/customers/bob",
                &tenant,
                &tenant.user_token(who),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{who}");
    }
    // A user naming themselves is fine.
    let mine = post(
        &app,
        &tenant,
        &tenant.user_token("dave"),
        "/stripe/customers",
        json!({"customer": {"email": "dave@example.com", "user_unique_id": "dave"}}),
    )
    .await;
    assert_eq!(mine.status().as_u16(), 201);
}

async fn a_customer_mirrored_by_its_webhook_first_is_still_created_for_the_caller(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    // Stripe delivers customer.created to this app's receiver, and its API answer is late:
    // the delivery is mirrored before the creating request writes its row.
    crate::receiver::receiving_endpoint(&app, &tenant).await;
    app.stripe_post(&tenant, "/_emulator/config", &[("latency_ms", "1500")])
        .await;
    let token = tenant.user_token("racer");
    let request = post(
        &app,
        &tenant,
        &token,
        "/stripe/customers",
        json!({"customer": {"email": "racer@example.com", "user_unique_id": "racer"}}),
    );
    let (response, mirrored_first) = tokio::join!(request, async {
        // The row appears (unowned) while the request still waits for Stripe's answer.
        eventually(10, || async {
            let owners = owners(&app).await;
            (!owners.is_empty()).then_some(owners)
        })
        .await
    });
    assert_eq!(
        mirrored_first,
        vec![String::new()],
        "mirrored before the answer"
    );
    assert_eq!(response.status().as_u16(), 201);
    let created = json_body(response).await["data"]["attributes"].clone();
    assert_eq!(created["email"], "racer@example.com");
    assert_eq!(created["user_unique_id"], "racer");
    assert_eq!(owners(&app).await, vec!["racer".to_owned()]);
    let read = app
        .authed(
            Method::GET,
            &format!(
                "/stripe/customers/{}",
                created["unique_id"].as_str().unwrap()
            ),
            &tenant,
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(read.status().as_u16(), 200);
}

/// The owner of every mirrored customer.
async fn owners(app: &TestApp) -> Vec<String> {
    use diesel::prelude::*;
    use sales_block::db::schema::customers;
    app.query(|conn| {
        customers::table
            .select(customers::owner_subject)
            .load::<String>(conn)
    })
    .await
}

on_both_databases!(
    a_planted_customer_cannot_capture_another_users_card,
    an_admin_may_create_a_customer_for_anyone,
    a_customer_mirrored_by_its_webhook_first_is_still_created_for_the_caller,
);
