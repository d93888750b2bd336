//! [`StripeApi`] over async-stripe: its request builders make every request, and every answer
//! is read as JSON by [`objects`]' parsers (the same reading an event payload gets).

mod catalog;
mod checkout;
mod customers;
mod payments;
mod proxy;
mod subscriptions;
mod transport;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use stripe::{IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_client_core::{RequestBuilder, StripeMethod};
use transport::Client;

pub use transport::MAX_ANSWER_BYTES;
pub use webhooks::is_known_event_type;

use super::objects::{
    self, CheckoutSnapshot, CreatedEndpoint, CustomerSnapshot, EndpointState, PaymentLinkSnapshot,
    PaymentMethodSnapshot, PaymentSnapshot, PortalSession, PriceSnapshot, ProductSnapshot,
    RefundSnapshot, SubscriptionSnapshot,
};
use super::requests::{
    CustomerChange, CustomerParams, NewCheckout, NewPayment, NewPaymentLink, NewProduct,
    NewProductPrice, NewRefund, NewSubscription, PaymentConfirmation, PaymentLinkChange,
    PriceChange, ProductChange, SubscriptionChange,
};
use super::{GatewayError, Key, StripeApi, StripeFailure};

/// One tenant's Stripe client. Cheap to clone (the HTTP client is shared inside).
#[derive(Clone)]
pub struct LiveStripe {
    access: Access,
}

/// How the calls reach the tenant's account.
#[derive(Clone)]
enum Access {
    /// A secret key: the tenant's own, or the platform's with `Stripe-Account` (Connect).
    Client(Box<Client>),
    /// Stripe Apps: an OAuth access token that expires and is refreshed.
    Tokens(Arc<TokenClient>),
    /// Disconnected: every call is refused without reaching Stripe.
    Disconnected,
}

/// Where a Stripe Apps tenant's access token comes from (`crate::services::connect`): it
/// stores the token, refreshes it once at a time across instances, and marks the tenant
/// disconnected when Stripe refuses the refresh.
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// A current access token (refreshed first when it is about to expire).
    async fn token(&self) -> Result<String, GatewayError>;
    /// `stale` was refused as expired: a newer token, refreshing it unless another call
    /// (here or in another instance) already has.
    async fn refresh(&self, stale: &str) -> Result<String, GatewayError>;
}

/// A Stripe Apps tenant's client: the client of its current access token, rebuilt when the
/// token changes.
struct TokenClient {
    source: Arc<dyn TokenSource>,
    api_base: Option<String>,
    timeout: Duration,
    current: std::sync::Mutex<Option<(String, Client)>>,
}

impl TokenClient {
    fn client_for(&self, token: &str) -> Result<Client, GatewayError> {
        let mut current = self
            .current
            .lock()
            .map_err(|_| GatewayError::Config("token client lock poisoned".into()))?;
        if let Some((known, client)) = current.as_ref()
            && known == token
        {
            return Ok(client.clone());
        }
        let client = Client::new(token, self.api_base.as_deref(), None, self.timeout)?;
        *current = Some((token.to_owned(), client.clone()));
        Ok(client)
    }
}

/// The same request again (a retry with a refreshed token).
fn copy_request(request: &RequestBuilder) -> RequestBuilder {
    RequestBuilder {
        query: request.query.clone(),
        body: request.body.clone(),
        path: request.path.clone(),
        method: request.method,
    }
}

impl LiveStripe {
    /// With a secret key (the tenant's own).
    pub fn new(
        secret_key: &str,
        api_base: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, GatewayError> {
        Ok(Self {
            access: Access::Client(Box::new(Client::new(secret_key, api_base, None, timeout)?)),
        })
    }

    /// With the platform's key, acting on a connected account (`Stripe-Account`).
    pub fn connected(
        platform_key: &str,
        account: &str,
        api_base: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, GatewayError> {
        Ok(Self {
            access: Access::Client(Box::new(Client::new(
                platform_key,
                api_base,
                Some(account),
                timeout,
            )?)),
        })
    }

    /// With Stripe Apps access tokens from `source`.
    pub fn with_tokens(
        source: Arc<dyn TokenSource>,
        api_base: Option<&str>,
        timeout: Duration,
    ) -> Self {
        Self {
            access: Access::Tokens(Arc::new(TokenClient {
                source,
                api_base: api_base.map(str::to_owned),
                timeout,
                current: std::sync::Mutex::new(None),
            })),
        }
    }

    /// A disconnected tenant's: every call answers [`GatewayError::NotConnected`].
    pub fn disconnected() -> Self {
        Self {
            access: Access::Disconnected,
        }
    }

    /// Sends a request and returns Stripe's answer as JSON. A write (any method but GET)
    /// carries the request's key for this `step` (see [`strategy`]).
    async fn send_json(
        &self,
        request: RequestBuilder,
        key: Key<'_>,
        step: &str,
    ) -> Result<serde_json::Value, GatewayError> {
        self.send_json_as(request, key, step, Parse::Whole).await
    }

    /// [`Self::send_json`], the answer parsed as `parse` says.
    async fn send_json_as(
        &self,
        request: RequestBuilder,
        key: Key<'_>,
        step: &str,
        parse: Parse,
    ) -> Result<serde_json::Value, GatewayError> {
        let write = !matches!(request.method, StripeMethod::Get);
        let started = std::time::Instant::now();
        let answer = self
            .send_with(request, write.then(|| strategy(key, step)), parse)
            .await;
        let outcome = match &answer {
            Ok(_) => "ok",
            Err(GatewayError::Stripe(failure)) => {
                if let Some(id) = &failure.request_id {
                    crate::telemetry::record_stripe_request(id);
                }
                "refused"
            }
            Err(GatewayError::Timeout) => "timeout",
            Err(GatewayError::Unreachable(_)) => "unreachable",
            Err(GatewayError::BadResponse(_) | GatewayError::Config(_)) => "error",
            Err(GatewayError::NotConnected) => "not_connected",
        };
        crate::metrics::stripe_call(step, outcome, started);
        answer
    }

    /// Sends a request with the given strategy (the client's default without one). A Stripe
    /// Apps token refused as expired is refreshed and the request sent once more.
    async fn send_with(
        &self,
        request: RequestBuilder,
        strategy: Option<RequestStrategy>,
        parse: Parse,
    ) -> Result<serde_json::Value, GatewayError> {
        match &self.access {
            Access::Client(client) => send_on(client, request, strategy, parse).await,
            Access::Disconnected => Err(GatewayError::NotConnected),
            Access::Tokens(tokens) => {
                let token = tokens.source.token().await?;
                let client = tokens.client_for(&token)?;
                let retry = copy_request(&request);
                match send_on(&client, request, strategy.clone(), parse).await {
                    Err(GatewayError::Stripe(failure)) if failure.http_status == 401 => {
                        let fresh = tokens.source.refresh(&token).await?;
                        let client = tokens.client_for(&fresh)?;
                        send_on(&client, retry, strategy, parse).await
                    }
                    answer => answer,
                }
            }
        }
    }

    /// Sends one of async-stripe's typed requests and reads the answer with `read`.
    async fn send<R: StripeRequest, T>(
        &self,
        request: &R,
        key: Key<'_>,
        step: &str,
        read: fn(&serde_json::Value) -> Option<T>,
    ) -> Result<T, GatewayError> {
        let object = self.send_json(request.build(), key, step).await?;
        read_as(&object, read, step)
    }

    /// A form-encoded POST to `path` (`/v1` left out), read with `read`.
    async fn post<F: serde::Serialize, T>(
        &self,
        path: &str,
        form: &F,
        key: Key<'_>,
        step: &str,
        read: fn(&serde_json::Value) -> Option<T>,
    ) -> Result<T, GatewayError> {
        let request = RequestBuilder::new(StripeMethod::Post, path).form(form);
        let object = self.send_json(request, key, step).await?;
        read_as(&object, read, step)
    }
}

fn read_as<T>(
    object: &serde_json::Value,
    read: fn(&serde_json::Value) -> Option<T>,
    step: &str,
) -> Result<T, GatewayError> {
    read(object).ok_or_else(|| {
        GatewayError::BadResponse(format!("Stripe's answer to {step} lacks a required field"))
    })
}

/// Sends a request on `client` and returns Stripe's answer as JSON, its bytes read once, by
/// serde_json (async-stripe's `send` would read them with miniserde first).
async fn send_on(
    client: &Client,
    request: RequestBuilder,
    strategy: Option<RequestStrategy>,
    parse: Parse,
) -> Result<serde_json::Value, GatewayError> {
    let strategy = strategy.unwrap_or(RequestStrategy::Once);
    let bytes = client.send(request, &strategy).await?;
    match parse {
        Parse::Whole => serde_json::from_slice(&bytes),
        Parse::List(keep) => keep.list_from_slice(&bytes),
    }
    .map_err(|err| GatewayError::BadResponse(err.to_string()))
}

/// How an answer is parsed: whole, or as a list page whose entries keep only what their
/// reader reads ([`objects::Fields`]).
#[derive(Debug, Clone, Copy)]
enum Parse {
    Whole,
    List(&'static objects::Fields),
}

/// How a Stripe write is sent: with the request's key for this step when the client sent one,
/// so a retried request replays at Stripe instead of creating anything twice; once otherwise
/// (the client's default).
fn strategy(key: Key<'_>, step: &str) -> RequestStrategy {
    key.and_then(|key| IdempotencyKey::new(key.for_step(step)).ok())
        .map_or(RequestStrategy::Once, RequestStrategy::Idempotent)
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
                // async-stripe does not expose the `Request-Id` header: read from the error's
                // `request_log_url`.
                request_id: api
                    .request_log_url
                    .as_deref()
                    .and_then(request_id_of_log_url),
                message: api
                    .message
                    .unwrap_or_else(|| format!("Stripe answered with status {status}")),
                payment_intent: api
                    .payment_intent
                    .map(|pi| Box::new(payments::declined_intent(pi))),
                // Read from the answer's headers by the transport.
                retry_after: None,
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

#[async_trait]
impl StripeApi for LiveStripe {
    async fn retrieve_json(&self, path: &str) -> Result<serde_json::Value, GatewayError> {
        self.send_json(
            RequestBuilder::new(StripeMethod::Get, path),
            None,
            "retrieve",
        )
        .await
    }

    async fn list_json(
        &self,
        path: &str,
        query: &[(String, String)],
        keep: &'static objects::Fields,
    ) -> Result<serde_json::Value, GatewayError> {
        let mut request = RequestBuilder::new(StripeMethod::Get, path);
        if !query.is_empty() {
            request.query = Some(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(query)
                    .finish(),
            );
        }
        self.send_json_as(request, None, "list", Parse::List(keep))
            .await
    }

    async fn create_customer(
        &self,
        params: CustomerParams<'_>,
        key: Key<'_>,
    ) -> Result<CustomerSnapshot, GatewayError> {
        customers::create(self, params, key).await
    }

    async fn retrieve_customer(&self, id: &str) -> Result<CustomerSnapshot, GatewayError> {
        customers::retrieve(self, id).await
    }

    async fn update_customer(
        &self,
        id: &str,
        change: &CustomerChange,
        key: Key<'_>,
    ) -> Result<CustomerSnapshot, GatewayError> {
        customers::update(self, id, change, key).await
    }

    async fn delete_customer(
        &self,
        id: &str,
        key: Key<'_>,
    ) -> Result<CustomerSnapshot, GatewayError> {
        customers::delete(self, id, key).await
    }

    async fn create_portal_session(
        &self,
        customer: &str,
        return_url: &str,
        key: Key<'_>,
    ) -> Result<PortalSession, GatewayError> {
        customers::portal_session(self, customer, return_url, key).await
    }

    async fn attach_card(
        &self,
        payment_method: &str,
        customer: &str,
        default: bool,
        key: Key<'_>,
    ) -> Result<PaymentMethodSnapshot, GatewayError> {
        customers::attach_card(self, payment_method, customer, default, key).await
    }

    async fn detach_card(
        &self,
        payment_method: &str,
        key: Key<'_>,
    ) -> Result<PaymentMethodSnapshot, GatewayError> {
        customers::detach_card(self, payment_method, key).await
    }

    async fn create_product(
        &self,
        new: &NewProduct,
        key: Key<'_>,
    ) -> Result<ProductSnapshot, GatewayError> {
        catalog::create_product(self, new, key).await
    }

    async fn create_product_price(
        &self,
        new: &NewProductPrice,
        key: Key<'_>,
    ) -> Result<PriceSnapshot, GatewayError> {
        catalog::create_price(self, new, key).await
    }

    async fn create_payment_link(
        &self,
        new: &NewPaymentLink,
        key: Key<'_>,
    ) -> Result<PaymentLinkSnapshot, GatewayError> {
        catalog::create_payment_link(self, new, key).await
    }

    async fn update_product(
        &self,
        id: &str,
        change: &ProductChange,
        key: Key<'_>,
    ) -> Result<ProductSnapshot, GatewayError> {
        catalog::update_product(self, id, change, key).await
    }

    async fn update_price(
        &self,
        id: &str,
        change: &PriceChange,
        key: Key<'_>,
    ) -> Result<PriceSnapshot, GatewayError> {
        catalog::update_price(self, id, change, key).await
    }

    async fn update_payment_link(
        &self,
        id: &str,
        change: &PaymentLinkChange,
        key: Key<'_>,
    ) -> Result<PaymentLinkSnapshot, GatewayError> {
        catalog::update_payment_link(self, id, change, key).await
    }

    async fn create_checkout_session(
        &self,
        new: NewCheckout,
        key: Key<'_>,
    ) -> Result<CheckoutSnapshot, GatewayError> {
        checkout::create(self, new, key).await
    }

    async fn retrieve_checkout_session(&self, id: &str) -> Result<CheckoutSnapshot, GatewayError> {
        checkout::retrieve(self, id).await
    }

    async fn create_payment_intent(
        &self,
        new: NewPayment,
        key: Key<'_>,
    ) -> Result<PaymentSnapshot, GatewayError> {
        payments::create(self, new, key).await
    }

    async fn confirm_payment_intent(
        &self,
        id: &str,
        confirmation: PaymentConfirmation,
        key: Key<'_>,
    ) -> Result<PaymentSnapshot, GatewayError> {
        payments::confirm(self, id, confirmation, key).await
    }

    async fn retrieve_payment_intent(&self, id: &str) -> Result<PaymentSnapshot, GatewayError> {
        payments::retrieve(self, id).await
    }

    async fn create_refund(
        &self,
        new: &NewRefund,
        key: Key<'_>,
    ) -> Result<RefundSnapshot, GatewayError> {
        payments::refund(self, new, key).await
    }

    async fn create_subscription(
        &self,
        new: NewSubscription,
        key: Key<'_>,
    ) -> Result<SubscriptionSnapshot, GatewayError> {
        subscriptions::create(self, new, key).await
    }

    async fn retrieve_subscription(&self, id: &str) -> Result<SubscriptionSnapshot, GatewayError> {
        subscriptions::retrieve(self, id).await
    }

    async fn update_subscription(
        &self,
        id: &str,
        change: SubscriptionChange,
        key: Key<'_>,
    ) -> Result<SubscriptionSnapshot, GatewayError> {
        subscriptions::update(self, id, change, key).await
    }

    async fn cancel_subscription(
        &self,
        id: &str,
        key: Key<'_>,
    ) -> Result<SubscriptionSnapshot, GatewayError> {
        subscriptions::cancel(self, id, key).await
    }

    async fn update_webhook_endpoint(
        &self,
        id: &str,
        disabled: Option<bool>,
        events: Option<&[String]>,
        key: Key<'_>,
    ) -> Result<EndpointState, GatewayError> {
        webhooks::update_endpoint(self, id, disabled, events, key).await
    }

    async fn delete_webhook_endpoint(&self, id: &str, key: Key<'_>) -> Result<(), GatewayError> {
        webhooks::delete_endpoint(self, id, key).await
    }

    async fn create_webhook_endpoint(
        &self,
        url: &str,
        events: &[String],
        key: Key<'_>,
    ) -> Result<CreatedEndpoint, GatewayError> {
        webhooks::create_endpoint(self, url, events, key).await
    }

    async fn proxy(
        &self,
        method: super::fetch::FetchMethod,
        path: &super::fetch::FetchPath,
        params: &serde_json::Map<String, serde_json::Value>,
        key: Key<'_>,
    ) -> Result<serde_json::Value, GatewayError> {
        proxy::send(self, method, path, params, key).await
    }
}
