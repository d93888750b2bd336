//! Saved cards: payment methods attached to (and detached from) customers at Stripe, read back
//! with the mirror's lenient parser.

use stripe_client_core::{RequestBuilder, StripeMethod};

use super::{GatewayError, StripeGateway};
use crate::mirror::{self, PaymentMethodSnapshot};

#[derive(serde::Serialize)]
struct Attach<'a> {
    customer: &'a str,
}

/// `invoice_settings[default_payment_method]=...` once encoded.
#[derive(serde::Serialize)]
struct DefaultCard<'a> {
    invoice_settings: InvoiceSettings<'a>,
}

#[derive(serde::Serialize)]
struct InvoiceSettings<'a> {
    default_payment_method: &'a str,
}

fn read(object: &serde_json::Value) -> Result<PaymentMethodSnapshot, GatewayError> {
    mirror::payment_method(object)
        .ok_or_else(|| GatewayError::BadResponse("a payment method without an id".into()))
}

impl StripeGateway {
    /// Attaches `payment_method` (a `pm_` id or a test token such as `pm_card_visa`) to the
    /// customer; `default` also makes it the customer's default for invoices.
    pub async fn attach_card(
        &self,
        payment_method: &str,
        customer: &str,
        default: bool,
    ) -> Result<PaymentMethodSnapshot, GatewayError> {
        let path = format!("/payment_methods/{payment_method}/attach");
        let attached = read(
            &self
                .send_json(
                    RequestBuilder::new(StripeMethod::Post, path).form(&Attach { customer }),
                    "attach_card",
                )
                .await?,
        )?;
        if default {
            let form = DefaultCard {
                invoice_settings: InvoiceSettings {
                    default_payment_method: &attached.id,
                },
            };
            self.send_json(
                RequestBuilder::new(StripeMethod::Post, format!("/customers/{customer}"))
                    .form(&form),
                "set_default_card",
            )
            .await?;
        }
        Ok(attached)
    }

    pub async fn detach_card(
        &self,
        payment_method: &str,
    ) -> Result<PaymentMethodSnapshot, GatewayError> {
        let path = format!("/payment_methods/{payment_method}/detach");
        read(
            &self
                .send_json(RequestBuilder::new(StripeMethod::Post, path), "detach_card")
                .await?,
        )
    }
}
