//! Subscriptions: create (trials, coupons, a setup price, a card), update (price changes with
//! each proration behaviour, cancel at period end, quantity), cancel now.

use stripe_billing::subscription::{
    CancelSubscription, CreateSubscription, CreateSubscriptionAddInvoiceItems,
    CreateSubscriptionItems, DiscountsDataParam, RetrieveSubscription, UpdateSubscription,
    UpdateSubscriptionItems, UpdateSubscriptionProrationBehavior,
};
use stripe_payment::payment_method::AttachPaymentMethod;

use super::LiveStripe;
use crate::stripe::objects::{self, SubscriptionSnapshot};
use crate::stripe::requests::{NewSubscription, SubscriptionChange};
use crate::stripe::{GatewayError, Key};

pub(super) async fn create(
    stripe: &LiveStripe,
    new: NewSubscription,
    key: Key<'_>,
) -> Result<SubscriptionSnapshot, GatewayError> {
    let mut item = CreateSubscriptionItems::new();
    item.price = Some(new.price);
    item.quantity = new.quantity;
    let mut request = CreateSubscription::new()
        .customer(new.customer.clone())
        .items(vec![item]);
    if let Some(card) = &new.card_token {
        // The card becomes the customer's and pays this subscription's invoices.
        let attach = AttachPaymentMethod::new(card.as_str()).customer(new.customer.clone());
        let attached = stripe
            .send(
                &attach,
                key,
                "attach_payment_method",
                objects::payment_method,
            )
            .await?;
        request = request.default_payment_method(attached.id);
    }
    if let Some(setup) = new.setup_price {
        let mut extra = CreateSubscriptionAddInvoiceItems::new();
        extra.price = Some(setup);
        request = request.add_invoice_items(vec![extra]);
    }
    if let Some(days) = new.trial_period_days.filter(|d| *d > 0) {
        request = request.trial_period_days(days);
    }
    if let Some(coupon) = new.coupon {
        let mut discount = DiscountsDataParam::new();
        discount.coupon = Some(coupon);
        request = request.discounts(vec![discount]);
    }
    if let Some(description) = new.description {
        request = request.description(description);
    }
    if !new.metadata.is_empty() {
        request = request.metadata(new.metadata);
    }
    stripe
        .send(&request, key, "subscription", objects::subscription)
        .await
}

pub(super) async fn retrieve(
    stripe: &LiveStripe,
    id: &str,
) -> Result<SubscriptionSnapshot, GatewayError> {
    stripe
        .send(
            &RetrieveSubscription::new(id),
            None,
            "retrieve",
            objects::subscription,
        )
        .await
}

pub(super) async fn update(
    stripe: &LiveStripe,
    id: &str,
    change: SubscriptionChange,
    key: Key<'_>,
) -> Result<SubscriptionSnapshot, GatewayError> {
    let mut request = UpdateSubscription::new(id);
    if change.price.is_some() || change.quantity.is_some() {
        // A price or quantity change replaces the plan item, found on Stripe's current copy.
        let current = retrieve(stripe, id).await?;
        let mut item = UpdateSubscriptionItems::new();
        item.id = current.items.first().map(|i| i.id.clone());
        item.price = change.price;
        item.quantity = change.quantity;
        request = request.items(vec![item]);
    }
    if let Some(behavior) = change.proration_behavior.as_deref() {
        let behavior = match behavior {
            "none" => UpdateSubscriptionProrationBehavior::None,
            "always_invoice" => UpdateSubscriptionProrationBehavior::AlwaysInvoice,
            _ => UpdateSubscriptionProrationBehavior::CreateProrations,
        };
        request = request.proration_behavior(behavior);
    }
    if let Some(flag) = change.cancel_at_period_end {
        request = request.cancel_at_period_end(flag);
    }
    if let Some(metadata) = change.metadata {
        request = request.metadata(metadata);
    }
    stripe
        .send(&request, key, "subscription_update", objects::subscription)
        .await
}

pub(super) async fn cancel(
    stripe: &LiveStripe,
    id: &str,
    key: Key<'_>,
) -> Result<SubscriptionSnapshot, GatewayError> {
    stripe
        .send(
            &CancelSubscription::new(id),
            key,
            "subscription_cancel",
            objects::subscription,
        )
        .await
}
