//! `stripe-emulator-bench [--customers N] [--page L] [--posted M]`: how fast the emulator pages through a
//! big account, and what the account costs in memory.
//!
//! Starts an emulator in this process (two HTTP workers, as in tests), seeds N customers
//! (default 100,000) with `POST /_emulator/seed`, then reads them all over HTTP with
//! `GET /v1/customers?limit=L&starting_after=...` (default L = 100) as a backfill would, and
//! prints the seeding time, the process's resident memory before and after seeding, and the
//! paging rate in objects per second. `--posted M` also creates M customers one by one with
//! `POST /v1/customers` first (as a service would), to show what each costs with its event,
//! idempotency key and logged request. Run it in a release build:
//!
//! ```text
//! cargo run --release -p stripe-emulator --bin stripe-emulator-bench -- --customers 100000
//! ```

use std::process::ExitCode;
use std::time::Instant;

use serde_json::Value;

/// Resident memory of this process in KiB (Linux), if known.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "?".to_owned(),
        |k| format!("{:.1} MiB", k as f64 / 1024.0),
    )
}

struct Args {
    customers: u64,
    page: u64,
    /// Customers also created one by one with `POST /v1/customers` (each with an
    /// `Idempotency-Key`, each recording an event and a logged request), to see what the
    /// API's bookkeeping costs beside the objects.
    posted: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut parsed = Args {
        customers: 100_000,
        page: 100,
        posted: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            let v = args.next().ok_or(format!("{name} needs a value"))?;
            v.parse().map_err(|_| format!("invalid {name}: {v}"))
        };
        match arg.as_str() {
            "--customers" => parsed.customers = value("--customers")?,
            "--page" => parsed.page = value("--page")?,
            "--posted" => parsed.posted = value("--posted")?,
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    Ok(parsed)
}

async fn call(http: &reqwest::Client, request: reqwest::RequestBuilder) -> Result<Value, String> {
    let _ = http;
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&body)));
    }
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

async fn bench(args: Args) -> Result<(), String> {
    let emulator = stripe_emulator::spawn("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let base = emulator.base_url();
    let key = "sk_test_bench";
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let rss_empty = rss_kib();

    let started = Instant::now();
    let seeded = call(
        &http,
        http.post(format!("{base}/_emulator/seed"))
            .bearer_auth(key)
            .body(format!("{{\"customers\": {}}}", args.customers)),
    )
    .await?;
    let seed_secs = started.elapsed().as_secs_f64();
    let rss_seeded = rss_kib();
    println!(
        "seeded {} customers in {seed_secs:.2} s ({:.0} objects/s)",
        seeded["created"]["customer"],
        args.customers as f64 / seed_secs.max(1e-9)
    );
    println!(
        "resident memory: {} empty, {} seeded ({:.0} bytes per customer)",
        mib(rss_empty),
        mib(rss_seeded),
        match (rss_empty, rss_seeded) {
            (Some(a), Some(b)) =>
                (b.saturating_sub(a) * 1024) as f64 / args.customers.max(1) as f64,
            _ => f64::NAN,
        }
    );

    if args.posted > 0 {
        let before = rss_kib();
        let started = Instant::now();
        for i in 0..args.posted {
            call(
                &http,
                http.post(format!("{base}/v1/customers"))
                    .bearer_auth(key)
                    .header("Idempotency-Key", format!("bench-{i}"))
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(format!("email=posted{i}%40example.com&name=Posted+{i}")),
            )
            .await?;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "posted {} customers in {secs:.2} s ({:.0} requests/s); resident memory {} \
             ({:.0} bytes per posted customer: object, event, idempotency key, logged request)",
            args.posted,
            args.posted as f64 / secs.max(1e-9),
            mib(rss_kib()),
            match (before, rss_kib()) {
                (Some(a), Some(b)) => (b.saturating_sub(a) * 1024) as f64 / args.posted as f64,
                _ => f64::NAN,
            }
        );
    }
    let total = args.customers + args.posted;

    let started = Instant::now();
    let mut after: Option<String> = None;
    let mut seen: u64 = 0;
    let mut pages: u64 = 0;
    let mut bytes_sample = 0;
    loop {
        let mut url = format!("{base}/v1/customers?limit={}", args.page);
        if let Some(last) = &after {
            url.push_str("&starting_after=");
            url.push_str(last);
        }
        let page = call(&http, http.get(url).bearer_auth(key)).await?;
        let data = page["data"].as_array().cloned().unwrap_or_default();
        if pages == 0 {
            bytes_sample = data.first().map_or(0, |c| c.to_string().len());
        }
        pages += 1;
        seen += data.len() as u64;
        after = data
            .last()
            .and_then(|c| c["id"].as_str())
            .map(str::to_owned);
        if page["has_more"] != true || after.is_none() {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "paged {seen} customers in {pages} pages of {} in {secs:.2} s: {:.0} objects/s, {:.2} ms per page \
         (one customer is {bytes_sample} bytes of compact JSON)",
        args.page,
        seen as f64 / secs.max(1e-9),
        secs * 1000.0 / pages.max(1) as f64,
    );
    println!("resident memory after paging: {}", mib(rss_kib()));
    emulator.stop().await;
    if seen != total {
        return Err(format!("expected {total} customers, saw {seen}"));
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!(
                "stripe-emulator-bench: {message}\nusage: stripe-emulator-bench [--customers N] [--page L] [--posted M]"
            );
            return ExitCode::from(2);
        }
    };
    match bench(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("stripe-emulator-bench: {message}");
            ExitCode::FAILURE
        }
    }
}
