//! Refunds and payment links, end to end: through the real async-stripe client (every
//! answer must deserialize into its type) and raw HTTP (errors, events, the link's hosted
//! page); and saved cards charged off-session, declines included.

mod common;

use std::collections::BTreeSet;

use common::{Raw, Reply, big_stack, client, metadata, start, stripe_error, test_key};
use serde_json::Value;
use stripe_core::charge::RetrieveCharge;
use stripe_core::customer::CreateCustomer;
use stripe_core::payment_intent::{
    CreatePaymentIntent, CreatePaymentIntentOffSession, RetrievePaymentIntent,
};
use stripe_core::refund::{
    CreateRefund, CreateRefundReason, ListRefund, RetrieveRefund, UpdateRefund,
};
use stripe_payment::payment_link::{
    AfterCompletionRedirectParams, CreatePaymentLink, CreatePaymentLinkAfterCompletion,
    CreatePaymentLinkAfterCompletionType, CreatePaymentLinkLineItems,
    CreatePaymentLinkLineItemsPriceData, CreatePaymentLinkLineItemsPriceDataProductData,
    ListLineItemsPaymentLink, ListPaymentLink, RetrievePaymentLink, UpdatePaymentLink,
};
use stripe_payment::payment_method::{AttachPaymentMethod, RetrievePaymentMethod};
use stripe_product::price::{CreatePrice, CreatePriceProductData};
use stripe_shared::{
    ApiErrorsCode, ApiErrorsType, PaymentIntentAllowedPaymentMethodTypes, PaymentIntentStatus,
    PaymentLinkSubmitType, PaymentLinksResourceAfterCompletionType, RefundReason,
};
use stripe_types::{Currency, Expandable};
use stripe_webhook::{EventObject, Webhook};

/// A card payment intent confirmed at creation.
fn card_intent(amount: i64, payment_method: &str) -> CreatePaymentIntent {
    CreatePaymentIntent::new(amount, Currency::USD)
        .payment_method(payment_method)
        .allowed_payment_method_types(vec![PaymentIntentAllowedPaymentMethodTypes::Card])
        .confirm(true)
}

/// A succeeded payment of `amount` cents: the intent id and its charge id.
async fn paid(stripe: &stripe::Client, amount: i64) -> (String, String) {
    let intent = card_intent(amount, "pm_card_visa")
        .send(stripe)
        .await
        .expect("paid intent");
    assert_eq!(intent.status, PaymentIntentStatus::Succeeded);
    let charge = intent.latest_charge.expect("charge").id().to_string();
    (intent.id.to_string(), charge)
}

fn refund_ids(refunds: &[stripe_shared::Refund]) -> Vec<String> {
    refunds.iter().map(|r| r.id.to_string()).collect()
}

#[test]
fn refunds_full_partial_and_by_charge() {
    big_stack(|| async {
        let emulator = start().await;
        let key = test_key();
        let stripe = client(&emulator, &key);

        // A full refund of a payment intent (no amount: all of it).
        let (intent, charge) = paid(&stripe, 5000).await;
        let full = CreateRefund::new()
            .payment_intent(intent.as_str())
            .send(&stripe)
            .await
            .expect("full refund");
        assert!(full.id.as_str().starts_with("re_1"), "{}", full.id);
        assert_eq!(full.amount, 5000);
        assert_eq!(full.currency, Currency::USD);
        assert_eq!(full.status.as_deref(), Some("succeeded"));
        assert_eq!(
            full.charge.as_ref().map(|c| c.id().to_string()),
            Some(charge.clone())
        );
        assert_eq!(
            full.payment_intent.as_ref().map(|p| p.id().to_string()),
            Some(intent.clone())
        );
        assert!(full.reason.is_none());
        assert!(full.balance_transaction.is_some());
        let refunded = RetrieveCharge::new(charge.as_str())
            .send(&stripe)
            .await
            .expect("charge");
        assert!(refunded.refunded);
        assert_eq!(refunded.amount_refunded, 5000);
        assert!(refunded.refunds.is_none(), "refunds only when expanded");
        // The intent itself stays succeeded.
        let pi = RetrievePaymentIntent::new(intent.as_str())
            .send(&stripe)
            .await
            .expect("intent");
        assert_eq!(pi.status, PaymentIntentStatus::Succeeded);
        // Nothing is left.
        let (error, status) = stripe_error(
            CreateRefund::new()
                .payment_intent(intent.as_str())
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 400);
        assert_eq!(error.type_, ApiErrorsType::InvalidRequestError);
        assert_eq!(error.code, Some(ApiErrorsCode::ChargeAlreadyRefunded));
        assert_eq!(
            error.message.as_deref(),
            Some(format!("Charge {charge} has already been refunded.").as_str())
        );

        // Partial refunds, then one for more than what remains.
        let (intent, charge) = paid(&stripe, 3000).await;
        let first = CreateRefund::new()
            .payment_intent(intent.as_str())
            .amount(1000)
            .reason(CreateRefundReason::RequestedByCustomer)
            .metadata(metadata(&[("ticket", "T-1")]))
            .send(&stripe)
            .await
            .expect("first partial");
        assert_eq!(first.amount, 1000);
        assert_eq!(first.reason, Some(RefundReason::RequestedByCustomer));
        assert_eq!(first.metadata, Some(metadata(&[("ticket", "T-1")])));
        let second = CreateRefund::new()
            .payment_intent(intent.as_str())
            .amount(1500)
            .send(&stripe)
            .await
            .expect("second partial");
        let partly = RetrieveCharge::new(charge.as_str())
            .send(&stripe)
            .await
            .expect("charge");
        assert_eq!(partly.amount_refunded, 2500);
        assert!(!partly.refunded);
        let (error, status) = stripe_error(
            CreateRefund::new()
                .payment_intent(intent.as_str())
                .amount(1000)
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 400);
        assert_eq!(error.type_, ApiErrorsType::InvalidRequestError);
        assert_eq!(error.code, Some(ApiErrorsCode::AmountTooLarge));
        assert_eq!(error.param.as_deref(), Some("amount"));
        assert_eq!(
            error.message.as_deref(),
            Some("Refund amount ($10.00) is greater than unrefunded amount on charge ($5.00)")
        );
        // The rejected request changed nothing; the rest can still be refunded.
        let rest = CreateRefund::new()
            .payment_intent(intent.as_str())
            .send(&stripe)
            .await
            .expect("the rest");
        assert_eq!(rest.amount, 500);
        let done = RetrieveCharge::new(charge.as_str())
            .expand(vec!["refunds".to_owned()])
            .send(&stripe)
            .await
            .expect("charge with refunds");
        assert!(done.refunded);
        assert_eq!(done.amount_refunded, 3000);
        let listed = done.refunds.expect("expanded refunds");
        assert_eq!(
            refund_ids(&listed.data),
            [
                rest.id.to_string(),
                second.id.to_string(),
                first.id.to_string()
            ]
        );
        assert_eq!(listed.url, format!("/v1/charges/{charge}/refunds"));
        let (error, _) = stripe_error(
            CreateRefund::new()
                .charge(charge.as_str())
                .amount(1)
                .send(&stripe)
                .await,
        );
        assert_eq!(error.code, Some(ApiErrorsCode::ChargeAlreadyRefunded));

        // More than the whole charge, before any refund.
        let (by_charge_intent, by_charge) = paid(&stripe, 2000).await;
        let (error, _) = stripe_error(
            CreateRefund::new()
                .charge(by_charge.as_str())
                .amount(2001)
                .send(&stripe)
                .await,
        );
        assert_eq!(error.code, Some(ApiErrorsCode::AmountTooLarge));
        assert_eq!(
            error.message.as_deref(),
            Some("Refund amount ($20.01) is greater than charge amount ($20.00)")
        );
        // By charge id.
        let of_charge = CreateRefund::new()
            .charge(by_charge.as_str())
            .amount(700)
            .reason(CreateRefundReason::Duplicate)
            .send(&stripe)
            .await
            .expect("refund by charge");
        assert_eq!(of_charge.amount, 700);
        assert_eq!(
            of_charge
                .payment_intent
                .as_ref()
                .map(|p| p.id().to_string()),
            Some(by_charge_intent.clone()),
            "the charge's intent is named"
        );

        // Lists: by payment intent, by charge, all (paged).
        let of_intent = ListRefund::new()
            .payment_intent(intent.as_str())
            .send(&stripe)
            .await
            .expect("list by intent");
        assert_eq!(
            refund_ids(&of_intent.data),
            [
                rest.id.to_string(),
                second.id.to_string(),
                first.id.to_string()
            ]
        );
        assert_eq!(of_intent.url, "/v1/refunds");
        let listed = ListRefund::new()
            .charge(by_charge.as_str())
            .send(&stripe)
            .await
            .expect("list by charge");
        assert_eq!(refund_ids(&listed.data), [of_charge.id.to_string()]);
        let page = ListRefund::new()
            .limit(2)
            .send(&stripe)
            .await
            .expect("page");
        assert_eq!(
            refund_ids(&page.data),
            [of_charge.id.to_string(), rest.id.to_string()]
        );
        assert!(page.has_more);
        let page = ListRefund::new()
            .limit(10)
            .starting_after(rest.id.as_str())
            .send(&stripe)
            .await
            .expect("page 2");
        assert_eq!(
            refund_ids(&page.data),
            [
                second.id.to_string(),
                first.id.to_string(),
                full.id.to_string()
            ]
        );
        assert!(!page.has_more);

        // Retrieve, update metadata.
        let fetched = RetrieveRefund::new(first.id.clone())
            .send(&stripe)
            .await
            .expect("retrieve");
        assert_eq!(fetched.id, first.id);
        assert_eq!(fetched.amount, 1000);
        let updated = UpdateRefund::new(first.id.clone())
            .metadata(metadata(&[("ticket", ""), ("note", "ok")]))
            .send(&stripe)
            .await
            .expect("update");
        assert_eq!(updated.metadata, Some(metadata(&[("note", "ok")])));
        assert_eq!(updated.amount, 1000);
        let (error, status) = stripe_error(RetrieveRefund::new("re_nope").send(&stripe).await);
        assert_eq!(status, 404);
        assert_eq!(error.code, Some(ApiErrorsCode::ResourceMissing));
        assert_eq!(error.message.as_deref(), Some("No such refund: 're_nope'"));

        // An intent without a successful charge.
        let open = CreatePaymentIntent::new(1000, Currency::USD)
            .send(&stripe)
            .await
            .expect("open intent");
        let (error, status) = stripe_error(
            CreateRefund::new()
                .payment_intent(open.id.as_str())
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 400);
        assert_eq!(error.type_, ApiErrorsType::InvalidRequestError);
        assert_eq!(error.param.as_deref(), Some("payment_intent"));
        assert_eq!(
            error.message.as_deref(),
            Some(
                format!(
                    "This PaymentIntent ({}) does not have a successful charge to refund.",
                    open.id
                )
                .as_str()
            )
        );
        let (error, _) = stripe_error(
            card_intent(1000, "pm_card_chargeDeclined")
                .send(&stripe)
                .await,
        );
        let declined = error.payment_intent.expect("declined intent").id;
        let (error, _) = stripe_error(
            CreateRefund::new()
                .payment_intent(declined.as_str())
                .send(&stripe)
                .await,
        );
        assert_eq!(error.param.as_deref(), Some("payment_intent"));
        emulator.stop().await;
    });
}

#[tokio::test]
async fn refund_validation_and_idempotency() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    let paid = raw
        .post(
            "/v1/payment_intents",
            "amount=2000&currency=usd&payment_method=pm_card_visa&allowed_payment_method_types[0]=card&confirm=true",
        )
        .await;
    assert_eq!(paid.status, 200, "{}", paid.text);
    let intent = paid.json["id"].as_str().expect("id").to_owned();
    let charge = paid.json["latest_charge"]
        .as_str()
        .expect("charge")
        .to_owned();

    for (form, status, code, param) in [
        ("", 400, Some("parameter_missing"), "payment_intent"),
        (
            &format!("payment_intent={intent}&charge={charge}") as &str,
            400,
            Some("parameters_exclusive"),
            "charge",
        ),
        (
            "payment_intent=pi_nope",
            400,
            Some("resource_missing"),
            "payment_intent",
        ),
        ("charge=ch_nope", 400, Some("resource_missing"), "charge"),
        (
            &format!("payment_intent={intent}&amount=0"),
            400,
            Some("parameter_invalid_integer"),
            "amount",
        ),
        (
            &format!("payment_intent={intent}&amount=-5"),
            400,
            Some("parameter_invalid_integer"),
            "amount",
        ),
        (
            &format!("payment_intent={intent}&amount=abc"),
            400,
            Some("parameter_invalid_integer"),
            "amount",
        ),
        (
            &format!("payment_intent={intent}&reason=because"),
            400,
            None,
            "reason",
        ),
        (
            &format!("payment_intent={intent}&currency=eur"),
            400,
            None,
            "currency",
        ),
    ] {
        let reply = raw.post("/v1/refunds", form).await;
        assert_eq!(reply.status, status, "{form}: {}", reply.text);
        let error = &reply.json["error"];
        assert_eq!(error["type"], "invalid_request_error", "{form}");
        assert_eq!(error["code"].as_str(), code, "{form}: {}", reply.text);
        assert_eq!(error["param"], param, "{form}");
    }
    let missing = raw.post("/v1/refunds", "").await;
    assert_eq!(
        missing.json["error"]["message"],
        "One of the following params should be provided for this request: payment_intent or charge."
    );
    // Nothing was refunded by the rejected requests.
    let fetched = raw.get(&format!("/v1/charges/{charge}")).await;
    assert_eq!(fetched.json["amount_refunded"], 0);
    assert_eq!(fetched.json["refunded"], false);
    assert!(fetched.json.get("refunds").is_none());

    // An idempotent retry replays the refund instead of refunding twice.
    let form = format!("payment_intent={intent}&amount=600");
    let once = raw.post_idempotent("/v1/refunds", &form, "refund-1").await;
    assert_eq!(once.status, 200, "{}", once.text);
    let again = raw.post_idempotent("/v1/refunds", &form, "refund-1").await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json["id"], once.json["id"]);
    let fetched = raw.get(&format!("/v1/charges/{charge}")).await;
    assert_eq!(fetched.json["amount_refunded"], 600);
    let listed = raw
        .get(&format!("/v1/refunds?payment_intent={intent}"))
        .await;
    assert_eq!(listed.json["data"].as_array().map(Vec::len), Some(1));
    let with_refunds = raw
        .get(&format!(
            "/v1/charges?payment_intent={intent}&expand[]=data.refunds"
        ))
        .await;
    assert_eq!(with_refunds.status, 200, "{}", with_refunds.text);
    assert_eq!(
        with_refunds.json["data"][0]["refunds"]["data"][0]["id"],
        once.json["id"]
    );
    // Expanding the refund's charge and intent.
    let refund = once.json["id"].as_str().expect("id");
    let expanded = raw
        .get(&format!(
            "/v1/refunds/{refund}?expand[]=charge&expand[]=payment_intent"
        ))
        .await;
    assert_eq!(expanded.json["charge"]["amount_refunded"], 600);
    assert_eq!(expanded.json["payment_intent"]["id"], intent.as_str());

    // Only metadata can change.
    let bad = raw.post(&format!("/v1/refunds/{refund}"), "amount=5").await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json["error"]["code"], "parameter_unknown");
    assert_eq!(bad.json["error"]["param"], "amount");

    // An uncaptured (manual capture) charge is not refundable; a canceled one is refunded.
    let held = raw
        .post(
            "/v1/payment_intents",
            "amount=2000&currency=usd&payment_method=pm_card_visa&allowed_payment_method_types[0]=card&confirm=true&capture_method=manual",
        )
        .await;
    let held_charge = held.json["latest_charge"].as_str().expect("charge");
    let reply = raw
        .post("/v1/refunds", &format!("charge={held_charge}"))
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json["error"]["param"], "charge");
    let reply = raw
        .post(
            "/v1/refunds",
            &format!("payment_intent={}", held.json["id"].as_str().expect("id")),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json["error"]["param"], "payment_intent");
    emulator.stop().await;
}

/// The events a request caused, oldest first.
async fn events_of(raw: &Raw, reply: &Reply) -> Vec<Value> {
    let request = reply.header("request-id").expect("request id").to_owned();
    let page = raw.get("/v1/events?limit=100").await;
    assert_eq!(page.status, 200, "{}", page.text);
    let mut events: Vec<Value> = page.json["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter(|e| e["request"]["id"] == request.as_str())
        .cloned()
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

/// Parses an event as a webhook receiver does, into async-stripe's typed object.
fn typed(event: &Value) -> EventObject {
    let body = event.to_string();
    let secret = "whsec_test";
    let header = Webhook::generate_test_header(&body, secret, None);
    Webhook::construct_event(&body, &header, secret)
        .unwrap_or_else(|e| panic!("{}: {e:?}\n{body}", event["type"]))
        .data
        .object
}

#[test]
fn refunds_and_links_announce_events_that_parse() {
    big_stack(|| async {
        let emulator = start().await;
        let raw = Raw::new(&emulator, &test_key());
        let paid = raw
            .post(
                "/v1/payment_intents",
                "amount=2000&currency=usd&payment_method=pm_card_visa&allowed_payment_method_types[0]=card&confirm=true",
            )
            .await;
        let intent = paid.json["id"].as_str().expect("id").to_owned();

        let refund = raw
            .post(
                "/v1/refunds",
                &format!("payment_intent={intent}&amount=500&metadata[k]=v"),
            )
            .await;
        assert_eq!(refund.status, 200, "{}", refund.text);
        let events = events_of(&raw, &refund).await;
        assert_eq!(types(&events), ["charge.refunded", "refund.created"]);
        assert_eq!(events[0]["data"]["object"]["amount_refunded"], 500);
        assert_eq!(events[0]["data"]["object"]["refunded"], false);
        assert_eq!(events[1]["data"]["object"], refund.json);
        let EventObject::ChargeRefunded(charge) = typed(&events[0]) else {
            panic!("charge.refunded carries a charge")
        };
        assert_eq!(charge.amount_refunded, 500);
        let EventObject::RefundCreated(created) = typed(&events[1]) else {
            panic!("refund.created carries a refund")
        };
        assert_eq!(created.amount, 500);

        let id = refund.json["id"].as_str().expect("id");
        let updated = raw
            .post(&format!("/v1/refunds/{id}"), "metadata[k]=w")
            .await;
        assert_eq!(updated.status, 200, "{}", updated.text);
        let events = events_of(&raw, &updated).await;
        assert_eq!(types(&events), ["refund.updated", "charge.refund.updated"]);
        for event in &events {
            assert_eq!(event["data"]["object"], updated.json);
            assert_eq!(
                event["data"]["previous_attributes"],
                serde_json::json!({"metadata": {"k": "v"}})
            );
        }
        assert!(matches!(typed(&events[0]), EventObject::RefundUpdated(_)));
        assert!(matches!(
            typed(&events[1]),
            EventObject::ChargeRefundUpdated(_)
        ));
        // A full refund of the rest announces the charge as refunded.
        let rest = raw
            .post("/v1/refunds", &format!("payment_intent={intent}"))
            .await;
        let events = events_of(&raw, &rest).await;
        assert_eq!(types(&events), ["charge.refunded", "refund.created"]);
        assert_eq!(events[0]["data"]["object"]["refunded"], true);
        assert_eq!(events[0]["data"]["object"]["amount_refunded"], 2000);

        // Payment links.
        let price = raw
            .post(
                "/v1/prices",
                "currency=usd&unit_amount=1500&product_data[name]=Shirt",
            )
            .await;
        let price = price.json["id"].as_str().expect("price");
        let link = raw
            .post(
                "/v1/payment_links",
                &format!("line_items[0][price]={price}&line_items[0][quantity]=2"),
            )
            .await;
        assert_eq!(link.status, 200, "{}", link.text);
        let events = events_of(&raw, &link).await;
        assert_eq!(types(&events), ["payment_link.created"]);
        assert_eq!(events[0]["data"]["object"], link.json);
        let EventObject::PaymentLinkCreated(typed_link) = typed(&events[0]) else {
            panic!("payment_link.created carries a payment link")
        };
        assert_eq!(typed_link.id.as_str(), link.json["id"]);
        let id = link.json["id"].as_str().expect("id");
        let updated = raw
            .post(&format!("/v1/payment_links/{id}"), "active=false")
            .await;
        let events = events_of(&raw, &updated).await;
        assert_eq!(types(&events), ["payment_link.updated"]);
        assert_eq!(
            events[0]["data"]["previous_attributes"],
            serde_json::json!({"active": true})
        );
        assert!(matches!(
            typed(&events[0]),
            EventObject::PaymentLinkUpdated(_)
        ));
        emulator.stop().await;
    });
}

#[test]
fn payment_links_through_async_stripe() {
    big_stack(|| async {
        let emulator = start().await;
        let stripe = client(&emulator, &test_key());
        let shirt = CreatePrice::new(Currency::USD)
            .unit_amount(1500)
            .product_data(CreatePriceProductData::new("Shirt"))
            .send(&stripe)
            .await
            .expect("price");
        let mug = CreatePrice::new(Currency::USD)
            .unit_amount(500)
            .product_data(CreatePriceProductData::new("Mug"))
            .send(&stripe)
            .await
            .expect("price");
        let line = |price: &stripe_shared::Price, quantity: u64| CreatePaymentLinkLineItems {
            price: Some(price.id.to_string()),
            ..CreatePaymentLinkLineItems::new(quantity)
        };

        let link = CreatePaymentLink::new(vec![line(&shirt, 2), line(&mug, 1)])
            .metadata(metadata(&[("campaign", "spring")]))
            .after_completion(CreatePaymentLinkAfterCompletion {
                redirect: Some(AfterCompletionRedirectParams::new(
                    "https://shop.example.com/thanks",
                )),
                ..CreatePaymentLinkAfterCompletion::new(
                    CreatePaymentLinkAfterCompletionType::Redirect,
                )
            })
            .send(&stripe)
            .await
            .expect("payment link");
        assert!(link.id.as_str().starts_with("plink_1"), "{}", link.id);
        assert!(link.active);
        assert!(!link.livemode);
        assert_eq!(link.currency, Currency::USD);
        assert_eq!(link.metadata, metadata(&[("campaign", "spring")]));
        assert_eq!(link.submit_type, PaymentLinkSubmitType::Auto);
        assert_eq!(
            link.after_completion.type_,
            PaymentLinksResourceAfterCompletionType::Redirect
        );
        assert_eq!(
            link.after_completion
                .redirect
                .as_ref()
                .map(|r| r.url.as_str()),
            Some("https://shop.example.com/thanks")
        );
        assert_eq!(
            link.url,
            format!("{}/b/{}", emulator.base_url(), link.id),
            "served by the emulator"
        );
        assert!(link.line_items.is_none(), "line items only when expanded");
        // The URL answers with a page.
        let page = reqwest::get(&link.url).await.expect("page");
        assert_eq!(page.status(), 200);
        let html = page.text().await.expect("html");
        assert!(html.contains("$35.00"), "{html}");
        assert!(html.contains("Shirt") && html.contains("Mug"), "{html}");

        let fetched = RetrievePaymentLink::new(link.id.clone())
            .expand(vec!["line_items".to_owned()])
            .send(&stripe)
            .await
            .expect("retrieve");
        assert_eq!(fetched.id, link.id);
        let items = fetched.line_items.expect("expanded line items");
        assert_eq!(items.data.len(), 2);
        assert_eq!(items.data[0].quantity, Some(2));
        assert_eq!(items.data[0].amount_subtotal, 3000);
        assert_eq!(items.data[0].description.as_deref(), Some("Shirt"));
        assert_eq!(
            items.data[0].price.as_ref().map(|p| p.id.clone()),
            Some(shirt.id.clone())
        );
        let items = ListLineItemsPaymentLink::new(link.id.clone())
            .send(&stripe)
            .await
            .expect("line items");
        assert_eq!(items.data.len(), 2);
        assert_eq!(
            items.url,
            format!("/v1/payment_links/{}/line_items", link.id)
        );

        // Inline price data.
        let inline = CreatePaymentLink::new(vec![CreatePaymentLinkLineItems {
            price_data: Some(CreatePaymentLinkLineItemsPriceData {
                product_data: Some(CreatePaymentLinkLineItemsPriceDataProductData::new(
                    "Poster",
                )),
                unit_amount: Some(800),
                ..CreatePaymentLinkLineItemsPriceData::new(Currency::USD)
            }),
            ..CreatePaymentLinkLineItems::new(3_u64)
        }])
        .send(&stripe)
        .await
        .expect("inline link");
        assert_eq!(
            inline.after_completion.type_,
            PaymentLinksResourceAfterCompletionType::HostedConfirmation
        );
        let items = ListLineItemsPaymentLink::new(inline.id.clone())
            .send(&stripe)
            .await
            .expect("line items");
        assert_eq!(items.data[0].amount_subtotal, 2400);
        assert_eq!(items.data[0].description.as_deref(), Some("Poster"));

        // List (newest first), filter, update.
        let listed = ListPaymentLink::new().send(&stripe).await.expect("list");
        assert_eq!(
            listed.data.iter().map(|l| l.id.clone()).collect::<Vec<_>>(),
            vec![inline.id.clone(), link.id.clone()]
        );
        assert_eq!(listed.url, "/v1/payment_links");
        let updated = UpdatePaymentLink::new(link.id.clone())
            .active(false)
            .metadata(metadata(&[("campaign", ""), ("season", "over")]))
            .send(&stripe)
            .await
            .expect("update");
        assert!(!updated.active);
        assert_eq!(updated.metadata, metadata(&[("season", "over")]));
        let active = ListPaymentLink::new()
            .active(true)
            .send(&stripe)
            .await
            .expect("active links");
        assert_eq!(
            active.data.iter().map(|l| l.id.clone()).collect::<Vec<_>>(),
            vec![inline.id.clone()]
        );
        let page = ListPaymentLink::new()
            .limit(1)
            .send(&stripe)
            .await
            .expect("page");
        assert!(page.has_more);

        // Errors.
        let bogus = CreatePaymentLinkLineItems {
            price: Some("price_nope".to_owned()),
            ..CreatePaymentLinkLineItems::new(1_u64)
        };
        let (error, status) = stripe_error(CreatePaymentLink::new(vec![bogus]).send(&stripe).await);
        assert_eq!(status, 400);
        assert_eq!(error.type_, ApiErrorsType::InvalidRequestError);
        assert_eq!(error.code, Some(ApiErrorsCode::ResourceMissing));
        assert_eq!(error.param.as_deref(), Some("line_items[0][price]"));
        assert_eq!(
            error.message.as_deref(),
            Some("No such price: 'price_nope'")
        );
        let (error, status) = stripe_error(
            CreatePaymentLink::new(vec![line(&shirt, 1), line(&mug, 0)])
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 400);
        assert_eq!(error.code, Some(ApiErrorsCode::ParameterInvalidInteger));
        assert_eq!(error.param.as_deref(), Some("line_items[1][quantity]"));
        let euro = CreatePrice::new(Currency::EUR)
            .unit_amount(900)
            .product_data(CreatePriceProductData::new("Euro"))
            .send(&stripe)
            .await
            .expect("price");
        let (error, status) = stripe_error(
            CreatePaymentLink::new(vec![line(&shirt, 1), line(&euro, 1)])
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 400);
        assert_eq!(error.param.as_deref(), Some("line_items[1][price]"));
        let (error, status) =
            stripe_error(RetrievePaymentLink::new("plink_nope").send(&stripe).await);
        assert_eq!(status, 404);
        assert_eq!(error.code, Some(ApiErrorsCode::ResourceMissing));
        emulator.stop().await;
    });
}

#[tokio::test]
async fn payment_link_page_opens_a_checkout_session() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    let price = raw
        .post(
            "/v1/prices",
            "currency=usd&unit_amount=1200&product_data[name]=Ticket",
        )
        .await;
    let price = price.json["id"].as_str().expect("price").to_owned();
    for (form, param) in [
        ("", "line_items"),
        ("line_items[0][quantity]=1", "line_items[0][price]"),
        (
            &format!("line_items[0][price]={price}") as &str,
            "line_items[0][quantity]",
        ),
        (
            &format!(
                "line_items[0][price]={price}&line_items[0][quantity]=1&after_completion[type]=redirect"
            ),
            "after_completion[redirect][url]",
        ),
        (
            &format!(
                "line_items[0][price]={price}&line_items[0][quantity]=1&after_completion[type]=redirect&after_completion[redirect][url]=nope"
            ),
            "after_completion[redirect][url]",
        ),
        (
            &format!("line_items[0][price]={price}&line_items[0][quantity]=-1"),
            "line_items[0][quantity]",
        ),
    ] {
        let reply = raw.post("/v1/payment_links", form).await;
        assert_eq!(reply.status, 400, "{form}: {}", reply.text);
        assert_eq!(
            reply.json["error"]["param"], param,
            "{form}: {}",
            reply.text
        );
    }
    let link = raw
        .post(
            "/v1/payment_links",
            &format!(
                "line_items[0][price]={price}&line_items[0][quantity]=3&after_completion[type]=hosted_confirmation&after_completion[hosted_confirmation][custom_message]=See+you+there&payment_intent_data[metadata][event]=gala"
            ),
        )
        .await;
    assert_eq!(link.status, 200, "{}", link.text);
    let id = link.json["id"].as_str().expect("id").to_owned();
    let url = link.json["url"].as_str().expect("url").to_owned();
    assert_eq!(
        link.json["payment_intent_data"]["metadata"],
        serde_json::json!({"event": "gala"})
    );

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let page = http.get(&url).send().await.expect("page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("$36.00"), "{html}");
    assert!(html.contains(&format!("action=\"/b/{id}\"")), "{html}");

    // "Pay" opens a checkout session for the link and redirects to its page.
    let pay = http.post(&url).send().await.expect("pay");
    assert_eq!(pay.status(), 303);
    let location = pay
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("location")
        .to_owned();
    let prefix = format!("{}/c/pay/", emulator.base_url());
    let session = location
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{location}"))
        .to_owned();
    let sessions = raw
        .get(&format!("/v1/checkout/sessions?payment_link={id}"))
        .await;
    assert_eq!(sessions.json["data"][0]["id"], session.as_str());
    let opened = &sessions.json["data"][0];
    assert_eq!(opened["payment_link"], id.as_str());
    assert_eq!(opened["mode"], "payment");
    assert_eq!(opened["amount_total"], 3600);
    assert_eq!(opened["cancel_url"], url.as_str());
    let completed = raw
        .post(
            &format!("/_emulator/checkout/sessions/{session}/complete"),
            "",
        )
        .await;
    assert_eq!(completed.status, 200, "{}", completed.text);
    let intent = completed.json["payment_intent"].as_str().expect("pi");
    let intent = raw.get(&format!("/v1/payment_intents/{intent}")).await;
    assert_eq!(intent.json["status"], "succeeded");
    assert_eq!(
        intent.json["metadata"],
        serde_json::json!({"event": "gala"})
    );
    // The success URL leads back to the link's page, which confirms.
    let success = completed.json["success_url"].as_str().expect("success_url");
    let success = success.replace("{CHECKOUT_SESSION_ID}", &session);
    assert!(success.starts_with(&url), "{success}");
    let confirmation = http
        .get(&success)
        .send()
        .await
        .expect("confirmation")
        .text()
        .await
        .expect("html");
    assert!(confirmation.contains("See you there"), "{confirmation}");

    // An inactive link opens nothing.
    let off = raw
        .post(
            &format!("/v1/payment_links/{id}"),
            "active=false&inactive_message=Sold+out",
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.text);
    assert_eq!(off.json["inactive_message"], "Sold out");
    let html = http
        .get(&url)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(
        html.contains("Sold out") && !html.contains("<form"),
        "{html}"
    );
    let pay = http.post(&url).send().await.expect("pay");
    assert_eq!(pay.status(), 400);
    let unknown = http
        .get(format!("{}/b/plink_nope", emulator.base_url()))
        .send()
        .await
        .expect("page");
    assert_eq!(unknown.status(), 404);
    emulator.stop().await;
}

#[test]
fn saved_cards_charged_off_session() {
    big_stack(|| async {
        let emulator = start().await;
        let key = test_key();
        let stripe = client(&emulator, &key);
        let customer = CreateCustomer::new()
            .email("saved@example.com")
            .send(&stripe)
            .await
            .expect("customer");
        let good = AttachPaymentMethod::new("pm_card_visa")
            .customer(customer.id.to_string())
            .send(&stripe)
            .await
            .expect("attach");
        let bad = AttachPaymentMethod::new("pm_card_chargeDeclinedInsufficientFunds")
            .customer(customer.id.to_string())
            .send(&stripe)
            .await
            .expect("attach declining card");
        let off_session = |pm: &str| {
            CreatePaymentIntent::new(4200, Currency::USD)
                .customer(customer.id.as_str())
                .payment_method(pm)
                .allowed_payment_method_types(vec![PaymentIntentAllowedPaymentMethodTypes::Card])
                .off_session(CreatePaymentIntentOffSession::Bool(true))
                .confirm(true)
        };

        let charged = off_session(good.id.as_str())
            .send(&stripe)
            .await
            .expect("off-session charge");
        assert_eq!(charged.status, PaymentIntentStatus::Succeeded);
        assert_eq!(charged.amount_received, 4200);
        assert_eq!(
            charged.payment_method.as_ref().map(|p| p.id().clone()),
            Some(good.id.clone())
        );

        let (error, status) = stripe_error(off_session(bad.id.as_str()).send(&stripe).await);
        assert_eq!(status, 402);
        assert_eq!(error.type_, ApiErrorsType::CardError);
        assert_eq!(error.code, Some(ApiErrorsCode::CardDeclined));
        assert_eq!(error.decline_code.as_deref(), Some("insufficient_funds"));
        assert_eq!(
            error.message.as_deref(),
            Some("Your card has insufficient funds.")
        );
        assert!(error.param.is_none());
        assert!(error.charge.is_some());
        assert_eq!(
            error.payment_method.as_ref().map(|p| p.id.clone()),
            Some(bad.id.clone())
        );
        let intent = error.payment_intent.expect("the intent rides along");
        assert_eq!(intent.status, PaymentIntentStatus::RequiresPaymentMethod);
        assert_eq!(
            intent.customer.as_ref().map(|c| c.id().clone()),
            Some(customer.id.clone())
        );
        let last = intent.last_payment_error.expect("last_payment_error");
        assert_eq!(last.decline_code.as_deref(), Some("insufficient_funds"));
        // The declining card stays attached (it is the customer's, not consumed).
        let pm = RetrievePaymentMethod::new(bad.id.clone())
            .send(&stripe)
            .await
            .expect("pm");
        assert_eq!(
            pm.customer.map(|c| c.id().clone()),
            Some(customer.id.clone())
        );
        // off_session without confirm is refused, as in Stripe.
        let (error, status) = stripe_error(
            CreatePaymentIntent::new(4200, Currency::USD)
                .customer(customer.id.as_str())
                .payment_method(good.id.as_str())
                .off_session(CreatePaymentIntentOffSession::Bool(true))
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 400);
        assert_eq!(error.param.as_deref(), Some("off_session"));

        // The good charge can be refunded; the declined intent cannot.
        let refund = CreateRefund::new()
            .payment_intent(charged.id.as_str())
            .send(&stripe)
            .await
            .expect("refund");
        assert_eq!(refund.amount, 4200);
        let (_, status) = stripe_error(
            CreateRefund::new()
                .payment_intent(intent.id.as_str())
                .send(&stripe)
                .await,
        );
        assert_eq!(status, 400);
        let charge = match refund.charge.expect("charge") {
            Expandable::Id(id) => id.to_string(),
            Expandable::Object(charge) => charge.id.to_string(),
        };
        let charge = RetrieveCharge::new(charge.as_str())
            .send(&stripe)
            .await
            .expect("charge");
        assert!(charge.refunded);

        // Every event of the key parses.
        let raw = Raw::new(&emulator, &key);
        let page = raw.get("/v1/events?limit=100").await;
        let seen: BTreeSet<&str> = page.json["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|e| e["type"].as_str().expect("type"))
            .collect();
        assert!(seen.contains("charge.failed") && seen.contains("refund.created"));
        for event in page.json["data"].as_array().expect("data") {
            assert!(!matches!(typed(event), EventObject::Unknown(_)));
        }
        emulator.stop().await;
    });
}
