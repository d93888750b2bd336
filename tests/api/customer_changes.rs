//! PUT and DELETE /stripe/customers/{id} and GET ?refresh=true: changed at Stripe, then
//! mirrored; a user touches only their own customers; deleting cancels the subscriptions.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestTenant, assert_error, json_body, spawn_app};
use crate::on_both_databases;

async fn put(
    app: &TestApp,
    tenant: &TestTenant,
    token: &str,
    id: &str,
    fields: Value,
) -> reqwest::Response {
    app.put_json(
        &format!("/stripe/customers/{id}"),
        tenant,
        token,
        &json!({ "customer": fields }),
    )
    .await
}

async fn get(app: &TestApp, tenant: &TestTenant, token: &str, path: &str) -> reqwest::Response {
    app.authed(Method::GET, path, tenant, token)
        .send()
        .await
        .expect("request")
}

async fn delete(app: &TestApp, tenant: &TestTenant, token: &str, id: &str) -> reqwest::Response {
    app.delete(&format!("/stripe/customers/{id}"), tenant, token)
        .await
}

async fn a_customer_is_updated_at_stripe_and_in_the_mirror(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("changer");
    let card = json_body(
        app.post_json(
            "/stripe/cards",
            &tenant,
            &token,
            &json!({"card": {"payment_method_id": "pm_card_visa", "customer_email": "old@example.com"}}),
        )
        .await,
    )
    .await["data"]["attributes"]
        .clone();
    let cus = card["customer"].as_str().unwrap().to_owned();
    let second = json_body(
        app.post_json(
            "/stripe/cards",
            &tenant,
            &token,
            &json!({"card": {"payment_method_id": "pm_card_mastercard", "customer_id": cus}}),
        )
        .await,
    )
    .await["data"]["attributes"]
        .clone();
    let mastercard = second["stripe_payment_method_id"].as_str().unwrap();
    let unique_id = json_body(
        get(&app, &tenant, &token, &format!("/stripe/customers/{cus}")).await,
    )
    .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.stripe_post(
        &tenant,
        &format!("/v1/customers/{cus}"),
        &[
            ("phone", "+15555550100"),
            ("metadata[keep]", "1"),
            ("metadata[drop]", "x"),
        ],
    )
    .await;

    let response = put(
        &app,
        &tenant,
        &token,
        &unique_id,
        json!({"email": "new@example.com", "name": "New Name", "phone": null,
               "metadata": {"tier": "gold", "drop": null},
               "default_payment_method": second["unique_id"]}),
    )
    .await;
    assert_eq!(response.status().as_u16(), 200);
    let body = json_body(response).await;
    let attributes = &body["data"]["attributes"];
    assert_eq!(body["data"]["id"], unique_id.as_str());
    assert_eq!(attributes["email"], "new@example.com");
    assert_eq!(attributes["name"], "New Name");
    assert_eq!(attributes["phone"], Value::Null, "{body}");
    assert_eq!(attributes["default_payment_method"], mastercard);
    assert_eq!(attributes["metadata"], json!({"keep": "1", "tier": "gold"}));
    assert!(attributes.get("deleted_at").is_none());

    // Stripe holds the same.
    let at_stripe = app
        .stripe_get(&tenant, &format!("/v1/customers/{cus}"))
        .await;
    assert_eq!(at_stripe["email"], "new@example.com");
    assert_eq!(at_stripe["phone"], Value::Null);
    assert_eq!(at_stripe["metadata"], json!({"keep": "1", "tier": "gold"}));
    assert_eq!(
        at_stripe["invoice_settings"]["default_payment_method"],
        mastercard
    );
    // And a later read of the mirror.
    let read = json_body(
        get(
            &app,
            &tenant,
            &token,
            &format!("/stripe/customers/{unique_id}"),
        )
        .await,
    )
    .await;
    assert_eq!(read["data"]["attributes"]["email"], "new@example.com");
    emulator_agrees_on_refresh(&app, &tenant, &token, &cus).await;
}

/// A change made at Stripe directly shows in `?refresh=true`, not in a plain read.
async fn emulator_agrees_on_refresh(app: &TestApp, tenant: &TestTenant, token: &str, cus: &str) {
    app.stripe_post(
        tenant,
        &format!("/v1/customers/{cus}"),
        &[("description", "Set at Stripe")],
    )
    .await;
    let refreshed = json_body(
        get(
            app,
            tenant,
            token,
            &format!("/stripe/customers/{cus}?refresh=true"),
        )
        .await,
    )
    .await;
    assert_eq!(
        refreshed["data"]["attributes"]["description"], "Set at Stripe",
        "{refreshed}"
    );
    assert_error(
        get(
            app,
            tenant,
            token,
            &format!("/stripe/customers/{cus}?refresh=maybe"),
        )
        .await,
        400,
        "invalid_query",
    )
    .await;
}

async fn bad_updates_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("careful");
    let mine = app.customer(&tenant, &token, "mine@example.com").await;
    let id = mine["unique_id"].as_str().unwrap();
    let other_token = tenant.user_token("someone-else");
    let theirs = app
        .customer(&tenant, &other_token, "theirs@example.com")
        .await;
    let their_card = json_body(
        app.post_json(
            "/stripe/cards",
            &tenant,
            &other_token,
            &json!({"card": {"payment_method_id": "pm_card_visa", "customer_id": theirs["unique_id"]}}),
        )
        .await,
    )
    .await["data"]["attributes"]["stripe_payment_method_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = app.stripe_writes(&tenant).await;
    let many_removals: serde_json::Map<String, Value> =
        (0..51).map(|i| (format!("k{i}"), Value::Null)).collect();
    let long_key = "x".repeat(41);
    let long_key_at = format!("/customer/metadata/{long_key}");

    for (fields, pointer) in [
        (json!({}), "/customer"),
        (json!({"email": "not-an-email"}), "/customer/email"),
        (json!({"name": "x".repeat(300)}), "/customer/name"),
        (json!({"metadata": ["a"]}), "/customer/metadata"),
        (
            json!({"metadata": {"k": {"nested": 1}}}),
            "/customer/metadata/k",
        ),
        // Removals count and are checked like any key.
        (json!({"metadata": many_removals}), "/customer/metadata"),
        (
            json!({"metadata": {long_key.as_str(): null}}),
            long_key_at.as_str(),
        ),
        (
            json!({"default_payment_method": ""}),
            "/customer/default_payment_method",
        ),
        // Another user's card cannot become my default.
        (
            json!({"default_payment_method": their_card}),
            "/customer/default_payment_method",
        ),
    ] {
        let error = assert_error(
            put(&app, &tenant, &token, id, fields.clone()).await,
            422,
            "validation_error",
        )
        .await;
        assert_eq!(error["source"]["pointer"], pointer, "{fields}: {error}");
    }
    // Another user's customer is 404 to me, for update, delete and refresh alike.
    let their_id = theirs["unique_id"].as_str().unwrap();
    let their_cus = theirs["stripe_customer_id"].as_str().unwrap();
    for target in [their_id, their_cus] {
        assert_error(
            put(&app, &tenant, &token, target, json!({"name": "Mine now"})).await,
            404,
            "not_found",
        )
        .await;
        assert_error(
            delete(&app, &tenant, &token, target).await,
            404,
            "not_found",
        )
        .await;
        assert_error(
            get(
                &app,
                &tenant,
                &token,
                &format!("/stripe/customers/{target}?refresh=true"),
            )
            .await,
            404,
            "not_found",
        )
        .await;
    }
    // Another tenant's admin cannot reach it either.
    let intruder = app.tenant().await;
    assert_error(
        put(
            &app,
            &intruder,
            &intruder.admin_token(),
            their_cus,
            json!({"name": "x"}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_eq!(
        app.stripe_writes(&tenant).await,
        before,
        "nothing sent to Stripe"
    );
    let at_stripe = app
        .stripe_get(&tenant, &format!("/v1/customers/{their_cus}"))
        .await;
    assert_eq!(at_stripe["name"], Value::Null);
    assert_eq!(at_stripe["deleted"], Value::Null);

    // An admin may change any customer of the app.
    let response = put(
        &app,
        &tenant,
        &tenant.admin_token(),
        their_id,
        json!({"description": "Set by the admin"}),
    )
    .await;
    assert_eq!(response.status().as_u16(), 200);
}

async fn deleting_a_customer_cancels_its_subscriptions(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("leaver");
    let customer = app.customer(&tenant, &token, "leaver@example.com").await;
    let id = customer["unique_id"].as_str().unwrap();
    let cus = customer["stripe_customer_id"].as_str().unwrap();
    app.post_json(
        "/stripe/cards",
        &tenant,
        &token,
        &json!({"card": {"payment_method_id": "pm_card_visa", "customer_id": id}}),
    )
    .await;
    let price = app.price(&tenant, 1500, Some("month")).await;
    let response = app
        .post_json(
            "/stripe/subscriptions",
            &tenant,
            &token,
            &json!({"subscription": {"customer_id": cus, "price_id": price}}),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
    let sub = json_body(response).await["data"]["attributes"].clone();
    assert_eq!(sub["status"], "active", "{sub}");
    let sub_id = sub["stripe_subscription_id"].as_str().unwrap();

    let response = delete(&app, &tenant, &token, id).await;
    assert_eq!(response.status().as_u16(), 200);
    let body = json_body(response).await;
    assert!(
        body["data"]["attributes"]["deleted_at"].is_string(),
        "{body}"
    );

    // Stripe deleted it and canceled the subscription; the mirror says the same at once.
    let at_stripe = app
        .stripe_get(&tenant, &format!("/v1/customers/{cus}"))
        .await;
    assert_eq!(at_stripe["deleted"], true);
    let sub_at_stripe = app
        .stripe_get(&tenant, &format!("/v1/subscriptions/{sub_id}"))
        .await;
    assert_eq!(sub_at_stripe["status"], "canceled");
    let subs = json_body(
        get(
            &app,
            &tenant,
            &tenant.admin_token(),
            "/stripe/subscriptions",
        )
        .await,
    )
    .await;
    let mirrored = subs["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["attributes"]["stripe_subscription_id"] == sub_id)
        .cloned()
        .expect("the subscription is listed");
    assert_eq!(mirrored["attributes"]["status"], "canceled", "{mirrored}");

    // Later reads are 404, and a second delete too; the list leaves it out.
    for path in [
        format!("/stripe/customers/{id}"),
        format!("/stripe/customers/{cus}?refresh=true"),
    ] {
        assert_error(get(&app, &tenant, &token, &path).await, 404, "not_found").await;
    }
    assert_error(delete(&app, &tenant, &token, id).await, 404, "not_found").await;
    let listed = json_body(get(&app, &tenant, &token, "/stripe/customers").await).await;
    assert_eq!(listed["data"], json!([]), "{listed}");
}

on_both_databases!(
    a_customer_is_updated_at_stripe_and_in_the_mirror,
    bad_updates_change_nothing,
    deleting_a_customer_cancels_its_subscriptions,
);
