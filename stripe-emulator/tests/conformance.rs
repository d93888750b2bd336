//! The conformance suite: drives every endpoint the emulator serves through a realistic flow
//! over HTTP and checks every answer, and every event the flow caused, against Stripe's own
//! definition of the pinned API version (`spec/stripe-2026-09-30.json`, taken from the
//! `stripe` npm package's types): required fields present, `null` only where nullable, no
//! field Stripe does not have, types and closed enum values right.
//!
//! It also proves it covers the emulator: every endpoint of the definition that the emulator
//! answers (anything but "Unrecognized request URL") must have been driven to a 2xx answer
//! here.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use stripe_emulator::spec::{self, Spec};

use common::{Raw, Reply, start, test_key};

/// Drives the emulator and checks what it answers.
struct Suite {
    raw: Raw,
    spec: &'static Spec,
    /// `METHOD /v1/path/{}` -> answers checked.
    covered: BTreeMap<String, usize>,
    checked: usize,
    problems: Vec<String>,
}

impl Suite {
    fn new(raw: Raw) -> Self {
        Suite {
            raw,
            spec: spec::spec().expect("the embedded definition parses"),
            covered: BTreeMap::new(),
            checked: 0,
            problems: Vec::new(),
        }
    }

    /// Checks a 2xx answer against the endpoint's definition.
    fn check(&mut self, method: &str, path: &str, reply: &Reply) {
        let bare = path.split('?').next().unwrap_or(path);
        let Some(endpoint) = self.spec.endpoint(method, bare) else {
            self.problems.push(format!(
                "{method} {bare}: not an endpoint of Stripe's definition"
            ));
            return;
        };
        *self
            .covered
            .entry(format!("{method} {}", endpoint.path))
            .or_default() += 1;
        self.checked += 1;
        let problems = spec::check(
            self.spec,
            &reply.json,
            &endpoint.returns.alternatives(),
            &format!("{method} {bare}"),
        );
        self.problems.extend(problems);
    }

    async fn call(&mut self, method: &str, path: &str, form: &str, status: u16) -> Value {
        let reply = match method {
            "GET" => self.raw.get(path).await,
            "DELETE" => self.raw.delete(path).await,
            _ => self.raw.post(path, form).await,
        };
        assert_eq!(
            reply.status, status,
            "{method} {path} {form}: {}",
            reply.text
        );
        if (200..300).contains(&reply.status) {
            self.check(method, path, &reply);
        } else {
            // Stripe's error object (`StripeRawError` in the npm package).
            let error = &reply.json["error"];
            let kind = error["type"].as_str().unwrap_or_default();
            assert!(
                [
                    "api_error",
                    "card_error",
                    "idempotency_error",
                    "invalid_request_error"
                ]
                .contains(&kind)
                    && error["message"].is_string(),
                "{method} {path}: a Stripe error: {}",
                reply.text
            );
        }
        reply.json
    }

    async fn get(&mut self, path: &str) -> Value {
        self.call("GET", path, "", 200).await
    }

    async fn post(&mut self, path: &str, form: &str) -> Value {
        self.call("POST", path, form, 200).await
    }

    async fn delete(&mut self, path: &str) -> Value {
        self.call("DELETE", path, "", 200).await
    }
}

fn id(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

/// A realistic flow over every resource, answers checked as they come.
async fn flow(s: &mut Suite) {
    // Customers and cards.
    let customer = s
        .post(
            "/v1/customers",
            "email=ada%40example.com&name=Ada&phone=%2B15555550100&metadata[plan]=pro\
             &address[line1]=1+Main+St&address[country]=US&preferred_locales[0]=en",
        )
        .await;
    let cus = id(&customer);
    let other = id(&s.post("/v1/customers", "email=bob%40example.com").await);
    s.get(&format!("/v1/customers/{cus}")).await;
    s.get(&format!(
        "/v1/customers/{cus}?expand[]=invoice_settings.default_payment_method"
    ))
    .await;
    s.get("/v1/customers?limit=1").await;
    s.get("/v1/customers?email=ada%40example.com").await;

    let pm = id(&s
        .post(
            "/v1/payment_methods/pm_card_visa/attach",
            &format!("customer={cus}"),
        )
        .await);
    let pm2 = id(&s
        .post(
            "/v1/payment_methods/pm_card_mastercard/attach",
            &format!("customer={cus}"),
        )
        .await);
    s.post(
        &format!("/v1/customers/{cus}"),
        &format!("invoice_settings[default_payment_method]={pm}&description=VIP"),
    )
    .await;
    s.get(&format!("/v1/payment_methods/{pm}")).await;
    s.post(
        &format!("/v1/payment_methods/{pm}"),
        "billing_details[name]=Ada+L&metadata[k]=v",
    )
    .await;
    s.get(&format!("/v1/payment_methods?customer={cus}&type=card"))
        .await;
    s.get(&format!("/v1/customers/{cus}/payment_methods")).await;
    s.get(&format!("/v1/customers/{cus}/payment_methods/{pm2}"))
        .await;
    s.post(&format!("/v1/payment_methods/{pm2}/detach"), "")
        .await;
    s.post(
        "/v1/billing_portal/sessions",
        &format!("customer={cus}&return_url=https%3A%2F%2Fexample.com%2Faccount"),
    )
    .await;

    // Catalogue.
    let product = id(&s
        .post(
            "/v1/products",
            "name=Pro&description=The+pro+plan&metadata[tier]=2",
        )
        .await);
    s.get(&format!("/v1/products/{product}")).await;
    s.post(&format!("/v1/products/{product}"), "name=Pro+plan")
        .await;
    s.get("/v1/products?active=true").await;
    let monthly = id(&s
        .post(
            "/v1/prices",
            &format!(
                "product={product}&unit_amount=2000&currency=usd&recurring[interval]=month\
                 &nickname=Monthly"
            ),
        )
        .await);
    let yearly = id(&s
        .post(
            "/v1/prices",
            &format!("product={product}&unit_amount=20000&currency=usd&recurring[interval]=year"),
        )
        .await);
    let one_time = id(&s
        .post(
            "/v1/prices",
            "unit_amount=500&currency=usd&product_data[name]=Sticker",
        )
        .await);
    s.get(&format!("/v1/prices/{monthly}")).await;
    s.get(&format!("/v1/prices/{monthly}?expand[]=product"))
        .await;
    s.post(
        &format!("/v1/prices/{one_time}"),
        "nickname=Sticker&metadata[a]=b",
    )
    .await;
    s.get("/v1/prices?limit=2").await;
    let spare = id(&s.post("/v1/products", "name=Spare").await);
    s.delete(&format!("/v1/products/{spare}")).await;

    let coupon = id(&s
        .post("/v1/coupons", "percent_off=25&duration=once&name=Quarter")
        .await);
    let amount_off = id(&s
        .post(
            "/v1/coupons",
            "amount_off=500&currency=usd&duration=repeating&duration_in_months=3",
        )
        .await);
    s.get(&format!("/v1/coupons/{coupon}")).await;
    s.post(&format!("/v1/coupons/{coupon}"), "metadata[k]=v")
        .await;
    s.get("/v1/coupons").await;
    s.delete(&format!("/v1/coupons/{amount_off}")).await;

    // Payments: succeeded, declined, manual capture, canceled, refunds.
    let paid = s
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=4200&currency=usd&customer={cus}&payment_method={pm}&confirm=true\
                 &off_session=true&metadata[order]=1&allowed_payment_method_types[0]=card"
            ),
        )
        .await;
    let paid_id = id(&paid);
    s.get(&format!("/v1/payment_intents/{paid_id}")).await;
    s.get(&format!(
        "/v1/payment_intents/{paid_id}?expand[]=latest_charge"
    ))
    .await;
    s.call(
        "POST",
        "/v1/payment_intents",
        &format!(
            "amount=1000&currency=usd&customer={cus}&payment_method=pm_card_chargeDeclined\
             &confirm=true&allowed_payment_method_types[0]=card"
        ),
        402,
    )
    .await;
    let manual = id(&s
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=3000&currency=usd&customer={cus}&capture_method=manual\
                 &allowed_payment_method_types[0]=card"
            ),
        )
        .await);
    s.post(
        &format!("/v1/payment_intents/{manual}"),
        "description=Held&metadata[x]=y",
    )
    .await;
    s.post(
        &format!("/v1/payment_intents/{manual}/confirm"),
        &format!("payment_method={pm}"),
    )
    .await;
    s.post(
        &format!("/v1/payment_intents/{manual}/capture"),
        "amount_to_capture=2500",
    )
    .await;
    let dropped = id(&s
        .post("/v1/payment_intents", "amount=700&currency=eur")
        .await);
    s.post(
        &format!("/v1/payment_intents/{dropped}/cancel"),
        "cancellation_reason=abandoned",
    )
    .await;
    s.get("/v1/payment_intents?limit=3").await;
    s.get(&format!("/v1/payment_intents?customer={cus}")).await;

    let charge = s
        .get(&format!("/v1/charges?payment_intent={paid_id}"))
        .await;
    let ch = charge["data"][0]["id"]
        .as_str()
        .expect("a charge")
        .to_owned();
    s.get(&format!("/v1/charges/{ch}")).await;
    s.get("/v1/charges?limit=5").await;

    let refund = id(&s
        .post(
            "/v1/refunds",
            &format!("payment_intent={paid_id}&amount=1000&reason=requested_by_customer"),
        )
        .await);
    s.post(&format!("/v1/refunds/{refund}"), "metadata[ticket]=7")
        .await;
    s.post("/v1/refunds", &format!("charge={ch}")).await;
    s.get(&format!("/v1/refunds/{refund}")).await;
    s.get(&format!("/v1/refunds?payment_intent={paid_id}"))
        .await;
    s.get(&format!("/v1/charges/{ch}")).await;

    // Subscriptions: trial, price change, cancel at period end, cancel now, invoices.
    let trial = s
        .post(
            "/v1/subscriptions",
            &format!("customer={cus}&items[0][price]={monthly}&trial_period_days=14"),
        )
        .await;
    let trial_id = id(&trial);
    let paid_sub = s
        .post(
            "/v1/subscriptions",
            &format!(
                "customer={cus}&items[0][price]={monthly}&items[0][quantity]=2\
                 &default_payment_method={pm}&metadata[seat]=2\
                 &expand[]=latest_invoice"
            ),
        )
        .await;
    let sub = id(&paid_sub);
    let item = paid_sub["items"]["data"][0]["id"]
        .as_str()
        .expect("an item")
        .to_owned();
    s.get(&format!("/v1/subscriptions/{sub}")).await;
    s.post(
        &format!("/v1/subscriptions/{sub}"),
        &format!(
            "items[0][id]={item}&items[0][price]={yearly}&proration_behavior=create_prorations"
        ),
    )
    .await;
    s.post(
        &format!("/v1/subscriptions/{sub}"),
        &format!("discounts[0][coupon]={coupon}"),
    )
    .await;
    s.post(
        &format!("/v1/subscriptions/{trial_id}"),
        "cancel_at_period_end=true",
    )
    .await;
    s.post(
        &format!("/v1/subscriptions/{trial_id}"),
        "cancel_at_period_end=false",
    )
    .await;
    s.get("/v1/subscriptions?limit=2").await;
    s.get(&format!("/v1/subscriptions?customer={cus}&status=all"))
        .await;
    s.get(&format!("/v1/subscription_items?subscription={sub}"))
        .await;
    s.get(&format!(
        "/v1/subscription_items?subscription={sub}&limit=100&starting_after={item}"
    ))
    .await;
    s.get(&format!("/v1/subscription_items/{item}")).await;
    s.get("/v1/subscriptions?created[gte]=0&created[lte]=99999999999&limit=100")
        .await;
    s.delete(&format!("/v1/subscriptions/{trial_id}")).await;

    let invoices = s.get(&format!("/v1/invoices?subscription={sub}")).await;
    let first_invoice = invoices["data"][0]["id"]
        .as_str()
        .expect("an invoice")
        .to_owned();
    s.get(&format!("/v1/invoices/{first_invoice}")).await;
    let lines = s.get(&format!("/v1/invoices/{first_invoice}/lines")).await;
    if let Some(line) = lines["data"][0]["id"].as_str() {
        s.get(&format!(
            "/v1/invoices/{first_invoice}/lines?limit=100&ending_before={line}"
        ))
        .await;
    }
    s.get("/v1/invoices?created[gt]=0&limit=100").await;
    s.get("/v1/invoices?limit=3").await;
    let items = s.get("/v1/invoiceitems?limit=10").await;
    if let Some(ii) = items["data"][0]["id"].as_str() {
        s.get(&format!("/v1/invoiceitems/{ii}")).await;
    }
    // A one-off invoice: drafted and finalized (nothing owed, so paid at once); a failed
    // subscription payment paid with another card; another invoice voided.
    let draft = id(&s
        .post(
            "/v1/invoices",
            &format!("customer={cus}&collection_method=charge_automatically&auto_advance=false"),
        )
        .await);
    s.post(&format!("/v1/invoices/{draft}/finalize"), "").await;
    let declining = id(&s
        .post(
            "/v1/customers",
            "payment_method=pm_card_chargeDeclined\
             &invoice_settings[default_payment_method]=pm_card_chargeDeclined",
        )
        .await);
    let incomplete = s
        .post(
            "/v1/subscriptions",
            &format!("customer={declining}&items[0][price]={monthly}"),
        )
        .await;
    assert_eq!(incomplete["status"], "incomplete");
    let open = incomplete["latest_invoice"]
        .as_str()
        .expect("an invoice")
        .to_owned();
    s.post(
        &format!("/v1/invoices/{open}/pay"),
        "payment_method=pm_card_visa",
    )
    .await;
    let unpaid = s
        .post(
            "/v1/subscriptions",
            &format!("customer={declining}&items[0][price]={yearly}"),
        )
        .await;
    let to_void = unpaid["latest_invoice"]
        .as_str()
        .expect("an invoice")
        .to_owned();
    s.post(&format!("/v1/invoices/{to_void}/void"), "").await;

    // Checkout, in all three modes; one completed, one expired.
    let pay_session = id(&s
        .post(
            "/v1/checkout/sessions",
            &format!(
                "mode=payment&line_items[0][price]={one_time}&line_items[0][quantity]=3\
                 &success_url=https%3A%2F%2Fexample.com%2Fok&cancel_url=https%3A%2F%2Fexample.com%2Fno\
                 &customer={cus}&metadata[cart]=9"
            ),
        )
        .await);
    let sub_session = id(&s
        .post(
            "/v1/checkout/sessions",
            &format!(
                "mode=subscription&line_items[0][price]={monthly}&line_items[0][quantity]=1\
                 &success_url=https%3A%2F%2Fexample.com%2Fok&customer_email=new%40example.com"
            ),
        )
        .await);
    let setup_session = id(&s
        .post(
            "/v1/checkout/sessions",
            &format!(
                "mode=setup&currency=usd&customer={cus}\
                 &success_url=https%3A%2F%2Fexample.com%2Fok"
            ),
        )
        .await);
    s.get(&format!("/v1/checkout/sessions/{pay_session}")).await;
    s.get(&format!("/v1/checkout/sessions/{pay_session}/line_items"))
        .await;
    s.get("/v1/checkout/sessions?limit=5").await;
    let completed = s
        .raw
        .post(
            &format!("/_emulator/checkout/sessions/{sub_session}/complete"),
            "payment_method=pm_card_visa",
        )
        .await;
    assert_eq!(completed.status, 200, "{}", completed.text);
    s.check(
        "GET",
        &format!("/v1/checkout/sessions/{sub_session}"),
        &completed,
    );
    s.get(&format!("/v1/checkout/sessions/{sub_session}")).await;
    s.post(&format!("/v1/checkout/sessions/{pay_session}/expire"), "")
        .await;

    // Payment links.
    let link = id(&s
        .post(
            "/v1/payment_links",
            &format!("line_items[0][price]={one_time}&line_items[0][quantity]=1&metadata[c]=d"),
        )
        .await);
    s.get(&format!("/v1/payment_links/{link}")).await;
    s.get(&format!("/v1/payment_links/{link}/line_items")).await;
    s.post(&format!("/v1/payment_links/{link}"), "active=false")
        .await;
    s.get("/v1/payment_links").await;

    // The setup intent a completed setup-mode session made.
    let setup = s
        .raw
        .post(
            &format!("/_emulator/checkout/sessions/{setup_session}/complete"),
            "payment_method=pm_card_mastercard",
        )
        .await;
    assert_eq!(setup.status, 200, "{}", setup.text);
    s.check(
        "GET",
        &format!("/v1/checkout/sessions/{setup_session}"),
        &setup,
    );
    let seti = setup.json["setup_intent"]
        .as_str()
        .expect("a setup intent")
        .to_owned();
    s.get(&format!("/v1/setup_intents/{seti}")).await;

    // Setup intents: saved, declined, canceled; listed.
    let seti2 = id(&s
        .post(
            "/v1/setup_intents",
            &format!("customer={cus}&usage=off_session&metadata[k]=v"),
        )
        .await);
    s.post(
        &format!("/v1/setup_intents/{seti2}/confirm"),
        "payment_method=pm_card_visa&return_url=https%3A%2F%2Fexample.com%2Fback",
    )
    .await;
    let declined = id(&s
        .post(
            "/v1/setup_intents",
            &format!("customer={cus}&allowed_payment_method_types[0]=card"),
        )
        .await);
    s.call(
        "POST",
        &format!("/v1/setup_intents/{declined}/confirm"),
        "payment_method=pm_card_chargeDeclined",
        402,
    )
    .await;
    s.get(&format!("/v1/setup_intents/{declined}")).await;
    s.post(&format!("/v1/setup_intents/{declined}/cancel"), "")
        .await;
    s.get(&format!("/v1/setup_intents?customer={cus}")).await;

    // Search and balance.
    s.get("/v1/customers/search?query=email%3A%22ada%40example.com%22")
        .await;
    s.get("/v1/customers/search?query=metadata%5B%27plan%27%5D%3A%27pro%27&limit=1")
        .await;
    s.get("/v1/payment_intents/search?query=status%3A%27succeeded%27+AND+amount%3E1000")
        .await;
    s.get("/v1/balance").await;
    let payments = s.get("/v1/invoice_payments?limit=5").await;
    let inpay = id(&payments["data"][0]);
    s.get(&format!("/v1/invoice_payments/{inpay}")).await;

    // Promotion codes, one redeemed by a checkout session.
    let promo = id(&s
        .post(
            "/v1/promotion_codes",
            &format!(
                "promotion[type]=coupon&promotion[coupon]={coupon}&code=SPRING25&max_redemptions=5"
            ),
        )
        .await);
    s.get(&format!("/v1/promotion_codes/{promo}")).await;
    s.post(&format!("/v1/promotion_codes/{promo}"), "metadata[c]=d")
        .await;
    s.get("/v1/promotion_codes?active=true").await;
    let promo_session = id(&s
        .post(
            "/v1/checkout/sessions",
            &format!(
                "mode=payment&line_items[0][price]={one_time}&line_items[0][quantity]=2\
                 &allow_promotion_codes=true&success_url=https%3A%2F%2Fexample.com%2Fok"
            ),
        )
        .await);
    let redeemed = s
        .raw
        .send(
            s.raw
                .request(
                    reqwest::Method::POST,
                    &format!("/_emulator/checkout/sessions/{promo_session}/complete"),
                )
                .header("content-type", "application/json")
                .body("{\"payment_method\": \"pm_card_visa\", \"promotion_code\": \"SPRING25\"}"),
        )
        .await;
    assert_eq!(redeemed.status, 200, "{}", redeemed.text);
    s.check(
        "GET",
        &format!("/v1/checkout/sessions/{promo_session}"),
        &redeemed,
    );

    // Webhook endpoints.
    let endpoint = id(&s
        .post(
            "/v1/webhook_endpoints",
            "url=https%3A%2F%2Fexample.com%2Fhook&enabled_events[0]=customer.created\
             &enabled_events[1]=invoice.paid&description=Main",
        )
        .await);
    s.get(&format!("/v1/webhook_endpoints/{endpoint}")).await;
    s.post(
        &format!("/v1/webhook_endpoints/{endpoint}"),
        "disabled=true&enabled_events[0]=*",
    )
    .await;
    s.get("/v1/webhook_endpoints").await;
    s.delete(&format!("/v1/webhook_endpoints/{endpoint}")).await;

    // Deletes last.
    s.delete(&format!("/v1/customers/{other}")).await;
    s.get("/v1/events?type=customer.*&delivery_success=true&created[gte]=0&limit=100")
        .await;
    s.get("/v1/events?types[0]=charge.succeeded&types[1]=invoice.paid&delivery_success=false")
        .await;
    s.get("/v1/charges?created[gte]=0&limit=100").await;
    s.get("/v1/customers?created[gte]=0&limit=100").await;
    let events = s.get("/v1/events?limit=1").await;
    s.get(&format!("/v1/events/{}", id(&events["data"][0])))
        .await;
}

/// Every event the key's account recorded, oldest first.
async fn all_events(raw: &Raw) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(last) => format!("/v1/events?limit=100&starting_after={last}"),
            None => "/v1/events?limit=100".to_owned(),
        };
        let page = raw.get(&path).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let data = page.json["data"].as_array().cloned().unwrap_or_default();
        after = data.last().map(id);
        events.extend(data);
        if page.json["has_more"] != true {
            break;
        }
    }
    events.reverse();
    events
}

#[tokio::test]
async fn every_answer_and_event_matches_stripes_definition() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    let mut suite = Suite::new(raw);
    flow(&mut suite).await;

    let events = all_events(&suite.raw).await;
    let mut event_problems = Vec::new();
    let mut valid_events = 0;
    let mut types = BTreeSet::new();
    for event in &events {
        let kind = event["type"].as_str().unwrap_or_default().to_owned();
        let problems = spec::check_event(suite.spec, event, &format!("event {kind}"));
        if problems.is_empty() {
            valid_events += 1;
        }
        event_problems.extend(problems);
        types.insert(kind);
    }
    println!(
        "conformance: {} answers checked over {} endpoints, {} with problems; {} events of {} \
         types checked, {} valid",
        suite.checked,
        suite.covered.len(),
        suite.problems.len(),
        events.len(),
        types.len(),
        valid_events
    );
    let mut all: Vec<String> = suite.problems.clone();
    all.extend(event_problems);
    all.sort();
    all.dedup();
    assert!(
        all.is_empty(),
        "{} problems:\n{}",
        all.len(),
        all.join("\n")
    );

    // The flow announces every kind of change the emulator makes.
    for expected in [
        "customer.created",
        "customer.updated",
        "customer.deleted",
        "payment_method.attached",
        "payment_method.detached",
        "payment_method.updated",
        "product.created",
        "product.updated",
        "product.deleted",
        "price.created",
        "price.updated",
        "coupon.created",
        "coupon.updated",
        "coupon.deleted",
        "payment_intent.created",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.amount_capturable_updated",
        "payment_intent.canceled",
        "charge.succeeded",
        "charge.failed",
        "charge.captured",
        "charge.refunded",
        "refund.created",
        "refund.updated",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice.voided",
        "checkout.session.completed",
        "checkout.session.expired",
        "payment_link.created",
        "payment_link.updated",
        "setup_intent.created",
        "setup_intent.succeeded",
        "setup_intent.setup_failed",
        "setup_intent.canceled",
        "promotion_code.created",
        "promotion_code.updated",
        "invoice_payment.paid",
        "invoice.payment_failed",
    ] {
        assert!(
            types.contains(expected),
            "no {expected} event; saw {types:?}"
        );
    }
    emulator.stop().await;
}

/// Every endpoint of the definition that the emulator serves is driven by the flow above:
/// probed with made-up ids on a key of its own, an endpoint the emulator does not serve
/// answers "Unrecognized request URL"; every other must be in the flow's coverage.
#[tokio::test]
async fn the_flow_drives_every_endpoint_the_emulator_serves() {
    let emulator = start().await;
    let mut suite = Suite::new(Raw::new(&emulator, &test_key()));
    flow(&mut suite).await;
    let probe = Raw::new(&emulator, &test_key());
    let mut served = Vec::new();
    for endpoint in &suite.spec.endpoints {
        let path = endpoint.path.replace("{}", "probe_0");
        let reply = match endpoint.method.as_str() {
            "GET" => probe.get(&path).await,
            "DELETE" => probe.delete(&path).await,
            _ => probe.post(&path, "").await,
        };
        let message = reply.json["error"]["message"].as_str().unwrap_or_default();
        if !message.starts_with("Unrecognized request URL") {
            served.push(format!("{} {}", endpoint.method, endpoint.path));
        }
    }
    let missing: Vec<&String> = served
        .iter()
        .filter(|e| !suite.covered.contains_key(*e))
        .collect();
    println!(
        "conformance: the emulator serves {} endpoints of the definition; the flow drives {}",
        served.len(),
        suite.covered.len()
    );
    assert!(
        missing.is_empty(),
        "served but not driven by the flow: {missing:#?}"
    );
    emulator.stop().await;
}

/// Objects made by `POST /_emulator/seed` have the shapes the API answers: every seeded
/// type listed (all pages) and retrieved, and the nested lists paged, checked against the
/// definition.
#[tokio::test]
async fn seeded_objects_match_stripes_definition() {
    let emulator = start().await;
    let mut s = Suite::new(Raw::new(&emulator, &test_key()));
    let seeded = s
        .raw
        .send(
            s.raw
                .request(reqwest::Method::POST, "/_emulator/seed")
                .body(
                    r#"{"customers": 6, "products": 3, "prices_per_product": 4,
                        "subscriptions": 3, "items_per_subscription": [11, 12],
                        "invoices": 3, "lines_per_invoice": [1, 12], "payment_intents": 4}"#,
                ),
        )
        .await;
    assert_eq!(seeded.status, 200, "{}", seeded.text);
    assert_eq!(seeded.json["created"]["customer"], 6);
    for list in [
        "customers",
        "products",
        "prices",
        "subscriptions",
        "invoices",
        "invoiceitems",
        "payment_intents",
        "payment_methods",
        "charges",
    ] {
        let page = s.get(&format!("/v1/{list}?limit=100")).await;
        let data = page["data"].as_array().cloned().unwrap_or_default();
        assert!(!data.is_empty() || list == "invoiceitems", "{list}: {page}");
        if let Some(first) = data.first() {
            s.get(&format!("/v1/{list}/{}", id(first))).await;
        }
    }
    let subs = s.get("/v1/subscriptions?limit=100").await;
    for sub in subs["data"].as_array().cloned().unwrap_or_default() {
        assert_eq!(sub["items"]["has_more"], true, "{sub}");
        let items = s
            .get(&format!(
                "/v1/subscription_items?subscription={}&limit=100",
                id(&sub)
            ))
            .await;
        assert!(items["data"].as_array().map_or(0, Vec::len) >= 11);
    }
    let invoices = s.get("/v1/invoices?limit=100").await;
    for invoice in invoices["data"].as_array().cloned().unwrap_or_default() {
        s.get(&format!("/v1/invoices/{}/lines?limit=100", id(&invoice)))
            .await;
    }
    let events = s.get("/v1/events").await;
    assert_eq!(
        events["data"],
        serde_json::json!([]),
        "seeding announces nothing"
    );
    assert!(
        s.problems.is_empty(),
        "{} problems:\n{}",
        s.problems.len(),
        s.problems.join("\n")
    );
    emulator.stop().await;
}
