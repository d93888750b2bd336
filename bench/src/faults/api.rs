//! A tenant's caller of the JSON:API routes, and what one call saw: status, time, and whether
//! an error came as a JSON:API `errors` document of that status.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

#[derive(Clone)]
pub struct Caller {
    pub base_url: String,
    pub api_key: String,
    pub token: String,
    pub http: reqwest::Client,
}

/// One call's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// `None`: no answer (transport error or the client's own timeout).
    pub status: Option<u16>,
    pub latency: Duration,
    /// When the call started, from the epoch the caller gave.
    pub at: Duration,
    /// The body was a JSON:API `errors` document whose first error has the answer's status.
    pub jsonapi_error: bool,
    /// The first error's `code`, if any.
    pub code: Option<String>,
}

impl Answer {
    pub fn ok(&self) -> bool {
        matches!(self.status, Some(200..=299))
    }

    pub fn ended_at(&self) -> Duration {
        self.at + self.latency
    }
}

/// A client for the suite's calls: no proxy, keep-alive, and a time bound of its own far past
/// any deadline of the service (an answer missing at that bound is a hang).
pub fn client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(timeout)
        .build()?)
}

impl Caller {
    /// Sends `method path` (with a JSON body) as the tenant's admin; times it from `epoch`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        epoch: Instant,
    ) -> Answer {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .header("AppId", &self.api_key)
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let started = Instant::now();
        let at = started.duration_since(epoch);
        let mut answer = Answer {
            status: None,
            latency: Duration::ZERO,
            at,
            jsonapi_error: false,
            code: None,
        };
        if let Ok(response) = request.send().await {
            let status = response.status().as_u16();
            let body = response.bytes().await;
            answer.latency = started.elapsed();
            let Ok(body) = body else {
                return answer;
            };
            answer.status = Some(status);
            if let Ok(json) = serde_json::from_slice::<Value>(&body) {
                let first = &json["errors"][0];
                answer.jsonapi_error = first["status"].as_str() == Some(&status.to_string());
                answer.code = first["code"].as_str().map(str::to_owned);
            }
        } else {
            answer.latency = started.elapsed();
        }
        answer
    }
}

/// Calls `method path` (with `body`) one after another, every `every` at most, until `stop`
/// is set; returns the answers.
pub fn probe(
    caller: Caller,
    path: &str,
    body: Option<Value>,
    every: Duration,
    epoch: Instant,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<Vec<Answer>> {
    let method = if body.is_some() {
        Method::POST
    } else {
        Method::GET
    };
    let path = path.to_owned();
    tokio::spawn(async move {
        let mut answers = Vec::new();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            tick.tick().await;
            answers.push(
                caller
                    .call(method.clone(), &path, body.as_ref(), epoch)
                    .await,
            );
        }
        answers
    })
}

/// Answers by status (`0`: no answer), e.g. `{200: 51, 503: 12}`.
pub fn by_status<'a>(
    answers: impl IntoIterator<Item = &'a Answer>,
) -> std::collections::BTreeMap<u16, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for a in answers {
        *counts.entry(a.status.unwrap_or(0)).or_default() += 1;
    }
    counts
}

/// The latencies of `answers` as a histogram (µs).
pub fn latencies<'a>(
    answers: impl IntoIterator<Item = &'a Answer>,
) -> anyhow::Result<hdrhistogram::Histogram<u64>> {
    let mut h = sales_bench::load::histogram()?;
    for a in answers {
        h.saturating_record(
            u64::try_from(a.latency.as_micros())
                .unwrap_or(u64::MAX)
                .max(1),
        );
    }
    Ok(h)
}

/// The samples of `GET /metrics` whose series starts with `prefix`.
pub async fn metrics(
    http: &reqwest::Client,
    base_url: &str,
    prefix: &str,
) -> anyhow::Result<Vec<String>> {
    let text = http
        .get(format!("{base_url}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(str::to_owned)
        .collect())
}

/// Writes `name,at_ms,latency_ms,status` lines of each list of answers to `path` (kept with
/// the logs of a failed scenario, for a closer look).
pub fn write_timeline(path: &std::path::Path, lists: &[(&str, &[Answer])]) -> anyhow::Result<()> {
    let mut text = String::from("probe,at_ms,latency_ms,status\n");
    for (name, list) in lists {
        for a in *list {
            text.push_str(&format!(
                "{name},{},{},{}\n",
                a.at.as_millis(),
                a.latency.as_millis(),
                a.status.unwrap_or(0)
            ));
        }
    }
    std::fs::write(path, text)?;
    Ok(())
}
