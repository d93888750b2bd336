//! PostgreSQL's own cost for the rows a load wrote, measured in the same run: the same rows
//! written again by raw SQL into copies of their tables (`LIKE ... INCLUDING ALL`: the same
//! columns, defaults and indexes; no triggers), 100 rows per statement, each statement
//! committed on its own, from one connection. The rows are read out first, so only the
//! inserts are timed. What this leaves out is what the service adds: the watermark rule
//! (`ON CONFLICT ... WHERE`), the list counters' triggers, the saved progress per page.

use std::time::{Duration, Instant};

use anyhow::Context;
use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Integer, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};

use crate::procfs::GroupTicks;

/// What the raw rewrite of a table set cost.
#[derive(Debug, Default)]
pub struct Floor {
    pub rows: u64,
    pub statements: u64,
    pub wall: Duration,
    /// CPU seconds of the connection's backend.
    pub backend_cpu: f64,
}

#[derive(QueryableByName)]
struct Batch {
    #[diesel(sql_type = Text)]
    rows: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

/// Rewrites every row of `tables` (those that have any) as described above, then drops the
/// copies. `batch`: rows per statement.
pub fn rewrite(database_url: &str, tables: &[&str], batch: i64) -> anyhow::Result<Floor> {
    let mut conn = PgConnection::establish(database_url)
        .with_context(|| format!("connecting to {database_url}"))?;
    let pid = diesel::sql_query("SELECT pg_backend_pid() AS pid")
        .get_result::<Pid>(&mut conn)?
        .pid;
    let pid = u32::try_from(pid).context("a backend pid")?;
    let mut floor = Floor::default();
    for table in tables {
        let copy = format!("floor_{table}");
        conn.batch_execute(&format!(
            "DROP TABLE IF EXISTS {copy}; CREATE TABLE {copy} (LIKE {table} INCLUDING ALL)"
        ))
        .with_context(|| format!("copying the shape of {table}"))?;
        // Each batch as one JSON text, in the table's physical order (the order written).
        let batches: Vec<Batch> = diesel::sql_query(format!(
            "SELECT json_agg(t)::text AS rows, count(*) AS n FROM \
             (SELECT t, (row_number() OVER (ORDER BY ctid) - 1) / $1 AS b FROM {table} t) s \
             GROUP BY b ORDER BY b"
        ))
        .bind::<BigInt, _>(batch)
        .load(&mut conn)
        .with_context(|| format!("reading {table}"))?;
        let insert = format!(
            "INSERT INTO {copy} SELECT * FROM json_populate_recordset(NULL::{copy}, $1::json)"
        );
        let before = GroupTicks::take(&[("backend", vec![pid])]);
        let started = Instant::now();
        for b in &batches {
            diesel::sql_query(&insert)
                .bind::<Text, _>(&b.rows)
                .execute(&mut conn)
                .with_context(|| format!("writing {copy}"))?;
            floor.rows += b.n as u64;
            floor.statements += 1;
        }
        floor.wall += started.elapsed();
        let (_, used) = before.until(&GroupTicks::take(&[("backend", vec![pid])]));
        floor.backend_cpu += used.iter().map(|(_, secs)| secs).sum::<f64>();
        conn.batch_execute(&format!("DROP TABLE {copy}"))?;
    }
    Ok(floor)
}
