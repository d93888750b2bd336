//! SQLite's one writer at a time, queued in-process: every write to a SQLite database takes
//! its `Database`'s lock (shared by the pool and the receiver writer's own connections) before
//! `BEGIN IMMEDIATE`, so a writer waits on a mutex and is handed the lock as soon as it is
//! free, instead of sleeping in SQLite's busy handler, whose sleeps (1, 2, 5, 10 ... 100 ms)
//! outlast the writes they wait for (issue 15: p99 262-402 ms at 8 connections). PostgreSQL
//! has no such lock. Readers never take it (WAL lets them read beside the writer).
//!
//! Lock order: a connection first, then the lock (taken inside `write_transaction`, with the
//! connection in hand), so a lock holder never waits for the pool. `busy_timeout` stays for
//! writers in other processes (CLI commands beside a running service).

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

type Shared = Arc<Mutex<()>>;

/// A database's write lock: `None` on PostgreSQL.
#[derive(Clone, Default)]
pub(super) struct WriteLock(Option<Shared>);

thread_local! {
    /// The write lock of the database whose connection this thread is working with (set by
    /// [`WriteLock::scope`]); the write functions take `&mut AnyConnection` only.
    static CURRENT: RefCell<Option<Shared>> = const { RefCell::new(None) };
    /// Whether this thread holds it now (a nested write must not lock again).
    static HELD: Cell<bool> = const { Cell::new(false) };
}

impl WriteLock {
    pub(super) fn new(sqlite: bool) -> Self {
        Self(sqlite.then(Shared::default))
    }

    /// Runs `work` with this lock as the one this thread's writes take; the previous one is
    /// restored after, also if `work` panics.
    pub(super) fn scope<T>(&self, work: impl FnOnce() -> T) -> T {
        struct Restore(Option<Shared>);
        impl Drop for Restore {
            fn drop(&mut self) {
                CURRENT.set(self.0.take());
            }
        }
        let _restore = Restore(CURRENT.replace(self.0.clone()));
        work()
    }
}

/// Runs `work` holding the thread's current write lock, if it has one and does not hold it
/// already. Released fairly: the longest waiter gets it next, so no writer is overtaken
/// again and again by newcomers.
pub(super) fn hold<T>(work: impl FnOnce() -> T) -> T {
    struct Held<'a>(Option<MutexGuard<'a, ()>>);
    impl Drop for Held<'_> {
        fn drop(&mut self) {
            HELD.set(false);
            if let Some(guard) = self.0.take() {
                MutexGuard::unlock_fair(guard);
            }
        }
    }
    let lock = CURRENT.with_borrow(Clone::clone);
    let Some(lock) = lock.filter(|_| !HELD.get()) else {
        return work();
    };
    let _held = Held(Some(lock.lock()));
    HELD.set(true);
    work()
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use diesel::connection::SimpleConnection;
    use diesel::sql_types::BigInt;
    use diesel::{QueryableByName, RunQueryDsl};

    use crate::db::{AnyConnection, Database, DbError, write_statement, write_transaction};

    const THREADS: i64 = 8;
    const ROUNDS: i64 = 25;

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    fn count(conn: &mut AnyConnection) -> diesel::QueryResult<i64> {
        diesel::sql_query("SELECT COUNT(*) AS n FROM written")
            .get_result::<Count>(conn)
            .map(|c| c.n)
    }

    /// A SQLite database whose connections fail at once with "database is locked" instead of
    /// waiting for another connection's write (busy_timeout 0), with a table to write.
    async fn without_busy_timeout(dir: &tempfile::TempDir) -> Database {
        let url = format!("sqlite://{}", dir.path().join("writes.db").display());
        let db = Database::connect_with(&url, THREADS as u32 + 1, Duration::ZERO).unwrap();
        db.run(|conn| {
            conn.batch_execute(
                "PRAGMA journal_mode = WAL; \
                 CREATE TABLE written (id INTEGER PRIMARY KEY, writer TEXT NOT NULL, n INTEGER NOT NULL)",
            )
            .map_err(DbError::from)
        })
        .await
        .unwrap();
        db
    }

    /// A transaction of several statements, as the API's writes are.
    fn write_rows(conn: &mut AnyConnection, writer: &str, rows: i64) -> diesel::QueryResult<()> {
        write_transaction(conn, |conn| {
            for n in 0..rows {
                diesel::sql_query(format!(
                    "INSERT INTO written (writer, n) VALUES ('{writer}', {n})"
                ))
                .execute(conn)?;
            }
            diesel::sql_query(format!(
                "UPDATE written SET n = n + 1 WHERE writer = '{writer}'"
            ))
            .execute(conn)?;
            Ok(())
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_sqlite_writers_all_succeed_without_waiting_in_the_busy_handler() {
        let dir = tempfile::tempdir().unwrap();
        let db = without_busy_timeout(&dir).await;

        // A receiver-style writer: a thread of its own with a connection of its own, writing
        // batches (what `receiver::writer` does).
        let receiver = {
            let db = db.clone();
            std::thread::spawn(move || {
                db.with_write_lock(|| {
                    let mut conn = db.connect_one()?;
                    for round in 0..ROUNDS {
                        write_rows(&mut conn, &format!("batch-{round}"), 10)?;
                    }
                    Ok::<_, DbError>(())
                })
            })
        };
        // API-style writers on the pool: write transactions and single statements.
        let mut api = Vec::new();
        for thread in 0..THREADS {
            let db = db.clone();
            api.push(tokio::spawn(async move {
                for round in 0..ROUNDS {
                    db.run(move |conn| {
                        write_rows(conn, &format!("api-{thread}-{round}"), 3)?;
                        write_statement(conn, |conn| {
                            diesel::sql_query(format!(
                                "INSERT INTO written (writer, n) VALUES ('one-{thread}', {round})"
                            ))
                            .execute(conn)
                        })?;
                        Ok::<_, DbError>(())
                    })
                    .await?;
                }
                Ok::<_, DbError>(())
            }));
        }
        for writer in api {
            writer.await.unwrap().unwrap();
        }
        receiver.join().unwrap().unwrap();
        let written = db
            .run(|conn| count(conn).map_err(DbError::from))
            .await
            .unwrap();
        assert_eq!(written, ROUNDS * 10 + THREADS * ROUNDS * (3 + 1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_proceeds_while_a_write_transaction_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let db = without_busy_timeout(&dir).await;
        let (opened, is_open) = mpsc::channel();
        let (read, was_read) = mpsc::channel::<i64>();
        let writer = {
            let db = db.clone();
            tokio::spawn(async move {
                db.run(move |conn| {
                    write_transaction(conn, |conn| {
                        write_rows(conn, "open", 1)?;
                        let _ = opened.send(());
                        // The read below finishes while this transaction holds the lock; a
                        // reader that waited for it would never answer (failing, not hanging).
                        Ok::<_, DbError>(was_read.recv_timeout(Duration::from_secs(10)).ok())
                    })
                })
                .await
            })
        };
        tokio::task::spawn_blocking(move || is_open.recv_timeout(Duration::from_secs(10)))
            .await
            .unwrap()
            .unwrap();
        let seen = db
            .run(|conn| count(conn).map_err(DbError::from))
            .await
            .unwrap();
        read.send(seen).unwrap();
        // The reader saw the state before the open transaction (WAL snapshot).
        assert_eq!(writer.await.unwrap().unwrap(), Some(0));
        let after = db
            .run(|conn| count(conn).map_err(DbError::from))
            .await
            .unwrap();
        assert_eq!(after, 1);
    }

    #[tokio::test]
    async fn a_nested_write_does_not_lock_again() {
        let dir = tempfile::tempdir().unwrap();
        let db = without_busy_timeout(&dir).await;
        let written = db
            .run(|conn| {
                write_transaction(conn, |conn| {
                    write_rows(conn, "outer", 1)?;
                    write_rows(conn, "savepoint", 1)?;
                    write_statement(conn, |conn| {
                        diesel::sql_query("INSERT INTO written (writer, n) VALUES ('inner', 0)")
                            .execute(conn)
                    })?;
                    count(conn)
                })
                .map_err(DbError::from)
            })
            .await
            .unwrap();
        assert_eq!(written, 3);
    }
}
