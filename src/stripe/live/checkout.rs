//! Checkout sessions: payment, subscription and setup modes.

use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionDiscounts, CreateCheckoutSessionLineItems,
    CreateCheckoutSessionSubscriptionData, RetrieveCheckoutSession,
};
use stripe_shared::CheckoutSessionMode;

use super::LiveStripe;
use crate::stripe::objects::{self, CheckoutSnapshot};
use crate::stripe::requests::NewCheckout;
use crate::stripe::{GatewayError, Key};

pub(super) async fn create(
    stripe: &LiveStripe,
    new: NewCheckout,
    key: Key<'_>,
) -> Result<CheckoutSnapshot, GatewayError> {
    let mode = match new.mode.as_str() {
        "subscription" => CheckoutSessionMode::Subscription,
        "setup" => CheckoutSessionMode::Setup,
        _ => CheckoutSessionMode::Payment,
    };
    let mut request = CreateCheckoutSession::new()
        .mode(mode)
        .success_url(new.success_url)
        .cancel_url(new.cancel_url);
    if !new.line_items.is_empty() {
        let items: Vec<_> = new
            .line_items
            .into_iter()
            .map(|(price, quantity)| {
                let mut item = CreateCheckoutSessionLineItems::new();
                item.price = Some(price);
                item.quantity = Some(quantity);
                item
            })
            .collect();
        request = request.line_items(items);
    }
    if let Some(customer) = new.customer {
        request = request.customer(customer);
    } else if let Some(email) = new.customer_email {
        request = request.customer_email(email);
    }
    if let Some(allow) = new.allow_promotion_codes {
        request = request.allow_promotion_codes(allow);
    }
    if let Some(coupon) = new.coupon {
        let mut discount = CreateCheckoutSessionDiscounts::new();
        discount.coupon = Some(coupon);
        request = request.discounts(vec![discount]);
    }
    let trial = new.trial_period_days.filter(|d| *d > 0);
    if new.mode == "subscription" && (trial.is_some() || new.description.is_some()) {
        let mut data = CreateCheckoutSessionSubscriptionData::new();
        data.trial_period_days = trial;
        data.description = new.description.clone();
        request = request.subscription_data(data);
    }
    if !new.metadata.is_empty() {
        request = request.metadata(new.metadata);
    }
    stripe
        .send(&request, key, "checkout_session", objects::checkout_session)
        .await
}

pub(super) async fn retrieve(
    stripe: &LiveStripe,
    id: &str,
) -> Result<CheckoutSnapshot, GatewayError> {
    stripe
        .send(
            &RetrieveCheckoutSession::new(id),
            None,
            "retrieve",
            objects::checkout_session,
        )
        .await
}
