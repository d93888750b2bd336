//! `fault-suite`: the real release service under faults (issue 14), each scenario asserting
//! what a user would see and that nothing acknowledged is lost, with figures. The service runs
//! as a child process (so it can be killed), beside the in-repo Stripe emulator, on a
//! PostgreSQL cluster of the suite's own (`initdb` in a scratch directory, on a free port), so
//! a scenario may stop the database without touching a server others use.
//!
//! 1. `kill -9` of the service during a webhook load, a start again, Stripe's retries.
//! 2. PostgreSQL stopped (as by a crash) and started again during load.
//! 3. One tenant's Stripe down, then slower than the timeout, beside a healthy tenant.
//! 4. Notify URLs that hang, answer 500, reset the connection, beside working ones.
//! 7. Memory under a mixed load (10 minutes by default; `--quick` for a short try).
//!
//! ```sh
//! cargo build --release -p sales-block
//! cargo run --release -p sales-bench --bin fault-suite
//! ```
//!
//! Exits non-zero when a check fails (see docs/RELIABILITY.md).

mod api;
mod cluster;
mod kill;
mod memory;
mod notify;
mod pg_restart;
mod report;
mod sink;
mod stripe;
mod webhooks;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use sales_bench::service::BenchDatabase;

use crate::cluster::Cluster;
use crate::report::Report;

#[derive(Debug, Parser)]
#[command(
    name = "fault-suite",
    about = "The service under faults: kill -9, PostgreSQL restarted, Stripe down and slow, failing notify URLs, memory over time"
)]
struct Args {
    /// The scenarios to run (comma-separated numbers).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 3, 4, 7])]
    scenarios: Vec<u32>,
    /// Short durations everywhere (scenario 7 for 60 s, fewer events): for trying the suite.
    #[arg(long)]
    quick: bool,
    /// The `sales-block` binary [default: $CARGO_TARGET_DIR or the workspace's target/, then
    /// release/sales-block].
    #[arg(long = "service-bin")]
    service_bin: Option<PathBuf>,
    /// Where PostgreSQL's programs are (initdb, pg_ctl, postgres).
    #[arg(long, default_value = "/usr/lib/postgresql/15/bin")]
    pg_bin_dir: PathBuf,
    /// Deliveries of the webhook loads of scenarios 1 and 2 [default: 20000; --quick 5000].
    #[arg(long)]
    events: Option<usize>,
    /// Connections of the webhook loads.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seed of the corpus.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Seconds PostgreSQL stays down in scenario 2.
    #[arg(long, default_value_t = 8)]
    pg_down_secs: u64,
    /// The service's Stripe timeout in scenario 3 (the emulator is made 3 times slower).
    #[arg(long, default_value_t = 2)]
    stripe_timeout_secs: u64,
    /// Seconds of each phase of scenario 3 [default: 10; --quick 5].
    #[arg(long)]
    phase_secs: Option<u64>,
    /// Seconds the working tenants' webhooks go on in scenario 4 [default: 60; --quick 25].
    #[arg(long)]
    notify_secs: Option<u64>,
    /// Seconds of scenario 7's mixed load [default: 600; --quick 60].
    #[arg(long)]
    memory_secs: Option<u64>,
    /// Keep every scenario's scratch directory (the service's logs, timelines), not only
    /// those of a scenario that failed.
    #[arg(long)]
    keep_logs: bool,
    /// Webhooks per second in scenario 7.
    #[arg(long, default_value_t = 50)]
    memory_webhooks_per_sec: u32,
    /// API calls per second in scenario 7.
    #[arg(long, default_value_t = 20)]
    memory_api_per_sec: u32,
}

/// What every scenario works with.
pub struct Ctx {
    pub bin: PathBuf,
    pub cluster: Arc<Cluster>,
}

impl Ctx {
    /// A fresh database on the suite's cluster (dropped by [`drop_database`]).
    pub async fn database(&self) -> anyhow::Result<BenchDatabase> {
        let admin = self.cluster.admin_url();
        tokio::task::spawn_blocking(move || BenchDatabase::create(&admin, false)).await?
    }
}

pub async fn drop_database(db: BenchDatabase) {
    let _ = tokio::task::spawn_blocking(move || drop(db)).await;
}

/// The port of `http://127.0.0.1:<port>`.
pub fn port_of(base_url: &str) -> anyhow::Result<u16> {
    base_url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("no port in {base_url}"))
}

async fn scenario(ctx: &Ctx, args: &Args, n: u32, dir: &Path) -> anyhow::Result<Report> {
    let quick = args.quick;
    let pick = |given: Option<u64>, full: u64, short: u64| {
        Duration::from_secs(given.unwrap_or(if quick { short } else { full }))
    };
    let events = args.events.unwrap_or(if quick { 5_000 } else { 20_000 });
    match n {
        1 => {
            kill::run(
                ctx,
                dir,
                &kill::Options {
                    events,
                    connections: args.connections,
                    seed: args.seed,
                    kill_at: 0.4,
                    down: Duration::from_secs(1),
                },
            )
            .await
        }
        2 => {
            pg_restart::run(
                ctx,
                dir,
                &pg_restart::Options {
                    events,
                    connections: args.connections,
                    seed: args.seed + 1,
                    stop_at: 0.3,
                    down: Duration::from_secs(args.pg_down_secs),
                },
            )
            .await
        }
        3 => {
            stripe::run(
                ctx,
                dir,
                &stripe::Options {
                    timeout_secs: args.stripe_timeout_secs,
                    phase: pick(args.phase_secs, 10, 5),
                    callers: 32,
                },
            )
            .await
        }
        4 => {
            notify::run(
                ctx,
                dir,
                &notify::Options {
                    duration: pick(args.notify_secs, 60, 25),
                    backlog: 60,
                    every: Duration::from_millis(250),
                },
            )
            .await
        }
        7 => {
            memory::run(
                ctx,
                dir,
                &memory::Options {
                    duration: pick(args.memory_secs, 600, 60),
                    webhooks_per_sec: args.memory_webhooks_per_sec,
                    api_per_sec: args.memory_api_per_sec,
                },
            )
            .await
        }
        other => anyhow::bail!("no scenario {other} here (1, 2, 3, 4 and 7)"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = args
        .service_bin
        .clone()
        .unwrap_or_else(sales_bench::default_service_bin);
    sales_bench::check_service_bin(&bin)?;
    let bin = std::fs::canonicalize(&bin).unwrap_or(bin);
    let pg_bin = args.pg_bin_dir.clone();
    let cluster = tokio::task::spawn_blocking(move || Cluster::start(&pg_bin)).await??;
    let facts = {
        let admin = cluster.admin_url();
        tokio::task::spawn_blocking(move || sales_bench::service::server_facts(&admin)).await??
    };
    println!(
        "fault-suite {} — {}",
        std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    println!(
        "service: {}; cores: {}; the suite's own {facts}, port {}",
        bin.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cluster.port
    );
    let ctx = Ctx {
        bin,
        cluster: Arc::new(cluster),
    };
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    for &n in &args.scenarios {
        let dir = tempfile::Builder::new()
            .prefix(&format!("fault-suite-{n}-"))
            .tempdir()
            .context("creating a scratch directory")?;
        match scenario(&ctx, &args, n, dir.path()).await {
            Ok(report) => {
                if !report.passed() || args.keep_logs {
                    println!("   logs kept in {}", dir.keep().display());
                }
                reports.push(report);
            }
            Err(err) => {
                let kept = dir.keep();
                println!(
                    "   scenario {n} could not run: {err:#} (logs kept in {})",
                    kept.display()
                );
                errors.push(format!("scenario {n}: {err:#}"));
            }
        }
    }
    println!("\n| scenario | checks | failed |");
    println!("|---|---:|---:|");
    for r in &reports {
        let failed = r.checks.iter().filter(|c| !c.passed).count();
        println!("| {} | {} | {failed} |", r.scenario, r.checks.len());
    }
    let failed: Vec<String> = reports
        .iter()
        .flat_map(|r| {
            r.checks
                .iter()
                .filter(|c| !c.passed)
                .map(move |c| format!("{}: {} ({})", r.scenario, c.what, c.detail))
        })
        .chain(errors)
        .collect();
    if failed.is_empty() {
        println!("\nall checks passed");
        Ok(())
    } else {
        for f in &failed {
            println!("FAILED {f}");
        }
        anyhow::bail!("{} check(s) failed", failed.len())
    }
}
