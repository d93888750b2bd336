//! PostgreSQL's own profile of a load: `pg_stat_statements` for the bench's database, reset
//! before the load and read after it. Needs the extension in `shared_preload_libraries`
//! (then `CREATE EXTENSION` in the database); without it the profile says so and is skipped.

use anyhow::Context;
use diesel::sql_types::{BigInt, Double, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};

/// One normalized statement's share of a load.
#[derive(Debug, QueryableByName)]
pub struct Statement {
    #[diesel(sql_type = BigInt)]
    pub calls: i64,
    /// Milliseconds executing, all calls together.
    #[diesel(sql_type = Double)]
    pub exec_ms: f64,
    /// Milliseconds planning (0 unless `pg_stat_statements.track_planning` is on).
    #[diesel(sql_type = Double)]
    pub plan_ms: f64,
    #[diesel(sql_type = BigInt)]
    pub rows: i64,
    #[diesel(sql_type = Text)]
    pub query: String,
}

/// A connection to the bench's database that can reset and read the statements' figures.
pub struct Profiler {
    conn: PgConnection,
}

impl Profiler {
    /// `None` (with the reason printed) when the server does not load the extension.
    pub fn connect(database_url: &str) -> anyhow::Result<Option<Profiler>> {
        let mut conn = PgConnection::establish(database_url)
            .with_context(|| format!("connecting to {database_url}"))?;
        let created = diesel::sql_query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .execute(&mut conn)
            .and_then(|_| {
                diesel::sql_query("SELECT pg_stat_statements_reset()").execute(&mut conn)
            });
        match created {
            Ok(_) => Ok(Some(Profiler { conn })),
            Err(err) => {
                println!(
                    "statement profile skipped: pg_stat_statements is not loaded ({err}); add it to shared_preload_libraries and restart PostgreSQL"
                );
                Ok(None)
            }
        }
    }

    pub fn reset(&mut self) -> anyhow::Result<()> {
        diesel::sql_query("SELECT pg_stat_statements_reset()")
            .execute(&mut self.conn)
            .context("resetting pg_stat_statements")?;
        Ok(())
    }

    /// The database's statements since the last reset, most time first (the profiler's own
    /// left out).
    pub fn read(&mut self, limit: i64) -> anyhow::Result<Vec<Statement>> {
        diesel::sql_query(
            "SELECT calls, total_exec_time AS exec_ms, total_plan_time AS plan_ms, rows, query \
             FROM pg_stat_statements \
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
               AND query NOT LIKE '%pg_stat_statements%' \
             ORDER BY total_exec_time + total_plan_time DESC LIMIT $1",
        )
        .bind::<BigInt, _>(limit)
        .load(&mut self.conn)
        .context("reading pg_stat_statements")
    }
}

/// `statements` per unit of work (`units`: requests or events), one line each, the query cut
/// to `width` characters.
pub fn lines(statements: &[Statement], units: u64, unit: &str, width: usize) -> Vec<String> {
    let units = units.max(1) as f64;
    let (exec, plan): (f64, f64) = statements
        .iter()
        .fold((0.0, 0.0), |(e, p), s| (e + s.exec_ms, p + s.plan_ms));
    let mut out = vec![format!(
        "statements (pg_stat_statements, top {}): {:.1} µs executing + {:.1} µs planning per {unit}",
        statements.len(),
        exec * 1000.0 / units,
        plan * 1000.0 / units
    )];
    for s in statements {
        let query: String = s
            .query
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(width)
            .collect();
        let calls = s.calls.max(1) as f64;
        out.push(format!(
            "  {:>6.2} calls/{unit}  {:>7.1} µs exec + {:>6.1} µs plan per call  {:>6.1} rows/call  {query}",
            s.calls as f64 / units,
            s.exec_ms * 1000.0 / calls,
            s.plan_ms * 1000.0 / calls,
            s.rows as f64 / calls,
        ));
    }
    out
}
