//! How every Stripe call travels: async-stripe builds the request (path, query, form and
//! retry strategy), one HTTP client of the process sends it.
//!
//! async-stripe's own client (1.0.0-rc.10) keeps no idle connection
//! (`pool_max_idle_per_host(0)`): every call opened a new TCP connection, against Stripe a new
//! TLS handshake too, before the request could leave; and every client built (one per tenant
//! context, one per Stripe Apps token) loaded the system's CA bundle again, tens of
//! milliseconds of CPU each (docs/BENCHMARKS.md, issue 17). Here one `reqwest` client keeps
//! connections alive between calls, whichever tenant makes them, and sets TLS up once. The
//! headers are those async-stripe sends, the retry rule is its own (`RequestStrategy::test`),
//! and failures are its `StripeError`.

use std::sync::OnceLock;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use stripe::{RequestStrategy, StripeError};
use stripe_client_core::{Outcome, RequestBuilder, StripeMethod};

use super::GatewayError;

/// Where Stripe's API is when the settings name no other.
const STRIPE_API: &str = "https://api.stripe.com";

/// How long a connection may wait unused before it is closed: well under the keep-alive of
/// the servers in front of Stripe's API, so that a call seldom picks a connection the other
/// side is closing.
const IDLE: Duration = Duration::from_secs(30);

const AGENT: &str = concat!("sales-block/", env!("CARGO_PKG_VERSION"));

/// One way into Stripe: a key, the account it acts on (`Stripe-Account`), where the API is,
/// and how long each attempt may take. Cheap to clone: the HTTP client inside is shared.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// The API's address without a trailing `/` (`/v1/...` follows).
    base: String,
    /// `Bearer <key>`, never printed.
    secret: HeaderValue,
    account: Option<HeaderValue>,
    timeout: Duration,
}

/// The process's HTTP client for Stripe, built on first use.
fn shared() -> Result<reqwest::Client, GatewayError> {
    static HTTP: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    HTTP.get_or_init(|| {
        reqwest::Client::builder()
            .pool_idle_timeout(IDLE)
            // As async-stripe's client: Stripe never redirects, and no proxy is read from the
            // environment.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|err| format!("the HTTP client for Stripe could not be built: {err}"))
    })
    .clone()
    .map_err(GatewayError::Config)
}

impl Client {
    pub fn new(
        secret_key: &str,
        api_base: Option<&str>,
        account: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, GatewayError> {
        let base = api_base
            .unwrap_or(STRIPE_API)
            .trim_end_matches('/')
            .to_owned();
        let scheme = reqwest::Url::parse(&base)
            .map_err(|err| GatewayError::Config(format!("the Stripe API base is no URL: {err}")))?
            .scheme()
            .to_owned();
        if scheme != "http" && scheme != "https" {
            return Err(GatewayError::Config(format!(
                "the Stripe API base must be http or https, not {scheme}"
            )));
        }
        let mut secret = HeaderValue::try_from(format!("Bearer {secret_key}")).map_err(|_| {
            GatewayError::Config("a Stripe key can only hold visible ASCII characters".into())
        })?;
        secret.set_sensitive(true);
        let account = account
            .map(HeaderValue::try_from)
            .transpose()
            .map_err(|_| {
                GatewayError::Config(
                    "a Stripe account id can only hold visible ASCII characters".into(),
                )
            })?;
        Ok(Self {
            http: shared()?,
            base,
            secret,
            account,
            timeout,
        })
    }

    /// Sends `request` as `strategy` says (once, with its idempotency key, or again on the
    /// answers async-stripe's rule retries) and returns the successful answer's bytes.
    pub async fn send(
        &self,
        request: RequestBuilder,
        strategy: &RequestStrategy,
    ) -> Result<bytes::Bytes, StripeError> {
        let mut url = format!("{}/v1{}", self.base, request.path);
        if let Some(query) = &request.query {
            url.push('?');
            url.push_str(query);
        }
        let method = match request.method {
            StripeMethod::Get => reqwest::Method::GET,
            StripeMethod::Post => reqwest::Method::POST,
            StripeMethod::Delete => reqwest::Method::DELETE,
        };
        // One key for every attempt: a retried write replays at Stripe.
        let key = strategy.get_key();
        let mut tries = 0;
        let mut last_status = None;
        let mut last_should_retry = None;
        let mut last_error = StripeError::ClientError("the request strategy sends nothing".into());
        loop {
            match strategy.test(last_status, last_should_retry, tries) {
                Outcome::Stop => return Err(last_error),
                Outcome::Continue(Some(wait)) => tokio::time::sleep(wait).await,
                Outcome::Continue(None) => {}
            }
            tries += 1;
            let mut call = self
                .http
                .request(method.clone(), &url)
                .timeout(self.timeout)
                .header(AUTHORIZATION, self.secret.clone())
                .header(USER_AGENT, AGENT)
                .header("Stripe-Version", stripe_shared::version::VERSION.as_str());
            if let Some(account) = &self.account {
                call = call.header("Stripe-Account", account.clone());
            }
            if let Some(key) = &key {
                call = call.header("Idempotency-Key", key.as_str());
            }
            if let Some(body) = &request.body {
                call = call
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(body.clone());
            }
            let answer = async {
                let response = call.send().await?;
                let status = response.status().as_u16();
                let should_retry = response
                    .headers()
                    .get("Stripe-Should-Retry")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.parse::<bool>().ok());
                let bytes = response.bytes().await?;
                Ok::<_, reqwest::Error>((status, should_retry, bytes))
            }
            .await;
            let (status, should_retry, bytes) = match answer {
                Ok(parts) => parts,
                Err(err) => {
                    last_error = unreached(err);
                    continue;
                }
            };
            if (200..300).contains(&status) {
                return Ok(bytes);
            }
            last_error = refused(status, &bytes);
            last_status = Some(status);
            last_should_retry = should_retry;
        }
    }
}

/// A call that got no answer: a timeout, or why the connection failed (the URL left out: its
/// query may carry a customer's data).
fn unreached(err: reqwest::Error) -> StripeError {
    if err.is_timeout() {
        return StripeError::Timeout;
    }
    let err = err.without_url();
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    StripeError::ClientError(message)
}

/// Stripe's error object of a refused call, as async-stripe reads it.
fn refused(status: u16, bytes: &[u8]) -> StripeError {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return StripeError::JSONDeserialize("Stripe's error answer is not UTF-8".into());
    };
    miniserde::json::from_str::<stripe_shared::Error>(text).map_or_else(
        |_| {
            StripeError::JSONDeserialize(format!(
                "Stripe answered with status {status} and no error object"
            ))
        },
        |error| StripeError::Stripe(error.error, status),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_base_key_or_account_that_cannot_be_sent_is_a_configuration_error() {
        for base in ["not a url", "ftp://stripe.example"] {
            let built = Client::new("sk_test_1", Some(base), None, SECOND);
            assert!(matches!(built, Err(GatewayError::Config(_))), "{base}");
        }
        let built = Client::new("sk_test_\n1", None, None, SECOND);
        assert!(matches!(built, Err(GatewayError::Config(_))));
        let built = Client::new("sk_test_1", None, Some("acct_\u{7f}"), SECOND);
        assert!(matches!(built, Err(GatewayError::Config(_))));
        let client = Client::new("sk_test_1", Some("http://127.0.0.1:1/"), None, SECOND).unwrap();
        assert_eq!(client.base, "http://127.0.0.1:1");
        assert_eq!(
            Client::new("sk_test_1", None, None, SECOND).unwrap().base,
            STRIPE_API
        );
    }

    #[test]
    fn a_refusal_is_read_as_stripes_error_object() {
        let body = br#"{"error": {"type": "card_error", "code": "card_declined",
                        "message": "Your card was declined."}}"#;
        match refused(402, body) {
            StripeError::Stripe(error, 402) => {
                assert_eq!(error.type_.as_str(), "card_error");
                assert_eq!(error.message.as_deref(), Some("Your card was declined."));
            }
            other => panic!("{other:?}"),
        }
        for body in [&b"<html>bad gateway</html>"[..], &[0xff, 0xfe][..], b""] {
            assert!(matches!(
                refused(502, body),
                StripeError::JSONDeserialize(_)
            ));
        }
    }
}
