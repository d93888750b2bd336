//! Scenario 3: one tenant's Stripe (an emulator of its own) killed, then started again and made
//! slower than the service's Stripe timeout, then well again; meanwhile a second tenant on a
//! healthy emulator goes on calling. The first tenant's callers get a JSON:API 502, then a 504
//! within the timeout; the second tenant's calls all succeed, fast; once Stripe is well, the
//! first tenant's calls succeed again at once (nothing stuck) and the service has as many
//! threads as before.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use sales_bench::procfs::status_kb;
use sales_bench::service::{self, ServiceEnv};

use crate::Ctx;
use crate::api::{self, Answer, Caller};
use crate::report::{Report, quantiles};

pub struct Options {
    /// The service's `stripe_timeout_secs`.
    pub timeout_secs: u64,
    /// Seconds of each phase.
    pub phase: Duration,
    /// Concurrent callers of the faulty tenant.
    pub callers: usize,
}

/// Each of the faulty tenant's callers waits about this long between calls (about 120 calls
/// a second from 32 callers while Stripe is well: a load, not a flood, on a 2-core machine).
const A_PAUSE: Duration = Duration::from_millis(250);
/// The healthy tenant's calls stay under this (p99) whatever the other's Stripe does.
const HEALTHY_P99: Duration = Duration::from_millis(500);
/// The faulty tenant's calls, while its Stripe is well (32 callers at once), stay under this.
const WELL_P99: Duration = Duration::from_secs(1);
/// How long the service is left idle before its threads are counted again: the blocking
/// pool's idle threads end after 10 s.
const IDLE: Duration = Duration::from_secs(15);

/// A caller of `POST /stripe/customers` (one Stripe call each), pausing `pause` between calls,
/// until `stop`.
fn creator(
    caller: Caller,
    pause: Duration,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    tag: usize,
) -> tokio::task::JoinHandle<Vec<Answer>> {
    tokio::spawn(async move {
        let mut answers = Vec::new();
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let body = json!({"customer": {"email": format!("fault-{tag}-{n}@example.com"), "name": "Fault Suite"}});
            answers.push(
                caller
                    .call(Method::POST, "/stripe/customers", Some(&body), epoch)
                    .await,
            );
            // Callers out of step (a timeout they all meet would line them up).
            let jitter = rand::random_range(0.5..1.5);
            tokio::time::sleep(pause.mul_f64(jitter)).await;
        }
        answers
    })
}

/// Sets the emulator's answer delay for a key.
async fn set_latency(http: &reqwest::Client, base: &str, key: &str, ms: u64) -> anyhow::Result<()> {
    let response = http
        .post(format!("{base}/_emulator/config"))
        .bearer_auth(key)
        .json(&json!({"latency_ms": ms}))
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "POST /_emulator/config answered {}",
        response.status()
    );
    Ok(())
}

/// A phase: its name and its time; its calls are those sent and answered within it (a call
/// that straddles a change counts for neither).
struct Phase {
    name: &'static str,
    from: Duration,
    to: Duration,
}

fn threads(pid: u32) -> u64 {
    status_kb(pid, "Threads").unwrap_or_default()
}

pub async fn run(ctx: &Ctx, dir: &Path, options: &Options) -> anyhow::Result<Report> {
    let mut report = Report::new("3. Stripe down, then slow, for one tenant");
    let db = ctx.database().await?;
    let env = ServiceEnv::new(ctx.bin.clone(), dir, db.url.clone(), 16);
    let http = api::client(Duration::from_secs(60))?;
    let (emulator_a, base_a) =
        service::start_emulator_on(&env, service::free_port()?, "emulator-a.log").await?;
    let (_emulator_b, base_b) =
        service::start_emulator_on(&env, service::free_port()?, "emulator-b.log").await?;
    let port_a = crate::port_of(&base_a)?;
    let a = env.create_tenant("faulty", &base_a)?;
    let b = env.create_tenant("healthy", &base_b)?;
    let timeout = options.timeout_secs.to_string();
    // The rate limits are off: this scenario is about Stripe's faults, not the limiter.
    let settings = [
        ("SALES_STRIPE_TIMEOUT_SECS", timeout.as_str()),
        ("SALES_RATE_LIMIT_TENANT_PER_SEC", "0"),
        ("SALES_RATE_LIMIT_CALLER_PER_SEC", "0"),
    ];
    let (mut service, base_url) = env.serve_with(&http, &settings).await?;
    let pid = service.pid();
    let caller = |tenant: &service::Tenant, subject: &str| -> anyhow::Result<Caller> {
        Ok(Caller {
            base_url: base_url.clone(),
            api_key: tenant.api_key.clone(),
            token: env.token(&tenant.api_key, subject, true)?,
            http: http.clone(),
        })
    };
    let (caller_a, caller_b) = (caller(&a, "fault-a")?, caller(&b, "fault-b")?);
    let timeout = Duration::from_secs(options.timeout_secs);
    let slow_ms = options.timeout_secs * 3 * 1000;
    report.figure(format!(
        "service stripe_timeout_secs={}; tenant A: {} callers of POST /stripe/customers (each 125-375 ms between calls); \
         tenant B on its own emulator: POST /stripe/customers and GET /stripe/customers, 100 ms apart; phases of {:.0} s; \
         slow = the emulator answers after {slow_ms} ms",
        options.timeout_secs,
        options.callers,
        options.phase.as_secs_f64()
    ));

    // Warm-up (tenant caches, connections), not measured.
    let warm = Instant::now();
    for _ in 0..5 {
        for c in [&caller_a, &caller_b] {
            let body = json!({"customer": {"email": "warm-up@example.com", "name": "Warm-up"}});
            c.call(Method::POST, "/stripe/customers", Some(&body), warm)
                .await;
            c.call(Method::GET, "/stripe/customers", None, warm).await;
        }
    }
    tokio::time::sleep(IDLE).await;
    let threads_before = threads(pid);

    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let pause = Duration::from_millis(100);
    let a_tasks: Vec<_> = (0..options.callers)
        .map(|i| creator(caller_a.clone(), A_PAUSE, epoch, stop.clone(), i))
        .collect();
    let b_writes = creator(caller_b.clone(), pause, epoch, stop.clone(), 1000);
    let b_reads = api::probe(
        caller_b.clone(),
        "/stripe/customers",
        None,
        pause,
        epoch,
        stop.clone(),
    );

    let mut phases = Vec::new();
    let mut from = epoch.elapsed();
    tokio::time::sleep(options.phase).await;
    phases.push(Phase {
        name: "healthy",
        from,
        to: epoch.elapsed(),
    });

    emulator_a.stop()?;
    from = epoch.elapsed();
    tokio::time::sleep(options.phase).await;
    phases.push(Phase {
        name: "A's Stripe down",
        from,
        to: epoch.elapsed(),
    });

    let (emulator_a, _) = service::start_emulator_on(&env, port_a, "emulator-a-again.log").await?;
    set_latency(&http, &base_a, &a.stripe_key, slow_ms).await?;
    from = epoch.elapsed();
    tokio::time::sleep(options.phase).await;
    phases.push(Phase {
        name: "A's Stripe slow",
        from,
        to: epoch.elapsed(),
    });
    let threads_slow = threads(pid);

    set_latency(&http, &base_a, &a.stripe_key, 0).await?;
    // Calls sent while it was slow are still waiting for their 504: the next phase counts
    // from when they have all been answered.
    tokio::time::sleep(timeout + Duration::from_secs(1)).await;
    from = epoch.elapsed();
    tokio::time::sleep(options.phase).await;
    phases.push(Phase {
        name: "A's Stripe well again",
        from,
        to: epoch.elapsed(),
    });
    stop.store(true, Ordering::Relaxed);
    let mut answers_a = Vec::new();
    for task in a_tasks {
        answers_a.extend(task.await?);
    }
    let (b_writes, b_reads) = (b_writes.await?, b_reads.await?);
    tokio::time::sleep(IDLE).await;
    let threads_after = threads(pid);
    let in_use = api::metrics(&http, &base_url, "db_pool_connections{state=\"in_use\"}").await?;

    api::write_timeline(
        &dir.join("timeline.csv"),
        &[
            ("a", &answers_a),
            ("b-write", &b_writes),
            ("b-read", &b_reads),
        ],
    )?;
    for phase in &phases {
        let in_phase = |list: &[Answer]| -> Vec<Answer> {
            list.iter()
                .filter(|x| x.at >= phase.from && x.ended_at() <= phase.to)
                .cloned()
                .collect()
        };
        let (a, bw, br) = (
            in_phase(&answers_a),
            in_phase(&b_writes),
            in_phase(&b_reads),
        );
        report.figure(format!(
            "{}: A {:?} {}; B writes {:?} {}; B reads {:?} {}",
            phase.name,
            api::by_status(&a),
            quantiles(&api::latencies(&a)?),
            api::by_status(&bw),
            quantiles(&api::latencies(&bw)?),
            api::by_status(&br),
            quantiles(&api::latencies(&br)?),
        ));
        let slowest_a = a.iter().map(|x| x.latency).max().unwrap_or_default();
        let (want, code, within): (u16, Option<&str>, Duration) = match phase.name {
            "A's Stripe down" => (
                502,
                Some("stripe_unreachable"),
                timeout + Duration::from_secs(1),
            ),
            "A's Stripe slow" => (
                504,
                Some("stripe_timeout"),
                timeout + Duration::from_secs(1),
            ),
            _ => (200, None, WELL_P99),
        };
        let a_right = !a.is_empty()
            && a.iter().all(|x| {
                if want == 200 {
                    x.status == Some(201) || x.status == Some(200)
                } else {
                    x.status == Some(want) && x.jsonapi_error && x.code.as_deref() == code
                }
            });
        let a_p99 = api::latencies(&a)?.value_at_quantile(0.99);
        report.check(
            format!(
                "{}: tenant A's calls answer {}",
                phase.name,
                match code {
                    Some(code) => format!("a JSON:API {want} {code} within {within:?}"),
                    None => format!("2xx, p99 within {within:?}"),
                }
            ),
            a_right
                && if want == 200 {
                    Duration::from_micros(a_p99) <= within
                } else {
                    slowest_a <= within
                },
            format!(
                "{:?}, slowest {:.0} ms",
                api::by_status(&a),
                slowest_a.as_secs_f64() * 1000.0
            ),
        );
        let b: Vec<Answer> = bw.iter().chain(&br).cloned().collect();
        let b_p99 = Duration::from_micros(api::latencies(&b)?.value_at_quantile(0.99));
        report.check(
            format!(
                "{}: tenant B's calls all succeed, p99 within {HEALTHY_P99:?}",
                phase.name
            ),
            !bw.is_empty() && !br.is_empty() && b.iter().all(Answer::ok) && b_p99 <= HEALTHY_P99,
            format!(
                "{:?}, p99 {:.1} ms",
                api::by_status(&b),
                b_p99.as_secs_f64() * 1000.0
            ),
        );
    }
    report.figure(format!(
        "service threads: {threads_before} idle before, {threads_slow} while Stripe was slow, {threads_after} idle after ({} s idle each time)",
        IDLE.as_secs()
    ));
    let idle_pool = in_use.iter().all(|l| l.ends_with(" 0"));
    report.check(
        "no stuck workers: once idle again, no more threads than before and no database connection in use",
        threads_after <= threads_before && idle_pool && !in_use.is_empty(),
        format!("threads {threads_before} before, {threads_after} after; {}", in_use.join(", ")),
    );
    let metrics = api::metrics(&http, &base_url, "stripe_requests_total").await?;
    report.figure(format!("/metrics: {}", metrics.join("; ")));
    report.check(
        "the service runs on (the same process)",
        service.is_running(),
        format!("pid {pid}"),
    );
    service.stop()?;
    emulator_a.stop()?;
    crate::drop_database(db).await;
    Ok(report)
}
