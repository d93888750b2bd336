//! Scenario 7: the service's memory under a steady mixed load for a while: webhooks (fresh
//! signed events, generated as the run goes), API calls (lists, and customers created at the
//! Stripe emulator, whose `customer.created` come back to the receiver), and the notifications
//! the events cause, delivered to the tenant's app. RSS is read from /proc every second.
//!
//! The criterion ("RSS flat"): over the second half of the run (the first half is the
//! warm-up: glibc's per-thread malloc arenas grow for the first minutes under this load, then
//! stay), a least-squares line is fitted to the samples; the scenario fails if that line rises
//! by more than [`FLAT_MB`] MB or [`FLAT_SHARE`] of the RSS at the window's start (whichever is
//! more) over the window. For a 10-minute run that is a slope of at most ~0.4 MB/min: a leak of
//! ~100 bytes per request at the default rates would fail it.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use sales_bench::corpus::Delivery;
use sales_bench::load;
use sales_bench::procfs::status_kb;
use sales_bench::service::{self, ServiceEnv};

use crate::Ctx;
use crate::api::{self, Caller};
use crate::report::Report;
use crate::sink::Sink;

pub struct Options {
    pub duration: Duration,
    /// Webhooks per second.
    pub webhooks_per_sec: u32,
    /// API calls per second (a quarter of them create a customer at Stripe).
    pub api_per_sec: u32,
}

/// The fitted line may rise at most this much (MB) over the measured window ...
const FLAT_MB: f64 = 2.0;
/// ... or this share of the RSS at the window's start, whichever is more.
const FLAT_SHARE: f64 = 0.05;

/// Least squares: (slope per second, intercept) of y over x.
fn fit(points: &[(f64, f64)]) -> (f64, f64) {
    let n = points.len() as f64;
    if n < 2.0 {
        return (0.0, points.first().map_or(0.0, |p| p.1));
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    (slope, my - slope * mx)
}

/// Counts of a load task.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
}

impl Tally {
    fn add(&self, ok: bool) {
        let counter = if ok { &self.ok } else { &self.failed };
        counter.fetch_add(1, Ordering::Relaxed);
    }
    fn get(&self) -> (u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

pub async fn run(ctx: &Ctx, dir: &Path, options: &Options) -> anyhow::Result<Report> {
    let mut report = Report::new(format!(
        "7. memory under a mixed load for {:.0} s",
        options.duration.as_secs_f64()
    ));
    let db = ctx.database().await?;
    let mut env = ServiceEnv::new(ctx.bin.clone(), dir, db.url.clone(), 16);
    env.extra_env = vec![
        ("SALES_EGRESS_ALLOW_HTTP".into(), "true".into()),
        ("SALES_EGRESS_ALLOW_LOOPBACK".into(), "true".into()),
    ];
    let http = api::client(Duration::from_secs(30))?;
    let sink = Sink::start().await?;
    // The limits are the service's defaults; the load stays under them.
    let mut stack = service::start_stack(&env, &http, &[]).await?;
    // Deliveries from the emulator (the customers created) come to the service's receiver;
    // the suite signs its own events with the same secret.
    let (url_id, secret) = service::create_endpoint(&http, &stack.admin(), &["*"], None).await?;
    env.set_notify_url(&stack.api_key, &sink.ok_url("memory"))?;
    let pid = stack.service.pid();
    let caller = Caller {
        base_url: stack.base_url.clone(),
        api_key: stack.api_key.clone(),
        token: stack.token.clone(),
        http: http.clone(),
    };
    report.figure(format!(
        "{} webhooks/s (fresh signed events), {} API calls/s (GET customers, subscriptions, payments, notifications; \
         a quarter POST /stripe/customers through the emulator, whose events come back), notifications to the tenant's app",
        options.webhooks_per_sec, options.api_per_sec
    ));

    let stop = Arc::new(AtomicBool::new(false));
    let hooks = Arc::new(Tally::default());
    let calls = Arc::new(Tally::default());

    // Fresh events, 2,000 at a time, generated as they are needed.
    let (tx, rx) = tokio::sync::mpsc::channel::<Delivery>(4_000);
    let generator = {
        let stop = stop.clone();
        tokio::spawn(async move {
            for seed in 7_000.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let corpus =
                    tokio::task::spawn_blocking(move || crate::webhooks::fresh_corpus(2_000, seed))
                        .await??;
                for delivery in corpus.deliveries {
                    if tx.send(delivery).await.is_err() {
                        return anyhow::Ok(());
                    }
                }
            }
            anyhow::Ok(())
        })
    };
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let senders = 4u32;
    let mut tasks = Vec::new();
    let url = format!("{}/stripe/{url_id}/webhook", stack.base_url);
    for _ in 0..senders {
        let (rx, stop, hooks, url, secret) = (
            rx.clone(),
            stop.clone(),
            hooks.clone(),
            url.clone(),
            secret.clone(),
        );
        let client = api::client(Duration::from_secs(30))?;
        let every = Duration::from_secs_f64(
            f64::from(senders) / f64::from(options.webhooks_per_sec.max(1)),
        );
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let Some(delivery) = rx.lock().await.recv().await else {
                    break;
                };
                let ok = match load::deliver(&client, &url, &secret, &delivery.body) {
                    Ok(request) => request.send().await.is_ok_and(|r| r.status().is_success()),
                    Err(_) => false,
                };
                hooks.add(ok);
            }
        }));
    }
    let epoch = Instant::now();
    {
        let (stop, calls, caller) = (stop.clone(), calls.clone(), caller.clone());
        let every = Duration::from_secs_f64(1.0 / f64::from(options.api_per_sec.max(1)));
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            let paths = [
                "/stripe/customers",
                "/stripe/subscriptions",
                "/stripe/payments",
                "/stripe/notifications",
            ];
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                n += 1;
                let answer = if n.is_multiple_of(4) {
                    let body = json!({"customer": {"email": format!("memory-{n}@example.com"), "name": "Memory"}});
                    caller.call(Method::POST, "/stripe/customers", Some(&body), epoch).await
                } else {
                    caller.call(Method::GET, paths[n % paths.len()], None, epoch).await
                };
                calls.add(answer.ok());
            }
        }));
    }

    // RSS every second; its parts (anonymous: heap and stacks; file: the binary's pages) and
    // the thread count at the first and the last sample.
    let mut samples: Vec<(f64, f64)> = Vec::new();
    let parts = || {
        let mb = |key| status_kb(pid, key).unwrap_or_default() as f64 / 1024.0;
        format!(
            "anonymous {:.1} MB, file {:.1} MB, {} threads",
            mb("RssAnon"),
            mb("RssFile"),
            status_kb(pid, "Threads").unwrap_or_default()
        )
    };
    let parts_at_start = parts();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while epoch.elapsed() < options.duration {
        tick.tick().await;
        if let Some(kb) = status_kb(pid, "VmRSS") {
            samples.push((epoch.elapsed().as_secs_f64(), kb as f64 / 1024.0));
        }
    }
    let parts_at_end = parts();
    stop.store(true, Ordering::Relaxed);
    drop(rx);
    for task in tasks {
        task.await?;
    }
    generator.abort();
    let running = stack.service.is_running();

    let (hooks_ok, hooks_failed) = hooks.get();
    let (calls_ok, calls_failed) = calls.get();
    let notified = sink.received().len();
    let secs = epoch.elapsed().as_secs_f64();
    report.figure(format!(
        "sent in {secs:.0} s: {hooks_ok} webhooks acknowledged ({hooks_failed} not), {calls_ok} API calls 2xx ({calls_failed} not), \
         {notified} notifications received by the app"
    ));
    report.check(
        "the load is served: every webhook acknowledged, every API call 2xx",
        hooks_failed == 0 && calls_failed == 0 && hooks_ok > 0 && calls_ok > 0,
        format!("{hooks_failed} webhooks and {calls_failed} calls not"),
    );

    let warmup = (options.duration.as_secs_f64() / 2.0).max(30.0);
    let window: Vec<(f64, f64)> = samples.iter().copied().filter(|p| p.0 >= warmup).collect();
    let first = samples.first().map_or(0.0, |p| p.1);
    let peak = samples.iter().map(|p| p.1).fold(0.0, f64::max);
    let end = samples.last().map_or(0.0, |p| p.1);
    let (slope, intercept) = fit(&window);
    let (w0, w1) = (
        window.first().map_or(0.0, |p| p.0),
        window.last().map_or(0.0, |p| p.0),
    );
    let start = intercept + slope * w0;
    let rise = slope * (w1 - w0);
    let allowed = FLAT_MB.max(start * FLAT_SHARE);
    let by_minute: Vec<String> = samples
        .iter()
        .filter(|p| (p.0 as u64).is_multiple_of(60) || p.0 == samples.last().map_or(0.0, |l| l.0))
        .map(|p| format!("{:.0}s {:.1}", p.0, p.1))
        .collect();
    report.figure(format!(
        "RSS (MB): at start {first:.1}, after the warm-up ({warmup:.0} s) {:.1}, peak {peak:.1}, end {end:.1}; \
         slope after the warm-up {:.3} MB/min (fitted rise {rise:.2} MB over {:.0} s)",
        window.first().map_or(0.0, |p| p.1),
        slope * 60.0,
        w1 - w0
    ));
    report.figure(format!("RSS by minute (MB): {}", by_minute.join(", ")));
    report.figure(format!(
        "RSS at the start: {parts_at_start}; at the end: {parts_at_end}"
    ));
    report.check(
        format!(
            "RSS flat: the fitted line rises at most max({FLAT_MB} MB, {:.0}% of {start:.1} MB) after the warm-up",
            FLAT_SHARE * 100.0
        ),
        window.len() >= 10 && rise <= allowed,
        format!("rises {rise:.2} MB (allowed {allowed:.2} MB)"),
    );
    report.check("the service runs on", running, format!("pid {pid}"));
    stack.service.stop()?;
    stack.emulator.stop()?;
    sink.stop().await;
    crate::drop_database(db).await;
    Ok(report)
}
