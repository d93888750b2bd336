//! The database layer: one connection type over PostgreSQL and SQLite, the pool, migrations,
//! and the bridge that runs blocking Diesel work off the async workers.

pub mod catalog;
pub mod checkout_sessions;
pub mod customers;
pub mod events;
pub mod idempotency_keys;
pub mod invoices;
pub mod notifications;
pub mod orders;
pub mod payment_methods;
pub mod payments;
pub mod policies;
pub mod prepared;
pub mod refunds;
pub mod schema;
pub mod subscriptions;
pub mod tenants;
pub mod webhook_endpoints;

use std::path::Path;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

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
    url: DatabaseUrl,
    /// PostgreSQL's `plan_cache_mode` for the connection's prepared statements.
    plans: PlanCacheMode,
}

/// How PostgreSQL plans a connection's prepared statements.
#[derive(Debug, Clone, Copy)]
enum PlanCacheMode {
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
                let mut conn =
                    PgConnection::establish(url).map_err(r2d2::Error::ConnectionError)?;
                let mode = match self.plans {
                    PlanCacheMode::Custom => "SET plan_cache_mode = force_custom_plan",
                    PlanCacheMode::Auto => "SET plan_cache_mode = auto",
                };
                conn.batch_execute(mode).map_err(r2d2::Error::QueryError)?;
                Ok(AnyConnection::Postgresql(conn))
            }
            DatabaseUrl::Sqlite(path) => {
                let mut conn =
                    SqliteConnection::establish(path).map_err(r2d2::Error::ConnectionError)?;
                // WAL lets readers run beside the writer; FULL sync because a webhook is
                // acknowledged only once it is durable (STRIPE_RULES.md, Delivery).
                conn.batch_execute(
                    "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
                )
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

/// Stored event payloads (~2 kB of JSON each) are compressed by PostgreSQL when written;
/// its default, pglz, was the receiver's costliest single function on the database side
/// (docs/BENCHMARKS.md). lz4 is several times cheaper. PostgreSQL-only, so it is not in the
/// shared migrations; changed only if not set yet (the change takes a short exclusive lock),
/// and a server built without lz4 keeps pglz.
fn compress_payloads_with_lz4(conn: &mut PgConnection) {
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

/// A read-write transaction. On SQLite the outermost one begins `IMMEDIATE`: taking the write
/// lock up front makes a concurrent writer wait (busy_timeout) instead of failing when a read
/// transaction tries to upgrade (SQLITE_BUSY_SNAPSHOT under WAL). Nested calls are savepoints.
pub fn write_transaction<T, E, F>(conn: &mut AnyConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let AnyConnection::Sqlite(inner) = conn else {
        return conn.transaction(work);
    };
    let outermost = AnsiTransactionManager::transaction_manager_status_mut(inner)
        .transaction_depth()?
        .is_none();
    if !outermost {
        return conn.transaction(work);
    }
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
}

/// How current a Stripe state being written is, in Stripe's unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Stripe's answer to a call we just made, or a fresh re-read: it wins over anything
    /// stored at the same second or earlier.
    Current(i64),
    /// The state carried by an event created at this second: it wins only over older state;
    /// a tie cannot be ordered by `created` alone (STRIPE_RULES.md, Delivery).
    Event(i64),
}

impl Freshness {
    pub fn at(self) -> i64 {
        match self {
            Freshness::Current(at) | Freshness::Event(at) => at,
        }
    }
}

/// What a watermarked write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Written,
    /// The row already holds newer state: nothing changed.
    Stale,
    /// The row holds state of the same second: the object must be re-read from Stripe.
    Tie,
}

/// The watermark rule for one row on SQLite, whose writer holds the database lock for the
/// whole transaction (`write_transaction` begins IMMEDIATE), so reading the watermark and then
/// writing cannot race another writer.
macro_rules! sqlite_upsert_if_newer {
    ($conn:expr, $table:ident, $find:expr, $values:expr, $changes:expr, $at:expr, $equal_wins:expr) => {{
        let (at, equal_wins): (i64, bool) = ($at, $equal_wins);
        let stored: Option<Option<i64>> = $table::table
            .filter($find)
            .select($table::watermark)
            .first($conn)
            .optional()?;
        match stored {
            None => {
                diesel::insert_into($table::table)
                    .values($values)
                    .execute($conn)?;
                $crate::db::Applied::Written
            }
            Some(w) if w.is_none_or(|w| w < at || (equal_wins && w == at)) => {
                diesel::update($table::table.filter($find))
                    .set($changes)
                    .execute($conn)?;
                $crate::db::Applied::Written
            }
            Some(Some(w)) if w == at => $crate::db::Applied::Tie,
            Some(_) => $crate::db::Applied::Stale,
        }
    }};
}

/// Defines `pub fn $name(conn, items: &[(tenant id, &Snapshot, created)], equal_wins)`, the
/// watermark rule for several objects of one mirror table on either backend: one prepared
/// batch statement on PostgreSQL ([`prepared::MirrorSql`]), row by row on SQLite
/// ([`sqlite_upsert_if_newer!`]). `changes` names a `fn(&Snapshot, metadata, at, now)`
/// building the changeset (its fields are the listed columns, which end with `watermark`);
/// `insert(tenant, s, now)` the columns set on insert only.
macro_rules! mirror_apply_fn {
    (
        $name:ident, $table:ident, $key:ident, $snap:ty,
        changes: $changes:path,
        insert($tenant:ident, $s:ident, $now:ident) => (
            $($itable:ident :: $icol:ident . eq($iexpr:expr)),+ $(,)?
        ),
        [$($col:ident),+ $(,)?]
    ) => {
        pub fn $name(
            conn: &mut $crate::db::AnyConnection,
            items: &[(&str, &$snap, i64)],
            equal_wins: bool,
        ) -> diesel::QueryResult<Vec<$crate::db::Applied>> {
            let now = chrono::Utc::now().naive_utc();
            let metadata: Vec<String> = items
                .iter()
                .map(|(_, s, _)| $crate::db::stored_metadata(&s.metadata))
                .collect();
            match conn {
                $crate::db::AnyConnection::Postgresql(pg) => {
                    static SQL: std::sync::OnceLock<$crate::db::prepared::MirrorSql> =
                        std::sync::OnceLock::new();
                    let sql = SQL.get_or_init(|| {
                        $crate::db::prepared::MirrorSql::new(
                            stringify!($table),
                            stringify!($key),
                            &[$(stringify!($icol)),+],
                            &[$(stringify!($col)),+],
                        )
                    });
                    let mut rows = Vec::with_capacity(items.len());
                    for ((tenant, s, at), metadata) in items.iter().zip(&metadata) {
                        let ($tenant, $s, $now) = (*tenant, *s, now);
                        let mut row = $crate::db::prepared::json_object(
                            &$changes($s, metadata, *at, $now),
                        )?;
                        $(
                            row.insert(
                                stringify!($icol).to_owned(),
                                $crate::db::prepared::json_value(&$iexpr)?,
                            );
                        )+
                        rows.push(serde_json::Value::Object(row));
                    }
                    let keys: Vec<(&str, &str, i64)> = items
                        .iter()
                        .map(|(tenant, s, at)| (*tenant, s.id.as_str(), *at))
                        .collect();
                    sql.upsert(pg, &keys, &rows, equal_wins)
                }
                sqlite => items
                    .iter()
                    .zip(&metadata)
                    .map(|((tenant, s, at), metadata)| {
                        let ($tenant, $s, $now) = (*tenant, *s, now);
                        let changes = $changes($s, metadata, *at, $now);
                        Ok($crate::db::sqlite_upsert_if_newer!(
                            sqlite,
                            $table,
                            $table::tenant_id.eq($tenant).and($table::$key.eq(&$s.id)),
                            (($($itable::$icol.eq($iexpr),)+), &changes),
                            &changes,
                            *at,
                            equal_wins
                        ))
                    })
                    .collect(),
            }
        }
    };
}

/// Defines `pub fn $name(conn, tenant_id, [owner,] snapshot, now) -> Row`: writes a state
/// Stripe gave us just now (our own call's answer, or a re-read; it wins over a stored state
/// of the same second) through the table's `mirror_apply_fn!` function, records `owner` as
/// the owner of a row nobody owns yet (one first seen through a webhook), and returns the row.
macro_rules! mirror_record_fn {
    ($name:ident, $apply:path, $table:ident, $key:ident, $snap:ty, $row:ty $(, owner: $owner:ident)?) => {
        pub fn $name(
            conn: &mut $crate::db::AnyConnection,
            tenant_id: &str,
            $($owner: &str,)?
            snapshot: &$snap,
            now: i64,
        ) -> diesel::QueryResult<$row> {
            $crate::db::write_transaction(conn, |conn| {
                $apply(conn, &[(tenant_id, snapshot, now)], true)?;
                let mine = $table::table
                    .filter($table::tenant_id.eq(tenant_id))
                    .filter($table::$key.eq(&snapshot.id));
                $(
                    diesel::update(mine.filter($table::owner_subject.eq("")))
                        .set($table::owner_subject.eq($owner))
                        .execute(conn)?;
                )?
                mine.select(<$row>::as_select()).first(conn)
            })
        }
    };
}

/// Replaces the child rows (invoice lines, subscription items) of parents just written: the
/// old rows of `$parents` (Stripe ids of the tenant, in `$parent` column) are deleted and
/// `$rows` inserted. On PostgreSQL two statements: the delete, by the unique index's prefix and
/// planned per call (it reads the table), and the insert of the rows as JSON
/// ([`prepared::insert_rows`]); on SQLite, whose writer holds the lock, one insert per row.
macro_rules! replace_children {
    ($conn:expr, $table:ident, $parent:ident, $tenant:expr, $parents:expr, $rows:expr) => {{
        let (tenant_id, parents): (&str, &[&str]) = ($tenant, $parents);
        let rows = $rows;
        match $conn {
            $crate::db::AnyConnection::Postgresql(pg) => {
                $crate::db::prepared::prepared([
                    concat!("DELETE FROM ", stringify!($table), " WHERE tenant_id = "),
                    concat!(" AND ", stringify!($parent), " = ANY("),
                    "::text[])",
                ])
                .bind::<diesel::sql_types::Text, _>(tenant_id)
                .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(parents)
                .planned_per_call()
                .execute(pg)?;
                $crate::db::prepared::insert_rows(pg, stringify!($table), &rows)
            }
            $crate::db::AnyConnection::Sqlite(sqlite) => {
                diesel::delete(
                    $table::table
                        .filter($table::tenant_id.eq(tenant_id))
                        .filter($table::$parent.eq_any(parents)),
                )
                .execute(sqlite)?;
                for row in &rows {
                    diesel::insert_into($table::table)
                        .values(row)
                        .execute(sqlite)?;
                }
                Ok(())
            }
        }
    }};
}

pub(crate) use {mirror_apply_fn, mirror_record_fn, replace_children, sqlite_upsert_if_newer};

/// Metadata as stored: JSON text with keys in order, so equal maps store equal text.
pub fn stored_metadata(metadata: &std::collections::HashMap<String, String>) -> String {
    let sorted: std::collections::BTreeMap<_, _> = metadata.iter().collect();
    serde_json::to_string(&sorted).unwrap_or_else(|_| "{}".to_owned())
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
}

impl Database {
    /// Builds the pool (creating a SQLite file's folder first) without opening connections
    /// eagerly, so the service can start while PostgreSQL is still coming up.
    pub fn connect(url: &str, pool_size: u32) -> anyhow::Result<Self> {
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
            });
        Ok(Self { pool, url })
    }

    /// A connection of its own, outside the pool, for the receiver's writer. Unlike the pool's,
    /// its prepared statements may settle on a generic plan (PostgreSQL's default): every
    /// statement it keeps prepared only inserts rows it is given, whose plan is the same at
    /// any table size, and every statement that reads a table is sent unnamed and planned per
    /// call ([`prepared::Prepared::planned_per_call`]). Measured: PostgreSQL spent about a
    /// fifth of its time planning the receiver's statements again on every batch.
    pub fn connect_one(&self) -> Result<AnyConnection, DbError> {
        Manager {
            url: self.url.clone(),
            plans: PlanCacheMode::Auto,
        }
        .connect()
        .map_err(|err| DbError::Join(format!("connecting: {err}")))
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.url, DatabaseUrl::Postgres(_))
    }

    /// Runs every pending embedded migration.
    pub fn migrate(&self) -> anyhow::Result<()> {
        let mut conn = self.pool.get()?;
        let result = match &mut *conn {
            AnyConnection::Postgresql(c) => {
                let ran = c.run_pending_migrations(MIGRATIONS).map(|_| ());
                if ran.is_ok() {
                    compress_payloads_with_lz4(c);
                }
                ran
            }
            AnyConnection::Sqlite(c) => c.run_pending_migrations(MIGRATIONS).map(|_| ()),
        };
        result.map_err(|err| anyhow::anyhow!("running migrations: {err}"))
    }

    /// A connection for synchronous callers (CLI commands, start-up).
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
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(DbError::from)?;
            work(&mut conn)
        })
        .await
        .map_err(|err| E::from(DbError::Join(err.to_string())))?
    }
}
