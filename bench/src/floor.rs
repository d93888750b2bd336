//! PostgreSQL's own cost for the rows a load wrote, measured in the same run: the same rows
//! written again by raw SQL into copies of their tables (`LIKE ... INCLUDING ALL`: the same
//! columns, defaults and indexes; no triggers), 100 rows per statement, each statement
//! committed on its own, from one connection, each column sent as one binary `text[]` (as
//! the service sends its batches) and cast to its type. The rows are read out first, so only
//! the inserts are timed. What this leaves out is what the service adds: the watermark rule
//! (`ON CONFLICT ... WHERE`), the list counters' triggers, the saved progress per page.

use std::time::{Duration, Instant};

use anyhow::Context;
use diesel::connection::SimpleConnection;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text};
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
}

#[derive(QueryableByName)]
struct Column {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    ty: String,
}

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

/// A JSON value (as `json_agg` writes a column) in PostgreSQL's text form.
fn text_of(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
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
        let columns: Vec<Column> = diesel::sql_query(
            "SELECT attname::text AS name, format_type(atttypid, atttypmod) AS ty \
             FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 \
             AND NOT attisdropped ORDER BY attnum",
        )
        .bind::<Text, _>(*table)
        .load(&mut conn)
        .with_context(|| format!("reading the columns of {table}"))?;
        // Each batch as one JSON text, in the table's physical order (the order written),
        // then one text array per column.
        let batches: Vec<Batch> = diesel::sql_query(format!(
            "SELECT json_agg(t)::text AS rows FROM \
             (SELECT t, (row_number() OVER (ORDER BY ctid) - 1) / $1 AS b FROM {table} t) s \
             GROUP BY b ORDER BY b"
        ))
        .bind::<BigInt, _>(batch)
        .load(&mut conn)
        .with_context(|| format!("reading {table}"))?;
        let mut arrays: Vec<(usize, Vec<Vec<Option<String>>>)> = Vec::new();
        for b in &batches {
            let rows: Vec<serde_json::Map<String, serde_json::Value>> =
                serde_json::from_str(&b.rows).with_context(|| format!("a batch of {table}"))?;
            let by_column = columns
                .iter()
                .map(|c| {
                    rows.iter()
                        .map(|row| row.get(&c.name).and_then(text_of))
                        .collect()
                })
                .collect();
            arrays.push((rows.len(), by_column));
        }
        let names = columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let casts = columns
            .iter()
            .map(|c| format!("u.{}::{}", c.name, c.ty))
            .collect::<Vec<_>>()
            .join(", ");
        let binds = (1..=columns.len())
            .map(|k| format!("${k}::text[]"))
            .collect::<Vec<_>>()
            .join(", ");
        let insert =
            format!("INSERT INTO {copy} SELECT {casts} FROM unnest({binds}) AS u({names})");
        let before = GroupTicks::take(&[("backend", vec![pid])]);
        let started = Instant::now();
        for (n, by_column) in &arrays {
            let mut statement = diesel::sql_query(&insert).into_boxed::<diesel::pg::Pg>();
            for column in by_column {
                statement = statement.bind::<Array<Nullable<Text>>, _>(column);
            }
            statement
                .execute(&mut conn)
                .with_context(|| format!("writing {copy}"))?;
            floor.rows += *n as u64;
            floor.statements += 1;
        }
        floor.wall += started.elapsed();
        let (_, used) = before.until(&GroupTicks::take(&[("backend", vec![pid])]));
        floor.backend_cpu += used.iter().map(|(_, secs)| secs).sum::<f64>();
        conn.batch_execute(&format!("DROP TABLE {copy}"))?;
    }
    Ok(floor)
}
