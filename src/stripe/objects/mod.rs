//! Every Stripe object this service reads, one module each: the snapshot of what the service
//! keeps of it, and the one lenient reading of it from Stripe's JSON. An event payload and an
//! API answer are read by the same function, so an older or newer API version, or fields we do
//! not know, never stop an object from being read as far as we understand it.

mod charge;
mod checkout_session;
mod customer;
mod fields;
mod invoice;
mod payment_intent;
mod payment_link;
mod payment_method;
mod portal_session;
mod price;
mod product;
mod refund;
mod subscription;
mod webhook_endpoint;

use std::collections::HashMap;

use serde_json::Value;

pub use charge::{ChargeSnapshot, FIELDS as CHARGE_FIELDS, charge};
pub use checkout_session::{CheckoutSnapshot, FIELDS as CHECKOUT_SESSION_FIELDS, checkout_session};
pub use customer::{CustomerSnapshot, FIELDS as CUSTOMER_FIELDS, customer};
pub use fields::Fields;
pub use invoice::{FIELDS as INVOICE_FIELDS, InvoiceLineSnapshot, InvoiceSnapshot, invoice};
pub use payment_intent::{FIELDS as PAYMENT_FIELDS, PaymentSnapshot, payment};
pub use payment_link::{FIELDS as PAYMENT_LINK_FIELDS, PaymentLinkSnapshot, payment_link};
pub use payment_method::{FIELDS as PAYMENT_METHOD_FIELDS, PaymentMethodSnapshot, payment_method};
pub use portal_session::{PortalSession, portal_session};
pub use price::{FIELDS as PRICE_FIELDS, PriceSnapshot, price};
pub use product::{FIELDS as PRODUCT_FIELDS, ProductSnapshot, product};
pub use refund::{FIELDS as REFUND_FIELDS, RefundSnapshot, refund};
pub use subscription::{
    FIELDS as SUBSCRIPTION_FIELDS, SubscriptionItemSnapshot, SubscriptionSnapshot, subscription,
};
pub use webhook_endpoint::{CreatedEndpoint, EndpointState, endpoint_state, webhook_endpoint};

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn int(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

fn flag(v: &Value, key: &str, default: bool) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(default)
}

/// An expandable field: the id string, or the object's `id`.
fn id_of(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(id) => Some(id.clone()),
        Value::Object(obj) => obj.get("id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

fn metadata(v: &Value) -> HashMap<String, String> {
    v.get("metadata")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| match v {
                    Value::String(s) => Some((k.clone(), s.clone())),
                    Value::Number(n) => Some((k.clone(), n.to_string())),
                    Value::Bool(b) => Some((k.clone(), b.to_string())),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Each reader reads the same from an object parsed through its [`Fields`] as from the whole
/// object: Stripe's own example objects (the emulator's fixtures, with every optional part
/// the readers look at filled in), and the older API shapes the readers still take.
#[cfg(test)]
mod kept_fields {
    use std::fmt::Debug;

    use serde_json::{Value, json};
    use stripe_emulator::fixtures::fixture;

    use super::*;

    /// `object` with `changes` merged in: objects key by key, anything else replaced. Metadata
    /// of one key, so that the readers' maps print the same.
    fn with(object: Value, changes: Value) -> Value {
        fn merge(into: &mut Value, changes: Value) {
            match (into, changes) {
                (Value::Object(into), Value::Object(changes)) => {
                    for (key, value) in changes {
                        match into.get_mut(&key) {
                            Some(slot) if value.is_object() => merge(slot, value),
                            _ => {
                                into.insert(key, value);
                            }
                        }
                    }
                }
                (into, changes) => *into = changes,
            }
        }
        let mut object = object;
        object["metadata"] = json!({"order": "o-1"});
        merge(&mut object, changes);
        object
    }

    /// Reads `object` whole and as parsed through `fields`: the same, and something was left
    /// out. Returns the parsed object.
    fn reads_the_same<T: Debug>(
        name: &str,
        fields: &'static Fields,
        read: impl Fn(&Value) -> Option<T>,
        object: &Value,
    ) -> Value {
        let text = object.to_string();
        let kept = fields.from_slice(text.as_bytes()).unwrap();
        let whole = read(object);
        assert!(whole.is_some(), "{name}: the object is not read at all");
        assert_eq!(format!("{whole:?}"), format!("{:?}", read(&kept)), "{name}");
        assert!(
            kept.to_string().len() < text.len(),
            "{name}: nothing left out"
        );
        // The same as an entry of a list page, which keeps its `created` too (a sync cuts a
        // list by it).
        let page = json!({"object": "list", "has_more": false, "data": [object]});
        let listed = fields.list_from_slice(page.to_string().as_bytes()).unwrap();
        let mut entry = kept.clone();
        if let Some(created) = object.get("created") {
            entry["created"] = created.clone();
        }
        assert_eq!(listed["data"][0], entry, "{name}: as a list entry");
        kept
    }

    #[test]
    fn customers_products_and_prices() {
        let whole = fixture("customer");
        let cases = [
            with(
                whole.clone(),
                json!({"invoice_settings": {"default_payment_method": "pm_1"},
                "phone": "+1 555", "description": "d"}),
            ),
            with(
                whole,
                json!({"invoice_settings": {"default_payment_method":
                fixture("payment_method")}}),
            ),
            json!({"id": "cus_gone", "object": "customer", "deleted": true, "x": 1}),
        ];
        for (i, c) in cases.iter().enumerate() {
            reads_the_same(
                &format!("customer {i}"),
                &CUSTOMER_FIELDS,
                |o| customer(o, false),
                c,
            );
        }
        let whole = fixture("product");
        for p in [
            with(whole.clone(), json!({"description": "d"})),
            with(whole, json!({"deleted": true})),
        ] {
            reads_the_same("product", &PRODUCT_FIELDS, |o| product(o, false), &p);
        }
        let whole = fixture("price");
        for (i, p) in [
            with(
                whole.clone(),
                json!({"recurring": {"interval": "month", "interval_count": 3},
                "type": "recurring", "nickname": "n", "product": fixture("product")}),
            ),
            with(
                whole,
                json!({"recurring": null, "type": null, "deleted": true}),
            ),
        ]
        .iter()
        .enumerate()
        {
            reads_the_same(&format!("price {i}"), &PRICE_FIELDS, |o| price(o, false), p);
        }
    }

    #[test]
    fn subscriptions_with_their_items_then_and_now() {
        let item = with(
            fixture("subscription_item"),
            json!({"id": "si_1", "quantity": 2, "current_period_start": 5,
                "current_period_end": 9, "price": {"recurring": {"interval": "year"}}}),
        );
        let now = with(
            fixture("subscription"),
            json!({"items": {"data": [item.clone(), with(item.clone(), json!({"id": "si_2"}))],
                "has_more": true}, "trial_end": 3, "canceled_at": 4,
                "cancel_at_period_end": true, "customer": fixture("customer")}),
        );
        let kept = reads_the_same("subscription", &SUBSCRIPTION_FIELDS, subscription, &now);
        assert_eq!(kept["items"]["data"].as_array().map(Vec::len), Some(2));
        // Before API 2025-03-31: the period on the subscription, the plan beside the price.
        let mut old_item = item;
        if let Some(i) = old_item.as_object_mut() {
            i.remove("price");
            i.remove("current_period_end");
        }
        let old = with(
            fixture("subscription"),
            json!({"current_period_start": 1, "current_period_end": 2,
                "items": {"data": [with(old_item, json!({"plan": {"id": "plan_1",
                    "amount": 500, "currency": "eur", "interval": "week"}}))]}}),
        );
        reads_the_same(
            "an older subscription",
            &SUBSCRIPTION_FIELDS,
            subscription,
            &old,
        );
        // An entry of `/v1/subscription_items`, read as the sync reads it: put in its
        // subscription's items.
        reads_the_same(
            "a page of subscription items",
            SUBSCRIPTION_FIELDS.get("items").get("data"),
            |o| {
                subscription(
                    &json!({"id": "sub_1", "customer": "cus_1", "status": "active",
                    "items": {"data": [o]}}),
                )
            },
            &with(fixture("subscription_item"), json!({})),
        );
    }

    #[test]
    fn invoices_with_their_lines_then_and_now() {
        let line = with(
            fixture("line_item"),
            json!({"pricing": {"price_details": {"price": "price_1", "product": "prod_1"}}}),
        );
        let now = with(
            fixture("invoice"),
            json!({"lines": {"data": [line, with(fixture("line_item"), json!({"id": "il_2",
                "currency": null, "pricing": {"price_details": {"price": {"id": "price_2"}}}}))],
                "has_more": true},
                "parent": {"subscription_details": {"subscription": "sub_1"}},
                "number": "N-1", "hosted_invoice_url": "https://x", "customer": fixture("customer")}),
        );
        reads_the_same("invoice", &INVOICE_FIELDS, |o| invoice(o, false), &now);
        let old = with(
            fixture("invoice"),
            json!({"parent": null, "subscription": {"id": "sub_2"}, "lines": {"data": [
                with(fixture("line_item"), json!({"pricing": null, "price": {"id": "price_3"}})),
                with(fixture("line_item"), json!({"id": "il_4", "pricing": null,
                    "plan": {"id": "plan_4", "amount": 1}}))]}}),
        );
        reads_the_same(
            "an older invoice",
            &INVOICE_FIELDS,
            |o| invoice(o, false),
            &old,
        );
        // An entry of `/v1/invoices/{id}/lines`, read as the sync reads it: put in its invoice.
        reads_the_same(
            "a page of invoice lines",
            INVOICE_FIELDS.get("lines").get("data"),
            |o| {
                invoice(
                    &json!({"id": "in_1", "currency": "usd", "lines": {"data": [o]}}),
                    false,
                )
            },
            &with(
                fixture("line_item"),
                json!({"pricing": {"price_details": {"price": "price_1"}}}),
            ),
        );
    }

    #[test]
    fn payments_charges_and_refunds() {
        let intent = with(
            fixture("payment_intent"),
            json!({"customer": fixture("customer"), "payment_method": "pm_1",
                "description": "d", "client_secret": "pi_1_secret_x"}),
        );
        // A payment's client secret is never kept by a sync: not even parsed.
        let kept = reads_the_same(
            "payment intent",
            &PAYMENT_FIELDS,
            |o| {
                payment(o).map(|p| PaymentSnapshot {
                    client_secret: None,
                    ..p
                })
            },
            &intent,
        );
        assert!(!kept.to_string().contains("secret"), "{kept}");
        let refund_object = with(
            fixture("refund"),
            json!({"payment_intent": {"id": "pi_1"}, "reason": "duplicate"}),
        );
        reads_the_same("refund", &REFUND_FIELDS, refund, &refund_object);
        let charge_object = with(
            fixture("charge"),
            json!({"customer": "cus_1", "failure_code": "card_declined",
                "failure_message": "no", "payment_intent": fixture("payment_intent"),
                "refunds": {"data": [refund_object, with(fixture("refund"), json!({"id": "re_2"}))]}}),
        );
        reads_the_same("charge", &CHARGE_FIELDS, charge, &charge_object);
    }

    #[test]
    fn sessions_methods_and_links() {
        let whole = fixture("checkout.session");
        for (i, s) in [
            with(
                whole.clone(),
                json!({"customer": "cus_1", "customer_email": null,
                "customer_details": {"email": "a@b.c"}, "subscription": {"id": "sub_1"},
                "payment_intent": "pi_1", "url": "https://pay"}),
            ),
            with(whole, json!({"customer_email": "x@y.z"})),
        ]
        .iter()
        .enumerate()
        {
            reads_the_same(
                &format!("session {i}"),
                &CHECKOUT_SESSION_FIELDS,
                checkout_session,
                s,
            );
        }
        reads_the_same(
            "payment method",
            &PAYMENT_METHOD_FIELDS,
            payment_method,
            &with(
                fixture("payment_method"),
                json!({"customer": fixture("customer")}),
            ),
        );
        reads_the_same(
            "payment link",
            &PAYMENT_LINK_FIELDS,
            payment_link,
            &with(
                fixture("payment_link"),
                json!({"line_items": {"object": "list",
                "data": [with(fixture("line_item"), json!({"price": fixture("price"),
                    "quantity": 4}))]}}),
            ),
        );
    }
}
