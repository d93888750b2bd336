//! The catalogue at Stripe: prices (with their product).

use std::str::FromStr;

use stripe_product::price::{
    CreatePrice, CreatePriceProductData, CreatePriceRecurring, CreatePriceRecurringInterval,
};

use stripe::StripeRequest;

use super::{GatewayError, StripeGateway, idempotent};

/// A price to create: one-time, or recurring every `interval`.
#[derive(Debug, Clone)]
pub struct NewPrice {
    pub product_name: String,
    pub unit_amount: i64,
    pub currency: String,
    /// `day`, `week`, `month` or `year`; `None` for a one-time price.
    pub interval: Option<String>,
}

impl StripeGateway {
    /// Creates a price with a new product; returns the `price_` id.
    pub async fn create_price(&self, new: NewPrice) -> Result<String, GatewayError> {
        let currency = stripe_types::Currency::from_str(&new.currency)
            .map_err(|_| GatewayError::Config(format!("currency {}", new.currency)))?;
        let mut request = CreatePrice::new(currency)
            .unit_amount(new.unit_amount)
            .product_data(CreatePriceProductData::new(new.product_name));
        if let Some(interval) = new.interval {
            let interval = CreatePriceRecurringInterval::from_str(&interval)
                .map_err(|_| GatewayError::Config(format!("interval {interval}")))?;
            request = request.recurring(CreatePriceRecurring::new(interval));
        }
        let price = request
            .customize()
            .request_strategy(idempotent("price"))
            .send(&self.client)
            .await?;
        Ok(price.id.to_string())
    }
}
