//! The subscription routes: create, update with each proration behaviour, cancel, and the
//! paged list for admins and for users.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestTenant, assert_error, json_body, spawn_app};
use crate::on_both_databases;

async fn subscribe(app: &TestApp, tenant: &TestTenant, token: &str, subscription: Value) -> Value {
    let response = app
        .post_json(
            "/stripe/subscriptions",
            tenant,
            token,
            &json!({ "subscription": subscription }),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
    json_body(response).await["data"].clone()
}

async fn list(app: &TestApp, tenant: &TestTenant, token: &str, query: &str) -> reqwest::Response {
    app.authed(
        Method::GET,
        &format!("/stripe/subscriptions{query}"),
        tenant,
        token,
    )
    .send()
    .await
    .unwrap()
}

fn days_from_now(timestamp: &Value) -> i64 {
    let at = chrono::DateTime::parse_from_rfc3339(timestamp.as_str().unwrap()).unwrap();
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .num_hours()
        .div_euclid(24)
        + 1
}

async fn a_trial_subscription_from_the_spec_body_is_trialing(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("sub-user");
    let customer = app.customer(&tenant, &token, "sub@example.com").await;
    let cus = customer["stripe_customer_id"].as_str().unwrap();
    let price = app.price(&tenant, 4999, Some("month")).await;
    let data = subscribe(
        &app,
        &tenant,
        &token,
        json!({"customer_id": cus, "price_id": price, "trial_period_days": 14, "metadata": {"plan_name": "Pro"}}),
    )
    .await;
    assert_eq!(data["type"], "stripe_subscription");
    let s = &data["attributes"];
    assert_eq!(data["id"], s["unique_id"]);
    let sub = s["stripe_subscription_id"].as_str().unwrap();
    assert!(sub.starts_with("sub_"));
    assert_eq!(s["stripe_id"], sub);
    assert_eq!(s["stripe_customer_id"], cus);
    assert_eq!(s["customer_id"], cus);
    assert_eq!(s["status"], "trialing");
    assert_eq!(days_from_now(&s["trial_end"]), 14);
    assert_eq!(s["plan_amount"], 4999);
    assert_eq!(s["plan_currency"], "usd");
    assert_eq!(s["plan_interval"], "month");
    assert_eq!(s["price_id"], json!(price));
    assert_eq!(s["cancel_at_period_end"], false);
    assert_eq!(s["canceled_at"], Value::Null);
    assert_eq!(s["metadata"], json!({"plan_name": "Pro"}));
    assert!(s["current_period_end"].as_str().is_some());
}

async fn the_sdk_body_attaches_the_card_and_adds_the_setup_price_and_coupon(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("sdk");
    let customer = app.customer(&tenant, &token, "sdk-sub@example.com").await;
    let monthly = app.price(&tenant, 2000, Some("month")).await;
    let setup = app.price(&tenant, 500, None).await;
    let coupon = app
        .stripe_post(
            &tenant,
            "/v1/coupons",
            &[("percent_off", "10"), ("duration", "once")],
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let data = subscribe(
        &app,
        &tenant,
        &token,
        json!({"customer_id": customer["unique_id"], "subscription_price_id": monthly,
            "setup_price_id": setup, "coupon": coupon, "card_token": "pm_card_visa",
            "quantity": 2, "trial_period_days": 0, "description": "Team plan"}),
    )
    .await;
    let s = &data["attributes"];
    assert_eq!(s["status"], "active");
    assert_eq!(s["quantity"], 2);
    assert_eq!(s["trial_end"], Value::Null);
    let created = app
        .stripe_params(&tenant, "POST", "/v1/subscriptions")
        .await;
    assert_eq!(created.len(), 1);
    let sent = &created[0];
    assert_eq!(sent["add_invoice_items"][0]["price"], json!(setup));
    assert_eq!(sent["discounts"][0]["coupon"], json!(coupon));
    assert!(
        sent["default_payment_method"]
            .as_str()
            .unwrap()
            .starts_with("pm_")
    );
    assert!(
        sent.get("trial_period_days").is_none(),
        "0 days means no trial: {sent}"
    );
    let attached = app
        .stripe_requests(&tenant)
        .await
        .into_iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with("/attach"))
        .count();
    assert_eq!(attached, 1);
}

async fn updates_change_the_price_with_each_proration_behavior_and_delete_cancels_now(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("changer");
    let customer = app.customer(&tenant, &token, "change@example.com").await;
    let basic = app.price(&tenant, 1000, Some("month")).await;
    let data = subscribe(
        &app,
        &tenant,
        &token,
        json!({"customer_id": customer["stripe_customer_id"], "price_id": basic, "card_token": "pm_card_visa"}),
    )
    .await;
    let sub = data["attributes"]["stripe_subscription_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/stripe/subscriptions/{sub}");
    for (amount, behavior) in [
        (2000, "create_prorations"),
        (3000, "none"),
        (4000, "always_invoice"),
    ] {
        let price = app.price(&tenant, amount, Some("month")).await;
        let response = app
            .authed(Method::PUT, &path, &tenant, &token)
            .json(&json!({"subscription": {"price_id": price, "proration_behavior": behavior}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let s = json_body(response).await["data"]["attributes"].clone();
        assert_eq!(s["price_id"], json!(price));
        assert_eq!(s["plan_amount"], amount);
        let updates = app
            .stripe_params(&tenant, "POST", &format!("/v1/subscriptions/{sub}"))
            .await;
        assert_eq!(updates.last().unwrap()["proration_behavior"], behavior);
    }

    let response = app
        .authed(Method::PUT, &path, &tenant, &token)
        .json(&json!({"subscription": {"cancel_at_period_end": true, "quantity": 3, "metadata": {"seats": 3}}}))
        .send()
        .await
        .unwrap();
    let s = json_body(response).await["data"]["attributes"].clone();
    assert_eq!(s["cancel_at_period_end"], true);
    assert_eq!(s["quantity"], 3);
    assert_eq!(s["metadata"]["seats"], "3");

    let response = app
        .authed(Method::DELETE, &path, &tenant, &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let s = json_body(response).await["data"]["attributes"].clone();
    assert_eq!(s["status"], "canceled");
    assert!(s["canceled_at"].as_str().is_some());
    assert_eq!(s["cancelled_at"], s["canceled_at"]);
}

async fn others_subscriptions_and_unknown_ids_are_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let other = app.tenant().await;
    let token = tenant.user_token("owner");
    let customer = app.customer(&tenant, &token, "own@example.com").await;
    let price = app.price(&tenant, 1000, Some("month")).await;
    let data = subscribe(
        &app,
        &tenant,
        &token,
        json!({"customer_id": customer["unique_id"], "price_id": price, "trial_period_days": 3}),
    )
    .await;
    let sub = data["attributes"]["stripe_subscription_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/stripe/subscriptions/{sub}");
    let change = json!({"subscription": {"cancel_at_period_end": true}});
    for (t, tok) in [
        (&other, other.admin_token()),
        (&tenant, tenant.user_token("stranger")),
    ] {
        let put = app
            .authed(Method::PUT, &path, t, &tok)
            .json(&change)
            .send()
            .await
            .unwrap();
        assert_error(put, 404, "not_found").await;
        let delete = app
            .authed(Method::DELETE, &path, t, &tok)
            .send()
            .await
            .unwrap();
        assert_error(delete, 404, "not_found").await;
    }
    let delete = app
        .authed(
            Method::DELETE,
            "/stripe/subscriptions/sub_unknown",
            &tenant,
            &tenant.admin_token(),
        )
        .send()
        .await
        .unwrap();
    assert_error(delete, 404, "not_found").await;
    // Still trialing: nothing reached Stripe from the refused calls.
    let list = json_body(list(&app, &tenant, &token, "").await).await;
    assert_eq!(list["data"][0]["attributes"]["status"], "trialing");
    assert_eq!(list["data"][0]["attributes"]["cancel_at_period_end"], false);
}

async fn the_list_pages_newest_first_and_users_see_only_their_own(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let price = app.price(&tenant, 1000, Some("month")).await;
    let alice = tenant.user_token("alice");
    let bob = tenant.user_token("bob");
    let alice_customer = app.customer(&tenant, &alice, "alice@example.com").await;
    let bob_customer = app.customer(&tenant, &bob, "bob@example.com").await;
    let mut created = Vec::new();
    for i in 0..5 {
        let (token, customer) = if i < 3 {
            (&alice, &alice_customer)
        } else {
            (&bob, &bob_customer)
        };
        let data = subscribe(&app, &tenant, token, json!({"customer_id": customer["unique_id"], "price_id": price, "trial_period_days": 1 + i})).await;
        created.push(data["id"].as_str().unwrap().to_owned());
    }
    let admin = tenant.admin_token();
    let mut seen = Vec::new();
    for page in 1..=3 {
        let body =
            json_body(list(&app, &tenant, &admin, &format!("?page={page}&records=2")).await).await;
        let meta = &body["meta"];
        assert_eq!(meta["total_count"], 5);
        assert_eq!(meta["totalRecords"], 5);
        assert_eq!(meta["total_pages"], 3);
        assert_eq!(meta["totalPages"], 3);
        assert_eq!(meta["current_page"], page);
        assert_eq!(meta["per_page"], 2);
        let ids: Vec<String> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), if page < 3 { 2 } else { 1 });
        seen.extend(ids);
    }
    let mut newest_first = created.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    let alice_list = json_body(list(&app, &tenant, &alice, "").await).await;
    assert_eq!(alice_list["meta"]["total_count"], 3);
    assert_eq!(alice_list["meta"]["per_page"], 20);
    for item in alice_list["data"].as_array().unwrap() {
        assert_eq!(
            item["attributes"]["stripe_customer_id"],
            alice_customer["stripe_customer_id"]
        );
    }
    // Bob filtering on Alice's customer sees nothing.
    let filtered = json_body(
        list(
            &app,
            &tenant,
            &bob,
            &format!(
                "?customer_id={}",
                alice_customer["stripe_customer_id"].as_str().unwrap()
            ),
        )
        .await,
    )
    .await;
    assert_eq!(filtered["meta"]["total_count"], 0);
    let by_customer = json_body(
        list(
            &app,
            &tenant,
            &admin,
            &format!(
                "?customer_id={}",
                bob_customer["unique_id"].as_str().unwrap()
            ),
        )
        .await,
    )
    .await;
    assert_eq!(by_customer["meta"]["total_count"], 2);
    let trialing = json_body(list(&app, &tenant, &admin, "?status=trialing").await).await;
    assert_eq!(trialing["meta"]["total_count"], 5);
    let canceled = json_body(list(&app, &tenant, &admin, "?status=canceled").await).await;
    assert_eq!(canceled["meta"]["total_count"], 0);
    assert_eq!(canceled["data"], json!([]));

    for (query, parameter) in [
        ("?records=0", "records"),
        ("?records=101", "records"),
        ("?page=0", "page"),
        ("?page=x", "page"),
        ("?status=happy", "status"),
    ] {
        let error = assert_error(
            list(&app, &tenant, &admin, query).await,
            400,
            "invalid_query",
        )
        .await;
        assert_eq!(error["source"]["parameter"], parameter);
    }
}

async fn invalid_subscription_bodies_are_refused_with_a_pointer(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.admin_token();
    for (body, pointer) in [
        (json!({"price_id": "price_1"}), "/subscription/customer_id"),
        (json!({"customer_id": "cus_1"}), "/subscription/price_id"),
        (
            json!({"customer_id": "cus_1", "price_id": "x"}),
            "/subscription/price_id",
        ),
        (
            json!({"customer_id": "cus_1", "price_id": "price_1", "trial_period_days": 1000}),
            "/subscription/trial_period_days",
        ),
        (
            json!({"customer_id": "cus_1", "price_id": "price_1", "quantity": -1}),
            "/subscription/quantity",
        ),
        (
            json!({"customer_id": "cus_1", "price_id": "price_1", "card_token": "4242"}),
            "/subscription/card_token",
        ),
    ] {
        let response = app
            .post_json(
                "/stripe/subscriptions",
                &tenant,
                &token,
                &json!({ "subscription": body }),
            )
            .await;
        let error = assert_error(response, 422, "validation_error").await;
        assert_eq!(error["source"]["pointer"], pointer, "{body}");
    }
    for (body, pointer) in [
        (
            json!({"proration_behavior": "sometimes", "price_id": "price_1"}),
            "/subscription/proration_behavior",
        ),
        (json!({}), "/subscription"),
    ] {
        let response = app
            .authed(Method::PUT, "/stripe/subscriptions/sub_1", &tenant, &token)
            .json(&json!({ "subscription": body }))
            .send()
            .await
            .unwrap();
        let error = assert_error(response, 422, "validation_error").await;
        assert_eq!(error["source"]["pointer"], pointer);
    }
    assert!(app.stripe_requests(&tenant).await.is_empty());

    // An admin may name a customer Stripe has never heard of: Stripe's refusal comes back.
    let response = app
        .post_json(
            "/stripe/subscriptions",
            &tenant,
            &token,
            &json!({"subscription": {"customer_id": "cus_missing", "price_id": "price_missing"}}),
        )
        .await;
    let error = assert_error(response, 422, "resource_missing").await;
    assert!(error["meta"]["param"].as_str().is_some());
}

on_both_databases!(
    a_trial_subscription_from_the_spec_body_is_trialing,
    the_sdk_body_attaches_the_card_and_adds_the_setup_price_and_coupon,
    updates_change_the_price_with_each_proration_behavior_and_delete_cancels_now,
    others_subscriptions_and_unknown_ids_are_404,
    the_list_pages_newest_first_and_users_see_only_their_own,
    invalid_subscription_bodies_are_refused_with_a_pointer,
);
