//! The raw side: pgbench running one statement (`-M prepared`) at the same connection count
//! for the same time, its throughput from its summary and its latency percentiles from the
//! per-transaction log (`-l`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use hdrhistogram::Histogram;

use crate::drive::histogram;

pub struct Options<'a> {
    pub bin: &'a Path,
    pub database_url: &'a str,
    pub connections: usize,
    pub threads: usize,
    pub duration: Duration,
    /// A scratch directory for the script and the logs.
    pub dir: &'a Path,
}

pub struct RawResult {
    /// pgbench's `tps = ... (without initial connection time)`.
    pub tps: f64,
    pub transactions: u64,
    /// Transactions the log marks as failed (or a line it could not read).
    pub failed: u64,
    /// Microseconds per transaction, from the log.
    pub latency: Histogram<u64>,
}

impl RawResult {
    pub fn ms(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// Runs `sql` under pgbench; `tag` names the files (one run per tag).
pub fn run(options: &Options<'_>, tag: &str, sql: &str) -> anyhow::Result<RawResult> {
    let script = options.dir.join(format!("{tag}.sql"));
    std::fs::write(&script, format!("{sql};\n"))
        .with_context(|| format!("writing {}", script.display()))?;
    let logs = options.dir.join(format!("{tag}-log"));
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let prefix = logs.join("pgbench");
    let output = Command::new(options.bin)
        .arg("-n")
        .args(["-c", &options.connections.to_string()])
        .args(["-j", &options.threads.to_string()])
        .args(["-T", &options.duration.as_secs().max(1).to_string()])
        .args(["-M", "prepared"])
        .arg("-f")
        .arg(&script)
        .arg("-l")
        .arg(format!("--log-prefix={}", prefix.display()))
        .arg(options.database_url)
        .env_remove("PGOPTIONS")
        .output()
        .with_context(|| format!("running {}", options.bin.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "pgbench failed ({}): {}\n{}",
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let tps = stdout
        .lines()
        .filter(|line| line.contains("without initial connection time"))
        .find_map(|line| {
            line.strip_prefix("tps = ")?
                .split_whitespace()
                .next()?
                .parse::<f64>()
                .ok()
        })
        .with_context(|| format!("no tps line in pgbench's output:\n{stdout}"))?;
    let (latency, transactions, failed) = read_logs(&logs)?;
    Ok(RawResult {
        tps,
        transactions,
        failed,
        latency,
    })
}

/// Reads every `pgbench.<pid>[.<thread>]` file: `client_id transaction_no time script_no
/// time_epoch time_us`, where `time` is the latency in µs (or `failed` / `skipped`).
fn read_logs(dir: &Path) -> anyhow::Result<(Histogram<u64>, u64, u64)> {
    let mut latency = histogram()?;
    let (mut transactions, mut failed) = (0u64, 0u64);
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .collect();
    if files.is_empty() {
        bail!("pgbench wrote no log in {}", dir.display());
    }
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        for line in text.lines() {
            transactions += 1;
            match line
                .split_whitespace()
                .nth(2)
                .and_then(|t| t.parse::<u64>().ok())
            {
                Some(micros) => {
                    let _ = latency.record(micros.max(1));
                }
                None => failed += 1,
            }
        }
    }
    Ok((latency, transactions, failed))
}
