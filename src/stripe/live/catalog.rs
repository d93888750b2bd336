//! The catalogue: products, prices and payment links.

use super::LiveStripe;
use crate::stripe::objects::{self, PaymentLinkSnapshot, PriceSnapshot, ProductSnapshot};
use crate::stripe::requests::{
    NewPaymentLink, NewProduct, NewProductPrice, PaymentLinkChange, PriceChange, ProductChange,
};
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

pub(super) async fn update_product(
    stripe: &LiveStripe,
    id: &str,
    change: &ProductChange,
    key: Key<'_>,
) -> Result<ProductSnapshot, GatewayError> {
    stripe
        .post(
            &format!("/products/{}", path_id(id)?),
            change,
            key,
            "product_update",
            |o| objects::product(o, false),
        )
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

pub(super) async fn update_price(
    stripe: &LiveStripe,
    id: &str,
    change: &PriceChange,
    key: Key<'_>,
) -> Result<PriceSnapshot, GatewayError> {
    stripe
        .post(
            &format!("/prices/{}", path_id(id)?),
            change,
            key,
            "price_update",
            |o| objects::price(o, false),
        )
        .await
}

pub(super) async fn create_payment_link(
    stripe: &LiveStripe,
    new: &NewPaymentLink,
    key: Key<'_>,
) -> Result<PaymentLinkSnapshot, GatewayError> {
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

pub(super) async fn update_payment_link(
    stripe: &LiveStripe,
    id: &str,
    change: &PaymentLinkChange,
    key: Key<'_>,
) -> Result<PaymentLinkSnapshot, GatewayError> {
    stripe
        .post(
            &format!("/payment_links/{}", path_id(id)?),
            change,
            key,
            "payment_link_update",
            objects::payment_link,
        )
        .await
}

/// An object id as a path segment: Stripe's ids are letters, digits and `_`; anything else
/// (a mirror row of a forged event, say) is never put into a URL.
fn path_id(id: &str) -> Result<&str, GatewayError> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(id)
    } else {
        Err(GatewayError::Config(format!(
            "{id:?} is not a Stripe object id"
        )))
    }
}
