//! The HTTP side: one request checked in full (the page's rows and the total), then N workers
//! on one keep-alive client repeating the same `GET` for a fixed time, each answer timed to the
//! end of its body and checked for status 200 and the true total.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use serde_json::Value;

/// The first failures kept for the report.
const FAILURES_KEPT: usize = 10;

/// Where and as whom to ask.
#[derive(Clone)]
pub struct Target {
    pub url: String,
    pub api_key: String,
    pub token: String,
}

impl Target {
    fn get(&self, client: &reqwest::Client) -> reqwest::RequestBuilder {
        client
            .get(&self.url)
            .header("AppId", &self.api_key)
            .bearer_auth(&self.token)
    }
}

pub fn histogram() -> anyhow::Result<Histogram<u64>> {
    // 1 µs to 10 min, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).context("creating a latency histogram")
}

/// One `GET`, checked in full: status 200, `meta.total_count`, and the page's ids in order.
pub async fn check_page(
    client: &reqwest::Client,
    target: &Target,
    total: i64,
    expected_ids: &[String],
) -> anyhow::Result<()> {
    let response = target
        .get(client)
        .send()
        .await
        .with_context(|| format!("GET {}", target.url))?;
    let status = response.status();
    let body = response.text().await.context("reading the body")?;
    if status.as_u16() != 200 {
        bail!("GET {} answered {status}: {body}", target.url);
    }
    let body: Value =
        serde_json::from_str(&body).with_context(|| format!("GET {}: not JSON", target.url))?;
    let meta_total = body["meta"]["total_count"].as_i64();
    if meta_total != Some(total) {
        bail!(
            "GET {}: meta.total_count is {meta_total:?}, the database counts {total}",
            target.url
        );
    }
    let ids: Vec<&str> = body["data"]
        .as_array()
        .map(|items| items.iter().filter_map(|i| i["id"].as_str()).collect())
        .unwrap_or_default();
    if ids != expected_ids {
        bail!(
            "GET {}: the page's ids differ from the database's\n  service:  {ids:?}\n  database: {expected_ids:?}",
            target.url
        );
    }
    Ok(())
}

/// What every answer of a load must be: this status, with this text in its body.
#[derive(Clone)]
pub struct Expect {
    pub status: u16,
    pub needle: String,
}

impl Expect {
    /// A list page: 200 with the true total (serde_json writes `meta` compactly: a cheap
    /// check of every answer).
    pub fn page(total: i64) -> Expect {
        Expect {
            status: 200,
            needle: format!("\"total_count\":{total}"),
        }
    }
}

pub struct LoadResult {
    /// The status every answer should have.
    pub expected: u16,
    pub requests: u64,
    pub wall: Duration,
    /// Microseconds per request.
    pub latency: Histogram<u64>,
    pub statuses: BTreeMap<u16, u64>,
    pub transport_errors: u64,
    /// Answers of the expected status whose body does not carry the expected text (for a
    /// page: the true total).
    pub wrong_totals: u64,
    pub failures: Vec<String>,
}

impl LoadResult {
    pub fn errors(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(s, _)| **s != self.expected)
            .map(|(_, n)| n)
            .sum::<u64>()
            + self.transport_errors
            + self.wrong_totals
    }

    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    pub fn ms(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }
}

struct Worker {
    latency: Histogram<u64>,
    statuses: BTreeMap<u16, u64>,
    transport_errors: u64,
    wrong_totals: u64,
    failures: Vec<String>,
}

/// `connections` workers send the request back to back until `duration` has passed (a
/// request in flight then is finished and counted); each answer is checked against `expect`.
pub async fn run(
    client: &reqwest::Client,
    target: &Target,
    expect: &Expect,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let needle = Arc::new(expect.needle.clone());
    let expected = expect.status;
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (client, target, needle) = (client.clone(), target.clone(), needle.clone());
        let mut worker = Worker {
            latency: histogram()?,
            statuses: BTreeMap::new(),
            transport_errors: 0,
            wrong_totals: 0,
            failures: Vec::new(),
        };
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let sent = Instant::now();
                let answer = match target.get(&client).send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        response.text().await.map(|body| (status, body))
                    }
                    Err(err) => Err(err),
                };
                let micros = sent.elapsed().as_micros().max(1) as u64;
                match answer {
                    Ok((status, body)) => {
                        *worker.statuses.entry(status).or_default() += 1;
                        let _ = worker.latency.record(micros);
                        if status != expected {
                            if worker.failures.len() < FAILURES_KEPT {
                                let head: String = body.chars().take(300).collect();
                                worker.failures.push(format!("{status}: {head}"));
                            }
                        } else if !body.contains(needle.as_str()) {
                            worker.wrong_totals += 1;
                            if worker.failures.len() < FAILURES_KEPT {
                                worker.failures.push(format!(
                                    "{status} without {needle}: {}",
                                    body.chars().take(300).collect::<String>()
                                ));
                            }
                        }
                    }
                    Err(err) => {
                        worker.transport_errors += 1;
                        if worker.failures.len() < FAILURES_KEPT {
                            worker
                                .failures
                                .push(format!("transport: {:#}", anyhow::Error::from(err)));
                        }
                    }
                }
            }
            worker
        }));
    }
    let mut result = LoadResult {
        expected,
        requests: 0,
        wall: Duration::ZERO,
        latency: histogram()?,
        statuses: BTreeMap::new(),
        transport_errors: 0,
        wrong_totals: 0,
        failures: Vec::new(),
    };
    for task in tasks {
        let worker = task.await.context("a load worker panicked")?;
        result
            .latency
            .add(&worker.latency)
            .context("merging latencies")?;
        for (status, n) in worker.statuses {
            *result.statuses.entry(status).or_default() += n;
        }
        result.transport_errors += worker.transport_errors;
        result.wrong_totals += worker.wrong_totals;
        result.failures.extend(worker.failures);
    }
    result.wall = started.elapsed();
    result.requests = result.statuses.values().sum::<u64>() + result.transport_errors;
    result.failures.truncate(FAILURES_KEPT);
    Ok(result)
}
