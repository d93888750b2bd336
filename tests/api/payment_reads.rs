//! GET /stripe/payments: the mirror, filtered and paged, as each caller may see it.

use diesel::prelude::*;
use reqwest::Method;
use sales_block::db::schema::payments;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestTenant, assert_error, json_body, spawn_app};
use crate::on_both_databases;

async fn pay(app: &TestApp, tenant: &TestTenant, token: &str, payment: Value) -> String {
    let response = app
        .post_json(
            "/stripe/payments",
            tenant,
            token,
            &json!({ "payment": payment }),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
    json_body(response).await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn list(app: &TestApp, tenant: &TestTenant, token: &str, query: &str) -> Value {
    let response = app
        .authed(
            Method::GET,
            &format!("/stripe/payments{query}"),
            tenant,
            token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "{query}");
    json_body(response).await
}

/// Stripe's `created` has one-second resolution: spread the payments out so "newest first" is
/// one order.
async fn created_in_order(app: &TestApp, oldest_first: &[&String]) {
    let start = chrono::Utc::now().naive_utc() - chrono::TimeDelta::minutes(10);
    for (i, id) in oldest_first.iter().enumerate() {
        let (id, at) = ((*id).clone(), start + chrono::TimeDelta::seconds(i as i64));
        app.query(move |conn| {
            diesel::update(payments::table.find(id))
                .set(payments::created_at.eq(at))
                .execute(conn)
        })
        .await;
    }
}

fn ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn payments_are_listed_newest_first_by_who_may_see_them(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let (alice, bob, admin) = (
        tenant.user_token("alice"),
        tenant.user_token("bob"),
        tenant.admin_token(),
    );
    let customer = app.customer(&tenant, &alice, "alice@example.com").await;
    let cus = customer["stripe_customer_id"].as_str().unwrap().to_owned();
    let a1 = pay(
        &app,
        &tenant,
        &alice,
        json!({"amount": 1000, "currency": "usd",
        "customer_id": cus, "payment_method": "pm_card_visa"}),
    )
    .await;
    let a2 = pay(
        &app,
        &tenant,
        &alice,
        json!({"amount": 2500, "currency": "eur"}),
    )
    .await;
    let b1 = pay(
        &app,
        &tenant,
        &bob,
        json!({"amount": 5000, "currency": "usd",
        "payment_method": "pm_card_visa"}),
    )
    .await;
    // An admin charges alice's customer: the payment is hers to see too.
    let c1 = pay(
        &app,
        &tenant,
        &admin,
        json!({"amount": 700, "currency": "usd",
        "customer_id": customer["unique_id"]}),
    )
    .await;

    created_in_order(&app, &[&a1, &a2, &b1, &c1]).await;
    let all = list(&app, &tenant, &admin, "").await;
    assert_eq!(
        ids(&all),
        vec![c1.clone(), b1.clone(), a2.clone(), a1.clone()]
    );
    assert_eq!(
        all["meta"],
        json!({"current_page": 1, "per_page": 20, "total_count": 4, "total_pages": 1,
            "totalPages": 1, "totalRecords": 4, "has_more": false})
    );
    let first = &all["data"][3];
    assert_eq!(first["type"], "stripe_payment");
    assert_eq!(first["attributes"]["status"], "succeeded");
    assert_eq!(first["attributes"]["customer"], cus.as_str());
    assert_eq!(
        first["attributes"]["client_secret"],
        Value::Null,
        "never listed"
    );

    assert_eq!(
        ids(&list(&app, &tenant, &alice, "").await),
        vec![c1.clone(), a2.clone(), a1.clone()]
    );
    assert_eq!(ids(&list(&app, &tenant, &bob, "").await), vec![b1.clone()]);
    let other = app.tenant().await;
    assert!(ids(&list(&app, &other, &other.admin_token(), "").await).is_empty());

    let page = list(&app, &tenant, &admin, "?records=3&page=2").await;
    assert_eq!(ids(&page), vec![a1.clone()]);
    assert_eq!(page["meta"]["total_pages"], 2);
    assert_eq!(page["meta"]["current_page"], 2);
}

async fn filters_narrow_the_list(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let admin = tenant.admin_token();
    let customer = app.customer(&tenant, &admin, "f@example.com").await;
    let paid = pay(
        &app,
        &tenant,
        &admin,
        json!({"amount": 1000, "currency": "usd",
        "customer_id": customer["stripe_customer_id"], "payment_method": "pm_card_visa"}),
    )
    .await;
    let open = pay(
        &app,
        &tenant,
        &admin,
        json!({"amount": 2500, "currency": "eur"}),
    )
    .await;
    let big = pay(
        &app,
        &tenant,
        &admin,
        json!({"amount": 90_000, "currency": "usd",
        "payment_method": "pm_card_mastercard"}),
    )
    .await;
    created_in_order(&app, &[&paid, &open, &big]).await;
    let now = chrono::Utc::now();
    let hour_ago = (now - chrono::TimeDelta::hours(1)).timestamp();
    let in_an_hour = (now + chrono::TimeDelta::hours(1)).to_rfc3339();
    let cases: Vec<(String, Vec<&String>)> = vec![
        ("?status=succeeded".into(), vec![&big, &paid]),
        ("?status=completed".into(), vec![&big, &paid]),
        ("?status=requires_payment_method".into(), vec![&open]),
        ("?status=failed".into(), vec![&open]),
        ("?status=pending".into(), vec![]),
        (
            "?status=succeeded,requires_payment_method".into(),
            vec![&big, &open, &paid],
        ),
        ("?currency=EUR".into(), vec![&open]),
        ("?currency=usd&min_amount=5000".into(), vec![&big]),
        (
            "?min_amount=1000&max_amount=2500".into(),
            vec![&open, &paid],
        ),
        ("?max_amount=999".into(), vec![]),
        (
            format!("?customer_id={}", customer["unique_id"].as_str().unwrap()),
            vec![&paid],
        ),
        (
            format!(
                "?customer_id={}",
                customer["stripe_customer_id"].as_str().unwrap()
            ),
            vec![&paid],
        ),
        ("?customer_id=cus_nobody".into(), vec![]),
        (format!("?since={hour_ago}"), vec![&big, &open, &paid]),
        (format!("?since={}", hour_ago + 7200), vec![]),
        (
            format!("?until={}", urlencode(&in_an_hour)),
            vec![&big, &open, &paid],
        ),
        // An unencoded `+` offset arrives as a space and is still read.
        (format!("?until={in_an_hour}"), vec![&big, &open, &paid]),
        ("?until=2020-01-01T00:00:00Z".into(), vec![]),
        (
            format!(
                "?since=2020-01-01T00:00:00Z&until={}&status=succeeded&currency=usd&max_amount=1000",
                hour_ago + 7200
            ),
            vec![&paid],
        ),
    ];
    for (query, expected) in cases {
        let body = list(&app, &tenant, &admin, &query).await;
        let expected: Vec<String> = expected.into_iter().cloned().collect();
        assert_eq!(ids(&body), expected, "{query}");
        assert_eq!(body["meta"]["total_count"], expected.len(), "{query}");
    }
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

async fn bad_filters_are_422_naming_the_parameter(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("u");
    for (query, parameter) in [
        ("?status=paid", "status"),
        ("?status=succeeded,nope", "status"),
        ("?currency=dollars", "currency"),
        ("?min_amount=-1", "min_amount"),
        ("?min_amount=ten", "min_amount"),
        ("?max_amount=1.5", "max_amount"),
        ("?min_amount=500&max_amount=100", "max_amount"),
        ("?since=yesterday", "since"),
        ("?until=2025-13-01T00:00:00Z", "until"),
        (
            "?since=2025-06-02T00:00:00Z&until=2025-06-01T00:00:00Z",
            "until",
        ),
    ] {
        let response = app
            .authed(
                Method::GET,
                &format!("/stripe/payments{query}"),
                &tenant,
                &token,
            )
            .send()
            .await
            .unwrap();
        let error = assert_error(response, 422, "validation_error").await;
        assert_eq!(error["source"]["parameter"], parameter, "{query}");
    }
    for (query, parameter) in [("?page=0", "page"), ("?records=500", "records")] {
        let response = app
            .authed(
                Method::GET,
                &format!("/stripe/payments{query}"),
                &tenant,
                &token,
            )
            .send()
            .await
            .unwrap();
        let error = assert_error(response, 400, "invalid_query").await;
        assert_eq!(error["source"]["parameter"], parameter, "{query}");
    }
}

on_both_databases!(
    payments_are_listed_newest_first_by_who_may_see_them,
    filters_narrow_the_list,
    bad_filters_are_422_naming_the_parameter,
);
