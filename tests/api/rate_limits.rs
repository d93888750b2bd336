//! Per-tenant and per-caller limits (issue 12, point 11): a caller past its burst gets 429
//! `rate_limited` with `Retry-After` and nothing is done, while another caller of the same
//! tenant and another tenant go on; a tenant past its own burst is refused for every caller
//! while another tenant goes on.

use reqwest::{Method, Response};
use serde_json::json;

use crate::helpers::{Backend, TestApp, TestTenant, assert_error, spawn_app_with};
use crate::on_both_databases;

async fn list(app: &TestApp, tenant: &TestTenant, token: &str) -> Response {
    app.authed(Method::GET, "/stripe/customers", tenant, token)
        .send()
        .await
        .unwrap()
}

fn retry_after(response: &Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header in whole seconds")
}

async fn a_caller_or_tenant_past_its_burst_gets_429_and_others_go_on(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.rate_limit_caller_per_sec = 1;
        s.rate_limit_caller_burst = 3;
        s.rate_limit_tenant_per_sec = 1;
        s.rate_limit_tenant_burst = 8;
    })
    .await;
    let tenant = app.tenant().await;
    let other = app.tenant().await;
    let alice = tenant.user_token("alice");

    // Alice creates customers until she is refused: at least her burst goes through (more
    // only if the box is slow enough for her bucket to refill in between).
    let mut created = 0;
    let refused = loop {
        let response = app
            .post_json(
                "/stripe/customers",
                &tenant,
                &alice,
                &json!({"customer": {"email": format!("alice{created}@example.com")}}),
            )
            .await;
        if response.status().as_u16() == 429 {
            break response;
        }
        assert_eq!(response.status().as_u16(), 201);
        created += 1;
        assert!(created <= 6, "never limited");
    };
    assert!(created >= 3, "refused within the burst");
    assert!(retry_after(&refused) >= 1);
    let error = assert_error(refused, 429, "rate_limited").await;
    assert!(error["meta"]["retry_after"].as_u64().is_some(), "{error}");
    // The refused request did nothing, here or at Stripe.
    assert_eq!(app.customer_count().await, created);
    let at_stripe = app.stripe_params(&tenant, "POST", "/v1/customers").await;
    assert_eq!(at_stripe.len() as i64, created);

    // In the same moment, another caller of the tenant and another tenant are served.
    assert_eq!(
        list(&app, &tenant, &tenant.user_token("bob"))
            .await
            .status(),
        200
    );
    assert_eq!(
        list(&app, &other, &other.user_token("alice"))
            .await
            .status(),
        200
    );

    // Many callers of one tenant: its own bucket runs out, for every caller.
    let mut tenant_refused = None;
    for i in 0..20 {
        let response = list(&app, &tenant, &tenant.user_token(&format!("user{i}"))).await;
        if response.status().as_u16() == 429 {
            tenant_refused = Some(response);
            break;
        }
        assert_eq!(response.status(), 200);
    }
    let refused = tenant_refused.expect("the tenant's limit was never reached");
    assert!(retry_after(&refused) >= 1);
    let error = assert_error(refused, 429, "rate_limited").await;
    assert!(error["detail"].as_str().unwrap().contains("app"), "{error}");
    // The other tenant is not refused.
    assert_eq!(
        list(&app, &other, &other.user_token("carol"))
            .await
            .status(),
        200
    );
}

on_both_databases!(a_caller_or_tenant_past_its_burst_gets_429_and_others_go_on);
