//! POST /stripe/{url_id}/webhook: signatures, dedup, ordering, ties and leniency, through real
//! HTTP deliveries signed as Stripe signs them.

use diesel::prelude::*;
use hmac::{Hmac, Mac};
use reqwest::Method;
use sales_block::db::schema::{stripe_events, subscriptions};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{
    Backend, TestApp, TestTenant, assert_error, eventually, json_body, spawn_app,
};
use crate::on_both_databases;

/// Stripe's scheme, written out independently of the service's verifier.
pub(crate) fn stripe_signature(body: &str, secret: &str, t: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

pub(crate) struct Endpoint {
    pub(crate) url_id: String,
    pub(crate) secret: String,
}

/// An endpoint whose secret the test signs with. The emulator's own deliveries for it go to
/// a closed port, so the events a test sends by hand are the only ones the receiver sees.
pub(crate) async fn endpoint(app: &TestApp, tenant: &TestTenant) -> Endpoint {
    create_endpoint(
        app,
        tenant,
        json!({"events": ["*"], "url": "http://127.0.0.1:9/elsewhere"}),
    )
    .await
}

/// An endpoint pointing at this app's receiver: Stripe (the emulator) delivers to it.
pub(crate) async fn receiving_endpoint(app: &TestApp, tenant: &TestTenant) -> Endpoint {
    create_endpoint(app, tenant, json!({"events": ["*"]})).await
}

async fn create_endpoint(app: &TestApp, tenant: &TestTenant, webhook: Value) -> Endpoint {
    let response = app
        .post_json(
            "/stripe/webhooks",
            tenant,
            &tenant.admin_token(),
            &json!({ "webhook": webhook }),
        )
        .await;
    let w = json_body(response).await["data"]["attributes"].clone();
    Endpoint {
        url_id: w["url_id"].as_str().unwrap().to_owned(),
        secret: w["signing_secret"].as_str().unwrap().to_owned(),
    }
}

pub(crate) async fn deliver_raw(
    app: &TestApp,
    url_id: &str,
    body: &str,
    signature: Option<String>,
) -> reqwest::Response {
    let mut request = app
        .request(Method::POST, &format!("/stripe/{url_id}/webhook"))
        .header("content-type", "application/json; charset=utf-8")
        .body(body.to_owned());
    if let Some(signature) = signature {
        request = request.header("Stripe-Signature", signature);
    }
    request.send().await.unwrap()
}

/// Delivers a signed event and expects 200 {"received": true}.
pub(crate) async fn deliver(app: &TestApp, ep: &Endpoint, event: &Value) {
    let body = event.to_string();
    let signature = stripe_signature(&body, &ep.secret, chrono::Utc::now().timestamp());
    let response = deliver_raw(app, &ep.url_id, &body, Some(signature)).await;
    assert_eq!(response.status().as_u16(), 200, "{event}");
    assert_eq!(json_body(response).await, json!({"received": true}));
}

pub(crate) fn event(id: &str, kind: &str, created: i64, object: Value) -> Value {
    json!({"id": id, "object": "event", "type": kind, "created": created,
           "api_version": "2026-09-30.endive", "livemode": false, "pending_webhooks": 1,
           "data": {"object": object}})
}

fn subscription_object(id: &str, status: &str, amount: i64) -> Value {
    json!({"id": id, "object": "subscription", "customer": "cus_evt", "status": status,
           "cancel_at_period_end": false, "created": 1_700_000_000, "metadata": {"k": status},
           "items": {"object": "list", "data": [{"id": "si_1", "quantity": 1,
               "current_period_start": 1_700_000_000, "current_period_end": 1_702_592_000,
               "price": {"id": format!("price_{amount}"), "unit_amount": amount, "currency": "usd",
                         "recurring": {"interval": "month"}}}]}})
}

pub(crate) async fn events_stored(app: &TestApp) -> Vec<(String, String)> {
    app.query(|conn| {
        stripe_events::table
            .order(stripe_events::received_at.asc())
            .select((stripe_events::event_id, stripe_events::outcome))
            .load::<(String, String)>(conn)
    })
    .await
}

async fn mirrored(app: &TestApp, sub: &str) -> Option<(String, Option<i64>, Option<i64>)> {
    let sub = sub.to_owned();
    app.query(move |conn| {
        subscriptions::table
            .filter(subscriptions::stripe_subscription_id.eq(sub))
            .select((
                subscriptions::status,
                subscriptions::plan_amount,
                subscriptions::watermark,
            ))
            .first::<(String, Option<i64>, Option<i64>)>(conn)
            .optional()
    })
    .await
}

async fn bad_signatures_and_unknown_endpoints_write_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let ep = endpoint(&app, &tenant).await;
    let body = event(
        "evt_sig",
        "customer.subscription.created",
        1,
        subscription_object("sub_sig", "active", 100),
    )
    .to_string();
    let now = chrono::Utc::now().timestamp();
    // Outside the 300 s tolerance with room for the clock to tick while the cases run (the
    // exact boundary is `signature`'s unit test, with a fixed clock).
    let outside = 330;
    let cases = [
        (None, "missing_signature"),
        (Some("garbage".to_owned()), "invalid_signature"),
        (Some(format!("t={now}")), "invalid_signature"),
        (
            Some(stripe_signature(&body, &ep.secret, now - outside)),
            "invalid_signature",
        ),
        (
            Some(stripe_signature(&body, &ep.secret, now + outside)),
            "invalid_signature",
        ),
        (
            Some(stripe_signature(&body, "whsec_wrong", now)),
            "invalid_signature",
        ),
        (
            Some(stripe_signature(&format!("{body} "), &ep.secret, now)),
            "invalid_signature",
        ),
    ];
    for (signature, code) in cases {
        let response = deliver_raw(&app, &ep.url_id, &body, signature.clone()).await;
        assert_error(response, 400, code).await;
    }
    let response = deliver_raw(
        &app,
        "wh_unknown",
        &body,
        Some(stripe_signature(&body, &ep.secret, now)),
    )
    .await;
    assert_error(response, 404, "not_found").await;
    // Signed correctly but not an event.
    let not_event = r#"{"hello":"world"}"#;
    let response = deliver_raw(
        &app,
        &ep.url_id,
        not_event,
        Some(stripe_signature(not_event, &ep.secret, now)),
    )
    .await;
    assert_error(response, 400, "invalid_event").await;
    assert!(events_stored(&app).await.is_empty());
    assert_eq!(mirrored(&app, "sub_sig").await, None);
}

async fn an_event_is_applied_once_and_a_duplicate_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let ep = endpoint(&app, &tenant).await;
    let created = event(
        "evt_1",
        "customer.subscription.created",
        1_800_000_000,
        subscription_object("sub_evt", "active", 700),
    );
    deliver(&app, &ep, &created).await;
    assert_eq!(
        mirrored(&app, "sub_evt").await,
        Some(("active".into(), Some(700), Some(1_800_000_000)))
    );
    // The admin list shows it, a user does not (no customer of theirs).
    let listed = json_body(
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
        listed["data"][0]["attributes"]["stripe_subscription_id"],
        "sub_evt"
    );
    assert_eq!(
        listed["data"][0]["attributes"]["metadata"],
        json!({"k": "active"})
    );

    deliver(&app, &ep, &created).await;
    deliver(&app, &ep, &created).await;
    assert_eq!(
        events_stored(&app).await,
        vec![("evt_1".to_owned(), "applied".to_owned())]
    );

    // Unknown types and unknown fields are stored and answered 200.
    deliver(
        &app,
        &ep,
        &event(
            "evt_future",
            "quantum.entangled",
            1_800_000_001,
            json!({"id": "qe_1", "new_field": [1, 2]}),
        ),
    )
    .await;
    let stored = events_stored(&app).await;
    assert_eq!(stored[1], ("evt_future".to_owned(), "ignored".to_owned()));
}

async fn older_events_never_overwrite_newer_state_and_deleted_stays_deleted(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let ep = endpoint(&app, &tenant).await;
    let t = 1_800_000_000;
    // Updated arrives before created (common at Stripe).
    deliver(
        &app,
        &ep,
        &event(
            "evt_b",
            "customer.subscription.updated",
            t + 10,
            subscription_object("sub_o", "past_due", 2000),
        ),
    )
    .await;
    deliver(
        &app,
        &ep,
        &event(
            "evt_a",
            "customer.subscription.created",
            t,
            subscription_object("sub_o", "incomplete", 1000),
        ),
    )
    .await;
    assert_eq!(
        mirrored(&app, "sub_o").await,
        Some(("past_due".into(), Some(2000), Some(t + 10)))
    );

    // Deleted, then a late update from before the delete.
    deliver(
        &app,
        &ep,
        &event(
            "evt_d",
            "customer.subscription.deleted",
            t + 30,
            subscription_object("sub_o", "canceled", 2000),
        ),
    )
    .await;
    deliver(
        &app,
        &ep,
        &event(
            "evt_c",
            "customer.subscription.updated",
            t + 20,
            subscription_object("sub_o", "active", 3000),
        ),
    )
    .await;
    assert_eq!(
        mirrored(&app, "sub_o").await,
        Some(("canceled".into(), Some(2000), Some(t + 30)))
    );
    let outcomes: Vec<String> = events_stored(&app)
        .await
        .into_iter()
        .map(|(_, o)| o)
        .collect();
    assert_eq!(outcomes, vec!["applied", "stale", "applied", "stale"]);
}

async fn a_same_second_tie_is_settled_by_reading_stripe(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let ep = endpoint(&app, &tenant).await;
    // A real subscription at Stripe (the emulator), created through our API.
    let token = tenant.user_token("tie");
    let customer = app.customer(&tenant, &token, "tie@example.com").await;
    let price = app.price(&tenant, 1234, Some("month")).await;
    let created = json_body(
        app.post_json("/stripe/subscriptions", &tenant, &token,
            &json!({"subscription": {"customer_id": customer["unique_id"], "price_id": price, "trial_period_days": 5}}))
        .await,
    )
    .await;
    let sub = created["data"]["attributes"]["stripe_subscription_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = chrono::Utc::now().timestamp() + 100;
    // Two events of the same second carrying different (invented) states.
    deliver(
        &app,
        &ep,
        &event(
            "evt_t1",
            "customer.subscription.updated",
            t,
            subscription_object(&sub, "past_due", 1),
        ),
    )
    .await;
    assert_eq!(mirrored(&app, &sub).await.unwrap().0, "past_due");
    deliver(
        &app,
        &ep,
        &event(
            "evt_t2",
            "customer.subscription.updated",
            t,
            subscription_object(&sub, "unpaid", 2),
        ),
    )
    .await;
    // Neither payload won: Stripe's current state did.
    assert_eq!(
        mirrored(&app, &sub).await,
        Some(("trialing".into(), Some(1234), Some(t)))
    );
    assert_eq!(
        events_stored(&app).await[1],
        ("evt_t2".to_owned(), "refreshed".to_owned())
    );
}

async fn payment_and_checkout_events_are_mirrored(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let ep = endpoint(&app, &tenant).await;
    let pi = json!({"id": "pi_evt", "object": "payment_intent", "amount": 4200, "currency": "eur",
        "status": "succeeded", "customer": null, "payment_method": "pm_1", "created": 1_800_000_000, "metadata": {}});
    deliver(
        &app,
        &ep,
        &event("evt_p", "payment_intent.succeeded", 1_800_000_000, pi),
    )
    .await;
    let cs = json!({"id": "cs_evt", "object": "checkout.session", "mode": "payment", "status": "complete",
        "payment_status": "paid", "amount_total": 4200, "currency": "eur", "payment_intent": "pi_evt",
        "customer_details": {"email": "buyer@example.com"}, "expires_at": 1_800_086_400, "created": 1_800_000_000});
    deliver(
        &app,
        &ep,
        &event("evt_cs", "checkout.session.completed", 1_800_000_001, cs),
    )
    .await;
    let outcomes: Vec<String> = events_stored(&app)
        .await
        .into_iter()
        .map(|(_, o)| o)
        .collect();
    assert_eq!(outcomes, vec!["applied", "applied"]);
    let (amount, status): (i64, String) = app
        .query(|conn| {
            sales_block::db::schema::payments::table
                .filter(sales_block::db::schema::payments::stripe_payment_intent_id.eq("pi_evt"))
                .select((
                    sales_block::db::schema::payments::amount,
                    sales_block::db::schema::payments::status,
                ))
                .first(conn)
        })
        .await;
    assert_eq!((amount, status.as_str()), (4200, "succeeded"));
    // The session exists only in the event (an invented id), so read the mirror directly.
    let email: Option<String> = app
        .query(|conn| {
            sales_block::db::schema::checkout_sessions::table
                .filter(sales_block::db::schema::checkout_sessions::stripe_session_id.eq("cs_evt"))
                .select(sales_block::db::schema::checkout_sessions::customer_email)
                .first(conn)
        })
        .await;
    assert_eq!(email.as_deref(), Some("buyer@example.com"));
}

/// Stripe pretty-prints its deliveries; the event is stored without the whitespace between
/// tokens (a third of a typical body), and stays the same JSON, strings untouched.
async fn a_pretty_printed_delivery_is_stored_compact_and_unchanged(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let ep = endpoint(&app, &tenant).await;
    let mut object = subscription_object("sub_pretty", "active", 700);
    object["description"] = json!("two  spaces\n and \"quotes\"");
    let sent = event(
        "evt_pretty",
        "customer.subscription.created",
        1_800_000_000,
        object,
    );
    let body = serde_json::to_string_pretty(&sent).unwrap();
    let signature = stripe_signature(&body, &ep.secret, chrono::Utc::now().timestamp());
    let response = deliver_raw(&app, &ep.url_id, &body, Some(signature)).await;
    assert_eq!(response.status().as_u16(), 200);
    let stored: String = app
        .query(|conn| {
            stripe_events::table
                .filter(stripe_events::event_id.eq("evt_pretty"))
                .select(stripe_events::payload)
                .first(conn)
        })
        .await;
    assert_eq!(stored, sent.to_string());
    assert!(
        stored.len() < body.len() * 3 / 4,
        "{} of {}",
        stored.len(),
        body.len()
    );
    assert_eq!(serde_json::from_str::<Value>(&stored).unwrap(), sent);
}

on_both_databases!(
    a_pretty_printed_delivery_is_stored_compact_and_unchanged,
    bad_signatures_and_unknown_endpoints_write_nothing,
    an_event_is_applied_once_and_a_duplicate_changes_nothing,
    older_events_never_overwrite_newer_state_and_deleted_stays_deleted,
    a_same_second_tie_is_settled_by_reading_stripe,
    payment_and_checkout_events_are_mirrored,
);

/// Runs `sql` on the PostgreSQL server as the admin (for taking a test database away).
pub(crate) async fn postgres_admin(sql: String) {
    tokio::task::spawn_blocking(move || {
        let mut conn = PgConnection::establish(&crate::helpers::postgres_admin_url()).unwrap();
        diesel::sql_query(sql).execute(&mut conn).unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn postgres_a_delivery_while_the_database_is_down_is_503_and_stripes_retry_succeeds() {
    let app = spawn_app(Backend::Postgres).await;
    let tenant = app.tenant().await;
    let ep = endpoint(&app, &tenant).await;
    let db = app.postgres_database().unwrap();
    // The database goes away: no new connections, existing ones killed.
    postgres_admin(format!("ALTER DATABASE \"{db}\" ALLOW_CONNECTIONS false")).await;
    postgres_admin(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}' AND pid <> pg_backend_pid()"
    ))
    .await;
    let event = event(
        "evt_down",
        "customer.subscription.created",
        1_800_000_000,
        subscription_object("sub_down", "active", 900),
    );
    let body = event.to_string();
    let signature = stripe_signature(&body, &ep.secret, chrono::Utc::now().timestamp());
    let response = deliver_raw(&app, &ep.url_id, &body, Some(signature)).await;
    assert_error(response, 503, "service_unavailable").await;

    // It comes back; Stripe's retry (a fresh t) is stored and applied once.
    postgres_admin(format!("ALTER DATABASE \"{db}\" ALLOW_CONNECTIONS true")).await;
    deliver(&app, &ep, &event).await;
    deliver(&app, &ep, &event).await;
    assert_eq!(
        events_stored(&app).await,
        vec![("evt_down".to_owned(), "applied".to_owned())]
    );
    assert_eq!(mirrored(&app, "sub_down").await.unwrap().0, "active");
}

#[tokio::test]
async fn postgres_the_same_event_delivered_at_once_to_two_instances_is_applied_once() {
    let app = spawn_app(Backend::Postgres).await;
    let tenant = app.tenant().await;
    let ep = endpoint(&app, &tenant).await;
    let second = app.second_instance().await;
    let t = 1_800_000_000;
    // Ten deliveries of one event, alternating between the instances, all at once; plus
    // concurrent events for one object: the newest state must win.
    let mut deliveries = Vec::new();
    for i in 0..10 {
        let base = if i % 2 == 0 {
            app.address.clone()
        } else {
            second.clone()
        };
        let body = event(
            "evt_same",
            "customer.subscription.created",
            t,
            subscription_object("sub_race", "incomplete", 100),
        )
        .to_string();
        deliveries.push((base, body));
    }
    for (i, status) in ["active", "past_due", "unpaid", "canceled"]
        .iter()
        .enumerate()
    {
        let i = i64::try_from(i).unwrap();
        let base = if i % 2 == 0 {
            second.clone()
        } else {
            app.address.clone()
        };
        let body = event(
            &format!("evt_u{i}"),
            "customer.subscription.updated",
            t + 10 + i,
            subscription_object("sub_race", status, 100 + i),
        )
        .to_string();
        deliveries.push((base, body));
    }
    let sends = deliveries.into_iter().map(|(base, body)| {
        let http = app.http.clone();
        let signature = stripe_signature(&body, &ep.secret, chrono::Utc::now().timestamp());
        let url = format!("{base}/stripe/{}/webhook", ep.url_id);
        tokio::spawn(async move {
            http.post(url)
                .header("Stripe-Signature", signature)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    });
    let mut statuses = Vec::new();
    for send in sends.collect::<Vec<_>>() {
        statuses.push(send.await.unwrap());
    }
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let stored = events_stored(&app).await;
    assert_eq!(stored.iter().filter(|(id, _)| id == "evt_same").count(), 1);
    assert_eq!(stored.len(), 5);
    assert_eq!(
        mirrored(&app, "sub_race").await,
        Some(("canceled".into(), Some(103), Some(t + 13)))
    );
}

async fn customer_events_update_the_mirror_and_a_deletion_sticks(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let ep = endpoint(&app, &tenant).await;
    let token = tenant.user_token("cust-owner");
    let created = app.customer(&tenant, &token, "before@example.com").await;
    let cus = created["stripe_customer_id"].as_str().unwrap().to_owned();
    let t = chrono::Utc::now().timestamp() + 100;
    let object = |email: &str| {
        json!({"id": cus, "object": "customer", "email": email, "name": "Renamed",
        "invoice_settings": {"default_payment_method": {"id": "pm_evt", "object": "payment_method"}},
        "metadata": {"tier": "gold"}})
    };
    deliver(
        &app,
        &ep,
        &event(
            "evt_cu1",
            "customer.updated",
            t,
            object("after@example.com"),
        ),
    )
    .await;
    let row = app
        .query({
            let cus = cus.clone();
            move |conn| {
                let tenant_id = conn_tenant(conn, &cus);
                sales_block::db::customers::find_by_any_id(
                    conn,
                    &tenant_id,
                    &cus,
                    &sales_block::db::customers::Visibility::All,
                )
            }
        })
        .await
        .unwrap();
    assert_eq!(row.email.as_deref(), Some("after@example.com"));
    assert_eq!(row.name.as_deref(), Some("Renamed"));
    assert_eq!(row.default_payment_method.as_deref(), Some("pm_evt"));
    assert_eq!(row.owner_subject, "cust-owner", "the owner is kept");

    // Deleted at Stripe: the customer is gone for every id form, and a late update from
    // before the deletion does not bring it back.
    deliver(
        &app,
        &ep,
        &event(
            "evt_cu2",
            "customer.deleted",
            t + 100,
            object("after@example.com"),
        ),
    )
    .await;
    deliver(
        &app,
        &ep,
        &event(
            "evt_cu3",
            "customer.updated",
            t + 50,
            object("late@example.com"),
        ),
    )
    .await;
    let body = json!({"portal": {"return_url": "https://app.example.com/account"}});
    for id in [created["unique_id"].as_str().unwrap(), cus.as_str()] {
        let response = app
            .post_json(
                &format!("/stripe/customers/{id}/portal"),
                &tenant,
                &token,
                &body,
            )
            .await;
        assert_error(response, 404, "not_found").await;
    }
    let outcomes: Vec<String> = events_stored(&app)
        .await
        .into_iter()
        .map(|(_, o)| o)
        .collect();
    assert_eq!(outcomes, vec!["applied", "applied", "stale"]);

    // A customer created outside this service appears, visible to admins only.
    deliver(
        &app,
        &ep,
        &event(
            "evt_cu4",
            "customer.created",
            t,
            json!({"id": "cus_outside", "object": "customer", "email": "o@example.com"}),
        ),
    )
    .await;
    let owner: String = app
        .query(|conn| {
            sales_block::db::schema::customers::table
                .filter(sales_block::db::schema::customers::stripe_customer_id.eq("cus_outside"))
                .select(sales_block::db::schema::customers::owner_subject)
                .first(conn)
        })
        .await;
    assert_eq!(owner, "");
}

/// The tenant that owns a mirrored `cus_` id.
fn conn_tenant(conn: &mut sales_block::db::AnyConnection, cus: &str) -> String {
    sales_block::db::schema::customers::table
        .filter(sales_block::db::schema::customers::stripe_customer_id.eq(cus))
        .select(sales_block::db::schema::customers::tenant_id)
        .first(conn)
        .unwrap()
}

on_both_databases!(customer_events_update_the_mirror_and_a_deletion_sticks);

async fn stripes_own_deliveries_keep_the_mirror_current(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    // The endpoint points at this app's receiver; the emulator delivers to it for real.
    let _endpoint = receiving_endpoint(&app, &tenant).await;
    let token = tenant.user_token("flow");
    let customer = app.customer(&tenant, &token, "flow@example.com").await;
    let price = app.price(&tenant, 2500, Some("month")).await;
    let created = json_body(
        app.post_json("/stripe/subscriptions", &tenant, &token,
            &json!({"subscription": {"customer_id": customer["unique_id"], "price_id": price, "card_token": "pm_card_visa"}}))
        .await,
    )
    .await;
    let sub = created["data"]["attributes"]["stripe_subscription_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    assert_eq!(created["data"]["attributes"]["status"], "active");

    // A change made at Stripe, not through us (the dashboard): only the webhook tells us.
    app.stripe_post(
        &tenant,
        &format!("/v1/subscriptions/{sub}"),
        &[
            ("cancel_at_period_end", "true"),
            ("metadata[source]", "dashboard"),
        ],
    )
    .await;
    let listed = eventually(15, || async {
        let body = json_body(
            app.authed(Method::GET, "/stripe/subscriptions", &tenant, &token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let s = body["data"][0]["attributes"].clone();
        (s["cancel_at_period_end"] == true).then_some(s)
    })
    .await;
    assert_eq!(listed["metadata"]["source"], "dashboard");
    assert_eq!(listed["status"], "active");

    // Every event Stripe emitted arrives, is stored once and settles; every delivery was
    // acknowledged with a 200.
    let mut emitted: Vec<String> = app
        .stripe_list(&tenant, "/v1/events?limit=100")
        .await
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    emitted.sort();
    assert!(emitted.len() >= 5, "{emitted:?}");
    let stored = eventually(15, || async {
        let stored = events_stored(&app).await;
        let mut ids: Vec<String> = stored.iter().map(|(id, _)| id.clone()).collect();
        ids.sort();
        let settled = stored.iter().all(|(_, o)| o != "refresh_pending");
        (ids == emitted && settled).then_some(stored)
    })
    .await;
    assert!(
        stored
            .iter()
            .all(|(_, o)| ["applied", "stale", "ignored", "refreshed"].contains(&o.as_str())),
        "{stored:?}"
    );
    // The emulator logs an attempt once it has read the answer, which can be after the
    // event is stored: wait for the log to catch up, then hold it to one attempt per event.
    let attempts = eventually(15, || async {
        let attempts = app.stripe_list(&tenant, "/_emulator/deliveries").await;
        (attempts.len() >= emitted.len()).then_some(attempts)
    })
    .await;
    assert_eq!(
        attempts.len(),
        emitted.len(),
        "one attempt per event: {attempts:?}"
    );
    assert!(attempts.iter().all(|a| a["status"] == 200), "{attempts:?}");
}

on_both_databases!(stripes_own_deliveries_keep_the_mirror_current);

async fn a_rolled_secret_verifies_and_the_old_one_retires(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let ep = endpoint(&app, &tenant).await;
    let roll = |body: Value, token: String, tenant: &TestTenant| {
        let request = app
            .authed(
                Method::POST,
                &format!("/stripe/webhooks/{}/secrets", ep.url_id),
                tenant,
                &token,
            )
            .json(&body);
        async move { request.send().await.unwrap() }
    };
    let sample = |id: &str, created: i64| {
        event(
            id,
            "customer.subscription.created",
            created,
            subscription_object(&format!("sub_{id}"), "active", 100),
        )
    };
    let send = |secret: &str, event: &Value| {
        let body = event.to_string();
        let signature = stripe_signature(&body, secret, chrono::Utc::now().timestamp());
        let url_id = ep.url_id.clone();
        let app = &app;
        async move {
            deliver_raw(app, &url_id, &body, Some(signature))
                .await
                .status()
                .as_u16()
        }
    };

    // Only an admin of this app may roll; a bad secret is refused.
    let other = app.tenant().await;
    assert_error(
        roll(
            json!({"secret": {"signing_secret": "whsec_new_secret_1"}}),
            tenant.user_token("u"),
            &tenant,
        )
        .await,
        403,
        "admin_required",
    )
    .await;
    assert_error(
        roll(
            json!({"secret": {"signing_secret": "whsec_new_secret_1"}}),
            other.admin_token(),
            &other,
        )
        .await,
        404,
        "not_found",
    )
    .await;
    let error = assert_error(
        roll(
            json!({"secret": {"signing_secret": "sk_test_oops"}}),
            tenant.admin_token(),
            &tenant,
        )
        .await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(error["source"]["pointer"], "/secret/signing_secret");
    let error = assert_error(roll(json!({"secret": {"signing_secret": "whsec_new_secret_1", "expire_previous_in": 90000}}), tenant.admin_token(), &tenant).await, 422, "validation_error").await;
    assert_eq!(error["source"]["pointer"], "/secret/expire_previous_in");

    // Roll with an overlap: both secrets verify.
    let response = roll(
        json!({"secret": {"signing_secret": "whsec_new_secret_1", "expire_previous_in": 3600}}),
        tenant.admin_token(),
        &tenant,
    )
    .await;
    assert_eq!(response.status().as_u16(), 201);
    let body = json_body(response).await;
    assert!(
        body["data"]["attributes"].get("signing_secret").is_none(),
        "never echoed"
    );
    assert!(
        body["data"]["attributes"]["previous_expires_at"]
            .as_str()
            .is_some()
    );
    assert_eq!(send("whsec_new_secret_1", &sample("r1", 1)).await, 200);
    assert_eq!(send(&ep.secret, &sample("r2", 2)).await, 200);

    // Roll again retiring the others now: only the newest verifies.
    let response = roll(
        json!({"secret": {"signing_secret": "whsec_new_secret_2", "expire_previous_in": 0}}),
        tenant.admin_token(),
        &tenant,
    )
    .await;
    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(send("whsec_new_secret_2", &sample("r3", 3)).await, 200);
    assert_eq!(send("whsec_new_secret_1", &sample("r4", 4)).await, 400);
    assert_eq!(send(&ep.secret, &sample("r5", 5)).await, 400);
    let ids: Vec<String> = events_stored(&app)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, vec!["r1", "r2", "r3"]);
}

on_both_databases!(a_rolled_secret_verifies_and_the_old_one_retires);
