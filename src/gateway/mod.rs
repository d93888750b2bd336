//! The Stripe gateway: every call to Stripe goes through here, with the tenant's own key and
//! (in tests and demos) the emulator's base URL. Handlers never see async-stripe's types:
//! each call returns a snapshot of what the mirror keeps.

pub mod cards;
pub mod catalog;
pub mod checkout;
pub mod payments;
pub mod refunds;
pub mod subscriptions;
pub mod webhooks;

use std::collections::HashMap;
use std::time::Duration;

use stripe::{IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_core::customer::{CreateCustomer, CreateCustomerInvoiceSettings};
use stripe_shared::Customer;

/// A Stripe API error with everything clients need kept (STRIPE_RULES.md, Request ids and errors).
#[derive(Debug, Clone)]
pub struct StripeFailure {
    pub http_status: u16,
    pub error_type: String,
    pub code: Option<String>,
    pub decline_code: Option<String>,
    pub param: Option<String>,
    pub message: String,
    /// Stripe's id of the refused request (`req_...`), read from the error's
    /// `request_log_url`: async-stripe does not expose the `Request-Id` header.
    pub request_id: Option<String>,
    /// The payment intent a card error left behind (Stripe sends it with the error): a
    /// declined payment exists at Stripe and is mirrored like any other.
    pub payment_intent: Option<Box<payments::PaymentSnapshot>>,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("stripe refused the request: {}", .0.message)]
    Stripe(Box<StripeFailure>),
    #[error("stripe timed out")]
    Timeout,
    #[error("stripe unreachable: {0}")]
    Unreachable(String),
    #[error("unreadable stripe response: {0}")]
    BadResponse(String),
    #[error("stripe client misconfigured: {0}")]
    Config(String),
}

impl From<StripeError> for GatewayError {
    fn from(err: StripeError) -> Self {
        match err {
            StripeError::Stripe(api, status) => GatewayError::Stripe(Box::new(StripeFailure {
                http_status: status,
                error_type: api.type_.as_str().to_owned(),
                code: api.code.map(|c| c.as_str().to_owned()),
                decline_code: api.decline_code,
                param: api.param,
                request_id: api
                    .request_log_url
                    .as_deref()
                    .and_then(request_id_of_log_url),
                message: api
                    .message
                    .unwrap_or_else(|| format!("Stripe answered with status {status}")),
                payment_intent: api.payment_intent.map(|pi| Box::new(pi.into())),
            })),
            StripeError::Timeout => GatewayError::Timeout,
            StripeError::ClientError(msg) => GatewayError::Unreachable(msg),
            StripeError::JSONDeserialize(msg) => GatewayError::BadResponse(msg),
            StripeError::ConfigError(msg) => GatewayError::Config(msg),
        }
    }
}

/// `req_...` out of `https://dashboard.stripe.com/<mode>/logs/req_...?t=...`.
fn request_id_of_log_url(url: &str) -> Option<String> {
    let last = url.split('?').next()?.rsplit('/').next()?;
    last.starts_with("req_").then(|| last.to_owned())
}

/// How a Stripe write is sent: with the current request's idempotency key for this step
/// (`<key>:<step>`, see `crate::idempotency`) when the client sent one, so a retried request
/// replays at Stripe instead of creating anything twice; once otherwise (the client's default).
pub(crate) fn idempotent(step: &str) -> RequestStrategy {
    crate::idempotency::stripe_key(step)
        .and_then(|key| IdempotencyKey::new(key).ok())
        .map_or(RequestStrategy::Once, RequestStrategy::Idempotent)
}

/// What we ask Stripe to create for a customer.
#[derive(Debug, Default)]
pub struct CustomerParams<'a> {
    pub email: Option<&'a str>,
    pub name: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub description: Option<&'a str>,
    pub metadata: HashMap<String, String>,
    /// A payment method (or test token) to attach and make the default for invoices.
    pub payment_method: Option<&'a str>,
}

/// What the mirror keeps of a customer, read from Stripe.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerSnapshot {
    pub id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub description: Option<String>,
    pub default_payment_method: Option<String>,
    pub metadata: HashMap<String, String>,
    pub deleted: bool,
}

impl From<Customer> for CustomerSnapshot {
    fn from(c: Customer) -> Self {
        Self {
            default_payment_method: c
                .invoice_settings
                .as_ref()
                .and_then(|s| s.default_payment_method.as_ref())
                .map(|pm| pm.id().to_string()),
            id: c.id.to_string(),
            email: c.email,
            name: c.name,
            phone: c.phone,
            description: c.description,
            metadata: c.metadata.unwrap_or_default(),
            deleted: false,
        }
    }
}

/// A created billing portal session, reduced to what we return.
#[derive(Debug, Clone)]
pub struct PortalSession {
    pub id: String,
    pub url: String,
    pub return_url: Option<String>,
    pub created: i64,
}

/// One tenant's Stripe client. Cheap to clone (the HTTP client is shared inside).
#[derive(Clone)]
pub struct StripeGateway {
    pub(crate) client: stripe::Client,
}

impl StripeGateway {
    pub fn new(
        secret_key: &str,
        api_base: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, GatewayError> {
        let mut builder = stripe::ClientBuilder::new(secret_key).timeout(timeout);
        if let Some(base) = api_base {
            builder = builder.url(base);
        }
        Ok(Self {
            client: builder.build()?,
        })
    }

    /// Any object as JSON, `path` being its URL under `/v1` (e.g. `/products/prod_1`): the
    /// receiver re-reads objects with it and reads them with the mirror's lenient parsers.
    pub async fn retrieve_json(&self, path: &str) -> Result<serde_json::Value, GatewayError> {
        use stripe_client_core::{RequestBuilder, StripeMethod};
        self.send_json(RequestBuilder::new(StripeMethod::Get, path), "retrieve")
            .await
    }

    /// Sends a request built with async-stripe's request builder and returns Stripe's answer
    /// as JSON, for objects we read with the mirror's lenient parsers instead of typed ones.
    /// A write carries the request's idempotency key for this `step` (see [`idempotent`]).
    pub(crate) async fn send_json(
        &self,
        request: stripe_client_core::RequestBuilder,
        step: &str,
    ) -> Result<serde_json::Value, GatewayError> {
        let write = matches!(request.method, stripe_client_core::StripeMethod::Post);
        let mut request = request.customize::<miniserde::json::Value>();
        if write {
            request = request.request_strategy(idempotent(step));
        }
        let object = request.send(&self.client).await?;
        serde_json::from_str(&miniserde::json::to_string(&object))
            .map_err(|err| GatewayError::BadResponse(err.to_string()))
    }

    pub async fn create_customer(
        &self,
        params: CustomerParams<'_>,
    ) -> Result<Customer, GatewayError> {
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
        Ok(request
            .customize()
            .request_strategy(idempotent("customer"))
            .send(&self.client)
            .await?)
    }

    /// Stripe's current state of a customer (a deleted one comes back with `deleted`).
    pub async fn retrieve_customer(&self, id: &str) -> Result<CustomerSnapshot, GatewayError> {
        use stripe_core::customer::{RetrieveCustomer, RetrieveCustomerReturned};
        Ok(match RetrieveCustomer::new(id).send(&self.client).await? {
            RetrieveCustomerReturned::Customer(c) => c.into(),
            RetrieveCustomerReturned::DeletedCustomer(d) => CustomerSnapshot {
                id: d.id.to_string(),
                email: None,
                name: None,
                phone: None,
                description: None,
                default_payment_method: None,
                metadata: HashMap::new(),
                deleted: true,
            },
        })
    }

    pub async fn create_portal_session(
        &self,
        stripe_customer_id: &str,
        return_url: &str,
    ) -> Result<PortalSession, GatewayError> {
        let session = CreateBillingPortalSession::new()
            .customer(stripe_customer_id)
            .return_url(return_url)
            .customize()
            .request_strategy(idempotent("portal_session"))
            .send(&self.client)
            .await?;
        Ok(PortalSession {
            id: session.id.to_string(),
            url: session.url,
            return_url: session.return_url,
            created: session.created,
        })
    }
}
