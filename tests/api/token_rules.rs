//! Issue 12, point 2: a token is bound to its app. A configured issuer or audience must be in
//! the token; a token naming another app (`app_id`) is refused, and an app may require the
//! binding, so apps sharing one RS256 identity provider do not accept each other's tokens; a
//! token may not live longer than the app's maximum.

use std::time::Duration;

use reqwest::Response;
use sales_block::tenants::TenantSpec;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, TestTenant, assert_error, sign_hs256, sign_rs256, spawn_app,
};
use crate::on_both_databases;

const PUBLIC: &str = include_str!("../fixtures/rs256_public.pem");
const PRIVATE: &str = include_str!("../fixtures/rs256_private.pem");

async fn create_customer(app: &TestApp, tenant: &TestTenant, token: &str) -> Response {
    app.post_json(
        "/stripe/customers",
        tenant,
        token,
        &json!({"customer": {"email": "bound@example.com"}}),
    )
    .await
}

/// Refused as `invalid_token` with `words` in the detail.
async fn refused(response: Response, words: &str) {
    let error = assert_error(response, 401, "invalid_token").await;
    let detail = error["detail"].as_str().unwrap();
    assert!(detail.contains(words), "expected {words:?} in {detail:?}");
}

async fn accepted(response: Response) {
    let status = response.status().as_u16();
    assert_eq!(status, 201, "{}", response.text().await.unwrap_or_default());
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn rs256_tenant(app: &TestApp, spec: TenantSpec) -> TestTenant {
    app.tenant_with(TenantSpec {
        stripe_api_base: Some(app.emulator.base_url()),
        jwt_rs256_public_key: Some(PUBLIC.to_owned()),
        ..spec
    })
    .await
}

async fn a_token_without_the_issuer_or_audience_the_app_sets_is_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = rs256_tenant(
        &app,
        TenantSpec {
            jwt_issuer: Some("https://auth.example.com".into()),
            jwt_audience: Some("sales".into()),
            ..TenantSpec::default()
        },
    )
    .await;
    let good = json!({"sub": "u1", "iat": now(), "exp": now() + 600,
        "iss": "https://auth.example.com", "aud": "sales"});
    for (claim, words) in [("iss", "`iss`"), ("aud", "`aud`")] {
        let mut without = good.clone();
        without.as_object_mut().unwrap().remove(claim);
        refused(
            create_customer(&app, &tenant, &sign_rs256(PRIVATE, &without)).await,
            words,
        )
        .await;
    }
    assert_eq!(app.customer_count().await, 0);
    accepted(create_customer(&app, &tenant, &sign_rs256(PRIVATE, &good)).await).await;

    // The same rule for an HS256 app that sets an issuer.
    let hs = app
        .tenant_with(TenantSpec {
            stripe_api_base: Some(app.emulator.base_url()),
            jwt_issuer: Some("https://auth.example.com".into()),
            ..TenantSpec::default()
        })
        .await;
    let token = sign_hs256(
        hs.secret(),
        &json!({"sub": "u1", "iat": now(), "exp": now() + 600}),
    );
    refused(create_customer(&app, &hs, &token).await, "`iss`").await;
}

/// Two apps verify tokens with one identity provider's RS256 key. A token made for app A
/// (`app_id` = A's api key) is refused by B, whether or not B requires the binding.
async fn a_token_of_one_app_is_refused_by_another_sharing_its_rs256_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = rs256_tenant(
        &app,
        TenantSpec {
            require_app_binding: true,
            ..TenantSpec::default()
        },
    )
    .await;
    let b = rs256_tenant(&app, TenantSpec::default()).await;
    let for_app = |tenant: &TestTenant| {
        sign_rs256(
            PRIVATE,
            &json!({"sub": "u1", "iat": now(), "exp": now() + 600, "app_id": tenant.api_key()}),
        )
    };
    let unbound = sign_rs256(
        PRIVATE,
        &json!({"sub": "u1", "iat": now(), "exp": now() + 600}),
    );

    refused(create_customer(&app, &b, &for_app(&a)).await, "another app").await;
    refused(create_customer(&app, &a, &for_app(&b)).await, "another app").await;
    // A requires the binding: a token that names no app is not its.
    refused(create_customer(&app, &a, &unbound).await, "app_id").await;
    assert_eq!(app.customer_count().await, 0);
    assert!(app.stripe_requests(&a).await.is_empty());
    assert!(app.stripe_requests(&b).await.is_empty());

    accepted(create_customer(&app, &a, &for_app(&a)).await).await;
    accepted(create_customer(&app, &b, &for_app(&b)).await).await;
    // B does not require it: its identity provider's unbound tokens keep working.
    accepted(create_customer(&app, &b, &unbound).await).await;
}

/// A second app on the same key with nothing to tell the tokens apart is refused at creation.
async fn an_app_sharing_an_rs256_key_must_be_told_apart(backend: Backend) {
    let app = spawn_app(backend).await;
    let _first = rs256_tenant(&app, TenantSpec::default()).await;
    let master = app.state.master.clone();
    let spec = |spec: TenantSpec| TenantSpec {
        name: "second".into(),
        stripe_secret_key: "sk_test_second".into(),
        jwt_rs256_public_key: Some(PUBLIC.to_owned()),
        ..spec
    };
    let attempt = |spec: TenantSpec| {
        let master = master.clone();
        app.state
            .db
            .run(move |conn| sales_block::tenants::create_tenant(conn, &master, &spec))
    };
    let err = format!(
        "{:#}",
        attempt(spec(TenantSpec::default())).await.unwrap_err()
    );
    assert!(err.contains("--require-app-binding"), "{err}");
    assert_eq!(app.state.db.run(|conn| sales_block::db::tenants::list(conn).map_err(sales_block::db::DbError::from)).await.unwrap().len(), 1);
    // Told apart by the binding.
    attempt(spec(TenantSpec {
        require_app_binding: true,
        ..TenantSpec::default()
    }))
    .await
    .unwrap();
    // An issuer set on one side only tells nothing apart: the first app accepts any issuer.
    attempt(spec(TenantSpec {
        jwt_issuer: Some("https://one.example.com".into()),
        ..TenantSpec::default()
    }))
    .await
    .unwrap_err();
}

async fn tokens_over_the_apps_maximum_lifetime_are_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await; // the default maximum: 24 h
    let hour = 3600;
    let sign = |claims: Value| sign_hs256(tenant.secret(), &claims);

    let too_long = sign(json!({"sub": "u1", "iat": now(), "exp": now() + 25 * hour}));
    refused(
        create_customer(&app, &tenant, &too_long).await,
        "maximum token lifetime of 86400 s",
    )
    .await;
    // Without `iat` the lifetime counts from now.
    let no_iat = sign(json!({"sub": "u1", "exp": now() + 25 * hour}));
    refused(create_customer(&app, &tenant, &no_iat).await, "no `iat`").await;
    // An issue time in the future would stretch a token's life at will.
    let future = sign(
        json!({"sub": "u1", "iat": now() + 30 * 24 * hour, "exp": now() + 30 * 24 * hour + 60}),
    );
    refused(
        create_customer(&app, &tenant, &future).await,
        "in the future",
    )
    .await;
    assert_eq!(app.customer_count().await, 0);

    accepted(
        create_customer(
            &app,
            &tenant,
            &sign(json!({"sub": "u1", "iat": now(), "exp": now() + 23 * hour})),
        )
        .await,
    )
    .await;
    accepted(
        create_customer(
            &app,
            &tenant,
            &sign(json!({"sub": "u2", "exp": now() + 600})),
        )
        .await,
    )
    .await;

    // An app with a shorter maximum.
    let short = app
        .tenant_with(TenantSpec {
            stripe_api_base: Some(app.emulator.base_url()),
            max_token_lifetime: Some(Duration::from_secs(hour as u64)),
            ..TenantSpec::default()
        })
        .await;
    let two_hours = sign_hs256(
        short.secret(),
        &json!({"sub": "u1", "iat": now(), "exp": now() + 2 * hour}),
    );
    refused(create_customer(&app, &short, &two_hours).await, "3600 s").await;
    let half = sign_hs256(
        short.secret(),
        &json!({"sub": "u1", "iat": now(), "exp": now() + hour / 2}),
    );
    accepted(create_customer(&app, &short, &half).await).await;
}

on_both_databases!(
    a_token_without_the_issuer_or_audience_the_app_sets_is_401,
    a_token_of_one_app_is_refused_by_another_sharing_its_rs256_key,
    an_app_sharing_an_rs256_key_must_be_told_apart,
    tokens_over_the_apps_maximum_lifetime_are_401,
);
