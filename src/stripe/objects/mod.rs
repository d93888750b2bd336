//! Every Stripe object this service reads, one module each: the snapshot of what the service
//! keeps of it, and the one lenient reading of it from Stripe's JSON. An event payload and an
//! API answer are read by the same function, so an older or newer API version, or fields we do
//! not know, never stop an object from being read as far as we understand it.

mod charge;
mod checkout_session;
mod customer;
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

pub use charge::{ChargeSnapshot, charge};
pub use checkout_session::{CheckoutSnapshot, checkout_session};
pub use customer::{CustomerSnapshot, customer};
pub use invoice::{InvoiceLineSnapshot, InvoiceSnapshot, invoice};
pub use payment_intent::{PaymentSnapshot, payment};
pub use payment_link::{PaymentLinkSnapshot, payment_link};
pub use payment_method::{PaymentMethodSnapshot, payment_method};
pub use portal_session::{PortalSession, portal_session};
pub use price::{PriceSnapshot, price};
pub use product::{ProductSnapshot, product};
pub use refund::{RefundSnapshot, refund};
pub use subscription::{SubscriptionItemSnapshot, SubscriptionSnapshot, subscription};
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
