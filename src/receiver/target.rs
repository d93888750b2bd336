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

/// What the receiver keeps per type of mirrored object, in one place: its place in the order
/// in which a batch locks mirror rows (see `writer`), whether it is a state under the
/// watermark rule, and, for the types re-read as JSON after a tie (`refresh`), the `*.updated`
/// event type Stripe's answer is read as and the object's collection under `/v1`.
#[derive(Debug, Clone, Copy)]
struct Kind {
    lock: u8,
    state: bool,
    json: Option<(&'static str, &'static str)>,
}

const CUSTOMER: Kind = Kind::state(0, None);
const PRODUCT: Kind = Kind::state(1, Some(("product.updated", "/products")));
const PRICE: Kind = Kind::state(2, Some(("price.updated", "/prices")));
const SUBSCRIPTION: Kind = Kind::state(3, None);
const INVOICE: Kind = Kind::state(4, Some(("invoice.updated", "/invoices")));
const PAYMENT: Kind = Kind::state(5, None);
/// A payment's refunded total: not a state, never re-read.
const CHARGE_REFUNDED: Kind = Kind {
    lock: 6,
    state: false,
    json: None,
};
const REFUND: Kind = Kind::state(7, Some(("refund.updated", "/refunds")));
const CHECKOUT: Kind = Kind::state(8, None);
const PAYMENT_METHOD: Kind = Kind::state(9, Some(("payment_method.updated", "/payment_methods")));

impl Kind {
    const fn state(lock: u8, json: Option<(&'static str, &'static str)>) -> Self {
        Self {
            lock,
            state: true,
            json,
        }
    }
}

impl Target {
    /// The object's kind and id (a refunded charge's payment); `None` for `Nothing`.
    fn object(&self) -> Option<(Kind, &str)> {
        Some(match self {
            Target::Customer(c) => (CUSTOMER, &c.id),
            Target::Product(p) => (PRODUCT, &p.id),
            Target::Price(p) => (PRICE, &p.id),
            Target::Subscription(s) => (SUBSCRIPTION, &s.id),
            Target::Invoice(i) => (INVOICE, &i.id),
            Target::Payment(p) => (PAYMENT, &p.id),
            Target::ChargeRefunded(c) => (CHARGE_REFUNDED, &c.payment_intent),
            Target::Refund(r) => (REFUND, &r.id),
            Target::Checkout(c) => (CHECKOUT, &c.id),
            Target::PaymentMethod(m) => (PAYMENT_METHOD, &m.id),
            Target::Nothing => return None,
        })
    }

    /// The order in which a batch locks mirror rows (see `writer`): by table, then object.
    pub(super) fn lock_key(&self) -> (u8, &str) {
        self.object()
            .map_or((u8::MAX, ""), |(kind, id)| (kind.lock, id))
    }

    /// Whether only the newest of several events of one object in a batch need be written
    /// (states under the watermark rule).
    pub(super) fn is_state(&self) -> bool {
        self.object().is_some_and(|(kind, _)| kind.state)
    }

    /// For an object re-read as JSON (one our gateway has no typed call for): the event type
    /// Stripe's answer is read as, and the object's path under `/v1`.
    pub(super) fn json_reread(&self) -> Option<(&'static str, String)> {
        let (kind, id) = self.object()?;
        let (event_type, collection) = kind.json?;
        Some((event_type, format!("{collection}/{id}")))
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
