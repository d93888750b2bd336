//! Stripe, as this service sees it: the objects it reads ([`objects`]), what it asks for
//! ([`requests`]), how a call fails ([`GatewayError`]), and [`StripeApi`], the one door every
//! call goes through. [`live::LiveStripe`] is the implementation over async-stripe, with the
//! tenant's own key (and, in tests and demos, the emulator's base URL); tenants hold an
//! `Arc<dyn StripeApi>`, so a test can put anything behind the door.
//!
//! Writes take the request's [`RequestKey`] explicitly (`None` outside a keyed request), from
//! which each Stripe write derives a key of its own, so a retried request replays at Stripe
//! instead of creating anything twice.

mod error;
pub mod fetch;
pub mod live;
pub mod oauth;
pub mod objects;
pub mod requests;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

pub use error::{GatewayError, StripeFailure};
pub use live::{LiveStripe, TokenSource, is_known_event_type};
use objects::{
    CheckoutSnapshot, CreatedEndpoint, CustomerSnapshot, EndpointState, PaymentLinkSnapshot,
    PaymentMethodSnapshot, PaymentSnapshot, PortalSession, PriceSnapshot, ProductSnapshot,
    RefundSnapshot, SubscriptionSnapshot,
};
use requests::{
    CustomerChange, CustomerParams, NewCheckout, NewPayment, NewPaymentLink, NewProduct,
    NewProductPrice, NewRefund, NewSubscription, PaymentConfirmation, PaymentLinkChange,
    PriceChange, ProductChange, SubscriptionChange,
};

/// Stripe's limit for an idempotency key.
pub const MAX_KEY_CHARS: usize = 255;

/// Stripe's API, where no other is configured.
pub const STRIPE_API: &str = "https://api.stripe.com";

/// A client request's idempotency key, as the Stripe writes of that request use it: each write
/// `step` is sent with `<key>:<step>:<caller tag>`, and the key remembers that a write was
/// sent (from then on the request has done work, so even a client error is its answer).
pub struct RequestKey {
    key: String,
    caller_tag: String,
    wrote: AtomicBool,
}

/// The key itself stays out of logs: it is the client's, and replaying it replays the answer.
impl std::fmt::Debug for RequestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestKey")
            .field("key", &"[redacted]")
            .field("caller_tag", &self.caller_tag)
            .field("wrote", &self.wrote)
            .finish()
    }
}

/// The key a Stripe write is made under: `None` outside a keyed request.
pub type Key<'a> = Option<&'a RequestKey>;

impl RequestKey {
    /// `caller_tag` tells callers apart: Stripe's keys are per account (the tenant's), so two
    /// callers using one key must not get the same object from Stripe.
    pub fn new(key: impl Into<String>, caller_tag: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            key: key.into(),
            caller_tag: caller_tag.into(),
            wrote: AtomicBool::new(false),
        })
    }

    /// The client's own key.
    pub fn client_key(&self) -> &str {
        &self.key
    }

    /// The key of the Stripe write `step`, noting that the request has now done work.
    pub fn for_step(&self, step: &str) -> String {
        self.wrote.store(true, Ordering::Relaxed);
        derived_key(&self.key, step, &self.caller_tag)
    }

    /// Whether a Stripe write was sent under this key.
    pub fn wrote(&self) -> bool {
        self.wrote.load(Ordering::Relaxed)
    }
}

/// `<key>:<step>:<tag>`, or the key's SHA-256 in place of a key too long to take the suffix
/// (Stripe's limit is ours: 255).
pub fn derived_key(key: &str, step: &str, tag: &str) -> String {
    let derived = format!("{key}:{step}:{tag}");
    if derived.chars().count() <= MAX_KEY_CHARS {
        derived
    } else {
        format!(
            "{}:{step}:{tag}",
            hex::encode(Sha256::digest(key.as_bytes()))
        )
    }
}

/// Every call this service makes to Stripe, for one tenant's account.
#[async_trait]
pub trait StripeApi: Send + Sync {
    /// Any object as JSON, `path` being its URL under `/v1` (e.g. `/products/prod_1`): the
    /// receiver re-reads objects with it and reads them with [`objects`]' parsers.
    async fn retrieve_json(&self, path: &str) -> Result<serde_json::Value, GatewayError>;
    /// One page of a Stripe list as JSON (`path` under `/v1`, e.g. `/customers`), with its
    /// query parameters (`limit`, `starting_after`, `created[gte]`, ...), each entry parsed
    /// into only what `keep` says (the envelope whole).
    async fn list_json(
        &self,
        path: &str,
        query: &[(String, String)],
        keep: &'static objects::Fields,
    ) -> Result<serde_json::Value, GatewayError>;

    async fn create_customer(
        &self,
        params: CustomerParams<'_>,
        key: Key<'_>,
    ) -> Result<CustomerSnapshot, GatewayError>;
    /// Stripe's current state of a customer (a deleted one comes back with `deleted`).
    async fn retrieve_customer(&self, id: &str) -> Result<CustomerSnapshot, GatewayError>;
    /// Changes a customer; Stripe's answer is its new state.
    async fn update_customer(
        &self,
        id: &str,
        change: &CustomerChange,
        key: Key<'_>,
    ) -> Result<CustomerSnapshot, GatewayError>;
    /// Deletes a customer at Stripe, which also cancels its subscriptions at once; the
    /// answer is the customer marked deleted.
    async fn delete_customer(
        &self,
        id: &str,
        key: Key<'_>,
    ) -> Result<CustomerSnapshot, GatewayError>;
    async fn create_portal_session(
        &self,
        customer: &str,
        return_url: &str,
        key: Key<'_>,
    ) -> Result<PortalSession, GatewayError>;

    /// Attaches `payment_method` (a `pm_` id or a test token such as `pm_card_visa`) to the
    /// customer; `default` also makes it the customer's default for invoices.
    async fn attach_card(
        &self,
        payment_method: &str,
        customer: &str,
        default: bool,
        key: Key<'_>,
    ) -> Result<PaymentMethodSnapshot, GatewayError>;
    async fn detach_card(
        &self,
        payment_method: &str,
        key: Key<'_>,
    ) -> Result<PaymentMethodSnapshot, GatewayError>;

    async fn create_product(
        &self,
        new: &NewProduct,
        key: Key<'_>,
    ) -> Result<ProductSnapshot, GatewayError>;
    async fn create_product_price(
        &self,
        new: &NewProductPrice,
        key: Key<'_>,
    ) -> Result<PriceSnapshot, GatewayError>;
    async fn create_payment_link(
        &self,
        new: &NewPaymentLink,
        key: Key<'_>,
    ) -> Result<PaymentLinkSnapshot, GatewayError>;
    /// `id`: a `prod_` id of the tenant's mirror.
    async fn update_product(
        &self,
        id: &str,
        change: &ProductChange,
        key: Key<'_>,
    ) -> Result<ProductSnapshot, GatewayError>;
    /// `id`: a `price_` id of the tenant's mirror.
    async fn update_price(
        &self,
        id: &str,
        change: &PriceChange,
        key: Key<'_>,
    ) -> Result<PriceSnapshot, GatewayError>;
    /// `id`: a `plink_` id of the tenant's mirror.
    async fn update_payment_link(
        &self,
        id: &str,
        change: &PaymentLinkChange,
        key: Key<'_>,
    ) -> Result<PaymentLinkSnapshot, GatewayError>;

    async fn create_checkout_session(
        &self,
        new: NewCheckout,
        key: Key<'_>,
    ) -> Result<CheckoutSnapshot, GatewayError>;
    async fn retrieve_checkout_session(&self, id: &str) -> Result<CheckoutSnapshot, GatewayError>;

    /// Created, and confirmed at once when a payment method is given.
    async fn create_payment_intent(
        &self,
        new: NewPayment,
        key: Key<'_>,
    ) -> Result<PaymentSnapshot, GatewayError>;
    /// A decline is a `card_error` with Stripe's codes.
    async fn confirm_payment_intent(
        &self,
        id: &str,
        confirmation: PaymentConfirmation,
        key: Key<'_>,
    ) -> Result<PaymentSnapshot, GatewayError>;
    async fn retrieve_payment_intent(&self, id: &str) -> Result<PaymentSnapshot, GatewayError>;

    async fn create_refund(
        &self,
        new: &NewRefund,
        key: Key<'_>,
    ) -> Result<RefundSnapshot, GatewayError>;

    async fn create_subscription(
        &self,
        new: NewSubscription,
        key: Key<'_>,
    ) -> Result<SubscriptionSnapshot, GatewayError>;
    async fn retrieve_subscription(&self, id: &str) -> Result<SubscriptionSnapshot, GatewayError>;
    async fn update_subscription(
        &self,
        id: &str,
        change: SubscriptionChange,
        key: Key<'_>,
    ) -> Result<SubscriptionSnapshot, GatewayError>;
    async fn cancel_subscription(
        &self,
        id: &str,
        key: Key<'_>,
    ) -> Result<SubscriptionSnapshot, GatewayError>;

    /// Enables or disables an endpoint and/or replaces its event types (`None`: unchanged).
    async fn update_webhook_endpoint(
        &self,
        id: &str,
        disabled: Option<bool>,
        events: Option<&[String]>,
        key: Key<'_>,
    ) -> Result<EndpointState, GatewayError>;
    /// Deletes an endpoint at Stripe: no more deliveries to it.
    async fn delete_webhook_endpoint(&self, id: &str, key: Key<'_>) -> Result<(), GatewayError>;
    async fn create_webhook_endpoint(
        &self,
        url: &str,
        events: &[String],
        key: Key<'_>,
    ) -> Result<CreatedEndpoint, GatewayError>;

    /// `POST /stripe/fetch`: one call as the client wrote it, to a path the caller's allow-list
    /// admits (`services::fetch`); Stripe's answer as JSON. A write is made under the
    /// request's key like any other.
    async fn proxy(
        &self,
        method: fetch::FetchMethod,
        path: &fetch::FetchPath,
        params: &serde_json::Map<String, serde_json::Value>,
        key: Key<'_>,
    ) -> Result<serde_json::Value, GatewayError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_write_of_a_keyed_request_takes_a_key_of_its_own() {
        let key = RequestKey::new("k1", "tag1");
        assert!(!key.wrote());
        assert_eq!(key.for_step("customer"), "k1:customer:tag1");
        assert_eq!(key.for_step("attach"), "k1:attach:tag1");
        assert!(key.wrote());
        let long = "k".repeat(MAX_KEY_CHARS);
        let derived = derived_key(&long, "payment_intent", "tag1");
        assert!(derived.len() <= MAX_KEY_CHARS, "{derived}");
        assert!(derived.ends_with(":payment_intent:tag1"));
    }
}
