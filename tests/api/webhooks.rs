//! GET /stripe/webhooks and POST /stripe/webhooks.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Backend, assert_error, json_body, spawn_app_with};
use crate::on_both_databases;

const PUBLIC: &str = "https://sales.example.com";

async fn an_admin_creates_an_endpoint_pointing_at_our_receiver(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.public_url = format!("{PUBLIC}/")).await;
    let tenant = app.tenant().await;
    let admin = tenant.admin_token();
    let events = [
        "checkout.session.completed",
        "payment_intent.succeeded",
        "customer.subscription.updated",
    ];
    let response = app
        .post_json(
            "/stripe/webhooks",
            &tenant,
            &admin,
            &json!({"webhook": {"events": events}}),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
    let data = json_body(response).await["data"].clone();
    assert_eq!(data["type"], "stripe_webhook");
    let w = &data["attributes"];
    let url_id = w["url_id"].as_str().unwrap();
    assert!(
        url_id.starts_with("wh_") && url_id.len() >= 32,
        "unguessable: {url_id}"
    );
    assert_eq!(w["url"], format!("{PUBLIC}/stripe/{url_id}/webhook"));
    assert_eq!(w["events"], json!(events));
    assert_eq!(w["enabled_events"], json!(events));
    assert_eq!(w["status"], "enabled");
    assert!(w["signing_secret"].as_str().unwrap().starts_with("whsec_"));

    // Registered at Stripe for that URL and those events.
    let sent = app
        .stripe_params(&tenant, "POST", "/v1/webhook_endpoints")
        .await;
    assert_eq!(sent[0]["url"], w["url"]);
    assert_eq!(sent[0]["enabled_events"], json!(events));

    // Listed without the secret; another tenant sees none of it.
    let listed = json_body(
        app.authed(Method::GET, "/stripe/webhooks", &tenant, &admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!(listed["data"][0]["attributes"]["url_id"], url_id);
    assert_eq!(listed["data"][0]["attributes"].get("signing_secret"), None);
    let other = app.tenant().await;
    let theirs = json_body(
        app.authed(
            Method::GET,
            "/stripe/webhooks",
            &other,
            &other.admin_token(),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(theirs["data"], json!([]));
}

async fn the_sdk_body_with_a_url_registers_that_url(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let tenant = app.tenant().await;
    let response = app
        .post_json(
            "/stripe/webhooks",
            &tenant,
            &tenant.admin_token(),
            &json!({"webhook": {"enabled_events": ["*"], "url": "https://hooks.example.com/stripe"}}),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
    let w = json_body(response).await["data"]["attributes"].clone();
    assert_eq!(w["url"], "https://hooks.example.com/stripe");
    assert_eq!(w["events"], json!(["*"]));
}

async fn webhook_bodies_are_validated_and_only_admins_manage_them(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let tenant = app.tenant().await;
    let admin = tenant.admin_token();
    for (webhook, pointer) in [
        (json!({}), "/webhook/events"),
        (json!({"events": []}), "/webhook/events"),
        (
            json!({"events": ["payment_intent.succeeded", "payment.exploded"]}),
            "/webhook/events/1",
        ),
        (
            json!({"enabled_events": ["nope"]}),
            "/webhook/enabled_events/0",
        ),
        (json!({"events": ["*"], "url": "not a url"}), "/webhook/url"),
    ] {
        let response = app
            .post_json(
                "/stripe/webhooks",
                &tenant,
                &admin,
                &json!({ "webhook": webhook }),
            )
            .await;
        let error = assert_error(response, 422, "validation_error").await;
        assert_eq!(error["source"]["pointer"], pointer, "{webhook}");
    }
    let user = tenant.user_token("u");
    let response = app
        .post_json(
            "/stripe/webhooks",
            &tenant,
            &user,
            &json!({"webhook": {"events": ["*"]}}),
        )
        .await;
    assert_error(response, 403, "admin_required").await;
    let response = app
        .authed(Method::GET, "/stripe/webhooks", &tenant, &user)
        .send()
        .await
        .unwrap();
    assert_error(response, 403, "admin_required").await;
    assert!(app.stripe_requests(&tenant).await.is_empty());
}

on_both_databases!(
    an_admin_creates_an_endpoint_pointing_at_our_receiver,
    the_sdk_body_with_a_url_registers_that_url,
    webhook_bodies_are_validated_and_only_admins_manage_them,
);
