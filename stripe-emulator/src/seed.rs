//! `POST /_emulator/seed`: many objects at once, for sync tests and benchmarks, without
//! events or webhook deliveries.
//!
//! Every object is made by the same object rules the API uses ([`crate::objects`]), with
//! `created` spread evenly (oldest first) over `created_from..=created_to`, so it has the
//! shape `GET` answers; only the journal is off, so nothing is announced. The body (JSON,
//! every field optional, counts default to 0):
//!
//! ```json
//! {"customers": 40000, "products": 100, "prices_per_product": 2,
//!  "subscriptions": 30000, "items_per_subscription": [1, 25],
//!  "invoices": 20000, "lines_per_invoice": [1, 250],
//!  "payment_intents": 5000, "created_from": 1767225600, "created_to": 1769904000}
//! ```
//!
//! - customers: `seed{n}@example.com`, named `Seed customer {n}`.
//! - products, each with `prices_per_product` monthly prices in `usd` (recurring, so that
//!   subscriptions can use them).
//! - subscriptions of customers in turn (`collection_method=send_invoice`, 30 days), with a
//!   number of items drawn from `items_per_subscription` (distinct prices, so at most the
//!   number of prices); each is `active` and has its first invoice (open, one line per
//!   item) like one created by `POST /v1/subscriptions`.
//! - invoices: one-off invoices of customers in turn, finalized (open), with a number of
//!   lines drawn from `lines_per_invoice`, each priced by a seeded price.
//! - payment intents of customers in turn, confirmed with a Visa test card (one payment
//!   method per customer): each `succeeded` with its `charge`.
//!
//! Cost (release build, this 2-core machine): ~45,000 customers/s; a payment intent with
//! its charge ~110 µs; each invoice line or subscription item ~40 µs, so nested entries
//! dominate: `{"invoices": 1000, "lines_per_invoice": [250, 250]}` takes ~10 s, and 30,000
//! subscriptions of 1-25 items plus 20,000 invoices of 1-250 lines (~2.9 million nested
//! entries, ~4 GB of JSON) take ~150 s and ~4.5 GB. Keep the big ranges for a few parents.
//!
//! The answer counts what the store holds afterwards per type
//! (`{"object":"emulator.seed","created":{"customer":40000,...},"counts":{...}}`).

use std::collections::HashMap;

use rand::Rng;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::ids;
use crate::objects::invoices::draft::{NewInvoice, create_draft};
use crate::objects::invoices::lines::LineSpec;
use crate::objects::invoices::payment::finalize;
use crate::objects::payment_intents::{self, NewIntent};
use crate::objects::payment_methods::{self, PmRef};
use crate::objects::prices::{self, Extras, PriceData, Recurring};
use crate::objects::subscriptions::create::create_stored;
use crate::objects::subscriptions::spec::NewSubscription;
use crate::objects::{customers, products};
use crate::store::{Store, kinds};

/// Most objects of one type a seed makes.
pub const MAX_PER_TYPE: i64 = 1_000_000;

/// Most items per subscription (Stripe's limit is 20 for most accounts; the emulator
/// allows more to exercise nested paging).
pub const MAX_ITEMS: i64 = 250;

/// Most lines per seeded invoice.
pub const MAX_LINES: i64 = 1_000;

/// What to seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedSpec {
    pub customers: i64,
    pub products: i64,
    pub prices_per_product: i64,
    pub subscriptions: i64,
    pub items_per_subscription: (i64, i64),
    pub invoices: i64,
    pub lines_per_invoice: (i64, i64),
    pub payment_intents: i64,
    pub created_from: i64,
    pub created_to: i64,
}

fn invalid(param: &str, message: String) -> ApiError {
    ApiError::invalid_param(param, message)
}

fn count(body: &Map<String, Value>, name: &str, max: i64) -> ApiResult<i64> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(0),
        Some(value) => match value.as_i64() {
            Some(n) if (0..=max).contains(&n) => Ok(n),
            _ => Err(invalid(
                name,
                format!("{name} must be an integer from 0 to {max}"),
            )),
        },
    }
}

fn range(body: &Map<String, Value>, name: &str, max: i64) -> ApiResult<(i64, i64)> {
    let bad = || {
        invalid(
            name,
            format!("{name} must be [min, max] with 1 <= min <= max <= {max}, or one integer"),
        )
    };
    match body.get(name) {
        None | Some(Value::Null) => Ok((1, 1)),
        Some(Value::Array(pair)) => match pair.as_slice() {
            [lo, hi] => match (lo.as_i64(), hi.as_i64()) {
                (Some(lo), Some(hi)) if 1 <= lo && lo <= hi && hi <= max => Ok((lo, hi)),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        },
        Some(value) => match value.as_i64() {
            Some(n) if (1..=max).contains(&n) => Ok((n, n)),
            _ => Err(bad()),
        },
    }
}

impl SeedSpec {
    /// Reads a `POST /_emulator/seed` body (see the module documentation).
    pub fn parse(body: &Map<String, Value>, now: i64) -> ApiResult<SeedSpec> {
        const KNOWN: &[&str] = &[
            "customers",
            "products",
            "prices_per_product",
            "subscriptions",
            "items_per_subscription",
            "invoices",
            "lines_per_invoice",
            "payment_intents",
            "created_from",
            "created_to",
        ];
        if let Some(unknown) = body.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(ApiError::parameter_unknown(std::slice::from_ref(unknown)));
        }
        let time = |name: &str, default: i64| -> ApiResult<i64> {
            match body.get(name) {
                None | Some(Value::Null) => Ok(default),
                Some(value) => value
                    .as_i64()
                    .filter(|t| (0..=253_402_300_799).contains(t))
                    .ok_or_else(|| invalid(name, format!("{name} must be a unix timestamp"))),
            }
        };
        let created_to = time("created_to", now)?;
        let created_from = time("created_from", created_to.saturating_sub(30 * 86_400))?;
        if created_from > created_to {
            return Err(invalid(
                "created_from",
                "created_from must not be after created_to".to_owned(),
            ));
        }
        let spec = SeedSpec {
            customers: count(body, "customers", MAX_PER_TYPE)?,
            products: count(body, "products", MAX_PER_TYPE)?,
            prices_per_product: count(body, "prices_per_product", 100)?,
            subscriptions: count(body, "subscriptions", MAX_PER_TYPE)?,
            items_per_subscription: range(body, "items_per_subscription", MAX_ITEMS)?,
            invoices: count(body, "invoices", MAX_PER_TYPE)?,
            lines_per_invoice: range(body, "lines_per_invoice", MAX_LINES)?,
            payment_intents: count(body, "payment_intents", MAX_PER_TYPE)?,
            created_from,
            created_to,
        };
        let prices = spec.products * spec.prices_per_product;
        let needs_customers = spec.subscriptions + spec.invoices + spec.payment_intents > 0;
        if needs_customers && spec.customers == 0 {
            return Err(invalid(
                "customers",
                "subscriptions, invoices and payment intents need customers".to_owned(),
            ));
        }
        if (spec.subscriptions > 0 && prices < spec.items_per_subscription.1)
            || (spec.invoices > 0 && prices == 0)
        {
            return Err(invalid(
                "prices_per_product",
                "products × prices_per_product must cover the items of a subscription (and be at least 1 for invoices)".to_owned(),
            ));
        }
        Ok(spec)
    }

    /// `created` of the `i`-th of `n` objects of a type: the range cut into `n` equal
    /// parts, so every second of it holds the same number of objects (± 1).
    fn created(&self, i: i64, n: i64) -> i64 {
        let span = i128::from(self.created_to - self.created_from) + 1;
        let at = i128::from(self.created_from) + span * i128::from(i) / i128::from(n.max(1));
        i64::try_from(at)
            .unwrap_or(self.created_to)
            .min(self.created_to)
    }
}

fn draw(rng: &mut impl Rng, (lo, hi): (i64, i64)) -> i64 {
    if lo >= hi {
        lo
    } else {
        rng.random_range(lo..=hi)
    }
}

fn index(i: i64, len: usize) -> usize {
    usize::try_from(i).unwrap_or(0) % len.max(1)
}

/// Puts the new objects to rest (compact JSON) every 1,000, so that seeding never holds
/// many parsed objects at once.
fn rest_every(store: &mut Store, i: i64) {
    if i % 1_000 == 999 {
        store.compact();
    }
}

/// Makes the objects of `spec` in `store` (journal off: no events), and answers how many of
/// each type were made.
pub fn seed(store: &mut Store, spec: &SeedSpec) -> Value {
    let mut rng = rand::rng();
    let before = counts(store);
    store.set_journal(false);

    let mut customer_ids = Vec::with_capacity(usize::try_from(spec.customers).unwrap_or(0));
    for i in 0..spec.customers {
        let id = ids::short_id("cus");
        let mut object =
            customers::new_object(&id, spec.created(i, spec.customers), store.livemode);
        if let Some(map) = object.as_object_mut() {
            map.insert("email".into(), json!(format!("seed{i}@example.com")));
            map.insert("name".into(), json!(format!("Seed customer {i}")));
        }
        store.insert(kinds::CUSTOMER, object);
        customer_ids.push(id);
        rest_every(store, i);
    }

    let mut price_objects: Vec<Value> = Vec::new();
    for i in 0..spec.products {
        let now = spec.created(i, spec.products);
        let product = products::insert_named(store, now, &format!("Seed product {i}"), Map::new());
        for j in 0..spec.prices_per_product {
            let data = PriceData {
                currency: "usd".into(),
                unit_amount: 500 + 100 * ((i + j) % 50),
                recurring: Some(Recurring {
                    interval: "month".into(),
                    interval_count: 1,
                }),
                tax_behavior: None,
            };
            let id = prices::insert(store, now, &data, &product, Extras::default());
            if let Some(record) = store.get(kinds::PRICE, &id) {
                price_objects.push(record.object.clone());
            }
        }
    }

    for i in 0..spec.subscriptions {
        let now = spec.created(i, spec.subscriptions);
        let n = draw(&mut rng, spec.items_per_subscription);
        let items = (0..n)
            .map(|k| {
                let price = &price_objects[index(i + k, price_objects.len())];
                (price.clone(), 1 + (i + k) % 3, Map::new())
            })
            .collect();
        let sub = NewSubscription {
            customer: customer_ids[index(i, customer_ids.len())].clone(),
            items,
            add_invoice_items: Vec::new(),
            trial_end: None,
            default_payment_method: None,
            coupons: Vec::new(),
            metadata: Map::new(),
            description: None,
            cancel_at_period_end: false,
            cancel_at: None,
            payment_behavior: "allow_incomplete".into(),
            collection_method: "send_invoice".into(),
            days_until_due: Some(30),
            checkout_session: None,
        };
        // Validated above: the prices exist and are recurring, the customer exists.
        let _ = create_stored(store, now, &sub);
        rest_every(store, i);
    }

    for i in 0..spec.invoices {
        let now = spec.created(i, spec.invoices);
        let n = draw(&mut rng, spec.lines_per_invoice);
        let lines = (0..n)
            .map(|k| {
                let price = &price_objects[index(i + k, price_objects.len())];
                let quantity = 1 + (i + k) % 3;
                LineSpec {
                    amount: prices::unit_amount(price) * quantity,
                    quantity,
                    description: format!("Seed line {k}"),
                    price: Some(price.clone()),
                    period: (now, now),
                    proration: false,
                    subscription: None,
                    subscription_item: None,
                    invoice_item: None,
                    discountable: true,
                }
            })
            .collect();
        let invoice = NewInvoice {
            customer: customer_ids[index(i, customer_ids.len())].clone(),
            currency: "usd".into(),
            subscription: None,
            billing_reason: "manual".into(),
            collection_method: "send_invoice".into(),
            days_until_due: Some(30),
            lines,
            include_pending: false,
            discounts: Vec::new(),
            period: (now, now),
            description: None,
            metadata: Map::new(),
            default_payment_method: None,
        };
        let id = create_draft(store, now, &invoice);
        finalize(store, now, &id);
        rest_every(store, i);
    }

    let mut cards: HashMap<String, String> = HashMap::new();
    let visa = payment_methods::test_card("pm_card_visa");
    for i in 0..spec.payment_intents {
        let Some(visa) = visa else { break };
        let now = spec.created(i, spec.payment_intents);
        let customer = customer_ids[index(i, customer_ids.len())].clone();
        let pm = cards
            .entry(customer.clone())
            .or_insert_with(|| {
                payment_methods::materialize(store, now, &PmRef::Token(visa), Some(&customer))
            })
            .clone();
        let intent = NewIntent {
            amount: 1_000 + 50 * (i % 100),
            currency: "usd".into(),
            customer: Some(customer),
            payment_method: Some(pm),
            description: None,
            metadata: Map::new(),
            capture_method: "automatic".into(),
            confirmation_method: "automatic".into(),
            setup_future_usage: None,
            receipt_email: None,
            statement_descriptor: None,
            statement_descriptor_suffix: None,
            payment_method_types: None,
            allow_redirects: None,
            transfer_group: None,
            invoice: None,
        };
        let id = payment_intents::insert(store, now, &intent);
        let _ = payment_intents::confirm_stored(store, now, &id);
        rest_every(store, i);
    }

    store.set_journal(true);
    store.compact();
    let after = counts(store);
    let created: Map<String, Value> = after
        .iter()
        .zip(&before)
        .map(|((kind, n), (_, was))| ((*kind).to_owned(), json!(n.saturating_sub(*was))))
        .filter(|(_, n)| n.as_u64() != Some(0))
        .collect();
    let counts: Map<String, Value> = after
        .iter()
        .map(|(kind, n)| ((*kind).to_owned(), json!(n)))
        .collect();
    json!({"object": "emulator.seed", "created": created, "counts": counts})
}

/// Seeded types and how many of each the store holds.
fn counts(store: &Store) -> Vec<(&'static str, usize)> {
    [
        kinds::CUSTOMER,
        kinds::PRODUCT,
        kinds::PRICE,
        kinds::SUBSCRIPTION,
        kinds::INVOICE,
        kinds::INVOICE_ITEM,
        kinds::PAYMENT_INTENT,
        kinds::PAYMENT_METHOD,
        kinds::CHARGE,
    ]
    .into_iter()
    .map(|kind| (kind, store.count(kind)))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(body: Value) -> ApiResult<SeedSpec> {
        let Value::Object(map) = body else {
            unreachable!()
        };
        SeedSpec::parse(&map, 1_000_000)
    }

    #[test]
    fn bodies() {
        let s = spec(json!({"customers": 3, "items_per_subscription": [1, 4]})).unwrap();
        assert_eq!(s.customers, 3);
        assert_eq!(s.items_per_subscription, (1, 4));
        assert_eq!(s.created_to, 1_000_000);
        assert_eq!(s.created_from, 1_000_000 - 30 * 86_400);
        for bad in [
            json!({"customers": -1}),
            json!({"customers": "3"}),
            json!({"nope": 1}),
            json!({"items_per_subscription": [3, 1]}),
            json!({"items_per_subscription": [0, 1]}),
            json!({"created_from": 10, "created_to": 5}),
            json!({"subscriptions": 1}),
            json!({"customers": 1, "subscriptions": 1, "products": 1}),
            json!({"customers": 1, "invoices": 1}),
        ] {
            assert!(spec(bad.clone()).is_err(), "{bad}");
        }
        let s = spec(json!({"created_from": 100, "created_to": 109})).unwrap();
        assert_eq!(s.created(0, 3), 100);
        assert_eq!(s.created(1, 3), 103);
        assert_eq!(s.created(2, 3), 106);
        assert_eq!(s.created(0, 1), 100);
        let per_second = (0..1050).filter(|i| s.created(*i, 1050) == 109).count();
        assert_eq!(per_second, 105);
    }

    #[test]
    fn seeds_without_events() {
        let mut store = Store::new(false);
        let s = spec(json!({
            "customers": 5, "products": 2, "prices_per_product": 2,
            "subscriptions": 3, "items_per_subscription": [2, 4],
            "invoices": 2, "lines_per_invoice": [1, 3], "payment_intents": 4
        }))
        .unwrap();
        let answer = seed(&mut store, &s);
        assert_eq!(answer["created"]["customer"], 5);
        assert_eq!(answer["created"]["price"], 4);
        assert_eq!(answer["created"]["subscription"], 3);
        assert_eq!(answer["created"]["charge"], 4);
        // Each subscription has its first invoice, beside the two one-off invoices.
        assert_eq!(answer["created"]["invoice"], 5);
        assert!(store.drain_changes().is_empty());
        assert_eq!(store.count(kinds::EVENT), 0);
    }
}
