//! Where PostgreSQL's work goes, read after a level: each table's row writes (inserts,
//! updates, of which HOT, deletes) and size with its indexes and TOAST, and, with `--waldump`,
//! `pg_waldump --stats=record` over the load's WAL range (cluster-wide).

use std::process::Command;

use anyhow::Context;
use diesel::{Connection, PgConnection, RunQueryDsl};

#[derive(diesel::QueryableByName)]
struct TableRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    relname: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    ins: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    upd: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    hot: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    del: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    heap: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    toast: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    indexes: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    index_count: i64,
}

/// Per-table write counts and sizes of the level's database, as report lines. Read after the
/// service has stopped (its backends flush their statistics on exit).
pub fn tables(database_url: &str, events: usize) -> anyhow::Result<Vec<String>> {
    let mut conn = PgConnection::establish(database_url).context("connecting for statistics")?;
    // Give the statistics of exiting backends a moment to land.
    std::thread::sleep(std::time::Duration::from_millis(700));
    let rows: Vec<TableRow> = diesel::sql_query(
        "SELECT s.relname::text AS relname, s.n_tup_ins AS ins, s.n_tup_upd AS upd, \
         s.n_tup_hot_upd AS hot, s.n_tup_del AS del, \
         pg_relation_size(s.relid) AS heap, \
         COALESCE(pg_total_relation_size(c.reltoastrelid), 0) AS toast, \
         pg_indexes_size(s.relid) AS indexes, \
         (SELECT count(*) FROM pg_index i WHERE i.indrelid = s.relid) AS index_count \
         FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
         WHERE s.n_tup_ins + s.n_tup_upd + s.n_tup_del > 0 ORDER BY s.relname",
    )
    .load(&mut conn)
    .context("reading table statistics")?;
    let per = |bytes: i64| bytes as f64 / events.max(1) as f64;
    Ok(rows
        .into_iter()
        .map(|r| {
            format!(
                "{}: {} inserted, {} updated ({} HOT), {} deleted; {} indexes; per event: heap {:.0} B, TOAST {:.0} B, indexes {:.0} B",
                r.relname,
                r.ins,
                r.upd,
                r.hot,
                r.del,
                r.index_count,
                per(r.heap),
                per(r.toast),
                per(r.indexes)
            )
        })
        .collect())
}

#[derive(diesel::QueryableByName)]
struct Setting {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
}

/// `pg_waldump --stats=record` between two WAL positions (needs read access to the server's
/// pg_wal directory: the benchmark runs on the database's machine). The lines of the record
/// types that wrote the most, with the total.
pub fn waldump(database_url: &str, from: &str, to: &str) -> anyhow::Result<Vec<String>> {
    let mut conn = PgConnection::establish(database_url).context("connecting for pg_wal")?;
    let dir: Setting = diesel::sql_query("SELECT current_setting('data_directory') AS value")
        .get_result(&mut conn)
        .context("reading data_directory")?;
    // Beside pgbench when that was found by its path, else PostgreSQL's bin directory.
    let beside = crate::ceiling::pgbench_bin().with_file_name("pg_waldump");
    let mut found: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin").join("pg_waldump"))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    let bin = if beside.exists() {
        beside
    } else {
        found.pop().unwrap_or_else(|| "pg_waldump".into())
    };
    let output = Command::new(bin)
        .args(["--stats=record", "-p"])
        .arg(format!("{}/pg_wal", dir.value))
        .args(["-s", from, "-e", to])
        .output()
        .context("running pg_waldump")?;
    let text = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success() || !text.is_empty(),
        "pg_waldump failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Lines: "Heap/INSERT  count (%)  rec size (%)  FPI size (%)  combined size (%)".
    let mut lines: Vec<(u64, String)> = text
        .lines()
        .filter(|l| {
            let l = l.trim_start();
            !(l.starts_with("Total") || l.starts_with("Type") || l.starts_with("---"))
        })
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            let combined: u64 = fields.get(fields.len().checked_sub(2)?)?.parse().ok()?;
            Some((combined, l.trim().to_owned()))
        })
        .collect();
    lines.sort_by_key(|line| std::cmp::Reverse(line.0));
    let mut out: Vec<String> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("Type") || l.trim_start().starts_with("Total"))
        .map(|l| l.trim().to_owned())
        .collect();
    out.extend(lines.into_iter().take(14).map(|(_, l)| l));
    Ok(out)
}
