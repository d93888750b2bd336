//! Payment intents at Stripe: created, and confirmed at once when a payment method is given.

use std::collections::HashMap;
use std::str::FromStr;

use stripe_core::payment_intent::{
    ConfirmPaymentIntent, CreatePaymentIntent, CreatePaymentIntentAutomaticPaymentMethods,
    CreatePaymentIntentAutomaticPaymentMethodsAllowRedirects, CreatePaymentIntentOffSession,
};
use stripe_shared::PaymentIntent;

use stripe::StripeRequest;

use super::{GatewayError, StripeGateway, idempotent};

#[derive(Debug, Clone, PartialEq)]
pub struct PaymentSnapshot {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub customer: Option<String>,
    pub payment_method: Option<String>,
    pub description: Option<String>,
    pub client_secret: Option<String>,
    pub metadata: HashMap<String, String>,
    pub created: i64,
}

impl From<PaymentIntent> for PaymentSnapshot {
    fn from(pi: PaymentIntent) -> Self {
        Self {
            id: pi.id.to_string(),
            amount: pi.amount,
            currency: pi.currency.to_string(),
            status: pi.status.as_str().to_owned(),
            customer: pi.customer.map(|c| c.id().to_string()),
            payment_method: pi.payment_method.map(|p| p.id().to_string()),
            description: pi.description,
            client_secret: pi.client_secret,
            metadata: pi.metadata,
            created: pi.created,
        }
    }
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

impl StripeGateway {
    pub async fn create_payment_intent(
        &self,
        new: NewPayment,
    ) -> Result<PaymentSnapshot, GatewayError> {
        let currency = stripe_types::Currency::from_str(&new.currency)
            .map_err(|_| GatewayError::Config(format!("currency {}", new.currency)))?;
        let mut request = CreatePaymentIntent::new(new.amount, currency);
        if let Some(customer) = new.customer {
            request = request.customer(customer);
        }
        // A server-side confirmation has no page to come back to, so redirect-based methods
        // are excluded (Stripe otherwise requires a return_url).
        let server_side = || {
            let mut methods = CreatePaymentIntentAutomaticPaymentMethods::new(true);
            methods.allow_redirects =
                Some(CreatePaymentIntentAutomaticPaymentMethodsAllowRedirects::Never);
            methods
        };
        if let Some(pm) = new.payment_method {
            // With a payment method the intent is confirmed now: the caller learns at once
            // whether the card was charged or declined.
            request = request
                .payment_method(pm)
                .confirm(true)
                .automatic_payment_methods(server_side());
            if new.off_session {
                request = request.off_session(CreatePaymentIntentOffSession::Bool(true));
            }
        } else if new.confirmed_later {
            request = request.automatic_payment_methods(server_side());
        }
        if let Some(description) = new.description {
            request = request.description(description);
        }
        if !new.metadata.is_empty() {
            request = request.metadata(new.metadata);
        }
        let strategy = match new
            .idempotency_key
            .and_then(|key| stripe::IdempotencyKey::new(key).ok())
        {
            Some(key) => stripe::RequestStrategy::Idempotent(key),
            None => idempotent("payment_intent"),
        };
        Ok(request
            .customize()
            .request_strategy(strategy)
            .send(&self.client)
            .await?
            .into())
    }
}

impl StripeGateway {
    /// Confirms a payment intent, with `payment_method` if given (else the one it has). A
    /// decline is a `card_error` with Stripe's codes.
    pub async fn confirm_payment_intent(
        &self,
        id: &str,
        payment_method: Option<String>,
        return_url: Option<String>,
        off_session: bool,
    ) -> Result<PaymentSnapshot, GatewayError> {
        let mut request = ConfirmPaymentIntent::new(id);
        if let Some(pm) = payment_method {
            request = request.payment_method(pm);
        }
        if off_session {
            request = request.off_session(
                stripe_core::payment_intent::ConfirmPaymentIntentOffSession::Bool(true),
            );
        }
        if let Some(url) = return_url {
            request = request.return_url(url);
        }
        Ok(request
            .customize()
            .request_strategy(idempotent("payment_intent_confirm"))
            .send(&self.client)
            .await?
            .into())
    }

    pub async fn retrieve_payment_intent(&self, id: &str) -> Result<PaymentSnapshot, GatewayError> {
        Ok(stripe_core::payment_intent::RetrievePaymentIntent::new(id)
            .send(&self.client)
            .await?
            .into())
    }
}
