//! Reading Stripe objects out of event payloads leniently: an older or newer API version, or
//! fields we do not know, must not stop an event from being stored and applied as far as we
//! understand it (issue: parse leniently). Only what the mirror keeps is read.

use std::collections::HashMap;

use serde_json::Value;

use crate::gateway::CustomerSnapshot;
use crate::gateway::checkout::CheckoutSnapshot;
use crate::gateway::payments::PaymentSnapshot;
use crate::gateway::subscriptions::{SubscriptionItemSnapshot, SubscriptionSnapshot};

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn int(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
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

pub fn subscription(obj: &Value) -> Option<SubscriptionSnapshot> {
    let item = obj.pointer("/items/data/0");
    let price = item.and_then(|i| i.get("price").or_else(|| i.get("plan")));
    Some(SubscriptionSnapshot {
        id: text(obj, "id")?,
        customer: id_of(obj, "customer")?,
        status: text(obj, "status")?,
        // Since API 2025-03-31 on the item; before that on the subscription.
        current_period_start: item
            .and_then(|i| int(i, "current_period_start"))
            .or_else(|| int(obj, "current_period_start")),
        current_period_end: item
            .and_then(|i| int(i, "current_period_end"))
            .or_else(|| int(obj, "current_period_end")),
        trial_end: int(obj, "trial_end"),
        cancel_at_period_end: obj
            .get("cancel_at_period_end")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        canceled_at: int(obj, "canceled_at"),
        price_id: price.and_then(|p| text(p, "id")),
        quantity: item.and_then(|i| int(i, "quantity")),
        plan_amount: price.and_then(|p| int(p, "unit_amount").or_else(|| int(p, "amount"))),
        plan_currency: price.and_then(|p| text(p, "currency")),
        plan_interval: price.and_then(|p| {
            p.pointer("/recurring/interval")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| text(p, "interval"))
        }),
        metadata: metadata(obj),
        created: int(obj, "created").unwrap_or_default(),
        items: obj
            .pointer("/items/data")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| {
                        Some(SubscriptionItemSnapshot {
                            id: text(i, "id")?,
                            price_id: i
                                .get("price")
                                .or_else(|| i.get("plan"))
                                .and_then(|p| text(p, "id")),
                            quantity: int(i, "quantity"),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// `deleted` is the event's verdict (`customer.deleted`) or the object's own flag.
pub fn customer(obj: &Value, deleted: bool) -> Option<CustomerSnapshot> {
    Some(CustomerSnapshot {
        id: text(obj, "id")?,
        email: text(obj, "email"),
        name: text(obj, "name"),
        phone: text(obj, "phone"),
        description: text(obj, "description"),
        default_payment_method: obj
            .get("invoice_settings")
            .and_then(|s| id_of(s, "default_payment_method")),
        metadata: metadata(obj),
        deleted: deleted || obj.get("deleted").and_then(Value::as_bool) == Some(true),
    })
}

pub fn payment(obj: &Value) -> Option<PaymentSnapshot> {
    Some(PaymentSnapshot {
        id: text(obj, "id")?,
        amount: int(obj, "amount")?,
        currency: text(obj, "currency")?,
        status: text(obj, "status")?,
        customer: id_of(obj, "customer"),
        payment_method: id_of(obj, "payment_method"),
        description: text(obj, "description"),
        client_secret: None,
        metadata: metadata(obj),
        created: int(obj, "created").unwrap_or_default(),
    })
}

pub fn checkout_session(obj: &Value) -> Option<CheckoutSnapshot> {
    Some(CheckoutSnapshot {
        id: text(obj, "id")?,
        mode: text(obj, "mode")?,
        status: text(obj, "status"),
        payment_status: text(obj, "payment_status")?,
        url: text(obj, "url"),
        amount_total: int(obj, "amount_total"),
        currency: text(obj, "currency"),
        customer: id_of(obj, "customer"),
        customer_email: text(obj, "customer_email").or_else(|| {
            obj.pointer("/customer_details/email")
                .and_then(Value::as_str)
                .map(str::to_owned)
        }),
        success_url: text(obj, "success_url"),
        cancel_url: text(obj, "cancel_url"),
        payment_intent: id_of(obj, "payment_intent"),
        subscription: id_of(obj, "subscription"),
        expires_at: int(obj, "expires_at").unwrap_or_default(),
        metadata: metadata(obj),
        created: int(obj, "created").unwrap_or_default(),
    })
}

/// A product (`deleted`: product.deleted or the object's flag).
#[derive(Debug, Clone)]
pub struct ProductSnapshot {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub active: bool,
    pub metadata: HashMap<String, String>,
    pub created: i64,
    pub deleted: bool,
}

pub fn product(obj: &Value, deleted: bool) -> Option<ProductSnapshot> {
    Some(ProductSnapshot {
        id: text(obj, "id")?,
        name: text(obj, "name").unwrap_or_default(),
        description: text(obj, "description"),
        active: flag(obj, "active", true),
        metadata: metadata(obj),
        created: int(obj, "created").unwrap_or_default(),
        deleted: deleted || flag(obj, "deleted", false),
    })
}

#[derive(Debug, Clone)]
pub struct PriceSnapshot {
    pub id: String,
    pub product: String,
    pub active: bool,
    pub currency: String,
    pub unit_amount: Option<i64>,
    /// `one_time` or `recurring`.
    pub price_type: String,
    pub recurring_interval: Option<String>,
    pub recurring_interval_count: Option<i64>,
    pub nickname: Option<String>,
    pub metadata: HashMap<String, String>,
    pub created: i64,
    pub deleted: bool,
}

pub fn price(obj: &Value, deleted: bool) -> Option<PriceSnapshot> {
    let recurring = obj.get("recurring").filter(|r| r.is_object());
    Some(PriceSnapshot {
        id: text(obj, "id")?,
        product: id_of(obj, "product")?,
        active: flag(obj, "active", true),
        currency: text(obj, "currency")?,
        unit_amount: int(obj, "unit_amount"),
        price_type: text(obj, "type").unwrap_or_else(|| {
            if recurring.is_some() {
                "recurring"
            } else {
                "one_time"
            }
            .to_owned()
        }),
        recurring_interval: recurring.and_then(|r| text(r, "interval")),
        recurring_interval_count: recurring.and_then(|r| int(r, "interval_count")),
        nickname: text(obj, "nickname"),
        metadata: metadata(obj),
        created: int(obj, "created").unwrap_or_default(),
        deleted: deleted || flag(obj, "deleted", false),
    })
}

#[derive(Debug, Clone)]
pub struct InvoiceSnapshot {
    pub id: String,
    pub customer: Option<String>,
    pub subscription: Option<String>,
    pub status: Option<String>,
    pub currency: String,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub amount_remaining: i64,
    pub total: i64,
    pub number: Option<String>,
    pub hosted_invoice_url: Option<String>,
    pub metadata: HashMap<String, String>,
    pub created: i64,
    pub deleted: bool,
    /// The lines the object carries (Stripe embeds the first page).
    pub lines: Vec<InvoiceLineSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceLineSnapshot {
    pub id: String,
    pub description: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub quantity: Option<i64>,
    pub price_id: Option<String>,
}

pub fn invoice(obj: &Value, deleted: bool) -> Option<InvoiceSnapshot> {
    let currency = text(obj, "currency")?;
    let lines = obj
        .pointer("/lines/data")
        .and_then(Value::as_array)
        .map(|lines| {
            lines
                .iter()
                .filter_map(|l| {
                    Some(InvoiceLineSnapshot {
                        id: text(l, "id")?,
                        description: text(l, "description"),
                        amount: int(l, "amount")?,
                        currency: text(l, "currency").unwrap_or_else(|| currency.clone()),
                        quantity: int(l, "quantity"),
                        // Since 2025 under pricing.price_details; before, the line's price.
                        price_id: l
                            .pointer("/pricing/price_details/price")
                            .and_then(|p| match p {
                                Value::String(id) => Some(id.clone()),
                                other => text(other, "id"),
                            })
                            .or_else(|| id_of(l, "price"))
                            .or_else(|| l.get("plan").and_then(|p| text(p, "id"))),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Some(InvoiceSnapshot {
        id: text(obj, "id")?,
        customer: id_of(obj, "customer"),
        // Since 2025 under parent.subscription_details; before, on the invoice.
        subscription: obj
            .pointer("/parent/subscription_details")
            .and_then(|d| id_of(d, "subscription"))
            .or_else(|| id_of(obj, "subscription")),
        status: text(obj, "status"),
        amount_due: int(obj, "amount_due").unwrap_or_default(),
        amount_paid: int(obj, "amount_paid").unwrap_or_default(),
        amount_remaining: int(obj, "amount_remaining").unwrap_or_default(),
        total: int(obj, "total").unwrap_or_default(),
        number: text(obj, "number"),
        hosted_invoice_url: text(obj, "hosted_invoice_url"),
        metadata: metadata(obj),
        created: int(obj, "created").unwrap_or_default(),
        deleted: deleted || flag(obj, "deleted", false),
        currency,
        lines,
    })
}

#[derive(Debug, Clone)]
pub struct RefundSnapshot {
    pub id: String,
    pub payment_intent: Option<String>,
    pub charge: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub reason: Option<String>,
    pub metadata: HashMap<String, String>,
    pub created: i64,
}

pub fn refund(obj: &Value) -> Option<RefundSnapshot> {
    Some(RefundSnapshot {
        id: text(obj, "id")?,
        payment_intent: id_of(obj, "payment_intent"),
        charge: id_of(obj, "charge"),
        amount: int(obj, "amount")?,
        currency: text(obj, "currency")?,
        status: text(obj, "status").unwrap_or_else(|| "succeeded".to_owned()),
        reason: text(obj, "reason"),
        metadata: metadata(obj),
        created: int(obj, "created").unwrap_or_default(),
    })
}

/// What a `charge.refunded` event tells about a payment: its refunded total so far.
#[derive(Debug, Clone)]
pub struct ChargeRefunded {
    pub payment_intent: String,
    pub amount_refunded: i64,
    /// The refunds the charge carries (older API versions embed them).
    pub refunds: Vec<RefundSnapshot>,
}

pub fn charge_refunded(obj: &Value) -> Option<ChargeRefunded> {
    Some(ChargeRefunded {
        payment_intent: id_of(obj, "payment_intent")?,
        amount_refunded: int(obj, "amount_refunded")?,
        refunds: obj
            .pointer("/refunds/data")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(refund).collect())
            .unwrap_or_default(),
    })
}

#[derive(Debug, Clone)]
pub struct PaymentMethodSnapshot {
    pub id: String,
    /// `None` once detached.
    pub customer: Option<String>,
    pub method_type: String,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub card_exp_month: Option<i64>,
    pub card_exp_year: Option<i64>,
    pub metadata: HashMap<String, String>,
    pub created: i64,
}

pub fn payment_method(obj: &Value) -> Option<PaymentMethodSnapshot> {
    let card = obj.get("card").filter(|c| c.is_object());
    Some(PaymentMethodSnapshot {
        id: text(obj, "id")?,
        customer: id_of(obj, "customer"),
        method_type: text(obj, "type").unwrap_or_else(|| "card".to_owned()),
        card_brand: card.and_then(|c| text(c, "brand")),
        card_last4: card.and_then(|c| text(c, "last4")),
        card_exp_month: card.and_then(|c| int(c, "exp_month")),
        card_exp_year: card.and_then(|c| int(c, "exp_year")),
        metadata: metadata(obj),
        created: int(obj, "created").unwrap_or_default(),
    })
}

fn flag(v: &Value, key: &str, default: bool) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_subscription_of_an_older_api_version_still_reads() {
        let old = json!({
            "id": "sub_1", "customer": {"id": "cus_1", "object": "customer"}, "status": "active",
            "current_period_start": 10, "current_period_end": 20, "unknown_field": {"x": 1},
            "items": {"data": [{"plan": {"id": "plan_1", "amount": 500, "currency": "eur", "interval": "year"}, "quantity": 2}]},
            "metadata": {"n": 3}
        });
        let s = subscription(&old).unwrap();
        assert_eq!(
            (s.customer.as_str(), s.current_period_end),
            ("cus_1", Some(20))
        );
        assert_eq!(
            (s.plan_amount, s.plan_interval.as_deref()),
            (Some(500), Some("year"))
        );
        assert_eq!(s.metadata["n"], "3");
        assert!(subscription(&json!({"id": "sub_1"})).is_none());
    }
}
