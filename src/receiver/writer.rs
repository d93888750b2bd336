//! Group commit for the receiver: concurrent deliveries are written in one transaction, so
//! one commit (one WAL flush) acknowledges many events. Nothing is acknowledged before its
//! batch has committed.
//!
//! A batch takes its locks in a fixed order, the same in every batch and every instance:
//! first the event rows by (tenant, event id), then the mirror rows by (kind, object id). Two
//! batches therefore never wait on each other in a cycle. Should a batch fail anyway (a
//! deadlock, a row that will not insert), each of its deliveries is written again on its own,
//! so one bad event cannot fail the others.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::r2d2::R2D2Connection;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

use super::event::Pending;
use crate::db::{AnyConnection, Database};

/// Most deliveries written in one transaction.
const MAX_BATCH: usize = 128;
/// How many deliveries may wait for a writer, and how long a delivery waits for its batch to
/// commit, before it is answered 503 (Stripe retries): a full queue sheds load at once instead
/// of piling up requests that each hold a body of up to 1 MiB, and a stuck database never
/// hangs a delivery.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub queue: usize,
    pub answer_within: Duration,
}

/// The largest queue bound taken from the settings.
const MAX_QUEUE: usize = 1 << 20;

/// The outcome of one delivery, or why it could not be stored (answered 503).
pub type Written = Result<&'static str, String>;

struct Job {
    pending: Pending,
    reply: oneshot::Sender<Written>,
}

type Queue = Arc<Mutex<mpsc::Receiver<Job>>>;

/// The handle the receiver sends deliveries to; writer threads batch and write them.
pub struct EventWriter {
    jobs: mpsc::Sender<Job>,
    limits: Limits,
    /// Writer threads still running.
    alive: Arc<AtomicUsize>,
}

/// Counts a writer thread for as long as it runs (it ends with the service, or by a panic
/// outside a batch).
struct Alive(Arc<AtomicUsize>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl EventWriter {
    /// Starts `writers` writer threads (0: two on PostgreSQL, so one commits while the next
    /// batch is written; one on SQLite, which has one writer at a time anyway). Each has its
    /// own connection, opened at its first batch and again after one breaks: no pool check-out
    /// or hop to the blocking pool per batch. They end when the service's state is dropped.
    pub fn start(db: Database, writers: u32, limits: Limits) -> Self {
        let writers = match writers {
            0 if db.is_postgres() => 2,
            0 => 1,
            n => n,
        };
        // tokio's channel refuses (panics on) a bound past usize::MAX >> 3: a setting that
        // large means "very many", not a crash at start.
        let (jobs, queue) = mpsc::channel(limits.queue.clamp(1, MAX_QUEUE));
        let queue: Queue = Arc::new(Mutex::new(queue));
        let alive = Arc::new(AtomicUsize::new(0));
        for n in 0..writers {
            let (db, queue) = (db.clone(), queue.clone());
            alive.fetch_add(1, Ordering::SeqCst);
            let counted = Alive(alive.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("event-writer-{n}"))
                // Its writes queue on the database's write lock with the API's (SQLite).
                .spawn(move || {
                    let _counted = counted;
                    db.with_write_lock(|| write_loop(&db, &queue));
                });
            if let Err(err) = spawned {
                tracing::error!(error = %err, "could not start an event writer thread");
            }
        }
        Self {
            jobs,
            limits,
            alive,
        }
    }

    /// Writer threads running now (`/ready` is false at 0).
    pub fn writers_alive(&self) -> usize {
        self.alive.load(Ordering::SeqCst)
    }

    /// Deliveries waiting for a writer, and how many may.
    pub fn backlog(&self) -> (usize, usize) {
        let bound = self.jobs.max_capacity();
        (bound - self.jobs.capacity(), bound)
    }

    /// Stores and applies one delivery; returns once its transaction has committed. A full
    /// queue is refused at once, and an answer not had within the limit gives up waiting (the
    /// delivery may still commit: Stripe's retry is then a duplicate, answered as one).
    pub(super) async fn write(&self, pending: Pending) -> Written {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .try_send(Job { pending, reply })
            .map_err(|err| match err {
                TrySendError::Full(_) => "the receiver's queue is full".to_owned(),
                TrySendError::Closed(_) => "the event writer has stopped".to_owned(),
            })?;
        match tokio::time::timeout(self.limits.answer_within, answer).await {
            Ok(answer) => answer.map_err(|_| "the event writer dropped the delivery".to_owned())?,
            Err(_) => Err("the event was not stored in time".to_owned()),
        }
    }
}

/// Takes the next batch: waits for one delivery, then adds whatever else is queued. Only one
/// writer collects at a time, so while one writes, the other gathers the next batch.
fn next_batch(queue: &Queue) -> Option<Vec<Job>> {
    // A writer that panicked while collecting left nothing half-done in the queue.
    let mut queue = queue
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let first = queue.blocking_recv()?;
    let mut jobs = vec![first];
    while jobs.len() < MAX_BATCH {
        match queue.try_recv() {
            Ok(job) => jobs.push(job),
            Err(_) => break,
        }
    }
    Some(jobs)
}

fn write_loop(db: &Database, queue: &Queue) {
    let mut conn: Option<AnyConnection> = None;
    while let Some(jobs) = next_batch(queue) {
        let (batch, replies): (Vec<Pending>, Vec<_>) =
            jobs.into_iter().map(|job| (job.pending, job.reply)).unzip();
        let started = std::time::Instant::now();
        let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            write_batch(db, &mut conn, &batch)
        }))
        .unwrap_or_else(|_| {
            // Nothing of an interrupted transaction commits; start from a new connection.
            conn = None;
            vec![Err("the event writer failed".to_owned()); batch.len()]
        });
        crate::metrics::receiver_batch(batch.len(), started);
        for (reply, result) in replies.into_iter().zip(written) {
            // The delivery's request may be gone (client hung up): its event is stored anyway.
            let _ = reply.send(result);
        }
    }
}

/// Writes a batch on the writer's connection. A connection found broken is replaced and the
/// batch written once more (the database restarted since the last batch, say).
fn write_batch(db: &Database, conn: &mut Option<AnyConnection>, batch: &[Pending]) -> Vec<Written> {
    for attempt in 0..2 {
        if conn.is_none() {
            match db.connect_one() {
                Ok(fresh) => *conn = Some(fresh),
                Err(err) => return vec![Err(err.to_string()); batch.len()],
            }
        }
        let Some(open) = conn.as_mut() else {
            break;
        };
        let written = store(open, batch);
        if !open.is_broken() {
            return written;
        }
        *conn = None;
        if attempt == 1 {
            return written;
        }
    }
    vec![Err("no database connection".to_owned()); batch.len()]
}

/// One transaction for the batch; on failure, one per delivery.
fn store(conn: &mut AnyConnection, batch: &[Pending]) -> Vec<Written> {
    if batch.len() > 1 {
        match super::batch::store_batch(conn, batch) {
            Ok(outcomes) => return outcomes.into_iter().map(Ok).collect(),
            Err(err) => tracing::warn!(
                error = %err,
                deliveries = batch.len(),
                "batch write failed; writing its deliveries one by one"
            ),
        }
    }
    batch
        .iter()
        .map(|pending| super::batch::store_and_apply(conn, pending).map_err(|err| err.to_string()))
        .collect()
}
