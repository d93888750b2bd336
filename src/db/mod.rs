//! The database layer: one connection type over PostgreSQL and SQLite, the pool, migrations,
//! and the bridge that runs blocking Diesel work off the async workers.

pub mod catalog;
pub mod charges;
pub mod checkout_sessions;
pub mod connect;
pub mod counts;
pub mod customers;
pub mod events;
pub mod idempotency_keys;
pub mod invoices;
pub mod listing;
pub mod notifications;
pub mod orders;
pub mod payment_links;
pub mod payment_methods;
pub mod payments;
pub mod policies;
mod pool;
pub mod prepared;
pub mod refunds;
pub mod retention;
pub mod schema;
pub mod subscriptions;
pub mod sync_jobs;
pub mod tenants;
pub mod webhook_endpoints;
mod write_lock;

pub mod upsert;
pub mod watermark;

use std::path::Path;
use std::time::Duration;

use diesel::r2d2::{self, ManageConnection};
use diesel_migrations::MigrationHarness;

pub use pool::{
    AnyConnection, DatabaseUrl, MIGRATIONS, Manager, Pool, PooledConnection, write_statement,
    write_transaction,
};
use pool::{PlanCacheMode, compress_payloads_with_lz4, leave_room_for_updates};
pub use upsert::stored_metadata;
pub(crate) use upsert::{mirror_record_fn, mirror_table, replace_children};
pub use watermark::{Applied, Freshness, Rule};
use write_lock::WriteLock;

/// A new row's id: time-ordered (the UUIDv7 layout: Unix milliseconds, then random bits), so
/// each new row's primary-key entry goes to the right edge of its B-tree. A random (v4) id
/// sent each insert to a random leaf of an index that grows with every row: a page read and
/// dirtied per row, and after each checkpoint that page's full image in the WAL (issue 15,
/// for stored events); for a backfill's customers, 11-14% of PostgreSQL's time per insert
/// (docs/BENCHMARKS.md, issue 17). Nothing orders by it but as a tie-break.
pub fn new_row_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// SQLite's `busy_timeout` unless configured (`database_busy_timeout_ms`).
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the database may keep a caller waiting. Past PostgreSQL's statement or lock
/// timeout the statement is canceled and a client gets 503 with `Retry-After`, never a hung
/// request. Zero turns a PostgreSQL limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// SQLite's `busy_timeout`: how long a write waits for another process's write lock.
    pub busy: Duration,
    /// PostgreSQL's `statement_timeout` on every connection.
    pub statement: Duration,
    /// PostgreSQL's `lock_timeout` on every connection.
    pub lock: Duration,
    /// PostgreSQL's `connect_timeout` (libpq), unless the URL sets one.
    pub connect: Duration,
}

impl Default for Deadlines {
    /// SQLite's default busy timeout; no PostgreSQL limits (CLI commands, tests).
    fn default() -> Self {
        Self {
            busy: DEFAULT_BUSY_TIMEOUT,
            statement: Duration::ZERO,
            lock: Duration::ZERO,
            connect: Duration::ZERO,
        }
    }
}

/// Why a database call failed, before it is given a meaning for a client.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("no database connection available: {0}")]
    Pool(#[from] r2d2::PoolError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error("database task failed: {0}")]
    Join(String),
}

/// The pool plus what callers need to know about the backend.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    url: DatabaseUrl,
    /// SQLite's writers queue here, not in its busy handler ([`write_lock`]).
    write_lock: WriteLock,
    deadlines: Deadlines,
}

impl Database {
    /// Builds the pool (creating a SQLite file's folder first) without opening connections
    /// eagerly, so the service can start while PostgreSQL is still coming up.
    pub fn connect(url: &str, pool_size: u32) -> anyhow::Result<Self> {
        Self::connect_with(url, pool_size, DEFAULT_BUSY_TIMEOUT)
    }

    /// [`Database::connect`] with SQLite's `busy_timeout`: how long a write waits for a writer
    /// of another process (writers of this one wait on the in-process lock instead).
    pub fn connect_with(url: &str, pool_size: u32, busy_timeout: Duration) -> anyhow::Result<Self> {
        Self::connect_with_deadlines(
            url,
            pool_size,
            Deadlines {
                busy: busy_timeout,
                ..Deadlines::default()
            },
        )
    }

    /// [`Database::connect`] with every [`Deadlines`] (the service's: from its settings).
    pub fn connect_with_deadlines(
        url: &str,
        pool_size: u32,
        deadlines: Deadlines,
    ) -> anyhow::Result<Self> {
        let url = DatabaseUrl::parse(url)?;
        if let DatabaseUrl::Sqlite(path) = &url
            && path != ":memory:"
            && let Some(dir) = Path::new(path).parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        let pool = r2d2::Pool::builder()
            .max_size(pool_size.max(1))
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(5))
            .build_unchecked(Manager {
                url: url.clone(),
                plans: PlanCacheMode::Custom,
                deadlines,
            });
        let write_lock = WriteLock::new(matches!(url, DatabaseUrl::Sqlite(_)));
        Ok(Self {
            pool,
            url,
            write_lock,
            deadlines,
        })
    }

    /// A connection of its own, outside the pool, for the receiver's writer. Unlike the pool's,
    /// its prepared statements may settle on a generic plan (PostgreSQL's default): every
    /// statement it keeps prepared only inserts rows it is given, whose plan is the same at
    /// any table size, and every statement that reads a table is sent unnamed and planned per
    /// call ([`prepared::Prepared::planned_per_call`]). Measured: PostgreSQL spent about a
    /// fifth of its time planning the receiver's statements again on every batch.
    ///
    /// Write with it inside [`Database::with_write_lock`], or on SQLite its writes do not queue
    /// with the pool's.
    pub fn connect_one(&self) -> Result<AnyConnection, DbError> {
        Manager {
            url: self.url.clone(),
            plans: PlanCacheMode::Auto,
            deadlines: self.deadlines,
        }
        .connect()
        .map_err(|err| DbError::Join(format!("connecting: {err}")))
    }

    /// The pool's connections: (open, idle).
    pub fn pool_state(&self) -> (u32, u32) {
        let state = self.pool.state();
        (state.connections, state.idle_connections)
    }

    /// The most connections the pool opens.
    pub fn max_connections(&self) -> u32 {
        self.pool.max_size()
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.url, DatabaseUrl::Postgres(_))
    }

    /// Runs `work` on this thread with this database's write lock as the one
    /// [`write_transaction`] and [`write_statement`] take: for work on a connection of its own
    /// ([`Database::connect_one`]) on a thread of its own. [`Database::run`] does this itself.
    pub fn with_write_lock<T>(&self, work: impl FnOnce() -> T) -> T {
        self.write_lock.scope(work)
    }

    /// Runs every pending embedded migration, then installs the list counters
    /// ([`counts::install`]).
    pub fn migrate(&self) -> anyhow::Result<()> {
        let mut conn = self.pool.get()?;
        self.with_write_lock(|| {
            write_lock::hold(|| {
                let ran = match &mut *conn {
                    AnyConnection::Postgresql(c) => {
                        // Start-up work may take long (a recount, an index): no deadline.
                        pool::set_session(c, &Deadlines::default())
                            .map_err(|err| anyhow::anyhow!("lifting deadlines: {err}"))?;
                        let ran = c.run_pending_migrations(MIGRATIONS).map(|_| ());
                        if ran.is_ok() {
                            compress_payloads_with_lz4(c);
                            leave_room_for_updates(c);
                        }
                        ran
                    }
                    AnyConnection::Sqlite(c) => c.run_pending_migrations(MIGRATIONS).map(|_| ()),
                };
                ran.map_err(|err| anyhow::anyhow!("running migrations: {err}"))?;
                counts::install(&mut conn)
                    .map_err(|err| anyhow::anyhow!("installing list counts: {err}"))?;
                // The connection goes back to the pool with the pool's deadlines.
                if let AnyConnection::Postgresql(c) = &mut *conn {
                    pool::set_session(c, &self.deadlines)
                        .map_err(|err| anyhow::anyhow!("restoring deadlines: {err}"))?;
                }
                Ok(())
            })
        })
    }

    /// A connection for synchronous callers (CLI commands, start-up). Its writes do not take
    /// the in-process write lock: a CLI command is a process of its own (SQLite's busy_timeout
    /// orders it with the service).
    pub fn get(&self) -> Result<PooledConnection, DbError> {
        Ok(self.pool.get()?)
    }

    /// Runs blocking Diesel work on tokio's blocking pool, never on an async worker.
    pub async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (pool, write_lock) = (self.pool.clone(), self.write_lock.clone());
        // The work runs on another thread: it keeps the caller's span (the request id) and
        // subscriber, so what it logs is tied to the request.
        let span = tracing::Span::current();
        let dispatch = tracing::dispatcher::get_default(|d| d.clone());
        tokio::task::spawn_blocking(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                let _entered = span.enter();
                // The connection first, then (in a write) the lock: never the other way round.
                let mut conn = pool.get().map_err(DbError::from)?;
                write_lock.scope(|| work(&mut conn))
            })
        })
        .await
        .map_err(|err| E::from(DbError::Join(err.to_string())))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::instrument::{Instrument, WithSubscriber};

    #[test]
    fn row_ids_are_time_ordered_uuids() {
        let before = chrono::Utc::now().timestamp();
        let ids: Vec<String> = (0..3).map(|_| new_row_id()).collect();
        for id in &ids {
            let uuid = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(uuid.get_version_num(), 7, "{id}");
            let (secs, _) = uuid.get_timestamp().unwrap().to_unix();
            let secs = i64::try_from(secs).unwrap();
            assert!(
                (before..=chrono::Utc::now().timestamp()).contains(&secs),
                "{id}"
            );
        }
        assert_eq!(
            ids.iter().collect::<std::collections::HashSet<_>>().len(),
            3
        );
    }
    #[tokio::test]
    async fn database_work_keeps_the_callers_span() {
        let db = Database::connect("sqlite://:memory:", 1).unwrap();
        let subscriber = tracing_subscriber::registry();
        let seen = async {
            let span = tracing::info_span!("request", request_id = "r-1");
            db.run(|_conn| Ok::<_, DbError>(tracing::Span::current().metadata().map(|m| m.name())))
                .instrument(span)
                .await
        }
        .with_subscriber(subscriber)
        .await
        .unwrap();
        assert_eq!(seen, Some("request"));
    }
}
