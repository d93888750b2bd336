//! Webhook delivery: POSTing each event to the endpoints that want it, signed as Stripe
//! signs, retried with back-off, every attempt recorded.
//!
//! - The request: `POST <url>` with the event's JSON as stored when it was created, headers
//!   `Content-Type: application/json; charset=utf-8`, `User-Agent: Stripe/1.0
//!   (+https://stripe.com/docs/webhooks)`, `Cache-Control: no-cache`, `Accept: */*;
//!   q=0.5, application/xml` and `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=...]`:
//!   one `v1` per live signing secret of the endpoint, newest first, each the hex
//!   HMAC-SHA256 of `"<t>.<body>"` ([`signature_header`]). Every attempt signs afresh (a
//!   fresh `t`, the secrets live at that moment).
//! - Order: one worker per endpoint makes first attempts one at a time, in the order the
//!   events were created (or flushed); a failed delivery's retries run beside it, so one
//!   failing event never holds back the others (as with Stripe).
//! - Retries: a non-2xx answer or a connection error is retried after
//!   `retry_base_ms × 2^(n-1)` (capped at `retry_max_ms`) until `max_attempts` attempts
//!   were made ([`DeliveryConfig`](crate::state::deliveries::DeliveryConfig): 1 s doubling up to 60 s, 8 attempts, 10 s timeout).
//!   A deleted or disabled endpoint gets no further attempt.
//! - Bookkeeping: a 2xx takes the endpoint off the event's `pending_webhooks`; every
//!   attempt is recorded for `GET /_emulator/deliveries`.
//! - Threads: deliveries run on a runtime of their own (one thread, started on first use),
//!   never on the threads serving requests and never holding a key's lock across the HTTP
//!   call; stopping the emulator stops them all.
//! - Test controls per key: pause (events queue up), flush the queue now in the order
//!   queued or reversed, redeliver an event, the retry settings, and two fault modes:
//!   `fail` (every attempt fails without reaching the endpoint, and is retried) and
//!   `drop_until` (attempts due before that time are lost for good).

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::{mpsc, oneshot};

use crate::events::record::mark_delivered;
use crate::json::str_field;
use crate::objects::webhook_endpoints;
use crate::state::KeyState;
use crate::state::deliveries::{Dispatch, Job, KeyDeliveryInner, Target};
use crate::state::runtime::Deliverer;
use crate::store::kinds;
use crate::sync::lock;

/// `User-Agent` of every delivery, as Stripe sends it.
pub const USER_AGENT: &str = "Stripe/1.0 (+https://stripe.com/docs/webhooks)";

/// `Content-Type` of every delivery.
pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// How long an endpoint's worker waits for work before it ends.
const WORKER_IDLE: Duration = Duration::from_secs(60);

/// `Stripe-Signature` for `body` sent at `t`: `t=<t>` then one `v1=<hex>` per secret, in
/// the order given (newest first).
pub fn signature_header(t: i64, body: &str, secrets: &[String]) -> String {
    let mut header = format!("t={t}");
    for secret in secrets {
        // HMAC takes keys of any length, so this cannot fail.
        if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
            mac.update(t.to_string().as_bytes());
            mac.update(b".");
            mac.update(body.as_bytes());
            header.push_str(",v1=");
            header.push_str(&hex::encode(mac.finalize().into_bytes()));
        }
    }
    header
}

impl Deliverer {
    /// Delivers the events of `dispatches` (from [`commit`](crate::events::record::commit)) to their endpoints,
    /// or queues them while the key's deliveries are paused.
    pub fn enqueue(&self, state: &Arc<KeyState>, dispatches: Vec<Dispatch>, redelivery: bool) {
        if dispatches.is_empty() {
            return;
        }
        let mut inner = lock(&state.delivery.inner);
        for dispatch in dispatches {
            for target in dispatch.targets {
                let job = Job {
                    event_account: dispatch.account.clone(),
                    event_id: dispatch.event_id.clone(),
                    event_type: dispatch.event_type.clone(),
                    target,
                    body: Arc::clone(&dispatch.body),
                    redelivery,
                    generation: inner.generation,
                    first_done: None,
                };
                if inner.paused {
                    inner.queued.push(job);
                } else {
                    self.hand_to_worker(state, &mut inner, job);
                }
            }
        }
    }

    /// Gives `job` to its endpoint's worker, starting one if there is none.
    fn hand_to_worker(&self, state: &Arc<KeyState>, inner: &mut KeyDeliveryInner, job: Job) {
        let job = match inner.workers.get(&job.target) {
            Some(worker) => match worker.send(job) {
                Ok(()) => return,
                Err(mpsc::error::SendError(job)) => job,
            },
            None => job,
        };
        let target = job.target.clone();
        let (sender, receiver) = mpsc::unbounded_channel();
        if sender.send(job).is_err() {
            return;
        }
        inner.workers.insert(target.clone(), sender);
        let state = Arc::clone(state);
        self.spawn(move |client| worker(state, target, receiver, client));
    }

    /// Pauses or resumes the key's deliveries; resuming sends the queued ones in order.
    pub fn set_paused(&self, state: &Arc<KeyState>, paused: bool) {
        let mut inner = lock(&state.delivery.inner);
        inner.paused = paused;
        if !paused {
            for job in std::mem::take(&mut inner.queued) {
                self.hand_to_worker(state, &mut inner, job);
            }
        }
    }

    /// Sends the queued deliveries now (reversed if `reverse`), and answers the record of
    /// each one's first attempt, in the order sent (`{"error": ...}` for one that could not
    /// be made, e.g. because the emulator stopped). The key stays paused.
    pub async fn flush(&self, state: &Arc<KeyState>, reverse: bool) -> Vec<Value> {
        let waits: Vec<oneshot::Receiver<Value>> = {
            let mut inner = lock(&state.delivery.inner);
            let mut jobs = std::mem::take(&mut inner.queued);
            if reverse {
                jobs.reverse();
            }
            jobs.into_iter()
                .map(|mut job| {
                    let (sender, receiver) = oneshot::channel();
                    job.first_done = Some(sender);
                    self.hand_to_worker(state, &mut inner, job);
                    receiver
                })
                .collect()
        };
        let mut results = Vec::with_capacity(waits.len());
        for wait in waits {
            results.push(wait.await.unwrap_or_else(|_| {
                json!({"object": "emulator.delivery_attempt", "error": "the delivery was dropped"})
            }));
        }
        results
    }
}

/// Delivers the jobs of one endpoint, first attempts one at a time; ends after
/// [`WORKER_IDLE`] without work.
async fn worker(
    state: Arc<KeyState>,
    target: Target,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    client: reqwest::Client,
) {
    loop {
        let job = match tokio::time::timeout(WORKER_IDLE, jobs.recv()).await {
            Ok(Some(job)) => job,
            Ok(None) => return,
            Err(_) => {
                // Idle: leave, unless work came in meanwhile (senders hold the same lock).
                let mut inner = lock(&state.delivery.inner);
                match jobs.try_recv() {
                    Ok(job) => job,
                    Err(_) => {
                        inner.workers.remove(&target);
                        return;
                    }
                }
            }
        };
        deliver(&state, &client, job).await;
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Done,
    RetryAfter(Duration),
}

/// Makes the first attempt of `job`, then schedules its retries beside the worker.
async fn deliver(state: &Arc<KeyState>, client: &reqwest::Client, mut job: Job) {
    let (record, next) = attempt(state, client, &job, 1).await;
    if let Some(first_done) = job.first_done.take() {
        let _ = first_done.send(record);
    }
    if let Next::RetryAfter(delay) = next {
        let state = Arc::clone(state);
        let client = client.clone();
        tokio::spawn(async move {
            let mut delay = delay;
            let mut number = 2;
            loop {
                tokio::time::sleep(delay).await;
                match attempt(&state, &client, &job, number).await.1 {
                    Next::Done => return,
                    Next::RetryAfter(next) => delay = next,
                }
                number += 1;
            }
        });
    }
}

/// Where and how to send, read from the endpoint as it is now.
enum Destination {
    Send { url: String, secrets: Vec<String> },
    Gone(&'static str),
}

fn destination(state: &KeyState, target: &Target, now: i64) -> Destination {
    let data = state.lock();
    let Some(store) = data.existing_store(&target.account) else {
        return Destination::Gone("the webhook endpoint was deleted");
    };
    let Some(endpoint) = store.get_live(kinds::WEBHOOK_ENDPOINT, &target.endpoint) else {
        return Destination::Gone("the webhook endpoint was deleted");
    };
    if str_field(&endpoint.object, "status") != Some("enabled") {
        return Destination::Gone("the webhook endpoint is disabled");
    }
    Destination::Send {
        url: str_field(&endpoint.object, "url")
            .unwrap_or_default()
            .to_owned(),
        secrets: webhook_endpoints::signing_secrets(store, &target.endpoint, now),
    }
}

/// Makes attempt `number` of `job`, records it, and says what comes next.
async fn attempt(
    state: &Arc<KeyState>,
    client: &reqwest::Client,
    job: &Job,
    number: u32,
) -> (Value, Next) {
    let delivery = &state.delivery;
    if job.generation != delivery.generation() {
        let record =
            json!({"object": "emulator.delivery_attempt", "error": "the key's data was deleted"});
        return (record, Next::Done);
    }
    let config = delivery.config();
    let now = chrono::Utc::now();
    let t = now.timestamp();
    let mut record = json!({
        "object": "emulator.delivery_attempt",
        "event": job.event_id,
        "type": job.event_type,
        "endpoint": job.target.endpoint,
        "account": if job.target.account.is_empty() { Value::Null } else { json!(job.target.account) },
        "attempt": number,
        "redelivery": job.redelivery,
        "created": t,
        "at_ms": now.timestamp_millis(),
    });
    if t < config.drop_until {
        for (key, value) in [
            ("succeeded", json!(false)),
            ("status", Value::Null),
            ("dropped", json!(true)),
            (
                "error",
                json!("dropped by the emulator's fault mode (drop_until)"),
            ),
            ("next_retry_in_ms", Value::Null),
        ] {
            set(&mut record, key, value);
        }
        delivery.record(record.clone());
        return (record, Next::Done);
    }
    if config.fail {
        let next = if number >= config.max_attempts {
            Next::Done
        } else {
            Next::RetryAfter(config.delay_after(number))
        };
        for (key, value) in [
            ("succeeded", json!(false)),
            ("status", Value::Null),
            ("error", json!("failed by the emulator's fault mode (fail)")),
            ("next_retry_in_ms", retry_json(next)),
        ] {
            set(&mut record, key, value);
        }
        delivery.record(record.clone());
        return (record, next);
    }
    let (url, secrets) = match destination(state, &job.target, t) {
        Destination::Send { url, secrets } => (url, secrets),
        Destination::Gone(why) => {
            set(&mut record, "succeeded", json!(false));
            set(&mut record, "status", Value::Null);
            set(&mut record, "error", json!(why));
            set(&mut record, "next_retry_in_ms", Value::Null);
            delivery.record(record.clone());
            return (record, Next::Done);
        }
    };
    let signature = signature_header(t, &job.body, &secrets);
    let sent = client
        .post(&url)
        .timeout(Duration::from_millis(config.timeout_ms))
        .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
        .header(reqwest::header::USER_AGENT, USER_AGENT)
        .header(reqwest::header::ACCEPT, "*/*; q=0.5, application/xml")
        .header(reqwest::header::CACHE_CONTROL, "no-cache")
        .header("Stripe-Signature", &signature)
        .body(job.body.to_string())
        .send()
        .await;
    let (status, error) = match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            // Reading the answer lets the connection be reused.
            let _ = response.bytes().await;
            (Some(status), None)
        }
        Err(error) => (None, Some(describe(&error))),
    };
    let succeeded = status.is_some_and(|s| (200..300).contains(&s));
    let next = if succeeded || number >= config.max_attempts {
        Next::Done
    } else {
        Next::RetryAfter(config.delay_after(number))
    };
    for (key, value) in [
        ("url", json!(url)),
        ("signature", json!(signature)),
        ("status", json!(status)),
        ("error", json!(error)),
        ("succeeded", json!(succeeded)),
        ("next_retry_in_ms", retry_json(next)),
    ] {
        set(&mut record, key, value);
    }
    delivery.record(record.clone());
    if succeeded {
        let mut data = state.lock();
        mark_delivered(&mut data, &job.event_account, &job.event_id, &job.target);
    }
    (record, next)
}

/// `next_retry_in_ms` of an attempt record.
fn retry_json(next: Next) -> Value {
    match next {
        Next::RetryAfter(delay) => json!(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)),
        Next::Done => Value::Null,
    }
}

fn set(record: &mut Value, key: &str, value: Value) {
    if let Some(map) = record.as_object_mut() {
        map.insert(key.to_owned(), value);
    }
}

/// A connection error in a few words.
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_builder() {
        "invalid URL"
    } else {
        "request failed"
    };
    let mut message = kind.to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_stripe() {
        // Expected values computed with Python's `hmac.new(secret, b"1700000000.{}",
        // hashlib.sha256).hexdigest()`.
        let header = signature_header(
            1_700_000_000,
            "{}",
            &["whsec_new".to_owned(), "whsec_old".to_owned()],
        );
        assert_eq!(
            header,
            "t=1700000000,\
             v1=dfd0c4ddb107e3a391f1dc89c9ba0bec585e31e42f82d6c6673f3d9b3a3429a8,\
             v1=2a630fb62d83c712b7c3b6fc1dec6df3ef803228a2223a912c109f39e17c6983"
        );
        assert_eq!(signature_header(5, "x", &[]), "t=5");
    }
}
