//! Subscriptions at Stripe: create (trials, coupons, a setup price, a card), update (price
//! changes with each proration behaviour, cancel at period end, quantity), cancel now.

use std::collections::HashMap;

use stripe_billing::subscription::{
    CancelSubscription, CreateSubscription, CreateSubscriptionAddInvoiceItems,
    CreateSubscriptionItems, DiscountsDataParam, RetrieveSubscription, UpdateSubscription,
    UpdateSubscriptionItems, UpdateSubscriptionProrationBehavior,
};
use stripe_payment::payment_method::AttachPaymentMethod;
use stripe_shared::Subscription;

use stripe::StripeRequest;

use super::{GatewayError, StripeGateway, idempotent};

/// What the mirror keeps of a subscription, read from Stripe's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionSnapshot {
    pub id: String,
    pub customer: String,
    pub status: String,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    pub trial_end: Option<i64>,
    pub cancel_at_period_end: bool,
    pub canceled_at: Option<i64>,
    pub price_id: Option<String>,
    pub quantity: Option<i64>,
    pub plan_amount: Option<i64>,
    pub plan_currency: Option<String>,
    pub plan_interval: Option<String>,
    pub metadata: HashMap<String, String>,
    pub created: i64,
    /// Every item, in Stripe's order (the first is the plan above).
    pub items: Vec<SubscriptionItemSnapshot>,
}

/// One item of a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionItemSnapshot {
    pub id: String,
    pub price_id: Option<String>,
    pub quantity: Option<i64>,
}

impl From<Subscription> for SubscriptionSnapshot {
    fn from(sub: Subscription) -> Self {
        // Since API 2025-03-31 the billing period lives on the items; the first item is the plan.
        let item = sub.items.data.first();
        let price = item.map(|i| &i.price);
        Self {
            id: sub.id.to_string(),
            customer: sub.customer.id().to_string(),
            status: sub.status.as_str().to_owned(),
            current_period_start: item.map(|i| i.current_period_start),
            current_period_end: item.map(|i| i.current_period_end),
            trial_end: sub.trial_end,
            cancel_at_period_end: sub.cancel_at_period_end,
            canceled_at: sub.canceled_at,
            price_id: price.map(|p| p.id.to_string()),
            quantity: item
                .and_then(|i| i.quantity)
                .and_then(|q| i64::try_from(q).ok()),
            plan_amount: price.and_then(|p| p.unit_amount),
            plan_currency: price.map(|p| p.currency.to_string()),
            plan_interval: price
                .and_then(|p| p.recurring.as_ref())
                .map(|r| r.interval.as_str().to_owned()),
            items: sub
                .items
                .data
                .iter()
                .map(|i| SubscriptionItemSnapshot {
                    id: i.id.to_string(),
                    price_id: Some(i.price.id.to_string()),
                    quantity: i.quantity.and_then(|q| i64::try_from(q).ok()),
                })
                .collect(),
            metadata: sub.metadata,
            created: sub.created,
        }
    }
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

impl StripeGateway {
    pub async fn create_subscription(
        &self,
        new: NewSubscription,
    ) -> Result<SubscriptionSnapshot, GatewayError> {
        let mut item = CreateSubscriptionItems::new();
        item.price = Some(new.price);
        item.quantity = new.quantity;
        let mut request = CreateSubscription::new()
            .customer(new.customer.clone())
            .items(vec![item]);
        if let Some(card) = &new.card_token {
            // The card becomes the customer's and pays this subscription's invoices.
            let attached = AttachPaymentMethod::new(card.as_str())
                .customer(new.customer.clone())
                .customize()
                .request_strategy(idempotent("attach_payment_method"))
                .send(&self.client)
                .await?;
            request = request.default_payment_method(attached.id.to_string());
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
        Ok(request
            .customize()
            .request_strategy(idempotent("subscription"))
            .send(&self.client)
            .await?
            .into())
    }

    pub async fn retrieve_subscription(
        &self,
        id: &str,
    ) -> Result<SubscriptionSnapshot, GatewayError> {
        Ok(RetrieveSubscription::new(id)
            .send(&self.client)
            .await?
            .into())
    }

    pub async fn update_subscription(
        &self,
        id: &str,
        change: SubscriptionChange,
    ) -> Result<SubscriptionSnapshot, GatewayError> {
        let mut request = UpdateSubscription::new(id);
        if change.price.is_some() || change.quantity.is_some() {
            // A price or quantity change replaces the plan item, found on Stripe's current copy.
            let current = RetrieveSubscription::new(id).send(&self.client).await?;
            let mut item = UpdateSubscriptionItems::new();
            item.id = current.items.data.first().map(|i| i.id.to_string());
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
        Ok(request
            .customize()
            .request_strategy(idempotent("subscription_update"))
            .send(&self.client)
            .await?
            .into())
    }

    pub async fn cancel_subscription(
        &self,
        id: &str,
    ) -> Result<SubscriptionSnapshot, GatewayError> {
        Ok(CancelSubscription::new(id)
            .customize()
            .request_strategy(idempotent("subscription_cancel"))
            .send(&self.client)
            .await?
            .into())
    }
}
