//! Metrics: one Prometheus recorder for the process, rendered by `GET /metrics`.
//!
//! Series (labels never carry a tenant id, so their number stays bounded by the routes):
//! - `http_requests_total{route,method,status}`, `http_request_duration_seconds{route,method}`
//!   (route templates such as `/stripe/customers/{unique_id}`, `unmatched` otherwise);
//! - `stripe_requests_total{operation,outcome}`, `stripe_request_duration_seconds{operation}`;
//! - `receiver_deliveries_total{outcome}` (applied, duplicate, stale, ignored, refreshed, or
//!   the refusal's status);
//! - `receiver_batch_size` and `receiver_batch_seconds`: each group commit of the receiver's
//!   writers, its deliveries and the time to store, apply and commit them;
//! - `notifications_total{outcome}`: each attempt to notify a tenant's app (delivered,
//!   refused, unreachable, given_up);
//! - `sync_jobs_total{kind,outcome}` (a historical sync's or a reconciliation's end) and
//!   `sync_objects_total{kind}` (objects read from Stripe's lists and events);
//! - `rate_limit_refusals_total{scope}`;
//! - at each scrape: `db_pool_connections{state}`, `receiver_writers`, `receiver_backlog`,
//!   `receiver_queue_bound`, `notifications_pending`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// How often the recorder's upkeep drains the histograms' pending samples.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
/// Upkeeps run so far.
static UPKEEPS: AtomicU64 = AtomicU64::new(0);

/// Latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The process's recorder, installed on first use (several apps in one test process share
/// it); `None` if another recorder was installed first.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &BUCKETS)
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => {
                    start_upkeep(handle.clone());
                    Some(handle)
                }
                Err(error) => {
                    tracing::warn!(%error, "metrics are not recorded");
                    None
                }
            }
        })
        .as_ref()
}

/// Drains the histograms' pending samples every [`UPKEEP_EVERY`], on a thread of its own for
/// the life of the process. `install_recorder` leaves this to its caller: without it every
/// sample stays in memory until the next scrape, and without scrapes for ever (measured by
/// the fault suite's memory scenario).
fn start_upkeep(handle: PrometheusHandle) {
    let started = std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
                UPKEEPS.fetch_add(1, Ordering::Relaxed);
            }
        });
    if let Err(error) = started {
        tracing::warn!(%error, "the metrics upkeep did not start: samples wait for a scrape");
    }
}

/// How many upkeeps of the recorder have run in this process.
pub fn upkeeps() -> u64 {
    UPKEEPS.load(Ordering::Relaxed)
}

/// A request's method as a label: the standard ones, and `other` for any extension method a
/// client makes up (each would otherwise be a series of its own, without bound).
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts and times every request by its route template.
pub async fn record_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    handle();
    let started = Instant::now();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(req.method()).to_owned();
    let response = next.call(req).await;
    let status = match &response {
        Ok(response) => response.status().as_u16(),
        Err(error) => error.as_response_error().status_code().as_u16(),
    };
    metrics::counter!("http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}

/// A call to Stripe: `operation` is the step's name, `outcome` `ok` or the failure's kind.
pub fn stripe_call(operation: &str, outcome: &'static str, started: Instant) {
    metrics::counter!("stripe_requests_total", "operation" => operation.to_owned(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("stripe_request_duration_seconds", "operation" => operation.to_owned())
        .record(started.elapsed().as_secs_f64());
}

/// A webhook delivery's outcome.
pub fn delivery(outcome: String) {
    metrics::counter!("receiver_deliveries_total", "outcome" => outcome).increment(1);
}

/// A group commit of the receiver's writer: how many deliveries, and how long it took.
pub fn receiver_batch(deliveries: usize, started: Instant) {
    metrics::histogram!("receiver_batch_size").record(deliveries as f64);
    metrics::histogram!("receiver_batch_seconds").record(started.elapsed().as_secs_f64());
}

/// An attempt to notify a tenant's app, by what came of it.
pub fn notification(outcome: &'static str) {
    metrics::counter!("notifications_total", "outcome" => outcome).increment(1);
}

/// A sync job's end (`kind`: historical or reconcile; `outcome`: succeeded, failed, canceled).
pub fn sync_job(kind: &'static str, outcome: &'static str) {
    metrics::counter!("sync_jobs_total", "kind" => kind, "outcome" => outcome).increment(1);
}

/// Objects a sync job read from Stripe.
pub fn sync_objects(kind: &'static str, objects: usize) {
    metrics::counter!("sync_objects_total", "kind" => kind).increment(objects as u64);
}

/// A Stripe Apps access token refreshed (one per tenant per hour when all is well).
pub fn token_refresh() {
    metrics::counter!("stripe_token_refreshes_total").increment(1);
}

/// A request refused by a rate limit (`scope`: `caller` or `tenant`).
pub fn rate_limited(scope: &'static str) {
    metrics::counter!("rate_limit_refusals_total", "scope" => scope).increment(1);
}

/// What is read at each scrape.
pub struct Gauges {
    pub pool_connections: u32,
    pub pool_idle: u32,
    pub receiver_writers: usize,
    pub receiver_backlog: usize,
    pub receiver_bound: usize,
    pub notifications_pending: Option<i64>,
}

/// The text to answer a scrape with.
pub fn render(gauges: &Gauges) -> String {
    let Some(handle) = handle() else {
        return String::new();
    };
    let in_use = gauges.pool_connections.saturating_sub(gauges.pool_idle);
    metrics::gauge!("db_pool_connections", "state" => "idle").set(f64::from(gauges.pool_idle));
    metrics::gauge!("db_pool_connections", "state" => "in_use").set(f64::from(in_use));
    metrics::gauge!("receiver_writers").set(gauges.receiver_writers as f64);
    metrics::gauge!("receiver_backlog").set(gauges.receiver_backlog as f64);
    metrics::gauge!("receiver_queue_bound").set(gauges.receiver_bound as f64);
    if let Some(pending) = gauges.notifications_pending {
        metrics::gauge!("notifications_pending").set(pending as f64);
    }
    handle.render()
}
