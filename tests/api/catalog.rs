//! The catalogue: products and prices made and changed by admins at Stripe and mirrored,
//! read by every caller, archived out of the default lists; payment links for a price, kept
//! in the mirror and deactivated by admins or by Stripe's events.

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, TestTenant, assert_error, eventually, json_body, spawn_app,
};
use crate::on_both_databases;
use crate::receiver::{deliver, endpoint, event, events_stored, receiving_endpoint};

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

async fn get(app: &TestApp, tenant: &TestTenant, token: &str, path: &str) -> Response {
    app.authed(Method::GET, path, tenant, token)
        .send()
        .await
        .expect("request")
}

async fn put(
    app: &TestApp,
    tenant: &TestTenant,
    token: &str,
    path: &str,
    key: Option<&str>,
    body: &Value,
) -> Response {
    let mut request = app.authed(Method::PUT, path, tenant, token).json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.expect("request")
}

/// The attributes of a 200 (or 201) answer.
async fn ok(response: Response) -> Value {
    let status = response.status().as_u16();
    let body = json_body(response).await;
    assert!(status == 200 || status == 201, "{status} {body}");
    body["data"]["attributes"].clone()
}

/// The `field` of every row of a list.
async fn listed(
    app: &TestApp,
    tenant: &TestTenant,
    token: &str,
    path: &str,
    field: &str,
) -> Vec<Value> {
    let body = json_body(get(app, tenant, token, path).await).await;
    data(&body).iter().map(|row| row[field].clone()).collect()
}

/// The tenant's Stripe requests with this method and path.
async fn stripe_calls(app: &TestApp, tenant: &TestTenant, method: &str, path: &str) -> usize {
    app.stripe_params(tenant, method, path).await.len()
}

/// A product and a one-time price of it, made through our API by an admin.
async fn product_and_price(app: &TestApp, tenant: &TestTenant) -> (Value, Value) {
    let admin = tenant.admin_token();
    let product = ok(app
        .post_json(
            "/stripe/products",
            tenant,
            &admin,
            &json!({"product": {"name": "Gold", "description": "The best", "metadata": {"tier": "gold"}}}),
        )
        .await)
    .await;
    let price = ok(app
        .post_json(
            "/stripe/prices",
            tenant,
            &admin,
            &json!({"price": {"product_id": product["stripe_product_id"], "unit_amount": 1000, "currency": "usd", "nickname": "Launch"}}),
        )
        .await)
    .await;
    (product, price)
}

async fn products_and_prices_are_read_by_id_and_changed_by_admins(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let admin = tenant.admin_token();
    let user = tenant.user_token("reader");
    let (product, price) = product_and_price(&app, &tenant).await;
    let prod = product["stripe_product_id"].as_str().unwrap().to_owned();
    let price_id = price["stripe_price_id"].as_str().unwrap().to_owned();

    // Everyone of the app reads one by either id.
    for id in [&prod, product["unique_id"].as_str().unwrap()] {
        let read = ok(get(&app, &tenant, &user, &format!("/stripe/products/{id}")).await).await;
        assert_eq!(
            (read["name"].as_str(), read["stripe_product_id"].as_str()),
            (Some("Gold"), Some(prod.as_str()))
        );
    }
    for id in [&price_id, price["unique_id"].as_str().unwrap()] {
        let read = ok(get(&app, &tenant, &user, &format!("/stripe/prices/{id}")).await).await;
        assert_eq!(
            (read["unit_amount"].as_i64(), read["nickname"].as_str()),
            (Some(1000), Some("Launch"))
        );
    }
    assert_error(
        get(&app, &tenant, &user, "/stripe/products/prod_nothere").await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        get(&app, &tenant, &user, "/stripe/prices/price_nothere").await,
        404,
        "not_found",
    )
    .await;

    // Only admins change them; a user's attempt reaches neither Stripe nor the mirror.
    let rename = json!({"product": {"name": "Platinum"}});
    assert_error(
        put(
            &app,
            &tenant,
            &user,
            &format!("/stripe/products/{prod}"),
            None,
            &rename,
        )
        .await,
        403,
        "admin_required",
    )
    .await;
    assert_error(
        put(
            &app,
            &tenant,
            &user,
            &format!("/stripe/prices/{price_id}"),
            None,
            &json!({"price": {"nickname": "Mine"}}),
        )
        .await,
        403,
        "admin_required",
    )
    .await;
    assert_eq!(
        stripe_calls(&app, &tenant, "POST", &format!("/v1/products/{prod}")).await,
        0
    );
    assert_eq!(
        stripe_calls(&app, &tenant, "POST", &format!("/v1/prices/{price_id}")).await,
        0
    );

    // An admin's change is made at Stripe and mirrored; a retry with the key replays it.
    let change = json!({"product": {"name": "Platinum", "description": "", "metadata": {"tier": "platinum"}}});
    let path = format!(
        "/stripe/products/{}",
        product["unique_id"].as_str().unwrap()
    );
    let changed = put(&app, &tenant, &admin, &path, Some("rename-1"), &change).await;
    assert_eq!(changed.status().as_u16(), 200);
    let changed = json_body(changed).await;
    let again = put(&app, &tenant, &admin, &path, Some("rename-1"), &change).await;
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    assert_eq!(json_body(again).await, changed);
    let changed = changed["data"]["attributes"].clone();
    assert_eq!(
        (
            changed["name"].as_str(),
            changed["description"].as_str(),
            changed["metadata"].clone()
        ),
        (Some("Platinum"), None, json!({"tier": "platinum"})),
        "{changed}"
    );
    assert_eq!(
        stripe_calls(&app, &tenant, "POST", &format!("/v1/products/{prod}")).await,
        1
    );
    let at_stripe = app
        .stripe_get(&tenant, &format!("/v1/products/{prod}"))
        .await;
    assert_eq!(
        (
            at_stripe["name"].as_str(),
            at_stripe["description"].as_str()
        ),
        (Some("Platinum"), None)
    );
    let read = ok(get(&app, &tenant, &user, &format!("/stripe/products/{prod}")).await).await;
    assert_eq!(read["name"], "Platinum");

    let price_path = format!("/stripe/prices/{price_id}");
    let renamed = ok(put(
        &app,
        &tenant,
        &admin,
        &price_path,
        Some("nick-1"),
        &json!({"price": {"nickname": "Spring", "metadata": {"season": "spring"}}}),
    )
    .await)
    .await;
    assert_eq!(
        (
            renamed["nickname"].as_str(),
            renamed["metadata"]["season"].as_str()
        ),
        (Some("Spring"), Some("spring"))
    );
    assert_eq!(
        app.stripe_get(&tenant, &format!("/v1/prices/{price_id}"))
            .await["nickname"],
        "Spring"
    );

    // Nothing to change, or a bad value: 422 before Stripe.
    let error = assert_error(
        put(&app, &tenant, &admin, &path, None, &json!({"product": {}})).await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(error["source"]["pointer"], "/product");
    let error = assert_error(
        put(
            &app,
            &tenant,
            &admin,
            &path,
            None,
            &json!({"product": {"name": " "}}),
        )
        .await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(error["source"]["pointer"], "/product/name");
    let error = assert_error(
        put(
            &app,
            &tenant,
            &admin,
            &path,
            None,
            &json!({"product": {"active": "no"}}),
        )
        .await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(error["source"]["pointer"], "/product/active");
    assert_eq!(
        stripe_calls(&app, &tenant, "POST", &format!("/v1/products/{prod}")).await,
        1
    );
}

async fn a_price_amount_never_changes(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let admin = tenant.admin_token();
    let (_, price) = product_and_price(&app, &tenant).await;
    let price_id = price["stripe_price_id"].as_str().unwrap().to_owned();
    let path = format!("/stripe/prices/{price_id}");
    for (body, pointer) in [
        (
            json!({"price": {"unit_amount": 5000}}),
            "/price/unit_amount",
        ),
        (
            json!({"price": {"nickname": "Dearer", "unit_amount": 5000}}),
            "/price/unit_amount",
        ),
        (
            json!({"price": {"currency": "eur", "active": true}}),
            "/price/currency",
        ),
        (json!({"price": {"interval": "month"}}), "/price/interval"),
    ] {
        let error = assert_error(
            put(&app, &tenant, &admin, &path, Some("dearer"), &body).await,
            422,
            "price_immutable",
        )
        .await;
        assert_eq!(error["source"]["pointer"], pointer, "{error}");
        assert!(
            error["detail"].as_str().unwrap().contains("new price"),
            "{error}"
        );
    }
    // Nothing changed at Stripe or in the mirror.
    assert_eq!(
        stripe_calls(&app, &tenant, "POST", &format!("/v1/prices/{price_id}")).await,
        0
    );
    let at_stripe = app
        .stripe_get(&tenant, &format!("/v1/prices/{price_id}"))
        .await;
    assert_eq!(
        (
            at_stripe["unit_amount"].as_i64(),
            at_stripe["nickname"].as_str()
        ),
        (Some(1000), Some("Launch"))
    );
    let mirrored = ok(get(&app, &tenant, &admin, &path).await).await;
    assert_eq!(
        (
            mirrored["unit_amount"].as_i64(),
            mirrored["currency"].as_str(),
            mirrored["nickname"].as_str(),
            mirrored["updated_at"].clone()
        ),
        (
            Some(1000),
            Some("usd"),
            Some("Launch"),
            price["updated_at"].clone()
        )
    );
}

async fn another_apps_catalogue_is_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let other = app.tenant().await;
    let other_admin = other.admin_token();
    let (product, price) = product_and_price(&app, &tenant).await;
    let link = ok(app
        .post_json(
            "/stripe/payment_links",
            &tenant,
            &tenant.admin_token(),
            &json!({"payment_link": {"price_id": price["stripe_price_id"]}}),
        )
        .await)
    .await;
    for (path, body) in [
        (
            format!(
                "/stripe/products/{}",
                product["stripe_product_id"].as_str().unwrap()
            ),
            json!({"product": {"active": false}}),
        ),
        (
            format!(
                "/stripe/products/{}",
                product["unique_id"].as_str().unwrap()
            ),
            json!({"product": {"active": false}}),
        ),
        (
            format!(
                "/stripe/prices/{}",
                price["stripe_price_id"].as_str().unwrap()
            ),
            json!({"price": {"active": false}}),
        ),
        (
            format!("/stripe/prices/{}", price["unique_id"].as_str().unwrap()),
            json!({"price": {"active": false}}),
        ),
        (
            format!(
                "/stripe/payment_links/{}",
                link["stripe_payment_link_id"].as_str().unwrap()
            ),
            json!({"payment_link": {"active": false}}),
        ),
        (
            format!(
                "/stripe/payment_links/{}",
                link["unique_id"].as_str().unwrap()
            ),
            json!({"payment_link": {"active": false}}),
        ),
    ] {
        assert_error(
            get(&app, &other, &other_admin, &path).await,
            404,
            "not_found",
        )
        .await;
        assert_error(
            put(&app, &other, &other_admin, &path, None, &body).await,
            404,
            "not_found",
        )
        .await;
    }
    assert!(app.stripe_requests(&other).await.is_empty());
    assert!(
        listed(
            &app,
            &other,
            &other_admin,
            "/stripe/payment_links?active=all",
            "url"
        )
        .await
        .is_empty()
    );
    // Still active at home.
    let home = ok(get(
        &app,
        &tenant,
        &tenant.admin_token(),
        &format!(
            "/stripe/products/{}",
            product["unique_id"].as_str().unwrap()
        ),
    )
    .await)
    .await;
    assert_eq!(home["active"], true);
}

async fn archived_products_and_prices_leave_the_default_lists(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let admin = tenant.admin_token();
    let user = tenant.user_token("reader");
    let (kept, _) = product_and_price(&app, &tenant).await;
    let (archived, price) = product_and_price(&app, &tenant).await;
    let prod = archived["stripe_product_id"].as_str().unwrap().to_owned();
    let price_id = price["stripe_price_id"].as_str().unwrap().to_owned();

    let off = ok(put(
        &app,
        &tenant,
        &admin,
        &format!("/stripe/products/{prod}"),
        None,
        &json!({"product": {"active": false}}),
    )
    .await)
    .await;
    assert_eq!(off["active"], false);
    assert_eq!(
        app.stripe_get(&tenant, &format!("/v1/products/{prod}"))
            .await["active"],
        false
    );
    let ids = |values: Vec<Value>| {
        values
            .into_iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let kept_id = kept["stripe_product_id"].as_str().unwrap().to_owned();
    assert_eq!(
        ids(listed(
            &app,
            &tenant,
            &user,
            "/stripe/products",
            "stripe_product_id"
        )
        .await),
        vec![kept_id.clone()]
    );
    assert_eq!(
        ids(listed(
            &app,
            &tenant,
            &user,
            "/stripe/products?active=true",
            "stripe_product_id"
        )
        .await),
        vec![kept_id.clone()]
    );
    assert_eq!(
        ids(listed(
            &app,
            &tenant,
            &user,
            "/stripe/products?active=false",
            "stripe_product_id"
        )
        .await),
        vec![prod.clone()]
    );
    let mut all = ids(listed(
        &app,
        &tenant,
        &user,
        "/stripe/products?active=all",
        "stripe_product_id",
    )
    .await);
    all.sort();
    let mut both = vec![kept_id, prod.clone()];
    both.sort();
    assert_eq!(all, both);
    let meta =
        json_body(get(&app, &tenant, &user, "/stripe/products?active=false").await).await["meta"]
            .clone();
    assert_eq!(meta["total_count"], 1, "{meta}");
    // Still read by id, archived.
    assert_eq!(
        ok(get(&app, &tenant, &user, &format!("/stripe/products/{prod}")).await).await["active"],
        false
    );

    // A price archived: out of the default list, and no longer sold to users.
    ok(put(
        &app,
        &tenant,
        &admin,
        &format!("/stripe/prices/{price_id}"),
        None,
        &json!({"price": {"active": false}}),
    )
    .await)
    .await;
    let prices = ids(listed(&app, &tenant, &user, "/stripe/prices", "stripe_price_id").await);
    assert_eq!(prices.len(), 1);
    assert!(!prices.contains(&price_id));
    assert_eq!(
        ids(listed(
            &app,
            &tenant,
            &user,
            "/stripe/prices?active=false",
            "stripe_price_id"
        )
        .await),
        vec![price_id.clone()]
    );
    assert_eq!(
        ids(listed(
            &app,
            &tenant,
            &user,
            &format!("/stripe/prices?product_id={prod}&active=all"),
            "stripe_price_id"
        )
        .await),
        vec![price_id.clone()]
    );
    assert_eq!(
        app.stripe_get(&tenant, &format!("/v1/prices/{price_id}"))
            .await["active"],
        false
    );

    // Back again.
    ok(put(
        &app,
        &tenant,
        &admin,
        &format!("/stripe/products/{prod}"),
        None,
        &json!({"product": {"active": true}}),
    )
    .await)
    .await;
    assert_eq!(
        listed(&app, &tenant, &user, "/stripe/products", "name")
            .await
            .len(),
        2
    );

    let error = assert_error(
        get(&app, &tenant, &user, "/stripe/products?active=maybe").await,
        400,
        "invalid_query",
    )
    .await;
    assert_eq!(error["source"]["parameter"], "active");
    assert_error(
        get(&app, &tenant, &user, "/stripe/payment_links?active=1").await,
        400,
        "invalid_query",
    )
    .await;
}

async fn payment_links_are_kept_listed_and_deactivated(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let admin = tenant.admin_token();
    let user = tenant.user_token("seller");
    let (_, price) = product_and_price(&app, &tenant).await;
    let price_id = price["stripe_price_id"].as_str().unwrap().to_owned();
    let mut links = Vec::new();
    for quantity in 1..=3 {
        let link = ok(app
            .post_json("/stripe/payment_links", &tenant, &user,
                &json!({"payment_link": {"price_id": price_id, "quantity": quantity, "metadata": {"n": quantity}}}))
            .await)
        .await;
        assert_eq!(
            (
                link["price_id"].as_str(),
                link["quantity"].as_i64(),
                link["active"].as_bool()
            ),
            (Some(price_id.as_str()), Some(quantity), Some(true))
        );
        links.push(link);
    }
    let plink = links[0]["stripe_payment_link_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let unique = links[0]["unique_id"].as_str().unwrap().to_owned();

    // Kept: read by either id, listed newest first with totals, paged both ways.
    for id in [&plink, &unique] {
        let read =
            ok(get(&app, &tenant, &user, &format!("/stripe/payment_links/{id}")).await).await;
        assert_eq!(
            (
                read["unique_id"].as_str(),
                read["url"].clone(),
                read["metadata"].clone()
            ),
            (
                Some(unique.as_str()),
                links[0]["url"].clone(),
                json!({"n": "1"})
            )
        );
    }
    let body = json_body(get(&app, &tenant, &user, "/stripe/payment_links").await).await;
    assert_eq!(
        data(&body)
            .iter()
            .map(|l| l["quantity"].clone())
            .collect::<Vec<_>>(),
        vec![json!(3), json!(2), json!(1)]
    );
    assert_eq!(
        (
            body["meta"]["total_count"].as_i64(),
            body["data"][0]["id"].clone()
        ),
        (Some(3), links[2]["unique_id"].clone())
    );
    let first = json_body(get(&app, &tenant, &user, "/stripe/payment_links?limit=2").await).await;
    assert_eq!(
        (data(&first).len(), first["meta"]["has_more"].as_bool()),
        (2, Some(true))
    );
    let after = first["data"][1]["id"].as_str().unwrap();
    let rest = json_body(
        get(
            &app,
            &tenant,
            &user,
            &format!("/stripe/payment_links?limit=2&starting_after={after}"),
        )
        .await,
    )
    .await;
    assert_eq!(
        data(&rest)
            .iter()
            .map(|l| l["unique_id"].clone())
            .collect::<Vec<_>>(),
        vec![json!(unique.clone())]
    );
    assert_eq!(rest["meta"]["has_more"], false);
    assert_error(
        get(&app, &tenant, &user, "/stripe/payment_links/plink_nothere").await,
        404,
        "not_found",
    )
    .await;

    // Only admins deactivate a link.
    let deactivate = json!({"payment_link": {"active": false}});
    let path = format!("/stripe/payment_links/{unique}");
    assert_error(
        put(&app, &tenant, &user, &path, None, &deactivate).await,
        403,
        "admin_required",
    )
    .await;
    assert_eq!(
        stripe_calls(&app, &tenant, "POST", &format!("/v1/payment_links/{plink}")).await,
        0
    );
    let error = assert_error(
        put(
            &app,
            &tenant,
            &admin,
            &path,
            None,
            &json!({"payment_link": {}}),
        )
        .await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(error["source"]["pointer"], "/payment_link");

    let off = ok(put(&app, &tenant, &admin, &path, Some("off-1"), &deactivate).await).await;
    assert_eq!(off["active"], false);
    assert_eq!(
        app.stripe_get(&tenant, &format!("/v1/payment_links/{plink}"))
            .await["active"],
        false
    );
    let again = put(&app, &tenant, &admin, &path, Some("off-1"), &deactivate).await;
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    assert_eq!(
        stripe_calls(&app, &tenant, "POST", &format!("/v1/payment_links/{plink}")).await,
        1
    );
    assert_eq!(
        ok(get(&app, &tenant, &user, &path).await).await["active"],
        false
    );
    assert_eq!(
        listed(&app, &tenant, &user, "/stripe/payment_links", "unique_id")
            .await
            .len(),
        2
    );
    assert_eq!(
        listed(
            &app,
            &tenant,
            &user,
            "/stripe/payment_links?active=false",
            "unique_id"
        )
        .await,
        vec![json!(unique.clone())]
    );
    let all = json_body(get(&app, &tenant, &user, "/stripe/payment_links?active=all").await).await;
    assert_eq!(all["meta"]["total_count"], 3);

    // And back on.
    let on = ok(put(
        &app,
        &tenant,
        &admin,
        &path,
        None,
        &json!({"payment_link": {"active": true}}),
    )
    .await)
    .await;
    assert_eq!(on["active"], true);
    assert_eq!(
        app.stripe_get(&tenant, &format!("/v1/payment_links/{plink}"))
            .await["active"],
        true
    );
    assert_eq!(
        listed(&app, &tenant, &user, "/stripe/payment_links", "unique_id")
            .await
            .len(),
        3
    );
}

fn link_object(id: &str, active: bool, note: &str) -> Value {
    json!({"id": id, "object": "payment_link", "active": active, "url": format!("https://buy.stripe.com/{id}"),
           "livemode": false, "metadata": {"note": note}})
}

async fn payment_link_events_keep_links_current_and_stale_ones_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let user = tenant.user_token("seller");
    let ep = endpoint(&app, &tenant).await;
    let (_, price) = product_and_price(&app, &tenant).await;
    let link = ok(app
        .post_json(
            "/stripe/payment_links",
            &tenant,
            &user,
            &json!({"payment_link": {"price_id": price["stripe_price_id"]}}),
        )
        .await)
    .await;
    let plink = link["stripe_payment_link_id"].as_str().unwrap().to_owned();
    let path = format!("/stripe/payment_links/{plink}");
    let t = chrono::Utc::now().timestamp() + 100;

    // Deactivated by an event newer than our write; then an older update arrives late.
    deliver(
        &app,
        &ep,
        &event(
            "evt_l2",
            "payment_link.updated",
            t + 20,
            link_object(&plink, false, "newer"),
        ),
    )
    .await;
    deliver(
        &app,
        &ep,
        &event(
            "evt_l1",
            "payment_link.updated",
            t + 10,
            link_object(&plink, true, "older"),
        ),
    )
    .await;
    let read = ok(get(&app, &tenant, &user, &path).await).await;
    assert_eq!(
        (read["active"].as_bool(), read["metadata"]["note"].as_str()),
        (Some(false), Some("newer")),
        "{read}"
    );
    // The line item we created the link with stays.
    assert_eq!(
        (read["price_id"].clone(), read["quantity"].as_i64()),
        (price["stripe_price_id"].clone(), Some(1))
    );
    assert_eq!(
        listed(&app, &tenant, &user, "/stripe/payment_links", "unique_id")
            .await
            .len(),
        0
    );

    // A link made elsewhere (Stripe's Dashboard) arrives by its created event.
    deliver(
        &app,
        &ep,
        &event(
            "evt_l3",
            "payment_link.created",
            t,
            link_object("plink_dashboard", true, "dash"),
        ),
    )
    .await;
    let listed_links = listed(
        &app,
        &tenant,
        &user,
        "/stripe/payment_links",
        "stripe_payment_link_id",
    )
    .await;
    assert_eq!(listed_links, vec![json!("plink_dashboard")]);
    let dash = ok(get(
        &app,
        &tenant,
        &user,
        "/stripe/payment_links/plink_dashboard",
    )
    .await)
    .await;
    assert_eq!(
        (dash["price_id"].clone(), dash["active"].as_bool()),
        (Value::Null, Some(true))
    );

    let outcomes: Vec<(String, String)> = events_stored(&app).await;
    assert_eq!(
        outcomes
            .iter()
            .map(|(id, o)| (id.as_str(), o.as_str()))
            .collect::<Vec<_>>(),
        vec![
            ("evt_l2", "applied"),
            ("evt_l1", "stale"),
            ("evt_l3", "applied")
        ]
    );
}

async fn a_link_deactivated_at_stripe_arrives_by_webhook(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let user = tenant.user_token("seller");
    let _endpoint = receiving_endpoint(&app, &tenant).await;
    let (_, price) = product_and_price(&app, &tenant).await;
    let link = ok(app
        .post_json(
            "/stripe/payment_links",
            &tenant,
            &user,
            &json!({"payment_link": {"price_id": price["stripe_price_id"], "quantity": 2}}),
        )
        .await)
    .await;
    let plink = link["stripe_payment_link_id"].as_str().unwrap().to_owned();
    // Changed in Stripe's Dashboard, not through us: only the webhook tells us.
    app.stripe_post(
        &tenant,
        &format!("/v1/payment_links/{plink}"),
        &[("active", "false")],
    )
    .await;
    let read = eventually(15, || async {
        let read = ok(get(
            &app,
            &tenant,
            &user,
            &format!("/stripe/payment_links/{plink}"),
        )
        .await)
        .await;
        (read["active"] == false).then_some(read)
    })
    .await;
    assert_eq!(
        (read["price_id"].clone(), read["quantity"].as_i64()),
        (price["stripe_price_id"].clone(), Some(2))
    );
    // One row, whichever of our answer and Stripe's payment_link.created came first.
    let all = json_body(get(&app, &tenant, &user, "/stripe/payment_links?active=all").await).await;
    assert_eq!(all["meta"]["total_count"], 1, "{all}");
}

on_both_databases!(
    admins_build_the_catalogue_everyone_reads_it,
    bad_catalogue_requests_get_clear_errors,
    products_and_prices_are_read_by_id_and_changed_by_admins,
    a_price_amount_never_changes,
    another_apps_catalogue_is_not_found,
    archived_products_and_prices_leave_the_default_lists,
    payment_links_are_kept_listed_and_deactivated,
    payment_link_events_keep_links_current_and_stale_ones_change_nothing,
    a_link_deactivated_at_stripe_arrives_by_webhook,
);
