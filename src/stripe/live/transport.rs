//! How every Stripe call travels: async-stripe builds the request (path, query, form and
//! retry strategy), one HTTP client of the process sends it.
//!
//! async-stripe's own client (1.0.0-rc.10) keeps no idle connection
//! (`pool_max_idle_per_host(0)`): every call opened a new TCP connection, against Stripe a new
//! TLS handshake too, before the request could leave; and every client built (one per tenant
//! context, one per Stripe Apps token) loaded the system's CA bundle again, tens of
//! milliseconds of CPU each (docs/BENCHMARKS.md, issue 17). Here one `reqwest` client keeps
//! connections alive between calls, whichever tenant makes them, and reads the CA bundle once.
//! The headers are async-stripe's (but our own `User-Agent`), the retry rule is its own
//! (`RequestStrategy::test`), and Stripe's error objects are read as its `StripeError`. A
//! refusal also keeps Stripe's `Retry-After`, which async-stripe's client dropped (a sync
//! waits for it, `crate::sync`), and a 429 or 5xx without Stripe's error object (a proxy's, an
//! HTML page) is still a refusal with its status, which a sync retries.
//!
//! One client per thread, all sharing one TLS setup: a connection is driven by the runtime
//! that opened it, and each actix worker has a runtime of its own, stopped before the sync's
//! at shutdown; a pool shared across runtimes would hand the sync connections driven by a
//! busy, or stopped, worker.

use std::cell::RefCell;
use std::sync::OnceLock;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use stripe::{RequestStrategy, StripeError};
use stripe_client_core::{Outcome, RequestBuilder, StripeMethod};

use super::{GatewayError, StripeFailure};
use crate::bounded::ReadError;
use crate::stripe::STRIPE_API;

/// How long a connection may wait unused before it is closed: reused within a burst of calls
/// (a sync's pages, a checkout's steps), closed by us before a server's usual keep-alive
/// (60 s and more at common load balancers) ends it under a request.
const IDLE: Duration = Duration::from_secs(30);

/// The largest answer read from Stripe (64 MiB). A page of 100 invoices, each with 10
/// embedded lines and every one of them carrying Stripe's most metadata (50 keys of 500
/// characters), is about 30 MB; typical pages are well under 1 MiB. Whatever sends more (a
/// proxy gone wrong, a misconfigured API base) is refused as it streams in, not buffered
/// until memory runs out.
pub const MAX_ANSWER_BYTES: usize = 64 << 20;

const AGENT: &str = concat!("sales-block/", env!("CARGO_PKG_VERSION"));

/// One way into Stripe: a key, the account it acts on (`Stripe-Account`), where the API is,
/// and how long each attempt may take. Cheap to clone: the HTTP client inside is shared.
#[derive(Clone)]
pub struct Client {
    /// The API's address without a trailing `/` (`/v1/...` follows).
    base: String,
    /// `Bearer <key>`, never printed.
    secret: HeaderValue,
    account: Option<HeaderValue>,
    timeout: Duration,
}

/// The TLS setup every thread's client shares (the CA bundle read once).
fn tls() -> Result<native_tls::TlsConnector, GatewayError> {
    static TLS: OnceLock<Result<native_tls::TlsConnector, String>> = OnceLock::new();
    TLS.get_or_init(|| {
        native_tls::TlsConnector::new()
            .map_err(|err| format!("TLS for Stripe could not be set up: {err}"))
    })
    .clone()
    .map_err(GatewayError::Config)
}

thread_local! {
    static HTTP: RefCell<Option<reqwest::Client>> = const { RefCell::new(None) };
}

/// This thread's HTTP client for Stripe, built on first use.
fn http() -> Result<reqwest::Client, GatewayError> {
    HTTP.with(|http| {
        if let Some(client) = http.borrow().as_ref() {
            return Ok(client.clone());
        }
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls()?)
            .pool_idle_timeout(IDLE)
            // As async-stripe's client: Stripe never redirects, and no proxy is read from the
            // environment.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|err| {
                GatewayError::Config(format!(
                    "the HTTP client for Stripe could not be built: {err}"
                ))
            })?;
        *http.borrow_mut() = Some(client.clone());
        Ok(client)
    })
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
            .trim()
            .trim_end_matches('/')
            .to_owned();
        let url = reqwest::Url::parse(&base)
            .map_err(|err| GatewayError::Config(format!("the Stripe API base is no URL: {err}")))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(GatewayError::Config(format!(
                "the Stripe API base must be http or https, not {}",
                url.scheme()
            )));
        }
        // `/v1/...` is appended to it: a query or fragment would swallow the path.
        if url.query().is_some() || url.fragment().is_some() {
            return Err(GatewayError::Config(
                "the Stripe API base must have no query or fragment".into(),
            ));
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
    ) -> Result<bytes::Bytes, GatewayError> {
        let http = http()?;
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
        let mut last_error = GatewayError::Config("the request strategy sends nothing".into());
        loop {
            match strategy.test(last_status, last_should_retry, tries) {
                Outcome::Stop => return Err(last_error),
                Outcome::Continue(Some(wait)) => tokio::time::sleep(wait).await,
                Outcome::Continue(None) => {}
            }
            tries += 1;
            let mut call = http
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
                let response = call.send().await.map_err(unreached)?;
                let status = response.status().as_u16();
                let header = |name: &str| {
                    response
                        .headers()
                        .get(name)
                        .and_then(|value| value.to_str().ok())
                        .map(str::trim)
                };
                let should_retry = header("Stripe-Should-Retry").and_then(|v| v.parse().ok());
                // Whole seconds (the HTTP date form is not read: Stripe sends seconds).
                let retry_after = header("Retry-After")
                    .and_then(|v| v.parse().ok())
                    .map(Duration::from_secs);
                let bytes = crate::bounded::read_body(response, MAX_ANSWER_BYTES)
                    .await
                    .map_err(|err| match err {
                        ReadError::TooLarge(limit) => GatewayError::BadResponse(format!(
                            "Stripe's answer is larger than {limit} bytes"
                        )),
                        ReadError::Read(err) => unreached(err),
                    })?;
                Ok::<_, GatewayError>((
                    status,
                    should_retry,
                    retry_after,
                    bytes::Bytes::from(bytes),
                ))
            }
            .await;
            let (status, should_retry, retry_after, bytes) = match answer {
                Ok(parts) => parts,
                // Asking again would bring the same answer.
                Err(err @ GatewayError::BadResponse(_)) => return Err(err),
                Err(err) => {
                    last_error = err;
                    continue;
                }
            };
            if (200..300).contains(&status) {
                return Ok(bytes);
            }
            last_error = refused(status, &bytes, retry_after);
            last_status = Some(status);
            last_should_retry = should_retry;
        }
    }
}

/// A call that got no answer: a timeout, or why the connection failed (the URL left out: its
/// query may carry a customer's data).
fn unreached(err: reqwest::Error) -> GatewayError {
    if err.is_timeout() {
        return GatewayError::Timeout;
    }
    let err = err.without_url();
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    GatewayError::Unreachable(message)
}

/// A refused call: Stripe's error object as async-stripe reads it, with the `Retry-After`
/// Stripe sent. A 429 or 5xx without one (from something between us and Stripe) is still a
/// refusal with its status; any other answer without one is unreadable.
fn refused(status: u16, bytes: &[u8], retry_after: Option<Duration>) -> GatewayError {
    let read = std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| miniserde::json::from_str::<stripe_shared::Error>(text).ok());
    let mut failed = match read {
        Some(error) => GatewayError::from(StripeError::Stripe(error.error, status)),
        None if status == 429 || status >= 500 => GatewayError::Stripe(Box::new(StripeFailure {
            http_status: status,
            error_type: "api_error".into(),
            code: None,
            decline_code: None,
            param: None,
            message: format!("Stripe answered {status} without an error object"),
            request_id: None,
            payment_intent: None,
            retry_after: None,
        })),
        None => {
            return GatewayError::BadResponse(format!(
                "Stripe answered {status} without an error object"
            ));
        }
    };
    if let GatewayError::Stripe(failure) = &mut failed {
        failure.retry_after = retry_after;
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_base_key_or_account_that_cannot_be_sent_is_a_configuration_error() {
        for base in [
            "not a url",
            "ftp://stripe.example",
            "http://stripe.example/?x=1",
            "http://stripe.example#top",
        ] {
            let built = Client::new("sk_test_1", Some(base), None, SECOND);
            assert!(matches!(built, Err(GatewayError::Config(_))), "{base}");
        }
        let built = Client::new("sk_test_\n1", None, None, SECOND);
        assert!(matches!(built, Err(GatewayError::Config(_))));
        let built = Client::new("sk_test_1", None, Some("acct_\u{7f}"), SECOND);
        assert!(matches!(built, Err(GatewayError::Config(_))));
        let client = Client::new("sk_test_1", Some("http://127.0.0.1:1/"), None, SECOND).unwrap();
        assert_eq!(client.base, "http://127.0.0.1:1");
        let client = Client::new("sk_test_1", Some(" http://h/stripe/ "), None, SECOND).unwrap();
        assert_eq!(client.base, "http://h/stripe");
        assert_eq!(
            Client::new("sk_test_1", None, None, SECOND).unwrap().base,
            STRIPE_API
        );
    }

    #[test]
    fn a_refusal_is_read_as_stripes_error_object_with_its_retry_after() {
        let body = br#"{"error": {"type": "card_error", "code": "card_declined",
                        "message": "Your card was declined."}}"#;
        match refused(402, body, None) {
            GatewayError::Stripe(failure) => {
                assert_eq!(failure.http_status, 402);
                assert_eq!(failure.error_type, "card_error");
                assert_eq!(failure.code.as_deref(), Some("card_declined"));
                assert_eq!(failure.message, "Your card was declined.");
            }
            other => panic!("{other:?}"),
        }
        let wait = Some(Duration::from_secs(3));
        let body = br#"{"error": {"type": "invalid_request_error", "code": "rate_limit"}}"#;
        match refused(429, body, wait) {
            GatewayError::Stripe(failure) => assert_eq!(failure.retry_after, wait),
            other => panic!("{other:?}"),
        }
        // A proxy's 429 or 5xx is still a refusal a sync retries; a 4xx page is unreadable.
        for (status, body) in [
            (429, &b""[..]),
            (502, b"<html>bad gateway</html>"),
            (500, &[0xff, 0xfe]),
        ] {
            match refused(status, body, wait) {
                GatewayError::Stripe(failure) => {
                    assert_eq!(failure.http_status, status);
                    assert_eq!(failure.retry_after, wait);
                }
                other => panic!("{status}: {other:?}"),
            }
        }
        assert!(matches!(
            refused(403, b"<html>forbidden</html>", None),
            GatewayError::BadResponse(_)
        ));
    }
}
