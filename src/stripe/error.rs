//! How a Stripe call fails, in this service's terms (no client library's types).

use super::objects::PaymentSnapshot;

/// A Stripe API error with everything clients need kept (STRIPE_RULES.md, Request ids and errors).
#[derive(Debug, Clone)]
pub struct StripeFailure {
    pub http_status: u16,
    pub error_type: String,
    pub code: Option<String>,
    pub decline_code: Option<String>,
    pub param: Option<String>,
    pub message: String,
    /// Stripe's id of the refused request (`req_...`).
    pub request_id: Option<String>,
    /// The payment intent a card error left behind (Stripe sends it with the error): a
    /// declined payment exists at Stripe and is mirrored like any other.
    pub payment_intent: Option<Box<PaymentSnapshot>>,
    /// How long Stripe asked to wait before the next call (its `Retry-After`, on a 429).
    pub retry_after: Option<std::time::Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("stripe refused the request: {}", .0.message)]
    Stripe(Box<StripeFailure>),
    #[error("stripe timed out")]
    Timeout,
    #[error("stripe unreachable: {0}")]
    Unreachable(String),
    #[error("unreadable stripe response: {0}")]
    BadResponse(String),
    #[error("stripe client misconfigured: {0}")]
    Config(String),
    /// The tenant's Stripe account is disconnected (deauthorized, or its Apps refresh token
    /// was refused): nothing was sent.
    #[error("the tenant's Stripe account is not connected")]
    NotConnected,
}
