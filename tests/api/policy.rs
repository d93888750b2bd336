//! The tenant's policy (issue 12, point 3): by default an end user may not name a payment's
//! amount, refund, apply a coupon they were not offered, set a trial, change price without
//! proration, or buy a price outside the mirrored catalogue. Each refusal is 403
//! `forbidden_by_policy` at the field, with nothing sent to Stripe; an admin always may; the
//! tenant opens each choice with `PUT /stripe/policy`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestTenant, assert_error, json_body, spawn_app};
use crate::on_both_databases;

/// The Stripe writes the tenant's key made so far.
async fn stripe_writes(app: &TestApp, tenant: &TestTenant) -> usize {
    app.stripe_requests(tenant)
        .await
        .iter()
        .filter(|r| r["method"] == "POST")
        .count()
}

async fn put_policy(
    app: &TestApp,
    tenant: &TestTenant,
    token: &str,
    policy: Value,
) -> reqwest::Response {
    app.authed(Method::PUT, "/stripe/policy", tenant, token)
        .json(&json!({ "policy": policy }))
        .send()
        .await
        .unwrap()
}

/// A catalogue price made through our API (so it is mirrored): monthly when `interval`.
async fn catalogue_price(app: &TestApp, tenant: &TestTenant, interval: Option<&str>) -> String {
    let admin = tenant.admin_token();
    let product = json_body(
        app.post_json(
            "/stripe/products",
            tenant,
            &admin,
            &json!({"product": {"name": "Plan"}}),
        )
        .await,
    )
    .await;
    let mut price =
        json!({"product_id": product["data"]["id"], "unit_amount": 1200, "currency": "usd"});
    if let Some(interval) = interval {
        price["interval"] = json!(interval);
    }
    let price = json_body(
        app.post_json("/stripe/prices", tenant, &admin, &json!({ "price": price }))
            .await,
    )
    .await;
    price["data"]["attributes"]["stripe_price_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{price}"))
        .to_owned()
}

/// Sends `request` and asserts a 403 `forbidden_by_policy` at `pointer`, with no Stripe write
/// made while it ran.
async fn refused(
    app: &TestApp,
    tenant: &TestTenant,
    request: impl std::future::Future<Output = reqwest::Response>,
    pointer: &str,
) {
    let before = stripe_writes(app, tenant).await;
    let response = request.await;
    let error = assert_error(response, 403, "forbidden_by_policy").await;
    assert_eq!(error["source"]["pointer"], pointer, "{error}");
    assert_eq!(stripe_writes(app, tenant).await, before);
}

/// `body` to `path`: refused to a user at `pointer`, created (201) for an admin.
async fn refused_to_users_only(
    app: &TestApp,
    tenant: &TestTenant,
    path: &str,
    body: &Value,
    pointer: &str,
) {
    let user = tenant.user_token("shopper");
    refused(
        app,
        tenant,
        app.post_json(path, tenant, &user, body),
        pointer,
    )
    .await;
    let response = app
        .post_json(path, tenant, &tenant.admin_token(), body)
        .await;
    let status = response.status().as_u16();
    assert_eq!(status, 201, "admin {body}: {}", json_body(response).await);
}

async fn every_gated_choice_is_refused_to_a_user_and_open_to_an_admin(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.strict_tenant().await;
    let user = tenant.user_token("shopper");
    let admin = tenant.admin_token();
    let customer = app.customer(&tenant, &user, "shopper@example.com").await;
    let cus = customer["stripe_customer_id"].as_str().unwrap().to_owned();
    let monthly = catalogue_price(&app, &tenant, Some("month")).await;
    // A price at Stripe that the app never put in its catalogue.
    let hidden = app.price(&tenant, 1, Some("month")).await;
    let hidden_once = app.price(&tenant, 1, None).await;
    let coupon = app
        .stripe_post(
            &tenant,
            "/v1/coupons",
            &[("percent_off", "100"), ("duration", "forever")],
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Payments: the amount and currency are the merchant's.
    let payment = json!({"payment": {"amount": 100, "currency": "usd", "customer_id": cus}});
    refused(
        &app,
        &tenant,
        app.post_json("/stripe/payments", &tenant, &user, &payment),
        "/payment/amount",
    )
    .await;
    let response = app
        .post_json("/stripe/payments", &tenant, &admin, &payment)
        .await;
    assert_eq!(response.status().as_u16(), 201);
    // The admin's payment, paid at once, is refunded below.
    let paid = app
        .post_json(
            "/stripe/payments",
            &tenant,
            &admin,
            &json!({"payment": {"amount": 100, "currency": "usd", "customer_id": cus,
                "payment_method": "pm_card_visa"}}),
        )
        .await;
    assert_eq!(paid.status().as_u16(), 201);
    let pi = json_body(paid).await["data"]["attributes"]["payment_intent_id"].clone();

    // Refunds.
    let refund = json!({"refund": {"payment_id": pi, "amount": 10}});
    refused(
        &app,
        &tenant,
        app.post_json("/stripe/refunds", &tenant, &user, &refund),
        "/refund",
    )
    .await;
    let response = app
        .post_json("/stripe/refunds", &tenant, &admin, &refund)
        .await;
    assert_eq!(response.status().as_u16(), 201);

    // Subscriptions: a price outside the catalogue, a trial, a coupon not offered.
    let subscribe = |fields: Value| {
        let mut body =
            json!({"customer_id": cus, "price_id": monthly, "card_token": "pm_card_visa"});
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        json!({ "subscription": body })
    };
    for (fields, pointer) in [
        (json!({"price_id": hidden}), "/subscription/price_id"),
        (
            json!({"subscription_price_id": hidden, "price_id": null}),
            "/subscription/subscription_price_id",
        ),
        (
            json!({"setup_price_id": hidden_once}),
            "/subscription/setup_price_id",
        ),
        (
            json!({"trial_period_days": 14}),
            "/subscription/trial_period_days",
        ),
        (json!({"coupon": coupon}), "/subscription/coupon"),
    ] {
        let body = subscribe(fields);
        refused_to_users_only(&app, &tenant, "/stripe/subscriptions", &body, pointer).await;
    }
    // A catalogue price with no trial or coupon is open to the user.
    let response = app
        .post_json(
            "/stripe/subscriptions",
            &tenant,
            &user,
            &subscribe(json!({})),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
    let sub = json_body(response).await["data"]["attributes"]["stripe_subscription_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = catalogue_price(&app, &tenant, Some("month")).await;

    // Changes: no proration, or a price outside the catalogue.
    for (change, pointer) in [
        (
            json!({"price_id": other, "proration_behavior": "none"}),
            "/subscription/proration_behavior",
        ),
        (json!({"price_id": hidden}), "/subscription/price_id"),
    ] {
        let request = app
            .authed(
                Method::PUT,
                &format!("/stripe/subscriptions/{sub}"),
                &tenant,
                &user,
            )
            .json(&json!({ "subscription": change }))
            .send();
        refused(&app, &tenant, async { request.await.unwrap() }, pointer).await;
    }
    let response = app
        .authed(
            Method::PUT,
            &format!("/stripe/subscriptions/{sub}"),
            &tenant,
            &user,
        )
        .json(&json!({"subscription": {"price_id": other}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let response = app
        .authed(
            Method::PUT,
            &format!("/stripe/subscriptions/{sub}"),
            &tenant,
            &admin,
        )
        .json(&json!({"subscription": {"price_id": monthly, "proration_behavior": "none"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);

    // Checkout sessions.
    let session = |fields: Value| {
        let mut body = json!({"success_url": "https://shop.example.com/ok",
            "cancel_url": "https://shop.example.com/no", "mode": "subscription",
            "line_items": [{"price_id": monthly, "quantity": 1}]});
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        json!({ "session": body })
    };
    for (fields, pointer) in [
        (
            json!({"line_items": [{"price_id": monthly}, {"price_id": hidden}]}),
            "/session/line_items/1/price_id",
        ),
        (
            json!({"line_items": null, "price": hidden}),
            "/session/price",
        ),
        (
            json!({"trial_period_days": 7}),
            "/session/trial_period_days",
        ),
        (json!({"coupon_id": coupon}), "/session/coupon_id"),
        (
            json!({"allow_promotion_codes": true}),
            "/session/allow_promotion_codes",
        ),
    ] {
        let body = session(fields);
        refused_to_users_only(&app, &tenant, "/stripe/sessions", &body, pointer).await;
    }
    let response = app
        .post_json(
            "/stripe/sessions",
            &tenant,
            &user,
            &session(json!({"allow_promotion_codes": false})),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);

    // Payment links sell their price to whoever opens them: the catalogue's only.
    let link = |price: &str| json!({"payment_link": {"price_id": price, "quantity": 3}});
    refused_to_users_only(
        &app,
        &tenant,
        "/stripe/payment_links",
        &link(&hidden),
        "/payment_link/price_id",
    )
    .await;
    let response = app
        .post_json("/stripe/payment_links", &tenant, &user, &link(&monthly))
        .await;
    assert_eq!(response.status().as_u16(), 201);
}

async fn the_policy_opens_choices_and_offers_coupons(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.strict_tenant().await;
    let user = tenant.user_token("shopper");
    let admin = tenant.admin_token();
    let customer = app.customer(&tenant, &user, "shopper@example.com").await;
    let cus = customer["stripe_customer_id"].as_str().unwrap().to_owned();
    let monthly = catalogue_price(&app, &tenant, Some("month")).await;
    let offered = app
        .stripe_post(
            &tenant,
            "/v1/coupons",
            &[("percent_off", "10"), ("duration", "once")],
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Only admins read or change it; the default is closed.
    let response = app
        .authed(Method::GET, "/stripe/policy", &tenant, &user)
        .send()
        .await
        .unwrap();
    assert_error(response, 403, "admin_required").await;
    let response = put_policy(&app, &tenant, &user, json!({"allow": ["amount"]})).await;
    assert_error(response, 403, "admin_required").await;
    let read = json_body(
        app.authed(Method::GET, "/stripe/policy", &tenant, &admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(read["data"]["attributes"]["allow"], json!([]));
    assert_eq!(
        read["data"]["attributes"]["choices"]
            .as_array()
            .unwrap()
            .len(),
        6
    );

    // Bad input changes nothing.
    let error = assert_error(
        put_policy(
            &app,
            &tenant,
            &admin,
            json!({"allow": ["amount", "everything"]}),
        )
        .await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(error["source"]["pointer"], "/policy/allow/1");
    let error = assert_error(
        put_policy(
            &app,
            &tenant,
            &admin,
            json!({"offered_coupons": ["bad id!"]}),
        )
        .await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(error["source"]["pointer"], "/policy/offered_coupons/0");
    // A NUL, or a URL past 2,048 characters: 422, never a database error.
    for (policy, pointer) in [
        (json!({"allow": ["amount\u{0}"]}), "/policy/allow/0"),
        (
            json!({"order_lookup_url": format!("https://shop.example.com/{}", "o".repeat(3000))}),
            "/policy/order_lookup_url",
        ),
    ] {
        let error = assert_error(
            put_policy(&app, &tenant, &admin, policy).await,
            422,
            "validation_error",
        )
        .await;
        assert_eq!(error["source"]["pointer"], pointer);
    }

    // An offered coupon is open to users, others are not.
    let saved = put_policy(&app, &tenant, &admin, json!({"offered_coupons": [offered]})).await;
    assert_eq!(saved.status().as_u16(), 200);
    let body = |coupon: &str| {
        json!({"subscription": {"customer_id": cus, "price_id": monthly,
            "card_token": "pm_card_visa", "coupon": coupon}})
    };
    let response = app
        .post_json("/stripe/subscriptions", &tenant, &user, &body(&offered))
        .await;
    assert_eq!(response.status().as_u16(), 201);
    refused(
        &app,
        &tenant,
        app.post_json(
            "/stripe/subscriptions",
            &tenant,
            &user,
            &body("SOMETHING_ELSE"),
        ),
        "/subscription/coupon",
    )
    .await;

    // Opening `amount` lets users name amounts; the lists left out are kept.
    let saved = json_body(
        put_policy(
            &app,
            &tenant,
            &admin,
            json!({"allow": ["amount", "refunds"]}),
        )
        .await,
    )
    .await;
    assert_eq!(
        saved["data"]["attributes"]["allow"],
        json!(["amount", "refunds"])
    );
    assert_eq!(
        saved["data"]["attributes"]["offered_coupons"],
        json!([offered])
    );
    let response = app
        .post_json(
            "/stripe/payments",
            &tenant,
            &user,
            &json!({"payment": {"amount": 700, "currency": "usd", "payment_method": "pm_card_visa"}}),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
    // Closing again takes effect at once.
    let saved = json_body(put_policy(&app, &tenant, &admin, json!({"allow": []})).await).await;
    assert_eq!(saved["data"]["attributes"]["allow"], json!([]));
    refused(
        &app,
        &tenant,
        app.post_json(
            "/stripe/payments",
            &tenant,
            &user,
            &json!({"payment": {"amount": 700, "currency": "usd"}}),
        ),
        "/payment/amount",
    )
    .await;
    // Another tenant's policy is its own.
    let other = app.strict_tenant().await;
    let read = json_body(
        app.authed(Method::GET, "/stripe/policy", &other, &other.admin_token())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(read["data"]["attributes"]["offered_coupons"], json!([]));
}

on_both_databases!(
    every_gated_choice_is_refused_to_a_user_and_open_to_an_admin,
    the_policy_opens_choices_and_offers_coupons,
);
