//! GET /stripe/charges and GET /stripe/charges/{charge_id}: charges mirrored from the
//! charge events Stripe (the emulator) delivers, under the watermark rule, linked to their
//! refunds, and listed and read as each caller may see their payments.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, TestTenant, assert_error, eventually, json_body, spawn_app,
};
use crate::on_both_databases;
use crate::receiver::{deliver, endpoint, event, events_stored, receiving_endpoint};

async fn get(app: &TestApp, tenant: &TestTenant, token: &str, path: &str) -> reqwest::Response {
    app.authed(Method::GET, path, tenant, token)
        .send()
        .await
        .unwrap()
}

async fn list(app: &TestApp, tenant: &TestTenant, token: &str, query: &str) -> Value {
    let response = get(app, tenant, token, &format!("/stripe/charges{query}")).await;
    assert_eq!(response.status().as_u16(), 200, "{query}");
    json_body(response).await
}

fn attributes(body: &Value) -> Vec<Value> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["attributes"].clone())
        .collect()
}

fn ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The one charge of a payment, once its events have been delivered and `ready` holds.
async fn charge_of(
    app: &TestApp,
    tenant: &TestTenant,
    token: &str,
    payment: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    eventually(20, || async {
        let body = list(app, tenant, token, &format!("?payment_id={payment}")).await;
        let charges = attributes(&body);
        match charges.as_slice() {
            [charge] if ready(charge) => Some(charge.clone()),
            _ => None,
        }
    })
    .await
}

/// Pays through our API; returns (our unique id, the `pi_` id).
async fn pay(app: &TestApp, tenant: &TestTenant, token: &str, payment: Value) -> (String, String) {
    let response = app
        .post_json(
            "/stripe/payments",
            tenant,
            token,
            &json!({ "payment": payment }),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
    let data = json_body(response).await["data"].clone();
    assert_eq!(data["attributes"]["status"], "succeeded", "{data}");
    (
        data["id"].as_str().unwrap().to_owned(),
        data["attributes"]["payment_intent_id"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

async fn refund(app: &TestApp, tenant: &TestTenant, token: &str, fields: Value) -> Value {
    let response = app
        .post_json(
            "/stripe/refunds",
            tenant,
            token,
            &json!({ "refund": fields }),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
    json_body(response).await["data"]["attributes"].clone()
}

async fn paid_declined_and_refunded_charges_are_mirrored_from_stripes_events(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    receiving_endpoint(&app, &tenant).await;
    let token = tenant.user_token("buyer");

    // Paid: the card, the receipt and the amounts, as charge.succeeded carries them.
    let (unique_id, pi) = pay(
        &app,
        &tenant,
        &token,
        json!({"amount": 5000, "currency": "usd", "payment_method": "pm_card_visa",
               "description": "Order 7"}),
    )
    .await;
    let paid = charge_of(&app, &tenant, &token, &unique_id, |_| true).await;
    let ch = paid["stripe_charge_id"].as_str().unwrap().to_owned();
    assert!(ch.starts_with("ch_"), "{paid}");
    assert_eq!(paid["charge_id"], ch.as_str());
    assert_eq!(paid["payment_intent_id"], pi.as_str());
    for (field, value) in [
        ("amount", json!(5000)),
        ("amount_captured", json!(5000)),
        ("amount_refunded", json!(0)),
        ("currency", json!("usd")),
        ("captured", json!(true)),
        ("paid", json!(true)),
        ("refunded", json!(false)),
        ("status", json!("succeeded")),
        ("payment_method_type", json!("card")),
        ("brand", json!("visa")),
        ("last4", json!("4242")),
        ("failure_code", Value::Null),
        ("description", json!("Order 7")),
    ] {
        assert_eq!(paid[field], value, "{field}: {paid}");
    }
    assert!(
        paid["receipt_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://") && u.contains(&ch)),
        "{paid}"
    );
    // The `pi_` id names the same payment; the charge reads by either of its ids.
    assert_eq!(
        charge_of(&app, &tenant, &token, &pi, |_| true).await["unique_id"],
        paid["unique_id"]
    );
    for id in [ch.as_str(), paid["unique_id"].as_str().unwrap()] {
        let one =
            json_body(get(&app, &tenant, &token, &format!("/stripe/charges/{id}")).await).await;
        assert_eq!(one["data"]["type"], "stripe_charge", "{one}");
        assert_eq!(one["data"]["id"], paid["unique_id"], "{one}");
        assert_eq!(one["data"]["attributes"]["last4"], "4242", "{one}");
    }

    // Declined: charge.failed carries Stripe's failure.
    let response = app
        .post_json(
            "/stripe/payments",
            &tenant,
            &token,
            &json!({"payment": {"amount": 1500, "currency": "usd",
                                "payment_method": "pm_card_chargeDeclined"}}),
        )
        .await;
    let error = assert_error(response, 402, "card_declined").await;
    let declined_pi = error["meta"]["payment_intent_id"].as_str().unwrap();
    let declined = charge_of(&app, &tenant, &token, declined_pi, |_| true).await;
    for (field, value) in [
        ("status", json!("failed")),
        ("paid", json!(false)),
        ("captured", json!(false)),
        ("amount", json!(1500)),
        ("amount_captured", json!(0)),
        ("failure_code", json!("card_declined")),
        ("receipt_url", Value::Null),
    ] {
        assert_eq!(declined[field], value, "{field}: {declined}");
    }
    assert!(
        declined["failure_message"]
            .as_str()
            .is_some_and(|m| m.contains("declined")),
        "{declined}"
    );

    // Refunds: charge.refunded raises the charge's refunded amount, and each refund names
    // its charge.
    let first = refund(
        &app,
        &tenant,
        &token,
        json!({"payment_id": unique_id, "amount": 2000}),
    )
    .await;
    assert_eq!(first["charge_id"], ch.as_str(), "{first}");
    let partly = charge_of(&app, &tenant, &token, &unique_id, |c| {
        c["amount_refunded"] == 2000
    })
    .await;
    assert_eq!(partly["refunded"], false, "{partly}");
    refund(&app, &tenant, &token, json!({"payment_id": pi})).await;
    let fully = charge_of(&app, &tenant, &token, &unique_id, |c| {
        c["amount_refunded"] == 5000
    })
    .await;
    assert_eq!(fully["refunded"], true, "{fully}");
    assert_eq!(fully["amount_captured"], 5000, "{fully}");
    let refunds = json_body(
        get(
            &app,
            &tenant,
            &token,
            &format!("/stripe/refunds?payment_id={unique_id}"),
        )
        .await,
    )
    .await;
    let linked: Vec<Value> = attributes(&refunds)
        .iter()
        .map(|r| r["charge_id"].clone())
        .collect();
    assert_eq!(linked, vec![json!(ch), json!(ch)], "{refunds}");
}

const T: i64 = 1_750_000_000;

fn charge_object(amount_refunded: i64, description: &str) -> Value {
    json!({"id": "ch_order", "object": "charge", "payment_intent": "pi_order",
           "customer": "cus_order", "amount": 3000, "amount_captured": 3000,
           "amount_refunded": amount_refunded, "refunded": amount_refunded == 3000,
           "currency": "eur", "captured": true, "paid": true, "status": "succeeded",
           "description": description, "created": T, "metadata": {"order": "o-9"},
           "payment_method": "pm_order",
           "payment_method_details": {"type": "card",
               "card": {"brand": "mastercard", "last4": "4444"}},
           "receipt_url": "https://pay.stripe.com/receipts/payment/ch_order"})
}

async fn an_older_charge_event_after_a_newer_one_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    let ep = endpoint(&app, &tenant).await;
    let admin = tenant.admin_token();
    let read = || async {
        json_body(get(&app, &tenant, &admin, "/stripe/charges/ch_order").await).await["data"]
            ["attributes"]
            .clone()
    };

    deliver(
        &app,
        &ep,
        &event(
            "evt_new",
            "charge.refunded",
            T + 20,
            charge_object(1000, "newer"),
        ),
    )
    .await;
    // Older state delivered late: stored as stale, the mirror keeps the newer one.
    deliver(
        &app,
        &ep,
        &event(
            "evt_old",
            "charge.succeeded",
            T + 10,
            charge_object(0, "older"),
        ),
    )
    .await;
    let kept = read().await;
    assert_eq!(
        (&kept["amount_refunded"], &kept["description"]),
        (&json!(1000), &json!("newer")),
        "{kept}"
    );
    assert_eq!(
        (&kept["brand"], &kept["last4"], &kept["currency"]),
        (&json!("mastercard"), &json!("4444"), &json!("eur"))
    );
    assert_eq!(kept["metadata"], json!({"order": "o-9"}));
    // A refund event names its charge; a dispute event is not a charge's state.
    deliver(
        &app,
        &ep,
        &event(
            "evt_refund",
            "charge.refund.updated",
            T + 30,
            json!({"id": "re_order", "object": "refund", "amount": 1000, "currency": "eur",
                   "charge": "ch_order", "payment_intent": "pi_order", "status": "succeeded",
                   "created": T + 15, "metadata": {}}),
        ),
    )
    .await;
    deliver(
        &app,
        &ep,
        &event(
            "evt_dispute",
            "charge.dispute.created",
            T + 40,
            json!({"id": "dp_order", "object": "dispute", "charge": "ch_order",
                   "amount": 3000, "currency": "eur", "status": "needs_response",
                   "created": T + 40}),
        ),
    )
    .await;
    // Newer state is written.
    deliver(
        &app,
        &ep,
        &event(
            "evt_newest",
            "charge.updated",
            T + 50,
            charge_object(3000, "newest"),
        ),
    )
    .await;
    let now = read().await;
    assert_eq!(
        (
            &now["amount_refunded"],
            &now["refunded"],
            &now["description"]
        ),
        (&json!(3000), &json!(true), &json!("newest")),
        "{now}"
    );
    let outcomes = events_stored(&app).await;
    let outcome = |id: &str| {
        outcomes
            .iter()
            .find(|(event, _)| event == id)
            .map(|(_, outcome)| outcome.clone())
    };
    assert_eq!(outcome("evt_new").as_deref(), Some("applied"));
    assert_eq!(outcome("evt_old").as_deref(), Some("stale"));
    assert_eq!(outcome("evt_dispute").as_deref(), Some("ignored"));
    assert_eq!(outcome("evt_newest").as_deref(), Some("applied"));
    let refunds = json_body(get(&app, &tenant, &admin, "/stripe/refunds").await).await;
    assert_eq!(
        attributes(&refunds)[0]["charge_id"],
        "ch_order",
        "{refunds}"
    );
    let listed = list(&app, &tenant, &admin, "").await;
    assert_eq!(listed["meta"]["total_count"], 1, "{listed}");
}

async fn charges_are_listed_and_read_only_by_who_may_see_their_payments(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant().await;
    receiving_endpoint(&app, &tenant).await;
    let (alice, bob, admin) = (
        tenant.user_token("alice"),
        tenant.user_token("bob"),
        tenant.admin_token(),
    );
    let customer = app.customer(&tenant, &alice, "alice@example.com").await;
    let cus = customer["stripe_customer_id"].as_str().unwrap().to_owned();
    let card = |amount: i64| json!({"amount": amount, "currency": "usd", "payment_method": "pm_card_visa"});
    let mut with_customer = card(1000);
    with_customer["customer_id"] = json!(cus);
    pay(&app, &tenant, &alice, with_customer).await;
    pay(&app, &tenant, &alice, card(2000)).await;
    let (bobs, _) = pay(&app, &tenant, &bob, card(3000)).await;
    // An admin charges alice's customer: the charge is hers to see too.
    let mut for_alice = card(700);
    for_alice["customer_id"] = customer["unique_id"].clone();
    pay(&app, &tenant, &admin, for_alice).await;

    let all = eventually(20, || async {
        let body = list(&app, &tenant, &admin, "").await;
        (body["data"].as_array().unwrap().len() == 4).then_some(body)
    })
    .await;
    assert_eq!(all["meta"]["total_count"], 4, "{all}");
    assert_eq!(all["meta"]["totalRecords"], 4, "{all}");
    assert_eq!(all["meta"]["current_page"], 1, "{all}");
    let all_ids = ids(&all);
    let amount_of = |body: &Value| {
        let mut amounts: Vec<i64> = attributes(body)
            .iter()
            .map(|c| c["amount"].as_i64().unwrap())
            .collect();
        amounts.sort_unstable();
        amounts
    };
    assert_eq!(amount_of(&all), vec![700, 1000, 2000, 3000]);

    // A user sees the charges of their own payments and customers; nobody else's.
    let alices = list(&app, &tenant, &alice, "").await;
    assert_eq!(amount_of(&alices), vec![700, 1000, 2000], "{alices}");
    assert_eq!(alices["meta"]["total_count"], 3);
    assert_eq!(amount_of(&list(&app, &tenant, &bob, "").await), vec![3000]);
    let carol = tenant.user_token("carol");
    let none = list(&app, &tenant, &carol, "").await;
    assert_eq!(none["data"], json!([]));
    assert_eq!(none["meta"]["total_count"], 0);
    let bobs_charge = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["attributes"]["amount"] == 3000)
        .unwrap()["attributes"]["stripe_charge_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/stripe/charges/{bobs_charge}");
    assert_error(get(&app, &tenant, &alice, &path).await, 404, "not_found").await;
    assert_eq!(get(&app, &tenant, &bob, &path).await.status().as_u16(), 200);
    // Naming bob's payment does not widen alice's list.
    let named = list(&app, &tenant, &alice, &format!("?payment_id={bobs}")).await;
    assert_eq!(named["data"], json!([]));
    // Another app sees none of them, not even by id.
    let other = app.tenant().await;
    let other_admin = other.admin_token();
    assert_eq!(
        list(&app, &other, &other_admin, "").await["data"],
        json!([])
    );
    assert_error(
        get(&app, &other, &other_admin, &path).await,
        404,
        "not_found",
    )
    .await;

    // Filters.
    let by_customer = list(
        &app,
        &tenant,
        &admin,
        &format!("?customer_id={}", customer["unique_id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(amount_of(&by_customer), vec![700, 1000]);
    assert_eq!(
        amount_of(&list(&app, &tenant, &admin, &format!("?customer_id={cus}")).await),
        vec![700, 1000]
    );
    assert_eq!(
        list(&app, &tenant, &admin, "?status=succeeded,pending").await["meta"]["total_count"],
        4
    );
    assert_eq!(
        list(&app, &tenant, &admin, "?status=failed").await["data"],
        json!([])
    );
    let error = assert_error(
        get(&app, &tenant, &admin, "/stripe/charges?status=paid").await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(error["source"]["parameter"], "status");
    for (query, parameter) in [
        ("?records=0", "records"),
        ("?page=-1", "page"),
        ("?starting_after=ch_nothing", "starting_after"),
    ] {
        let error = assert_error(
            get(&app, &tenant, &admin, &format!("/stripe/charges{query}")).await,
            400,
            "invalid_query",
        )
        .await;
        assert_eq!(error["source"]["parameter"], parameter, "{query}");
    }
    // Bob's charge is no cursor for alice.
    assert_error(
        get(
            &app,
            &tenant,
            &alice,
            &format!("/stripe/charges?starting_after={bobs_charge}"),
        )
        .await,
        400,
        "invalid_query",
    )
    .await;

    // Paging: 23blocks pages and Stripe's cursors walk the same order.
    let second = list(&app, &tenant, &admin, "?records=1&page=2").await;
    assert_eq!(ids(&second), all_ids[1..2].to_vec());
    assert_eq!(
        (
            &second["meta"]["current_page"],
            &second["meta"]["total_pages"],
            &second["meta"]["per_page"]
        ),
        (&json!(2), &json!(4), &json!(1))
    );
    let after = list(
        &app,
        &tenant,
        &admin,
        &format!("?limit=2&starting_after={}", all_ids[1]),
    )
    .await;
    assert_eq!(ids(&after), all_ids[2..4].to_vec());
    assert_eq!(after["meta"]["has_more"], false, "{after}");
    let before = list(
        &app,
        &tenant,
        &admin,
        &format!("?limit=1&ending_before={}", all_ids[2]),
    )
    .await;
    assert_eq!(ids(&before), all_ids[1..2].to_vec());
    assert_eq!(before["meta"]["has_more"], true, "{before}");
}

on_both_databases!(
    paid_declined_and_refunded_charges_are_mirrored_from_stripes_events,
    an_older_charge_event_after_a_newer_one_changes_nothing,
    charges_are_listed_and_read_only_by_who_may_see_their_payments,
);
