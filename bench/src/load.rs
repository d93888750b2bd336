//! The load: N workers over keep-alive HTTP, each taking the next delivery of the corpus in
//! order, signing it as Stripe does at send time, and timing the request to the end of the
//! response.

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

pub struct LoadResult {
    pub sent: usize,
    pub wall: Duration,
    /// Microseconds per request.
    pub latency: Histogram<u64>,
    pub statuses: BTreeMap<u16, u64>,
    pub transport_errors: u64,
    pub failures: Vec<String>,
    /// The time bound stopped the run before the corpus was exhausted.
    pub truncated: bool,
}

impl LoadResult {
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
    latency: Histogram<u64>,
    statuses: BTreeMap<u16, u64>,
    transport_errors: u64,
    failures: Vec<String>,
    sent: usize,
    truncated: bool,
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
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
    let next = Arc::new(AtomicUsize::new(0));
    let url = Arc::new(url);
    let secret = Arc::new(secret);
    let started = Instant::now();
    let mut workers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (client, url, secret, deliveries, next) = (
            client.clone(),
            url.clone(),
            secret.clone(),
            deliveries.clone(),
            next.clone(),
        );
        let mut w = Worker {
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
                let t = chrono::Utc::now().timestamp();
                let signature = stripe_signature(&delivery.body, &secret, t)?;
                let begin = Instant::now();
                let response = client
                    .post(url.as_str())
                    .header("content-type", "application/json; charset=utf-8")
                    .header("stripe-signature", signature)
                    .body(delivery.body.clone())
                    .send()
                    .await;
                w.sent += 1;
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
                        w.transport_errors += 1;
                        if w.failures.len() < FAILURES_KEPT {
                            w.failures
                                .push(format!("delivery #{i} {}: {err}", delivery.event_id));
                        }
                    }
                }
            }
            anyhow::Ok(w)
        }));
    }
    let mut result = LoadResult {
        sent: 0,
        wall: Duration::ZERO,
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
    }
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
