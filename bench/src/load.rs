//! The load: N workers over keep-alive HTTP, each taking the next delivery of the corpus in
//! order, signing it as Stripe does at send time, and timing the request to the end of the
//! response; what became of each delivery is kept (acknowledged or not), so a caller can send
//! the rest again as Stripe retries them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::corpus::Delivery;

/// `t=<unix>,v1=hex(HMAC-SHA256(secret, "<t>.<body>"))`: Stripe's `Stripe-Signature`.
pub fn stripe_signature(body: &str, secret: &str, t: i64) -> anyhow::Result<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|err| anyhow::anyhow!("HMAC key: {err}"))?;
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    Ok(format!(
        "t={t},v1={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

/// The first failures kept for the report.
const FAILURES_KEPT: usize = 20;

/// How a load is driven.
#[derive(Debug, Clone)]
pub struct Options {
    pub connections: usize,
    /// Upper bound on the run (it stops by itself).
    pub max_time: Duration,
    /// A worker whose delivery was not acknowledged waits this long before taking the next
    /// one, as a sender backs off from a service that is down (zero: at once).
    pub pause_after_failure: Duration,
    /// Counts acknowledged deliveries as they come, for a caller acting mid-load.
    pub acknowledged: Option<Arc<AtomicUsize>>,
}

impl Options {
    pub fn new(connections: usize, max_time: Duration) -> Self {
        Self {
            connections,
            max_time,
            pause_after_failure: Duration::ZERO,
            acknowledged: None,
        }
    }
}

/// What became of one delivery.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Its index in the deliveries of the run.
    pub index: usize,
    /// When it was sent, from the start of the run.
    pub sent_at: Duration,
    /// How long until the answer (or the error).
    pub latency: Duration,
    /// The answer's status; `None` for a transport error.
    pub status: Option<u16>,
    /// A 2xx answer read to its end: Stripe counts the delivery done.
    pub acknowledged: bool,
}

impl Outcome {
    /// When the answer (or the error) came, from the start of the run.
    pub fn answered_at(&self) -> Duration {
        self.sent_at + self.latency
    }
}

pub struct LoadResult {
    pub sent: usize,
    pub wall: Duration,
    /// When the run started ([`Outcome`]'s times count from here).
    pub started: Instant,
    /// One per delivery sent, in index order.
    pub outcomes: Vec<Outcome>,
    /// Microseconds per request.
    pub latency: Histogram<u64>,
    pub statuses: BTreeMap<u16, u64>,
    pub transport_errors: u64,
    pub failures: Vec<String>,
    /// The time bound stopped the run before the corpus was exhausted.
    pub truncated: bool,
}

impl LoadResult {
    /// Indices of the deliveries not acknowledged, sent or not (the time bound may have
    /// stopped the run first): what Stripe would send again.
    pub fn unacknowledged(&self, deliveries: usize) -> Vec<usize> {
        let mut acked = vec![false; deliveries];
        for o in &self.outcomes {
            if o.acknowledged
                && let Some(a) = acked.get_mut(o.index)
            {
                *a = true;
            }
        }
        (0..deliveries).filter(|&i| !acked[i]).collect()
    }

    pub fn non_2xx(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(s, _)| !(200..300).contains(*s))
            .map(|(_, n)| n)
            .sum::<u64>()
            + self.transport_errors
    }
}

struct Worker {
    outcomes: Vec<Outcome>,
    latency: Histogram<u64>,
    statuses: BTreeMap<u16, u64>,
    transport_errors: u64,
    failures: Vec<String>,
    sent: usize,
    truncated: bool,
}

pub fn histogram() -> anyhow::Result<Histogram<u64>> {
    // 1 µs to 10 min, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).context("creating a latency histogram")
}

pub async fn run(
    client: reqwest::Client,
    url: String,
    secret: String,
    deliveries: Arc<Vec<Delivery>>,
    connections: usize,
    max_time: Duration,
) -> anyhow::Result<LoadResult> {
    let options = Options::new(connections, max_time);
    run_with(client, url, secret, deliveries, &options).await
}

/// POSTs `body` to `url` signed with `secret` now, as Stripe delivers an event.
pub fn deliver(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    body: &str,
) -> anyhow::Result<reqwest::RequestBuilder> {
    let signature = stripe_signature(body, secret, chrono::Utc::now().timestamp())?;
    Ok(client
        .post(url)
        .header("content-type", "application/json; charset=utf-8")
        .header("stripe-signature", signature)
        .body(body.to_owned()))
}

/// [`run`] with more ways to drive it (see [`Options`]).
pub async fn run_with(
    client: reqwest::Client,
    url: String,
    secret: String,
    deliveries: Arc<Vec<Delivery>>,
    options: &Options,
) -> anyhow::Result<LoadResult> {
    let (connections, max_time) = (options.connections, options.max_time);
    let pause = options.pause_after_failure;
    let next = Arc::new(AtomicUsize::new(0));
    let url = Arc::new(url);
    let secret = Arc::new(secret);
    let started = Instant::now();
    let mut workers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (client, url, secret, deliveries, next, acknowledged) = (
            client.clone(),
            url.clone(),
            secret.clone(),
            deliveries.clone(),
            next.clone(),
            options.acknowledged.clone(),
        );
        let mut w = Worker {
            outcomes: Vec::new(),
            latency: histogram()?,
            statuses: BTreeMap::new(),
            transport_errors: 0,
            failures: Vec::new(),
            sent: 0,
            truncated: false,
        };
        workers.push(tokio::spawn(async move {
            loop {
                if started.elapsed() > max_time {
                    w.truncated = true;
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(delivery) = deliveries.get(i) else {
                    break;
                };
                let request = deliver(&client, &url, &secret, &delivery.body)?;
                let begin = Instant::now();
                let response = request.send().await;
                w.sent += 1;
                let mut outcome = Outcome {
                    index: i,
                    sent_at: begin.duration_since(started),
                    latency: Duration::ZERO,
                    status: None,
                    acknowledged: false,
                };
                match response {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let body = response.bytes().await;
                        let elapsed = begin.elapsed();
                        w.latency.saturating_record(
                            u64::try_from(elapsed.as_micros())
                                .unwrap_or(u64::MAX)
                                .max(1),
                        );
                        *w.statuses.entry(status).or_default() += 1;
                        let ok = (200..300).contains(&status) && body.is_ok();
                        outcome.latency = elapsed;
                        outcome.status = Some(status);
                        outcome.acknowledged = ok;
                        if !ok && w.failures.len() < FAILURES_KEPT {
                            let text = body
                                .map(|b| String::from_utf8_lossy(&b).chars().take(300).collect())
                                .unwrap_or_else(|err| format!("(body not read: {err})"));
                            w.failures.push(format!(
                                "delivery #{i} {}: HTTP {status} {text}",
                                delivery.event_id
                            ));
                        }
                    }
                    Err(err) => {
                        outcome.latency = begin.elapsed();
                        w.transport_errors += 1;
                        if w.failures.len() < FAILURES_KEPT {
                            w.failures
                                .push(format!("delivery #{i} {}: {err}", delivery.event_id));
                        }
                    }
                }
                w.outcomes.push(outcome);
                if outcome.acknowledged {
                    if let Some(counter) = &acknowledged {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                } else if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
            anyhow::Ok(w)
        }));
    }
    let mut result = LoadResult {
        sent: 0,
        wall: Duration::ZERO,
        started,
        outcomes: Vec::new(),
        latency: histogram()?,
        statuses: BTreeMap::new(),
        transport_errors: 0,
        failures: Vec::new(),
        truncated: false,
    };
    for worker in workers {
        let w = worker.await.context("a load worker panicked")??;
        result.sent += w.sent;
        result
            .latency
            .add(&w.latency)
            .context("merging latency histograms")?;
        for (status, n) in w.statuses {
            *result.statuses.entry(status).or_default() += n;
        }
        result.transport_errors += w.transport_errors;
        result.failures.extend(w.failures);
        result.truncated |= w.truncated;
        result.outcomes.extend(w.outcomes);
    }
    result.outcomes.sort_unstable_by_key(|o| o.index);
    result.wall = started.elapsed();
    result.failures.truncate(FAILURES_KEPT);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_stripes_scheme() {
        // HMAC-SHA256("whsec_test", "1700000000.{}"), computed independently.
        let sig = stripe_signature("{}", "whsec_test", 1_700_000_000).unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"whsec_test").unwrap();
        mac.update(b"1700000000.{}");
        let expected = hex::encode(mac.finalize().into_bytes());
        assert_eq!(sig, format!("t=1700000000,v1={expected}"));
    }
}
