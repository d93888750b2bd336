//! `receiver-load`: replays a realistic signed Stripe event corpus against the real
//! `sales-block` service (a release build, run as a child process on a fresh PostgreSQL
//! database per level) at several connection counts, then checks the mirror against the
//! corpus's final states. See docs/BENCHMARKS.md.
//!
//! ```sh
//! cargo build --release -p sales-block
//! cargo run --release -p sales-bench --bin receiver-load -- --fresh --events 20000 --levels 8,32,64
//! ```

mod ceiling;
mod profile;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use sales_bench::corpus::{self, Corpus, Delivery};
use sales_bench::load;
use sales_bench::procfs::{self, CpuSnapshot, CpuUsage, Sampler};
use sales_bench::service::{self, BenchDatabase, ServiceEnv};
use sales_bench::verify::{self, Verdict};

use crate::ceiling::Ceiling;

#[derive(Debug, Parser)]
#[command(
    name = "receiver-load",
    about = "Load test of POST /stripe/{url_id}/webhook on PostgreSQL, with a correctness check of the mirror"
)]
struct Args {
    #[command(flatten)]
    setup: sales_bench::Setup,
    /// Deliveries per level (duplicates included).
    #[arg(long, default_value_t = 20_000)]
    events: usize,
    /// Concurrent connections, one level each (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [8, 32, 64])]
    levels: Vec<usize>,
    /// SALES_DATABASE_POOL_SIZE of the service.
    #[arg(long, default_value_t = 16)]
    pool_size: u32,
    /// SALES_RECEIVER_WRITERS of the service: webhook transactions in flight (0: its default).
    #[arg(long, default_value_t = 0)]
    receiver_writers: u32,
    /// Seed of the corpus (the same seed gives the same bytes).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Share of deliveries that repeat an earlier event byte for byte (0 with --fresh).
    #[arg(long, default_value_t = 0.02)]
    duplicate_rate: f64,
    /// Every delivery of the load is a new event (no repeats mixed in); repeats are measured
    /// in a phase of their own (--repeats).
    #[arg(long)]
    fresh: bool,
    /// After the load, send this many of its deliveries again (spread over the corpus) and
    /// measure them on their own: every one is a repeat of a stored event.
    #[arg(long, default_value_t = 0)]
    repeats: usize,
    /// Seconds of the pgbench ceiling step before each level (0: skip it): one
    /// autocommitted INSERT ... ON CONFLICT DO UPDATE of a ~3.5 kB jsonb row per
    /// transaction, at the level's connection count, on a fresh database.
    #[arg(long, default_value_t = 10)]
    ceiling_seconds: u64,
    /// Pairs of consecutive events of one object delivered newest first, per distinct event.
    #[arg(long, default_value_t = 0.03)]
    reversed_rate: f64,
    /// Upper bound on one level's load phase, in seconds (the run stops by itself).
    #[arg(long, default_value_t = 300)]
    max_seconds: u64,
    /// Print `pg_waldump --stats=record` of each level's load (needs read access to the
    /// server's pg_wal: run as its owner or root on the database's machine).
    #[arg(long)]
    waldump: bool,
    /// Keep each level's database (for inspection) instead of dropping it.
    #[arg(long)]
    keep_databases: bool,
}

struct LevelReport {
    connections: usize,
    load: load::LoadResult,
    /// The repeats phase, if any.
    repeats: Option<load::LoadResult>,
    ceiling: Option<Ceiling>,
    /// WAL bytes written during the load (cluster-wide).
    wal_bytes: i64,
    /// Table statistics and, with --waldump, WAL by record type.
    profile: Vec<String>,
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

    /// CPU µs per delivery of the load: (PostgreSQL, service).
    fn cpu_us(&self) -> (f64, f64) {
        let per = self.load.wall.as_secs_f64() / self.load.sent.max(1) as f64 * 1e6;
        (self.cpu.postgres * per, self.cpu.service * per)
    }

    fn wal_per_event(&self) -> f64 {
        self.wal_bytes as f64 / self.load.sent.max(1) as f64
    }

    /// The receiver's events/s over pgbench's transactions/s at the same connection count.
    fn ratio(&self) -> Option<f64> {
        self.ceiling.as_ref().map(|c| self.rate() / c.tps.max(1e-9))
    }

    fn failed(&self) -> bool {
        let v = &self.verdict;
        self.load.non_2xx() > 0
            || self.load.truncated
            || self.repeats.as_ref().is_some_and(|r| r.non_2xx() > 0)
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
    deliveries: &Arc<Vec<Delivery>>,
    connections: usize,
) -> anyhow::Result<LevelReport> {
    let dir = tempfile::Builder::new()
        .prefix("sales-bench-")
        .tempdir()
        .context("creating a scratch directory")?;
    match run_level_in(args, bin, corpus, deliveries, connections, dir.path()).await {
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
    deliveries: &Arc<Vec<Delivery>>,
    connections: usize,
    dir: &Path,
) -> anyhow::Result<LevelReport> {
    let ceiling = if args.ceiling_seconds > 0 {
        let (admin, seconds, dir) = (
            args.setup.postgres_url.clone(),
            args.ceiling_seconds,
            dir.to_owned(),
        );
        let row = ceiling::ceiling_row(deliveries.iter().map(|d| d.body.as_str()));
        let ceiling = tokio::task::spawn_blocking(move || {
            ceiling::run(&admin, connections, seconds, &row, &dir)
        })
        .await??;
        println!(
            "level {connections:>2} ceiling: pgbench {} clients, {:.0} tps (latency avg {:.2} ms); postgres {:.2} cores = {:.0} µs/txn; WAL {:.0} B/txn",
            ceiling.clients,
            ceiling.tps,
            ceiling.latency_avg_ms,
            ceiling.cpu.postgres,
            ceiling.postgres_us(),
            ceiling.wal_per_txn()
        );
        Some(ceiling)
    } else {
        None
    };
    let (admin, keep) = (args.setup.postgres_url.clone(), args.keep_databases);
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
    let profiler_url = db.url.clone();
    let mut profiler = tokio::task::spawn_blocking(move || {
        sales_bench::statements::Profiler::connect(&profiler_url)
    })
    .await??;
    let lsn_url = db.url.clone();
    let lsn = tokio::task::spawn_blocking(move || ceiling::wal_lsn(&lsn_url)).await??;
    if let Some(profiler) = profiler.as_mut() {
        tokio::task::block_in_place(|| profiler.reset())?;
    }
    let before = CpuSnapshot::take(pid);
    let sampler = Sampler::start(pid);
    let load = load::run(
        client.clone(),
        url.clone(),
        running.signing_secret.clone(),
        deliveries.clone(),
        connections,
        Duration::from_secs(args.max_seconds),
    )
    .await?;
    let mut samples = sampler.finish().await?;
    let cpu = before.until(&CpuSnapshot::take(pid));
    let statements = match profiler.as_mut() {
        Some(profiler) => tokio::task::block_in_place(|| profiler.read(12))?,
        None => Vec::new(),
    };
    let lsn_url = db.url.clone();
    let (wal_bytes, lsn, lsn_end) = tokio::task::spawn_blocking(move || {
        let bytes = ceiling::wal_since(&lsn_url, &lsn)?;
        anyhow::Ok((bytes, lsn, ceiling::wal_lsn(&lsn_url)?))
    })
    .await??;
    let repeats = if let Some(every) = deliveries.len().checked_div(args.repeats) {
        let every = every.max(1);
        let again: Vec<Delivery> = deliveries
            .iter()
            .step_by(every)
            .take(args.repeats)
            .cloned()
            .collect();
        let sampler = Sampler::start(pid);
        let repeats = load::run(
            client,
            url,
            running.signing_secret.clone(),
            Arc::new(again),
            connections,
            Duration::from_secs(args.max_seconds),
        )
        .await?;
        let more = sampler.finish().await?;
        samples.peak_rss_kb = samples.peak_rss_kb.max(more.peak_rss_kb);
        Some(repeats)
    } else {
        None
    };
    let hwm_kb = procfs::status_kb(pid, "VmHWM");

    let (url, checked) = (db.url.clone(), corpus.clone());
    let verdict = tokio::task::spawn_blocking(move || verify::verify(&url, &checked)).await??;
    running.service.stop()?;
    let (url, events, waldump) = (db.url.clone(), load.sent, args.waldump);
    let profile = tokio::task::spawn_blocking(move || {
        let mut lines = profile::tables(&url, events)?;
        if !statements.is_empty() {
            lines.extend(sales_bench::statements::lines(
                &statements,
                events as u64,
                "event",
                110,
            ));
        }
        if waldump {
            match profile::waldump(&url, &lsn, &lsn_end) {
                Ok(more) => lines.extend(more),
                Err(err) => lines.push(format!("pg_waldump: {err:#}")),
            }
        }
        anyhow::Ok(lines)
    })
    .await??;
    tokio::task::spawn_blocking(move || drop(db)).await?;
    let service_log = std::fs::read_to_string(dir.join("service.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    Ok(LevelReport {
        connections,
        load,
        repeats,
        ceiling,
        wal_bytes,
        profile,
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
    let (pg_us, service_us) = r.cpu_us();
    println!(
        "          per delivery: postgres {pg_us:.0} µs CPU, service {service_us:.0} µs CPU, WAL {:.0} B{}",
        r.wal_per_event(),
        r.ratio()
            .map_or_else(String::new, |x| format!("; {x:.2}x the pgbench ceiling"))
    );
    for line in &r.profile {
        println!("          {line}");
    }
    if let Some(rep) = &r.repeats {
        println!(
            "          repeats: {} deliveries in {:.2} s = {:.0}/s; p50 {:.1} ms, p99 {:.1} ms; statuses {:?}, transport errors {}",
            rep.sent,
            rep.wall.as_secs_f64(),
            rep.sent as f64 / rep.wall.as_secs_f64().max(1e-9),
            rep.latency.value_at_quantile(0.5) as f64 / 1000.0,
            rep.latency.value_at_quantile(0.99) as f64 / 1000.0,
            rep.statuses,
            rep.transport_errors
        );
        for failure in &rep.failures {
            println!("          repeat failure: {failure}");
        }
    }
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
        "corpus: {} deliveries, {} distinct events ({} duplicates, {} of them within 64 deliveries; {} reversed pairs), body {}-{} bytes, mean {}",
        corpus.deliveries.len(),
        s.distinct_events,
        s.duplicates,
        s.near_duplicates,
        s.reversed_pairs,
        s.min_body_bytes,
        s.max_body_bytes,
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
        "| connections | events/s | pgbench tps | ratio | postgres µs/event | service µs/event | WAL B/event | pgbench postgres µs/txn | pgbench WAL B/txn | repeats/s | repeats p99 ms |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in reports {
        let (pg_us, service_us) = r.cpu_us();
        let c = r.ceiling.as_ref();
        let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
        println!(
            "| {} | {:.0} | {} | {} | {pg_us:.0} | {service_us:.0} | {:.0} | {} | {} | {} | {} |",
            r.connections,
            r.rate(),
            or_dash(c.map(|c| format!("{:.0}", c.tps))),
            or_dash(r.ratio().map(|x| format!("{x:.2}"))),
            r.wal_per_event(),
            or_dash(c.map(|c| format!("{:.0}", c.postgres_us()))),
            or_dash(c.map(|c| format!("{:.0}", c.wal_per_txn()))),
            or_dash(
                r.repeats
                    .as_ref()
                    .map(|x| format!("{:.0}", x.sent as f64 / x.wall.as_secs_f64().max(1e-9)))
            ),
            or_dash(
                r.repeats
                    .as_ref()
                    .map(|x| format!("{:.1}", x.latency.value_at_quantile(0.99) as f64 / 1000.0))
            ),
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
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    if let Some(r) = reports.iter().find(|r| r.connections == 8)
        && let Some(x) = r.ratio()
    {
        println!();
        println!(
            "target at 8 connections: >= 0.6x the pgbench ceiling: {x:.2}x ({})",
            verdict(x >= 0.6)
        );
    }
    if let Some(r) = reports.iter().find(|r| r.connections == 32) {
        println!();
        println!("targets at 32 connections (reported, not enforced):");
        let rss = r.samples.peak_rss_kb as f64 / 1024.0;
        if let Some(x) = r.ratio() {
            println!(
                "  >= 1.0x the pgbench ceiling: {:.0} events/s = {x:.2}x ({})",
                r.rate(),
                verdict(x >= 1.0)
            );
        }
        println!(
            "  >= 3000 events/s: {:.0} ({})",
            r.rate(),
            verdict(r.rate() >= 3000.0)
        );
        println!(
            "  p99 <= 15 ms: {:.1} ms ({})",
            r.ms(0.99),
            verdict(r.ms(0.99) <= 15.0)
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
    let bin = args.setup.service_bin()?;
    let bin = std::fs::canonicalize(&bin).unwrap_or(bin);
    let facts = {
        let admin = args.setup.postgres_url.clone();
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
        duplicate_rate: if args.fresh { 0.0 } else { args.duplicate_rate },
        reversed_rate: args.reversed_rate,
    })?);
    print_corpus(&corpus);
    let deliveries = Arc::new(corpus.deliveries.clone());

    let mut reports = Vec::new();
    for &connections in &args.levels {
        let report = run_level(&args, &bin, &corpus, &deliveries, connections).await?;
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
