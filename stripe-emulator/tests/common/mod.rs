//! Helpers shared by the integration tests.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of these helpers"
)]

use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::Value;
use stripe_emulator::EmulatorHandle;

/// A fresh secret key, so each test has its own state.
pub fn test_key() -> String {
    let suffix: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("sk_test_{suffix}")
}

/// Runs an async test body on a current-thread tokio runtime in a thread with a 64 MiB
/// stack: async-stripe's objects are large (a `Charge` is 16 KB, an error 21 KB), and a
/// long test holding many of them across awaits overflows the default 2 MiB test stack in
/// debug builds.
pub fn big_stack<F, Fut>(make: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let thread = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(make());
        })
        .expect("test thread starts");
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

/// Starts an emulator on a free loopback port.
pub async fn start() -> EmulatorHandle {
    stripe_emulator::spawn("127.0.0.1:0")
        .await
        .expect("emulator starts")
}

/// The real async-stripe client, pointed at the emulator.
pub fn client(emulator: &EmulatorHandle, key: &str) -> stripe::Client {
    stripe::ClientBuilder::new(key)
        .url(emulator.base_url())
        .build()
        .expect("client builds")
}

/// A raw HTTP client for protocol-level checks.
pub struct Raw {
    pub base: String,
    pub key: String,
    pub http: reqwest::Client,
}

/// A raw response: status, headers, body text and body JSON (Null if not JSON).
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Raw {
    pub fn new(emulator: &EmulatorHandle, key: &str) -> Self {
        Raw {
            base: emulator.base_url(),
            key: key.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    pub async fn send(&self, builder: reqwest::RequestBuilder) -> Reply {
        let response = builder.send().await.expect("request is answered");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body reads");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            json,
        }
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key)
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.request(reqwest::Method::DELETE, path)).await
    }

    pub async fn post(&self, path: &str, form: &str) -> Reply {
        self.send(
            self.request(reqwest::Method::POST, path)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form.to_owned()),
        )
        .await
    }

    pub async fn post_idempotent(&self, path: &str, form: &str, key: &str) -> Reply {
        self.send(
            self.request(reqwest::Method::POST, path)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("idempotency-key", key)
                .body(form.to_owned()),
        )
        .await
    }

    pub async fn set_latency(&self, ms: u64) {
        let reply = self
            .send(
                self.request(reqwest::Method::POST, "/_emulator/config")
                    .header("content-type", "application/json")
                    .body(format!("{{\"latency_ms\": {ms}}}")),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json["latency_ms"], ms);
    }
}

/// Metadata from literal pairs.
pub fn metadata(pairs: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The Stripe error of a failed call: (error, HTTP status).
pub fn stripe_error<T: std::fmt::Debug>(
    result: Result<T, stripe::StripeError>,
) -> (stripe_shared::ApiErrors, u16) {
    match result {
        Err(stripe::StripeError::Stripe(error, status)) => (*error, status),
        other => panic!("expected a Stripe error, got {other:?}"),
    }
}
