//! Historical sync (issue 17): objects that exist only at Stripe (no deliveries) reach the
//! mirror through a job; jobs are admin-only, one at a time per app, resumable, run by one
//! instance at a time, and ordered against deliveries by the watermark rule.

use std::time::Duration;

use diesel::prelude::*;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, TestTenant, assert_error, eventually, json_body, spawn_app, spawn_app_with,
};
use crate::metrics::{sample, scraped};
use crate::on_both_databases;
use crate::receiver::{deliver, endpoint, event};

/// Starts a sync as the tenant's admin; returns the job's id.
async fn start(app: &TestApp, tenant: &TestTenant, body: Option<Value>) -> String {
    let mut request = app.authed(
        Method::POST,
        "/stripe/sync/historical",
        tenant,
        &tenant.admin_token(),
    );
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let body = json_body(response).await;
    assert_eq!(body["data"]["type"], "stripe_sync_job");
    body["data"]["id"].as_str().unwrap().to_owned()
}

/// Starts a sync of these objects only; returns the job's id.
async fn sync_objects(app: &TestApp, tenant: &TestTenant, objects: &[&str]) -> String {
    start(app, tenant, Some(json!({"sync": {"objects": objects}}))).await
}

/// Starts a sync of the tenant's customers only; returns the job's id.
async fn sync_customers(app: &TestApp, tenant: &TestTenant) -> String {
    sync_objects(app, tenant, &["customers"]).await
}

async fn job(app: &TestApp, tenant: &TestTenant, id: &str) -> Value {
    app.admin_json(tenant, &format!("/stripe/sync/jobs/{id}"))
        .await["data"]["attributes"]
        .clone()
}

/// The app's jobs as `GET /stripe/sync/jobs` lists them to its admin (the whole body).
async fn jobs(app: &TestApp, tenant: &TestTenant) -> Value {
    app.admin_json(tenant, "/stripe/sync/jobs").await
}

/// Waits for the job to end, however it ends; returns it.
async fn ended(app: &TestApp, tenant: &TestTenant, id: &str) -> Value {
    eventually(120, || async {
        let job = job(app, tenant, id).await;
        matches!(
            job["status"].as_str(),
            Some("succeeded" | "failed" | "canceled")
        )
        .then_some(job)
    })
    .await
}

/// Waits for the job to end; returns it (asserting `succeeded`).
async fn finished(app: &TestApp, tenant: &TestTenant, id: &str) -> Value {
    let done = ended(app, tenant, id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    done
}

/// Stops an instance running job `id` and waits until its worker has handed the job back:
/// the server stops first, and the worker's write in flight then goes to its end (its rows
/// and progress in one commit), which a read made before it would miss.
async fn stopped(app: &TestApp, instance: actix_web::dev::ServerHandle, id: &str) {
    use sales_block::db::schema::sync_jobs;
    instance.stop(true).await;
    eventually(30, || async {
        let id = id.to_owned();
        let owner = app
            .query(move |conn| {
                sync_jobs::table
                    .find(id)
                    .select(sync_jobs::lease_owner)
                    .first::<Option<String>>(conn)
            })
            .await;
        owner.is_none().then_some(())
    })
    .await;
}

/// An app whose own instance runs no sync worker (instances started beside it run the jobs,
/// and are stopped mid-way), with a pool for three lists at once (11), and its tenant.
async fn app_to_stop(backend: Backend) -> (TestApp, TestTenant) {
    let app = spawn_app_with(backend, |s| {
        s.sync_worker = false;
        s.database_pool_size = 11;
    })
    .await;
    let tenant = app.tenant().await;
    (app, tenant)
}

/// Stops `instance` mid-way through job `id` ([`stopped`]): the job, still running.
async fn stopped_mid_way(
    app: &TestApp,
    tenant: &TestTenant,
    instance: actix_web::dev::ServerHandle,
    id: &str,
) -> Value {
    stopped(app, instance, id).await;
    let paused = job(app, tenant, id).await;
    assert_eq!(paused["status"], "running", "{paused}");
    paused
}

/// A list of `pages` pages, read in `parts` parts by a job stopped once and resumed, was read
/// in `reads` requests: each page once, one more for each part beyond the first (its last
/// page may be short), and at most the one each part read ahead at the stop (never written,
/// read again by the instance that resumed).
fn assert_read_once(reads: usize, pages: usize, parts: usize, list: &str) {
    assert!(
        (pages..=pages + 2 * parts - 1).contains(&reads),
        "{list}: {reads} reads of {pages} pages in {parts} parts"
    );
}

/// Job `id` resumed by another instance, Stripe answering at once: the job once it ended well.
async fn resumed_elsewhere(app: &TestApp, tenant: &TestTenant, id: &str) -> Value {
    app.stripe_post(tenant, "/_emulator/config", &[("latency_ms", "0")])
        .await;
    let _second = app.second_instance_with(|s| s.sync_worker = true).await;
    finished(app, tenant, id).await
}

async fn mirror_counts(app: &TestApp, tenant: &TestTenant) -> Value {
    use sales_block::db::schema::{
        customers, invoice_lines, invoices, payment_methods, payments, prices, products, refunds,
        subscription_items, subscriptions,
    };
    let t = tenant.created.id.clone();
    app.query(move |conn| {
        // The tenant's rows of each mirror table.
        macro_rules! count {
            ($table:ident) => {
                $table::table
                    .filter($table::tenant_id.eq(&t))
                    .count()
                    .get_result::<i64>(conn)?
            };
        }
        Ok(json!({
            "customers": count!(customers), "products": count!(products),
            "prices": count!(prices), "subscriptions": count!(subscriptions),
            "subscription_items": count!(subscription_items), "invoices": count!(invoices),
            "invoice_lines": count!(invoice_lines), "payments": count!(payments),
            "refunds": count!(refunds), "payment_methods": count!(payment_methods),
        }))
    })
    .await
}

/// `n` customers at Stripe only (no deliveries reach the service); their ids.
async fn stripe_customers(app: &TestApp, tenant: &TestTenant, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let email = format!("c{i}@example.com");
        let name = format!("Customer {i}");
        let c = app
            .stripe_post(
                tenant,
                "/v1/customers",
                &[("email", &email), ("name", &name)],
            )
            .await;
        ids.push(c["id"].as_str().unwrap().to_owned());
    }
    ids
}

/// `each` subscriptions of one item over 20 customers, each with its invoice (one line) and
/// the invoice's payment intent: three lists of `each` that a sync reads at once.
async fn seed_subscriptions(app: &TestApp, tenant: &TestTenant, each: u64) {
    seed_stripe(
        app,
        tenant,
        json!({"customers": 20, "products": 1, "prices_per_product": 1,
               "subscriptions": each, "items_per_subscription": [1, 1],
               "invoices": 0, "lines_per_invoice": [1, 1]}),
    )
    .await;
}

/// Objects created at Stripe (the emulator) in bulk, with no events (`/_emulator/seed`).
async fn seed_stripe(app: &TestApp, tenant: &TestTenant, counts: Value) {
    let seeded = app
        .http
        .post(format!("{}/_emulator/seed", app.emulator.base_url()))
        .bearer_auth(&tenant.stripe_key)
        .json(&counts)
        .send()
        .await
        .unwrap();
    assert!(seeded.status().is_success());
}

/// Cancels a running job, then counts the pages of customers read from Stripe at the cancel
/// and 1.5 s later.
async fn cancel_and_count_pages(app: &TestApp, tenant: &TestTenant, id: &str) -> (usize, usize) {
    let canceled = app
        .delete(
            &format!("/stripe/sync/jobs/{id}"),
            tenant,
            &tenant.admin_token(),
        )
        .await;
    assert_eq!(canceled.status().as_u16(), 200);
    assert_eq!(
        json_body(canceled).await["data"]["attributes"]["status"],
        "canceled"
    );
    let before = requests_to(app, tenant, "/v1/customers").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    (before, requests_to(app, tenant, "/v1/customers").await)
}

/// Creates a customer with `email` in the connected `account` (through the platform's key),
/// as the account's own history: no tenant receives its events.
async fn connected_customer(
    app: &TestApp,
    platform: &crate::connect::Platform,
    account: &str,
    email: &str,
) {
    let response = app
        .http
        .post(format!("{}/v1/customers", app.emulator.base_url()))
        .bearer_auth(&platform.key)
        .header("Stripe-Account", account)
        .form(&[("email", email)])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
}

/// The emails of the tenant's mirrored customers, sorted.
async fn mirrored_emails(app: &TestApp, tenant: &TestTenant) -> Vec<Option<String>> {
    let tenant_id = tenant.created.id.clone();
    let mut emails: Vec<Option<String>> = app
        .query(move |conn| {
            use sales_block::db::schema::customers;
            customers::table
                .filter(customers::tenant_id.eq(tenant_id))
                .select(customers::email)
                .load(conn)
        })
        .await;
    emails.sort();
    emails
}

/// How many objects Stripe (the emulator) lists at `path`, paging 100 at a time.
async fn stripe_count(app: &TestApp, tenant: &TestTenant, path: &str) -> usize {
    let mut total = 0;
    let mut after: Option<String> = None;
    loop {
        let url = match &after {
            Some(id) => format!("{path}?limit=100&starting_after={id}"),
            None => format!("{path}?limit=100"),
        };
        let page = app.stripe_get(tenant, &url).await;
        let items = page["data"].as_array().cloned().unwrap_or_default();
        total += items.len();
        after = items
            .last()
            .and_then(|i| i["id"].as_str())
            .map(str::to_owned);
        if page["has_more"] != true || after.is_none() {
            return total;
        }
    }
}

/// Requests the tenant's key made to `path` (any query).
async fn requests_to(app: &TestApp, tenant: &TestTenant, path: &str) -> usize {
    app.stripe_requests(tenant)
        .await
        .iter()
        .filter(|r| r["method"] == "GET" && r["path"] == path)
        .count()
}

/// Everything at Stripe is in the mirror after a sync, including what Stripe cuts from its
/// parents (a subscription's 25 items, an invoice's 250 lines), paged 100 at a time.
async fn a_sync_mirrors_what_only_stripe_holds(backend: Backend) {
    // A pool with connections for three lists at once (11): on PostgreSQL, subscriptions,
    // invoices and payment intents are read together
    // (`lists_read_at_once_keep_each_others_progress`).
    let app = spawn_app_with(backend, |s| s.database_pool_size = 11).await;
    let tenant = app.tenant().await;
    let product = app
        .stripe_post(&tenant, "/v1/products", &[("name", "Plan")])
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut prices = Vec::new();
    for i in 1..=25 {
        let amount = (i * 100).to_string();
        let price = app
            .stripe_post(
                &tenant,
                "/v1/prices",
                &[
                    ("product", &product),
                    ("currency", "usd"),
                    ("unit_amount", &amount),
                    ("recurring[interval]", "month"),
                ],
            )
            .await;
        prices.push(price["id"].as_str().unwrap().to_owned());
    }
    let customers = stripe_customers(&app, &tenant, 120).await;
    let mut form: Vec<(String, String)> = vec![
        ("customer".into(), customers[0].clone()),
        ("default_payment_method".into(), "pm_card_visa".into()),
    ];
    for (i, price) in prices.iter().enumerate() {
        form.push((format!("items[{i}][price]"), price.clone()));
    }
    let form_ref: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    app.stripe_post(
        &tenant,
        "/v1/payment_methods/pm_card_visa/attach",
        &[("customer", &customers[0])],
    )
    .await;
    let subscription = app
        .stripe_post(&tenant, "/v1/subscriptions", &form_ref)
        .await;
    assert_eq!(
        subscription["items"]["has_more"], true,
        "Stripe embeds 10 items"
    );
    // An invoice of 250 lines (and its customer, product and price), seeded at Stripe.
    seed_stripe(
        &app,
        &tenant,
        json!({"customers": 1, "products": 1, "prices_per_product": 1,
               "invoices": 1, "lines_per_invoice": 250}),
    )
    .await;
    let invoices = app.stripe_list(&tenant, "/v1/invoices?limit=100").await;
    let invoice_id = invoices
        .iter()
        .find(|i| i["customer"] != json!(customers[0]))
        .and_then(|i| i["id"].as_str())
        .expect("the seeded invoice")
        .to_owned();
    let payment = app
        .stripe_post(
            &tenant,
            "/v1/payment_intents",
            &[
                ("amount", "5000"),
                ("currency", "usd"),
                ("customer", &customers[2]),
                ("payment_method", "pm_card_visa"),
                ("confirm", "true"),
                ("automatic_payment_methods[enabled]", "true"),
                ("automatic_payment_methods[allow_redirects]", "never"),
            ],
        )
        .await;
    let pi = payment["id"].as_str().unwrap().to_owned();
    app.stripe_post(
        &tenant,
        "/v1/refunds",
        &[("payment_intent", &pi), ("amount", "1200")],
    )
    .await;
    assert_eq!(
        mirror_counts(&app, &tenant).await["customers"],
        0,
        "nothing was delivered"
    );

    let jobs = "sync_jobs_total{kind=\"historical\",outcome=\"succeeded\"}";
    let read = "sync_objects_total{kind=\"customers\"}";
    let before = scraped(&app).await;
    let id = start(&app, &tenant, None).await;
    let done = finished(&app, &tenant, &id).await;
    // The operator sees the job and what it read in /metrics (the recorder is the process's:
    // other tests' jobs may add to it).
    let after = scraped(&app).await;
    assert!(sample(&after, jobs).unwrap_or(0.0) >= sample(&before, jobs).unwrap_or(0.0) + 1.0);
    assert!(sample(&after, read).unwrap_or(0.0) >= sample(&before, read).unwrap_or(0.0) + 121.0);
    // Each page read once: the lines of the 25-line invoice in 1 page, of the 250-line one in 3.
    let line_pages = app
        .stripe_requests(&tenant)
        .await
        .iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.ends_with("/lines")))
        .count();
    assert_eq!(line_pages, 4);
    assert_eq!(
        requests_to(&app, &tenant, &format!("/v1/invoices/{invoice_id}/lines")).await,
        3,
        "250 lines, 100 per page"
    );
    let counts = mirror_counts(&app, &tenant).await;
    let mut lines = 0;
    for invoice in &invoices {
        let path = format!("/v1/invoices/{}/lines", invoice["id"].as_str().unwrap());
        lines += stripe_count(&app, &tenant, &path).await;
    }
    assert_eq!(
        lines, 275,
        "250 seeded, 25 of the subscription's first invoice"
    );
    let at_stripe = |path: &'static str| {
        let (app, tenant) = (&app, &tenant);
        async move { stripe_count(app, tenant, path).await }
    };
    // The card attached to the first customer, and what the payment of the third saved.
    let mut cards = 0;
    for customer in [&customers[0], &customers[2]] {
        let path = format!("/v1/customers/{customer}/payment_methods");
        cards += stripe_count(&app, &tenant, &path).await;
    }
    assert!(cards >= 1);
    assert_eq!(
        counts,
        json!({
            "customers": 121, "products": 2, "prices": 26, "subscriptions": 1,
            "subscription_items": 25, "invoices": at_stripe("/v1/invoices").await,
            "invoice_lines": lines,
            "payments": at_stripe("/v1/payment_intents").await, "refunds": 1,
            "payment_methods": cards,
        }),
        "{done}"
    );
    let progress = &done["progress"];
    assert_eq!(progress["customers"]["read"], 121);
    assert_eq!(progress["customers"]["written"], 121);
    assert_eq!(progress["customers"]["done"], true);
    assert_eq!(
        requests_to(&app, &tenant, "/v1/customers").await,
        2,
        "100 per page"
    );
    assert!(requests_to(&app, &tenant, "/v1/subscription_items").await >= 1);

    // Field by field, as the API shows it.
    let listed = json_body(
        app.authed(
            Method::GET,
            "/stripe/customers?records=100&page=2",
            &tenant,
            &tenant.admin_token(),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(listed["meta"]["total_count"], 121);
    let emails: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["attributes"]["email"].as_str())
        .collect();
    assert_eq!(emails.len(), 21);
    assert!(emails.iter().all(|e| e.ends_with("@example.com")));
    let subs = json_body(
        app.authed(
            Method::GET,
            "/stripe/subscriptions",
            &tenant,
            &tenant.admin_token(),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        subs["data"][0]["attributes"]["stripe_subscription_id"],
        subscription["id"]
    );
    assert_eq!(
        subs["data"][0]["attributes"]["status"],
        subscription["status"]
    );
    let pays = json_body(
        app.authed(
            Method::GET,
            "/stripe/payments",
            &tenant,
            &tenant.admin_token(),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    let ours = pays["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["attributes"]["stripe_payment_id"] == json!(pi))
        .cloned()
        .expect("the payment is mirrored");
    assert_eq!(ours["attributes"]["amount"], 5000);
    assert_eq!(ours["attributes"]["status"], "succeeded");
    let charges = json_body(
        app.authed(
            Method::GET,
            &format!("/stripe/charges?payment_id={pi}"),
            &tenant,
            &tenant.admin_token(),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    let charge = &charges["data"][0]["attributes"];
    assert_eq!(charge["amount"], 5000, "{charges}");
    assert_eq!(charge["amount_refunded"], 1200);
    assert_eq!(charge["last4"], "4242");
}

on_both_databases!(a_sync_mirrors_what_only_stripe_holds);

/// Only admins start, read and cancel jobs; bad bodies are 4xx and start nothing; one job at
/// a time per app; another app's job is 404; a finished job cannot be canceled.
async fn sync_jobs_are_admin_only_checked_and_one_at_a_time(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let other = app.tenant().await;
    let user = app
        .authed(
            Method::POST,
            "/stripe/sync/historical",
            &tenant,
            &tenant.user_token("u1"),
        )
        .send()
        .await
        .unwrap();
    assert_error(user, 403, "admin_required").await;
    for (body, pointer) in [
        (
            json!({"sync": {"objects": ["customers", "accounts"]}}),
            "/sync/objects/1",
        ),
        (json!({"sync": {"objects": []}}), "/sync/objects"),
        (
            json!({"sync": {"created_gte": 20, "created_lt": 10}}),
            "/sync/created_lt",
        ),
        (json!({"sync": {"created_gte": -1}}), "/sync/created_gte"),
    ] {
        let response = app
            .post_json(
                "/stripe/sync/historical",
                &tenant,
                &tenant.admin_token(),
                &body,
            )
            .await;
        let error = assert_error(response, 422, "validation_error").await;
        assert_eq!(error["source"]["pointer"], pointer, "{body}");
    }
    let unknown = app
        .post_json(
            "/stripe/sync/historical",
            &tenant,
            &tenant.admin_token(),
            &json!({"sync": {"object": ["customers"]}}),
        )
        .await;
    assert_eq!(
        unknown.status().as_u16(),
        422,
        "an unknown field is refused"
    );
    let listed = jobs(&app, &tenant).await;
    assert_eq!(listed["meta"]["total_count"], 0, "nothing started");

    stripe_customers(&app, &tenant, 30).await;
    // Slow Stripe: the first job is still running when the second is asked for.
    app.stripe_post(&tenant, "/_emulator/config", &[("latency_ms", "400")])
        .await;
    let id = sync_objects(&app, &tenant, &["payment_methods", "customers"]).await;
    let busy = app
        .post_json(
            "/stripe/sync/historical",
            &tenant,
            &tenant.admin_token(),
            &json!({}),
        )
        .await;
    let error = assert_error(busy, 409, "sync_in_progress").await;
    assert_eq!(error["meta"]["job_id"], json!(id));
    // Another app sees none of it, and may sync its own.
    let theirs = app
        .authed(
            Method::GET,
            &format!("/stripe/sync/jobs/{id}"),
            &other,
            &other.admin_token(),
        )
        .send()
        .await
        .unwrap();
    assert_error(theirs, 404, "not_found").await;
    let cancel = app
        .delete(
            &format!("/stripe/sync/jobs/{id}"),
            &other,
            &other.admin_token(),
        )
        .await;
    assert_error(cancel, 404, "not_found").await;
    app.stripe_post(&tenant, "/_emulator/config", &[("latency_ms", "0")])
        .await;
    let done = finished(&app, &tenant, &id).await;
    assert_eq!(
        done["objects"],
        json!(["customers", "payment_methods"]),
        "parents first"
    );
    assert_eq!(done["requested_by"], "admin-1");
    assert!(done["started_at"].is_string() && done["finished_at"].is_string());
    let again = app
        .delete(
            &format!("/stripe/sync/jobs/{id}"),
            &tenant,
            &tenant.admin_token(),
        )
        .await;
    assert_error(again, 409, "sync_finished").await;
    let listed = json_body(
        app.authed(
            Method::GET,
            "/stripe/sync/jobs?records=1",
            &tenant,
            &tenant.admin_token(),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(listed["meta"]["total_count"], 1);
    assert_eq!(listed["data"][0]["id"], json!(id));
}

on_both_databases!(sync_jobs_are_admin_only_checked_and_one_at_a_time);

/// A canceled job stops; a job whose instance stopped mid-way is resumed by another from its
/// last saved page: exact counts, no customer twice, no page read twice.
async fn a_stopped_sync_resumes_from_its_last_page(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.sync_worker = false).await;
    let tenant = app.tenant().await;
    stripe_customers(&app, &tenant, 350).await;
    app.stripe_post(&tenant, "/_emulator/config", &[("latency_ms", "300")])
        .await;
    let first = app.stoppable_instance(|s| s.sync_worker = true).await;
    let id = sync_customers(&app, &tenant).await;
    eventually(30, || async {
        (job(&app, &tenant, &id).await["progress"]["customers"]["read"]
            .as_u64()
            .unwrap_or(0)
            >= 100)
            .then_some(())
    })
    .await;
    let paused = stopped_mid_way(&app, &tenant, first, &id).await;
    let read = paused["progress"]["customers"]["read"].as_u64().unwrap();
    assert!((100..350).contains(&read), "{paused}");
    assert_eq!(
        mirror_counts(&app, &tenant).await["customers"],
        json!(read),
        "what was read was written, with its progress"
    );

    let done = resumed_elsewhere(&app, &tenant, &id).await;
    assert_eq!(done["progress"]["customers"]["read"], 350);
    assert_eq!(done["progress"]["customers"]["written"], 350);
    assert_eq!(
        done["attempts"], 0,
        "an instance that stops hands its job back without an attempt: {done}"
    );
    assert_eq!(mirror_counts(&app, &tenant).await["customers"], 350);
    // 4 pages of 100, read whole (a job of customers alone has no guess where to cut them).
    let reads = requests_to(&app, &tenant, "/v1/customers").await;
    assert_read_once(reads, 4, 1, "customers");
}

on_both_databases!(a_stopped_sync_resumes_from_its_last_page);

/// Subscriptions, invoices and payment intents are read at once on PostgreSQL (a pool of 11:
/// connections for three lists); each list saves its own progress beside the others': an
/// instance stopped mid-way leaves every list's saved count equal to what it wrote, and the
/// instance that resumes finishes each from its own cursor, with exact counts and no page
/// read twice but the one read ahead at the stop.
async fn lists_read_at_once_keep_each_others_progress(backend: Backend) {
    const EACH: u64 = 400;
    let (app, tenant) = app_to_stop(backend).await;
    // A subscription, its invoice and the invoice's payment intent each, for 50 customers.
    seed_stripe(
        &app,
        &tenant,
        json!({"customers": 50, "products": 2, "prices_per_product": 1,
               "subscriptions": EACH, "items_per_subscription": [1, 2],
               "invoices": 0, "lines_per_invoice": [1, 2]}),
    )
    .await;
    let lists = ["subscriptions", "invoices", "payment_intents"];
    let paths = ["/v1/subscriptions", "/v1/invoices", "/v1/payment_intents"];
    // The test's own reads, not the sync's.
    let mut counted = Vec::new();
    for path in paths {
        assert_eq!(
            stripe_count(&app, &tenant, path).await as u64,
            EACH,
            "{path}"
        );
        counted.push(requests_to(&app, &tenant, path).await);
    }
    // Slower than pages are gathered into one write: each page is written on its own.
    app.stripe_post(&tenant, "/_emulator/config", &[("latency_ms", "300")])
        .await;
    let first = app.stoppable_instance(|s| s.sync_worker = true).await;
    let id = start(&app, &tenant, None).await;
    // Stopped once each list has written a page.
    let seen = eventually(60, || async {
        let job = job(&app, &tenant, &id).await;
        lists
            .iter()
            .all(|list| job["progress"][list]["read"].as_u64().unwrap_or(0) >= 100)
            .then_some(job)
    })
    .await;
    if backend == Backend::Postgres {
        // One list after another, all but the last would be done by now.
        let reading = lists
            .iter()
            .filter(|list| seen["progress"][list]["done"] != true)
            .count();
        assert!(reading >= 2, "the three lists were read at once: {seen}");
    }
    let paused = stopped_mid_way(&app, &tenant, first, &id).await;
    let counts = mirror_counts(&app, &tenant).await;
    for (list, table) in lists.iter().zip(["subscriptions", "invoices", "payments"]) {
        let read = paused["progress"][list]["read"].as_u64().unwrap();
        assert!(read >= 100, "{list}: {paused}");
        assert_eq!(
            counts[table],
            json!(read),
            "{list}: what was read was written, with its own progress: {paused}"
        );
    }

    let done = resumed_elsewhere(&app, &tenant, &id).await;
    let counts = mirror_counts(&app, &tenant).await;
    for (((list, table), path), counted) in lists
        .iter()
        .zip(["subscriptions", "invoices", "payments"])
        .zip(paths)
        .zip(counted)
    {
        assert_eq!(done["progress"][list]["read"], EACH, "{list}: {done}");
        assert_eq!(done["progress"][list]["written"], EACH, "{list}: {done}");
        assert_eq!(counts[table], EACH, "{list}");
        let parts = done["progress"][list]["parts"]
            .as_array()
            .map_or(1, Vec::len);
        let reads = requests_to(&app, &tenant, path).await - counted;
        assert_read_once(reads, 4, parts, list);
    }
}

on_both_databases!(lists_read_at_once_keep_each_others_progress);

/// On PostgreSQL a long list is cut into `created` ranges read at once while the stage has
/// room (here customers, read alone, into three): each range is paged with its own cursor
/// and saved as a part of the list's progress. An instance stopped mid-way leaves each part's
/// count equal to what it wrote; the instance that resumes reads each part on from its own
/// cursor: exact counts, every customer once, no page read twice but the one read ahead by
/// each part at the stop. SQLite reads a list whole.
async fn a_long_list_is_read_in_parts_each_resumed_from_its_cursor(backend: Backend) {
    const CUSTOMERS: u64 = 1500;
    let (app, tenant) = app_to_stop(backend).await;
    // Spread over the emulator's 30 days; the products (read first) tell the sync where the
    // account's history starts.
    seed_stripe(
        &app,
        &tenant,
        json!({"customers": CUSTOMERS, "products": 3, "prices_per_product": 1}),
    )
    .await;
    let before = requests_to(&app, &tenant, "/v1/customers").await;
    app.stripe_post(&tenant, "/_emulator/config", &[("latency_ms", "100")])
        .await;
    let first = app.stoppable_instance(|s| s.sync_worker = true).await;
    let id = sync_objects(&app, &tenant, &["products", "customers"]).await;
    let at_once = backend == Backend::Postgres;
    eventually(60, || async {
        let job = job(&app, &tenant, &id).await;
        let customers = &job["progress"]["customers"];
        let reading = customers["parts"].as_array().map_or(0, |parts| {
            parts
                .iter()
                .filter(|p| p["read"].as_u64().unwrap_or(0) > 0)
                .count()
        });
        (customers["read"].as_u64().unwrap_or(0) >= 500 && (!at_once || reading >= 2)).then_some(())
    })
    .await;
    let paused = stopped_mid_way(&app, &tenant, first, &id).await;
    let customers = &paused["progress"]["customers"];
    let read = customers["read"].as_u64().unwrap();
    assert!((500..CUSTOMERS).contains(&read), "{paused}");
    assert_eq!(
        mirror_counts(&app, &tenant).await["customers"],
        json!(read),
        "what each part read was written, with its progress: {paused}"
    );
    let mut parts = customers["parts"].as_array().cloned().unwrap_or_default();
    if at_once {
        assert!(parts.len() >= 3, "cut into three: {paused}");
        let sum: u64 = parts.iter().map(|p| p["read"].as_u64().unwrap()).sum();
        assert_eq!(sum, read, "{paused}");
        assert_ranges_meet(&mut parts, &paused);
    } else {
        assert!(parts.is_empty(), "SQLite reads a list whole: {paused}");
    }

    let done = resumed_elsewhere(&app, &tenant, &id).await;
    let customers = &done["progress"]["customers"];
    assert_eq!(customers["read"], CUSTOMERS, "{done}");
    assert_eq!(customers["written"], CUSTOMERS, "{done}");
    assert_eq!(mirror_counts(&app, &tenant).await["customers"], CUSTOMERS);
    let parts = customers["parts"].as_array().map_or(1, Vec::len);
    if at_once {
        assert!(parts >= 3, "{done}");
        let ended = customers["parts"].as_array().unwrap();
        assert!(ended.iter().all(|p| p["done"] == true), "{done}");
    }
    let reads = requests_to(&app, &tenant, "/v1/customers").await - before;
    assert_read_once(reads, 15, parts, "customers");
}

on_both_databases!(a_long_list_is_read_in_parts_each_resumed_from_its_cursor);

/// The ranges of a list's parts, newest first, meet: the newest open above, each starting
/// where the one before it ends, the oldest reaching down as far as the job does.
fn assert_ranges_meet(parts: &mut [Value], job: &Value) {
    parts.sort_by_key(|p| std::cmp::Reverse(p["created_lt"].as_i64().unwrap_or(i64::MAX)));
    assert_eq!(parts[0]["created_lt"], Value::Null, "{job}");
    assert_eq!(parts[parts.len() - 1]["created_gte"], Value::Null, "{job}");
    for pair in parts.windows(2) {
        assert!(pair[0]["created_gte"].is_i64(), "{job}");
        assert_eq!(pair[0]["created_gte"], pair[1]["created_lt"], "{job}");
    }
}

/// A list older than anything else the job has read (customers alone: no products read
/// first to tell where the account's history starts) is still cut while Stripe is slow, its
/// history guessed from the span read so far. Every customer is read once, and the ranges
/// meet.
async fn a_list_with_nothing_older_read_is_still_cut(backend: Backend) {
    const CUSTOMERS: u64 = 3000;
    let app = spawn_app_with(backend, |s| s.database_pool_size = 11).await;
    let tenant = app.tenant().await;
    // Spread over the emulator's 30 days.
    seed_stripe(&app, &tenant, json!({"customers": CUSTOMERS})).await;
    app.stripe_post(&tenant, "/_emulator/config", &[("latency_ms", "100")])
        .await;
    let before = requests_to(&app, &tenant, "/v1/customers").await;
    let id = sync_customers(&app, &tenant).await;
    let done = finished(&app, &tenant, &id).await;
    let customers = &done["progress"]["customers"];
    assert_eq!(customers["read"], CUSTOMERS, "{done}");
    assert_eq!(customers["written"], CUSTOMERS, "{done}");
    assert_eq!(mirror_counts(&app, &tenant).await["customers"], CUSTOMERS);
    let mut parts = customers["parts"].as_array().cloned().unwrap_or_default();
    if backend == Backend::Postgres {
        let read = |p: &&Value| p["read"].as_u64().unwrap_or(0);
        assert!(
            parts.iter().filter(|p| read(p) > 0).count() >= 2,
            "customers read in two ranges at once or more: {done}"
        );
        let sum: u64 = parts.iter().map(|p| read(&p)).sum();
        assert_eq!(sum, CUSTOMERS, "{done}");
        assert!(parts.iter().all(|p| p["done"] == true), "{done}");
        assert_ranges_meet(&mut parts, &done);
    } else {
        assert!(parts.is_empty(), "SQLite reads a list whole: {done}");
    }
    let reads = requests_to(&app, &tenant, "/v1/customers").await - before;
    assert_read_once(reads, 30, parts.len().max(1), "customers");
}

on_both_databases!(a_list_with_nothing_older_read_is_still_cut);

/// Each customer's payment methods are a list of their own at Stripe: a sync reads four
/// customers' at once (not one Stripe round trip after another), never more, and mirrors
/// every one of them.
async fn payment_methods_of_a_few_customers_are_read_at_once(backend: Backend) {
    const LATENCY_MS: i64 = 100;
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let customers = stripe_customers(&app, &tenant, 12).await;
    for customer in &customers[..3] {
        app.stripe_post(
            &tenant,
            "/v1/payment_methods/pm_card_visa/attach",
            &[("customer", customer)],
        )
        .await;
    }
    app.stripe_post(
        &tenant,
        "/_emulator/config",
        &[("latency_ms", &LATENCY_MS.to_string())],
    )
    .await;
    let id = sync_objects(&app, &tenant, &["customers", "payment_methods"]).await;
    let done = finished(&app, &tenant, &id).await;
    assert_eq!(done["progress"]["payment_methods"]["read"], 3, "{done}");
    assert_eq!(done["progress"]["payment_methods"]["written"], 3, "{done}");
    assert_eq!(mirror_counts(&app, &tenant).await["payment_methods"], 3);
    let mut received: Vec<i64> = app
        .stripe_requests(&tenant)
        .await
        .iter()
        .filter(|r| {
            r["method"] == "GET"
                && r["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with("/payment_methods"))
        })
        .map(|r| r["received_ms"].as_i64().unwrap())
        .collect();
    received.sort_unstable();
    assert_eq!(received.len(), 12, "one list per customer");
    // Each answer takes the latency: one after another, each request would come at least
    // that long after the one before.
    assert!(
        received.windows(2).any(|w| w[1] - w[0] < LATENCY_MS / 2),
        "read at once: {received:?}"
    );
    // Never a fifth before one of four has been answered.
    assert!(
        received.windows(5).all(|w| w[4] - w[0] >= LATENCY_MS - 5),
        "at most four at once: {received:?}"
    );
}

on_both_databases!(payment_methods_of_a_few_customers_are_read_at_once);

/// A job that leaves subscriptions out still reads its invoices after their customers, never
/// beside them: only the types of one stage are read at once, whatever the job leaves out.
async fn a_list_is_never_read_beside_its_parents(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.database_pool_size = 11).await;
    let tenant = app.tenant().await;
    seed_stripe(
        &app,
        &tenant,
        json!({"customers": 150, "products": 1, "prices_per_product": 1,
               "invoices": 150, "lines_per_invoice": [1, 2]}),
    )
    .await;
    let id = sync_objects(&app, &tenant, &["invoices", "customers"]).await;
    let done = finished(&app, &tenant, &id).await;
    assert_eq!(done["progress"]["customers"]["written"], 150, "{done}");
    assert_eq!(done["progress"]["invoices"]["written"], 150, "{done}");
    let reads: Vec<String> = app
        .stripe_requests(&tenant)
        .await
        .iter()
        .filter(|r| r["method"] == "GET")
        .filter_map(|r| r["path"].as_str().map(str::to_owned))
        .collect();
    let last_customers = reads.iter().rposition(|p| p == "/v1/customers");
    let first_invoices = reads.iter().position(|p| p == "/v1/invoices");
    assert!(
        matches!((last_customers, first_invoices), (Some(c), Some(i)) if c < i),
        "every page of customers before the first of invoices: {reads:?}"
    );
}

on_both_databases!(a_list_is_never_read_beside_its_parents);

/// A list that fails stops the lists read beside it before their next page, and the job's
/// error is the failing list's, not the others' stop.
async fn a_failing_list_stops_the_lists_read_beside_it(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.database_pool_size = 11).await;
    let tenant = app.tenant().await;
    seed_subscriptions(&app, &tenant, 400).await;
    app.stripe_post(&tenant, "/_emulator/config", &[("latency_ms", "300")])
        .await;
    app.stripe_post(
        &tenant,
        "/_emulator/config",
        &[("fail_path", "/v1/invoices")],
    )
    .await;
    let id = start(&app, &tenant, None).await;
    let ended = ended(&app, &tenant, &id).await;
    assert_eq!(ended["status"], "failed", "{ended}");
    let error = ended["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("/invoices") && error.contains("400"),
        "{ended}"
    );
    let subscriptions = requests_to(&app, &tenant, "/v1/subscriptions").await;
    let payments = requests_to(&app, &tenant, "/v1/payment_intents").await;
    if backend == Backend::Postgres {
        // Read beside the invoices: the pages in flight when they failed, no more (4 each
        // had they gone on).
        assert!(
            subscriptions <= 2 && payments <= 2,
            "{subscriptions} pages of subscriptions and {payments} of payment intents read"
        );
    } else {
        // One list after another: the subscriptions before the invoices, nothing after.
        assert_eq!((subscriptions, payments), (4, 0));
    }
}

on_both_databases!(a_failing_list_stops_the_lists_read_beside_it);

/// A list whose cursor never moves on (a stand-in answering its first page whatever
/// `starting_after` says) fails the job, naming the list: the page it repeats is not asked
/// for again and again, holding the instance's sync worker forever. What was read before it
/// is kept.
async fn a_list_that_never_moves_on_fails_the_job(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    seed_stripe(&app, &tenant, json!({"customers": 150})).await;
    app.stripe_post(
        &tenant,
        "/_emulator/config",
        &[("stuck_path", "/v1/customers")],
    )
    .await;
    let id = sync_customers(&app, &tenant).await;
    let ended = ended(&app, &tenant, &id).await;
    assert_eq!(ended["status"], "failed", "{ended}");
    let error = ended["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("/customers") && error.contains("does not move on"),
        "{ended}"
    );
    assert_eq!(ended["progress"]["customers"]["written"], 100, "{ended}");
    assert_eq!(mirror_counts(&app, &tenant).await["customers"], 100);
    // The first page, then the repeated one (once more on PostgreSQL, where the first was
    // gathered with it for one write and the error comes back on the next read).
    let reads = requests_to(&app, &tenant, "/v1/customers").await;
    assert!((2..=3).contains(&reads), "{reads} pages asked for");
}

on_both_databases!(a_list_that_never_moves_on_fails_the_job);

/// A Stripe that takes longer to answer than the job's lease (5 s in the tests): the worker
/// keeps its lease while it waits, so the second instance's worker never takes the job over
/// and reads its pages again.
async fn a_sync_waiting_on_stripe_longer_than_its_lease_keeps_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let _second = app.second_instance().await;
    let tenant = app.tenant().await;
    stripe_customers(&app, &tenant, 150).await;
    app.stripe_post(&tenant, "/_emulator/config", &[("latency_ms", "7000")])
        .await;
    let id = sync_customers(&app, &tenant).await;
    let done = finished(&app, &tenant, &id).await;
    assert_eq!(done["attempts"], 0, "never taken over: {done}");
    assert_eq!(done["progress"]["customers"]["read"], 150, "{done}");
    assert_eq!(mirror_counts(&app, &tenant).await["customers"], 150);
    assert_eq!(
        requests_to(&app, &tenant, "/v1/customers").await,
        2,
        "each of the two pages read once"
    );
}

on_both_databases!(a_sync_waiting_on_stripe_longer_than_its_lease_keeps_it);

/// A job whose worker vanished without giving it back (an instance killed, for memory say)
/// is taken over once its lease runs out, and that counts as an attempt: it resumes, and one
/// taken over too often fails instead of being run, and killed, for ever.
async fn a_job_taken_over_counts_an_attempt_and_too_many_fail_it(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.sync_worker = false).await;
    let (resumed, doomed) = (app.tenant().await, app.tenant().await);
    stripe_customers(&app, &resumed, 3).await;
    stripe_customers(&app, &doomed, 3).await;
    // Each tenant's job as a killed instance left it: running, its lease run out.
    let abandon = |id: String, attempts: i64| {
        app.query(move |conn| {
            use sales_block::db::schema::sync_jobs;
            diesel::update(sync_jobs::table.find(id))
                .set((
                    sync_jobs::status.eq("running"),
                    sync_jobs::lease_owner.eq("an-instance-that-was-killed"),
                    sync_jobs::lease_until
                        .eq(chrono::Utc::now().naive_utc() - chrono::Duration::seconds(1)),
                    sync_jobs::attempts.eq(attempts),
                ))
                .execute(conn)
        })
    };
    let first = sync_customers(&app, &resumed).await;
    abandon(first.clone(), 0).await;
    let second = sync_customers(&app, &doomed).await;
    abandon(second.clone(), 4).await;

    let _worker = app.second_instance_with(|s| s.sync_worker = true).await;
    let done = finished(&app, &resumed, &first).await;
    assert_eq!(done["attempts"], 1, "the take-over counted: {done}");
    assert_eq!(mirror_counts(&app, &resumed).await["customers"], 3);

    let failed = eventually(60, || async {
        let job = job(&app, &doomed, &second).await;
        (job["status"] == "failed").then_some(job)
    })
    .await;
    assert_eq!(failed["attempts"], 5, "{failed}");
    let error = failed["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("stopped after 5 attempts") && error.contains("lease ran out"),
        "{failed}"
    );
    assert_eq!(
        requests_to(&app, &doomed, "/v1/customers").await,
        0,
        "the job that failed read nothing"
    );
}

on_both_databases!(a_job_taken_over_counts_an_attempt_and_too_many_fail_it);

/// On PostgreSQL two pages of a list are written at once, the second saving the progress
/// after the first commits, while the worker renews its lease: with the database's default
/// isolation set to repeatable read (an operator's choice), the service's sessions still
/// read committed, and the sync ends in one attempt with exact counts, instead of failing on
/// serialization errors and being retried a minute later.
#[tokio::test]
async fn postgres_a_sync_runs_under_a_stricter_default_isolation() {
    let app = spawn_app_with(Backend::Postgres, |s| s.sync_worker = false).await;
    let tenant = app.tenant().await;
    // Enough customers for several writes of gathered pages, each slower than reading the
    // next pages (a trigger sleeps in each): two writes are always in flight.
    seed_stripe(&app, &tenant, json!({"customers": 2000})).await;
    app.query(|conn| {
        use diesel::connection::SimpleConnection;
        conn.batch_execute(
            "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET \
             default_transaction_isolation = %L', current_database(), 'repeatable read'); \
             END $$; \
             CREATE FUNCTION test_slow_write() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END $$; \
             CREATE TRIGGER test_slow_write AFTER INSERT ON customers \
             FOR EACH STATEMENT EXECUTE FUNCTION test_slow_write();",
        )
    })
    .await;
    // Its pool connects after the change: every transaction of its worker is repeatable read.
    let _worker = app.second_instance_with(|s| s.sync_worker = true).await;
    let id = sync_customers(&app, &tenant).await;
    let done = finished(&app, &tenant, &id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["progress"]["customers"]["read"], 2000, "{done}");
    assert_eq!(done["progress"]["customers"]["written"], 2000, "{done}");
    assert_eq!(done["attempts"], 0, "no attempt failed: {done}");
    assert_eq!(done["last_error"], Value::Null, "{done}");
    assert_eq!(mirror_counts(&app, &tenant).await["customers"], 2000);
    assert_eq!(requests_to(&app, &tenant, "/v1/customers").await, 20);
}

/// Two instances with workers: the job is run by one of them only (each page read once), and
/// a canceled job stops.
async fn two_instances_never_run_one_job_and_a_cancel_stops_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let _second = app.second_instance().await;
    let tenant = app.tenant().await;
    stripe_customers(&app, &tenant, 350).await;
    app.stripe_post(&tenant, "/_emulator/config", &[("latency_ms", "100")])
        .await;
    let id = sync_customers(&app, &tenant).await;
    finished(&app, &tenant, &id).await;
    assert_eq!(requests_to(&app, &tenant, "/v1/customers").await, 4);

    app.stripe_post(&tenant, "/_emulator/config", &[("latency_ms", "500")])
        .await;
    let id = sync_customers(&app, &tenant).await;
    eventually(20, || async {
        (job(&app, &tenant, &id).await["status"] == "running").then_some(())
    })
    .await;
    let (before, after) = cancel_and_count_pages(&app, &tenant, &id).await;
    assert!(
        after <= before + 2,
        "at most the page in flight and the one read ahead after the cancel"
    );
    assert_eq!(job(&app, &tenant, &id).await["status"], "canceled");
}

on_both_databases!(two_instances_never_run_one_job_and_a_cancel_stops_it);

/// Pages that Stripe answers fast are gathered into one write (on PostgreSQL), and a cancel
/// still stops the job at the next page, not after the pages it was gathering.
async fn a_cancel_stops_a_sync_between_pages_that_come_fast(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    seed_stripe(&app, &tenant, json!({"customers": 5000})).await;
    app.stripe_post(&tenant, "/_emulator/config", &[("latency_ms", "20")])
        .await;
    let id = sync_customers(&app, &tenant).await;
    eventually(30, || async {
        (job(&app, &tenant, &id).await["progress"]["customers"]["read"]
            .as_u64()
            .unwrap_or(0)
            > 0)
        .then_some(())
    })
    .await;
    let (before, after) = cancel_and_count_pages(&app, &tenant, &id).await;
    assert!(
        after <= before + 2,
        "at most the page in flight and the one read ahead after the cancel: {before} then {after}"
    );
    assert!(
        after < 50,
        "the job stopped before the end of the list: {after}"
    );
    let stopped = job(&app, &tenant, &id).await;
    assert_eq!(stopped["status"], "canceled", "{stopped}");
}

on_both_databases!(a_cancel_stops_a_sync_between_pages_that_come_fast);

/// An object the mirror cannot keep (a NUL in a field it stores, which PostgreSQL cannot
/// hold; an id out of Stripe's shape) is skipped, as a delivery of it would be refused: the
/// rest of the list is mirrored and the job succeeds, on either database.
async fn a_listed_object_the_mirror_cannot_keep_is_skipped(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let kept = stripe_customers(&app, &tenant, 2).await;
    let bad = app
        .stripe_post(
            &tenant,
            "/v1/customers",
            &[("name", "Nul\u{0}Name"), ("email", "nul@example.com")],
        )
        .await;
    assert_eq!(bad["name"], "Nul\u{0}Name", "Stripe kept the NUL: {bad}");
    let id = sync_customers(&app, &tenant).await;
    let done = finished(&app, &tenant, &id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["progress"]["customers"]["read"], 3, "{done}");
    assert_eq!(done["progress"]["customers"]["written"], 2, "{done}");
    assert_eq!(mirror_counts(&app, &tenant).await["customers"], 2);
    for id in kept {
        let found = app
            .admin_json(&tenant, &format!("/stripe/customers/{id}"))
            .await;
        assert_eq!(
            found["data"]["attributes"]["stripe_customer_id"],
            json!(id),
            "{found}"
        );
    }
}

on_both_databases!(a_listed_object_the_mirror_cannot_keep_is_skipped);

/// An app whose tenant has `n` invoices of 30 lines at Stripe (more than Stripe embeds), and
/// their ids.
async fn invoices_of_30_lines(backend: Backend, n: usize) -> (TestApp, TestTenant, Vec<String>) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    seed_stripe(
        &app,
        &tenant,
        json!({"customers": n, "products": 1, "prices_per_product": 1,
               "invoices": n, "lines_per_invoice": [30, 30]}),
    )
    .await;
    let listed = app.stripe_list(&tenant, "/v1/invoices?limit=100").await;
    let ids: Vec<String> = listed
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), n);
    (app, tenant, ids)
}

/// An invoice deleted at Stripe between its page and the rest of its lines (a draft is deleted
/// for good: it and its lines answer 404) is mirrored as deleted, and the sync goes on: the
/// job succeeds, the other invoice whole. A 404 of the lines of an invoice Stripe still has
/// is no deletion: the job fails, as before, and nothing is marked deleted.
async fn an_invoice_deleted_while_its_lines_are_read_is_mirrored_as_deleted(backend: Backend) {
    use sales_block::db::schema::{invoice_lines, invoices};
    let (app, tenant, ids) = invoices_of_30_lines(backend, 2).await;
    let t = tenant.created.id.clone();
    // Each mirrored invoice: whether it is deleted, and how many lines it has.
    let mirrored = || {
        let t = t.clone();
        app.query(move |conn| {
            let mut out = Vec::new();
            for (invoice, deleted) in invoices::table
                .filter(invoices::tenant_id.eq(&t))
                .select((
                    invoices::stripe_invoice_id,
                    invoices::deleted_at.is_not_null(),
                ))
                .order(invoices::stripe_invoice_id)
                .load::<(String, bool)>(conn)?
            {
                let lines = invoice_lines::table
                    .filter(invoice_lines::tenant_id.eq(&t))
                    .filter(invoice_lines::stripe_invoice_id.eq(&invoice))
                    .count()
                    .get_result::<i64>(conn)?;
                out.push((invoice, deleted, lines));
            }
            Ok(out)
        })
    };
    let sync_invoices = || {
        start(
            &app,
            &tenant,
            Some(json!({"sync": {"objects": ["customers", "invoices"]}})),
        )
    };

    // The first invoice is gone: it and everything under it answer 404.
    let gone = format!("/v1/invoices/{}", ids[0]);
    app.stripe_post(
        &tenant,
        "/_emulator/config",
        &[("missing_path", gone.as_str())],
    )
    .await;
    let done = finished(&app, &tenant, &sync_invoices().await).await;
    assert_eq!(done["progress"]["invoices"]["read"], 2, "{done}");
    let lines = format!("{gone}/lines");
    assert_eq!(
        requests_to(&app, &tenant, &lines).await,
        1,
        "not asked again"
    );
    let after = mirrored().await;
    let of = |rows: &[(String, bool, i64)], id: &str| rows.iter().find(|(i, ..)| i == id).cloned();
    let (_, deleted, _) = of(&after, &ids[0]).expect("the deleted invoice is mirrored");
    assert!(deleted, "{after:?}");
    assert_eq!(
        of(&after, &ids[1]),
        Some((ids[1].clone(), false, 30)),
        "{after:?}"
    );

    // The second invoice's lines answer 404 while Stripe still has it: not a deletion.
    let lines = format!("/v1/invoices/{}/lines", ids[1]);
    app.stripe_post(
        &tenant,
        "/_emulator/config",
        &[("missing_path", lines.as_str())],
    )
    .await;
    let failed = ended(&app, &tenant, &sync_invoices().await).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(
        of(&mirrored().await, &ids[1]),
        Some((ids[1].clone(), false, 30)),
        "still there, not deleted"
    );
}

on_both_databases!(an_invoice_deleted_while_its_lines_are_read_is_mirrored_as_deleted);

/// The check that an invoice whose lines answer 404 is gone waits out a 429 and asks again,
/// as a page's read does; before, the refusal was taken for the invoice still being there,
/// and the job failed for good.
async fn a_refused_check_that_an_invoice_is_gone_is_asked_again(backend: Backend) {
    use sales_block::db::schema::invoices;
    let (app, tenant, ids) = invoices_of_30_lines(backend, 1).await;
    let id = ids[0].clone();
    let gone = format!("/v1/invoices/{id}");
    // The invoice and its lines answer 404; and Stripe takes one request a second, so the
    // check that comes right after the lines' 404 is refused (429, `Retry-After: 1`).
    app.stripe_post(
        &tenant,
        "/_emulator/config",
        &[
            ("missing_path", gone.as_str()),
            ("rate_limit_per_sec", "1"),
            ("retry_after_secs", "1"),
        ],
    )
    .await;
    let job = sync_objects(&app, &tenant, &["invoices"]).await;
    let done = finished(&app, &tenant, &job).await;
    assert_eq!(done["progress"]["invoices"]["read"], 1, "{done}");
    let statuses: Vec<i64> = app
        .stripe_requests(&tenant)
        .await
        .iter()
        .filter(|r| r["method"] == "GET" && r["path"] == gone.as_str())
        .map(|r| r["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses.first(), Some(&429), "refused first: {statuses:?}");
    assert_eq!(
        statuses.last(),
        Some(&404),
        "then asked again: {statuses:?}"
    );
    let t = tenant.created.id.clone();
    let deleted = app
        .query(move |conn| {
            invoices::table
                .filter(invoices::tenant_id.eq(&t))
                .filter(invoices::stripe_invoice_id.eq(&id))
                .select(invoices::deleted_at.is_not_null())
                .first::<bool>(conn)
        })
        .await;
    assert!(deleted, "mirrored as deleted");
}

on_both_databases!(a_refused_check_that_an_invoice_is_gone_is_asked_again);

/// A page and a delivery of one customer: the newer wins, in both orders. The page holds 25
/// customers, so that on PostgreSQL it is first tried as a plain insert (the tenant's first
/// batch), which meets the delivered customer and falls back to the upsert
/// (`db::prepared::try_insert`).
async fn a_page_and_a_delivery_keep_the_newer_state(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let ep = endpoint(&app, &tenant).await;
    let ids = stripe_customers(&app, &tenant, 25).await;
    let now = chrono::Utc::now().timestamp();
    let name_of = |id: String| {
        let app = &app;
        async move {
            use sales_block::db::schema::customers;
            app.query(move |conn| {
                customers::table
                    .filter(customers::stripe_customer_id.eq(id))
                    .select(customers::name)
                    .first::<Option<String>>(conn)
            })
            .await
        }
    };
    // A delivery older than the page: the page (Stripe's name) wins.
    let old =
        json!({"id": ids[0], "object": "customer", "email": "c0@example.com", "name": "Stale"});
    deliver(
        &app,
        &ep,
        &event("evt_old_0", "customer.updated", now - 100, old),
    )
    .await;
    let id = sync_customers(&app, &tenant).await;
    finished(&app, &tenant, &id).await;
    for (i, id) in ids.iter().enumerate() {
        let name = format!("Customer {i}");
        assert_eq!(name_of(id.clone()).await.as_deref(), Some(name.as_str()));
    }
    // A delivery newer than the page wins; a page after it, older than it, loses.
    let newer =
        json!({"id": ids[1], "object": "customer", "email": "c1@example.com", "name": "Newer"});
    deliver(
        &app,
        &ep,
        &event("evt_new_1", "customer.updated", now + 100, newer),
    )
    .await;
    let id = sync_customers(&app, &tenant).await;
    finished(&app, &tenant, &id).await;
    assert_eq!(name_of(ids[1].clone()).await.as_deref(), Some("Newer"));
    assert_eq!(name_of(ids[0].clone()).await.as_deref(), Some("Customer 0"));
    assert_eq!(
        mirrored_emails(&app, &tenant).await.len(),
        25,
        "no customer twice"
    );
}

on_both_databases!(a_page_and_a_delivery_keep_the_newer_state);

/// A tenant connected by Connect syncs its connected account, not its own key's, and a
/// tenant with no Stripe access fails its job with the reason.
async fn a_connected_tenant_syncs_its_connected_account_only(backend: Backend) {
    let (app, platform) =
        crate::connect::connect_app_with(backend, |s| s.sync_on_connect = true).await;
    let tenant = app.tenant().await;
    // On the tenant's own key, before connecting: never to be synced.
    app.stripe_post(&tenant, "/v1/customers", &[("email", "own@example.com")])
        .await;
    let account = sales_block::crypto::random_token("acct_1", 7);
    // The account's history, before it is connected: its events reached no tenant.
    for email in ["a@example.com", "b@example.com"] {
        connected_customer(&app, &platform, &account, email).await;
    }
    crate::connect::connect(&app, &tenant, "connect", &account).await;
    // Connecting queued a sync of every type, which mirrors the account's history.
    let jobs = jobs(&app, &tenant).await["data"].clone();
    let queued: Vec<&Value> = jobs
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["attributes"]["requested_by"] == "stripe-connect")
        .collect();
    assert_eq!(queued.len(), 1, "{jobs}");
    assert_eq!(queued[0]["attributes"]["kind"], "historical");
    assert_eq!(
        queued[0]["attributes"]["objects"].as_array().map(Vec::len),
        Some(11),
        "every type: {jobs}"
    );
    let id = queued[0]["id"].as_str().unwrap().to_owned();
    let done = finished(&app, &tenant, &id).await;
    assert_eq!(done["progress"]["customers"]["written"], 2, "{done}");
    let emails = mirrored_emails(&app, &tenant).await;
    assert_eq!(
        emails,
        vec![
            Some("a@example.com".to_owned()),
            Some("b@example.com".to_owned())
        ]
    );

    // Disconnected: the job fails and says why.
    let gone = app
        .delete("/stripe/account", &tenant, &tenant.admin_token())
        .await;
    assert_eq!(gone.status().as_u16(), 200);
    let id = sync_customers(&app, &tenant).await;
    let failed = eventually(30, || async {
        let job = job(&app, &tenant, &id).await;
        (job["status"] == "failed").then_some(job)
    })
    .await;
    assert!(
        failed["last_error"]
            .as_str()
            .unwrap()
            .contains("not connected"),
        "{failed}"
    );
}

on_both_databases!(a_connected_tenant_syncs_its_connected_account_only);

/// The sync queued by connecting an account is run by another instance that had the tenant
/// cached from before the connection (with the tenant's own key): the job reads the tenant
/// afresh, so it mirrors the connected account, never the key's.
async fn another_instance_runs_the_connect_sync_with_the_new_access(backend: Backend) {
    let (app, platform) = crate::connect::connect_app_with(backend, |s| {
        s.sync_on_connect = true;
        s.sync_worker = false;
    })
    .await;
    let tenant = app.tenant().await;
    app.stripe_post(&tenant, "/v1/customers", &[("email", "own@example.com")])
        .await;
    let account = sales_block::crypto::random_token("acct_1", 7);
    connected_customer(&app, &platform, &account, "connected@example.com").await;
    // The worker's instance serves the tenant first: it caches the tenant, own key and all.
    let other = app
        .second_instance_with(|s| {
            s.sync_worker = true;
            s.tenant_cache_secs = 600;
        })
        .await;
    let served = app
        .http
        .get(format!("{other}/stripe/customers"))
        .header("AppId", tenant.api_key())
        .bearer_auth(tenant.admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(served.status().as_u16(), 200);
    crate::connect::connect(&app, &tenant, "connect", &account).await;
    let jobs = jobs(&app, &tenant).await["data"].clone();
    let id = jobs[0]["id"].as_str().unwrap().to_owned();
    let done = finished(&app, &tenant, &id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let emails = mirrored_emails(&app, &tenant).await;
    assert_eq!(
        emails,
        vec![Some("connected@example.com".to_owned())],
        "{done}"
    );
}

on_both_databases!(another_instance_runs_the_connect_sync_with_the_new_access);

/// A historical sync running through the tenant's own key when the tenant connects a Stripe
/// account: that job was reading the old account, so it is canceled (and says why) and a
/// sync of the connected account replaces it; reconnecting the same account leaves the sync
/// it queued alone.
async fn connecting_another_account_replaces_a_running_sync(backend: Backend) {
    let (app, platform) =
        crate::connect::connect_app_with(backend, |s| s.sync_on_connect = true).await;
    let tenant = app.tenant().await;
    stripe_customers(&app, &tenant, 250).await;
    app.stripe_post(&tenant, "/_emulator/config", &[("latency_ms", "800")])
        .await;
    let old = sync_customers(&app, &tenant).await;
    // And a reconciliation reading the old account's events (250 of them, 3 slow pages).
    let reconciling = start_reconcile(&app, &tenant).await;
    for id in [&old, &reconciling] {
        eventually(30, || async {
            (job(&app, &tenant, id).await["status"] == "running").then_some(())
        })
        .await;
    }
    let account = sales_block::crypto::random_token("acct_1", 7);
    connected_customer(&app, &platform, &account, "connected@example.com").await;
    crate::connect::connect(&app, &tenant, "connect", &account).await;

    for id in [&old, &reconciling] {
        let replaced = job(&app, &tenant, id).await;
        assert_eq!(replaced["status"], "canceled", "{replaced}");
        assert!(
            replaced["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("another Stripe account")),
            "{replaced}"
        );
    }
    let listed = jobs(&app, &tenant).await["data"].clone();
    let new = listed[0]["id"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(listed[0]["attributes"]["requested_by"], "stripe-connect");
    let done = finished(&app, &tenant, &new).await;
    assert_eq!(done["progress"]["customers"]["read"], 1, "{done}");
    assert!(
        mirrored_emails(&app, &tenant)
            .await
            .contains(&Some("connected@example.com".to_owned()))
    );

    // The same account connected again queues a sync, as any connection does; connected
    // once more while that one is queued or running, it is left to finish.
    crate::connect::connect(&app, &tenant, "connect", &account).await;
    let again = jobs(&app, &tenant).await["data"].clone();
    assert_eq!(again.as_array().map(Vec::len), Some(4), "{again}");
    let third = again[0]["id"].as_str().unwrap().to_owned();
    crate::connect::connect(&app, &tenant, "connect", &account).await;
    let kept = job(&app, &tenant, &third).await;
    assert_ne!(kept["status"], "canceled", "{kept}");
    assert_eq!(finished(&app, &tenant, &third).await["status"], "succeeded");
}

on_both_databases!(connecting_another_account_replaces_a_running_sync);

/// The sync queued on connecting an account cannot be written (the database refuses it):
/// the account stays connected (the OAuth state is spent, so undoing the connection would
/// make the admin start over), and no job is left behind.
async fn a_sync_that_cannot_be_queued_leaves_the_account_connected(backend: Backend) {
    let (app, _platform) =
        crate::connect::connect_app_with(backend, |s| s.sync_on_connect = true).await;
    let tenant = app.tenant().await;
    let refuse = if app.postgres_database().is_some() {
        "CREATE FUNCTION test_refuse_jobs() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$; \
         CREATE TRIGGER test_refuse_jobs BEFORE INSERT ON sync_jobs \
         FOR EACH ROW EXECUTE FUNCTION test_refuse_jobs();"
    } else {
        "CREATE TRIGGER test_refuse_jobs BEFORE INSERT ON sync_jobs \
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
    };
    app.query(move |conn| {
        use diesel::connection::SimpleConnection;
        conn.batch_execute(refuse)
    })
    .await;
    let account = sales_block::crypto::random_token("acct_1", 7);
    crate::connect::connect(&app, &tenant, "connect", &account).await;
    let now = app.admin_json(&tenant, "/stripe/account").await["data"]["attributes"].clone();
    assert_eq!(now["status"], "connected", "{now}");
    assert_eq!(now["stripe_account_id"], json!(account), "{now}");
    assert_eq!(jobs(&app, &tenant).await["data"], json!([]));
}

on_both_databases!(a_sync_that_cannot_be_queued_leaves_the_account_connected);

/// Stored events of the tenant, by id.
async fn stored_event_ids(app: &TestApp, tenant: &TestTenant) -> Vec<String> {
    use sales_block::db::schema::stripe_events;
    let t = tenant.created.id.clone();
    app.query(move |conn| {
        stripe_events::table
            .filter(stripe_events::tenant_id.eq(t))
            .select(stripe_events::event_id)
            .load(conn)
    })
    .await
}

/// A job queued through the API starts at once on the instance that queued it, a
/// historical sync and a reconciliation alike: the workers' poll (an hour here) is for jobs
/// other instances queue.
async fn a_queued_job_starts_without_waiting_for_the_poll(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.sync_poll_ms = 3_600_000).await;
    let tenant = app.tenant().await;
    stripe_customers(&app, &tenant, 2).await;
    let ended = |id: String| {
        let (app, tenant) = (&app, &tenant);
        async move {
            eventually(30, || async {
                let job = job(app, tenant, &id).await;
                (job["status"] == "succeeded").then_some(job)
            })
            .await
        }
    };
    // Each job is queued once the workers wait on their poll (their lease, which finds
    // nothing, takes milliseconds): a job queued before would be found without the wake.
    let settle = || tokio::time::sleep(Duration::from_millis(500));
    settle().await;
    let id = sync_customers(&app, &tenant).await;
    let done = ended(id).await;
    assert_eq!(done["progress"]["customers"]["written"], 2, "{done}");
    settle().await;
    let id = start_reconcile(&app, &tenant).await;
    ended(id).await;
}

on_both_databases!(a_queued_job_starts_without_waiting_for_the_poll);

/// Asks for a reconciliation of the tenant's events (202); returns its job's id.
async fn start_reconcile(app: &TestApp, tenant: &TestTenant) -> String {
    let response = app
        .authed(
            Method::POST,
            "/stripe/sync/reconcile",
            tenant,
            &tenant.admin_token(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    json_body(response).await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn reconcile(app: &TestApp, tenant: &TestTenant) -> Value {
    let id = start_reconcile(app, tenant).await;
    finished(app, tenant, &id).await
}

/// A long historical sync of one tenant does not hold another tenant's reconciliation back:
/// the instance's reconciliations have a worker of their own.
async fn a_reconciliation_does_not_wait_for_a_long_sync(backend: Backend) {
    let app = spawn_app(backend).await;
    let (slow, other) = (app.tenant().await, app.tenant().await);
    stripe_customers(&app, &slow, 450).await;
    app.stripe_post(&slow, "/_emulator/config", &[("latency_ms", "1500")])
        .await;
    let long = sync_customers(&app, &slow).await;
    eventually(30, || async {
        (job(&app, &slow, &long).await["status"] == "running").then_some(())
    })
    .await;
    let reconciled = reconcile(&app, &other).await;
    assert_eq!(reconciled["status"], "succeeded", "{reconciled}");
    let still = job(&app, &slow, &long).await;
    assert_eq!(
        still["status"], "running",
        "the reconciliation waited for the long sync to end: {still}"
    );
    finished(&app, &slow, &long).await;
}

on_both_databases!(a_reconciliation_does_not_wait_for_a_long_sync);

async fn sync_status(app: &TestApp, tenant: &TestTenant) -> Value {
    app.admin_json(tenant, "/stripe/sync/status").await["data"]["attributes"].clone()
}

/// Deliveries that fail for a while are recovered by reconciliation (applied once), and when
/// Stripe's retries arrive later they are duplicates; deliveries lost for good are recovered
/// too; a second reconciliation recovers nothing.
async fn missed_deliveries_are_recovered_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    crate::receiver::receiving_endpoint(&app, &tenant).await;
    let user = app
        .authed(
            Method::GET,
            "/stripe/sync/status",
            &tenant,
            &tenant.user_token("u1"),
        )
        .send()
        .await
        .unwrap();
    assert_error(user, 403, "admin_required").await;
    assert_eq!(
        sync_status(&app, &tenant).await["reconciled_through"],
        Value::Null
    );
    // Stripe's deliveries fail for a while (retried later).
    app.http
        .post(format!(
            "{}/_emulator/delivery/config",
            app.emulator.base_url()
        ))
        .bearer_auth(&tenant.stripe_key)
        .json(&json!({"fail": true, "retry_base_ms": 300, "retry_max_ms": 300, "max_attempts": 50}))
        .send()
        .await
        .unwrap();
    let ids = stripe_customers(&app, &tenant, 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        stored_event_ids(&app, &tenant).await.is_empty(),
        "nothing delivered"
    );

    let done = reconcile(&app, &tenant).await;
    assert_eq!(done["kind"], "reconcile");
    let events = &done["progress"]["events"];
    assert_eq!(events["written"], 3, "{done}");
    assert_eq!(mirror_counts(&app, &tenant).await["customers"], 3);
    let status = sync_status(&app, &tenant).await;
    assert_eq!(status["last_recovered"], 3);
    assert_eq!(status["total_recovered"], 3);
    assert!(status["reconciled_through"].is_string());
    assert_eq!(status["gap_before"], Value::Null);
    let stored = stored_event_ids(&app, &tenant).await;
    assert_eq!(stored.len(), 3);

    // Stripe's retries now succeed: answered as duplicates, nothing stored twice.
    app.http
        .post(format!(
            "{}/_emulator/delivery/config",
            app.emulator.base_url()
        ))
        .bearer_auth(&tenant.stripe_key)
        .json(&json!({"fail": false}))
        .send()
        .await
        .unwrap();
    eventually(15, || async {
        let attempts = app.stripe_list(&tenant, "/_emulator/deliveries").await;
        let delivered = attempts.iter().filter(|a| a["succeeded"] == true).count();
        (delivered >= 3).then_some(())
    })
    .await;
    assert_eq!(
        stored_event_ids(&app, &tenant).await.len(),
        3,
        "the retries were duplicates"
    );

    // Lost for good: recovered by the next run, which also reads the overlap again.
    let now = chrono::Utc::now().timestamp();
    app.http
        .post(format!(
            "{}/_emulator/delivery/config",
            app.emulator.base_url()
        ))
        .bearer_auth(&tenant.stripe_key)
        .json(&json!({"drop_until": now + 3600}))
        .send()
        .await
        .unwrap();
    app.stripe_post(
        &tenant,
        &format!("/v1/customers/{}", ids[0]),
        &[("name", "Renamed")],
    )
    .await;
    let done = reconcile(&app, &tenant).await;
    assert_eq!(done["progress"]["events"]["written"], 1, "{done}");
    let status = sync_status(&app, &tenant).await;
    assert_eq!(status["last_recovered"], 1);
    assert_eq!(status["total_recovered"], 4);
    let name: Option<String> = {
        use sales_block::db::schema::customers;
        let id = ids[0].clone();
        app.query(move |conn| {
            customers::table
                .filter(customers::stripe_customer_id.eq(id))
                .select(customers::name)
                .first(conn)
        })
        .await
    };
    assert_eq!(name.as_deref(), Some("Renamed"));
    let again = reconcile(&app, &tenant).await;
    assert_eq!(again["progress"]["events"]["written"], 0);
    assert_eq!(stored_event_ids(&app, &tenant).await.len(), 4);
}

on_both_databases!(missed_deliveries_are_recovered_once);

/// A tenant last reconciled longer ago than Stripe keeps events is told of the gap (on the
/// job and in the status, with the hint to backfill); a full historical sync clears it.
async fn a_gap_past_thirty_days_is_reported_until_a_backfill(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    stripe_customers(&app, &tenant, 1).await;
    {
        use sales_block::db::schema::sync_state;
        let t = tenant.created.id.clone();
        let old = chrono::Utc::now().timestamp() - 40 * 24 * 3600;
        app.query(move |conn| {
            diesel::insert_into(sync_state::table)
                .values((
                    sync_state::tenant_id.eq(t),
                    sync_state::reconciled_through.eq(old),
                    sync_state::last_recovered.eq(0),
                    sync_state::total_recovered.eq(0),
                    sync_state::updated_at.eq(chrono::Utc::now().naive_utc()),
                ))
                .execute(conn)
        })
        .await;
    }
    let done = reconcile(&app, &tenant).await;
    assert!(
        done["note"].as_str().unwrap().contains("historical sync"),
        "{done}"
    );
    let status = sync_status(&app, &tenant).await;
    assert!(status["gap_before"].is_string(), "{status}");
    assert!(
        status["hint"]
            .as_str()
            .unwrap()
            .contains("/stripe/sync/historical")
    );
    let id = start(&app, &tenant, None).await;
    finished(&app, &tenant, &id).await;
    let status = sync_status(&app, &tenant).await;
    assert_eq!(status["gap_before"], Value::Null, "{status}");
}

on_both_databases!(a_gap_past_thirty_days_is_reported_until_a_backfill);

/// Stripe's 429s are absorbed (back-off, then the same page again): the sync ends with exact
/// counts. One request per second at Stripe: five pages cannot all fall in seconds of their own.
async fn rate_limits_are_absorbed(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    stripe_customers(&app, &tenant, 450).await;
    app.http
        .post(format!("{}/_emulator/config", app.emulator.base_url()))
        .bearer_auth(&tenant.stripe_key)
        .json(&json!({"rate_limit_per_sec": 1}))
        .send()
        .await
        .unwrap();
    let id = sync_customers(&app, &tenant).await;
    let done = finished(&app, &tenant, &id).await;
    assert_eq!(done["progress"]["customers"]["read"], 450);
    assert_eq!(mirror_counts(&app, &tenant).await["customers"], 450);
    let refused = app
        .stripe_requests(&tenant)
        .await
        .iter()
        .filter(|r| r["status"] == 429)
        .count();
    assert!(refused >= 1, "Stripe refused some requests with 429");
}

on_both_databases!(rate_limits_are_absorbed);

/// A 429's `Retry-After` is waited for, by every list the job reads at once and not only by
/// the one refused: after a refusal the tenant's key sends Stripe nothing until the time
/// Stripe asked for is up. (A back-off of one second, with the other lists calling on
/// meanwhile, sent requests within a second of each refusal.)
async fn a_429_holds_every_list_until_its_retry_after(backend: Backend) {
    const EACH: u64 = 250;
    let app = spawn_app_with(backend, |s| {
        s.database_pool_size = 11;
        // Three lists calling at once are one more a second than Stripe takes.
        s.sync_requests_per_sec = 3;
    })
    .await;
    let tenant = app.tenant().await;
    seed_subscriptions(&app, &tenant, EACH).await;
    app.stripe_post(
        &tenant,
        "/_emulator/config",
        &[("rate_limit_per_sec", "2"), ("retry_after_secs", "3")],
    )
    .await;
    let lists = ["subscriptions", "invoices", "payment_intents"];
    let id = sync_objects(
        &app,
        &tenant,
        &["customers", "subscriptions", "invoices", "payment_intents"],
    )
    .await;
    let done = finished(&app, &tenant, &id).await;
    for list in lists {
        assert_eq!(done["progress"][list]["read"], EACH, "{list}: {done}");
    }
    assert_quiet_after_refusals(&app.stripe_requests(&tenant).await);
}

/// The requests of the key to Stripe's lists: none came 0.8-2.9 s after a refusal asking
/// for 3 s (`retry_after_secs`), and there was one.
fn assert_quiet_after_refusals(requests: &[Value]) {
    let lists = [
        "/v1/events",
        "/v1/products",
        "/v1/customers",
        "/v1/subscriptions",
        "/v1/invoices",
        "/v1/payment_intents",
    ];
    let received: Vec<(i64, bool)> = requests
        .iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| lists.contains(&p)))
        .map(|r| (r["received_ms"].as_i64().unwrap(), r["status"] == 429))
        .collect();
    let refusals: Vec<i64> = received
        .iter()
        .filter(|(_, refused)| *refused)
        .map(|(at, _)| *at)
        .collect();
    assert!(
        !refusals.is_empty(),
        "Stripe refused no request: {requests:?}"
    );
    for refused in refusals {
        // Requests already on their way when the refusal was answered come in at once (the
        // old back-off of one second sent the next at 1,000 ms).
        let early: Vec<i64> = received
            .iter()
            .map(|(at, _)| at - refused)
            .filter(|after| (800..2_900).contains(after))
            .collect();
        assert!(
            early.is_empty(),
            "requests came {early:?} ms after a refusal that asked for 3 s"
        );
    }
}

/// The pause after a 429 is the tenant's, not one job's: a reconciliation running beside a
/// historical sync of the same tenant (the instance's other worker) waits too.
async fn a_429_holds_the_tenants_other_job_too(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.sync_requests_per_sec = 3).await;
    let tenant = app.tenant().await;
    // Events to reconcile (five pages: customers created), and products to sync (seeded,
    // without events): the two jobs write nothing of each other's.
    stripe_customers(&app, &tenant, 500).await;
    seed_stripe(&app, &tenant, json!({"products": 500})).await;
    app.stripe_post(
        &tenant,
        "/_emulator/config",
        &[("rate_limit_per_sec", "2"), ("retry_after_secs", "3")],
    )
    .await;
    let sync = sync_objects(&app, &tenant, &["products"]).await;
    let reconciliation = start_reconcile(&app, &tenant).await;
    let done = finished(&app, &tenant, &sync).await;
    assert_eq!(done["progress"]["products"]["read"], 500, "{done}");
    finished(&app, &tenant, &reconciliation).await;
    let requests = app.stripe_requests(&tenant).await;
    for path in ["/v1/events", "/v1/products"] {
        assert!(
            requests
                .iter()
                .any(|r| r["path"] == path && r["status"] == 200),
            "{path} was read"
        );
    }
    assert_quiet_after_refusals(&requests);
}

on_both_databases!(
    a_429_holds_every_list_until_its_retry_after,
    a_429_holds_the_tenants_other_job_too
);

/// With reconcile_interval_secs set, each tenant is reconciled on its own, and a missed
/// delivery is recovered without anyone asking.
async fn reconciliation_runs_on_its_own(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.reconcile_interval_secs = 1).await;
    let tenant = app.tenant().await;
    stripe_customers(&app, &tenant, 2).await;
    let status = eventually(60, || async {
        let status = sync_status(&app, &tenant).await;
        (status["total_recovered"] == 2).then_some(status)
    })
    .await;
    assert!(status["reconciled_through"].is_string());
    assert_eq!(mirror_counts(&app, &tenant).await["customers"], 2);
    let listed = json_body(
        app.authed(
            Method::GET,
            "/stripe/sync/jobs",
            &tenant,
            &tenant.admin_token(),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert!(
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["attributes"]["requested_by"] == "reconcile_interval"),
        "{listed}"
    );
}

on_both_databases!(reconciliation_runs_on_its_own);

/// A subscription with its items, `has_more` as given.
fn subscription_with_items(status: &str, items: usize, has_more: bool) -> Value {
    let data: Vec<Value> = (0..items)
        .map(|i| {
            json!({"id": format!("si_{i}"), "quantity": 1,
                   "current_period_start": 1_700_000_000, "current_period_end": 1_702_592_000,
                   "price": {"id": format!("price_{i}"), "unit_amount": 100, "currency": "usd",
                             "recurring": {"interval": "month"}}})
        })
        .collect();
    json!({"id": "sub_cut", "object": "subscription", "customer": "cus_cut", "status": status,
           "cancel_at_period_end": false, "created": 1_700_000_000, "metadata": {},
           "items": {"object": "list", "data": data, "has_more": has_more,
                     "url": "/v1/subscription_items?subscription=sub_cut"}})
}

/// An event whose item list Stripe cut (`has_more`) updates the subscription but leaves its
/// stored items alone (before, the items past the 10 embedded were deleted); a complete list
/// replaces them.
async fn a_cut_item_list_in_an_event_keeps_the_stored_items(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let ep = endpoint(&app, &tenant).await;
    let now = chrono::Utc::now().timestamp();
    let items = || async {
        use sales_block::db::schema::{subscription_items, subscriptions};
        app.query(|conn| {
            let items = subscription_items::table
                .filter(subscription_items::stripe_subscription_id.eq("sub_cut"))
                .count()
                .get_result::<i64>(conn)?;
            let status = subscriptions::table
                .filter(subscriptions::stripe_subscription_id.eq("sub_cut"))
                .select(subscriptions::status)
                .first::<String>(conn)?;
            Ok((items, status))
        })
        .await
    };
    let full = subscription_with_items("active", 12, false);
    deliver(
        &app,
        &ep,
        &event("evt_cut_1", "customer.subscription.created", now - 10, full),
    )
    .await;
    assert_eq!(items().await, (12, "active".to_owned()));
    let cut = subscription_with_items("past_due", 10, true);
    deliver(
        &app,
        &ep,
        &event("evt_cut_2", "customer.subscription.updated", now - 5, cut),
    )
    .await;
    assert_eq!(items().await, (12, "past_due".to_owned()));
    let fewer = subscription_with_items("active", 2, false);
    deliver(
        &app,
        &ep,
        &event("evt_cut_3", "customer.subscription.updated", now, fewer),
    )
    .await;
    assert_eq!(items().await, (2, "active".to_owned()));
}

on_both_databases!(a_cut_item_list_in_an_event_keeps_the_stored_items);

/// `sales-block sync --tenant K --objects customers --wait` (the real binary) queues a job,
/// follows it while the service's worker runs it, and exits 0 when it succeeded;
/// `sync status` prints it; an unknown type is refused before anything is queued.
async fn the_cli_queues_and_follows_a_sync(backend: Backend) {
    use secrecy::ExposeSecret;
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    stripe_customers(&app, &tenant, 30).await;
    let (url, key, api_key) = (
        app.state.settings.database_url.clone(),
        app.state.settings.master_key.expose_secret().to_owned(),
        tenant.api_key().to_owned(),
    );
    let (queued, status, refused) = tokio::task::spawn_blocking(move || {
        let queued = crate::cli::sales_block(
            &url,
            &key,
            &[
                "sync",
                "--tenant",
                &api_key,
                "--objects",
                "customers",
                "--wait",
            ],
        );
        let refused = crate::cli::try_sales_block(
            &url,
            &key,
            &["sync", "--tenant", &api_key, "--objects", "accounts"],
        );
        let status = crate::cli::sales_block(&url, &key, &["sync", "status", "--tenant", &api_key]);
        (queued, status, refused)
    })
    .await
    .unwrap();
    let queued: Value = serde_json::from_str(&queued).expect("the job as JSON");
    assert_eq!(queued["job"]["requested_by"], "cli");
    let status: Value = serde_json::from_str(&status).expect("status as JSON");
    assert_eq!(status["jobs"][0]["id"], queued["id"]);
    assert_eq!(status["jobs"][0]["job"]["status"], "succeeded");
    assert_eq!(
        status["jobs"][0]["job"]["progress"]["customers"]["read"],
        30
    );
    assert!(!refused.0, "an unknown type fails");
    assert!(refused.2.contains("unknown object type"), "{}", refused.2);
    assert_eq!(
        status["total_jobs"], 1,
        "nothing queued for the refused one"
    );
    assert_eq!(mirror_counts(&app, &tenant).await["customers"], 30);
}

on_both_databases!(the_cli_queues_and_follows_a_sync);

/// How many sessions of the test's database wait on a lock.
#[derive(diesel::QueryableByName)]
struct Waiting {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// A sync queued inside a caller's transaction (the binding of a connected account) while
/// another session is creating one for the same app: the unique index makes it wait, then
/// refuse; the caller's transaction goes on and learns which job won, instead of being
/// aborted by the refused insert (PostgreSQL aborts a transaction at its first error).
#[tokio::test]
async fn postgres_a_sync_queued_in_a_transaction_meets_a_racing_one() {
    use diesel::connection::SimpleConnection;
    let app = spawn_app_with(Backend::Postgres, |s| s.sync_worker = false).await;
    let tenant = app.tenant().await;
    let tenant_id = tenant.created.id.clone();
    let url = app.state.settings.database_url.clone();
    let racing = sales_block::sync::new_job(
        &tenant_id,
        sales_block::sync::HISTORICAL,
        &["customers".to_owned()],
        None,
        None,
        "admin-2",
        None,
    )
    .unwrap();
    let racing_id = racing.id.clone();
    // Another session has inserted its job and not committed yet.
    let (inserted, inserted_rx) = std::sync::mpsc::channel::<()>();
    let (commit, commit_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let mut pg = PgConnection::establish(&url).expect("a second session");
        pg.batch_execute("BEGIN").unwrap();
        let mut conn = sales_block::db::AnyConnection::Postgresql(pg);
        sales_block::db::sync_jobs::insert(&mut conn, &racing).unwrap();
        inserted.send(()).unwrap();
        let _ = commit_rx.recv_timeout(Duration::from_secs(30));
        conn.batch_execute("COMMIT").unwrap();
    });
    tokio::task::spawn_blocking(move || inserted_rx.recv_timeout(Duration::from_secs(10)))
        .await
        .unwrap()
        .unwrap();
    let queue = {
        let (db, tenant_id) = (app.state.db.clone(), tenant_id.clone());
        tokio::spawn(async move {
            db.run(move |conn| {
                sales_block::db::write_transaction(conn, |conn| {
                    let queued =
                        sales_block::sync::queue_full_sync(conn, &tenant_id, "stripe-connect", "")?;
                    // The caller's transaction is still usable after the refusal.
                    diesel::sql_query("SELECT 1").execute(conn)?;
                    Ok::<_, sales_block::error::ApiError>(queued)
                })
            })
            .await
        })
    };
    // The queueing session waits on the racing insert's unique entry: then it commits.
    eventually(10, || async {
        let waiting = app
            .query(|conn| {
                diesel::sql_query(
                    "SELECT count(*) AS n FROM pg_stat_activity \
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                )
                .get_result::<Waiting>(conn)
            })
            .await;
        (waiting.n > 0).then_some(())
    })
    .await;
    commit.send(()).unwrap();
    tokio::task::spawn_blocking(move || holder.join())
        .await
        .unwrap()
        .unwrap();
    let queued = queue
        .await
        .unwrap()
        .expect("the caller's transaction commits");
    let won = queued.expect_err("the racing job was first");
    assert_eq!(won.id, racing_id);
}
