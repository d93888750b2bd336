//! `sync-load`: a historical sync at scale (issue 17). Runs the real release service on a
//! fresh PostgreSQL database and the emulator (the release `stripe-emulator` binary, else
//! `sales-block stripe-emulator`), seeds the emulator with ~100k objects without events, then
//! in the same run:
//! 1. a bare paging pass: every list the sync reads, 100 per page, without writing anything
//!    (what Stripe's side costs), three times: the median pass is the one compared;
//! 2. the backfill: `POST /stripe/sync/historical` until the job succeeds, with the service's
//!    peak resident memory;
//! 3. PostgreSQL's own cost for the rows the backfill wrote (`floor`: the same rows, raw
//!    SQL), and from it the least time any service could take on this machine.
//!
//! It prints objects per second of both, the ratio backfill time / bare-pass time (target
//! ≤ 1.5) and the peak RSS (target ≤ 64 MB). Payment methods (listed per customer, one request
//! each) are left out of both. See docs/BENCHMARKS.md.
//!
//! ```sh
//! cargo build --release -p sales-block -p stripe-emulator
//! cargo run --release -p sales-bench --bin sync-load
//! ```

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use sales_bench::procfs::{GroupTicks, status_kb};
use sales_bench::service::{self, BenchDatabase, ServiceEnv};
use serde_json::{Value, json};

/// What a bare paging client reads of a list page: the ids (for the cursor) and `has_more`;
/// the rest of each object is scanned (the JSON is checked) but not kept.
#[derive(serde::Deserialize)]
struct ListPage {
    data: Vec<Listed>,
    has_more: bool,
}

#[derive(serde::Deserialize)]
struct Listed {
    id: String,
}

/// The lists the backfill reads (its order), with their fixed parameters.
const LISTS: &[(&str, &str, &str)] = &[
    ("products", "/v1/products", ""),
    ("prices", "/v1/prices", ""),
    ("customers", "/v1/customers", ""),
    ("subscriptions", "/v1/subscriptions", "&status=all"),
    ("invoices", "/v1/invoices", ""),
    ("payment_intents", "/v1/payment_intents", ""),
    ("charges", "/v1/charges", ""),
    ("refunds", "/v1/refunds", ""),
    ("checkout_sessions", "/v1/checkout/sessions", ""),
    ("payment_links", "/v1/payment_links", ""),
];

/// The mirror tables a backfill writes (for PostgreSQL's own cost of the same rows).
const MIRROR_TABLES: &[&str] = &[
    "products",
    "prices",
    "customers",
    "subscriptions",
    "subscription_items",
    "invoices",
    "invoice_lines",
    "payments",
    "charges",
    "refunds",
    "checkout_sessions",
    "payment_links",
];

#[derive(Debug, Parser)]
#[command(
    name = "sync-load",
    about = "A historical sync of ~100k Stripe objects into PostgreSQL, against a bare paging pass of the same lists"
)]
struct Args {
    #[command(flatten)]
    setup: sales_bench::Setup,
    #[arg(long, default_value_t = 40_000)]
    customers: u64,
    #[arg(long, default_value_t = 20_000)]
    subscriptions: u64,
    #[arg(long, default_value_t = 10_000)]
    invoices: u64,
    #[arg(long, default_value_t = 50)]
    products: u64,
    /// Keep the database (for inspection) instead of dropping it.
    #[arg(long)]
    keep_database: bool,
    /// The service's pool: with 11 it reads subscriptions, invoices and payment intents at
    /// once (three connections per list, two left), with 8-10 two of them, below one.
    #[arg(long, default_value_t = 11)]
    pool_size: u32,
    /// How long the emulator waits before each answer, as Stripe's round trip does (both
    /// passes; 0: none). With it, fewer objects make a run of the same length.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f).await?
}

/// How many bare passes are run; the median one is compared with the backfill.
const BARE_PASSES: usize = 3;

/// Every page of one list, 100 per page, nothing kept: how many objects it lists.
async fn page_list(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    (path, fixed): (&str, &str),
) -> anyhow::Result<u64> {
    let mut after: Option<String> = None;
    let mut count = 0u64;
    loop {
        let cursor = after
            .as_deref()
            .map_or(String::new(), |id| format!("&starting_after={id}"));
        let body = http
            .get(format!("{base}{path}?limit=100{fixed}{cursor}"))
            .bearer_auth(key)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        let page: ListPage = serde_json::from_slice(&body).context("not a list")?;
        count += page.data.len() as u64;
        after = page.data.last().map(|o| o.id.clone());
        if !page.has_more || after.is_none() {
            return Ok(count);
        }
    }
}

/// The lists the backfill reads at once (the service's `Kind::stage`, with a pool of 11).
const ALONGSIDE: &[&str] = &["subscriptions", "invoices", "payment_intents"];

/// One bare paging pass over [`LISTS`]: how many objects, how long, and the CPU the emulator
/// and this client used. `alongside`: the lists of [`ALONGSIDE`] are read at once, as the
/// backfill reads them; otherwise one list after another.
async fn bare_pass(
    http: &reqwest::Client,
    (base, key): (&str, &str),
    emulator_pid: u32,
    alongside: bool,
) -> anyhow::Result<(u64, Duration, Vec<(String, f64)>)> {
    let groups = || {
        GroupTicks::take(&[
            ("emulator", vec![emulator_pid]),
            ("client", vec![std::process::id()]),
        ])
    };
    let cpu = groups();
    let started = Instant::now();
    let mut objects = 0u64;
    let mut at = 0;
    while let Some((name, ..)) = LISTS.get(at) {
        let stage: Vec<_> = if alongside && ALONGSIDE.contains(name) {
            LISTS[at..]
                .iter()
                .take_while(|(name, ..)| ALONGSIDE.contains(name))
                .collect()
        } else {
            vec![&LISTS[at]]
        };
        at += stage.len();
        let mut lists = tokio::task::JoinSet::new();
        for (i, (_, path, fixed)) in stage.iter().enumerate() {
            let (http, base, key) = (http.clone(), base.to_owned(), key.to_owned());
            lists.spawn(async move {
                let count = page_list(&http, &base, &key, (path, fixed)).await;
                (i, count)
            });
        }
        let mut counts = vec![0u64; stage.len()];
        while let Some(done) = lists.join_next().await {
            let (i, count) = done?;
            counts[i] = count?;
        }
        for ((name, ..), count) in stage.iter().zip(counts) {
            println!(
                "    {name}: {count} at {:.2} s",
                started.elapsed().as_secs_f64()
            );
            objects += count;
        }
    }
    let took = started.elapsed();
    let (_, used) = cpu.until(&groups());
    Ok((objects, took, used))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = args.setup.service_bin()?;
    let dir = tempfile::tempdir()?;
    let (admin_url, keep) = (args.setup.postgres_url.clone(), args.keep_database);
    let db = blocking(move || BenchDatabase::create(&admin_url, keep)).await?;
    println!("database: {}", db.name);
    println!("{}", service::server_facts(&args.setup.postgres_url)?);
    let mut env = ServiceEnv::new(bin, dir.path(), db.url.clone(), args.pool_size);
    for (key, value) in [
        // The service is measured, not the politeness toward Stripe (the emulator has no limit).
        ("SALES_SYNC_REQUESTS_PER_SEC", "100000"),
        ("SALES_SYNC_POLL_MS", "100"),
        ("SALES_RECONCILE_INTERVAL_SECS", "0"),
        ("SALES_RATE_LIMIT_TENANT_PER_SEC", "0"),
        ("SALES_RATE_LIMIT_CALLER_PER_SEC", "0"),
    ] {
        env.extra_env.push((key.to_owned(), value.to_owned()));
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let stack = service::start_stack(&env, &http, &[]).await?;

    println!("seeding the emulator ...");
    let started = Instant::now();
    let seeded: Value = http
        .post(format!("{}/_emulator/seed", stack.emulator_base))
        .bearer_auth(&stack.stripe_key)
        .json(&json!({
            "customers": args.customers,
            "products": args.products,
            "prices_per_product": 2,
            "subscriptions": args.subscriptions,
            "items_per_subscription": [1, 3],
            "invoices": args.invoices,
            "lines_per_invoice": [1, 5],
        }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    println!(
        "seeded in {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        seeded["counts"]
    );

    // A fresh connection pool: the emulator may have closed the seeding's connection (its
    // keep-alive runs out while one long request holds the worker).
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    if args.latency_ms > 0 {
        http.post(format!("{}/_emulator/config", stack.emulator_base))
            .bearer_auth(&stack.stripe_key)
            .form(&[("latency_ms", args.latency_ms.to_string())])
            .send()
            .await?
            .error_for_status()?;
        println!("the emulator answers after {} ms", args.latency_ms);
    }

    // 1. The bare pass: every list, 100 per page, nothing written; three times, the median
    // kept (a single pass moved 2.5-3.2 s between runs on the same machine and data). Then
    // as many passes that read the backfill's lists of `ALONGSIDE` at once, for reference.
    let emulator_pid = stack.emulator.pid();
    let stripe = (stack.emulator_base.as_str(), stack.stripe_key.as_str());
    let mut medians = Vec::with_capacity(2);
    for alongside in [false, true] {
        let mut passes = Vec::with_capacity(BARE_PASSES);
        for pass in 1..=BARE_PASSES {
            let (objects, took, used) = bare_pass(&http, stripe, emulator_pid, alongside).await?;
            println!(
                "  bare pass {pass} of {BARE_PASSES}{}: {objects} objects in {:.2} s",
                if alongside { " (lists at once)" } else { "" },
                took.as_secs_f64()
            );
            passes.push((took, objects, used));
        }
        passes.sort_by_key(|(took, ..)| *took);
        medians.push(passes.swap_remove(BARE_PASSES / 2));
    }
    let (at_once, _, _) = medians.pop().context("no pass")?;
    let (bare, bare_objects, bare_used) = medians.pop().context("no pass")?;

    // 2. The backfill of the same lists.
    let pid = stack.service.pid();
    let rss_before = status_kb(pid, "VmRSS").unwrap_or(0);
    let objects: Vec<&str> = LISTS.iter().map(|(name, ..)| *name).collect();
    // The service's pool is open by now (it served the job's creation and polls for jobs);
    // a backend opened later counts from zero.
    let groups = |backends: Vec<u32>| {
        [
            ("service", vec![pid]),
            ("emulator", vec![emulator_pid]),
            ("postgres (the run's backends)", backends),
        ]
    };
    let (admin_url, name) = (args.setup.postgres_url.clone(), db.name.clone());
    let backends = blocking(move || service::backend_pids(&admin_url, &name)).await?;
    let profiler_url = db.url.clone();
    let mut profiler =
        blocking(move || sales_bench::statements::Profiler::connect(&profiler_url)).await?;
    if let Some(profiler) = profiler.as_mut() {
        tokio::task::block_in_place(|| profiler.reset())?;
    }
    let backfill_cpu = GroupTicks::take(&groups(backends));
    let started = Instant::now();
    let job: Value = http
        .post(format!("{}/stripe/sync/historical", stack.base_url))
        .header("AppId", &stack.api_key)
        .bearer_auth(&stack.token)
        .json(&json!({"sync": {"objects": objects}}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = job["data"]["id"].as_str().context("no job id")?.to_owned();
    let mut peak_rss = rss_before;
    // When each list was done, as polled (to within the poll's 25 ms).
    let mut lists_done: Vec<String> = Vec::new();
    // Polled every 25 ms: the backfill's time is read to within that.
    let done = loop {
        tokio::time::sleep(Duration::from_millis(25)).await;
        peak_rss = peak_rss.max(status_kb(pid, "VmRSS").unwrap_or(0));
        let job: Value = http
            .get(format!("{}/stripe/sync/jobs/{id}", stack.base_url))
            .header("AppId", &stack.api_key)
            .bearer_auth(&stack.token)
            .send()
            .await?
            .json()
            .await?;
        let attributes = job["data"]["attributes"].clone();
        if let Some(progress) = attributes["progress"].as_object() {
            for (name, entry) in progress {
                if entry["done"].as_bool() == Some(true) && !lists_done.contains(name) {
                    println!(
                        "    backfill {name}: done at {:.2} s",
                        started.elapsed().as_secs_f64()
                    );
                    lists_done.push(name.clone());
                }
            }
        }
        match attributes["status"].as_str() {
            Some("succeeded") => break attributes,
            Some("failed" | "canceled") => anyhow::bail!("the sync ended: {attributes}"),
            _ => {}
        }
    };
    let backfill = started.elapsed();
    let (admin_url, name) = (args.setup.postgres_url.clone(), db.name.clone());
    let backends = blocking(move || service::backend_pids(&admin_url, &name)).await?;
    let (_, backfill_used) = backfill_cpu.until(&GroupTicks::take(&groups(backends)));
    let statements = match profiler.as_mut() {
        Some(profiler) => tokio::task::block_in_place(|| profiler.read(12))?,
        None => Vec::new(),
    };
    let hwm = status_kb(pid, "VmHWM").unwrap_or(0);
    // 3. PostgreSQL's own cost for the rows the backfill wrote (raw SQL, same run).
    let floor_url = db.url.clone();
    let floor =
        blocking(move || sales_bench::floor::rewrite(&floor_url, MIRROR_TABLES, 100)).await?;
    let (mut read, mut written) = (0u64, 0u64);
    for (name, progress) in done["progress"].as_object().context("no progress")? {
        let (r, w) = (
            progress["read"].as_u64().unwrap_or(0),
            progress["written"].as_u64().unwrap_or(0),
        );
        let parts = progress["parts"].as_array().map_or(1, Vec::len);
        println!("  backfill {name}: read {r}, written {w}, in {parts} part(s)");
        read += r;
        written += w;
    }
    let rate = |n: u64, d: Duration| n as f64 / d.as_secs_f64().max(1e-9);
    println!(
        "bare paging pass: {bare_objects} objects in {:.2} s = {:.0} objects/s",
        bare.as_secs_f64(),
        rate(bare_objects, bare)
    );
    println!(
        "backfill: {read} read, {written} written in {:.2} s = {:.0} objects/s",
        backfill.as_secs_f64(),
        rate(read, backfill)
    );
    let per_object = |used: &[(String, f64)], n: u64| {
        used.iter()
            .map(|(name, secs)| {
                format!(
                    "{name} {secs:.2} s ({:.1} µs/object)",
                    secs * 1e6 / n.max(1) as f64
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "  CPU in the bare pass: {}",
        per_object(&bare_used, bare_objects)
    );
    println!(
        "  CPU in the backfill: {}",
        per_object(&backfill_used, read)
    );
    if !statements.is_empty() {
        for line in sales_bench::statements::lines(&statements, read, "object", 110) {
            println!("  {line}");
        }
    }
    println!(
        "PostgreSQL's own cost for the same rows (raw INSERT of 100 rows per commit, one text[] per column, into copies of the tables with their indexes, no triggers): {} rows in {:.2} s, backend CPU {:.2} s ({:.1} µs/object)",
        floor.rows,
        floor.wall.as_secs_f64(),
        floor.backend_cpu,
        floor.backend_cpu * 1e6 / read.max(1) as f64
    );
    // The least any service could take on this machine: it reads the pages (the bare pass's
    // CPU, emulator and client) and PostgreSQL stores the rows (the floor above), with every
    // core busy all the time and no CPU of its own.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let bare_cpu_secs: f64 = bare_used.iter().map(|(_, secs)| secs).sum();
    let least = (bare.as_secs_f64()).max((bare_cpu_secs + floor.backend_cpu) / cores);
    println!(
        "least possible backfill on {cores} cores: {least:.2} s, ratio {:.2} (bare-pass CPU {bare_cpu_secs:.2} s + PostgreSQL's own {:.2} s, over {cores} cores, no CPU for the service)",
        least / bare.as_secs_f64().max(1e-9),
        floor.backend_cpu
    );
    println!(
        "ratio backfill / bare pass: {:.2} (target <= 1.5)",
        backfill.as_secs_f64() / bare.as_secs_f64().max(1e-9)
    );
    println!(
        "  for reference: the median bare pass reading {} at once, as the backfill does: {:.2} s; ratio {:.2}",
        ALONGSIDE.join(", "),
        at_once.as_secs_f64(),
        backfill.as_secs_f64() / at_once.as_secs_f64().max(1e-9)
    );
    println!(
        "service RSS: {:.1} MB before, peak sampled {:.1} MB, high-water mark {:.1} MB (target <= 64 MB)",
        rss_before as f64 / 1024.0,
        peak_rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    stack.service.stop()?;
    stack.emulator.stop()?;
    Ok(())
}
