//! Emulator-wide state: one [`KeyState`] per secret key, so tests with different keys never
//! see each other's objects.
//!
//! Locking: the map of keys is locked only to fetch a key's `Arc`; a key's data is locked
//! only while a request is handled synchronously (never across an `.await`), so requests for
//! different keys run in parallel and one key's requests are serialised (which also makes
//! idempotency checks atomic).

pub mod data;
pub mod deliveries;
pub mod oauth;
pub mod runtime;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};

use crate::state::data::KeyData;
use crate::state::deliveries::KeyDelivery;
use crate::state::oauth::{ACCESS_TOKEN_LIFETIME_SECS, CODE_LIFETIME_SECS, OAuthState};
use crate::state::runtime::Deliverer;
use crate::sync::lock;

/// The whole emulator.
#[derive(Debug, Default)]
pub struct Emulator {
    /// Webhook delivery (its runtime and HTTP client).
    pub deliveries: Deliverer,
    keys: Mutex<HashMap<String, Arc<KeyState>>>,
    portal_pages: Mutex<HashMap<String, PortalPage>>,
    checkout_pages: Mutex<HashMap<String, CheckoutPage>>,
    payment_link_pages: Mutex<HashMap<String, CheckoutPage>>,
    oauth: Mutex<OAuthState>,
}

/// Where the hosted page of a checkout session (or of a payment link) finds it: the secret
/// key and `Stripe-Account` whose store holds the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutPage {
    /// The secret key the session was created with.
    pub key: String,
    /// The `Stripe-Account` (`""` for the key's own account).
    pub account: String,
}

/// What the hosted billing portal page of a session shows.
#[derive(Debug, Clone)]
pub struct PortalPage {
    /// The session id.
    pub session: String,
    /// The customer id.
    pub customer: String,
    /// Where "Return" leads, if set.
    pub return_url: Option<String>,
}

impl Emulator {
    /// The state of a secret key, created on first use.
    pub fn key_state(&self, key: &str) -> Arc<KeyState> {
        let mut keys = lock(&self.keys);
        if let Some(state) = keys.get(key) {
            return Arc::clone(state);
        }
        let livemode = key.starts_with("sk_live_") || key.starts_with("rk_live_");
        let state = Arc::new(KeyState::new(livemode));
        keys.insert(key.to_owned(), Arc::clone(&state));
        state
    }

    /// Registers the hosted page of a billing portal session under its URL secret.
    pub fn add_portal_page(&self, secret: String, page: PortalPage) {
        lock(&self.portal_pages).insert(secret, page);
    }

    /// The hosted page registered under `secret`.
    pub fn portal_page(&self, secret: &str) -> Option<PortalPage> {
        lock(&self.portal_pages).get(secret).cloned()
    }

    /// Registers the hosted page of a checkout session.
    pub fn add_checkout_page(&self, session: String, page: CheckoutPage) {
        lock(&self.checkout_pages).insert(session, page);
    }

    /// Where the checkout session `session` is kept, if it has a hosted page.
    pub fn checkout_page(&self, session: &str) -> Option<CheckoutPage> {
        lock(&self.checkout_pages).get(session).cloned()
    }

    /// Registers the hosted page of a payment link.
    pub fn add_payment_link_page(&self, link: String, page: CheckoutPage) {
        lock(&self.payment_link_pages).insert(link, page);
    }

    /// Where the payment link `link` is kept, if it has a hosted page.
    pub fn payment_link_page(&self, link: &str) -> Option<CheckoutPage> {
        lock(&self.payment_link_pages).get(link).cloned()
    }

    /// The OAuth state (clients, codes, tokens, connections). Locked briefly; never while
    /// a key's data is locked, and never across an `.await`.
    pub fn oauth(&self) -> MutexGuard<'_, OAuthState> {
        lock(&self.oauth)
    }
}

/// Test-only settings of one key (`POST /_emulator/config`).
#[derive(Debug)]
pub struct KeyConfig {
    latency_ms: AtomicU64,
    access_token_lifetime_secs: AtomicU64,
    code_lifetime_secs: AtomicU64,
    rate_limit_per_sec: AtomicU64,
    /// The `Retry-After` (whole seconds) of a request over the rate limit.
    retry_after_secs: AtomicU64,
    /// The current one-second window of the rate limit: (unix second, requests admitted).
    window: Mutex<(i64, u64)>,
    /// A `/v1` path every request to which is refused (a fault mode).
    pub fail_path: FaultPath,
    /// A `/v1` object every request to which, or to a path below it, is answered 404
    /// `resource_missing`, as if it had been deleted (a fault mode).
    pub missing_path: FaultPath,
    /// A `/v1` list every request to which is answered from its start, whatever its
    /// `starting_after` or `ending_before` say: its first page again and again (a fault
    /// mode: a list that never moves on).
    pub stuck_path: FaultPath,
    /// Spaces appended to every successful `/v1` answer (a fault mode: an answer of any size).
    answer_padding_bytes: AtomicU64,
}

impl Default for KeyConfig {
    fn default() -> Self {
        KeyConfig {
            latency_ms: AtomicU64::new(0),
            access_token_lifetime_secs: AtomicU64::new(ACCESS_TOKEN_LIFETIME_SECS),
            code_lifetime_secs: AtomicU64::new(CODE_LIFETIME_SECS),
            rate_limit_per_sec: AtomicU64::new(0),
            retry_after_secs: AtomicU64::new(1),
            window: Mutex::new((0, 0)),
            fail_path: FaultPath::default(),
            missing_path: FaultPath::default(),
            stuck_path: FaultPath::default(),
            answer_padding_bytes: AtomicU64::new(0),
        }
    }
}

impl KeyConfig {
    /// How long the Apps access tokens issued to this (platform) key live, in seconds.
    pub fn access_token_lifetime_secs(&self) -> u64 {
        self.access_token_lifetime_secs.load(Ordering::Relaxed)
    }

    /// Sets the lifetime of access tokens issued from now on.
    pub fn set_access_token_lifetime_secs(&self, secs: u64) {
        self.access_token_lifetime_secs
            .store(secs, Ordering::Relaxed);
    }

    /// How long the authorization codes of this key's clients live, in seconds.
    pub fn code_lifetime_secs(&self) -> u64 {
        self.code_lifetime_secs.load(Ordering::Relaxed)
    }

    /// Sets the lifetime of codes issued from now on.
    pub fn set_code_lifetime_secs(&self, secs: u64) {
        self.code_lifetime_secs.store(secs, Ordering::Relaxed);
    }

    /// Delay before answering each `/v1` request.
    pub fn latency_ms(&self) -> u64 {
        self.latency_ms.load(Ordering::Relaxed)
    }

    /// Sets the delay before answering each `/v1` request.
    pub fn set_latency_ms(&self, ms: u64) {
        self.latency_ms.store(ms, Ordering::Relaxed);
    }

    /// How many `/v1` requests of the key are answered per second (0: no limit).
    pub fn rate_limit_per_sec(&self) -> u64 {
        self.rate_limit_per_sec.load(Ordering::Relaxed)
    }

    /// Sets the rate limit (0: none); the current window starts afresh.
    pub fn set_rate_limit_per_sec(&self, n: u64) {
        self.rate_limit_per_sec.store(n, Ordering::Relaxed);
        *lock(&self.window) = (0, 0);
    }

    /// The `Retry-After` of a request over the rate limit, in whole seconds.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after_secs.load(Ordering::Relaxed)
    }

    /// Sets the `Retry-After` of requests over the rate limit (at least 1).
    pub fn set_retry_after_secs(&self, secs: u64) {
        self.retry_after_secs.store(secs.max(1), Ordering::Relaxed);
    }

    /// How many spaces are appended to every successful `/v1` answer.
    pub fn answer_padding_bytes(&self) -> u64 {
        self.answer_padding_bytes.load(Ordering::Relaxed)
    }

    /// Sets how many spaces are appended to every successful `/v1` answer (0: none).
    pub fn set_answer_padding_bytes(&self, bytes: u64) {
        self.answer_padding_bytes.store(bytes, Ordering::Relaxed);
    }

    /// Counts a `/v1` request at `now_ms` (unix milliseconds) against the rate limit:
    /// `None` if it may be served, else the whole seconds to wait (`Retry-After`).
    pub fn admit(&self, now_ms: i64) -> Option<u64> {
        let limit = self.rate_limit_per_sec();
        if limit == 0 {
            return None;
        }
        let second = now_ms.div_euclid(1000);
        let mut window = lock(&self.window);
        if window.0 != second {
            *window = (second, 0);
        }
        if window.1 < limit {
            window.1 += 1;
            None
        } else {
            Some(self.retry_after_secs())
        }
    }

    /// The settings as JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "object": "emulator.config",
            "latency_ms": self.latency_ms(),
            "rate_limit_per_sec": self.rate_limit_per_sec(),
            "retry_after_secs": self.retry_after_secs(),
            "fail_path": self.fail_path.get(),
            "missing_path": self.missing_path.get(),
            "stuck_path": self.stuck_path.get(),
            "answer_padding_bytes": self.answer_padding_bytes(),
            "access_token_lifetime_secs": self.access_token_lifetime_secs(),
            "code_lifetime_secs": self.code_lifetime_secs(),
        })
    }
}

/// The `/v1` path a fault mode applies to, if any.
#[derive(Debug, Default)]
pub struct FaultPath(Mutex<Option<String>>);

impl FaultPath {
    pub fn get(&self) -> Option<String> {
        lock(&self.0).clone()
    }

    /// Applies the mode to later requests to `path` (`None`: to none).
    pub fn set(&self, path: Option<String>) {
        *lock(&self.0) = path;
    }

    /// Whether a request to `path` is the mode's: the path itself, and with `below` any path
    /// under it too (`/v1/invoices/in_1/lines` under `/v1/invoices/in_1`).
    pub fn covers(&self, path: &str, below: bool) -> bool {
        lock(&self.0).as_deref().is_some_and(|mode| {
            path == mode
                || (below
                    && path
                        .strip_prefix(mode)
                        .is_some_and(|rest| rest.starts_with('/')))
        })
    }
}

/// Everything belonging to one secret key.
#[derive(Debug)]
pub struct KeyState {
    /// Test-only settings, readable without locking the data.
    pub config: KeyConfig,
    /// Webhook delivery state (settings, pause queue, recorded attempts), locked apart
    /// from the data.
    pub delivery: KeyDelivery,
    livemode: bool,
    data: Mutex<KeyData>,
}

impl KeyState {
    fn new(livemode: bool) -> Self {
        KeyState {
            config: KeyConfig::default(),
            delivery: KeyDelivery::default(),
            livemode,
            data: Mutex::new(KeyData::new(livemode)),
        }
    }

    /// Whether the key is a live-mode key.
    pub fn livemode(&self) -> bool {
        self.livemode
    }

    /// Locks the key's data. Do not hold the guard across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, KeyData> {
        lock(&self.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_isolated_and_shared_by_arc() {
        let emu = Emulator::default();
        let a = emu.key_state("sk_test_a");
        let a2 = emu.key_state("sk_test_a");
        let b = emu.key_state("sk_live_b");
        assert!(Arc::ptr_eq(&a, &a2));
        assert!(!Arc::ptr_eq(&a, &b));
        assert!(!a.livemode());
        assert!(b.livemode());
        a.config.set_rate_limit_per_sec(2);
        assert_eq!(a.config.admit(5_000), None);
        assert_eq!(a.config.admit(5_999), None);
        assert_eq!(a.config.admit(5_999), Some(1));
        assert_eq!(b.config.admit(5_999), None);
        assert_eq!(a.config.admit(6_000), None);
        a.config.set_retry_after_secs(4);
        assert_eq!(a.config.admit(6_001), None);
        assert_eq!(a.config.admit(6_002), Some(4));
        a.config.set_rate_limit_per_sec(0);
        assert_eq!(a.config.admit(6_000), None);
        a.config.set_latency_ms(5);
        assert_eq!(a2.config.latency_ms(), 5);
        assert_eq!(b.config.latency_ms(), 0);
        let mut data = a.lock();
        data.record(json!({"n": 1}));
        assert_eq!(data.requests().len(), 1);
        assert!(!data.store("").livemode);
        data.clear();
        assert!(data.requests().is_empty());
    }
}
