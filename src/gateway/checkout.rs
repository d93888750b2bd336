//! Checkout sessions at Stripe: payment, subscription and setup modes.

use std::collections::HashMap;

use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionDiscounts, CreateCheckoutSessionLineItems,
    CreateCheckoutSessionSubscriptionData, RetrieveCheckoutSession,
};
use stripe_shared::{CheckoutSession, CheckoutSessionMode};

use stripe::StripeRequest;

use super::{GatewayError, StripeGateway, idempotent};

#[derive(Debug, Clone, PartialEq)]
pub struct CheckoutSnapshot {
    pub id: String,
    pub mode: String,
    pub status: Option<String>,
    pub payment_status: String,
    pub url: Option<String>,
    pub amount_total: Option<i64>,
    pub currency: Option<String>,
    pub customer: Option<String>,
    pub customer_email: Option<String>,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    pub payment_intent: Option<String>,
    pub subscription: Option<String>,
    pub expires_at: i64,
    pub metadata: HashMap<String, String>,
    pub created: i64,
}

impl From<CheckoutSession> for CheckoutSnapshot {
    fn from(s: CheckoutSession) -> Self {
        Self {
            id: s.id.to_string(),
            mode: s.mode.as_str().to_owned(),
            status: s.status.map(|st| st.as_str().to_owned()),
            payment_status: s.payment_status.as_str().to_owned(),
            url: s.url,
            amount_total: s.amount_total,
            currency: s.currency.map(|c| c.to_string()),
            customer: s.customer.map(|c| c.id().to_string()),
            customer_email: s
                .customer_email
                .or_else(|| s.customer_details.and_then(|d| d.email)),
            success_url: s.success_url,
            cancel_url: s.cancel_url,
            payment_intent: s.payment_intent.map(|p| p.id().to_string()),
            subscription: s.subscription.map(|p| p.id().to_string()),
            expires_at: s.expires_at,
            metadata: s.metadata.unwrap_or_default(),
            created: s.created,
        }
    }
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

impl StripeGateway {
    pub async fn create_checkout_session(
        &self,
        new: NewCheckout,
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
        Ok(request
            .customize()
            .request_strategy(idempotent("checkout_session"))
            .send(&self.client)
            .await?
            .into())
    }

    pub async fn retrieve_checkout_session(
        &self,
        id: &str,
    ) -> Result<CheckoutSnapshot, GatewayError> {
        Ok(RetrieveCheckoutSession::new(id)
            .send(&self.client)
            .await?
            .into())
    }
}
