//! The catalogue: products and prices made by admins at Stripe and mirrored, read by every
//! caller; payment links for a price.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, assert_error, json_body, spawn_app};
use crate::on_both_databases;

fn data(body: &Value) -> Vec<Value> {
    body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|d| d["attributes"].clone())
        .collect()
}

async fn admins_build_the_catalogue_everyone_reads_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let admin = tenant.admin_token();
    let user = tenant.user_token("reader");

    let product = json!({"product": {"name": "Gold plan", "description": "The best", "metadata": {"tier": "gold"}}});
    assert_error(
        app.post_json("/stripe/products", &tenant, &user, &product)
            .await,
        403,
        "admin_required",
    )
    .await;
    let created = app
        .post_json("/stripe/products", &tenant, &admin, &product)
        .await;
    assert_eq!(created.status().as_u16(), 201);
    let created = json_body(created).await["data"].clone();
    let prod = created["attributes"]["stripe_product_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.stripe_get(&tenant, &format!("/v1/products/{prod}"))
            .await["name"],
        "Gold plan"
    );
    assert_eq!(created["attributes"]["metadata"], json!({"tier": "gold"}));

    let monthly = json_body(
        app.post_json(
            "/stripe/prices",
            &tenant,
            &admin,
            &json!({"price": {"product_id": created["id"],
            "unit_amount": 2900, "currency": "EUR", "interval": "month", "interval_count": 3}}),
        )
        .await,
    )
    .await["data"]["attributes"]
        .clone();
    assert_eq!(
        (
            monthly["type"].as_str(),
            monthly["interval"].as_str(),
            monthly["interval_count"].as_i64(),
            monthly["currency"].as_str()
        ),
        (Some("recurring"), Some("month"), Some(3), Some("eur")),
        "{monthly}"
    );
    let at_stripe = app
        .stripe_get(
            &tenant,
            &format!(
                "/v1/prices/{}",
                monthly["stripe_price_id"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(at_stripe["recurring"]["interval_count"], 3);
    let once = json_body(
        app.post_json(
            "/stripe/prices",
            &tenant,
            &admin,
            &json!({"price": {"product_id": prod,
            "unit_amount": 9900, "currency": "eur"}}),
        )
        .await,
    )
    .await["data"]["attributes"]
        .clone();
    assert_eq!(
        (once["type"].as_str(), once["interval"].as_str()),
        (Some("one_time"), None)
    );

    // Everyone reads the catalogue.
    let products = json_body(
        app.authed(Method::GET, "/stripe/products", &tenant, &user)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        data(&products)
            .iter()
            .map(|p| p["name"].clone())
            .collect::<Vec<_>>(),
        vec![json!("Gold plan")]
    );
    let prices = json_body(
        app.authed(
            Method::GET,
            &format!("/stripe/prices?product_id={prod}"),
            &tenant,
            &user,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    let mut amounts: Vec<i64> = data(&prices)
        .iter()
        .map(|p| p["unit_amount"].as_i64().unwrap())
        .collect();
    amounts.sort();
    assert_eq!(amounts, vec![2900, 9900]);

    // A payment link for the one-time price: the buyer's page answers.
    let link = app
        .post_json(
            "/stripe/payment_links",
            &tenant,
            &user,
            &json!({"payment_link": {"price_id": once["stripe_price_id"], "quantity": 2}}),
        )
        .await;
    assert_eq!(link.status().as_u16(), 201);
    let link = json_body(link).await["data"]["attributes"].clone();
    assert_eq!(link["quantity"], 2);
    let page = reqwest::get(link["url"].as_str().unwrap()).await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let plink = link["stripe_payment_link_id"].as_str().unwrap();
    let at_stripe = app
        .stripe_get(&tenant, &format!("/v1/payment_links/{plink}/line_items"))
        .await;
    assert_eq!(at_stripe["data"][0]["quantity"], 2, "{at_stripe}");
}

async fn bad_catalogue_requests_get_clear_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let admin = tenant.admin_token();
    for (path, body, pointer) in [
        (
            "/stripe/products",
            json!({"product": {"description": "no name"}}),
            "/product/name",
        ),
        (
            "/stripe/prices",
            json!({"price": {"product_id": "prod_x", "currency": "usd"}}),
            "/price/unit_amount",
        ),
        (
            "/stripe/prices",
            json!({"price": {"product_id": "prod_x", "unit_amount": 100, "currency": "usd", "interval": "fortnight"}}),
            "/price/interval",
        ),
        (
            "/stripe/prices",
            json!({"price": {"product_id": "prod_x", "unit_amount": 100, "currency": "usd", "interval": "month", "interval_count": 37}}),
            "/price/interval_count",
        ),
        (
            "/stripe/payment_links",
            json!({"payment_link": {"price_id": "not-a-price"}}),
            "/payment_link/price_id",
        ),
        (
            "/stripe/payment_links",
            json!({"payment_link": {"price_id": "price_1", "quantity": 0}}),
            "/payment_link/quantity",
        ),
    ] {
        let error = assert_error(
            app.post_json(path, &tenant, &admin, &body).await,
            422,
            "validation_error",
        )
        .await;
        assert_eq!(error["source"]["pointer"], pointer, "{error}");
    }
    assert_error(
        app.post_json("/stripe/prices", &tenant, &admin,
            &json!({"price": {"product_id": "prod_unknown", "unit_amount": 100, "currency": "usd"}})).await,
        404,
        "not_found",
    )
    .await;
    assert!(app.stripe_requests(&tenant).await.is_empty());
    // Stripe decides whether a price exists.
    let error = assert_error(
        app.post_json(
            "/stripe/payment_links",
            &tenant,
            &admin,
            &json!({"payment_link": {"price_id": "price_missing"}}),
        )
        .await,
        422,
        "resource_missing",
    )
    .await;
    assert!(
        error["detail"].as_str().unwrap().contains("price_missing"),
        "{error}"
    );
}

on_both_databases!(
    admins_build_the_catalogue_everyone_reads_it,
    bad_catalogue_requests_get_clear_errors,
);
