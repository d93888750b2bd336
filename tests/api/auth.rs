//! Every way a call can fail authentication, and the header spellings that must work.

use reqwest::Method;
use sales_block::tenants::TenantSpec;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, sign_hs256, sign_rs256, spawn_app};
use crate::on_both_databases;

const PORTAL_BODY: &str = r#"{"portal":{"return_url":"https://app.example.com/account"}}"#;

fn claims(sub: &str, exp_in: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({ "sub": sub, "iat": now, "exp": now + exp_in })
}

/// A call that passes authentication reaches validation: an empty customer body is a 422.
async fn reaches_the_handler(app: &TestApp, response: reqwest::Response) {
    let _ = app;
    assert_error(response, 422, "validation_error").await;
}

async fn each_api_key_header_spelling_is_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    for header in ["x-api-key", "AppId", "api-key", "X-App-Id", "APPID"] {
        let response = app
            .request(Method::POST, "/stripe/customers")
            .header(header, tenant.api_key())
            .bearer_auth(tenant.user_token("u1"))
            .json(&json!({"customer": {}}))
            .send()
            .await
            .unwrap();
        reaches_the_handler(&app, response).await;
    }
}

async fn a_missing_or_unknown_api_key_is_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let response = app
        .request(Method::POST, "/stripe/customers")
        .bearer_auth(tenant.user_token("u1"))
        .json(&json!({"customer": {"email": "a@example.com"}}))
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "missing_api_key").await;

    let response = app
        .request(Method::POST, "/stripe/customers")
        .header("x-api-key", "pk_test_nobody")
        .bearer_auth(tenant.user_token("u1"))
        .json(&json!({"customer": {"email": "a@example.com"}}))
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "invalid_api_key").await;
    assert_eq!(app.customer_count().await, 0);
}

async fn a_missing_or_malformed_bearer_is_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let response = app
        .request(Method::POST, "/stripe/customers")
        .header("x-api-key", tenant.api_key())
        .json(&json!({"customer": {"email": "a@example.com"}}))
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "missing_token").await;

    for value in ["Basic dXNlcjpwYXNz", "Bearer", "Token abc"] {
        let response = app
            .request(Method::POST, "/stripe/customers")
            .header("x-api-key", tenant.api_key())
            .header("Authorization", value)
            .json(&json!({"customer": {"email": "a@example.com"}}))
            .send()
            .await
            .unwrap();
        assert_error(response, 401, "invalid_authorization").await;
    }
    let response = app
        .request(Method::POST, "/stripe/customers")
        .header("x-api-key", tenant.api_key())
        .bearer_auth("not.a.jwt")
        .json(&json!({"customer": {"email": "a@example.com"}}))
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "invalid_token").await;
}

async fn expired_premature_forged_and_unsigned_tokens_are_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let other = app.tenant().await;
    let now = chrono::Utc::now().timestamp();
    let unsigned = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(claims("u1", 600).to_string())
        )
    };
    let cases = [
        (
            "expired",
            sign_hs256(tenant.secret(), &claims("u1", -3600)),
            "expired",
        ),
        (
            "not yet valid",
            sign_hs256(
                tenant.secret(),
                &json!({"sub": "u1", "nbf": now + 3600, "exp": now + 7200}),
            ),
            "not valid yet",
        ),
        (
            "wrong secret",
            sign_hs256("not-the-secret", &claims("u1", 600)),
            "signature",
        ),
        ("another tenant's", other.user_token("u1"), "signature"),
        ("alg none", unsigned, ""),
        (
            "no subject",
            sign_hs256(tenant.secret(), &json!({"exp": now + 600})),
            "sub",
        ),
        (
            "RS256 for an HS256 app",
            sign_rs256(
                include_str!("../fixtures/rs256_private.pem"),
                &claims("u1", 600),
            ),
            "HS256",
        ),
    ];
    for (case, token, words) in cases {
        let response = app
            .post_json(
                "/stripe/customers",
                &tenant,
                &token,
                &json!({"customer": {"email": "a@example.com"}}),
            )
            .await;
        let error = assert_error(response, 401, "invalid_token").await;
        let detail = error["detail"].as_str().unwrap();
        assert!(detail.contains(words), "{case}: {detail}");
    }
    assert_eq!(app.customer_count().await, 0);
    assert!(app.stripe_requests(&tenant).await.is_empty());
}

async fn rs256_tenants_verify_with_their_public_key_and_pin_the_algorithm(backend: Backend) {
    let app = spawn_app(backend).await;
    let public = include_str!("../fixtures/rs256_public.pem");
    let tenant = app
        .tenant_with(TenantSpec {
            stripe_api_base: Some(app.emulator.base_url()),
            jwt_rs256_public_key: Some(public.to_owned()),
            jwt_issuer: Some("https://auth.example.com".into()),
            jwt_audience: Some("sales".into()),
            ..TenantSpec::default()
        })
        .await;
    let now = chrono::Utc::now().timestamp();
    let good =
        json!({"sub": "u1", "exp": now + 600, "iss": "https://auth.example.com", "aud": "sales"});
    let private = include_str!("../fixtures/rs256_private.pem");
    let response = app
        .post_json(
            "/stripe/customers",
            &tenant,
            &sign_rs256(private, &good),
            &json!({"customer": {}}),
        )
        .await;
    reaches_the_handler(&app, response).await;

    let mut wrong_iss = good.clone();
    wrong_iss["iss"] = json!("https://evil.example.com");
    let mut wrong_aud = good.clone();
    wrong_aud["aud"] = json!("billing");
    let other_key = include_str!("../fixtures/rs256_other_private.pem");
    let cases = [
        ("issuer", sign_rs256(private, &wrong_iss), "issuer"),
        ("audience", sign_rs256(private, &wrong_aud), "audience"),
        ("another key", sign_rs256(other_key, &good), "signature"),
        // The classic confusion: an HS256 token keyed with the public key's text.
        (
            "HS256 with the public key",
            sign_hs256(public, &good),
            "RS256",
        ),
    ];
    for (case, token, words) in cases {
        let response = app
            .post_json(
                "/stripe/customers",
                &tenant,
                &token,
                &json!({"customer": {}}),
            )
            .await;
        let error = assert_error(response, 401, "invalid_token").await;
        assert!(
            error["detail"].as_str().unwrap().contains(words),
            "{case}: {error}"
        );
    }
}

async fn a_tenant_id_header_must_name_the_same_tenant(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let other = app.tenant().await;
    let response = app
        .authed(
            Method::POST,
            "/stripe/customers",
            &tenant,
            &tenant.user_token("u1"),
        )
        .header("tenant-id", &other.created.id)
        .json(&json!({"customer": {}}))
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "tenant_mismatch").await;

    let response = app
        .authed(
            Method::POST,
            "/stripe/customers",
            &tenant,
            &tenant.user_token("u1"),
        )
        .header("tenant-id", &tenant.created.id)
        .json(&json!({"customer": {}}))
        .send()
        .await
        .unwrap();
    reaches_the_handler(&app, response).await;
}

async fn the_portal_route_requires_authentication_too(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let response = app
        .request(Method::POST, "/stripe/customers/anything/portal")
        .header("AppId", tenant.api_key())
        .header("content-type", "application/json")
        .body(PORTAL_BODY)
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "missing_token").await;
}

on_both_databases!(
    each_api_key_header_spelling_is_accepted,
    a_missing_or_unknown_api_key_is_401,
    a_missing_or_malformed_bearer_is_401,
    expired_premature_forged_and_unsigned_tokens_are_401,
    rs256_tenants_verify_with_their_public_key_and_pin_the_algorithm,
    a_tenant_id_header_must_name_the_same_tenant,
    the_portal_route_requires_authentication_too,
);
