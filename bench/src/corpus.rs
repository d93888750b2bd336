//! The replayed corpus: a deterministic (seeded) stream of Stripe events shaped like the ones
//! Stripe sends, with the final state each mirrored object must end in.
//!
//! - Subscriptions (about 55% of the events): created (trialing or active), 2 to 4 updates that
//!   each change a field the mirror keeps (status active/past_due, price, quantity,
//!   cancel_at_period_end), and in 60% of cases a final `deleted` (canceled).
//! - Payment intents (about 22%): created, then succeeded or payment_failed, sometimes through
//!   processing or a failure followed by a success (2 or 3 events).
//! - Checkout sessions (about 10%): completed (payment unpaid), then async payment succeeded or
//!   failed; some only expire.
//! - Customers (about 12%): created, then one or two updates changing the email.
//! - About 1% of other types: invoices (mirrored since the invoice mirror; the check does not read
//!   them) and charges (stored as `ignored`).
//!
//! Every object's events have strictly increasing `created` seconds (at least 1 s apart), so the
//! receiver never meets a same-second tie (which would make it re-read the object from Stripe;
//! ties are covered by the integration tests, not here). The stream is ordered by `created`,
//! objects interleaved, then perturbed: some pairs of consecutive events of one object are
//! swapped (the newer delivered first), and some events are delivered a second time, byte for
//! byte, a little or a lot later.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rand::distr::weighted::WeightedIndex;
use rand::distr::{Alphanumeric, Distribution, SampleString};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// The first `created` second of the corpus (fixed so the corpus is the same on every run).
const T0: i64 = 1_750_000_000;
const API_VERSION: &str = "2025-08-27.basil";

/// The catalogue subscriptions move between: (price id, monthly amount in cents, interval).
const PRICES: [(&str, i64, &str); 5] = [
    ("price_1RbenchBasicMonthly", 900, "month"),
    ("price_1RbenchProMonthly", 2900, "month"),
    ("price_1RbenchTeamMonthly", 9900, "month"),
    ("price_1RbenchBasicYearly", 9000, "year"),
    ("price_1RbenchProYearly", 29000, "year"),
];

/// Types the mirror does not keep (stored as `ignored`).
const UNMIRRORED: [&str; 4] = [
    "invoice.paid",
    "invoice.finalized",
    "charge.succeeded",
    "invoice.payment_succeeded",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    pub status: String,
    pub plan_amount: i64,
    pub price_id: String,
    pub quantity: i64,
    pub cancel_at_period_end: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentState {
    pub status: String,
    pub amount: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutState {
    pub status: String,
    pub payment_status: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerState {
    pub email: String,
}

/// The state an object is in right after one of its events.
#[derive(Debug, Clone)]
enum State {
    Subscription(SubscriptionState),
    Payment(PaymentState),
    Checkout(CheckoutState),
    Customer(CustomerState),
    Unmirrored,
}

/// One delivery: the exact bytes sent (a duplicate repeats them).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub event_id: String,
    pub body: String,
}

/// One event of an object, for explaining a wrong row.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    /// Position in the delivery stream (0-based).
    pub position: usize,
    pub event_id: String,
    pub kind: String,
    pub created: i64,
    pub duplicate: bool,
}

#[derive(Debug, Default)]
pub struct Stats {
    pub by_type: BTreeMap<String, usize>,
    pub distinct_events: usize,
    pub duplicates: usize,
    pub near_duplicates: usize,
    pub reversed_pairs: usize,
    pub subscriptions: usize,
    pub payments: usize,
    pub checkouts: usize,
    pub customers: usize,
    pub unmirrored: usize,
    pub mean_body_bytes: usize,
    pub min_body_bytes: usize,
    pub max_body_bytes: usize,
}

pub struct Corpus {
    pub deliveries: Vec<Delivery>,
    pub subscriptions: BTreeMap<String, SubscriptionState>,
    pub payments: BTreeMap<String, PaymentState>,
    pub checkouts: BTreeMap<String, CheckoutState>,
    pub customers: BTreeMap<String, CustomerState>,
    pub event_ids: BTreeSet<String>,
    /// Object id -> its deliveries in stream order.
    pub history: HashMap<String, Vec<HistoryEntry>>,
    pub stats: Stats,
}

/// An event before ordering.
struct Planned {
    event_id: String,
    kind: String,
    object_id: String,
    created: i64,
    body: String,
    state: State,
}

pub struct Options {
    pub events: usize,
    pub seed: u64,
    pub duplicate_rate: f64,
    pub reversed_rate: f64,
}

struct Gen {
    rng: StdRng,
    planned: Vec<Planned>,
    /// Planned indices of each object, oldest first.
    objects: Vec<Vec<usize>>,
    customers: Vec<String>,
    span: i64,
}

impl Gen {
    fn id(&mut self, prefix: &str, len: usize) -> String {
        format!("{prefix}{}", Alphanumeric.sample_string(&mut self.rng, len))
    }

    fn start(&mut self) -> i64 {
        T0 + self.rng.random_range(0..self.span)
    }

    /// Seconds between two events of one object: half in bursts, half minutes apart.
    fn gap(&mut self) -> i64 {
        if self.rng.random_bool(0.5) {
            self.rng.random_range(1..=5)
        } else {
            self.rng.random_range(6..=600)
        }
    }

    fn push_object(&mut self, events: Vec<Planned>) {
        let first = self.planned.len();
        let indices = (first..first + events.len()).collect();
        self.planned.extend(events);
        self.objects.push(indices);
    }

    fn event(&mut self, kind: &str, created: i64, object: Value, previous: Option<Value>) -> Value {
        let mut data = json!({ "object": object });
        if let Some(previous) = previous {
            data["previous_attributes"] = previous;
        }
        json!({
            "id": self.id("evt_1Rb", 21),
            "object": "event",
            "api_version": API_VERSION,
            "created": created,
            "data": data,
            "livemode": false,
            "pending_webhooks": 1,
            "request": { "id": self.id("req_", 14), "idempotency_key": uuid_like(&mut self.rng) },
            "type": kind,
        })
    }

    fn planned(
        &mut self,
        kind: &str,
        created: i64,
        object: Value,
        previous: Option<Value>,
        state: State,
    ) -> Planned {
        let object_id = object["id"].as_str().unwrap_or_default().to_owned();
        let event = self.event(kind, created, object, previous);
        Planned {
            event_id: event["id"].as_str().unwrap_or_default().to_owned(),
            kind: kind.to_owned(),
            object_id,
            created,
            // Stripe's deliveries are pretty-printed (two-space indent).
            body: serde_json::to_string_pretty(&event).unwrap_or_else(|_| event.to_string()),
            state,
        }
    }

    fn customer_ref(&mut self) -> String {
        if self.customers.is_empty() || self.rng.random_bool(0.2) {
            self.id("cus_S", 13)
        } else {
            let i = self.rng.random_range(0..self.customers.len());
            self.customers[i].clone()
        }
    }

    fn subscription(&mut self) {
        let id = self.id("sub_1Rb", 17);
        let item = self.id("si_S", 13);
        let customer = self.customer_ref();
        let payment_method = self.id("pm_1Rb", 18);
        let product = self.id("prod_S", 13);
        let start = self.start();
        let trial = self.rng.random_bool(0.6);
        let (price, amount, interval) = PRICES[self.rng.random_range(0..PRICES.len())];
        let mut state = SubscriptionState {
            status: if trial { "trialing" } else { "active" }.to_owned(),
            plan_amount: amount,
            price_id: price.to_owned(),
            quantity: if self.rng.random_bool(0.7) {
                1
            } else {
                self.rng.random_range(2..=10)
            },
            cancel_at_period_end: false,
        };
        let mut interval = interval;
        let trial_end = trial.then_some(start + 14 * 86_400);
        let mut created = start;
        let mut revision = 0;
        let sub = |state: &SubscriptionState,
                   interval: &str,
                   revision: i32,
                   canceled_at: Option<i64>,
                   g: &mut Gen| {
            let period_start = start;
            let period_end = start + if interval == "year" { 365 } else { 30 } * 86_400;
            let plan = json!({
                "id": state.price_id, "object": "plan", "active": true, "aggregate_usage": null,
                "amount": state.plan_amount, "amount_decimal": state.plan_amount.to_string(),
                "billing_scheme": "per_unit", "created": T0 - 86_400, "currency": "usd",
                "interval": interval, "interval_count": 1, "livemode": false, "metadata": {},
                "meter": null, "nickname": null, "product": product, "tiers_mode": null,
                "transform_usage": null, "trial_period_days": null, "usage_type": "licensed"
            });
            json!({
                "id": id, "object": "subscription", "application": null,
                "application_fee_percent": null,
                "automatic_tax": {"disabled_reason": null, "enabled": false, "liability": null},
                "billing_cycle_anchor": start, "billing_thresholds": null,
                "cancel_at": if state.cancel_at_period_end { Some(period_end) } else { None },
                "cancel_at_period_end": state.cancel_at_period_end,
                "canceled_at": canceled_at,
                "cancellation_details": {"comment": null, "feedback": null,
                    "reason": canceled_at.map(|_| "cancellation_requested")},
                "collection_method": "charge_automatically", "created": start, "currency": "usd",
                "customer": customer, "days_until_due": null,
                "default_payment_method": payment_method, "default_source": null,
                "description": null, "discounts": [], "ended_at": canceled_at,
                "invoice_settings": {"account_tax_ids": null, "issuer": {"type": "self"}},
                "items": {"object": "list", "data": [{
                    "id": item, "object": "subscription_item", "created": start,
                    "current_period_start": period_start, "current_period_end": period_end,
                    "discounts": [], "metadata": {}, "billing_thresholds": null,
                    "plan": plan,
                    "price": {"id": state.price_id, "object": "price", "active": true,
                        "billing_scheme": "per_unit", "created": T0 - 86_400, "currency": "usd",
                        "custom_unit_amount": null, "livemode": false, "lookup_key": null,
                        "metadata": {}, "nickname": null, "product": product,
                        "recurring": {"interval": interval, "interval_count": 1,
                                      "meter": null, "usage_type": "licensed"},
                        "tax_behavior": "unspecified", "tiers_mode": null,
                        "transform_quantity": null, "type": "recurring",
                        "unit_amount": state.plan_amount,
                        "unit_amount_decimal": state.plan_amount.to_string()},
                    "quantity": state.quantity, "subscription": id, "tax_rates": []}],
                    "has_more": false, "total_count": 1,
                    "url": format!("/v1/subscription_items?subscription={id}")},
                "latest_invoice": g.id("in_1Rb", 18), "livemode": false,
                "metadata": {"plan": state.price_id, "revision": revision.to_string(),
                             "account": format!("acct-{}", &customer[4..]),
                             "app": "bench-shop", "seats": state.quantity.to_string(),
                             "signup_source": "pricing-page", "referral": "none"},
                "next_pending_invoice_item_invoice": null, "on_behalf_of": null,
                "pause_collection": null,
                "payment_settings": {"payment_method_options": null, "payment_method_types": null,
                                     "save_default_payment_method": "off"},
                "pending_invoice_item_interval": null, "pending_setup_intent": null,
                "pending_update": null, "plan": plan, "quantity": state.quantity,
                "schedule": null, "start_date": start,
                "billing_cycle_anchor_config": null, "billing_mode": {"type": "classic"},
                "default_tax_rates": [], "discount": null,
                "status": state.status, "test_clock": null, "transfer_data": null,
                "trial_end": trial_end, "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
                "trial_start": trial_end.map(|_| start)
            })
        };
        let mut events = Vec::new();
        let object = sub(&state, interval, revision, None, self);
        events.push(self.planned(
            "customer.subscription.created",
            created,
            object,
            None,
            State::Subscription(state.clone()),
        ));
        let updates = self.rng.random_range(2..=4);
        for _ in 0..updates {
            created += self.gap();
            revision += 1;
            let previous;
            if state.status == "trialing" {
                previous = json!({"status": state.status});
                state.status = "active".into();
            } else {
                match self.rng.random_range(0..4) {
                    0 => {
                        previous = json!({"status": state.status});
                        state.status = if state.status == "active" {
                            "past_due"
                        } else {
                            "active"
                        }
                        .into();
                    }
                    1 => {
                        previous = json!({"items": {"data": [{"price": {"id": state.price_id}}]}});
                        let current = PRICES
                            .iter()
                            .position(|p| p.0 == state.price_id)
                            .unwrap_or(0);
                        let next =
                            (current + self.rng.random_range(1..PRICES.len())) % PRICES.len();
                        state.price_id = PRICES[next].0.to_owned();
                        state.plan_amount = PRICES[next].1;
                        interval = PRICES[next].2;
                    }
                    2 => {
                        previous = json!({"items": {"data": [{"quantity": state.quantity}]}});
                        state.quantity = if state.quantity == 1 {
                            self.rng.random_range(2..=10)
                        } else {
                            1
                        };
                    }
                    _ => {
                        previous = json!({"cancel_at_period_end": state.cancel_at_period_end});
                        state.cancel_at_period_end = !state.cancel_at_period_end;
                    }
                }
            }
            let object = sub(&state, interval, revision, None, self);
            events.push(self.planned(
                "customer.subscription.updated",
                created,
                object,
                Some(previous),
                State::Subscription(state.clone()),
            ));
        }
        if self.rng.random_bool(0.6) {
            created += self.gap();
            revision += 1;
            state.status = "canceled".into();
            let object = sub(&state, interval, revision, Some(created), self);
            events.push(self.planned(
                "customer.subscription.deleted",
                created,
                object,
                None,
                State::Subscription(state.clone()),
            ));
        }
        self.push_object(events);
    }

    fn payment_intent(&mut self) {
        let id = self.id("pi_3Rb", 18);
        let secret = self.id("_secret_", 25);
        let customer = self.rng.random_bool(0.7).then(|| self.customer_ref());
        let payment_method = self.id("pm_1Rb", 18);
        let charge = self.id("ch_3Rb", 18);
        let order = self.rng.random_range(10_000..99_999);
        let amount =
            self.rng.random_range(5..=500) * 100 + [0, 50, 99][self.rng.random_range(0..3)];
        let start = self.start();
        let object = |status: &str, failed: bool| {
            json!({
                "id": id, "object": "payment_intent", "amount": amount,
                "amount_capturable": 0, "amount_details": {"tip": {}},
                "amount_received": if status == "succeeded" { amount } else { 0 },
                "application": null, "application_fee_amount": null,
                "automatic_payment_methods": {"allow_redirects": "never", "enabled": true},
                "canceled_at": null, "cancellation_reason": null, "capture_method": "automatic_async",
                "client_secret": format!("{id}{secret}"), "confirmation_method": "automatic",
                "created": start, "currency": "usd", "customer": customer,
                "description": format!("Order #{order}"),
                "last_payment_error": if failed { json!({"code": "card_declined",
                    "decline_code": "insufficient_funds", "type": "card_error",
                    "message": "Your card has insufficient funds."}) } else { Value::Null },
                "latest_charge": if status == "requires_payment_method" && !failed { Value::Null } else { json!(charge) },
                "livemode": false, "metadata": {"order_id": order.to_string(), "channel": "web",
                    "cart_id": format!("cart_{order}"), "integration": "sales-block"},
                "next_action": null, "on_behalf_of": null,
                "payment_method": if status == "requires_payment_method" && !failed { Value::Null } else { json!(payment_method) },
                "payment_method_options": {"card": {"installments": null, "mandate_options": null,
                    "network": null, "request_three_d_secure": "automatic"},
                    "link": {"persistent_token": null}},
                "payment_method_types": ["card"], "processing": null, "receipt_email": null,
                "review": null, "setup_future_usage": null, "source": null,
                "shipping": {"address": {"city": "Springfield", "country": "US",
                    "line1": format!("{} Evergreen Terrace", order % 900 + 100), "line2": null,
                    "postal_code": "49007", "state": "OR"}, "carrier": null,
                    "name": "Bench Buyer", "phone": null, "tracking_number": null},
                "statement_descriptor": null, "statement_descriptor_suffix": null,
                "status": status, "transfer_data": null, "transfer_group": null,
                "excluded_payment_method_types": null,
                "payment_method_configuration_details": {"id": "pmc_1RbenchDefaultConfig", "parent": null},
                "presentment_details": {"presentment_amount": amount, "presentment_currency": "usd"}
            })
        };
        let path: &[(&str, &str, bool)] = match self.rng.random_range(0..20) {
            0..10 => &[
                ("payment_intent.created", "requires_payment_method", false),
                ("payment_intent.succeeded", "succeeded", false),
            ],
            10..15 => &[
                ("payment_intent.created", "requires_payment_method", false),
                ("payment_intent.processing", "processing", false),
                ("payment_intent.succeeded", "succeeded", false),
            ],
            15..18 => &[
                ("payment_intent.created", "requires_payment_method", false),
                (
                    "payment_intent.payment_failed",
                    "requires_payment_method",
                    true,
                ),
                ("payment_intent.succeeded", "succeeded", false),
            ],
            _ => &[
                ("payment_intent.created", "requires_payment_method", false),
                ("payment_intent.processing", "processing", false),
                (
                    "payment_intent.payment_failed",
                    "requires_payment_method",
                    true,
                ),
            ],
        };
        let mut created = start;
        let mut events = Vec::new();
        for (i, (kind, status, failed)) in path.iter().enumerate() {
            if i > 0 {
                created += self.gap();
            }
            let state = State::Payment(PaymentState {
                status: (*status).to_owned(),
                amount,
            });
            let object = object(status, *failed);
            events.push(self.planned(kind, created, object, None, state));
        }
        self.push_object(events);
    }

    fn checkout_session(&mut self) {
        let id = self.id("cs_test_b1", 48);
        let payment_intent = self.id("pi_3Rb", 18);
        let customer = self.rng.random_bool(0.5).then(|| self.customer_ref());
        let email = format!("{}@example.com", self.id("buyer-", 8).to_lowercase());
        let amount = self.rng.random_range(5..=300) * 100;
        let start = self.start();
        let object = |status: &str, payment_status: &str| {
            json!({
                "id": id, "object": "checkout.session", "after_expiration": null,
                "allow_promotion_codes": null, "amount_subtotal": amount, "amount_total": amount,
                "automatic_tax": {"enabled": false, "liability": null, "status": null},
                "billing_address_collection": null, "cancel_url": "https://shop.example.com/cart",
                "client_reference_id": null, "consent": null, "created": start,
                "currency": "usd", "custom_fields": [], "customer": customer,
                "customer_creation": "if_required",
                "customer_details": {"address": {"city": "Berlin", "country": "DE",
                    "line1": "Hauptstrasse 1", "line2": null, "postal_code": "10115", "state": null},
                    "business_name": null, "email": email, "individual_name": null,
                    "name": "Bench Buyer", "phone": null, "tax_exempt": "none", "tax_ids": []},
                "customer_email": null, "expires_at": start + 86_400, "invoice": null,
                "livemode": false, "locale": null, "metadata": {"cart": "bench"},
                "mode": "payment",
                "payment_intent": if status == "expired" { Value::Null } else { json!(payment_intent) },
                "payment_method_types": ["card", "sepa_debit"], "payment_status": payment_status,
                "shipping_address_collection": null, "status": status,
                "submit_type": null, "subscription": null,
                "success_url": "https://shop.example.com/thanks?session_id={CHECKOUT_SESSION_ID}",
                "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
                "ui_mode": "hosted", "url": null,
                "adaptive_pricing": {"enabled": true}, "automatic_tax_details": null,
                "collected_information": {"shipping_details": null},
                "currency_conversion": null, "custom_text": {"after_submit": null,
                    "shipping_address": null, "submit": null, "terms_of_service_acceptance": null},
                "discounts": [], "invoice_creation": {"enabled": false, "invoice_data": {
                    "account_tax_ids": null, "custom_fields": null, "description": null,
                    "footer": null, "issuer": null, "metadata": {}, "rendering_options": null}},
                "payment_link": null, "payment_method_collection": "if_required",
                "payment_method_configuration_details": {"id": "pmc_1RbenchDefaultConfig", "parent": null},
                "payment_method_options": {"card": {"request_three_d_secure": "automatic"},
                    "sepa_debit": {"setup_future_usage": null}},
                "permissions": null, "phone_number_collection": {"enabled": false},
                "presentment_details": {"presentment_amount": amount, "presentment_currency": "usd"},
                "recovered_from": null, "saved_payment_method_options": null,
                "setup_intent": null, "shipping_cost": null, "shipping_details": null,
                "shipping_options": [], "wallet_options": null
            })
        };
        let path: &[(&str, &str, &str)] = match self.rng.random_range(0..20) {
            0..15 => &[
                ("checkout.session.completed", "complete", "unpaid"),
                (
                    "checkout.session.async_payment_succeeded",
                    "complete",
                    "paid",
                ),
            ],
            15..18 => &[
                ("checkout.session.completed", "complete", "unpaid"),
                (
                    "checkout.session.async_payment_failed",
                    "complete",
                    "unpaid",
                ),
            ],
            _ => &[("checkout.session.expired", "expired", "unpaid")],
        };
        let mut created = start;
        let mut events = Vec::new();
        for (i, (kind, status, payment_status)) in path.iter().enumerate() {
            if i > 0 {
                created += self.gap();
            }
            let state = State::Checkout(CheckoutState {
                status: (*status).to_owned(),
                payment_status: (*payment_status).to_owned(),
            });
            let object = object(status, payment_status);
            events.push(self.planned(kind, created, object, None, state));
        }
        self.push_object(events);
    }

    fn customer(&mut self) {
        let id = self.id("cus_S", 13);
        self.customers.push(id.clone());
        let start = self.start();
        let name = format!("Customer {}", self.id("", 6));
        let invoice_prefix = self.id("", 8).to_uppercase();
        let updates = if self.rng.random_bool(0.3) { 2 } else { 1 };
        let mut created = start;
        let mut events = Vec::new();
        let mut previous: Option<String> = None;
        for i in 0..=updates {
            if i > 0 {
                created += self.gap();
            }
            let email = format!("{}@example.com", self.id("", 10).to_lowercase());
            let object = json!({
                "id": id, "object": "customer", "address": null, "balance": 0,
                "created": start, "currency": null, "default_source": null, "delinquent": false,
                "description": null, "discount": null, "email": email,
                "invoice_prefix": invoice_prefix,
                "invoice_settings": {"custom_fields": null, "default_payment_method": null,
                                     "footer": null, "rendering_options": null},
                "livemode": false, "metadata": {"source": "bench"}, "name": name,
                "next_invoice_sequence": 1, "phone": null, "preferred_locales": [],
                "shipping": null, "tax_exempt": "none", "test_clock": null
            });
            let kind = if i == 0 {
                "customer.created"
            } else {
                "customer.updated"
            };
            let prev = previous.replace(email.clone()).map(|e| json!({"email": e}));
            let state = State::Customer(CustomerState { email });
            events.push(self.planned(kind, created, object, prev, state));
        }
        self.push_object(events);
    }

    fn unmirrored(&mut self) {
        let kind = UNMIRRORED[self.rng.random_range(0..UNMIRRORED.len())];
        let created = self.start();
        let customer = self.customer_ref();
        let object = if kind.starts_with("charge.") {
            self.charge(created, &customer)
        } else {
            self.invoice(created, &customer)
        };
        let event = self.planned(kind, created, object, None, State::Unmirrored);
        self.push_object(vec![event]);
    }
}

impl Gen {
    /// A charge as Stripe sends it (its card details, outcome and billing details).
    fn charge(&mut self, created: i64, customer: &str) -> Value {
        let id = self.id("ch_3Rb", 18);
        json!({
            "id": id, "object": "charge", "amount": 2900, "amount_captured": 2900,
            "amount_refunded": 0, "application": null, "application_fee": null,
            "application_fee_amount": null, "balance_transaction": self.id("txn_3Rb", 18),
            "billing_details": {"address": {"city": null, "country": "US", "line1": null,
                "line2": null, "postal_code": "94103", "state": null},
                "email": "buyer@example.com", "name": "Bench Buyer", "phone": null, "tax_id": null},
            "calculated_statement_descriptor": "BENCH SHOP", "captured": true, "created": created,
            "currency": "usd", "customer": customer, "description": "Subscription update",
            "destination": null, "dispute": null, "disputed": false, "failure_balance_transaction": null,
            "failure_code": null, "failure_message": null, "fraud_details": {}, "livemode": false,
            "metadata": {}, "on_behalf_of": null, "order": null,
            "outcome": {"advice_code": null, "network_advice_code": null,
                "network_decline_code": null, "network_status": "approved_by_network",
                "reason": null, "risk_level": "normal", "risk_score": 32, "seller_message": "Payment complete.",
                "type": "authorized"},
            "paid": true, "payment_intent": self.id("pi_3Rb", 18),
            "payment_method": self.id("pm_1Rb", 18),
            "payment_method_details": {"card": {"amount_authorized": 2900,
                "authorization_code": null, "brand": "visa",
                "checks": {"address_line1_check": null, "address_postal_code_check": "pass",
                    "cvc_check": "pass"},
                "country": "US", "exp_month": 12, "exp_year": 2030,
                "extended_authorization": {"status": "disabled"}, "fingerprint": self.id("", 16),
                "funding": "credit", "incremental_authorization": {"status": "unavailable"},
                "installments": null, "last4": "4242", "mandate": null,
                "multicapture": {"status": "unavailable"}, "network": "visa",
                "network_token": {"used": false}, "network_transaction_id": self.id("", 15),
                "overcapture": {"maximum_amount_capturable": 2900, "status": "unavailable"},
                "regulated_status": "unregulated", "three_d_secure": null, "wallet": null},
                "type": "card"},
            "radar_options": {}, "receipt_email": null, "receipt_number": null,
            "receipt_url": format!("https://pay.stripe.com/receipts/payment/{}", self.id("CAcaFwoVYWNjdF8x", 60)),
            "refunded": false, "review": null, "shipping": null, "source": null,
            "source_transfer": null, "statement_descriptor": null,
            "statement_descriptor_suffix": null, "status": "succeeded", "transfer_data": null,
            "transfer_group": null
        })
    }

    /// An invoice as Stripe sends it, with one or two lines.
    fn invoice(&mut self, created: i64, customer: &str) -> Value {
        let id = self.id("in_1Rb", 18);
        let subscription = self.id("sub_1Rb", 17);
        let lines: Vec<Value> = (0..self.rng.random_range(1..=2))
            .map(|n| {
                let (price, amount, interval) = PRICES[n % PRICES.len()];
                json!({
                    "id": self.id("il_1Rb", 18), "object": "line_item", "amount": amount,
                    "currency": "usd", "description": format!("1 x Bench plan (at ${}.00 / {interval})", amount / 100),
                    "discount_amounts": [], "discountable": true, "discounts": [],
                    "invoice": id, "livemode": false, "metadata": {},
                    "parent": {"invoice_item_details": null, "subscription_item_details": {
                        "invoice_item": null, "proration": false, "proration_details": {"credited_items": null},
                        "subscription": subscription, "subscription_item": self.id("si_S", 13)},
                        "type": "subscription_item_details"},
                    "period": {"end": created + 30 * 86_400, "start": created},
                    "pretax_credit_amounts": [],
                    "pricing": {"price_details": {"price": price, "product": self.id("prod_S", 13)},
                        "type": "price_details", "unit_amount_decimal": amount.to_string()},
                    "quantity": 1, "taxes": []
                })
            })
            .collect();
        json!({
            "id": id, "object": "invoice", "account_country": "US", "account_name": "Bench Shop",
            "account_tax_ids": null, "amount_due": 2900, "amount_overpaid": 0, "amount_paid": 2900,
            "amount_remaining": 0, "amount_shipping": 0, "application": null, "attempt_count": 1,
            "attempted": true, "auto_advance": false,
            "automatic_tax": {"disabled_reason": null, "enabled": false, "liability": null,
                "provider": null, "status": null},
            "automatically_finalizes_at": null, "billing_reason": "subscription_cycle",
            "collection_method": "charge_automatically", "created": created, "currency": "usd",
            "custom_fields": null, "customer": customer, "customer_address": null,
            "customer_email": "buyer@example.com", "customer_name": "Bench Buyer",
            "customer_phone": null, "customer_shipping": null, "customer_tax_exempt": "none",
            "customer_tax_ids": [], "default_payment_method": null, "default_source": null,
            "default_tax_rates": [], "description": null, "discounts": [], "due_date": null,
            "effective_at": created, "ending_balance": 0, "footer": null, "from_invoice": null,
            "hosted_invoice_url": format!("https://invoice.stripe.com/i/acct_1Rbench/test_{}", self.id("", 60)),
            "invoice_pdf": format!("https://pay.stripe.com/invoice/acct_1Rbench/test_{}/pdf", self.id("", 60)),
            "issuer": {"type": "self"}, "last_finalization_error": null, "latest_revision": null,
            "lines": {"object": "list", "data": lines, "has_more": false, "total_count": 1,
                "url": format!("/v1/invoices/{id}/lines")},
            "livemode": false, "metadata": {}, "next_payment_attempt": null,
            "number": format!("{}-0001", self.id("", 8).to_uppercase()), "on_behalf_of": null,
            "parent": {"quote_details": null, "subscription_details": {"metadata": {},
                "subscription": subscription}, "type": "subscription_details"},
            "payment_settings": {"default_mandate": null, "payment_method_options": null,
                "payment_method_types": null},
            "period_end": created, "period_start": created - 30 * 86_400,
            "post_payment_credit_notes_amount": 0, "pre_payment_credit_notes_amount": 0,
            "receipt_number": null, "rendering": null, "shipping_cost": null,
            "shipping_details": null, "starting_balance": 0, "statement_descriptor": null,
            "status": "paid", "status_transitions": {"finalized_at": created,
                "marked_uncollectible_at": null, "paid_at": created, "voided_at": null},
            "subtotal": 2900, "subtotal_excluding_tax": 2900, "test_clock": null,
            "total": 2900, "total_discount_amounts": [], "total_excluding_tax": 2900,
            "total_pretax_credit_amounts": [], "total_taxes": [], "webhooks_delivered_at": created
        })
    }
}

fn uuid_like(rng: &mut StdRng) -> String {
    let bytes: [u8; 16] = rng.random();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

pub fn generate(options: &Options) -> anyhow::Result<Corpus> {
    anyhow::ensure!(options.events >= 50, "--events must be at least 50");
    anyhow::ensure!(
        (0.0..0.5).contains(&options.duplicate_rate) && (0.0..0.5).contains(&options.reversed_rate),
        "--duplicate-rate and --reversed-rate must be in [0, 0.5)"
    );
    // Distinct events before duplicates are added.
    let base = ((options.events as f64) / (1.0 + options.duplicate_rate)).round() as usize;
    let mut g = Gen {
        rng: StdRng::seed_from_u64(options.seed),
        planned: Vec::with_capacity(base + 8),
        objects: Vec::new(),
        customers: Vec::new(),
        // About one event per second of Stripe time.
        span: i64::try_from(base).unwrap_or(i64::MAX).max(1),
    };
    // Objects are drawn with weights (share of events / mean events per object).
    let kinds = WeightedIndex::new([0.50 / 4.6, 0.20 / 2.35, 0.10 / 1.9, 0.12 / 2.3, 0.08])
        .map_err(|err| anyhow::anyhow!("corpus weights: {err}"))?;
    let mut stats = Stats::default();
    while g.planned.len() < base {
        match kinds.sample(&mut g.rng) {
            0 => {
                g.subscription();
                stats.subscriptions += 1;
            }
            1 => {
                g.payment_intent();
                stats.payments += 1;
            }
            2 => {
                g.checkout_session();
                stats.checkouts += 1;
            }
            3 => {
                g.customer();
                stats.customers += 1;
            }
            _ => {
                g.unmirrored();
                stats.unmirrored += 1;
            }
        }
    }
    let Gen {
        mut rng,
        planned,
        objects,
        ..
    } = g;

    // The stream in Stripe time; same-second events of different objects keep their order of
    // generation.
    let mut order: Vec<usize> = (0..planned.len()).collect();
    order.sort_by_key(|&i| (planned[i].created, i));
    let mut position = vec![0; planned.len()];
    for (pos, &i) in order.iter().enumerate() {
        position[i] = pos;
    }

    // Reversed pairs: two consecutive events of one object swap places in the stream.
    let multi: Vec<&Vec<usize>> = objects.iter().filter(|o| o.len() >= 2).collect();
    let wanted = (planned.len() as f64 * options.reversed_rate).round() as usize;
    let mut swapped = vec![false; planned.len()];
    let mut tries = 0;
    while stats.reversed_pairs < wanted && !multi.is_empty() && tries < wanted * 50 {
        tries += 1;
        let object = multi[rng.random_range(0..multi.len())];
        let k = rng.random_range(0..object.len() - 1);
        let (older, newer) = (object[k], object[k + 1]);
        if swapped[older] || swapped[newer] {
            continue;
        }
        swapped[older] = true;
        swapped[newer] = true;
        let (a, b) = (position[older], position[newer]);
        order.swap(a, b);
        position[older] = b;
        position[newer] = a;
        stats.reversed_pairs += 1;
    }

    // Duplicates: the same bytes again, half within the next 64 deliveries (racing the first
    // delivery at high concurrency), half up to 2,000 deliveries later (Stripe's retry).
    let duplicates = options.events.saturating_sub(planned.len());
    let mut again: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut chosen = vec![false; planned.len()];
    while stats.duplicates < duplicates {
        let pos = rng.random_range(0..order.len());
        if chosen[order[pos]] {
            continue;
        }
        chosen[order[pos]] = true;
        let near = rng.random_bool(0.5);
        let later = if near {
            rng.random_range(1..=64)
        } else {
            rng.random_range(65..=2_000)
        };
        again
            .entry((pos + later).min(order.len() - 1))
            .or_default()
            .push(order[pos]);
        stats.duplicates += 1;
        stats.near_duplicates += usize::from(near);
    }

    let mut corpus = Corpus {
        deliveries: Vec::with_capacity(options.events),
        subscriptions: BTreeMap::new(),
        payments: BTreeMap::new(),
        checkouts: BTreeMap::new(),
        customers: BTreeMap::new(),
        event_ids: BTreeSet::new(),
        history: HashMap::new(),
        stats,
    };
    let mut body_bytes = 0;
    let mut deliver = |i: usize, duplicate: bool, corpus: &mut Corpus| {
        let p = &planned[i];
        corpus
            .history
            .entry(p.object_id.clone())
            .or_default()
            .push(HistoryEntry {
                position: corpus.deliveries.len(),
                event_id: p.event_id.clone(),
                kind: p.kind.clone(),
                created: p.created,
                duplicate,
            });
        *corpus.stats.by_type.entry(p.kind.clone()).or_default() += 1;
        body_bytes += p.body.len();
        let stats = &mut corpus.stats;
        stats.max_body_bytes = stats.max_body_bytes.max(p.body.len());
        stats.min_body_bytes = match stats.min_body_bytes {
            0 => p.body.len(),
            n => n.min(p.body.len()),
        };
        corpus.deliveries.push(Delivery {
            event_id: p.event_id.clone(),
            body: p.body.clone(),
        });
    };
    for (pos, &i) in order.iter().enumerate() {
        deliver(i, false, &mut corpus);
        for &dup in again.get(&pos).into_iter().flatten() {
            deliver(dup, true, &mut corpus);
        }
    }
    corpus.stats.mean_body_bytes = body_bytes / corpus.deliveries.len().max(1);

    // The final state of each object: its event with the greatest `created` (its last one).
    for object in &objects {
        let Some(&last) = object.last() else { continue };
        let p = &planned[last];
        match &p.state {
            State::Subscription(s) => {
                corpus.subscriptions.insert(p.object_id.clone(), s.clone());
            }
            State::Payment(s) => {
                corpus.payments.insert(p.object_id.clone(), s.clone());
            }
            State::Checkout(s) => {
                corpus.checkouts.insert(p.object_id.clone(), s.clone());
            }
            State::Customer(s) => {
                corpus.customers.insert(p.object_id.clone(), s.clone());
            }
            State::Unmirrored => {}
        }
    }
    corpus.event_ids = planned.iter().map(|p| p.event_id.clone()).collect();
    corpus.stats.distinct_events = corpus.event_ids.len();
    anyhow::ensure!(
        corpus.event_ids.len() == planned.len(),
        "two generated events share an id (seed {})",
        options.seed
    );
    Ok(corpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_corpus_is_deterministic_and_has_no_same_second_ties() {
        let options = Options {
            events: 2_000,
            seed: 7,
            duplicate_rate: 0.02,
            reversed_rate: 0.03,
        };
        let a = generate(&options).unwrap();
        let b = generate(&options).unwrap();
        assert_eq!(a.deliveries.len(), 2_000);
        assert!(
            a.deliveries
                .iter()
                .zip(&b.deliveries)
                .all(|(x, y)| x.body == y.body)
        );
        for entries in a.history.values() {
            let mut created: Vec<i64> = entries
                .iter()
                .filter(|e| !e.duplicate)
                .map(|e| e.created)
                .collect();
            let n = created.len();
            created.sort_unstable();
            created.dedup();
            assert_eq!(created.len(), n, "a same-second tie for one object");
        }
        assert!(a.stats.reversed_pairs > 0 && a.stats.duplicates > 0);
    }

    #[test]
    fn bodies_are_pretty_printed_and_stripe_sized() {
        let c = generate(&Options {
            events: 4_000,
            seed: 42,
            duplicate_rate: 0.0,
            reversed_rate: 0.03,
        })
        .unwrap();
        let s = &c.stats;
        // Whole objects are generated, so a fresh corpus may run a few events over.
        assert!(c.deliveries.len() >= 4_000 && s.duplicates == 0);
        assert_eq!(c.event_ids.len(), c.deliveries.len());
        assert!(
            s.min_body_bytes >= 700 && s.max_body_bytes <= 6_900,
            "{s:?}"
        );
        assert!((4_000..=4_800).contains(&s.mean_body_bytes), "{s:?}");
        assert!(c.deliveries[0].body.starts_with("{\n  \""));
    }
}
