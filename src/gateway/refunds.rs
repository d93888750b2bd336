//! Refunds at Stripe, read back with the mirror's lenient parser.

use std::collections::HashMap;

use serde::Serialize;
use stripe_client_core::{RequestBuilder, StripeMethod};

use super::{GatewayError, StripeGateway};
use crate::mirror::{self, RefundSnapshot};

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

impl StripeGateway {
    pub async fn create_refund(&self, new: &NewRefund) -> Result<RefundSnapshot, GatewayError> {
        let object = self
            .send_json(
                RequestBuilder::new(StripeMethod::Post, "/refunds").form(new),
                "create_refund",
            )
            .await?;
        mirror::refund(&object)
            .ok_or_else(|| GatewayError::BadResponse("a refund without id or amount".into()))
    }
}
