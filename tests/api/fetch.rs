//! `POST /stripe/fetch`: a tenant admin's Stripe call passed through with the tenant's own key,
//! within the allow-list; Stripe's errors passed back with their status; keyed writes replayed;
//! writes answered with a mirrored object in the mirror; and every malformed or forbidden call
//! refused before Stripe sees anything (the emulator's request log is the witness).

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, TestTenant, assert_error, json_body, spawn_app, spawn_app_with, test_settings,
};
use crate::on_both_databases;

on_both_databases!(
    an_admin_calls_stripe_and_a_created_product_is_in_the_catalogue,
    a_stripe_error_keeps_stripes_status_code_and_request_id,
    a_keyed_write_is_replayed_and_stripe_sees_it_once,
    non_admins_are_refused_before_stripe,
    another_tenants_objects_are_not_reachable,
    calls_outside_the_allow_list_are_refused_naming_method_and_path,
    a_tenants_own_list_narrows_the_operators,
    malformed_paths_methods_and_params_never_reach_stripe,
    fetch_calls_count_toward_the_callers_rate_limit,
);

async fn fetch(app: &TestApp, tenant: &TestTenant, token: &str, call: Value) -> Response {
    app.post_json("/stripe/fetch", tenant, token, &json!({ "fetch": call }))
        .await
}

async fn ok(response: Response) -> Value {
    assert_eq!(response.status().as_u16(), 200);
    let body = json_body(response).await;
    assert_eq!(body["data"]["type"], "stripe_response", "{body}");
    assert_eq!(body["data"]["attributes"]["status"], 200, "{body}");
    body["data"].clone()
}

/// The tenant's `/v1` requests to the emulator, as `METHOD path`.
async fn stripe_calls(app: &TestApp, tenant: &TestTenant) -> Vec<String> {
    app.stripe_requests(tenant)
        .await
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["method"].as_str().unwrap_or_default(),
                r["path"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

async fn an_admin_calls_stripe_and_a_created_product_is_in_the_catalogue(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let admin = tenant.admin_token();

    let created = ok(fetch(
        &app,
        &tenant,
        &admin,
        json!({"method": "POST", "path": "/v1/products",
               "params": {"name": "Proxied plan", "metadata": {"tier": "gold"}}}),
    )
    .await)
    .await;
    let attributes = &created["attributes"];
    assert_eq!(attributes["method"], "POST");
    assert_eq!(attributes["path"], "/v1/products");
    assert_eq!(attributes["body"]["object"], "product");
    assert_eq!(attributes["body"]["name"], "Proxied plan");
    assert_eq!(attributes["body"]["metadata"]["tier"], "gold");
    assert_eq!(attributes["mirrored"], true);
    let product_id = attributes["body"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["id"], product_id.as_str());
    // Sent form-encoded with Stripe's nesting.
    let params = app.stripe_params(&tenant, "POST", "/v1/products").await;
    assert_eq!(params.len(), 1);
    assert_eq!(params[0]["metadata"]["tier"], "gold");

    // The catalogue route lists it (the mirror has it, not a second call to Stripe).
    let list = app
        .authed(Method::GET, "/stripe/products", &tenant, &admin)
        .send()
        .await
        .unwrap();
    let list = json_body(list).await;
    let listed: Vec<&Value> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["attributes"]["stripe_product_id"] == product_id.as_str())
        .collect();
    assert_eq!(listed.len(), 1, "{list}");
    assert_eq!(listed[0]["attributes"]["name"], "Proxied plan");

    // A read, in the JSON:API envelope, with its parameters in the query string; reads are
    // not written to the mirror.
    let response = app
        .post_json(
            "/stripe/fetch",
            &tenant,
            &admin,
            &json!({"data": {"attributes": {"method": "GET", "path": "/v1/products",
                                            "params": {"limit": 1}}}}),
        )
        .await;
    let read = ok(response).await;
    assert_eq!(read["attributes"]["body"]["object"], "list");
    assert_eq!(
        read["attributes"]["body"]["data"][0]["id"],
        product_id.as_str()
    );
    assert_eq!(read["attributes"]["mirrored"], false);
    let requests = app.stripe_requests(&tenant).await;
    let get = requests
        .iter()
        .find(|r| r["method"] == "GET" && r["path"] == "/v1/products")
        .expect("the read reached Stripe");
    assert_eq!(get["query"], "limit=1", "{get}");

    // A price for it, then an archive of the product: each write mirrored.
    let price = ok(fetch(
        &app,
        &tenant,
        &admin,
        json!({"method": "POST", "path": "/v1/prices",
               "params": {"product": product_id, "unit_amount": 1500, "currency": "usd",
                          "recurring": {"interval": "month"}}}),
    )
    .await)
    .await;
    let price_id = price["attributes"]["body"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let read = app
        .authed(
            Method::GET,
            &format!("/stripe/prices/{price_id}"),
            &tenant,
            &admin,
        )
        .send()
        .await
        .unwrap();
    let read = json_body(read).await;
    assert_eq!(read["data"]["attributes"]["unit_amount"], 1500, "{read}");
    assert_eq!(read["data"]["attributes"]["interval"], "month", "{read}");
}

async fn a_stripe_error_keeps_stripes_status_code_and_request_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let admin = tenant.admin_token();

    let missing = fetch(
        &app,
        &tenant,
        &admin,
        json!({"method": "GET", "path": "/v1/customers/cus_missing"}),
    )
    .await;
    let error = assert_error(missing, 404, "resource_missing").await;
    assert_eq!(
        error["meta"]["stripe_type"], "invalid_request_error",
        "{error}"
    );
    assert_eq!(error["meta"]["stripe_status"], 404, "{error}");
    assert!(
        error["detail"]
            .as_str()
            .is_some_and(|d| d.contains("cus_missing")),
        "{error}"
    );
    assert!(
        error["meta"]["stripe_request_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("req_")),
        "{error}"
    );

    // A decline keeps Stripe's 402, its code and decline code.
    let declined = fetch(
        &app,
        &tenant,
        &admin,
        json!({"method": "POST", "path": "/v1/payment_intents",
               "params": {"amount": 500, "currency": "usd", "confirm": true,
                          "payment_method": "pm_card_chargeDeclined",
                          "automatic_payment_methods": {"enabled": true, "allow_redirects": "never"}}}),
    )
    .await;
    let error = assert_error(declined, 402, "card_declined").await;
    assert_eq!(error["meta"]["stripe_type"], "card_error", "{error}");
    assert!(error["meta"]["decline_code"].is_string(), "{error}");

    // A parameter Stripe refuses: 400 with the param named, as Stripe answered it.
    let refused = fetch(
        &app,
        &tenant,
        &admin,
        json!({"method": "POST", "path": "/v1/customers", "params": {"no_such_param": "x"}}),
    )
    .await;
    let error = assert_error(refused, 400, "parameter_unknown").await;
    assert_eq!(error["meta"]["param"], "no_such_param", "{error}");
}

async fn a_keyed_write_is_replayed_and_stripe_sees_it_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let admin = tenant.admin_token();
    let body = json!({"fetch": {"method": "POST", "path": "/v1/customers",
                                "params": {"email": "keyed@example.com"}}});
    let send = || {
        app.authed(Method::POST, "/stripe/fetch", &tenant, &admin)
            .header("Idempotency-Key", "fetch-key-1")
            .json(&body)
            .send()
    };
    let first = send().await.unwrap();
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = ok(first).await;
    let second = send().await.unwrap();
    assert_eq!(
        second
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let second = ok(second).await;
    assert_eq!(first, second);
    let writes: Vec<Value> = app
        .stripe_requests(&tenant)
        .await
        .into_iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/v1/customers")
        .collect();
    assert_eq!(writes.len(), 1, "{writes:?}");
    // The client's key went on to Stripe (derived per step, as every keyed write's).
    assert!(
        writes[0]["idempotency_key"]
            .as_str()
            .is_some_and(|k| k.starts_with("fetch-key-1:")),
        "{:?}",
        writes[0]
    );

    // The same key with another body is a conflict, and nothing more reaches Stripe.
    let other = app
        .authed(Method::POST, "/stripe/fetch", &tenant, &admin)
        .header("Idempotency-Key", "fetch-key-1")
        .json(&json!({"fetch": {"method": "POST", "path": "/v1/customers",
                                "params": {"email": "other@example.com"}}}))
        .send()
        .await
        .unwrap();
    assert_error(other, 409, "idempotency_error").await;
    assert_eq!(app.stripe_writes(&tenant).await, 1);
}

async fn non_admins_are_refused_before_stripe(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let user = tenant.user_token("user-1");
    for call in [
        json!({"method": "GET", "path": "/v1/customers"}),
        json!({"method": "POST", "path": "/v1/products", "params": {"name": "x"}}),
        // Refused as a non-admin before anything else is looked at.
        json!({"method": "GET", "path": "/v1/accounts"}),
    ] {
        let response = fetch(&app, &tenant, &user, call).await;
        assert_error(response, 403, "admin_required").await;
    }
    assert!(stripe_calls(&app, &tenant).await.is_empty());
}

async fn another_tenants_objects_are_not_reachable(backend: Backend) {
    let app = spawn_app(backend).await;
    let mine = app.tenant().await;
    let theirs = app.tenant().await;
    let created = ok(fetch(
        &app,
        &theirs,
        &theirs.admin_token(),
        json!({"method": "POST", "path": "/v1/customers", "params": {"email": "theirs@example.com"}}),
    )
    .await)
    .await;
    let their_customer = created["attributes"]["body"]["id"].as_str().unwrap();

    let admin = mine.admin_token();
    let response = fetch(
        &app,
        &mine,
        &admin,
        json!({"method": "GET", "path": format!("/v1/customers/{their_customer}")}),
    )
    .await;
    assert_error(response, 404, "resource_missing").await;
    let list = ok(fetch(
        &app,
        &mine,
        &admin,
        json!({"method": "GET", "path": "/v1/customers"}),
    )
    .await)
    .await;
    assert_eq!(list["attributes"]["body"]["data"], json!([]), "{list}");
    // Both calls went out with my key only; theirs saw just their own write.
    assert_eq!(
        stripe_calls(&app, &mine).await,
        [
            format!("GET /v1/customers/{their_customer}"),
            "GET /v1/customers".to_owned()
        ]
    );
    assert_eq!(stripe_calls(&app, &theirs).await, ["POST /v1/customers"]);
}

async fn calls_outside_the_allow_list_are_refused_naming_method_and_path(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let admin = tenant.admin_token();
    for (method, path) in [
        // Never, whatever the configuration.
        ("GET", "/v1/accounts"),
        ("GET", "/v1/account"),
        ("POST", "/v1/accounts/acct_1/reject"),
        ("POST", "/v1/account_links"),
        ("POST", "/v1/oauth/token"),
        ("POST", "/v1/oauth/deauthorize"),
        ("GET", "/v1/webhook_endpoints"),
        ("POST", "/v1/webhook_endpoints"),
        ("DELETE", "/v1/webhook_endpoints/we_1"),
        ("POST", "/v1/transfers"),
        ("POST", "/v1/payouts"),
        ("GET", "/v1/Accounts"),
        // Not on the default list.
        ("DELETE", "/v1/products/prod_1"),
        ("POST", "/v1/invoices"),
        ("POST", "/v1/payment_methods/pm_1/attach"),
        ("GET", "/v1/coupons"),
        ("POST", "/v1/checkout/sessions"),
        ("DELETE", "/v1/customers"),
        ("GET", "/v1/CUSTOMERS"),
        ("GET", "/v1/customers/cus_1/balance_transactions"),
        ("GET", "/v1/balance/history"),
    ] {
        let response = fetch(
            &app,
            &tenant,
            &admin,
            json!({"method": method, "path": path}),
        )
        .await;
        let error = assert_error(response, 403, "fetch_not_allowed").await;
        let detail = error["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("{method} {path}")),
            "{method} {path}: {detail}"
        );
        assert_eq!(error["meta"]["method"], method);
        assert_eq!(error["meta"]["path"], path);
    }
    assert!(stripe_calls(&app, &tenant).await.is_empty());
}

async fn a_tenants_own_list_narrows_the_operators(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let admin = tenant.admin_token();
    let operator = sales_block::domain::fetch::AllowList::of_settings(&app.state.settings).unwrap();
    let api_key = tenant.api_key().to_owned();
    let (narrowed, outside) = {
        let operator = operator.clone();
        app.state
            .db
            .run(move |conn| {
                let outside = sales_block::tenants::set_fetch_allow(
                    conn,
                    &api_key,
                    Some(&["POST /v1/invoices".to_owned()]),
                    &operator,
                )
                .map(|_| ());
                let narrowed = sales_block::tenants::set_fetch_allow(
                    conn,
                    &api_key,
                    Some(&["GET /v1/customers/{id}".to_owned()]),
                    &operator,
                )?;
                anyhow::Ok((narrowed, outside))
            })
            .await
            .unwrap()
    };
    // A rule the operator does not list cannot be given to a tenant.
    assert!(outside.is_err());
    assert_eq!(
        narrowed.fetch_allow,
        Some(vec!["GET /v1/customers/{id}".to_owned()])
    );

    // Allowed by the operator, not by the tenant; `{id}` is never a word like `search`.
    for (method, path) in [
        ("GET", "/v1/customers"),
        ("GET", "/v1/customers/search"),
        ("POST", "/v1/customers"),
        ("GET", "/v1/products/prod_1"),
    ] {
        let response = fetch(
            &app,
            &tenant,
            &admin,
            json!({"method": method, "path": path}),
        )
        .await;
        assert_error(response, 403, "fetch_not_allowed").await;
    }
    // What the tenant allows reaches Stripe.
    let response = fetch(
        &app,
        &tenant,
        &admin,
        json!({"method": "GET", "path": "/v1/customers/cus_nobody"}),
    )
    .await;
    assert_error(response, 404, "resource_missing").await;
    assert_eq!(
        stripe_calls(&app, &tenant).await,
        ["GET /v1/customers/cus_nobody"]
    );

    // Another tenant keeps the operator's whole list.
    let other = app.tenant().await;
    let list = fetch(
        &app,
        &other,
        &other.admin_token(),
        json!({"method": "GET", "path": "/v1/customers"}),
    )
    .await;
    ok(list).await;
}

/// An operator list naming a path that is never allowed stops the service at start.
#[tokio::test]
async fn an_operator_list_naming_a_forbidden_path_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sales.db").display());
    for rule in [
        "GET /v1/accounts",
        "POST /v1/oauth/token",
        "PUT /v1/customers",
    ] {
        let mut settings = test_settings(url.clone());
        settings.fetch_allowed.push(rule.to_owned());
        let Err(err) = sales_block::app::startup::Application::build(settings).await else {
            panic!("started with {rule:?} allowed");
        };
        assert!(format!("{err:#}").contains("fetch_allowed"), "{err:#}");
    }
}

async fn malformed_paths_methods_and_params_never_reach_stripe(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let admin = tenant.admin_token();
    let long = format!("/v1/customers/cus_{}", "a".repeat(300));
    for path in [
        "/v1/customers/../accounts",
        "/v1/customers/%2e%2e/accounts",
        "/v1/customers/..%2Faccounts",
        "/v1/customers%2Fcus_1",
        "//evil.example/v1/customers",
        "/v1//customers",
        "/v1/customers/",
        "/v1/customers@evil.example",
        "/v1/customers/cus_1@evil.example",
        "/v1/customers\\cus_1",
        "/v1/customers/cus_1?expand[]=sources",
        "/v1/customers#fragment",
        " /v1/customers",
        "/v1/customers ",
        "/v1/customers\t",
        "/v1/customers/cüs_1",
        "/v1/customers/cus-1",
        "/v1/customers/cus.1",
        "/v1/customers/cus_1:443",
        "/V1/customers",
        "/v2/customers",
        "v1/customers",
        "https://evil.example/v1/customers",
        "",
        long.as_str(),
    ] {
        let response = fetch(
            &app,
            &tenant,
            &admin,
            json!({"method": "GET", "path": path}),
        )
        .await;
        let error = assert_error(response, 422, "invalid_fetch_path").await;
        assert_eq!(error["source"]["pointer"], "/fetch/path", "{path:?}");
    }
    for method in [
        "PUT", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT", "GET ", "",
    ] {
        let response = fetch(
            &app,
            &tenant,
            &admin,
            json!({"method": method, "path": "/v1/customers"}),
        )
        .await;
        assert_error(response, 422, "invalid_fetch_method").await;
    }
    let response = fetch(&app, &tenant, &admin, json!({"path": "/v1/customers"})).await;
    assert_error(response, 422, "invalid_fetch_method").await;
    let response = fetch(&app, &tenant, &admin, json!({"method": "GET"})).await;
    assert_error(response, 422, "invalid_fetch_path").await;
    // Not strings: the body's types are checked first.
    let response = fetch(
        &app,
        &tenant,
        &admin,
        json!({"method": "GET", "path": ["/v1/customers"]}),
    )
    .await;
    assert_error(response, 422, "validation_error").await;

    let mut deep = json!("x");
    for _ in 0..8 {
        deep = json!({ "a": deep });
    }
    let many: serde_json::Map<String, Value> =
        (0..1500).map(|i| (format!("k{i}"), json!(1))).collect();
    for params in [
        json!("email=a@b.c"),
        json!(["email", "a@b.c"]),
        json!(42),
        json!({"metadata": deep}),
        Value::Object(many),
        json!({"metadata[tier]": "gold"}),
        json!({"a]&b[": "x"}),
        json!({"": "x"}),
        json!({"k".repeat(200): "x"}),
    ] {
        let response = fetch(
            &app,
            &tenant,
            &admin,
            json!({"method": "POST", "path": "/v1/customers", "params": params}),
        )
        .await;
        let error = assert_error(response, 422, "invalid_fetch_params").await;
        assert!(
            error["source"]["pointer"]
                .as_str()
                .is_some_and(|p| p.starts_with("/fetch/params")),
            "{error}"
        );
    }
    // Deeper than any JSON parser here goes, and larger than the body limit.
    let mut abyss = "1".to_owned();
    for _ in 0..200 {
        abyss = format!("[{abyss}]");
    }
    let response = app
        .authed(Method::POST, "/stripe/fetch", &tenant, &admin)
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"fetch":{{"method":"POST","path":"/v1/customers","params":{{"a":{abyss}}}}}}}"#
        ))
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "invalid_json").await;
    let huge = "x".repeat(app.state.settings.max_body_bytes + 1);
    let response = fetch(
        &app,
        &tenant,
        &admin,
        json!({"method": "POST", "path": "/v1/customers", "params": {"description": huge}}),
    )
    .await;
    assert_error(response, 413, "payload_too_large").await;

    assert!(stripe_calls(&app, &tenant).await.is_empty());
}

async fn fetch_calls_count_toward_the_callers_rate_limit(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.rate_limit_caller_per_sec = 1;
        s.rate_limit_caller_burst = 2;
    })
    .await;
    let tenant = app.tenant().await;
    let admin = tenant.admin_token();
    let mut answered = 0;
    loop {
        let response = fetch(
            &app,
            &tenant,
            &admin,
            json!({"method": "GET", "path": "/v1/balance"}),
        )
        .await;
        if response.status().as_u16() == 429 {
            assert_error(response, 429, "rate_limited").await;
            break;
        }
        ok(response).await;
        answered += 1;
        assert!(answered <= 5, "never limited");
    }
    assert!(answered >= 2, "refused within the burst");
    assert_eq!(stripe_calls(&app, &tenant).await.len(), answered);
}
