//! Customers, their billing portal and their saved cards.

use serde::Serialize;
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_core::customer::{CreateCustomer, CreateCustomerInvoiceSettings, RetrieveCustomer};

use stripe_client_core::{RequestBuilder, StripeMethod};

use super::{LiveStripe, read_as};
use crate::stripe::objects::{self, CustomerSnapshot, PaymentMethodSnapshot, PortalSession};
use crate::stripe::requests::{CustomerChange, CustomerParams};
use crate::stripe::{GatewayError, Key};

pub(super) async fn create(
    stripe: &LiveStripe,
    params: CustomerParams<'_>,
    key: Key<'_>,
) -> Result<CustomerSnapshot, GatewayError> {
    let mut request = CreateCustomer::new();
    if let Some(email) = params.email {
        request = request.email(email);
    }
    if let Some(name) = params.name {
        request = request.name(name);
    }
    if let Some(phone) = params.phone {
        request = request.phone(phone);
    }
    if let Some(description) = params.description {
        request = request.description(description);
    }
    if !params.metadata.is_empty() {
        request = request.metadata(params.metadata);
    }
    if let Some(pm) = params.payment_method {
        let mut settings = CreateCustomerInvoiceSettings::new();
        settings.default_payment_method = Some(pm.to_owned());
        request = request.payment_method(pm).invoice_settings(settings);
    }
    stripe
        .send(&request, key, "customer", |o| objects::customer(o, false))
        .await
}

pub(super) async fn retrieve(
    stripe: &LiveStripe,
    id: &str,
) -> Result<CustomerSnapshot, GatewayError> {
    stripe
        .send(&RetrieveCustomer::new(id), None, "retrieve", |o| {
            objects::customer(o, false)
        })
        .await
}

pub(super) async fn update(
    stripe: &LiveStripe,
    id: &str,
    change: &CustomerChange,
    key: Key<'_>,
) -> Result<CustomerSnapshot, GatewayError> {
    let request = RequestBuilder::new(StripeMethod::Post, format!("/customers/{id}")).form(change);
    let object = stripe.send_json(request, key, "update_customer").await?;
    read_as(&object, |o| objects::customer(o, false), "update_customer")
}

pub(super) async fn delete(
    stripe: &LiveStripe,
    id: &str,
    key: Key<'_>,
) -> Result<CustomerSnapshot, GatewayError> {
    let request = RequestBuilder::new(StripeMethod::Delete, format!("/customers/{id}"));
    let object = stripe.send_json(request, key, "delete_customer").await?;
    read_as(&object, |o| objects::customer(o, true), "delete_customer")
}

pub(super) async fn portal_session(
    stripe: &LiveStripe,
    customer: &str,
    return_url: &str,
    key: Key<'_>,
) -> Result<PortalSession, GatewayError> {
    let request = CreateBillingPortalSession::new()
        .customer(customer)
        .return_url(return_url);
    stripe
        .send(&request, key, "portal_session", objects::portal_session)
        .await
}

#[derive(Serialize)]
struct Attach<'a> {
    customer: &'a str,
}

/// `invoice_settings[default_payment_method]=...` once encoded.
#[derive(Serialize)]
struct DefaultCard<'a> {
    invoice_settings: InvoiceSettings<'a>,
}

#[derive(Serialize)]
struct InvoiceSettings<'a> {
    default_payment_method: &'a str,
}

pub(super) async fn attach_card(
    stripe: &LiveStripe,
    payment_method: &str,
    customer: &str,
    default: bool,
    key: Key<'_>,
) -> Result<PaymentMethodSnapshot, GatewayError> {
    let path = format!("/payment_methods/{payment_method}/attach");
    let attached = stripe
        .post(
            &path,
            &Attach { customer },
            key,
            "attach_card",
            objects::payment_method,
        )
        .await?;
    if default {
        let form = DefaultCard {
            invoice_settings: InvoiceSettings {
                default_payment_method: &attached.id,
            },
        };
        let request =
            RequestBuilder::new(StripeMethod::Post, format!("/customers/{customer}")).form(&form);
        stripe.send_json(request, key, "set_default_card").await?;
    }
    Ok(attached)
}

pub(super) async fn detach_card(
    stripe: &LiveStripe,
    payment_method: &str,
    key: Key<'_>,
) -> Result<PaymentMethodSnapshot, GatewayError> {
    let path = format!("/payment_methods/{payment_method}/detach");
    let request = RequestBuilder::new(StripeMethod::Post, path);
    let object = stripe.send_json(request, key, "detach_card").await?;
    read_as(&object, objects::payment_method, "detach_card")
}
