//! What every route shares: health, readiness, the OpenAPI document, request ids, CORS,
//! unknown routes, and the schema staying in step with the migrations.

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{Backend, assert_error, json_body, spawn_app};
use crate::on_both_databases;

async fn health_and_ready_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let health = json_body(app.request(Method::GET, "/health").send().await.unwrap()).await;
    assert_eq!(health["service"], "sales");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert!(chrono::DateTime::parse_from_rfc3339(health["timestamp"].as_str().unwrap()).is_ok());

    let ready = app.request(Method::GET, "/ready").send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    assert_eq!(json_body(ready).await["database"], "ok");
}

async fn the_openapi_document_lists_every_route(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc = json_body(
        app.request(Method::GET, "/openapi.json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (method, path) in [
        ("get", "/health"),
        ("get", "/ready"),
        ("get", "/metrics"),
        ("get", "/stripe/customers"),
        ("post", "/stripe/customers"),
        ("get", "/stripe/customers/{unique_id}"),
        ("post", "/stripe/customers/{unique_id}/portal"),
        ("post", "/stripe/sessions"),
        ("get", "/stripe/sessions/{session_id}"),
        ("get", "/stripe/payments"),
        ("post", "/stripe/payments"),
        ("post", "/stripe/payments/{unique_id}/confirm"),
        ("get", "/stripe/charges"),
        ("get", "/stripe/charges/{charge_id}"),
        ("get", "/stripe/subscriptions"),
        ("post", "/stripe/subscriptions"),
        ("put", "/stripe/subscriptions/{stripe_subscription_id}"),
        ("delete", "/stripe/subscriptions/{stripe_subscription_id}"),
        ("get", "/stripe/products"),
        ("post", "/stripe/products"),
        ("get", "/stripe/prices"),
        ("post", "/stripe/prices"),
        ("post", "/stripe/payment_links"),
        ("get", "/stripe/payment_links"),
        ("get", "/stripe/payment_links/{payment_link_id}"),
        ("put", "/stripe/payment_links/{payment_link_id}"),
        ("get", "/stripe/products/{product_id}"),
        ("put", "/stripe/products/{product_id}"),
        ("get", "/stripe/prices/{price_id}"),
        ("put", "/stripe/prices/{price_id}"),
        ("get", "/stripe/cards"),
        ("post", "/stripe/cards"),
        ("delete", "/stripe/cards/{card_id}"),
        ("put", "/stripe/notifications/settings"),
        ("get", "/stripe/notifications"),
        ("get", "/stripe/refunds"),
        ("post", "/stripe/refunds"),
        ("get", "/stripe/webhooks"),
        ("post", "/stripe/webhooks"),
        ("post", "/stripe/{url_id}/webhook"),
        ("post", "/stripe/webhooks/{webhook_id}/secrets"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    assert!(doc["components"]["schemas"]["CustomerAttributes"].is_object());
    // Every write but the receiver documents Idempotency-Key.
    let takes_key = |method: &str, path: &str| {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .is_some_and(|ps| {
                ps.iter()
                    .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header")
            })
    };
    for (method, path) in [
        ("post", "/stripe/customers"),
        ("post", "/stripe/payments/{unique_id}/confirm"),
        ("put", "/stripe/subscriptions/{stripe_subscription_id}"),
        ("delete", "/stripe/subscriptions/{stripe_subscription_id}"),
        ("post", "/stripe/webhooks/{webhook_id}/secrets"),
    ] {
        assert!(takes_key(method, path), "{method} {path}");
        assert!(
            doc["paths"][path][method]["responses"]["409"].is_object(),
            "{method} {path}"
        );
    }
    assert!(!takes_key("post", "/stripe/{url_id}/webhook"));
    assert!(!takes_key("get", "/stripe/customers"));
}

async fn unknown_routes_and_methods_answer_in_the_error_format(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .request(Method::GET, "/stripe/nothing-here")
        .send()
        .await
        .unwrap();
    let error = assert_error(response, 404, "route_not_found").await;
    assert!(
        error["detail"]
            .as_str()
            .unwrap()
            .contains("/stripe/nothing-here")
    );
    let response = app
        .request(Method::DELETE, "/stripe/customers")
        .send()
        .await
        .unwrap();
    assert_error(response, 405, "method_not_allowed").await;
}

async fn request_ids_are_echoed_or_generated_and_land_in_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .request(Method::GET, "/health")
        .header("X-Request-ID", "req_abc123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req_abc123");

    let response = app
        .request(Method::POST, "/stripe/customers")
        .send()
        .await
        .unwrap();
    let generated = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        generated.starts_with("req_") && generated.len() > 10,
        "{generated}"
    );
    let error = assert_error(response, 401, "missing_api_key").await;
    assert_eq!(error["meta"]["request_id"], Value::String(generated));
}

async fn browsers_may_preflight_with_the_sdk_headers(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .request(Method::OPTIONS, "/stripe/customers")
        .header("Origin", "http://localhost:3000")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "content-type, authorization, x-api-key, appid, api-key, tenant-id, x-request-id, idempotency-key",
        )
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    let allowed = response.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    for header in [
        "x-api-key",
        "appid",
        "tenant-id",
        "idempotency-key",
        "authorization",
    ] {
        assert!(allowed.contains(header), "{header} not in {allowed}");
    }

    // A browser may read the replay marker of an idempotent retry.
    let actual = app
        .request(Method::GET, "/health")
        .header("Origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    let exposed = actual.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("idempotent-replayed"), "{exposed}");

    let foreign = app
        .request(Method::OPTIONS, "/stripe/customers")
        .header("Origin", "https://evil.example.com")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

/// Selecting every column of every table through schema.rs fails if a migration and
/// schema.rs disagree (the drift check Lemmy runs with `diesel print-schema`).
async fn schema_rs_matches_the_migrations(backend: Backend) {
    use diesel::prelude::*;
    use sales_block::db::schema::{
        checkout_sessions, customers, payments, subscriptions, tenants, webhook_endpoints,
        webhook_secrets,
    };
    let app = spawn_app(backend).await;
    app.state
        .db
        .run(|conn| -> Result<(), sales_block::db::DbError> {
            tenants::table
                .select(tenants::all_columns)
                .limit(1)
                .load::<sales_block::db::tenants::Tenant>(conn)?;
            customers::table
                .select(customers::all_columns)
                .limit(1)
                .load::<sales_block::db::customers::Customer>(conn)?;
            checkout_sessions::table
                .select(checkout_sessions::all_columns)
                .limit(1)
                .load::<sales_block::db::checkout_sessions::CheckoutSessionRow>(conn)?;
            payments::table
                .select(payments::all_columns)
                .limit(1)
                .load::<sales_block::db::payments::PaymentRow>(conn)?;
            subscriptions::table
                .select(subscriptions::all_columns)
                .limit(1)
                .load::<sales_block::db::subscriptions::SubscriptionRow>(conn)?;
            webhook_endpoints::table
                .select(webhook_endpoints::all_columns)
                .limit(1)
                .load::<sales_block::db::webhook_endpoints::WebhookEndpointRow>(conn)?;
            sales_block::db::schema::stripe_events::table
                .select(sales_block::db::schema::stripe_events::all_columns)
                .limit(1)
                .load::<(
                    String,
                    String,
                    String,
                    String,
                    String,
                    Option<String>,
                    i64,
                    Option<String>,
                    String,
                    String,
                    chrono::NaiveDateTime,
                )>(conn)?;
            sales_block::db::schema::idempotency_keys::table
                .select(sales_block::db::schema::idempotency_keys::all_columns)
                .limit(1)
                .load::<sales_block::db::idempotency_keys::IdempotencyRow>(conn)?;
            sales_block::db::schema::charges::table
                .select(sales_block::db::schema::charges::all_columns)
                .limit(1)
                .load::<sales_block::db::charges::ChargeRow>(conn)?;
            sales_block::db::schema::payment_links::table
                .select(sales_block::db::schema::payment_links::all_columns)
                .limit(1)
                .load::<sales_block::db::payment_links::PaymentLinkRow>(conn)?;
            webhook_secrets::table
                .select(webhook_secrets::all_columns)
                .limit(1)
                .load::<(
                    String,
                    String,
                    String,
                    chrono::NaiveDateTime,
                    Option<chrono::NaiveDateTime>,
                )>(conn)?;
            Ok(())
        })
        .await
        .expect("schema.rs matches the migrated database");
}

on_both_databases!(
    health_and_ready_answer,
    the_openapi_document_lists_every_route,
    unknown_routes_and_methods_answer_in_the_error_format,
    request_ids_are_echoed_or_generated_and_land_in_errors,
    browsers_may_preflight_with_the_sdk_headers,
    schema_rs_matches_the_migrations,
);
