//! `list-load`: the admin list of subscriptions at scale (issue 15). Runs the real release
//! service on a fresh PostgreSQL database, seeds 100k subscriptions for one tenant (1M across
//! ten with `--tenants 10`), drives `GET /stripe/subscriptions?page=K&records=20` at 32
//! connections for pages 1, 100, middle and last (also with `status=active`, one customer,
//! and a non-admin user), and runs the best raw SQL for the same page through pgbench in the
//! same run. See docs/BENCHMARKS.md.
//!
//! ```sh
//! cargo build --release -p sales-block
//! cargo run --release -p sales-bench --bin list-load -- --rows 100000
//! ```

mod cases;
mod drive;
mod pgbench;
mod seed;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use diesel::{Connection, PgConnection};
use sales_bench::procfs::{CpuSnapshot, CpuUsage};
use sales_bench::service::{self, BenchDatabase, ServiceEnv};

use crate::cases::{Caller, Case};
use crate::drive::{LoadResult, Target};
use crate::pgbench::RawResult;
use crate::seed::SeedSpec;

/// The JWT subjects of the two callers.
const ADMIN: &str = "bench-admin";
const USER: &str = "bench-user";

/// Targets of issue 15 (reported, not enforced).
const P99_TARGET_MS: f64 = 10.0;
const RATIO_TARGET: f64 = 0.5;

#[derive(Debug, Parser)]
#[command(
    name = "list-load",
    about = "Load test of GET /stripe/subscriptions at scale on PostgreSQL, against the same pages in raw SQL through pgbench"
)]
struct Args {
    #[command(flatten)]
    setup: sales_bench::Setup,
    /// Subscriptions of the measured tenant (and of each other tenant).
    #[arg(long, default_value_t = 100_000)]
    rows: i64,
    /// Tenants seeded alike; the first is measured (10 gives 1M rows with the default --rows).
    #[arg(long, default_value_t = 1)]
    tenants: usize,
    /// Concurrent connections, for the service's load and for pgbench.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds of load per case, for each side.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds of unrecorded requests before each case's service load.
    #[arg(long, default_value_t = 1)]
    warmup_seconds: u64,
    /// Only the cases whose name contains one of these (comma-separated), e.g. `all page 1`.
    #[arg(long, value_delimiter = ',')]
    cases: Vec<String>,
    /// SALES_DATABASE_POOL_SIZE of the service.
    #[arg(long, default_value_t = 16)]
    pool_size: u32,
    /// The pgbench binary.
    #[arg(long, default_value = "pgbench")]
    pgbench: PathBuf,
    /// pgbench's threads (`-j`).
    #[arg(long, default_value_t = 2)]
    pgbench_threads: usize,
    /// Keep the database (for inspection) instead of dropping it.
    #[arg(long)]
    keep_database: bool,
    /// Skip the floors measured after the cases (what a request costs with no list in it).
    #[arg(long)]
    no_floors: bool,
}

/// A request measured after the cases for what any request costs here, with less and less
/// of the list's work in it: the bound of what a list request could reach on this machine.
struct Floor {
    name: &'static str,
    path: &'static str,
    expect: drive::Expect,
}

fn floors() -> Vec<Floor> {
    let expect = |status: u16, needle: &str| drive::Expect {
        status,
        needle: needle.to_owned(),
    };
    vec![
        Floor {
            name: "HTTP only (GET /health: no auth, no database)",
            path: "/health",
            expect: expect(200, "\"status\":\"ok\""),
        },
        Floor {
            name: "HTTP + AppId + JWT (the list route, page=0 refused before the database)",
            path: "/stripe/subscriptions?page=0&records=20",
            expect: expect(400, "\"page\""),
        },
        Floor {
            name: "HTTP + one pooled database round trip (GET /ready: checkout ping + SELECT 1)",
            path: "/ready",
            expect: expect(200, "\"ready\""),
        },
    ]
}

struct FloorReport {
    name: &'static str,
    load: LoadResult,
    cpu: CpuUsage,
}

struct CaseReport {
    case: Case,
    service: LoadResult,
    service_cpu: CpuUsage,
    raw: RawResult,
    /// Only the machine's figure: pgbench's backends exit before the second snapshot, so
    /// their CPU time cannot be read from /proc.
    raw_cpu: CpuUsage,
}

impl CaseReport {
    fn ratio(&self) -> f64 {
        self.service.rate() / self.raw.tps.max(1e-9)
    }
}

fn print_case(r: &CaseReport) {
    let (c, s, raw) = (&r.case, &r.service, &r.raw);
    println!(
        "{} (page {} of {}, total {}): service {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms, statuses {:?}, errors {}",
        c.name,
        c.page,
        cases::page_count(c.total),
        c.total,
        s.rate(),
        s.ms(0.5),
        s.ms(0.99),
        s.latency.max() as f64 / 1000.0,
        s.statuses,
        s.errors(),
    );
    println!(
        "    raw ({}, newest {:.2} ms / oldest {:.2} ms alone): {:.0} tps, p50 {:.2} ms, p99 {:.2} ms, {} transactions, {} failed",
        c.form.label(),
        c.form_ms.0,
        c.form_ms.1,
        raw.tps,
        raw.ms(0.5),
        raw.ms(0.99),
        raw.transactions,
        raw.failed,
    );
    println!(
        "    service / raw: throughput {:.3}, p99 {:.2} ms vs {:.2} ms",
        r.ratio(),
        s.ms(0.99),
        raw.ms(0.99)
    );
    let (a, b) = (&r.service_cpu, &r.raw_cpu);
    println!(
        "    CPU (cores) service load: machine {:.2} = service {:.2} + postgres {:.2} + load generator {:.2} + other {:.2}; pgbench: machine {:.2}",
        a.machine_busy, a.service, a.postgres, a.bench, a.other, b.machine_busy
    );
    let per_request = |cores: f64| cores / s.rate().max(1e-9) * 1000.0;
    println!(
        "    CPU per request: service {:.3} ms, postgres {:.3} ms, load generator {:.3} ms",
        per_request(a.service),
        per_request(a.postgres),
        per_request(a.bench)
    );
    if s.errors() > 0 || raw.failed > 0 {
        println!(
            "    !!! ERRORS: {} service errors ({} wrong totals, {} transport), {} failed pgbench transactions",
            s.errors(),
            s.wrong_totals,
            s.transport_errors,
            raw.failed
        );
    }
    for failure in s.failures.iter().take(3) {
        println!("    !!! {failure}");
    }
}

fn print_summary(reports: &[CaseReport]) {
    println!();
    println!(
        "| case | page | total | req/s | p50 ms | p99 ms | errors | raw form | raw tps | raw p50 ms | raw p99 ms | service / raw |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|");
    for r in reports {
        let (c, s, raw) = (&r.case, &r.service, &r.raw);
        println!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {} | {} | {:.0} | {:.2} | {:.2} | {:.3} |",
            c.name,
            c.page,
            c.total,
            s.rate(),
            s.ms(0.5),
            s.ms(0.99),
            s.errors(),
            c.form.label(),
            raw.tps,
            raw.ms(0.5),
            raw.ms(0.99),
            r.ratio()
        );
    }
    println!();
    println!(
        "| case | service load: machine | service | postgres | load generator | other | pgbench: machine |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in reports {
        let (a, b) = (&r.service_cpu, &r.raw_cpu);
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            r.case.name, a.machine_busy, a.service, a.postgres, a.bench, a.other, b.machine_busy
        );
    }
    println!();
    println!(
        "targets (reported, not enforced): p99 <= {P99_TARGET_MS} ms and service / raw >= {RATIO_TARGET}"
    );
    for r in reports {
        let p99 = r.service.ms(0.99);
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        println!(
            "  {}: p99 {:.2} ms ({}), ratio {:.3} ({})",
            r.case.name,
            p99,
            verdict(p99 <= P99_TARGET_MS),
            r.ratio(),
            verdict(r.ratio() >= RATIO_TARGET)
        );
    }
}

fn client(connections: usize) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(connections)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()
        .context("building the HTTP client")
}

/// Blocking database work off the runtime's threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f).await?
}

async fn run(args: &Args, bin: &Path, dir: &Path) -> anyhow::Result<Vec<CaseReport>> {
    let (admin_url, keep) = (args.setup.postgres_url.clone(), args.keep_database);
    let db = blocking(move || BenchDatabase::create(&admin_url, keep)).await?;
    println!("database: {}", db.name);
    let mut env = ServiceEnv::new(bin.to_owned(), dir, db.url.clone(), args.pool_size);
    // The list is measured, not the per-tenant and per-caller request limits (100 and 20
    // requests/s by default): a rate of 0 turns a limit off.
    for key in [
        "SALES_RATE_LIMIT_TENANT_PER_SEC",
        "SALES_RATE_LIMIT_CALLER_PER_SEC",
    ] {
        env.extra_env.push((key.to_owned(), "0".to_owned()));
    }
    // Lists never call Stripe: the tenants point at a port nobody listens on.
    let nowhere = "http://127.0.0.1:9";
    let mut tenants = Vec::with_capacity(args.tenants);
    for n in 1..=args.tenants {
        tenants.push(env.create_tenant(&format!("bench-{n}"), nowhere)?);
    }
    let measured = &tenants[0];
    let admin_token = env.token(&measured.api_key, ADMIN, true)?;
    let user_token = env.token(&measured.api_key, USER, false)?;
    let http = client(args.connections)?;
    // The service starts (and installs what it installs at start) before any row exists.
    let (service, base_url) = env.serve(&http).await?;
    let pid = service.pid();

    let now = chrono::Utc::now().timestamp();
    let ids: Vec<String> = tenants.iter().map(|t| t.id.clone()).collect();
    let (url, rows) = (db.url.clone(), args.rows);
    println!(
        "seeding {} tenant(s) x {} subscriptions ...",
        ids.len(),
        rows
    );
    let times = blocking(move || {
        let specs: Vec<SeedSpec<'_>> = ids
            .iter()
            .map(|id| SeedSpec {
                tenant_id: id,
                rows,
                admin: ADMIN,
                user: USER,
                now,
            })
            .collect();
        seed::seed(&url, &specs)
    })
    .await?;
    println!(
        "seeded {} subscriptions in {:.1} s (inserts), VACUUM ANALYZE {:.1} s",
        rows * tenants.len() as i64,
        times.insert.as_secs_f64(),
        times.vacuum.as_secs_f64()
    );

    let (url, tenant_id, wanted) = (db.url.clone(), measured.id.clone(), args.cases.clone());
    let prepared = blocking(move || {
        let mut conn =
            PgConnection::establish(&url).with_context(|| format!("connecting to {url}"))?;
        let customer = cases::busiest_customer(&mut conn, &tenant_id)?;
        let specs = cases::specs(&customer);
        let mut out = Vec::new();
        for spec in specs
            .iter()
            .filter(|s| wanted.is_empty() || wanted.iter().any(|w| s.name.contains(w.as_str())))
        {
            let case = cases::prepare(&mut conn, &tenant_id, USER, spec)?;
            if !out
                .iter()
                .any(|c: &Case| c.query == case.query && c.caller == case.caller)
            {
                out.push(case);
            }
        }
        anyhow::Ok(out)
    })
    .await?;
    anyhow::ensure!(
        !prepared.is_empty(),
        "no case matches --cases {:?}",
        args.cases
    );

    let options = pgbench::Options {
        bin: &args.pgbench,
        database_url: &db.url,
        connections: args.connections,
        threads: args.pgbench_threads,
        duration: Duration::from_secs(args.seconds),
        dir,
    };
    let mut profiler = {
        let url = db.url.clone();
        blocking(move || sales_bench::statements::Profiler::connect(&url)).await?
    };
    let mut reports = Vec::new();
    for (n, case) in prepared.into_iter().enumerate() {
        let target = Target {
            url: format!("{base_url}/stripe/subscriptions?{}", case.query),
            api_key: measured.api_key.clone(),
            token: match case.caller {
                Caller::Admin => admin_token.clone(),
                Caller::User => user_token.clone(),
            },
        };
        // A fresh client per case: connections left idle while pgbench ran would have passed
        // the service's keep-alive timeout, and a request sent on one as the server closes it
        // fails ("connection closed before message completed"), which is not the list's doing.
        let http = client(args.connections)?;
        drive::check_page(&http, &target, case.total, &case.expected_ids)
            .await
            .with_context(|| format!("case {}", case.name))?;
        if args.warmup_seconds > 0 {
            let warm = Duration::from_secs(args.warmup_seconds);
            let expect = drive::Expect::page(case.total);
            drive::run(&http, &target, &expect, args.connections, warm).await?;
        }
        if let Some(profiler) = profiler.as_mut() {
            tokio::task::block_in_place(|| profiler.reset())?;
        }
        let before = CpuSnapshot::take(pid);
        let load = drive::run(
            &http,
            &target,
            &drive::Expect::page(case.total),
            args.connections,
            Duration::from_secs(args.seconds),
        )
        .await?;
        let service_cpu = before.until(&CpuSnapshot::take(pid));
        let statements = match profiler.as_mut() {
            Some(profiler) => tokio::task::block_in_place(|| profiler.read(8))?,
            None => Vec::new(),
        };

        let before = CpuSnapshot::take(pid);
        let tag = format!("case{n}");
        let sql = case.raw_sql.clone();
        let raw = tokio::task::block_in_place(|| pgbench::run(&options, &tag, &sql))?;
        let raw_cpu = before.until(&CpuSnapshot::take(pid));
        let report = CaseReport {
            case,
            service: load,
            service_cpu,
            raw,
            raw_cpu,
        };
        print_case(&report);
        if !statements.is_empty() {
            let lines = sales_bench::statements::lines(
                &statements,
                report.service.requests,
                "request",
                110,
            );
            for line in lines {
                println!("    {line}");
            }
        }
        reports.push(report);
    }
    let mut floor_reports = Vec::new();
    if !args.no_floors {
        for floor in floors() {
            let target = Target {
                url: format!("{base_url}{}", floor.path),
                api_key: measured.api_key.clone(),
                token: admin_token.clone(),
            };
            let http = client(args.connections)?;
            let connections = args.connections;
            if args.warmup_seconds > 0 {
                let warm = Duration::from_secs(args.warmup_seconds);
                drive::run(&http, &target, &floor.expect, connections, warm).await?;
            }
            let before = CpuSnapshot::take(pid);
            let seconds = Duration::from_secs(args.seconds);
            let load = drive::run(&http, &target, &floor.expect, connections, seconds).await?;
            let cpu = before.until(&CpuSnapshot::take(pid));
            let report = FloorReport {
                name: floor.name,
                load,
                cpu,
            };
            print_floor(&report);
            floor_reports.push(report);
        }
        // The database's own floor: one trivial statement per transaction.
        let raw = tokio::task::block_in_place(|| pgbench::run(&options, "select1", "SELECT 1;"))?;
        println!(
            "floor: pgbench SELECT 1 (the database's round trip alone): {:.0} tps, p50 {:.2} ms, p99 {:.2} ms, {} failed",
            raw.tps,
            raw.ms(0.5),
            raw.ms(0.99),
            raw.failed
        );
    }
    service.stop()?;
    blocking(move || {
        drop(db);
        Ok(())
    })
    .await?;
    let log = std::fs::read_to_string(dir.join("service.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    if !lines.is_empty() {
        println!(
            "the service logged {} lines at warn or above; first ones:",
            lines.len()
        );
        for line in lines.iter().take(5) {
            println!("    {line}");
        }
    }
    anyhow::ensure!(
        floor_reports.iter().all(|f| f.load.errors() == 0),
        "a floor's answers were not all as expected (see above)"
    );
    Ok(reports)
}

fn print_floor(f: &FloorReport) {
    let (l, c) = (&f.load, &f.cpu);
    let per_request = |cores: f64| cores / l.rate().max(1e-9) * 1000.0;
    println!(
        "floor: {}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, statuses {:?}, errors {}; CPU per request: service {:.3} ms, postgres {:.3} ms, load generator {:.3} ms",
        f.name,
        l.rate(),
        l.ms(0.5),
        l.ms(0.99),
        l.statuses,
        l.errors(),
        per_request(c.service),
        per_request(c.postgres),
        per_request(c.bench),
    );
    for failure in l.failures.iter().take(3) {
        println!("    !!! {failure}");
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.rows >= 20, "--rows must be at least 20");
    anyhow::ensure!(
        args.tenants >= 1 && args.connections >= 1 && args.seconds >= 1,
        "--tenants, --connections and --seconds must be positive"
    );
    let bin = args.setup.service_bin()?;
    let facts = {
        let admin = args.setup.postgres_url.clone();
        blocking(move || service::server_facts(&admin)).await?
    };
    println!(
        "list-load {} — {}",
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
    let dir = tempfile::Builder::new()
        .prefix("sales-list-bench-")
        .tempdir()
        .context("creating a scratch directory")?;
    let reports = match run(&args, &bin, dir.path()).await {
        Ok(reports) => reports,
        Err(err) => {
            let kept = dir.keep();
            return Err(err.context(format!("logs kept in {}", kept.display())));
        }
    };
    print_summary(&reports);
    let failed: Vec<&str> = reports
        .iter()
        .filter(|r| r.service.errors() > 0 || r.raw.failed > 0)
        .map(|r| r.case.name.as_str())
        .collect();
    anyhow::ensure!(
        failed.is_empty(),
        "errors (non-200 answers, wrong totals or failed pgbench transactions) in {failed:?} (see above)"
    );
    Ok(())
}
