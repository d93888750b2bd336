//! The catalogue at Stripe: products, prices and payment links, read back with the mirror's
//! lenient parsers.

use stripe_client_core::{RequestBuilder, StripeMethod};

use super::{GatewayError, StripeGateway};

/// A product to create (`POST /v1/products`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewProduct {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "std::collections::HashMap::is_empty")]
    pub metadata: std::collections::HashMap<String, String>,
}

/// A price of an existing product (`POST /v1/prices`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewProductPrice {
    pub product: String,
    pub currency: String,
    pub unit_amount: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recurring: Option<Recurring>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    #[serde(skip_serializing_if = "std::collections::HashMap::is_empty")]
    pub metadata: std::collections::HashMap<String, String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Recurring {
    pub interval: String,
    pub interval_count: i64,
}

/// A payment link for one price (`POST /v1/payment_links`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewPaymentLink {
    pub line_items: Vec<LinkItem>,
    #[serde(skip_serializing_if = "std::collections::HashMap::is_empty")]
    pub metadata: std::collections::HashMap<String, String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LinkItem {
    pub price: String,
    pub quantity: i64,
}

/// A created payment link, reduced to what we return.
#[derive(Debug, Clone)]
pub struct PaymentLink {
    pub id: String,
    pub url: String,
    pub active: bool,
    pub created: Option<i64>,
}

impl StripeGateway {
    pub async fn create_product(
        &self,
        new: &NewProduct,
    ) -> Result<crate::mirror::ProductSnapshot, GatewayError> {
        let object = self
            .send_json(
                RequestBuilder::new(StripeMethod::Post, "/products").form(new),
                "create_product",
            )
            .await?;
        crate::mirror::product(&object, false)
            .ok_or_else(|| GatewayError::BadResponse("a product without an id".into()))
    }

    pub async fn create_product_price(
        &self,
        new: &NewProductPrice,
    ) -> Result<crate::mirror::PriceSnapshot, GatewayError> {
        let object = self
            .send_json(
                RequestBuilder::new(StripeMethod::Post, "/prices").form(new),
                "create_price",
            )
            .await?;
        crate::mirror::price(&object, false)
            .ok_or_else(|| GatewayError::BadResponse("a price without an id".into()))
    }

    pub async fn create_payment_link(
        &self,
        new: &NewPaymentLink,
    ) -> Result<PaymentLink, GatewayError> {
        let object = self
            .send_json(
                RequestBuilder::new(StripeMethod::Post, "/payment_links").form(new),
                "create_payment_link",
            )
            .await?;
        let text = |key: &str| object.get(key).and_then(serde_json::Value::as_str);
        match (text("id"), text("url")) {
            (Some(id), Some(url)) => Ok(PaymentLink {
                id: id.to_owned(),
                url: url.to_owned(),
                active: object
                    .get("active")
                    .and_then(serde_json::Value::as_bool)
                    .unwrap_or(true),
                created: object.get("created").and_then(serde_json::Value::as_i64),
            }),
            _ => Err(GatewayError::BadResponse(
                "a payment link without id or url".into(),
            )),
        }
    }
}
