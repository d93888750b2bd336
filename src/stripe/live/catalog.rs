//! The catalogue: products, prices and payment links.

use super::LiveStripe;
use crate::stripe::objects::{self, PaymentLink, PriceSnapshot, ProductSnapshot};
use crate::stripe::requests::{NewPaymentLink, NewProduct, NewProductPrice};
use crate::stripe::{GatewayError, Key};

pub(super) async fn create_product(
    stripe: &LiveStripe,
    new: &NewProduct,
    key: Key<'_>,
) -> Result<ProductSnapshot, GatewayError> {
    stripe
        .post("/products", new, key, "create_product", |o| {
            objects::product(o, false)
        })
        .await
}

pub(super) async fn create_price(
    stripe: &LiveStripe,
    new: &NewProductPrice,
    key: Key<'_>,
) -> Result<PriceSnapshot, GatewayError> {
    stripe
        .post("/prices", new, key, "create_price", |o| {
            objects::price(o, false)
        })
        .await
}

pub(super) async fn create_payment_link(
    stripe: &LiveStripe,
    new: &NewPaymentLink,
    key: Key<'_>,
) -> Result<PaymentLink, GatewayError> {
    stripe
        .post(
            "/payment_links",
            new,
            key,
            "create_payment_link",
            objects::payment_link,
        )
        .await
}
