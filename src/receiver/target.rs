//! What an event changes in the mirror: the object it carries, read by its type.

use serde_json::Value;

use crate::db::events;
use crate::stripe::objects::{
    ChargeRefunded, CheckoutSnapshot, CustomerSnapshot, InvoiceSnapshot, PaymentMethodSnapshot,
    PaymentSnapshot, PriceSnapshot, ProductSnapshot, RefundSnapshot, SubscriptionSnapshot,
};

/// What an event changes in the mirror.
#[derive(Debug, Clone)]
pub(super) enum Target {
    Customer(CustomerSnapshot),
    Subscription(SubscriptionSnapshot),
    Payment(PaymentSnapshot),
    Checkout(CheckoutSnapshot),
    Product(ProductSnapshot),
    Price(PriceSnapshot),
    Invoice(InvoiceSnapshot),
    Refund(RefundSnapshot),
    PaymentMethod(PaymentMethodSnapshot),
    /// A payment's refunded total only grows: applied in any order, no watermark.
    ChargeRefunded(ChargeRefunded),
    /// A type we store but do not mirror.
    Nothing,
}

impl Target {
    /// The order in which a batch locks mirror rows (see `writer`): by table, then object.
    pub(super) fn lock_key(&self) -> (u8, &str) {
        match self {
            Target::Customer(c) => (0, &c.id),
            Target::Product(p) => (1, &p.id),
            Target::Price(p) => (2, &p.id),
            Target::Subscription(s) => (3, &s.id),
            Target::Invoice(i) => (4, &i.id),
            Target::Payment(p) => (5, &p.id),
            Target::ChargeRefunded(c) => (6, &c.payment_intent),
            Target::Refund(r) => (7, &r.id),
            Target::Checkout(c) => (8, &c.id),
            Target::PaymentMethod(m) => (9, &m.id),
            Target::Nothing => (u8::MAX, ""),
        }
    }

    /// Whether only the newest of several events of one object in a batch need be written
    /// (states under the watermark rule).
    pub(super) fn is_state(&self) -> bool {
        !matches!(self, Target::ChargeRefunded(_) | Target::Nothing)
    }
}

/// What an event of this type carrying this object changes; `Nothing` for types we do not
/// mirror or objects we cannot read.
pub(super) fn target_of(kind: &str, obj: &Value) -> Target {
    use crate::stripe::objects as mirror;
    let deleted = kind.ends_with(".deleted");
    let target = match kind.split('.').collect::<Vec<_>>().as_slice() {
        ["customer", "subscription", _] => mirror::subscription(obj).map(Target::Subscription),
        ["customer", _] => mirror::customer(obj, deleted).map(Target::Customer),
        ["payment_intent", _] => mirror::payment(obj).map(Target::Payment),
        ["checkout", "session", _] => mirror::checkout_session(obj).map(Target::Checkout),
        ["product", _] => mirror::product(obj, deleted).map(Target::Product),
        ["price", _] => mirror::price(obj, deleted).map(Target::Price),
        ["invoice", _] => mirror::invoice(obj, deleted).map(Target::Invoice),
        ["refund", _] | ["charge", "refund", "updated"] => mirror::refund(obj).map(Target::Refund),
        ["charge", "refunded"] => mirror::charge_refunded(obj).map(Target::ChargeRefunded),
        ["payment_method", _] => mirror::payment_method(obj).map(Target::PaymentMethod),
        _ => None,
    };
    target.unwrap_or(Target::Nothing)
}

/// The outcome an event is stored with, before applying it shows otherwise.
pub(super) fn usual_outcome(target: &Target) -> &'static str {
    match target {
        Target::Nothing => events::IGNORED,
        _ => events::APPLIED,
    }
}
