//! `sqlite-writes`: concurrent customer creation (`POST /stripe/customers`) against the real
//! release service on SQLite, with the in-repo Stripe emulator delivering each
//! `customer.created` back to the service's receiver while the load runs (issue 15). In the
//! same run, as references: the same calls against the emulator directly, and the service on
//! PostgreSQL. See docs/BENCHMARKS.md.
//!
//! ```sh
//! cargo build --release -p sales-block
//! cargo run --release -p sales-bench --bin sqlite-writes -- --seconds 20 --connections 8
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use hdrhistogram::Histogram;
use sales_bench::procfs;
use sales_bench::service::{self, BenchDatabase, ServiceEnv, Stack};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(
    name = "sqlite-writes",
    about = "Concurrent POST /stripe/customers on SQLite with deliveries flowing, beside the emulator directly and PostgreSQL"
)]
struct Args {
    #[command(flatten)]
    setup: sales_bench::Setup,
    /// Measured seconds per target (after the warm-up).
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Unmeasured seconds of the same load before each measurement.
    #[arg(long, default_value_t = 2)]
    warmup_seconds: u64,
    /// Concurrent connections (each sends its next request when the last is answered).
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Times the targets are measured, in turn (emulator, SQLite, PostgreSQL, then again).
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// SALES_DATABASE_POOL_SIZE of the service (its default: 8).
    #[arg(long, default_value_t = 8)]
    pool_size: u32,
    /// Leave out the PostgreSQL reference.
    #[arg(long)]
    no_postgres: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Emulator,
    Sqlite,
    Postgres,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Emulator => "emulator directly",
            Target::Sqlite => "service on SQLite",
            Target::Postgres => "service on PostgreSQL",
        }
    }
}

/// The requests of one measurement.
struct Load {
    sent: u64,
    wall: Duration,
    /// Microseconds per request.
    latency: Histogram<u64>,
    statuses: BTreeMap<u16, u64>,
    transport_errors: u64,
    first_failure: Option<String>,
}

impl Load {
    fn failed(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(s, _)| !(200..300).contains(*s))
            .map(|(_, n)| n)
            .sum::<u64>()
            + self.transport_errors
    }

    fn ms(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// What the emulator had delivered to the service's receiver by the end of the load.
struct Deliveries {
    attempts: usize,
    accepted: usize,
}

struct Report {
    target: Target,
    round: usize,
    load: Load,
    deliveries: Option<Deliveries>,
    /// CPU over the measurement; `service` is the emulator's, for the direct calls.
    cpu: procfs::CpuUsage,
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 600_000_000, 3).context("creating a latency histogram")
}

/// One POST as the target wants it: the service's JSON:API body, or Stripe's form.
fn request(client: &reqwest::Client, to: &To, n: usize) -> reqwest::RequestBuilder {
    let email = format!("load-{n}-{}@example.com", to.run);
    match to.target {
        Target::Emulator => client
            .post(format!("{}/v1/customers", to.base))
            .bearer_auth(&to.key)
            .form(&[("email", email.as_str()), ("name", "Load Test")]),
        Target::Sqlite | Target::Postgres => client
            .post(format!("{}/stripe/customers", to.base))
            .header("AppId", &to.app_id)
            .bearer_auth(&to.key)
            .json(&json!({"customer": {"email": email, "name": "Load Test"}})),
    }
}

/// Where the requests go.
struct To {
    target: Target,
    base: String,
    /// The Stripe key (emulator) or the tenant's admin token (service).
    key: String,
    app_id: String,
    /// Makes this run's emails unique.
    run: String,
}

/// `connections` workers, each sending its next request when the last is answered, for
/// `duration`.
async fn drive(
    client: &reqwest::Client,
    to: &Arc<To>,
    connections: usize,
    duration: Duration,
    counter: &Arc<AtomicUsize>,
) -> anyhow::Result<Load> {
    let started = Instant::now();
    let mut workers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (client, to, counter) = (client.clone(), to.clone(), counter.clone());
        workers.push(tokio::spawn(async move {
            let mut load = Load {
                sent: 0,
                wall: Duration::ZERO,
                latency: histogram()?,
                statuses: BTreeMap::new(),
                transport_errors: 0,
                first_failure: None,
            };
            while started.elapsed() < duration {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let begin = Instant::now();
                let response = request(&client, &to, n).send().await;
                load.sent += 1;
                match response {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let body = response.bytes().await;
                        let micros = u64::try_from(begin.elapsed().as_micros()).unwrap_or(u64::MAX);
                        load.latency.saturating_record(micros.max(1));
                        *load.statuses.entry(status).or_default() += 1;
                        if !(200..300).contains(&status) && load.first_failure.is_none() {
                            let text: String = body
                                .map(|b| String::from_utf8_lossy(&b).chars().take(300).collect())
                                .unwrap_or_default();
                            load.first_failure = Some(format!("HTTP {status} {text}"));
                        }
                    }
                    Err(err) => {
                        load.transport_errors += 1;
                        load.first_failure.get_or_insert_with(|| err.to_string());
                    }
                }
            }
            anyhow::Ok(load)
        }));
    }
    let mut total = Load {
        sent: 0,
        wall: Duration::ZERO,
        latency: histogram()?,
        statuses: BTreeMap::new(),
        transport_errors: 0,
        first_failure: None,
    };
    for worker in workers {
        let load = worker.await.context("a load worker panicked")??;
        total.sent += load.sent;
        total
            .latency
            .add(&load.latency)
            .context("merging histograms")?;
        for (status, n) in load.statuses {
            *total.statuses.entry(status).or_default() += n;
        }
        total.transport_errors += load.transport_errors;
        if total.first_failure.is_none() {
            total.first_failure = load.first_failure;
        }
    }
    total.wall = started.elapsed();
    Ok(total)
}

/// Warm-up, then the measurement, with the CPU time of `pid` over the measurement.
async fn warm_and_measure(
    args: &Args,
    client: &reqwest::Client,
    to: Arc<To>,
    pid: u32,
) -> anyhow::Result<(Load, procfs::CpuUsage)> {
    let counter = Arc::new(AtomicUsize::new(0));
    let warmup = Duration::from_secs(args.warmup_seconds);
    if !warmup.is_zero() {
        drive(client, &to, args.connections, warmup, &counter).await?;
    }
    let before = procfs::CpuSnapshot::take(pid);
    let load = drive(
        client,
        &to,
        args.connections,
        Duration::from_secs(args.seconds),
        &counter,
    )
    .await?;
    let used = before.until(&procfs::CpuSnapshot::take(pid));
    Ok((load, used))
}

/// The emulator's delivery attempts to the receiver so far (warm-up included) and how many
/// were answered 2xx. The emulator makes one delivery at a time per endpoint, so under load
/// the rest are still queued at the emulator (they are not waited for).
async fn deliveries(client: &reqwest::Client, stack: &Stack) -> anyhow::Result<Deliveries> {
    let list: Value = client
        .get(format!("{}/_emulator/deliveries", stack.emulator_base))
        .bearer_auth(&stack.stripe_key)
        .send()
        .await?
        .json()
        .await?;
    let attempts = list["data"].as_array().cloned().unwrap_or_default();
    let accepted = attempts
        .iter()
        .filter(|a| {
            a["status"]
                .as_u64()
                .is_some_and(|s| (200..300).contains(&s))
        })
        .count();
    Ok(Deliveries {
        attempts: attempts.len(),
        accepted,
    })
}

async fn measure_emulator(
    args: &Args,
    bin: &std::path::Path,
    client: &reqwest::Client,
    round: usize,
) -> anyhow::Result<Report> {
    let dir = tempfile::tempdir()?;
    let env = ServiceEnv::new(bin.to_owned(), dir.path(), String::new(), args.pool_size);
    let (emulator, base) = service::start_emulator(&env).await?;
    let to = Arc::new(To {
        target: Target::Emulator,
        base,
        key: format!("sk_test_direct{}", uuid::Uuid::new_v4().simple()),
        app_id: String::new(),
        run: uuid::Uuid::new_v4().simple().to_string(),
    });
    let (load, cpu) = warm_and_measure(args, client, to, emulator.pid()).await?;
    emulator.stop()?;
    Ok(Report {
        target: Target::Emulator,
        round,
        load,
        deliveries: None,
        cpu,
    })
}

async fn measure_service(
    args: &Args,
    bin: &std::path::Path,
    client: &reqwest::Client,
    target: Target,
    round: usize,
) -> anyhow::Result<Report> {
    let dir = tempfile::tempdir()?;
    let postgres = match target {
        Target::Postgres => Some(BenchDatabase::create(&args.setup.postgres_url, false)?),
        _ => None,
    };
    let database_url = match &postgres {
        Some(db) => db.url.clone(),
        None => format!("sqlite://{}", dir.path().join("sales.db").display()),
    };
    let env = ServiceEnv::new(bin.to_owned(), dir.path(), database_url, args.pool_size);
    // The load is one caller of one tenant: no rate limit.
    let stack = service::start_stack(
        &env,
        client,
        &[
            ("SALES_RATE_LIMIT_TENANT_PER_SEC", "0"),
            ("SALES_RATE_LIMIT_CALLER_PER_SEC", "0"),
        ],
    )
    .await?;
    // The emulator delivers every customer.created to the service's receiver.
    service::create_endpoint(client, &stack.admin(), &["customer.created"], None).await?;
    let to = Arc::new(To {
        target,
        base: stack.base_url.clone(),
        key: stack.token.clone(),
        app_id: stack.api_key.clone(),
        run: uuid::Uuid::new_v4().simple().to_string(),
    });
    let (load, cpu) = warm_and_measure(args, client, to, stack.service.pid()).await?;
    let deliveries = deliveries(client, &stack).await?;
    stack.service.stop()?;
    stack.emulator.stop()?;
    drop(postgres);
    Ok(Report {
        target,
        round,
        load,
        deliveries: Some(deliveries),
        cpu,
    })
}

fn print_report(r: &Report) {
    let l = &r.load;
    let rate = l.sent as f64 / l.wall.as_secs_f64();
    let deliveries = r.deliveries.as_ref().map_or_else(
        || "-".to_owned(),
        |d| format!("{} of {} accepted", d.accepted, d.attempts),
    );
    println!(
        "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {:.2} / {:.2} / {:.2} | {} |",
        r.round,
        r.target.name(),
        l.sent,
        rate,
        l.ms(0.50),
        l.ms(0.90),
        l.ms(0.99),
        l.latency.max() as f64 / 1000.0,
        l.failed(),
        r.cpu.service,
        r.cpu.postgres,
        r.cpu.other,
        deliveries
    );
    if let Some(failure) = &l.first_failure {
        println!("|   | first failure: {failure} |");
    }
}

/// The median and slowest of 20 appends of 4 KiB each made durable (`fdatasync`) in a temp
/// dir, as a SQLite commit (WAL, synchronous FULL) waits for one: the floor under every
/// write on this disk, and so under the SQLite figures.
fn commit_cost() -> anyhow::Result<(f64, f64)> {
    use std::io::Write;
    let dir = tempfile::tempdir()?;
    let mut file = std::fs::File::create(dir.path().join("probe"))?;
    let mut took = Vec::new();
    for _ in 0..20 {
        let begin = Instant::now();
        file.write_all(&[0u8; 4096])?;
        file.sync_data()?;
        took.push(begin.elapsed().as_secs_f64() * 1000.0);
    }
    took.sort_by(f64::total_cmp);
    Ok((took[took.len() / 2], took[took.len() - 1]))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.connections > 0, "--connections must be positive");
    let bin = args.setup.service_bin()?;
    println!(
        "sqlite-writes {} — {}",
        std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    println!(
        "service: {} (pool {}); {} connections, {} s measured after {} s warm-up; cores: {}; load1 {:.2}",
        bin.display(),
        args.pool_size,
        args.connections,
        args.seconds,
        args.warmup_seconds,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        procfs::load1().unwrap_or(0.0)
    );
    let (median, slowest) = commit_cost()?;
    println!(
        "disk: 4 KiB append + fdatasync in a temp dir: median {median:.2} ms, slowest {slowest:.2} ms (of 20)"
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections * 2)
        .build()?;
    println!();
    println!(
        "| round | target | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | failed | cores: service / postgres / other | deliveries |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    let mut failed = 0;
    for round in 1..=args.rounds {
        let mut reports = vec![measure_emulator(&args, &bin, &client, round).await?];
        reports.push(measure_service(&args, &bin, &client, Target::Sqlite, round).await?);
        if !args.no_postgres {
            reports.push(measure_service(&args, &bin, &client, Target::Postgres, round).await?);
        }
        for r in &reports {
            print_report(r);
            failed += r.load.failed();
            if let Some(d) = &r.deliveries {
                failed += (d.attempts - d.accepted) as u64;
            }
        }
    }
    println!(
        "\ncores: CPU time over the measurement / wall time, of the service (the emulator, for the \
         direct calls), of PostgreSQL, and of other processes on the machine (the emulator \
         included, this generator not); deliveries: the emulator's customer.created attempts to the \
         receiver by the end of the load (warm-up included; one at a time, the rest still \
         queued) and how many were answered 2xx"
    );
    anyhow::ensure!(
        failed == 0,
        "{failed} failed requests or deliveries (see above)"
    );
    Ok(())
}
