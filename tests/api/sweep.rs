//! Scenario 6 of the fault suite (issue 14): a cross-tenant sweep generated from the route
//! table. Tenant A holds one object of each kind; for every route with an id in its path,
//! tenant B's admin with A's ids gets 404 (never 403, never A's data, never a change), and a
//! user of A with another user's ids gets 404 wherever the route is scoped to users. A route
//! added to `http::ROUTES` is swept without touching this file, as long as the collection its
//! id follows is seeded below; otherwise the sweep fails until it is, or until the route is
//! listed in [`NOT_SWEPT`] with the reason.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestTenant, eventually, json_body, spawn_app};
use crate::on_both_databases;
use crate::receiver::receiving_endpoint;

/// Routes with ids that the sweep does not send another tenant's ids to, and why.
const NOT_SWEPT: &[(&str, &str, &str)] = &[
    (
        "post",
        "/stripe/{url_id}/webhook",
        "Stripe's receiver takes no tenant credentials: the url_id alone picks the endpoint, \
         and its signature decides (receiver tests: an unknown url_id is 404, another's \
         secret 400)",
    ),
    (
        "put",
        "/stripe/orders/{order_unique_id}",
        "an order id is the app's own name for its order: B's PUT records B's own order under \
         it (A's order is checked unchanged below, and B's GET of A's order is swept)",
    ),
];

/// Collections whose objects every user of the app reads (the catalogue): a user with
/// another user's ids is answered as for their own.
const SHARED_BY_THE_APP: &[&str] = &["products", "prices", "payment_links"];

/// Tenant A's objects, by the collection segment their id follows in a path.
struct Seeded {
    ids: BTreeMap<&'static str, String>,
}

impl Seeded {
    /// The path with A's ids in place of its parameters; `None` when a parameter follows a
    /// collection nothing was seeded for.
    fn fill(&self, template: &str) -> Result<String, String> {
        let mut previous = "";
        let mut filled = Vec::new();
        for segment in template.split('/') {
            if segment.starts_with('{') {
                let id = self.ids.get(previous).ok_or_else(|| {
                    format!(
                        "{template}: nothing of tenant A is seeded for {previous:?}: seed one in \
                         sweep.rs, or list the route in NOT_SWEPT with the reason"
                    )
                })?;
                filled.push(id.clone());
            } else {
                filled.push(segment.to_owned());
            }
            previous = segment;
        }
        Ok(filled.join("/"))
    }
}

/// A body that would pass validation on the route, so only the ownership check can refuse.
fn body(method: &str, template: &str) -> Option<Value> {
    let collection = template.split('/').nth(2).unwrap_or_default();
    Some(match (method, collection, template.rsplit('/').next()) {
        (_, _, Some("portal")) => json!({"portal": {"return_url": "https://app.example.com/"}}),
        (_, _, Some("confirm")) => json!({"payment": {"payment_method": "pm_card_visa"}}),
        (_, _, Some("secrets")) => json!({"secret": {"signing_secret": "whsec_sweep"}}),
        (_, _, Some("retry")) => json!({}),
        ("put", "customers", _) => json!({"customer": {"name": "Swept"}}),
        ("put", "subscriptions", _) => json!({"subscription": {"cancel_at_period_end": true}}),
        ("put", "products", _) => json!({"product": {"name": "Swept"}}),
        ("put", "prices", _) => json!({"price": {"nickname": "Swept"}}),
        ("put", "payment_links", _) => json!({"payment_link": {"active": false}}),
        ("put", "webhooks", _) => json!({"webhook": {"status": "disabled"}}),
        _ => return None,
    })
}

async fn send(
    app: &TestApp,
    tenant: &TestTenant,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
    let mut request = app.authed(method, path, tenant, token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, json_body(response).await)
}

async fn created(
    app: &TestApp,
    tenant: &TestTenant,
    token: &str,
    path: &str,
    body: Value,
) -> Value {
    let response = app.post_json(path, tenant, token, &body).await;
    let status = response.status().as_u16();
    let body = json_body(response).await;
    assert!(matches!(status, 200..=202), "{path}: {status} {body}");
    body["data"].clone()
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not text: {value}"))
        .to_owned()
}

/// One object of each kind for tenant A, owned by the user `alice` where objects have owners.
async fn seed(app: &TestApp, a: &TestTenant) -> Seeded {
    let admin = a.admin_token();
    let alice = a.user_token("alice");
    let endpoint = receiving_endpoint(app, a).await;
    let customer = app.customer(a, &alice, "alice@example.com").await;
    let cus = text(&customer["stripe_customer_id"]);
    let one_time = app.price(a, 1500, None).await;
    let monthly = app.price(a, 900, Some("month")).await;

    let session = created(
        app,
        a,
        &alice,
        "/stripe/sessions",
        json!({"session": {
        "customer_id": cus, "success_url": "https://app.example.com/ok",
        "cancel_url": "https://app.example.com/no",
        "line_items": [{"price_id": one_time, "quantity": 1}]}}),
    )
    .await;
    let payment = created(
        app,
        a,
        &alice,
        "/stripe/payments",
        json!({"payment": {
        "amount": 2500, "currency": "usd", "customer_id": cus, "payment_method": "pm_card_visa"}}),
    )
    .await;
    let card = created(
        app,
        a,
        &alice,
        "/stripe/cards",
        json!({"card": {
        "payment_method_id": "pm_card_visa", "customer_id": cus}}),
    )
    .await;
    let subscription = created(
        app,
        a,
        &alice,
        "/stripe/subscriptions",
        json!({"subscription": {
        "customer_id": cus, "price_id": monthly}}),
    )
    .await;
    // An order is addressed by the app's own id for it.
    let order = "order-a-1".to_owned();
    let response = app
        .put_json(
            &format!("/stripe/orders/{order}"),
            a,
            &admin,
            &json!({"order": {
            "amount": 700, "currency": "usd", "user_unique_id": "alice"}}),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
    let product = created(
        app,
        a,
        &admin,
        "/stripe/products",
        json!({"product": {"name": "Gold"}}),
    )
    .await;
    let price = created(
        app,
        a,
        &admin,
        "/stripe/prices",
        json!({"price": {
        "product_id": product["id"], "unit_amount": 1000, "currency": "usd"}}),
    )
    .await;
    let link = created(
        app,
        a,
        &admin,
        "/stripe/payment_links",
        json!({"payment_link": {
        "price_id": price["attributes"]["stripe_price_id"]}}),
    )
    .await;
    let job = created(app, a, &admin, "/stripe/sync/historical", json!({})).await;
    let job_path = format!("/stripe/sync/jobs/{}", text(&job["id"]));
    eventually(20, || async {
        let (_, body) = send(app, a, &admin, "get", &job_path, None).await;
        body["data"]["attributes"]["finished_at"].as_str().map(drop)
    })
    .await;
    // A delivered notification, as the worker leaves one (retrying it is a change).
    let notification = "ntf_sweep_a".to_owned();
    let (tenant_id, id) = (a.created.id.clone(), notification.clone());
    app.query(move |conn| {
        let at = chrono::Utc::now().naive_utc();
        sales_block::db::notifications::enqueue(
            conn,
            &[sales_block::db::notifications::NewNotification {
                id: id.clone(),
                tenant_id: &tenant_id,
                event_type: "payment.completed",
                source_event_id: &format!("evt_{id}"),
                payload: "{}".to_owned(),
                status: sales_block::db::notifications::FAILED,
                attempts: 3,
                next_attempt_at: at,
                created_at: at,
            }],
        )
    })
    .await;
    // The charge arrives with Stripe's events for the payment.
    let payment_id = text(&payment["id"]);
    let charge = eventually(20, || async {
        let (status, body) = send(
            app,
            a,
            &admin,
            "get",
            &format!("/stripe/charges?payment_id={payment_id}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body["data"][0]["id"].as_str().map(str::to_owned)
    })
    .await;

    let ids = BTreeMap::from([
        ("customers", text(&customer["unique_id"])),
        ("sessions", text(&session["id"])),
        ("payments", payment_id),
        ("charges", charge),
        ("orders", order),
        ("subscriptions", text(&subscription["id"])),
        ("cards", text(&card["id"])),
        ("products", text(&product["id"])),
        ("prices", text(&price["id"])),
        ("payment_links", text(&link["id"])),
        ("notifications", notification),
        ("webhooks", endpoint.url_id),
        ("jobs", text(&job["id"])),
    ]);
    Seeded { ids }
}

/// The routes to sweep, filled with A's ids.
fn swept(seeded: &Seeded) -> Vec<(&'static str, &'static str, String)> {
    let mut routes = Vec::new();
    let mut missing = Vec::new();
    for &(method, template) in sales_block::http::ROUTES {
        if !template.contains('{')
            || NOT_SWEPT
                .iter()
                .any(|(m, t, _)| (*m, *t) == (method, template))
        {
            continue;
        }
        match seeded.fill(template) {
            Ok(path) => routes.push((method, template, path)),
            Err(problem) => missing.push(problem),
        }
    }
    assert!(
        missing.is_empty(),
        "routes the sweep cannot cover: {missing:#?}"
    );
    routes
}

/// What A's admin reads of each of A's objects, and how many writes A's key made at Stripe.
async fn snapshot(app: &TestApp, a: &TestTenant, seeded: &Seeded) -> (Vec<(String, Value)>, usize) {
    let admin = a.admin_token();
    let mut reads = Vec::new();
    for &(method, template) in sales_block::http::ROUTES {
        if method != "get" || !template.contains('{') {
            continue;
        }
        let Ok(path) = seeded.fill(template) else {
            continue;
        };
        let (status, mut body) = send(app, a, &admin, "get", &path, None).await;
        assert_eq!(status, 200, "A reads its own {path}: {body}");
        // Touched by reads that refresh from Stripe and by Stripe's late events alone.
        if let Some(attributes) = body["data"]["attributes"].as_object_mut() {
            attributes.remove("updated_at");
        }
        reads.push((path, body));
    }
    (reads, app.stripe_writes(a).await)
}

/// Another tenant's admin with A's ids: 404 on every route, and A's objects unchanged.
async fn another_tenants_ids_are_not_found_on_any_route(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.tenant().await;
    let b = app.tenant().await;
    let seeded = seed(&app, &a).await;
    let before = snapshot(&app, &a, &seeded).await;

    let b_admin = b.admin_token();
    let mut wrong = Vec::new();
    for (method, template, path) in swept(&seeded) {
        let (status, body) = send(&app, &b, &b_admin, method, &path, body(method, template)).await;
        if status != 404 || body.get("data").is_some() {
            wrong.push(format!("{method} {path}: {status} {body}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "tenant B reached tenant A's objects: {wrong:#?}"
    );

    let after = snapshot(&app, &a, &seeded).await;
    assert_eq!(before.1, after.1, "A's Stripe account was written to");
    for ((path, was), (_, now)) in before.0.iter().zip(&after.0) {
        assert_eq!(was, now, "{path} changed");
    }
    // The orders route not swept: B's PUT under A's order id is B's own order.
    let (status, _) = send(
        &app,
        &b,
        &b_admin,
        "put",
        "/stripe/orders/order-a-1",
        Some(json!({"order": {"amount": 1, "currency": "eur"}})),
    )
    .await;
    assert_eq!(status, 201, "B's own order");
    let (_, order) = send(
        &app,
        &a,
        &a.admin_token(),
        "get",
        "/stripe/orders/order-a-1",
        None,
    )
    .await;
    assert_eq!(order["data"]["attributes"]["amount"], 700, "{order}");
}

/// A user of the same app with another user's ids: 404 wherever the route is scoped to
/// users; admin-only routes refuse a user with 403 `admin_required` whatever the id.
async fn another_users_ids_are_not_found_on_user_routes(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.tenant().await;
    let seeded = seed(&app, &a).await;
    let before = snapshot(&app, &a, &seeded).await;

    let mallory = a.user_token("mallory");
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (method, template, path) in swept(&seeded) {
        let collection = template.split('/').nth(2).unwrap_or_default();
        if SHARED_BY_THE_APP.contains(&collection) {
            continue;
        }
        let (status, body) = send(&app, &a, &mallory, method, &path, body(method, template)).await;
        let admin_only = status == 403 && body["errors"][0]["code"] == "admin_required";
        if !(status == 404 || admin_only) || body.get("data").is_some() {
            wrong.push(format!("{method} {path}: {status} {body}"));
        }
        checked += usize::from(status == 404);
    }
    assert!(
        wrong.is_empty(),
        "a user reached another user's objects: {wrong:#?}"
    );
    assert!(checked >= 10, "only {checked} user-scoped answers were 404");

    let after = snapshot(&app, &a, &seeded).await;
    assert_eq!(before.1, after.1, "A's Stripe account was written to");
    for ((path, was), (_, now)) in before.0.iter().zip(&after.0) {
        assert_eq!(was, now, "{path} changed");
    }
}

on_both_databases!(
    another_tenants_ids_are_not_found_on_any_route,
    another_users_ids_are_not_found_on_user_routes,
);

#[test]
fn a_route_on_a_collection_nothing_is_seeded_for_is_not_silently_skipped() {
    let seeded = Seeded {
        ids: BTreeMap::from([("customers", "c1".to_owned())]),
    };
    assert_eq!(
        seeded.fill("/stripe/customers/{unique_id}/portal"),
        Ok("/stripe/customers/c1/portal".to_owned())
    );
    let problem = seeded.fill("/stripe/widgets/{widget_id}").unwrap_err();
    assert!(problem.contains("NOT_SWEPT"), "{problem}");
}
