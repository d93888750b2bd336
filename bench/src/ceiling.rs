//! The database's ceiling, measured in the same run as the receiver: `pgbench` with one
//! autocommitted `INSERT ... ON CONFLICT DO UPDATE` of a ~3.5 kB jsonb row per transaction, at
//! the receiver's connection count, on a fresh database of its own. And the WAL position, so
//! each step can report WAL bytes per event.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use diesel::{Connection, PgConnection, RunQueryDsl};

use sales_bench::procfs::{CpuSnapshot, CpuUsage};
use sales_bench::service::BenchDatabase;

/// The ceiling step's figures.
pub struct Ceiling {
    pub clients: usize,
    pub tps: f64,
    pub latency_avg_ms: f64,
    pub transactions: u64,
    pub wal_bytes: i64,
    pub cpu: CpuUsage,
    pub seconds: f64,
}

impl Ceiling {
    /// PostgreSQL CPU per transaction, in µs.
    pub fn postgres_us(&self) -> f64 {
        self.cpu.postgres * self.seconds / (self.transactions.max(1) as f64) * 1e6
    }

    pub fn wal_per_txn(&self) -> f64 {
        self.wal_bytes as f64 / self.transactions.max(1) as f64
    }
}

/// `pgbench` on the PATH, else the newest PostgreSQL's under /usr/lib/postgresql.
pub fn pgbench_bin() -> PathBuf {
    let on_path = Command::new("pgbench").arg("--version").output();
    if on_path.is_ok_and(|o| o.status.success()) {
        return PathBuf::from("pgbench");
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin").join("pgbench"))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| PathBuf::from("pgbench"))
}

#[derive(diesel::QueryableByName)]
struct Lsn {
    #[diesel(sql_type = diesel::sql_types::Text)]
    lsn: String,
}

#[derive(diesel::QueryableByName)]
struct Bytes {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    bytes: i64,
}

/// The server's current WAL insert position (cluster-wide).
pub fn wal_lsn(url: &str) -> anyhow::Result<String> {
    let mut conn = PgConnection::establish(url).context("connecting for the WAL position")?;
    let row: Lsn = diesel::sql_query("SELECT pg_current_wal_insert_lsn()::text AS lsn")
        .get_result(&mut conn)
        .context("reading the WAL position")?;
    Ok(row.lsn)
}

/// WAL bytes written since `from` (cluster-wide: other databases' writes count too).
pub fn wal_since(url: &str, from: &str) -> anyhow::Result<i64> {
    let mut conn = PgConnection::establish(url).context("connecting for the WAL position")?;
    let row: Bytes = diesel::sql_query(
        "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::pg_lsn)::bigint AS bytes",
    )
    .bind::<diesel::sql_types::Text, _>(from)
    .get_result(&mut conn)
    .context("reading the WAL position")?;
    Ok(row.bytes)
}

/// The jsonb row the ceiling writes: the corpus body whose compact JSON is nearest 3,500 bytes.
pub fn ceiling_row<'a>(bodies: impl Iterator<Item = &'a str>) -> String {
    bodies
        .filter_map(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        .map(|v| v.to_string())
        .min_by_key(|s| s.len().abs_diff(3_500))
        .unwrap_or_else(|| "{}".to_owned())
}

/// Runs pgbench for `seconds` at `clients` connections on a fresh database.
pub fn run(
    admin_url: &str,
    clients: usize,
    seconds: u64,
    row: &str,
    dir: &Path,
) -> anyhow::Result<Ceiling> {
    let db = BenchDatabase::create(admin_url, false)?;
    {
        let mut conn = PgConnection::establish(&db.url).context("connecting to the ceiling db")?;
        diesel::sql_query("CREATE TABLE ceiling (id TEXT PRIMARY KEY, payload JSONB NOT NULL)")
            .execute(&mut conn)
            .context("creating the ceiling table")?;
    }
    let script = dir.join("ceiling.sql");
    std::fs::write(
        &script,
        format!(
            "\\set id random(1, 1000000000000)\n\
             INSERT INTO ceiling (id, payload) VALUES ('evt_' || :id, '{}'::jsonb) \
             ON CONFLICT (id) DO UPDATE SET payload = EXCLUDED.payload;\n",
            row.replace('\'', "''")
        ),
    )
    .context("writing the pgbench script")?;
    let lsn = wal_lsn(&db.url)?;
    let before = CpuSnapshot::take(std::process::id());
    let started = std::time::Instant::now();
    let output = Command::new(pgbench_bin())
        .args(["-n", "-M", "simple", "-c"])
        .arg(clients.to_string())
        .arg("-j")
        .arg(clients.min(2).to_string())
        .arg("-T")
        .arg(seconds.to_string())
        .arg("-f")
        .arg(&script)
        .arg(&db.url)
        .output()
        .context("running pgbench (is it installed? see docs/BENCHMARKS.md)")?;
    let elapsed = started.elapsed().max(Duration::from_millis(1));
    let cpu = before.until(&CpuSnapshot::take(std::process::id()));
    let wal_bytes = wal_since(&db.url, &lsn)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "pgbench failed: {}{}",
        stdout,
        String::from_utf8_lossy(&output.stderr)
    );
    let number_after = |prefix: &str| -> Option<f64> {
        stdout.lines().find_map(|l| {
            l.trim()
                .strip_prefix(prefix)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
    };
    let tps = number_after("tps = ").context("no tps in pgbench's output")?;
    let transactions = number_after("number of transactions actually processed: ")
        .context("no transaction count in pgbench's output")? as u64;
    Ok(Ceiling {
        clients,
        tps,
        latency_avg_ms: number_after("latency average = ").unwrap_or(f64::NAN),
        transactions,
        wal_bytes,
        cpu,
        seconds: elapsed.as_secs_f64(),
    })
}
