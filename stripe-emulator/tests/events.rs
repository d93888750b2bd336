//! Events: every state change is recorded as the event Stripe sends for it, in Stripe's
//! order within a request, with `data.object` as `GET` answers it; `GET /v1/events` lists
//! and filters them; and every event type emitted parses through async-stripe (the
//! envelope through `ListEvent`/`RetrieveEvent`, the typed `data.object` through
//! async-stripe-webhook).

mod common;

use std::collections::BTreeSet;

use common::{Raw, Reply, big_stack, client, start, test_key};
use serde_json::Value;
use stripe_core::event::{ListEvent, RetrieveEvent};
use stripe_webhook::{EventObject, Webhook};

/// The events a request caused, oldest first.
async fn events_of(raw: &Raw, reply: &Reply) -> Vec<Value> {
    let request = reply.header("request-id").expect("request id").to_owned();
    let mut events: Vec<Value> = all_events(raw)
        .await
        .into_iter()
        .filter(|e| e["request"]["id"] == request.as_str())
        .collect();
    events.reverse();
    events
}

fn types(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect()
}

/// Every event of the key, newest first, read page by page.
async fn all_events(raw: &Raw) -> Vec<Value> {
    let mut events = Vec::new();
    let mut query = "limit=100".to_owned();
    loop {
        let page = raw.get(&format!("/v1/events?{query}")).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let data = page.json["data"].as_array().expect("data").clone();
        let last = data
            .last()
            .map(|e| e["id"].as_str().expect("id").to_owned());
        events.extend(data);
        match (page.json["has_more"].as_bool(), last) {
            (Some(true), Some(last)) => query = format!("limit=100&starting_after={last}"),
            _ => return events,
        }
    }
}

async fn post_ok(raw: &Raw, path: &str, form: &str) -> Reply {
    let reply = raw.post(path, form).await;
    assert_eq!(reply.status, 200, "{path}: {}", reply.text);
    reply
}

fn id(reply: &Reply) -> String {
    reply.json["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn customer_changes_are_recorded_with_previous_attributes() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());

    let created = post_ok(&raw, "/v1/customers", "email=a%40example.com").await;
    let customer = id(&created);
    let events = events_of(&raw, &created).await;
    assert_eq!(types(&events), ["customer.created"]);
    let event = &events[0];
    assert!(event["id"].as_str().expect("id").starts_with("evt_1"));
    assert_eq!(event["object"], "event");
    assert_eq!(event["api_version"], stripe_emulator::API_VERSION);
    assert_eq!(event["livemode"], false);
    assert_eq!(event["pending_webhooks"], 0);
    assert_eq!(event["request"]["idempotency_key"], Value::Null);
    assert_eq!(event["data"]["object"], created.json);
    assert!(event["data"].get("previous_attributes").is_none());
    assert!(event["created"].as_i64().expect("created") > 1_700_000_000);

    let updated = raw
        .post_idempotent(
            &format!("/v1/customers/{customer}"),
            "name=Ada&metadata[plan]=pro",
            "key-1",
        )
        .await;
    assert_eq!(updated.status, 200);
    let events = events_of(&raw, &updated).await;
    assert_eq!(types(&events), ["customer.updated"]);
    assert_eq!(events[0]["request"]["idempotency_key"], "key-1");
    assert_eq!(events[0]["data"]["object"], updated.json);
    assert_eq!(
        events[0]["data"]["previous_attributes"],
        serde_json::json!({"name": null, "metadata": {}})
    );

    // A replay changes nothing and announces nothing.
    let replay = raw
        .post_idempotent(
            &format!("/v1/customers/{customer}"),
            "name=Ada&metadata[plan]=pro",
            "key-1",
        )
        .await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    // Nor does an update that changes nothing, or a rejected request.
    let same = post_ok(&raw, &format!("/v1/customers/{customer}"), "name=Ada").await;
    assert!(events_of(&raw, &same).await.is_empty());
    let rejected = raw
        .post(&format!("/v1/customers/{customer}"), "email=nope")
        .await;
    assert_eq!(rejected.status, 400);
    assert_eq!(all_events(&raw).await.len(), 2);

    let attached = post_ok(
        &raw,
        "/v1/payment_methods/pm_card_visa/attach",
        &format!("customer={customer}"),
    )
    .await;
    assert_eq!(
        types(&events_of(&raw, &attached).await),
        ["payment_method.attached"]
    );
    let pm = id(&attached);
    let detached = post_ok(&raw, &format!("/v1/payment_methods/{pm}/detach"), "").await;
    let events = events_of(&raw, &detached).await;
    assert_eq!(types(&events), ["payment_method.detached"]);
    assert_eq!(events[0]["data"]["object"]["customer"], Value::Null);

    let deleted = raw.delete(&format!("/v1/customers/{customer}")).await;
    let events = events_of(&raw, &deleted).await;
    assert_eq!(types(&events), ["customer.deleted"]);
    // Announced as it was, not as the tombstone.
    assert_eq!(events[0]["data"]["object"]["email"], "a@example.com");
    assert_eq!(events[0]["data"]["object"]["name"], "Ada");

    let retrieved = raw
        .get(&format!(
            "/v1/events/{}",
            events[0]["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(retrieved.status, 200);
    assert_eq!(retrieved.json, events[0]);
    let missing = raw.get("/v1/events/evt_nope").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json["error"]["code"], "resource_missing");

    // Keys and accounts are isolated.
    let other = Raw::new(&emulator, &test_key());
    assert!(all_events(&other).await.is_empty());
    emulator.stop().await;
}

/// A customer with a default card, a product and a monthly price.
async fn billing_setup(raw: &Raw) -> (String, String) {
    let customer = id(&post_ok(
        raw,
        "/v1/customers",
        "email=b%40example.com&payment_method=pm_card_visa&invoice_settings[default_payment_method]=pm_card_visa",
    )
    .await);
    let price = id(&post_ok(
        raw,
        "/v1/prices",
        "currency=usd&unit_amount=2000&recurring[interval]=month&product_data[name]=Pro",
    )
    .await);
    (customer, price)
}

#[tokio::test]
async fn a_subscription_announces_its_invoice_and_payment_in_stripe_order() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    let (customer, price) = billing_setup(&raw).await;

    let created = post_ok(
        &raw,
        "/v1/subscriptions",
        &format!("customer={customer}&items[0][price]={price}"),
    )
    .await;
    assert_eq!(created.json["status"], "active");
    let events = events_of(&raw, &created).await;
    assert_eq!(
        types(&events),
        [
            "customer.subscription.created",
            "invoice.created",
            "payment_intent.created",
            "invoice.finalized",
            "charge.succeeded",
            "payment_intent.succeeded",
            "invoice.paid",
            "invoice.payment_succeeded",
            "invoice_payment.paid",
        ]
    );
    // Invoices are announced as they pass through draft and open.
    assert_eq!(events[1]["data"]["object"]["status"], "draft");
    assert_eq!(events[3]["data"]["object"]["status"], "open");
    assert_eq!(events[6]["data"]["object"]["status"], "paid");
    // The last event of each object shows it as GET answers it.
    let sub = raw
        .get(&format!("/v1/subscriptions/{}", id(&created)))
        .await;
    assert_eq!(events[0]["data"]["object"], sub.json);
    let invoice = created.json["latest_invoice"].as_str().expect("invoice");
    let invoice = raw.get(&format!("/v1/invoices/{invoice}")).await;
    assert_eq!(events[7]["data"]["object"], invoice.json);
    let charge = events[4]["data"]["object"]["id"].as_str().expect("charge");
    assert_eq!(
        events[4]["data"]["object"],
        raw.get(&format!("/v1/charges/{charge}")).await.json
    );
    // All in the request's second.
    let created_at = events[0]["created"].clone();
    assert!(events.iter().all(|e| e["created"] == created_at));

    let updated = post_ok(
        &raw,
        &format!("/v1/subscriptions/{}", id(&created)),
        "cancel_at_period_end=true",
    )
    .await;
    let events = events_of(&raw, &updated).await;
    assert_eq!(types(&events), ["customer.subscription.updated"]);
    assert_eq!(events[0]["data"]["object"], updated.json);
    let previous = &events[0]["data"]["previous_attributes"];
    assert_eq!(previous["cancel_at_period_end"], false);
    assert_eq!(previous["cancel_at"], Value::Null);

    let canceled = raw
        .delete(&format!("/v1/subscriptions/{}", id(&created)))
        .await;
    assert_eq!(canceled.status, 200);
    let events = events_of(&raw, &canceled).await;
    assert_eq!(types(&events), ["customer.subscription.deleted"]);
    assert_eq!(events[0]["data"]["object"]["status"], "canceled");

    // A declined first payment, then the invoice paid with another card.
    let declining = id(&post_ok(
        &raw,
        "/v1/customers",
        "payment_method=pm_card_chargeDeclined&invoice_settings[default_payment_method]=pm_card_chargeDeclined",
    )
    .await);
    let incomplete = post_ok(
        &raw,
        "/v1/subscriptions",
        &format!("customer={declining}&items[0][price]={price}"),
    )
    .await;
    assert_eq!(incomplete.json["status"], "incomplete");
    assert_eq!(
        types(&events_of(&raw, &incomplete).await),
        [
            "customer.subscription.created",
            "invoice.created",
            "payment_intent.created",
            "invoice.finalized",
            "charge.failed",
            "payment_intent.payment_failed",
            "invoice.payment_failed",
        ]
    );
    let invoice = incomplete.json["latest_invoice"].as_str().expect("invoice");
    let paid = post_ok(
        &raw,
        &format!("/v1/invoices/{invoice}/pay"),
        "payment_method=pm_card_visa",
    )
    .await;
    let events = events_of(&raw, &paid).await;
    assert_eq!(
        types(&events),
        [
            "charge.succeeded",
            "payment_intent.succeeded",
            "invoice.paid",
            "invoice.payment_succeeded",
            "invoice_payment.paid",
            "customer.subscription.updated",
        ]
    );
    // The InvoicePayment, paid with the payment intent of the invoice.
    let payment = &events[4]["data"]["object"];
    assert_eq!(payment["object"], "invoice_payment");
    assert_eq!(payment["invoice"], invoice);
    assert_eq!(payment["status"], "paid");
    assert_eq!(payment["amount_paid"], 2000);
    assert_eq!(
        payment["payment"]["payment_intent"],
        events[1]["data"]["object"]["id"]
    );
    let listed = raw
        .get(&format!("/v1/invoice_payments?invoice={invoice}"))
        .await;
    assert_eq!(listed.json["data"], serde_json::json!([payment]));
    let one = raw
        .get(&format!(
            "/v1/invoice_payments/{}",
            payment["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(&one.json, payment);
    assert_eq!(raw.get("/v1/invoice_payments/inpay_nope").await.status, 404);
    assert_eq!(events[5]["data"]["object"]["status"], "active");
    assert_eq!(
        events[5]["data"]["previous_attributes"],
        serde_json::json!({"status": "incomplete"})
    );
    emulator.stop().await;
}

#[tokio::test]
async fn payment_intents_announce_each_transition() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());

    let manual = post_ok(
        &raw,
        "/v1/payment_intents",
        "amount=1000&currency=usd&payment_method=pm_card_visa&allowed_payment_method_types[0]=card&capture_method=manual&confirm=true",
    )
    .await;
    assert_eq!(
        types(&events_of(&raw, &manual).await),
        [
            "payment_intent.created",
            "charge.succeeded",
            "payment_intent.amount_capturable_updated",
        ]
    );
    let captured = post_ok(
        &raw,
        &format!("/v1/payment_intents/{}/capture", id(&manual)),
        "",
    )
    .await;
    assert_eq!(
        types(&events_of(&raw, &captured).await),
        ["charge.captured", "payment_intent.succeeded"]
    );

    let declined = raw
        .post(
            "/v1/payment_intents",
            "amount=1000&currency=usd&payment_method=pm_card_chargeDeclined&allowed_payment_method_types[0]=card&confirm=true",
        )
        .await;
    assert_eq!(declined.status, 402);
    let events = events_of(&raw, &declined).await;
    assert_eq!(
        types(&events),
        [
            "payment_intent.created",
            "charge.failed",
            "payment_intent.payment_failed",
        ]
    );
    let intent = events[0]["data"]["object"]["id"].as_str().expect("pi");
    assert_eq!(
        events[2]["data"]["object"],
        raw.get(&format!("/v1/payment_intents/{intent}")).await.json
    );
    let canceled = post_ok(&raw, &format!("/v1/payment_intents/{intent}/cancel"), "").await;
    assert_eq!(
        types(&events_of(&raw, &canceled).await),
        ["payment_intent.canceled"]
    );
    emulator.stop().await;
}

#[tokio::test]
async fn events_list_filters_and_pages() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    let mut ids = Vec::new();
    for n in 0..3 {
        let reply = post_ok(&raw, "/v1/customers", &format!("name=c{n}")).await;
        ids.push(id(&reply));
    }
    post_ok(&raw, &format!("/v1/customers/{}", ids[0]), "name=changed").await;
    post_ok(&raw, "/v1/products", "name=P").await;

    let all = all_events(&raw).await;
    assert_eq!(
        types(&all),
        [
            "product.created",
            "customer.updated",
            "customer.created",
            "customer.created",
            "customer.created",
        ],
        "newest first"
    );
    let of = |query: &str| {
        let raw = &raw;
        let query = query.to_owned();
        async move {
            let page = raw.get(&format!("/v1/events?{query}")).await;
            assert_eq!(page.status, 200, "{query}: {}", page.text);
            page.json["data"]
                .as_array()
                .expect("data")
                .iter()
                .map(|e| e["type"].as_str().expect("type").to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(of("type=customer.created").await.len(), 3);
    assert_eq!(of("type=customer.*").await.len(), 4);
    assert_eq!(
        of("types[]=product.created&types[]=customer.updated").await,
        ["product.created", "customer.updated"]
    );
    assert_eq!(of("delivery_success=true").await.len(), 5);
    assert!(of("delivery_success=false").await.is_empty());
    let created = all[4]["created"].as_i64().expect("created");
    assert_eq!(of(&format!("created[gte]={created}")).await.len(), 5);
    assert!(
        of(&format!("created[gt]={}", created + 3600))
            .await
            .is_empty()
    );
    let page = raw.get("/v1/events?limit=2").await;
    assert_eq!(page.json["has_more"], true);
    assert_eq!(page.json["url"], "/v1/events");
    let second = raw
        .get(&format!(
            "/v1/events?limit=2&starting_after={}",
            page.json["data"][1]["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(second.json["data"][0]["id"], all[2]["id"]);
    let both = raw.get("/v1/events?type=customer.created&types[]=x").await;
    assert_eq!(both.status, 400);
    let bad = raw.get("/v1/events?delivery_success=maybe").await;
    assert_eq!(bad.status, 400);
    emulator.stop().await;
}

/// Drives every kind of change the emulator makes, then parses every recorded event
/// through async-stripe: the envelope (`ListEvent`, `RetrieveEvent`) and the typed
/// `data.object` (async-stripe-webhook, as a receiver would).
#[test]
fn every_event_type_parses_through_async_stripe() {
    big_stack(|| async {
        let emulator = start().await;
        let key = test_key();
        let raw = Raw::new(&emulator, &key);
        let (customer, price) = billing_setup(&raw).await;
        post_ok(&raw, &format!("/v1/customers/{customer}"), "name=Bea").await;
        post_ok(&raw, &format!("/v1/prices/{price}"), "nickname=Monthly").await;
        let product = id(&post_ok(&raw, "/v1/products", "name=Gone").await);
        post_ok(&raw, &format!("/v1/products/{product}"), "name=Going").await;
        assert_eq!(
            raw.delete(&format!("/v1/products/{product}")).await.status,
            200
        );
        post_ok(&raw, "/v1/coupons", "id=TEN&percent_off=10").await;
        post_ok(&raw, "/v1/coupons/TEN", "name=Ten").await;
        assert_eq!(raw.delete("/v1/coupons/TEN").await.status, 200);
        let one_time = id(&post_ok(
            &raw,
            "/v1/prices",
            "currency=usd&unit_amount=500&product_data[name]=Setup",
        )
        .await);
        let sub = id(&post_ok(
            &raw,
            "/v1/subscriptions",
            &format!(
                "customer={customer}&items[0][price]={price}&add_invoice_items[0][price]={one_time}"
            ),
        )
        .await);
        post_ok(&raw, &format!("/v1/subscriptions/{sub}"), "metadata[a]=b").await;
        assert_eq!(
            raw.delete(&format!("/v1/subscriptions/{sub}")).await.status,
            200
        );

        // Invoices: finalized then voided; a declined payment.
        let invoice = id(&post_ok(&raw, "/v1/invoices", &format!("customer={customer}")).await);
        post_ok(&raw, &format!("/v1/invoices/{invoice}/finalize"), "").await;
        let declining = id(&post_ok(
            &raw,
            "/v1/customers",
            "payment_method=pm_card_chargeDeclined&invoice_settings[default_payment_method]=pm_card_chargeDeclined",
        )
        .await);
        let failing = raw
            .post(
                "/v1/subscriptions",
                &format!("customer={declining}&items[0][price]={price}"),
            )
            .await;
        assert_eq!(failing.status, 200, "{}", failing.text);
        let open = failing.json["latest_invoice"]
            .as_str()
            .expect("invoice")
            .to_owned();
        assert_eq!(
            raw.post(&format!("/v1/invoices/{open}/pay"), "")
                .await
                .status,
            402
        );
        post_ok(&raw, &format!("/v1/invoices/{open}/void"), "").await;

        // Payment intents.
        let manual = id(&post_ok(
            &raw,
            "/v1/payment_intents",
            "amount=1000&currency=usd&payment_method=pm_card_visa&allowed_payment_method_types[0]=card&capture_method=manual&confirm=true",
        )
        .await);
        post_ok(
            &raw,
            &format!("/v1/payment_intents/{manual}/capture"),
            "amount_to_capture=600",
        )
        .await;
        let uncaptured = id(&post_ok(
            &raw,
            "/v1/payment_intents",
            "amount=1000&currency=usd&payment_method=pm_card_visa&allowed_payment_method_types[0]=card&capture_method=manual&confirm=true",
        )
        .await);
        post_ok(
            &raw,
            &format!("/v1/payment_intents/{uncaptured}/cancel"),
            "",
        )
        .await;
        let declined = raw
            .post(
                "/v1/payment_intents",
                "amount=1000&currency=usd&payment_method=pm_card_chargeDeclined&allowed_payment_method_types[0]=card&confirm=true",
            )
            .await;
        assert_eq!(declined.status, 402);

        // Checkout: payment, setup and subscription modes completed, one expired.
        let mut sessions = Vec::new();
        for form in [
            format!("mode=payment&line_items[0][price]={one_time}&line_items[0][quantity]=1"),
            format!("mode=setup&currency=usd&customer={customer}"),
            format!("mode=subscription&line_items[0][price]={price}&line_items[0][quantity]=1"),
            format!("mode=payment&line_items[0][price]={one_time}&line_items[0][quantity]=2"),
        ] {
            let form = format!("{form}&success_url=https%3A%2F%2Fexample.com%2Fok");
            sessions.push(id(&post_ok(&raw, "/v1/checkout/sessions", &form).await));
        }
        for session in &sessions[..3] {
            let reply = raw
                .post(
                    &format!("/_emulator/checkout/sessions/{session}/complete"),
                    "",
                )
                .await;
            assert_eq!(reply.status, 200, "{}", reply.text);
        }
        post_ok(
            &raw,
            &format!("/v1/checkout/sessions/{}/expire", sessions[3]),
            "",
        )
        .await;

        // Setup intents: one fails, one is canceled; promotion codes.
        let failed = raw
            .post(
                "/v1/setup_intents",
                &format!("customer={customer}&payment_method=pm_card_chargeDeclined&allowed_payment_method_types[0]=card&confirm=true"),
            )
            .await;
        assert_eq!(failed.status, 402, "{}", failed.text);
        let waiting = id(&post_ok(&raw, "/v1/setup_intents", "").await);
        post_ok(&raw, &format!("/v1/setup_intents/{waiting}/cancel"), "").await;
        post_ok(&raw, "/v1/coupons", "id=FIVE&percent_off=5").await;
        let promo = id(&post_ok(
            &raw,
            "/v1/promotion_codes",
            "promotion[type]=coupon&promotion[coupon]=FIVE&code=FIVEOFF",
        )
        .await);
        post_ok(
            &raw,
            &format!("/v1/promotion_codes/{promo}"),
            "active=false",
        )
        .await;

        // Payment methods and customers.
        let pm = id(&post_ok(
            &raw,
            "/v1/payment_methods/pm_card_mastercard/attach",
            &format!("customer={customer}"),
        )
        .await);
        post_ok(&raw, &format!("/v1/payment_methods/{pm}"), "metadata[a]=b").await;
        post_ok(&raw, &format!("/v1/payment_methods/{pm}/detach"), "").await;
        assert_eq!(
            raw.delete(&format!("/v1/customers/{customer}"))
                .await
                .status,
            200
        );

        let events = all_events(&raw).await;
        let seen: BTreeSet<&str> = types(&events).into_iter().collect();
        let expected: BTreeSet<&str> = [
            "charge.captured",
            "charge.failed",
            "charge.refunded",
            "charge.succeeded",
            "checkout.session.completed",
            "checkout.session.expired",
            "coupon.created",
            "coupon.deleted",
            "coupon.updated",
            "customer.created",
            "customer.deleted",
            "customer.subscription.created",
            "customer.subscription.deleted",
            "customer.subscription.updated",
            "customer.updated",
            "invoice.created",
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_failed",
            "invoice.payment_succeeded",
            "invoice.voided",
            "invoice_payment.paid",
            "invoiceitem.created",
            "payment_intent.amount_capturable_updated",
            "payment_intent.canceled",
            "payment_intent.created",
            "payment_intent.payment_failed",
            "payment_intent.succeeded",
            "payment_method.attached",
            "payment_method.detached",
            "payment_method.updated",
            "price.created",
            "price.updated",
            "product.created",
            "product.deleted",
            "product.updated",
            "promotion_code.created",
            "promotion_code.updated",
            "setup_intent.canceled",
            "setup_intent.created",
            "setup_intent.setup_failed",
            "setup_intent.succeeded",
        ]
        .into_iter()
        .collect();
        assert_eq!(seen, expected);

        let stripe = client(&emulator, &key);
        let mut listed = Vec::new();
        let mut page = ListEvent::new()
            .limit(100)
            .send(&stripe)
            .await
            .expect("list");
        loop {
            let last = page.data.last().map(|e| e.id.clone());
            let more = page.has_more;
            listed.extend(page.data);
            match (more, last) {
                (true, Some(last)) => {
                    page = ListEvent::new()
                        .limit(100)
                        .starting_after(last.as_str())
                        .send(&stripe)
                        .await
                        .expect("page");
                }
                _ => break,
            }
        }
        assert_eq!(listed.len(), events.len());
        for (typed, raw_event) in listed.iter().zip(&events) {
            assert_eq!(typed.id.as_str(), raw_event["id"]);
            assert_eq!(typed.type_.as_str(), raw_event["type"]);
        }
        let one = RetrieveEvent::new(listed[0].id.clone())
            .send(&stripe)
            .await
            .expect("retrieve");
        assert_eq!(one.id, listed[0].id);

        // The typed object of every event, as a webhook receiver parses it.
        let secret = "whsec_test";
        for event in &events {
            let body = event.to_string();
            let header = Webhook::generate_test_header(&body, secret, None);
            let parsed = Webhook::construct_event(&body, &header, secret)
                .unwrap_or_else(|e| panic!("{}: {e:?}\n{body}", event["type"]));
            assert!(
                !matches!(parsed.data.object, EventObject::Unknown(_)),
                "{} parses as a typed object",
                event["type"]
            );
            assert_eq!(parsed.id.as_str(), event["id"]);
        }
        emulator.stop().await;
    });
}
