//! What a key keeps for webhook delivery: its retry settings, the events waiting while
//! deliveries are paused, each endpoint's worker, and the record of every attempt. The
//! sending itself is [`crate::delivery`]'s.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::json::str_field;
use crate::sync::lock;

/// The retry settings of one key (`POST /_emulator/delivery/config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// Wait before the first retry; each later retry waits twice as long.
    pub retry_base_ms: u64,
    /// Longest wait between two attempts.
    pub retry_max_ms: u64,
    /// Attempts per event and endpoint, the first included.
    pub max_attempts: u32,
    /// How long one attempt may take (connecting, sending, reading the answer).
    pub timeout_ms: u64,
    /// Fault mode: every attempt fails without reaching the endpoint (recorded as failed and
    /// retried on the usual schedule), as when the receiver is down.
    pub fail: bool,
    /// Fault mode: attempts due before this unix time are lost (not sent, not retried;
    /// the event stays pending), as when Stripe gave up during an outage. 0: none.
    pub drop_until: i64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            retry_base_ms: 1_000,
            retry_max_ms: 60_000,
            max_attempts: 8,
            timeout_ms: 10_000,
            fail: false,
            drop_until: 0,
        }
    }
}

impl DeliveryConfig {
    /// The wait after failed attempt `attempt` (1-based) before the next one.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let factor = 1u64 << attempt.saturating_sub(1).min(40);
        Duration::from_millis(
            self.retry_base_ms
                .saturating_mul(factor)
                .min(self.retry_max_ms),
        )
    }

    /// The settings as JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "retry_base_ms": self.retry_base_ms,
            "retry_max_ms": self.retry_max_ms,
            "max_attempts": self.max_attempts,
            "timeout_ms": self.timeout_ms,
            "fail": self.fail,
            "drop_until": if self.drop_until > 0 { json!(self.drop_until) } else { Value::Null },
        })
    }
}

/// Attempts remembered per key for `GET /_emulator/deliveries` (oldest dropped first).
pub const MAX_RECORDED_ATTEMPTS: usize = 10_000;

/// One delivery of one event to one endpoint (its first attempt and retries).
#[derive(Debug)]
pub(crate) struct Job {
    /// The account whose store holds the event.
    pub(crate) event_account: String,
    pub(crate) event_id: String,
    pub(crate) event_type: String,
    pub(crate) target: Target,
    pub(crate) body: Arc<str>,
    pub(crate) redelivery: bool,
    /// The key's delivery generation when queued: `DELETE /_emulator/data` drops older
    /// jobs.
    pub(crate) generation: u64,
    /// Told the record of the first attempt (for flush).
    pub(crate) first_done: Option<oneshot::Sender<Value>>,
}

/// The delivery state of one key.
#[derive(Debug, Default)]
pub struct KeyDelivery {
    pub(crate) inner: Mutex<KeyDeliveryInner>,
}

#[derive(Debug, Default)]
pub(crate) struct KeyDeliveryInner {
    pub(crate) config: DeliveryConfig,
    pub(crate) paused: bool,
    pub(crate) queued: Vec<Job>,
    pub(crate) attempts: VecDeque<Value>,
    pub(crate) workers: HashMap<Target, mpsc::UnboundedSender<Job>>,
    pub(crate) generation: u64,
}

impl KeyDelivery {
    /// The retry settings.
    pub fn config(&self) -> DeliveryConfig {
        lock(&self.inner).config
    }

    /// Changes the retry settings (for attempts scheduled from now on).
    pub fn set_config(&self, config: DeliveryConfig) {
        lock(&self.inner).config = config;
    }

    /// Whether deliveries are paused, and how many wait.
    pub fn status(&self) -> (bool, usize) {
        let inner = lock(&self.inner);
        (inner.paused, inner.queued.len())
    }

    /// The recorded attempts, oldest first, optionally of one event and/or endpoint.
    pub fn attempts(&self, event: Option<&str>, endpoint: Option<&str>) -> Vec<Value> {
        lock(&self.inner)
            .attempts
            .iter()
            .filter(|a| event.is_none_or(|e| str_field(a, "event") == Some(e)))
            .filter(|a| endpoint.is_none_or(|e| str_field(a, "endpoint") == Some(e)))
            .cloned()
            .collect()
    }

    /// Forgets the recorded attempts.
    pub fn clear_attempts(&self) {
        lock(&self.inner).attempts.clear();
    }

    /// Forgets queued deliveries and recorded attempts, and drops the retries and queued
    /// first attempts of earlier events (for `DELETE /_emulator/data`).
    pub fn reset(&self) {
        let mut inner = lock(&self.inner);
        inner.queued.clear();
        inner.attempts.clear();
        inner.generation += 1;
    }

    pub(crate) fn generation(&self) -> u64 {
        lock(&self.inner).generation
    }

    pub(crate) fn record(&self, attempt: Value) {
        let mut inner = lock(&self.inner);
        if inner.attempts.len() >= MAX_RECORDED_ATTEMPTS {
            inner.attempts.pop_front();
        }
        inner.attempts.push_back(attempt);
    }
}

/// Where a webhook endpoint is kept: the account (`""` for the key's own) and its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The account whose store holds the endpoint.
    pub account: String,
    /// The endpoint id (`we_...`).
    pub endpoint: String,
}

/// An event to deliver to some endpoints.
#[derive(Debug, Clone)]
pub struct Dispatch {
    /// The account whose store holds the event.
    pub account: String,
    /// The event id.
    pub event_id: String,
    /// The event type.
    pub event_type: String,
    /// The exact body to POST.
    pub body: Arc<str>,
    /// The endpoints to deliver to.
    pub targets: Vec<Target>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_up_to_the_cap() {
        let config = DeliveryConfig::default();
        let waits: Vec<u64> = (1..=8)
            .map(|n| u64::try_from(config.delay_after(n).as_millis()).unwrap())
            .collect();
        assert_eq!(
            waits,
            [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]
        );
        let huge = DeliveryConfig {
            retry_base_ms: u64::MAX,
            ..config
        };
        assert_eq!(huge.delay_after(200), Duration::from_millis(60_000));
    }
}
