//! GET /stripe/customers (Stripe's cursor paging and 23blocks pages) and
//! GET /stripe/customers/{id}.

use diesel::prelude::*;
use reqwest::Method;
use sales_block::db::schema::customers;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestTenant, assert_error, json_body, spawn_app};
use crate::on_both_databases;

async fn get(app: &TestApp, tenant: &TestTenant, token: &str, path: &str) -> reqwest::Response {
    app.authed(Method::GET, path, tenant, token)
        .send()
        .await
        .expect("request")
}

async fn list(app: &TestApp, tenant: &TestTenant, token: &str, query: &str) -> Value {
    let response = get(app, tenant, token, &format!("/stripe/customers{query}")).await;
    assert_eq!(response.status().as_u16(), 200, "{query}");
    json_body(response).await
}

fn ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn create(app: &TestApp, tenant: &TestTenant, token: &str, customer: Value) -> Value {
    let response = app
        .post_json(
            "/stripe/customers",
            tenant,
            token,
            &json!({ "customer": customer }),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
    json_body(response).await
}

async fn admins_see_every_customer_and_users_their_own_newest_first(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let alice = tenant.user_token("alice");
    let bob = tenant.user_token("bob");
    let mut created = Vec::new();
    for (token, email) in [
        (&alice, "a1@example.com"),
        (&bob, "b1@example.com"),
        (&alice, "a2@example.com"),
    ] {
        created.push(create(&app, &tenant, token, json!({ "email": email })).await);
    }
    // Created by an admin for alice: hers too.
    created.push(
        create(
            &app,
            &tenant,
            &tenant.admin_token(),
            json!({"email": "a3@example.com", "user_unique_id": "alice"}),
        )
        .await,
    );
    let id = |i: usize| created[i]["data"]["id"].as_str().unwrap().to_owned();

    let everything = list(&app, &tenant, &tenant.admin_token(), "").await;
    assert_eq!(ids(&everything), vec![id(3), id(2), id(1), id(0)]);
    assert_eq!(everything["meta"]["has_more"], false);
    assert_eq!(everything["meta"]["total_count"], 4);
    assert_eq!(everything["meta"]["totalRecords"], 4);
    assert_eq!(everything["meta"]["limit"], 10);
    // Each item is the resource POST /stripe/customers answered.
    assert_eq!(everything["data"][0], created[3]["data"]);

    assert_eq!(
        ids(&list(&app, &tenant, &alice, "").await),
        vec![id(3), id(2), id(0)]
    );
    assert_eq!(ids(&list(&app, &tenant, &bob, "").await), vec![id(1)]);
    let other = app.tenant().await;
    assert!(ids(&list(&app, &other, &other.admin_token(), "").await).is_empty());

    // A deleted customer is left out.
    let gone = id(2);
    app.query(move |conn| {
        diesel::update(customers::table.find(gone))
            .set(customers::deleted_at.eq(Some(chrono::Utc::now().naive_utc())))
            .execute(conn)
    })
    .await;
    let after_delete = list(&app, &tenant, &alice, "").await;
    assert_eq!(ids(&after_delete), vec![id(3), id(0)]);
    assert_eq!(after_delete["meta"]["total_count"], 2);
}

async fn stripe_paging_walks_every_customer_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("pager");
    let mut expected = Vec::new();
    for i in 0..5 {
        let body = create(
            &app,
            &tenant,
            &token,
            json!({ "email": format!("p{i}@example.com") }),
        )
        .await;
        expected.insert(0, body["data"]["attributes"].clone());
    }
    let first = list(&app, &tenant, &token, "?limit=2").await;
    assert_eq!(first["meta"]["has_more"], true);
    assert_eq!(first["meta"]["per_page"], 2);
    let mut seen = ids(&first);
    // The cursor may be our unique id or the cus_ id.
    let last = &first["data"][1]["attributes"];
    let second = list(
        &app,
        &tenant,
        &token,
        &format!(
            "?limit=2&starting_after={}",
            last["stripe_customer_id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(second["meta"]["has_more"], true);
    seen.extend(ids(&second));
    let third = list(
        &app,
        &tenant,
        &token,
        &format!("?limit=2&starting_after={}", seen.last().unwrap()),
    )
    .await;
    assert_eq!(third["meta"]["has_more"], false);
    seen.extend(ids(&third));
    let wanted: Vec<String> = expected
        .iter()
        .map(|c| c["unique_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, wanted);

    // Back again with ending_before: the page just newer than a customer, newest first.
    let back = list(
        &app,
        &tenant,
        &token,
        &format!("?limit=2&ending_before={}", seen[4]),
    )
    .await;
    assert_eq!(ids(&back), wanted[2..4].to_vec());
    assert_eq!(back["meta"]["has_more"], true, "newer ones remain");
    let front = list(
        &app,
        &tenant,
        &token,
        &format!("?limit=2&ending_before={}", seen[2]),
    )
    .await;
    assert_eq!(ids(&front), wanted[..2].to_vec());
    assert_eq!(front["meta"]["has_more"], false);

    // A cursor customer deleted meanwhile still marks the place.
    let cursor = seen[1].clone();
    let deleted = cursor.clone();
    app.query(move |conn| {
        diesel::update(customers::table.find(deleted))
            .set(customers::deleted_at.eq(Some(chrono::Utc::now().naive_utc())))
            .execute(conn)
    })
    .await;
    let rest = list(&app, &tenant, &token, &format!("?starting_after={cursor}")).await;
    assert_eq!(ids(&rest), wanted[2..].to_vec());
}

async fn page_and_records_paging_has_the_list_meta(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("pages");
    let mut wanted = Vec::new();
    for i in 0..5 {
        let body = create(
            &app,
            &tenant,
            &token,
            json!({ "email": format!("q{i}@example.com") }),
        )
        .await;
        wanted.insert(0, body["data"]["id"].as_str().unwrap().to_owned());
    }
    let page = list(&app, &tenant, &token, "?page=2&records=2").await;
    assert_eq!(ids(&page), wanted[2..4].to_vec());
    assert_eq!(
        page["meta"],
        json!({"current_page": 2, "per_page": 2, "total_count": 5, "total_pages": 3,
            "totalPages": 3, "totalRecords": 5, "has_more": true})
    );
    let last = list(&app, &tenant, &token, "?page=3&records=2").await;
    assert_eq!(ids(&last), wanted[4..].to_vec());
    assert_eq!(last["meta"]["has_more"], false);
    let default = list(&app, &tenant, &token, "?page=1").await;
    assert_eq!(default["meta"]["per_page"], 20);
    assert_eq!(ids(&default), wanted);
}

async fn bad_paging_is_400_naming_the_parameter(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("u");
    let theirs = create(
        &app,
        &tenant,
        &tenant.user_token("other"),
        json!({"email": "o@example.com"}),
    )
    .await;
    let theirs = theirs["data"]["id"].as_str().unwrap().to_owned();
    for (query, parameter) in [
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?limit=ten", "limit"),
        ("?page=0", "page"),
        ("?records=101", "records"),
        ("?page=1&limit=5", "limit"),
        ("?records=5&starting_after=cus_x", "starting_after"),
        ("?starting_after=cus_unknown", "starting_after"),
        ("?ending_before=cus_unknown", "ending_before"),
        ("?starting_after=cus_a&ending_before=cus_b", "ending_before"),
        ("?page=2&ending_before=cus_b", "ending_before"),
        (
            &format!("?starting_after={theirs}") as &str,
            "starting_after",
        ),
    ] {
        let response = get(&app, &tenant, &token, &format!("/stripe/customers{query}")).await;
        let error = assert_error(response, 400, "invalid_query").await;
        assert_eq!(error["source"]["parameter"], parameter, "{query}");
    }
    let response = app
        .request(Method::GET, "/stripe/customers")
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "missing_api_key").await;
}

async fn one_customer_is_read_by_any_id_form(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let token = tenant.user_token("reader");
    let created = create(
        &app,
        &tenant,
        &token,
        json!({"email": "r@example.com", "name": "Reader", "user_unique_id": "reader",
            "metadata": {"plan": "pro"}}),
    )
    .await;
    let attrs = &created["data"]["attributes"];
    for id in [
        attrs["unique_id"].as_str().unwrap(),
        "reader",
        attrs["stripe_customer_id"].as_str().unwrap(),
    ] {
        let response = get(&app, &tenant, &token, &format!("/stripe/customers/{id}")).await;
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(json_body(response).await, created, "{id}");
        let admin = get(
            &app,
            &tenant,
            &tenant.admin_token(),
            &format!("/stripe/customers/{id}"),
        )
        .await;
        assert_eq!(admin.status().as_u16(), 200);
        // Another user, another tenant: 404.
        let response = get(
            &app,
            &tenant,
            &tenant.user_token("x"),
            &format!("/stripe/customers/{id}"),
        )
        .await;
        assert_error(response, 404, "not_found").await;
        let other = app.tenant().await;
        let response = get(
            &app,
            &other,
            &other.admin_token(),
            &format!("/stripe/customers/{id}"),
        )
        .await;
        assert_error(response, 404, "not_found").await;
    }
    let response = get(&app, &tenant, &token, "/stripe/customers/cus_nope").await;
    assert_error(response, 404, "not_found").await;
    let gone = attrs["unique_id"].as_str().unwrap().to_owned();
    let id = gone.clone();
    app.query(move |conn| {
        diesel::update(customers::table.find(id))
            .set(customers::deleted_at.eq(Some(chrono::Utc::now().naive_utc())))
            .execute(conn)
    })
    .await;
    let response = get(&app, &tenant, &token, &format!("/stripe/customers/{gone}")).await;
    assert_error(response, 404, "not_found").await;
}

on_both_databases!(
    admins_see_every_customer_and_users_their_own_newest_first,
    stripe_paging_walks_every_customer_once,
    page_and_records_paging_has_the_list_meta,
    bad_paging_is_400_naming_the_parameter,
    one_customer_is_read_by_any_id_form,
);
