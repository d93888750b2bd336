//! POST /stripe/customers and POST /stripe/customers/{id}/portal, end to end through the
//! emulator, with the spec's and the SDK's bodies.

use reqwest::Method;
use sales_block::tenants::TenantSpec;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, TestTenant, assert_error, json_body, spawn_app, spawn_app_with,
};
use crate::on_both_databases;

async fn create(app: &TestApp, tenant: &TestTenant, token: &str, body: Value) -> Value {
    let response = app
        .post_json("/stripe/customers", tenant, token, &body)
        .await;
    assert_eq!(response.status().as_u16(), 201);
    json_body(response).await
}

async fn the_spec_body_creates_a_customer_at_stripe_and_mirrors_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let body = create(
        &app,
        &tenant,
        &tenant.user_token("user-1"),
        json!({"customer": {"email": "user@example.com", "name": "John Doe",
                            "phone": "+15555550100", "metadata": {"user_id": "user-uuid-456"}}}),
    )
    .await;
    let data = &body["data"];
    let attrs = &data["attributes"];
    assert_eq!(data["type"], "stripe_customer");
    assert_eq!(data["id"], attrs["unique_id"]);
    assert_eq!(attrs["customer_id"], attrs["unique_id"]);
    let cus = attrs["stripe_customer_id"].as_str().unwrap();
    assert!(cus.starts_with("cus_"), "{cus}");
    assert_eq!(attrs["stripe_id"], cus);
    assert_eq!(attrs["email"], "user@example.com");
    assert_eq!(attrs["name"], "John Doe");
    assert_eq!(attrs["phone"], "+15555550100");
    assert_eq!(attrs["metadata"], json!({"user_id": "user-uuid-456"}));
    assert_eq!(attrs["identity_type"], "user");
    assert_eq!(attrs["default_payment_method"], Value::Null);
    assert!(attrs["created_at"].as_str().unwrap().ends_with('Z'));

    // Stripe got exactly one create with our values.
    let sent = app.stripe_requests(&tenant).await;
    let creates: Vec<_> = sent
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/v1/customers")
        .collect();
    assert_eq!(creates.len(), 1, "{sent:?}");
    let params = &creates[0]["params"];
    assert_eq!(params["email"], "user@example.com");
    assert_eq!(params["metadata"]["user_id"], "user-uuid-456");

    // And the customer is in the emulator under this tenant's key.
    let stripe_customer = app
        .stripe_get(&tenant, &format!("/v1/customers/{cus}"))
        .await;
    assert_eq!(stripe_customer["email"], "user@example.com");
    assert_eq!(app.customer_count().await, 1);
}

async fn the_sdk_body_with_a_card_token_and_identity_fields_round_trips(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    // The SDK sends x-api-key, X-Request-ID and its extra fields. Naming a user and a company
    // other than the token's own `sub` is for admins (the tenant's backend): see ownership.rs.
    let response = app
        .request(Method::POST, "/stripe/customers")
        .header("x-api-key", tenant.api_key())
        .header("X-Request-ID", "req_sdk_123")
        .header("Accept", "application/json")
        .bearer_auth(tenant.admin_token())
        .json(&json!({"customer": {
            "email": "ada@example.com", "name": "Ada", "token": "pm_card_visa",
            "user_unique_id": "user-9", "identity_type": "customer",
            "company_unique_id": "co-1", "entity_unique_id": "ent-1", "entity_type": "team",
            "description": "VIP", "unknown_field": "ignored"
        }}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(response.headers()["x-request-id"], "req_sdk_123");
    let attrs = json_body(response).await["data"]["attributes"].clone();
    assert_eq!(attrs["user_unique_id"], "user-9");
    assert_eq!(attrs["identity_type"], "customer");
    assert_eq!(attrs["company_unique_id"], "co-1");
    assert_eq!(attrs["entity_unique_id"], "ent-1");
    assert_eq!(attrs["entity_type"], "team");
    assert_eq!(attrs["description"], "VIP");
    let pm = attrs["default_payment_method"].as_str().unwrap();
    assert!(pm.starts_with("pm_") && pm != "pm_card_visa", "{pm}");
    assert_eq!(attrs["metadata"], json!({}));
}

async fn an_entity_needs_no_email(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let body = create(
        &app,
        &tenant,
        &tenant.user_token("u"),
        json!({"customer": {"identity_type": "entity", "name": "Acme Ltd", "entity_unique_id": "e-1"}}),
    )
    .await;
    assert_eq!(body["data"]["attributes"]["email"], Value::Null);
    assert_eq!(body["data"]["attributes"]["name"], "Acme Ltd");
}

async fn invalid_bodies_are_refused_before_stripe_is_called(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("u1");
    let too_many: serde_json::Map<String, Value> =
        (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases = [
        (json!({"customer": {"name": "No Email"}}), "/customer/email"),
        (
            json!({"customer": {"email": "not-an-email"}}),
            "/customer/email",
        ),
        (json!({"customer": {"email": 5}}), "/customer/email"),
        (
            json!({"customer": {"email": "a@example.com", "identity_type": "robot"}}),
            "/customer/identity_type",
        ),
        (
            json!({"customer": {"email": "a@example.com", "metadata": too_many}}),
            "/customer/metadata",
        ),
        (
            json!({"customer": {"email": "a@example.com", "metadata": {"a[b]": "x"}}}),
            "/customer/metadata/a[b]",
        ),
        (
            json!({"customer": {"email": "a@example.com", "metadata": {"k": "v".repeat(501)}}}),
            "/customer/metadata/k",
        ),
        (
            json!({"customer": {"email": "a@example.com", "token": "visa"}}),
            "/customer/token",
        ),
        (json!({"customer": "user@example.com"}), "/customer"),
    ];
    for (body, pointer) in cases {
        let response = app
            .post_json("/stripe/customers", &tenant, &token, &body)
            .await;
        let error = assert_error(response, 422, "validation_error").await;
        assert_eq!(error["source"]["pointer"], pointer, "{body}");
    }

    let malformed = app
        .authed(Method::POST, "/stripe/customers", &tenant, &token)
        .header("content-type", "application/json")
        .body("{\"customer\": {")
        .send()
        .await
        .unwrap();
    assert_error(malformed, 400, "invalid_json").await;

    let empty = app
        .authed(Method::POST, "/stripe/customers", &tenant, &token)
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_error(empty, 400, "missing_body").await;

    let not_an_object = app
        .post_json("/stripe/customers", &tenant, &token, &json!([1, 2]))
        .await;
    assert_error(not_an_object, 400, "invalid_body").await;

    let huge =
        json!({"customer": {"email": "a@example.com", "description": "x".repeat(70 * 1024)}});
    let too_large = app
        .post_json("/stripe/customers", &tenant, &token, &huge)
        .await;
    assert_error(too_large, 413, "payload_too_large").await;

    assert!(app.stripe_requests(&tenant).await.is_empty());
    assert_eq!(app.customer_count().await, 0);
}

async fn a_stripe_error_comes_back_with_its_code_and_param(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let response = app
        .post_json(
            "/stripe/customers",
            &tenant,
            &tenant.user_token("u1"),
            &json!({"customer": {"email": "a@example.com", "token": "pm_does_not_exist"}}),
        )
        .await;
    let error = assert_error(response, 422, "resource_missing").await;
    assert_eq!(error["title"], "Stripe Error");
    assert_eq!(error["meta"]["param"], "payment_method");
    assert!(
        error["detail"]
            .as_str()
            .unwrap()
            .contains("pm_does_not_exist")
    );
    assert_eq!(app.customer_count().await, 0);
}

async fn stripe_down_is_502_and_stripe_too_slow_is_504(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.stripe_timeout_secs = 1).await;
    // A port nothing listens on: bind one, then let it go.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let down = app
        .tenant_with(TenantSpec {
            stripe_api_base: Some(format!("http://127.0.0.1:{closed}")),
            ..TenantSpec::default()
        })
        .await;
    let response = app
        .post_json(
            "/stripe/customers",
            &down,
            &down.user_token("u1"),
            &json!({"customer": {"email": "a@example.com"}}),
        )
        .await;
    assert_error(response, 502, "stripe_unreachable").await;

    let slow = app.tenant().await;
    let configured = app
        .http
        .post(format!("{}/_emulator/config", app.emulator.base_url()))
        .bearer_auth(&slow.stripe_key)
        .json(&json!({"latency_ms": 2500}))
        .send()
        .await
        .unwrap();
    assert!(configured.status().is_success());
    let response = app
        .post_json(
            "/stripe/customers",
            &slow,
            &slow.user_token("u1"),
            &json!({"customer": {"email": "a@example.com"}}),
        )
        .await;
    assert_error(response, 504, "stripe_timeout").await;
    assert_eq!(app.customer_count().await, 0);
}

/// An answer from Stripe larger than the service reads (a proxy gone wrong, a wrong API base)
/// is refused as it streams in: a clear 502, nothing mirrored, and the next call is served.
async fn an_oversized_stripe_answer_is_502_and_not_read_whole(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let padding = (sales_block::stripe::live::MAX_ANSWER_BYTES + 1).to_string();
    app.stripe_post(
        &tenant,
        "/_emulator/config",
        &[("answer_padding_bytes", padding.as_str())],
    )
    .await;
    let token = tenant.user_token("u1");
    let create = async |email: &str| {
        app.post_json(
            "/stripe/customers",
            &tenant,
            &token,
            &json!({"customer": {"email": email}}),
        )
        .await
    };
    assert_error(create("big@example.com").await, 502, "stripe_bad_response").await;
    assert_eq!(app.customer_count().await, 0);

    app.stripe_post(
        &tenant,
        "/_emulator/config",
        &[("answer_padding_bytes", "0")],
    )
    .await;
    assert_eq!(create("small@example.com").await.status().as_u16(), 201);
    assert_eq!(app.customer_count().await, 1);
}

const RETURN_URL: &str = "https://app.example.com/account";

async fn portal(
    app: &TestApp,
    tenant: &TestTenant,
    token: &str,
    id: &str,
    body: Value,
) -> reqwest::Response {
    app.post_json(
        &format!("/stripe/customers/{id}/portal"),
        tenant,
        token,
        &body,
    )
    .await
}

async fn the_portal_opens_by_each_of_the_three_id_forms(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("user-7");
    let created = create(
        &app,
        &tenant,
        &token,
        json!({"customer": {"email": "p@example.com", "user_unique_id": "user-7"}}),
    )
    .await;
    let attrs = &created["data"]["attributes"];
    let ids = [
        attrs["unique_id"].as_str().unwrap().to_owned(),
        "user-7".to_owned(),
        attrs["stripe_customer_id"].as_str().unwrap().to_owned(),
    ];
    for id in &ids {
        let response = portal(
            &app,
            &tenant,
            &token,
            id,
            json!({"portal": {"return_url": RETURN_URL}}),
        )
        .await;
        assert_eq!(response.status().as_u16(), 200, "{id}");
        let body = json_body(response).await;
        assert_eq!(body["data"]["type"], "portal_session");
        let p = &body["data"]["attributes"];
        assert!(p["url"].as_str().unwrap().starts_with("http"), "{p}");
        assert_eq!(p["return_url"], RETURN_URL);
        assert_eq!(p["customer"], attrs["stripe_customer_id"]);
        assert_eq!(p["customer_id"], attrs["unique_id"]);
        let created_at =
            chrono::DateTime::parse_from_rfc3339(p["created_at"].as_str().unwrap()).unwrap();
        let expires_at =
            chrono::DateTime::parse_from_rfc3339(p["expires_at"].as_str().unwrap()).unwrap();
        assert_eq!((expires_at - created_at).num_seconds(), 300);
    }
    let sessions = app
        .stripe_requests(&tenant)
        .await
        .into_iter()
        .filter(|r| r["path"] == "/v1/billing_portal/sessions")
        .count();
    assert_eq!(sessions, 3);
}

async fn the_portal_validates_its_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("u1");
    let created = create(
        &app,
        &tenant,
        &token,
        json!({"customer": {"email": "v@example.com"}}),
    )
    .await;
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    for (body, pointer) in [
        (json!({"portal": {}}), "/portal/return_url"),
        (
            json!({"portal": {"return_url": "not a url"}}),
            "/portal/return_url",
        ),
        (
            json!({"portal": {"return_url": "ftp://example.com/x"}}),
            "/portal/return_url",
        ),
        (
            json!({"portal": {"return_url": RETURN_URL, "customer_id": "cus_other"}}),
            "/portal/customer_id",
        ),
    ] {
        let error = assert_error(
            portal(&app, &tenant, &token, &id, body).await,
            422,
            "validation_error",
        )
        .await;
        assert_eq!(error["source"]["pointer"], pointer);
    }
}

async fn another_tenants_or_users_customer_is_404_by_every_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner_tenant = app.tenant().await;
    let intruder = app.tenant().await;
    let created = create(
        &app,
        &owner_tenant,
        &owner_tenant.user_token("owner"),
        json!({"customer": {"email": "o@example.com", "user_unique_id": "owner"}}),
    )
    .await;
    let attrs = &created["data"]["attributes"];
    let ids = [
        attrs["unique_id"].as_str().unwrap(),
        "owner",
        attrs["stripe_customer_id"].as_str().unwrap(),
    ];
    let body = json!({"portal": {"return_url": RETURN_URL}});
    for id in ids {
        // Another tenant, even its admin: 404, never 403.
        let response = portal(&app, &intruder, &intruder.admin_token(), id, body.clone()).await;
        assert_error(response, 404, "not_found").await;
        // Another user of the same tenant.
        let response = portal(
            &app,
            &owner_tenant,
            &owner_tenant.user_token("someone-else"),
            id,
            body.clone(),
        )
        .await;
        assert_error(response, 404, "not_found").await;
        // The tenant's admin may.
        let response = portal(
            &app,
            &owner_tenant,
            &owner_tenant.admin_token(),
            id,
            body.clone(),
        )
        .await;
        assert_eq!(response.status().as_u16(), 200);
    }
    let response = portal(
        &app,
        &owner_tenant,
        &owner_tenant.admin_token(),
        "cus_unknown",
        body,
    )
    .await;
    assert_error(response, 404, "not_found").await;
    assert!(app.stripe_requests(&intruder).await.is_empty());
}

/// Stripe's calls go over kept-alive connections, one HTTP client for every tenant: against
/// Stripe a new connection is a TCP and a TLS handshake before the request can leave.
/// async-stripe's own client kept no idle connection (every call came from a port of its own)
/// and was built, CA bundle and all, for each tenant.
async fn calls_to_stripe_share_kept_alive_connections_across_tenants(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.tenant().await;
    let second = app.tenant().await;
    for n in 0..4 {
        create(
            &app,
            &first,
            &first.user_token(&format!("user-{n}")),
            json!({"customer": {"email": format!("user{n}@example.com")}}),
        )
        .await;
    }
    create(
        &app,
        &second,
        &second.user_token("user-9"),
        json!({"customer": {"email": "other@example.com"}}),
    )
    .await;
    let mut creates = app.stripe_requests(&first).await;
    creates.extend(app.stripe_requests(&second).await);
    creates.retain(|r| r["method"] == "POST" && r["path"] == "/v1/customers");
    assert_eq!(creates.len(), 5, "{creates:?}");
    let ports: std::collections::BTreeSet<u64> = creates
        .iter()
        .map(|r| {
            r["client_port"]
                .as_u64()
                .expect("the emulator logs the port")
        })
        .collect();
    // One connection for the five calls made one after another (two if a background call
    // of the service held the first at that moment).
    assert!(ports.len() <= 2, "{ports:?}");
}

on_both_databases!(
    calls_to_stripe_share_kept_alive_connections_across_tenants,
    the_spec_body_creates_a_customer_at_stripe_and_mirrors_it,
    the_sdk_body_with_a_card_token_and_identity_fields_round_trips,
    an_entity_needs_no_email,
    invalid_bodies_are_refused_before_stripe_is_called,
    a_stripe_error_comes_back_with_its_code_and_param,
    stripe_down_is_502_and_stripe_too_slow_is_504,
    an_oversized_stripe_answer_is_502_and_not_read_whole,
    the_portal_opens_by_each_of_the_three_id_forms,
    the_portal_validates_its_body,
    another_tenants_or_users_customer_is_404_by_every_id,
);
