//! What this service asks Stripe to create or change, already validated by the caller.
//! The form-encoded ones are sent as they serialize.

use std::collections::HashMap;

use serde::Serialize;

/// What we ask Stripe to create for a customer.
#[derive(Debug, Default)]
pub struct CustomerParams<'a> {
    pub email: Option<&'a str>,
    pub name: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub description: Option<&'a str>,
    pub metadata: HashMap<String, String>,
    /// A payment method (or test token) to attach and make the default for invoices.
    pub payment_method: Option<&'a str>,
}

/// What we ask Stripe to change on a customer (`POST /v1/customers/{id}`): a field left
/// `None` is not sent; `Some("")` unsets it (Stripe's convention), in `metadata` too.
#[derive(Debug, Default, Serialize)]
pub struct CustomerChange {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub metadata: HashMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoice_settings: Option<InvoiceDefault>,
}

/// `invoice_settings[default_payment_method]`: a `pm_` id of the customer's.
#[derive(Debug, Serialize)]
pub struct InvoiceDefault {
    pub default_payment_method: String,
}

#[derive(Debug, Clone)]
pub struct NewPayment {
    pub amount: i64,
    /// Lowercase ISO code, already checked.
    pub currency: String,
    pub customer: Option<String>,
    pub payment_method: Option<String>,
    pub description: Option<String>,
    pub metadata: HashMap<String, String>,
    /// A saved card charged without the customer present.
    pub off_session: bool,
    /// Stripe's idempotency key for this create, instead of the request's own (an order's,
    /// so that it is never paid by two intents).
    pub idempotency_key: Option<String>,
    /// Created now and confirmed by this service in a second call (an order's payment):
    /// redirect-based methods are left out, as for an intent confirmed at once.
    pub confirmed_later: bool,
}

/// A confirmation of an existing payment intent.
#[derive(Debug, Clone, Default)]
pub struct PaymentConfirmation {
    /// The payment method to confirm with (else the one the intent has).
    pub payment_method: Option<String>,
    pub return_url: Option<String>,
    pub off_session: bool,
}

/// A new subscription, validated.
#[derive(Debug, Clone)]
pub struct NewSubscription {
    pub customer: String,
    pub price: String,
    pub setup_price: Option<String>,
    pub quantity: Option<u64>,
    pub trial_period_days: Option<u32>,
    pub coupon: Option<String>,
    pub card_token: Option<String>,
    pub description: Option<String>,
    pub metadata: HashMap<String, String>,
}

/// A change to a subscription, validated.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionChange {
    pub price: Option<String>,
    pub proration_behavior: Option<String>,
    pub cancel_at_period_end: Option<bool>,
    pub quantity: Option<u64>,
    pub metadata: Option<HashMap<String, String>>,
}

#[derive(Debug, Clone)]
pub struct NewCheckout {
    pub mode: String,
    pub success_url: String,
    pub cancel_url: String,
    /// (price id, quantity)
    pub line_items: Vec<(String, u64)>,
    pub customer: Option<String>,
    pub customer_email: Option<String>,
    pub trial_period_days: Option<u32>,
    pub allow_promotion_codes: Option<bool>,
    pub coupon: Option<String>,
    pub description: Option<String>,
    pub metadata: HashMap<String, String>,
}

/// A product to create (`POST /v1/products`).
#[derive(Debug, Clone, Serialize)]
pub struct NewProduct {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub metadata: HashMap<String, String>,
}

/// A price of an existing product (`POST /v1/prices`).
#[derive(Debug, Clone, Serialize)]
pub struct NewProductPrice {
    pub product: String,
    pub currency: String,
    pub unit_amount: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recurring: Option<Recurring>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub metadata: HashMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Recurring {
    pub interval: String,
    pub interval_count: i64,
}

/// A payment link for one price (`POST /v1/payment_links`).
#[derive(Debug, Clone, Serialize)]
pub struct NewPaymentLink {
    pub line_items: Vec<LinkItem>,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub metadata: HashMap<String, String>,
}

/// A change to a product (`POST /v1/products/:id`); only what is set is sent. An empty
/// `description` removes it, and metadata is merged into the product's (an empty value removes
/// a key), as Stripe does.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProductChange {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<HashMap<String, String>>,
}

/// A change to a price (`POST /v1/prices/:id`): what Stripe lets change on a price (its
/// amount, currency and interval never do). An empty `nickname` removes it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PriceChange {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<HashMap<String, String>>,
}

/// A change to a payment link (`POST /v1/payment_links/:id`): deactivated or reactivated,
/// metadata merged.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PaymentLinkChange {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<HashMap<String, String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LinkItem {
    pub price: String,
    pub quantity: i64,
}

/// A refund to create: all of what is left of the payment when `amount` is `None`.
#[derive(Debug, Clone, Serialize)]
pub struct NewRefund {
    pub payment_intent: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub metadata: HashMap<String, String>,
}
