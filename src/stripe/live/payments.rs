//! Payment intents (created, and confirmed at once when a payment method is given) and
//! refunds.

use std::str::FromStr;

use stripe_core::payment_intent::{
    ConfirmPaymentIntent, ConfirmPaymentIntentOffSession, CreatePaymentIntent,
    CreatePaymentIntentAutomaticPaymentMethods,
    CreatePaymentIntentAutomaticPaymentMethodsAllowRedirects, CreatePaymentIntentOffSession,
    RetrievePaymentIntent,
};
use stripe_shared::PaymentIntent;

use stripe::{IdempotencyKey, RequestStrategy, StripeRequest};

use super::{LiveStripe, read_as};
use crate::stripe::objects::{self, PaymentSnapshot, RefundSnapshot};
use crate::stripe::requests::{NewPayment, NewRefund, PaymentConfirmation};
use crate::stripe::{GatewayError, Key};

pub(super) async fn create(
    stripe: &LiveStripe,
    new: NewPayment,
    key: Key<'_>,
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
    // An order's own key, when it has one, in place of the request's.
    let object = match new
        .idempotency_key
        .and_then(|own| IdempotencyKey::new(own).ok())
    {
        Some(own) => {
            let strategy = RequestStrategy::Idempotent(own);
            stripe
                .send_with(request.build(), Some(strategy), super::Parse::Whole)
                .await?
        }
        None => {
            stripe
                .send_json(request.build(), key, "payment_intent")
                .await?
        }
    };
    read_as(&object, objects::payment, "payment_intent")
}

pub(super) async fn confirm(
    stripe: &LiveStripe,
    id: &str,
    confirmation: PaymentConfirmation,
    key: Key<'_>,
) -> Result<PaymentSnapshot, GatewayError> {
    let mut request = ConfirmPaymentIntent::new(id);
    if let Some(pm) = confirmation.payment_method {
        request = request.payment_method(pm);
    }
    if confirmation.off_session {
        request = request.off_session(ConfirmPaymentIntentOffSession::Bool(true));
    }
    if let Some(url) = confirmation.return_url {
        request = request.return_url(url);
    }
    stripe
        .send(&request, key, "payment_intent_confirm", objects::payment)
        .await
}

pub(super) async fn retrieve(
    stripe: &LiveStripe,
    id: &str,
) -> Result<PaymentSnapshot, GatewayError> {
    stripe
        .send(
            &RetrievePaymentIntent::new(id),
            None,
            "retrieve",
            objects::payment,
        )
        .await
}

pub(super) async fn refund(
    stripe: &LiveStripe,
    new: &NewRefund,
    key: Key<'_>,
) -> Result<RefundSnapshot, GatewayError> {
    stripe
        .post("/refunds", new, key, "create_refund", objects::refund)
        .await
}

/// The payment intent a card error carries, which async-stripe hands over already typed:
/// the one object read from a typed value instead of JSON.
pub(super) fn declined_intent(pi: PaymentIntent) -> PaymentSnapshot {
    PaymentSnapshot {
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
