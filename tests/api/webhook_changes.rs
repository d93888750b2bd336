//! PUT and DELETE /stripe/webhooks/{id}: changed or deleted at Stripe, then here; a disabled
//! endpoint's deliveries are refused with 410 (once signed by Stripe), a deleted one's URL is
//! 404; admins only, own tenant only.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestTenant, assert_error, json_body, spawn_app};
use crate::on_both_databases;
use crate::receiver::{deliver, deliver_raw, endpoint, event, stripe_signature};

async fn put(
    app: &TestApp,
    tenant: &TestTenant,
    token: &str,
    id: &str,
    webhook: Value,
) -> reqwest::Response {
    app.put_json(
        &format!("/stripe/webhooks/{id}"),
        tenant,
        token,
        &json!({ "webhook": webhook }),
    )
    .await
}

async fn delete(app: &TestApp, tenant: &TestTenant, token: &str, id: &str) -> reqwest::Response {
    app.delete(&format!("/stripe/webhooks/{id}"), tenant, token)
        .await
}

fn customer_event(id: &str) -> Value {
    event(
        id,
        "customer.created",
        chrono::Utc::now().timestamp(),
        json!({"id": format!("cus_{id}"), "object": "customer", "email": "w@example.com",
               "metadata": {}}),
    )
}

async fn an_endpoint_is_disabled_reenabled_and_deleted(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let admin = tenant.admin_token();
    let ep = endpoint(&app, &tenant).await;
    deliver(&app, &ep, &customer_event("evt_w1")).await;
    let stripe_id = app.stripe_list(&tenant, "/v1/webhook_endpoints").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Disabled, with new events: at Stripe and here.
    let response = put(
        &app,
        &tenant,
        &admin,
        &ep.url_id,
        json!({"status": "disabled", "events": ["invoice.paid", "customer.created"]}),
    )
    .await;
    assert_eq!(response.status().as_u16(), 200);
    let w = json_body(response).await["data"]["attributes"].clone();
    assert_eq!(w["status"], "disabled");
    assert_eq!(w["events"], json!(["invoice.paid", "customer.created"]));
    assert!(w.get("signing_secret").is_none());
    let at_stripe = app
        .stripe_get(&tenant, &format!("/v1/webhook_endpoints/{stripe_id}"))
        .await;
    assert_eq!(at_stripe["status"], "disabled");
    assert_eq!(
        at_stripe["enabled_events"],
        json!(["invoice.paid", "customer.created"])
    );

    // A signed delivery to it is refused with 410 and not stored; an unsigned one learns
    // nothing (400, as for any endpoint).
    let body = customer_event("evt_w2").to_string();
    let signed = stripe_signature(&body, &ep.secret, chrono::Utc::now().timestamp());
    assert_error(
        deliver_raw(&app, &ep.url_id, &body, Some(signed)).await,
        410,
        "endpoint_disabled",
    )
    .await;
    let unsigned = deliver_raw(&app, &ep.url_id, &body, None).await;
    assert_eq!(unsigned.status().as_u16(), 400);
    let stored = crate::receiver::events_stored(&app).await;
    assert!(stored.iter().all(|(id, _)| id != "evt_w2"), "{stored:?}");

    // Enabled again: delivered.
    let response = put(
        &app,
        &tenant,
        &admin,
        &ep.url_id,
        json!({"status": "enabled"}),
    )
    .await;
    assert_eq!(response.status().as_u16(), 200);
    deliver(&app, &ep, &customer_event("evt_w3")).await;

    // Deleted: gone at Stripe and here; its URL is unknown; the list is empty.
    let response = delete(&app, &tenant, &admin, &ep.url_id).await;
    assert_eq!(response.status().as_u16(), 200);
    let gone = app
        .stripe_get(&tenant, &format!("/v1/webhook_endpoints/{stripe_id}"))
        .await;
    assert_eq!(gone["error"]["code"], "resource_missing", "{gone}");
    let body = customer_event("evt_w4").to_string();
    let signed = stripe_signature(&body, &ep.secret, chrono::Utc::now().timestamp());
    assert_eq!(
        deliver_raw(&app, &ep.url_id, &body, Some(signed))
            .await
            .status()
            .as_u16(),
        404
    );
    let listed = json_body(
        app.authed(Method::GET, "/stripe/webhooks", &tenant, &admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(listed["data"], json!([]));
    assert_error(
        delete(&app, &tenant, &admin, &ep.url_id).await,
        404,
        "not_found",
    )
    .await;
}

async fn changes_are_checked_and_only_the_apps_admins_make_them(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let admin = tenant.admin_token();
    let ep = endpoint(&app, &tenant).await;
    let before = app.stripe_writes(&tenant).await;
    for (webhook, pointer) in [
        (json!({}), "/webhook"),
        (json!({"status": "paused"}), "/webhook/status"),
        (json!({"events": []}), "/webhook/events"),
        (json!({"events": ["no.such_event"]}), "/webhook/events/0"),
        (
            json!({"enabled_events": ["*", "nope"]}),
            "/webhook/enabled_events/1",
        ),
    ] {
        let error = assert_error(
            put(&app, &tenant, &admin, &ep.url_id, webhook.clone()).await,
            422,
            "validation_error",
        )
        .await;
        assert_eq!(error["source"]["pointer"], pointer, "{webhook}");
    }
    let user = tenant.user_token("not-admin");
    assert_error(
        put(
            &app,
            &tenant,
            &user,
            &ep.url_id,
            json!({"status": "disabled"}),
        )
        .await,
        403,
        "admin_required",
    )
    .await;
    assert_error(
        delete(&app, &tenant, &user, &ep.url_id).await,
        403,
        "admin_required",
    )
    .await;
    let other = app.tenant().await;
    assert_error(
        put(
            &app,
            &other,
            &other.admin_token(),
            &ep.url_id,
            json!({"status": "disabled"}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        delete(&app, &other, &other.admin_token(), &ep.url_id).await,
        404,
        "not_found",
    )
    .await;
    assert_eq!(
        app.stripe_writes(&tenant).await,
        before,
        "nothing sent to Stripe"
    );
    // Still delivering.
    deliver(&app, &ep, &customer_event("evt_w5")).await;
}

on_both_databases!(
    an_endpoint_is_disabled_reenabled_and_deleted,
    changes_are_checked_and_only_the_apps_admins_make_them,
);
