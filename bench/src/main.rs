//! `receiver-load`: replays a realistic signed Stripe event corpus against the real
//! `sales-block` service (a release build, run as a child process on a fresh PostgreSQL
//! database per level) at several connection counts, then checks the mirror against the
//! corpus's final states. See docs/BENCHMARKS.md.
//!
//! ```sh
//! cargo build --release -p sales-block
//! cargo run --release -p sales-bench --bin receiver-load -- --events 20000 --levels 8,32,64
//! ```

#![recursion_limit = "256"]

mod corpus;
mod load;
mod verify;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use crate::corpus::Corpus;
use crate::verify::Verdict;
use sales_bench::procfs::{self, CpuSnapshot, CpuUsage, Sampler};
use sales_bench::service::{self, BenchDatabase, ServiceEnv};
use sales_bench::{check_service_bin, default_service_bin};

#[derive(Debug, Parser)]
#[command(
    name = "receiver-load",
    about = "Load test of POST /stripe/{url_id}/webhook on PostgreSQL, with a correctness check of the mirror"
)]
struct Args {
    /// Deliveries per level (duplicates included).
    #[arg(long, default_value_t = 20_000)]
    events: usize,
    /// Concurrent connections, one level each (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [8, 32, 64])]
    levels: Vec<usize>,
    /// The PostgreSQL server (an admin database on it); a database is created per level.
    #[arg(
        long,
        env = "TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres_url: String,
    /// The `sales-block` binary [default: $CARGO_TARGET_DIR or the workspace's target/, then
    /// release/sales-block].
    #[arg(long)]
    service_bin: Option<PathBuf>,
    /// SALES_DATABASE_POOL_SIZE of the service.
    #[arg(long, default_value_t = 16)]
    pool_size: u32,
    /// SALES_RECEIVER_WRITERS of the service: webhook transactions in flight (0: its default).
    #[arg(long, default_value_t = 0)]
    receiver_writers: u32,
    /// Seed of the corpus (the same seed gives the same bytes).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Share of deliveries that repeat an earlier event byte for byte.
    #[arg(long, default_value_t = 0.02)]
    duplicate_rate: f64,
    /// Pairs of consecutive events of one object delivered newest first, per distinct event.
    #[arg(long, default_value_t = 0.03)]
    reversed_rate: f64,
    /// Upper bound on one level's load phase, in seconds (the run stops by itself).
    #[arg(long, default_value_t = 300)]
    max_seconds: u64,
    /// Keep each level's database (for inspection) instead of dropping it.
    #[arg(long)]
    keep_databases: bool,
}

struct LevelReport {
    connections: usize,
    load: load::LoadResult,
    samples: procfs::Samples,
    hwm_kb: Option<u64>,
    cpu: CpuUsage,
    verdict: Verdict,
    service_log: Vec<String>,
}

impl LevelReport {
    fn rate(&self) -> f64 {
        self.load.sent as f64 / self.load.wall.as_secs_f64().max(1e-9)
    }

    fn ms(&self, quantile: f64) -> f64 {
        self.load.latency.value_at_quantile(quantile) as f64 / 1000.0
    }

    fn failed(&self) -> bool {
        let v = &self.verdict;
        self.load.non_2xx() > 0
            || self.load.truncated
            || v.wrong_rows > 0
            || v.events_missing > 0
            || v.events_unknown > 0
            || v.events_stored_twice > 0
    }
}

async fn run_level(
    args: &Args,
    bin: &Path,
    corpus: &Arc<Corpus>,
    connections: usize,
) -> anyhow::Result<LevelReport> {
    let dir = tempfile::Builder::new()
        .prefix("sales-bench-")
        .tempdir()
        .context("creating a scratch directory")?;
    match run_level_in(args, bin, corpus, connections, dir.path()).await {
        Ok(report) => Ok(report),
        Err(err) => {
            let kept = dir.keep();
            Err(err.context(format!(
                "level {connections}: logs kept in {}",
                kept.display()
            )))
        }
    }
}

async fn run_level_in(
    args: &Args,
    bin: &Path,
    corpus: &Arc<Corpus>,
    connections: usize,
    dir: &Path,
) -> anyhow::Result<LevelReport> {
    let (admin, keep) = (args.postgres_url.clone(), args.keep_databases);
    let db = tokio::task::spawn_blocking(move || BenchDatabase::create(&admin, keep)).await??;
    let mut env = ServiceEnv::new(bin.to_owned(), dir, db.url.clone(), args.pool_size);
    env.receiver_writers = args.receiver_writers;
    let setup_http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .context("building an HTTP client")?;
    let running = service::start(&env, &setup_http).await?;
    let pid = running.service.pid();
    // Let the start-up settle (the emulator is gone, the pool is open).
    tokio::time::sleep(Duration::from_secs(1)).await;

    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(connections)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the load client")?;
    let url = format!("{}/stripe/{}/webhook", running.base_url, running.url_id);
    let before = CpuSnapshot::take(pid);
    let sampler = Sampler::start(pid);
    let load = load::run(
        client,
        url,
        running.signing_secret.clone(),
        corpus.clone(),
        connections,
        Duration::from_secs(args.max_seconds),
    )
    .await?;
    let samples = sampler.finish().await?;
    let cpu = before.until(&CpuSnapshot::take(pid));
    let hwm_kb = procfs::status_kb(pid, "VmHWM");

    let (url, checked) = (db.url.clone(), corpus.clone());
    let verdict = tokio::task::spawn_blocking(move || verify::verify(&url, &checked)).await??;
    running.service.stop()?;
    tokio::task::spawn_blocking(move || drop(db)).await?;
    let service_log = std::fs::read_to_string(dir.join("service.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    Ok(LevelReport {
        connections,
        load,
        samples,
        hwm_kb,
        cpu,
        verdict,
        service_log,
    })
}

fn print_level(r: &LevelReport, corpus: &Corpus) {
    let l = &r.load;
    let v = &r.verdict;
    println!(
        "level {:>2}: {} deliveries in {:.2} s = {:.0}/s; p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms; statuses {:?}, transport errors {}{}",
        r.connections,
        l.sent,
        l.wall.as_secs_f64(),
        r.rate(),
        r.ms(0.5),
        r.ms(0.9),
        r.ms(0.99),
        l.latency.max() as f64 / 1000.0,
        l.statuses,
        l.transport_errors,
        if l.truncated {
            " (stopped by --max-seconds)"
        } else {
            ""
        },
    );
    println!(
        "          service RSS peak {:.1} MB (mean {:.1} MB, {} samples), VmHWM {}; load1 max {:.2}",
        r.samples.peak_rss_kb as f64 / 1024.0,
        r.samples.mean_rss_kb as f64 / 1024.0,
        r.samples.samples,
        r.hwm_kb.map_or_else(
            || "?".to_owned(),
            |k| format!("{:.1} MB", k as f64 / 1024.0)
        ),
        r.samples.max_load1,
    );
    let c = &r.cpu;
    println!(
        "          CPU (cores of {:.0}): machine {:.2} = service {:.2} + postgres {:.2} + bench {:.2} + other {:.2}",
        c.machine_cores, c.machine_busy, c.service, c.postgres, c.bench, c.other
    );
    println!(
        "          mirror: {} rows checked, {} wrong; stripe_events: {} rows, {} missing, {} not in the corpus, {} stored twice; outcomes {:?}",
        v.rows_checked,
        v.wrong_rows,
        v.events_stored,
        v.events_missing,
        v.events_unknown,
        v.events_stored_twice,
        v.outcomes
    );
    for failure in &l.failures {
        println!("          failure: {failure}");
    }
    for wrong in &v.wrong {
        println!(
            "          wrong row: {} {}: expected {}, found {}",
            wrong.table, wrong.object_id, wrong.expected, wrong.actual
        );
        for sent in corpus.history.get(&wrong.object_id).into_iter().flatten() {
            println!(
                "              sent: #{} {} {} created={}{}",
                sent.position,
                sent.event_id,
                sent.kind,
                sent.created,
                if sent.duplicate { " (duplicate)" } else { "" }
            );
        }
        for stored in &wrong.stored {
            println!("              stored: {stored}");
        }
    }
    if !r.service_log.is_empty() {
        println!(
            "          the service logged {} lines at warn or above; first ones:",
            r.service_log.len()
        );
        for line in r.service_log.iter().take(5) {
            println!("              {line}");
        }
    }
}

fn print_corpus(corpus: &Corpus) {
    let s = &corpus.stats;
    println!(
        "corpus: {} deliveries, {} distinct events ({} duplicates, {} of them within 64 deliveries; {} reversed pairs), mean body {} bytes",
        corpus.deliveries.len(),
        s.distinct_events,
        s.duplicates,
        s.near_duplicates,
        s.reversed_pairs,
        s.mean_body_bytes
    );
    println!(
        "        objects: {} subscriptions, {} payment intents, {} checkout sessions, {} customers, {} unmirrored",
        s.subscriptions, s.payments, s.checkouts, s.customers, s.unmirrored
    );
    let types: Vec<String> = s.by_type.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!("        deliveries by type: {}", types.join(", "));
}

fn print_summary(reports: &[LevelReport]) {
    println!();
    println!(
        "| connections | events | seconds | events/s | p50 ms | p90 ms | p99 ms | max ms | non-2xx | peak RSS MB | wrong rows |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in reports {
        println!(
            "| {} | {} | {:.2} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.1} | {} |",
            r.connections,
            r.load.sent,
            r.load.wall.as_secs_f64(),
            r.rate(),
            r.ms(0.5),
            r.ms(0.9),
            r.ms(0.99),
            r.load.latency.max() as f64 / 1000.0,
            r.load.non_2xx(),
            r.samples.peak_rss_kb as f64 / 1024.0,
            r.verdict.wrong_rows
        );
    }
    println!();
    println!(
        "| connections | load1 max | machine busy (cores) | service | postgres | load generator | other |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for r in reports {
        let c = &r.cpu;
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            r.connections,
            r.samples.max_load1,
            c.machine_busy,
            c.service,
            c.postgres,
            c.bench,
            c.other
        );
    }
    if let Some(r) = reports.iter().find(|r| r.connections == 32) {
        println!();
        println!("targets at 32 connections (reported, not enforced):");
        let rss = r.samples.peak_rss_kb as f64 / 1024.0;
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        println!(
            "  >= 3000 events/s: {:.0} ({})",
            r.rate(),
            verdict(r.rate() >= 3000.0)
        );
        println!(
            "  p99 <= 25 ms: {:.1} ms ({})",
            r.ms(0.99),
            verdict(r.ms(0.99) <= 25.0)
        );
        println!("  RSS <= 64 MB: {rss:.1} MB ({})", verdict(rss <= 64.0));
        println!(
            "  zero wrong rows: {} ({})",
            r.verdict.wrong_rows,
            verdict(r.verdict.wrong_rows == 0)
        );
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        !args.levels.is_empty() && args.levels.iter().all(|&c| c > 0),
        "--levels needs positive connection counts"
    );
    let bin = args.service_bin.clone().unwrap_or_else(default_service_bin);
    let bin = std::fs::canonicalize(&bin).unwrap_or(bin);
    check_service_bin(&bin)?;
    let facts = {
        let admin = args.postgres_url.clone();
        tokio::task::spawn_blocking(move || service::server_facts(&admin)).await??
    };
    println!(
        "receiver-load {} — {}",
        std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    println!(
        "service: {} (pool {}); cores: {}; {}",
        bin.display(),
        args.pool_size,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        facts
    );
    let corpus = Arc::new(corpus::generate(&corpus::Options {
        events: args.events,
        seed: args.seed,
        duplicate_rate: args.duplicate_rate,
        reversed_rate: args.reversed_rate,
    })?);
    print_corpus(&corpus);

    let mut reports = Vec::new();
    for &connections in &args.levels {
        let report = run_level(&args, &bin, &corpus, connections).await?;
        print_level(&report, &corpus);
        reports.push(report);
    }
    print_summary(&reports);
    let failed: Vec<usize> = reports
        .iter()
        .filter(|r| r.failed())
        .map(|r| r.connections)
        .collect();
    anyhow::ensure!(
        failed.is_empty(),
        "non-2xx answers, wrong rows or a wrong stripe_events count at {failed:?} connections (see above)"
    );
    Ok(())
}
