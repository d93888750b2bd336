//! Connections: one type over PostgreSQL and SQLite, the pool's manager, the embedded
//! migrations, and the write transaction both backends share.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};

/// Migrations are compiled into the binary; `migrate` and every start run the pending ones.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// One query path for both backends (DEPENDENCIES.md): Diesel picks the variant at run time.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

pub type Pool = r2d2::Pool<Manager>;
pub type PooledConnection = r2d2::PooledConnection<Manager>;

/// Which database a URL names. Parsed once, so a PostgreSQL URL can never fall through to
/// SQLite and create a stray file (what `AnyConnection::establish` alone would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Postgres(String),
    /// A file path (or `:memory:`).
    Sqlite(String),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(url.to_owned()))
        } else if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                anyhow::bail!("DATABASE_URL {url:?} names no SQLite file");
            }
            Ok(Self::Sqlite(path.to_owned()))
        } else {
            anyhow::bail!(
                "DATABASE_URL must start with postgres://, postgresql:// or sqlite:// (got {url:?})"
            )
        }
    }
}

/// Opens connections of the backend the URL names and prepares them.
#[derive(Debug)]
pub struct Manager {
    pub(super) url: DatabaseUrl,
    /// PostgreSQL's `plan_cache_mode` for the connection's prepared statements.
    pub(super) plans: PlanCacheMode,
    /// SQLite's `busy_timeout` (how long a write waits for another process's write lock; this
    /// process's writers queue on the in-process lock, [`super::write_lock`]) and
    /// PostgreSQL's statement, lock and connect timeouts.
    pub(super) deadlines: super::Deadlines,
}

/// How PostgreSQL plans a connection's prepared statements.
#[derive(Debug, Clone, Copy)]
pub(super) enum PlanCacheMode {
    /// Each execution is planned for its values (the pool: Diesel keeps its queries prepared,
    /// and a generic plan settled on while the tables were small would be kept however large
    /// they grow, until the next ANALYZE, and would scan them).
    Custom,
    /// PostgreSQL's default: a generic plan after five executions if it costs no more (the
    /// receiver's writer, see [`Database::connect_one`]).
    Auto,
}

impl ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<AnyConnection, r2d2::Error> {
        match &self.url {
            DatabaseUrl::Postgres(url) => {
                let url = with_connect_timeout(url, self.deadlines.connect);
                let mut conn =
                    PgConnection::establish(&url).map_err(r2d2::Error::ConnectionError)?;
                let mode = match self.plans {
                    PlanCacheMode::Custom => "SET plan_cache_mode = force_custom_plan",
                    PlanCacheMode::Auto => "SET plan_cache_mode = auto",
                };
                conn.batch_execute(mode).map_err(r2d2::Error::QueryError)?;
                set_session(&mut conn, &self.deadlines).map_err(r2d2::Error::QueryError)?;
                Ok(AnyConnection::Postgresql(conn))
            }
            DatabaseUrl::Sqlite(path) => {
                let mut conn =
                    SqliteConnection::establish(path).map_err(r2d2::Error::ConnectionError)?;
                // WAL lets readers run beside the writer; FULL sync because a webhook is
                // acknowledged only once it is durable (STRIPE_RULES.md, Delivery).
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
                    self.deadlines.busy.as_millis()
                ))
                .map_err(r2d2::Error::QueryError)?;
                Ok(AnyConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        conn.is_broken()
    }
}

/// `url` with libpq's `connect_timeout` (whole seconds, at least 1) unless it sets one or
/// `timeout` is zero.
fn with_connect_timeout(url: &str, timeout: Duration) -> String {
    if timeout.is_zero() || url.contains("connect_timeout=") {
        return url.to_owned();
    }
    let secs = timeout.as_secs().clamp(1, i32::MAX as u64);
    let joint = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joint}connect_timeout={secs}")
}

/// Sets the connection's session: its statement and lock timeouts (zero: none), and READ
/// COMMITTED, whatever the server's or database's default isolation. Every transaction here
/// is written for it: concurrent upserts of one row, and a sync page that reads the progress
/// the page before it committed meanwhile, fail with serialization errors under REPEATABLE
/// READ or SERIALIZABLE.
pub(super) fn set_session(
    conn: &mut PgConnection,
    deadlines: &super::Deadlines,
) -> diesel::QueryResult<()> {
    // PostgreSQL takes at most i32::MAX ms; a larger setting means "as long as it allows".
    let ms = |d: Duration| d.as_millis().min(i32::MAX as u128);
    conn.batch_execute(&format!(
        "SET statement_timeout = {}; SET lock_timeout = {}; \
         SET default_transaction_isolation = 'read committed'",
        ms(deadlines.statement),
        ms(deadlines.lock)
    ))
}

/// Stored event payloads (~2 kB of JSON each) are compressed by PostgreSQL when written;
/// its default, pglz, was the receiver's costliest single function on the database side
/// (docs/BENCHMARKS.md). lz4 is several times cheaper. PostgreSQL-only, so it is not in the
/// shared migrations; changed only if not set yet (the change takes a short exclusive lock),
/// and a server built without lz4 keeps pglz.
pub(super) fn compress_payloads_with_lz4(conn: &mut PgConnection) {
    let set = conn.batch_execute(
        "DO $$ BEGIN \
           IF (SELECT attcompression FROM pg_attribute \
               WHERE attrelid = 'stripe_events'::regclass AND attname = 'payload') <> 'l' THEN \
             ALTER TABLE stripe_events ALTER COLUMN payload SET COMPRESSION lz4; \
           END IF; \
         END $$",
    );
    if let Err(err) = set {
        tracing::warn!(error = %err, "event payloads stay compressed with pglz");
    }
}

/// The mirror tables whose rows webhooks update, most of them several times.
const UPDATED_MIRRORS: [&str; 9] = [
    "customers",
    "subscriptions",
    "payments",
    "checkout_sessions",
    "invoices",
    "products",
    "prices",
    "refunds",
    "payment_methods",
];

/// Mirror rows are written once and then updated by each later event of their object. An
/// update can stay on the row's page and skip every index ("HOT") only if the page has room;
/// at PostgreSQL's default fill factor (100) pages are full when written, so each update
/// inserted a new entry into every index of the table (four for subscriptions) and its WAL
/// (docs/BENCHMARKS.md, issue 15). A fill factor of 80 leaves a fifth of each new page for
/// updated versions. PostgreSQL-only (a storage parameter), set once: it applies to pages
/// written from then on.
pub(super) fn leave_room_for_updates(conn: &mut PgConnection) {
    for table in UPDATED_MIRRORS {
        let set = conn.batch_execute(&format!(
            "DO $$ BEGIN \
               IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = '{table}'::regclass \
                   AND reloptions::text[] @> ARRAY['fillfactor=80']) THEN \
                 ALTER TABLE {table} SET (fillfactor = 80); \
               END IF; \
             END $$"
        ));
        if let Err(err) = set {
            tracing::warn!(error = %err, table, "mirror table keeps the default fill factor");
        }
    }
}

/// A read-write transaction. On SQLite the outermost one takes the database's in-process
/// write lock ([`super::write_lock`]), then begins `IMMEDIATE`: with the write lock taken up
/// front a read transaction never has to upgrade (SQLITE_BUSY_SNAPSHOT under WAL), and with the
/// in-process lock taken first nobody of this process waits in SQLite's busy handler. Nested
/// calls are savepoints (the lock is held already).
pub fn write_transaction<T, E, F>(conn: &mut AnyConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let AnyConnection::Sqlite(inner) = conn else {
        return conn.transaction(work);
    };
    if in_transaction(inner)? {
        return conn.transaction(work);
    }
    super::write_lock::hold(|| {
        let AnyConnection::Sqlite(inner) = &mut *conn else {
            return Err(diesel::result::Error::BrokenTransactionManager.into());
        };
        AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?;
        let result = work(conn);
        let AnyConnection::Sqlite(inner) = conn else {
            // A connection cannot change backend inside a transaction; an error, not a panic.
            return Err(diesel::result::Error::BrokenTransactionManager.into());
        };
        match result {
            Ok(value) => {
                AnsiTransactionManager::commit_transaction(inner)?;
                Ok(value)
            }
            Err(err) => {
                AnsiTransactionManager::rollback_transaction(inner)?;
                Err(err)
            }
        }
    })
}

/// Writes that need no transaction of their own (one statement, or a claim made of a few):
/// on PostgreSQL `work` runs as it is (autocommit, or in the caller's transaction); on SQLite
/// it runs in the caller's transaction, or else in a [`write_transaction`] of its own, so it
/// takes the write lock like every other write (an autocommit write would wait for the
/// database's lock in SQLite's busy handler).
pub fn write_statement<T, E, F>(conn: &mut AnyConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let AnyConnection::Sqlite(inner) = conn else {
        return work(conn);
    };
    if in_transaction(inner)? {
        return work(conn);
    }
    write_transaction(conn, work)
}

/// Whether a transaction is open on the connection (every SQLite transaction in this crate is
/// begun by [`write_transaction`], which holds the write lock).
pub(super) fn in_transaction<C>(conn: &mut C) -> Result<bool, diesel::result::Error>
where
    C: diesel::Connection<TransactionManager = diesel::connection::AnsiTransactionManager>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    Ok(AnsiTransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connect_timeout_joins_the_url_unless_it_has_one() {
        let five = Duration::from_secs(5);
        assert_eq!(
            with_connect_timeout("postgres://u@h/db", five),
            "postgres://u@h/db?connect_timeout=5"
        );
        assert_eq!(
            with_connect_timeout("postgres://u@h/db?sslmode=disable", five),
            "postgres://u@h/db?sslmode=disable&connect_timeout=5"
        );
        assert_eq!(
            with_connect_timeout("postgres://u@h/db?connect_timeout=2", five),
            "postgres://u@h/db?connect_timeout=2"
        );
        assert_eq!(
            with_connect_timeout("postgres://u@h/db", Duration::ZERO),
            "postgres://u@h/db"
        );
        assert_eq!(
            with_connect_timeout("postgres://u@h/db", Duration::from_millis(200)),
            "postgres://u@h/db?connect_timeout=1"
        );
    }
}
