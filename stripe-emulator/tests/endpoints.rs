//! Setup intents, search, the balance and promotion codes (with checkout), driven over HTTP
//! and read back through async-stripe where it has the type.

mod common;

use common::{Raw, Reply, big_stack, client, start, test_key};
use serde_json::Value;
use stripe_core::balance::RetrieveForMyAccountBalance;
use stripe_core::customer::SearchCustomer;
use stripe_core::payment_intent::SearchPaymentIntent;
use stripe_core::setup_intent::{ListSetupIntent, RetrieveSetupIntent};
use stripe_product::promotion_code::{ListPromotionCode, RetrievePromotionCode};
use stripe_shared::SetupIntentStatus;

async fn post_ok(raw: &Raw, path: &str, form: &str) -> Reply {
    let reply = raw.post(path, form).await;
    assert_eq!(reply.status, 200, "{path}: {}", reply.text);
    reply
}

fn id(reply: &Reply) -> String {
    reply.json["id"].as_str().expect("id").to_owned()
}

/// The types of the events a request caused, oldest first.
async fn event_types(raw: &Raw, reply: &Reply) -> Vec<String> {
    let request = reply.header("request-id").expect("request id").to_owned();
    let page = raw.get("/v1/events?limit=100").await;
    let mut types: Vec<String> = page.json["data"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["request"]["id"] == request.as_str())
        .map(|e| e["type"].as_str().expect("type").to_owned())
        .collect();
    types.reverse();
    types
}

fn assert_error(reply: &Reply, status: u16, param: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(
        reply.json["error"]["type"], "invalid_request_error",
        "{}",
        reply.text
    );
    assert_eq!(reply.json["error"]["param"], param, "{}", reply.text);
}

#[test]
fn a_setup_intent_saves_a_card_for_its_customer() {
    big_stack(|| async {
        let emulator = start().await;
        let key = test_key();
        let raw = Raw::new(&emulator, &key);
        let stripe = client(&emulator, &key);
        let customer = id(&post_ok(&raw, "/v1/customers", "email=s%40example.com").await);

        let created = post_ok(
            &raw,
            "/v1/setup_intents",
            &format!("customer={customer}&usage=on_session&description=Save&metadata[k]=v"),
        )
        .await;
        assert_eq!(created.json["status"], "requires_payment_method");
        assert_eq!(created.json["automatic_payment_methods"]["enabled"], true);
        assert_eq!(event_types(&raw, &created).await, ["setup_intent.created"]);
        let seti = id(&created);
        // Automatic payment methods may redirect: confirming needs a return_url.
        let no_url = raw
            .post(
                &format!("/v1/setup_intents/{seti}/confirm"),
                "payment_method=pm_card_visa",
            )
            .await;
        assert_error(&no_url, 400, "return_url");
        let confirmed = post_ok(
            &raw,
            &format!("/v1/setup_intents/{seti}/confirm"),
            "payment_method=pm_card_visa&return_url=https%3A%2F%2Fexample.com%2Fback",
        )
        .await;
        assert_eq!(confirmed.json["status"], "succeeded");
        assert_eq!(
            event_types(&raw, &confirmed).await,
            ["payment_method.attached", "setup_intent.succeeded"]
        );
        let pm = confirmed.json["payment_method"].as_str().expect("pm");
        let pm = raw.get(&format!("/v1/payment_methods/{pm}")).await;
        assert_eq!(pm.json["customer"], customer.as_str());

        let typed = RetrieveSetupIntent::new(seti.as_str())
            .send(&stripe)
            .await
            .expect("the setup intent deserializes");
        assert_eq!(typed.status, SetupIntentStatus::Succeeded);
        assert_eq!(typed.description.as_deref(), Some("Save"));
        assert_eq!(typed.usage.as_str(), "on_session");

        let again = raw
            .post(&format!("/v1/setup_intents/{seti}/confirm"), "")
            .await;
        assert_eq!(again.status, 400);
        assert_eq!(again.json["error"]["code"], "setup_intent_unexpected_state");
        let cancel = raw
            .post(&format!("/v1/setup_intents/{seti}/cancel"), "")
            .await;
        assert_eq!(
            cancel.json["error"]["code"],
            "setup_intent_unexpected_state"
        );

        // Created and confirmed at once, with card types only: no return_url needed.
        let at_once = post_ok(
            &raw,
            "/v1/setup_intents",
            &format!(
                "customer={customer}&payment_method=pm_card_mastercard&allowed_payment_method_types[0]=card&confirm=true"
            ),
        )
        .await;
        assert_eq!(at_once.json["status"], "succeeded");
        assert_eq!(
            event_types(&raw, &at_once).await,
            [
                "setup_intent.created",
                "payment_method.attached",
                "setup_intent.succeeded"
            ]
        );

        // A declined card: 402, the intent waits for another card.
        let declined = raw
            .post(
                "/v1/setup_intents",
                &format!(
                    "customer={customer}&payment_method=pm_card_chargeDeclined&allowed_payment_method_types[0]=card&confirm=true"
                ),
            )
            .await;
        assert_eq!(declined.status, 402, "{}", declined.text);
        let error = &declined.json["error"];
        assert_eq!(error["type"], "card_error");
        assert_eq!(error["code"], "card_declined");
        assert_eq!(error["decline_code"], "generic_decline");
        let failed = error["setup_intent"]["id"].as_str().expect("intent");
        let failed = raw.get(&format!("/v1/setup_intents/{failed}")).await;
        assert_eq!(failed.json["status"], "requires_payment_method");
        assert_eq!(failed.json["last_setup_error"]["code"], "card_declined");
        assert_eq!(failed.json, error["setup_intent"]);
        assert_eq!(
            event_types(&raw, &declined).await,
            ["setup_intent.created", "setup_intent.setup_failed"]
        );
        let declined_pm = raw
            .post(
                &format!("/v1/setup_intents/{}/confirm", id(&failed)),
                "payment_method=pm_card_declined",
            )
            .await;
        assert_eq!(declined_pm.status, 402);
        let canceled = post_ok(
            &raw,
            &format!("/v1/setup_intents/{}/cancel", id(&failed)),
            "cancellation_reason=abandoned",
        )
        .await;
        assert_eq!(canceled.json["status"], "canceled");
        assert_eq!(canceled.json["cancellation_reason"], "abandoned");
        assert_eq!(
            event_types(&raw, &canceled).await,
            ["setup_intent.canceled"]
        );

        let missing = raw
            .post(
                "/v1/setup_intents",
                "confirm=true&allowed_payment_method_types[0]=card",
            )
            .await;
        assert_eq!(missing.status, 400);
        let other = raw.post("/v1/setup_intents", "customer=cus_nope").await;
        assert_error(&other, 400, "customer");
        assert_eq!(raw.get("/v1/setup_intents/seti_nope").await.status, 404);

        // Listed newest first, by customer.
        post_ok(&raw, "/v1/setup_intents", "").await;
        let listed = ListSetupIntent::new()
            .customer(customer.as_str())
            .send(&stripe)
            .await
            .expect("list");
        let ids: Vec<&str> = listed.data.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids.len(), 3, "{ids:?}");
        assert_eq!(ids[0], id(&failed));
        assert_eq!(ids[2], seti);
        emulator.stop().await;
    });
}

#[test]
fn search_finds_customers_and_payment_intents_in_stripes_query_language() {
    big_stack(|| async {
        let emulator = start().await;
        let key = test_key();
        let raw = Raw::new(&emulator, &key);
        let stripe = client(&emulator, &key);
        let ann = id(&post_ok(
            &raw,
            "/v1/customers",
            "email=ann%40example.com&name=Ann%20Lee&metadata[plan]=pro",
        )
        .await);
        let bob = id(&post_ok(
            &raw,
            "/v1/customers",
            "email=bob%40other.org&name=Bob&phone=%2B15550100",
        )
        .await);

        let found = SearchCustomer::new("email:\"ANN@example.com\"")
            .send(&stripe)
            .await
            .expect("search deserializes");
        assert_eq!(found.data.len(), 1);
        assert_eq!(found.data[0].id.as_str(), ann);
        assert!(!found.has_more);
        assert_eq!(found.url, "/v1/customers/search");

        for (query, expected) in [
            ("name~\"lee\"", vec![ann.as_str()]),
            ("metadata['plan']:'pro'", vec![ann.as_str()]),
            ("-metadata['plan']:'pro'", vec![bob.as_str()]),
            (
                "email~\"example\" OR phone:\"+15550100\"",
                vec![bob.as_str(), ann.as_str()],
            ),
            ("email~\"example\" AND name:\"Bob\"", vec![]),
            ("created>0", vec![bob.as_str(), ann.as_str()]),
        ] {
            let reply = raw
                .send(
                    raw.request(reqwest::Method::GET, "/v1/customers/search")
                        .query(&[("query", query)]),
                )
                .await;
            assert_eq!(reply.status, 200, "{query}: {}", reply.text);
            assert_eq!(reply.json["object"], "search_result");
            let ids: Vec<&str> = reply.json["data"]
                .as_array()
                .expect("data")
                .iter()
                .map(|c| c["id"].as_str().expect("id"))
                .collect();
            assert_eq!(ids, expected, "{query}");
        }

        // Pages.
        let first = raw
            .send(
                raw.request(reqwest::Method::GET, "/v1/customers/search")
                    .query(&[
                        ("query", "created>0"),
                        ("limit", "1"),
                        ("expand[]", "total_count"),
                    ]),
            )
            .await;
        assert_eq!(first.status, 200, "{}", first.text);
        assert_eq!(first.json["has_more"], true);
        assert_eq!(first.json["total_count"], 2);
        let token = first.json["next_page"].as_str().expect("next page");
        let second = raw
            .send(
                raw.request(reqwest::Method::GET, "/v1/customers/search")
                    .query(&[("query", "created>0"), ("limit", "1"), ("page", token)]),
            )
            .await;
        assert_eq!(second.json["data"][0]["id"], ann.as_str());
        assert_eq!(second.json["has_more"], false);
        assert_eq!(second.json["next_page"], Value::Null);
        assert!(second.json.get("total_count").is_none());

        // Malformed queries are 400s on `query`.
        for query in [
            "email:ann@example.com",
            "email:\"a\" AND name:\"b\" OR phone:\"c\"",
            "nickname:\"x\"",
            "email~\"an\"",
            "email>\"a\"",
        ] {
            let reply = raw
                .send(
                    raw.request(reqwest::Method::GET, "/v1/customers/search")
                        .query(&[("query", query)]),
                )
                .await;
            assert_error(&reply, 400, "query");
        }
        let missing = raw.get("/v1/customers/search").await;
        assert_error(&missing, 400, "query");
        assert_eq!(missing.json["error"]["code"], "parameter_missing");

        // Payment intents.
        let big = id(&post_ok(
            &raw,
            "/v1/payment_intents",
            &format!("amount=5000&currency=usd&customer={ann}&allowed_payment_method_types[0]=card&payment_method=pm_card_visa&confirm=true&metadata[order]=42"),
        )
        .await);
        let small = id(&post_ok(
            &raw,
            "/v1/payment_intents",
            "amount=700&currency=eur&allowed_payment_method_types[0]=card",
        )
        .await);
        for (query, expected) in [
            ("status:\"succeeded\"", vec![big.clone()]),
            ("amount>=700 AND currency:\"eur\"", vec![small.clone()]),
            (
                "amount<1000 OR metadata[\"order\"]:\"42\"",
                vec![small.clone(), big.clone()],
            ),
        ] {
            let found = SearchPaymentIntent::new(query)
                .send(&stripe)
                .await
                .expect("search deserializes");
            let ids: Vec<String> = found.data.iter().map(|pi| pi.id.to_string()).collect();
            assert_eq!(ids, expected, "{query}");
        }
        let by_customer = raw
            .send(
                raw.request(reqwest::Method::GET, "/v1/payment_intents/search")
                    .query(&[("query", format!("customer:\"{ann}\""))]),
            )
            .await;
        assert_eq!(by_customer.json["data"][0]["id"], big.as_str());
        assert_eq!(by_customer.json["url"], "/v1/payment_intents/search");
        let bad = raw
            .send(
                raw.request(reqwest::Method::GET, "/v1/payment_intents/search")
                    .query(&[("query", "status~\"succ\"")]),
            )
            .await;
        assert_error(&bad, 400, "query");
        emulator.stop().await;
    });
}

#[test]
fn the_balance_counts_charges_as_pending_and_takes_refunds_off_available() {
    big_stack(|| async {
        let emulator = start().await;
        let key = test_key();
        let raw = Raw::new(&emulator, &key);
        let stripe = client(&emulator, &key);
        let empty = RetrieveForMyAccountBalance::new()
            .send(&stripe)
            .await
            .expect("the balance deserializes");
        assert_eq!(empty.available.len(), 1);
        assert_eq!(empty.available[0].amount, 0);

        let pi = id(&post_ok(
            &raw,
            "/v1/payment_intents",
            "amount=2500&currency=usd&allowed_payment_method_types[0]=card&payment_method=pm_card_visa&confirm=true",
        )
        .await);
        post_ok(
            &raw,
            "/v1/refunds",
            &format!("payment_intent={pi}&amount=500"),
        )
        .await;
        let balance = raw.get("/v1/balance").await;
        assert_eq!(balance.status, 200, "{}", balance.text);
        assert_eq!(balance.json["object"], "balance");
        assert_eq!(balance.json["pending"][0]["amount"], 2500);
        assert_eq!(balance.json["pending"][0]["currency"], "usd");
        assert_eq!(balance.json["available"][0]["amount"], -500);
        let typed = RetrieveForMyAccountBalance::new()
            .send(&stripe)
            .await
            .expect("the balance deserializes");
        assert_eq!(typed.pending[0].amount, 2500);
        emulator.stop().await;
    });
}

/// A one-time price of 2000 and a coupon taking 25% off.
async fn discount_setup(raw: &Raw) -> String {
    let price = id(&post_ok(
        raw,
        "/v1/prices",
        "currency=usd&unit_amount=2000&product_data[name]=Lamp",
    )
    .await);
    post_ok(raw, "/v1/coupons", "id=QUARTER&percent_off=25").await;
    price
}

async fn session(raw: &Raw, price: &str, extra: &str) -> Reply {
    raw.post(
        "/v1/checkout/sessions",
        &format!(
            "mode=payment&line_items[0][price]={price}&line_items[0][quantity]=1&success_url=https%3A%2F%2Fexample.com%2Fok{extra}"
        ),
    )
    .await
}

async fn complete(raw: &Raw, session: &str, code: &str) -> Reply {
    raw.send(
        raw.request(
            reqwest::Method::POST,
            &format!("/_emulator/checkout/sessions/{session}/complete"),
        )
        .header("content-type", "application/json")
        .body(format!(
            "{{\"payment_method\": \"pm_card_visa\", \"promotion_code\": \"{code}\"}}"
        )),
    )
    .await
}

#[test]
fn promotion_codes_discount_checkout_sessions() {
    big_stack(|| async {
        let emulator = start().await;
        let key = test_key();
        let raw = Raw::new(&emulator, &key);
        let stripe = client(&emulator, &key);
        let price = discount_setup(&raw).await;

        let created = post_ok(
            &raw,
            "/v1/promotion_codes",
            "promotion[type]=coupon&promotion[coupon]=QUARTER&code=SPRING25&max_redemptions=1&metadata[c]=d",
        )
        .await;
        assert_eq!(
            event_types(&raw, &created).await,
            ["promotion_code.created"]
        );
        let promo = id(&created);
        assert!(promo.starts_with("promo_"), "{promo}");
        let typed = RetrievePromotionCode::new(promo.as_str())
            .send(&stripe)
            .await
            .expect("the promotion code deserializes");
        assert_eq!(typed.code, "SPRING25");
        assert!(typed.active);
        assert_eq!(typed.max_redemptions, Some(1));
        let generated = post_ok(
            &raw,
            "/v1/promotion_codes",
            "promotion[type]=coupon&promotion[coupon]=QUARTER",
        )
        .await;
        assert_eq!(generated.json["code"].as_str().expect("code").len(), 8);
        let duplicate = raw
            .post(
                "/v1/promotion_codes",
                "promotion[type]=coupon&promotion[coupon]=QUARTER&code=spring25",
            )
            .await;
        assert_error(&duplicate, 400, "code");
        let no_coupon = raw
            .post(
                "/v1/promotion_codes",
                "promotion[type]=coupon&promotion[coupon]=NOPE",
            )
            .await;
        assert_error(&no_coupon, 400, "promotion[coupon]");
        let past = raw
            .post(
                "/v1/promotion_codes",
                "promotion[type]=coupon&promotion[coupon]=QUARTER&expires_at=1000",
            )
            .await;
        assert_error(&past, 400, "expires_at");

        let listed = ListPromotionCode::new()
            .code("spring25")
            .send(&stripe)
            .await
            .expect("list");
        assert_eq!(listed.data.len(), 1);
        let by_coupon = raw
            .get("/v1/promotion_codes?coupon=QUARTER&active=true")
            .await;
        assert_eq!(by_coupon.json["data"].as_array().expect("data").len(), 2);

        // allow_promotion_codes together with discounts is refused.
        let both = session(
            &raw,
            &price,
            "&allow_promotion_codes=true&discounts[0][coupon]=QUARTER",
        )
        .await;
        assert_error(&both, 400, "discounts");

        // A code typed at completion discounts the session and its payment.
        let plain = id(&session(&raw, &price, "").await);
        let refused = complete(&raw, &plain, "SPRING25").await;
        assert_error(&refused, 400, "promotion_code");
        let open = id(&session(&raw, &price, "&allow_promotion_codes=true").await);
        let unknown = complete(&raw, &open, "NOSUCHCODE").await;
        assert_error(&unknown, 400, "promotion_code");
        let done = complete(&raw, &open, "spring25").await;
        assert_eq!(done.status, 200, "{}", done.text);
        assert_eq!(done.json["amount_subtotal"], 2000);
        assert_eq!(done.json["amount_total"], 1500);
        assert_eq!(done.json["total_details"]["amount_discount"], 500);
        assert_eq!(done.json["discounts"][0]["promotion_code"], promo.as_str());
        let pi = done.json["payment_intent"].as_str().expect("intent");
        let pi = raw.get(&format!("/v1/payment_intents/{pi}")).await;
        assert_eq!(pi.json["amount"], 1500);
        let items = raw
            .get(&format!("/v1/checkout/sessions/{open}/line_items"))
            .await;
        assert_eq!(items.json["data"][0]["amount_discount"], 500);
        let redeemed = raw.get(&format!("/v1/promotion_codes/{promo}")).await;
        assert_eq!(redeemed.json["times_redeemed"], 1);
        assert_eq!(
            raw.get("/v1/coupons/QUARTER").await.json["times_redeemed"],
            1
        );

        // Used up: max_redemptions is enforced.
        let next = id(&session(&raw, &price, "&allow_promotion_codes=true").await);
        let used_up = complete(&raw, &next, "SPRING25").await;
        assert_error(&used_up, 400, "promotion_code");
        let direct = session(
            &raw,
            &price,
            &format!("&discounts[0][promotion_code]={promo}"),
        )
        .await;
        assert_error(&direct, 400, "discounts[0][promotion_code]");
        let still_open = raw.get(&format!("/v1/checkout/sessions/{next}")).await;
        assert_eq!(still_open.json["status"], "open");

        // Inactive: refused.
        let other = id(&post_ok(
            &raw,
            "/v1/promotion_codes",
            "promotion[type]=coupon&promotion[coupon]=QUARTER&code=OFF",
        )
        .await);
        let updated = post_ok(
            &raw,
            &format!("/v1/promotion_codes/{other}"),
            "active=false",
        )
        .await;
        assert_eq!(updated.json["active"], false);
        assert_eq!(
            event_types(&raw, &updated).await,
            ["promotion_code.updated"]
        );
        let inactive = complete(&raw, &next, "OFF").await;
        assert_error(&inactive, 400, "promotion_code");
        assert!(
            inactive.json["error"]["message"]
                .as_str()
                .expect("message")
                .contains("inactive"),
            "{}",
            inactive.text
        );
        let inactive_direct = session(
            &raw,
            &price,
            &format!("&discounts[0][promotion_code]={other}"),
        )
        .await;
        assert_error(&inactive_direct, 400, "discounts[0][promotion_code]");

        // Given at creation: applied directly.
        let fresh = id(&post_ok(
            &raw,
            "/v1/promotion_codes",
            "promotion[type]=coupon&promotion[coupon]=QUARTER&code=DIRECT",
        )
        .await);
        let direct = session(
            &raw,
            &price,
            &format!("&discounts[0][promotion_code]={fresh}"),
        )
        .await;
        assert_eq!(direct.status, 200, "{}", direct.text);
        assert_eq!(direct.json["amount_total"], 1500);
        assert_eq!(
            direct.json["discounts"][0]["promotion_code"],
            fresh.as_str()
        );
        let reply = raw
            .post(
                &format!("/_emulator/checkout/sessions/{}/complete", id(&direct)),
                "",
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let fresh = raw.get(&format!("/v1/promotion_codes/{fresh}")).await;
        assert_eq!(fresh.json["times_redeemed"], 1);

        // Subscriptions bought with a code carry its discount.
        let monthly = id(&post_ok(
            &raw,
            "/v1/prices",
            "currency=usd&unit_amount=1000&recurring[interval]=month&product_data[name]=Club",
        )
        .await);
        post_ok(
            &raw,
            "/v1/promotion_codes",
            "promotion[type]=coupon&promotion[coupon]=QUARTER&code=CLUB",
        )
        .await;
        let sub_session = id(&post_ok(
            &raw,
            "/v1/checkout/sessions",
            &format!("mode=subscription&line_items[0][price]={monthly}&line_items[0][quantity]=1&allow_promotion_codes=true&success_url=https%3A%2F%2Fexample.com%2Fok"),
        )
        .await);
        let done = complete(&raw, &sub_session, "CLUB").await;
        assert_eq!(done.status, 200, "{}", done.text);
        assert_eq!(done.json["amount_total"], 750);
        let invoice = done.json["invoice"].as_str().expect("invoice");
        let invoice = raw.get(&format!("/v1/invoices/{invoice}")).await;
        assert_eq!(invoice.json["amount_paid"], 750, "{}", invoice.text);
        emulator.stop().await;
    });
}
