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
mod pool;
pub mod prepared;
pub mod refunds;
pub mod schema;
pub mod subscriptions;
pub mod tenants;
pub mod webhook_endpoints;

pub mod upsert;
pub mod watermark;

use std::path::Path;
use std::time::Duration;

use diesel::r2d2::{self, ManageConnection};
use diesel_migrations::MigrationHarness;

pub use pool::{
    AnyConnection, DatabaseUrl, MIGRATIONS, Manager, Pool, PooledConnection, write_transaction,
};
use pool::{PlanCacheMode, compress_payloads_with_lz4, leave_room_for_updates};
pub use upsert::stored_metadata;
pub(crate) use upsert::{mirror_record_fn, mirror_table, replace_children};
pub use watermark::{Applied, Freshness};

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
                    leave_room_for_updates(c);
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
        // The work runs on another thread: it keeps the caller's span (the request id) and
        // subscriber, so what it logs is tied to the request.
        let span = tracing::Span::current();
        let dispatch = tracing::dispatcher::get_default(|d| d.clone());
        tokio::task::spawn_blocking(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                let _entered = span.enter();
                let mut conn = pool.get().map_err(DbError::from)?;
                work(&mut conn)
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
