//! Historical sync (issue 17): a job pages Stripe's lists of a tenant's account into the
//! mirror, type by type, parents first ([`kinds`]). Jobs live in the database (`sync_jobs`)
//! and are leased by one worker at a time (each instance runs one); each page is written
//! with the job's progress in one transaction, so a job resumed after a restart or a kill
//! continues from its last page and counts nothing twice. Pages are written through the
//! receiver's table of mirrored types, stamped with the second they were requested (the
//! watermark rule keeps the newer of a delivery and a page; a same-second tie is re-read).
//! Polite to Stripe: a per-tenant request rate, back-off on 429 and on Stripe's failures, one
//! page in memory at a time.

pub mod kinds;

use std::collections::VecDeque;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use futures_util::StreamExt;
use futures_util::future::{MaybeDone, maybe_done};
use futures_util::stream::FuturesUnordered;
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

use crate::config::Settings;
use crate::db::{self, Database, DbError, sync_jobs as rows};
use crate::error::ApiError;
use crate::receiver::listed::{self, ListedTargets, listed_targets, record_listed, settle_ties};
use crate::state::AppState;
use crate::stripe::objects::Fields;
use crate::stripe::{GatewayError, StripeApi};
use crate::tenant_cache::TenantCache;
use crate::tenants::TenantContext;
use kinds::{Kind, Nested};

/// A job that pages Stripe's lists of objects.
pub const HISTORICAL: &str = "historical";
/// A job that pages Stripe's events of a window and feeds them through the receiver.
pub const RECONCILE: &str = "reconcile";
/// The progress entry of a reconciliation.
pub const EVENTS: &str = "events";
/// How far back Stripe lists events (30 days), less a minute of margin at its edge.
const EVENTS_REACH_SECS: i64 = 30 * 24 * 3600 - 60;
/// Consecutive reconciliation windows overlap by this much (an event is stored once anyway).
const OVERLAP_SECS: i64 = 300;

/// Stripe's largest page.
const PAGE: usize = 100;
/// Stripe pages written as one, at most: each write costs PostgreSQL its statements'
/// planning, their triggers, the job's progress and a commit whatever its size (a fifth of
/// PostgreSQL's CPU in a backfill at one page per write, docs/BENCHMARKS.md).
const PAGES_PER_WRITE: usize = 8;
/// Pages are gathered into one write only while they come fast: from a Stripe answering a
/// page in hundreds of milliseconds, each page is written (and its progress saved) as it
/// arrives; the database is not what a sync waits for then.
const GATHER_PAGES_FOR: Duration = Duration::from_millis(200);
/// Nor past this many rows (objects and the entries of their nested lists): an account whose
/// invoices carry thousands of lines is written a page at a time.
const ROWS_PER_WRITE: usize = 4_000;
/// Retries of one Stripe call before the job is given back (and retried later).
const CALL_RETRIES: u32 = 5;
/// The longest `Retry-After` a sync waits for at once (a value set by something between us
/// and Stripe could ask for hours; Stripe asks for seconds).
const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(60);
/// A job given back after failures is due again after this long.
const RETRY_JOB_AFTER: Duration = Duration::from_secs(60);
/// Attempts (jobs given back) before a job fails.
const MAX_ATTEMPTS: i64 = 5;

/// Per type: how many objects were read and written, the last id written (the cursor) and
/// whether the type is done. On PostgreSQL a long list may be read as several `created`
/// ranges at once (`parts`, [`TypeProgress::split`]): each range then keeps its own counts,
/// cursor and end, the type's counts are their sums, its cursor the newest range's, and it
/// is done when all of them are.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct TypeProgress {
    pub read: u64,
    pub written: u64,
    pub cursor: Option<String>,
    pub done: bool,
    /// The ranges the list is read in, in the order they were cut (none: read whole).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartProgress>,
}

/// One `created` range of a list read in parts: objects created at or after `created_gte`
/// and before `created_lt` (none: the job's own bound), paged newest first from `cursor`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct PartProgress {
    pub created_gte: Option<i64>,
    pub created_lt: Option<i64>,
    pub read: u64,
    pub written: u64,
    pub cursor: Option<String>,
    pub done: bool,
}

impl TypeProgress {
    /// Part `at` of the list (the list itself while it is read whole).
    pub fn part(&self, at: usize) -> PartProgress {
        if self.parts.is_empty() {
            PartProgress {
                created_gte: None,
                created_lt: None,
                read: self.read,
                written: self.written,
                cursor: self.cursor.clone(),
                done: self.done,
            }
        } else {
            self.parts.get(at).cloned().unwrap_or_default()
        }
    }

    /// The parts not done yet (the list itself, `0`, while it is read whole).
    pub fn open_parts(&self) -> Vec<usize> {
        if self.parts.is_empty() {
            return if self.done { Vec::new() } else { vec![0] };
        }
        (0..self.parts.len())
            .filter(|&at| !self.parts[at].done)
            .collect()
    }

    /// Sets part `at` (the list itself while it is read whole); the list's own counts and end
    /// follow.
    fn set_part(&mut self, at: usize, part: PartProgress) {
        if self.parts.is_empty() {
            (self.read, self.written, self.done) = (part.read, part.written, part.done);
            self.cursor = part.cursor;
            return;
        }
        if let Some(slot) = self.parts.get_mut(at) {
            *slot = part;
        }
        // The newest part's: a build that knows no parts resumes the list from it, and reads
        // the ranges below again rather than skip what is left above.
        self.cursor.clone_from(&self.parts[0].cursor);
        self.read = self.parts.iter().map(|p| p.read).sum();
        self.written = self.parts.iter().map(|p| p.written).sum();
        self.done = self.parts.iter().all(|p| p.done);
    }

    /// Cuts what part `at` has still to read at `points` (newest first, each at or below the
    /// part's cursor and above its lower bound): the part keeps the range from `points[0]`
    /// up, with its cursor and counts; each range below becomes a new part, the last one down
    /// to the part's own lower bound. Returns the new parts' places.
    fn split(&mut self, at: usize, points: &[i64]) -> Vec<usize> {
        if self.parts.is_empty() {
            self.parts.push(self.part(0));
        }
        let Some(&top) = points.first() else {
            return Vec::new();
        };
        let Some(part) = self.parts.get_mut(at) else {
            return Vec::new();
        };
        let bottom = part.created_gte.replace(top);
        let mut added = Vec::new();
        for (i, &lt) in points.iter().enumerate() {
            let gte = points.get(i + 1).copied().or(bottom);
            added.push(self.parts.len());
            self.parts.push(PartProgress {
                created_gte: gte,
                created_lt: Some(lt),
                ..PartProgress::default()
            });
        }
        self.done = false;
        added
    }
}

pub type Progress = BTreeMap<String, TypeProgress>;

/// How the worker runs (settings `sync_*`, `reconcile_interval_secs`).
#[derive(Debug, Clone, Copy)]
pub struct SyncLimits {
    pub requests_per_sec: u32,
    pub poll: Duration,
    pub lease: Duration,
    /// How often each tenant is reconciled (`None`: never on its own).
    pub reconcile_every: Option<Duration>,
}

impl SyncLimits {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            requests_per_sec: settings.sync_requests_per_sec.max(1),
            poll: Duration::from_millis(settings.sync_poll_ms.max(10)),
            lease: Duration::from_secs(settings.sync_lease_secs.max(2)),
            reconcile_every: (settings.reconcile_interval_secs > 0)
                .then(|| Duration::from_secs(settings.reconcile_interval_secs)),
        }
    }
}

/// The events window a reconciliation covers: from where the last one ended, or the tenant's
/// creation for a first one (less an overlap), through `now`; never further back than
/// Stripe lists events. `gap_before`: events before this second are out of Stripe's reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub gte: i64,
    pub lt: i64,
    pub gap_before: Option<i64>,
}

pub fn reconcile_window(through: Option<i64>, tenant_created: i64, now: i64) -> Window {
    let oldest = now - EVENTS_REACH_SECS;
    let wanted = through.unwrap_or(tenant_created) - OVERLAP_SECS;
    Window {
        gte: wanted.max(oldest),
        // The current second included: an event created later in it is in the next window.
        lt: now + 1,
        gap_before: (wanted < oldest).then_some(oldest),
    }
}

/// A new job row.
#[allow(clippy::too_many_arguments)]
pub fn new_job(
    tenant_id: &str,
    kind: &str,
    objects: &[String],
    created_gte: Option<i64>,
    created_lt: Option<i64>,
    requested_by: &str,
    note: Option<String>,
) -> Result<rows::SyncJob, serde_json::Error> {
    let at = now();
    let progress: Progress = objects
        .iter()
        .map(|name| (name.clone(), TypeProgress::default()))
        .collect();
    Ok(rows::SyncJob {
        id: crate::db::new_row_id(),
        tenant_id: tenant_id.to_owned(),
        kind: kind.to_owned(),
        status: rows::QUEUED.into(),
        objects: serde_json::to_string(objects)?,
        created_gte,
        created_lt,
        progress: serde_json::to_string(&progress)?,
        requested_by: requested_by.to_owned(),
        lease_owner: None,
        lease_until: None,
        attempts: 0,
        last_error: None,
        note,
        created_at: at,
        started_at: None,
        finished_at: None,
        updated_at: at,
    })
}

/// What a historical sync reads: which types (in sync order), from and before which
/// `created` second.
#[derive(Debug, Clone)]
pub struct Scope {
    pub objects: Vec<String>,
    pub created_gte: Option<i64>,
    pub created_lt: Option<i64>,
}

impl Scope {
    /// Every type, all of their history.
    pub fn everything() -> Self {
        Self {
            objects: kinds::names().into_iter().map(str::to_owned).collect(),
            created_gte: None,
            created_lt: None,
        }
    }
}

/// Queues a historical sync unless one of the tenant's is queued or running (`Err` with that
/// one): what `POST /stripe/sync/historical` and the connection of an account both do.
pub fn queue_historical(
    conn: &mut db::AnyConnection,
    tenant_id: &str,
    scope: &Scope,
    requested_by: &str,
    note: Option<String>,
) -> Result<Result<rows::SyncJob, rows::SyncJob>, ApiError> {
    let job = new_job(
        tenant_id,
        HISTORICAL,
        &scope.objects,
        scope.created_gte,
        scope.created_lt,
        requested_by,
        note,
    )
    .map_err(ApiError::internal)?;
    Ok(rows::insert_unless_active(conn, &job)?.map(|()| job))
}

/// Queues a historical sync of every type, all of their history (see [`queue_historical`]).
pub fn queue_full_sync(
    conn: &mut db::AnyConnection,
    tenant_id: &str,
    requested_by: &str,
    note: &str,
) -> Result<Result<rows::SyncJob, rows::SyncJob>, ApiError> {
    queue_historical(
        conn,
        tenant_id,
        &Scope::everything(),
        requested_by,
        Some(note.to_owned()),
    )
}

/// Why a sync was canceled when the tenant connected another Stripe account.
pub const ANOTHER_ACCOUNT: &str =
    "canceled: another Stripe account was connected; a sync of that account replaces it";

/// A historical sync of everything for an account just connected in place of the one the
/// tenant had (`switched`): one still queued or running was reading the old account (a job
/// reads the tenant's access when it starts), so it is canceled and replaced. Reconnecting
/// the same account leaves one queued or running to finish.
pub fn queue_sync_of_connected(
    conn: &mut db::AnyConnection,
    tenant_id: &str,
    switched: bool,
    requested_by: &str,
    note: &str,
) -> Result<Result<rows::SyncJob, rows::SyncJob>, ApiError> {
    if switched {
        // A reconciliation under way reads the old account's events: canceled too (the next
        // one reads the new account's, and the sync below fills what came before).
        for kind in [HISTORICAL, RECONCILE] {
            if let Some(old) = rows::active(conn, tenant_id, kind)? {
                rows::cancel(conn, tenant_id, &old.id, Some(ANOTHER_ACCOUNT), now())?;
            }
        }
    }
    queue_full_sync(conn, tenant_id, requested_by, note)
}

/// Queues a reconciliation of the tenant's events unless one is queued or running (`Err`
/// with that one). The window starts where the last one ended.
pub fn enqueue_reconcile(
    conn: &mut db::AnyConnection,
    tenant_id: &str,
    tenant_created: NaiveDateTime,
    requested_by: &str,
) -> Result<Result<rows::SyncJob, rows::SyncJob>, ApiError> {
    let state = rows::state_of(conn, tenant_id)?;
    let window = reconcile_window(
        state.and_then(|s| s.reconciled_through),
        tenant_created.and_utc().timestamp(),
        Utc::now().timestamp(),
    );
    let note = window.gap_before.map(gap_note);
    let job = new_job(
        tenant_id,
        RECONCILE,
        &[EVENTS.to_owned()],
        Some(window.gte),
        Some(window.lt),
        requested_by,
        note,
    )
    .map_err(ApiError::internal)?;
    Ok(rows::insert_unless_active(conn, &job)?.map(|()| job))
}

/// What an admin is told of events out of Stripe's reach.
pub fn gap_note(before: i64) -> String {
    format!(
        "Events created before {} are older than Stripe keeps them (30 days) and cannot be recovered: run a historical sync (POST /stripe/sync/historical) for a complete mirror.",
        crate::domain::time::unix_timestamp(before).unwrap_or_else(|| before.to_string())
    )
}

/// A running worker: stopped (between pages) by [`SyncWorker::stop`].
pub struct SyncWorker {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl SyncWorker {
    /// Stops taking jobs; a job in progress stops after the page in flight and gives its
    /// lease back, so another instance resumes it at once.
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(grace, futures_util::future::join_all(self.tasks)).await;
    }
}

struct Worker {
    state: actix_web::web::Data<AppState>,
    db: Database,
    tenants: Arc<TenantCache>,
    limits: SyncLimits,
    owner: String,
    /// The kind of job this worker takes (`None`: any).
    lane: Option<&'static str>,
    /// Each tenant's request rate at Stripe, shared by the instance's workers.
    rate: Arc<DefaultKeyedRateLimiter<String>>,
    stop: watch::Receiver<bool>,
    /// Jobs queued by this instance (`AppState::sync_queued`): a wait for the next poll ends
    /// at once.
    queued: watch::Receiver<u64>,
    /// A list of the stage being read halted: the others stop before their next call at
    /// Stripe or wait for it (`list_stage`).
    stage_halted: watch::Sender<bool>,
    /// The oldest `created` the job being run has read so far, of any list (`i64::MAX`:
    /// none): where a list cut in parts guesses the account's history starts
    /// ([`Stage::cut`]).
    oldest: AtomicI64,
    /// How many times a call of this worker waited for its turn or its back-off: pages that
    /// come slowly for that are not Stripe being slow ([`Fetched::waited`]).
    throttled: AtomicU64,
    /// Until when Stripe asked each tenant to wait (a 429's `Retry-After`, or the back-off
    /// after it): every list read at once waits, not only the one refused, and the other
    /// worker's job of the tenant too. Shared by the instance's workers, as `rate` is.
    paused: Arc<std::sync::Mutex<HashMap<String, tokio::time::Instant>>>,
}

/// Starts this instance's sync workers: one takes any job, oldest first; the other takes
/// only reconciliations, so that a long historical sync does not hold every tenant's
/// reconciliation on this instance back until it ends. They share each tenant's request rate.
pub fn start_worker(state: actix_web::web::Data<AppState>, limits: SyncLimits) -> SyncWorker {
    let (stop, stopped) = watch::channel(false);
    let rate = NonZeroU32::new(limits.requests_per_sec).unwrap_or(NonZeroU32::MIN);
    let rate = Arc::new(RateLimiter::keyed(
        Quota::per_second(rate).allow_burst(rate),
    ));
    let paused = Arc::default();
    let tasks = [None, Some(RECONCILE)]
        .into_iter()
        .map(|lane| {
            let worker = Worker {
                db: state.db.clone(),
                tenants: state.tenants.clone(),
                state: state.clone(),
                limits,
                owner: crate::crypto::random_token("sync_", 8),
                lane,
                rate: rate.clone(),
                stop: stopped.clone(),
                queued: state.sync_queue.subscribe(),
                stage_halted: watch::channel(false).0,
                oldest: AtomicI64::new(i64::MAX),
                throttled: AtomicU64::new(0),
                paused: Arc::clone(&paused),
            };
            tokio::spawn(worker.run())
        })
        .collect();
    SyncWorker { stop, tasks }
}

fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

/// `d` from now; a setting too large for the calendar (sync_lease_secs, a retry) means "as late
/// as can be" instead of a panic.
fn after(d: Duration) -> NaiveDateTime {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| now().checked_add_signed(d))
        .unwrap_or(NaiveDateTime::MAX)
}

/// `d` before now, or the calendar's start for a setting too large (reconcile_interval_secs).
fn before(d: Duration) -> NaiveDateTime {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| now().checked_sub_signed(d))
        .unwrap_or(NaiveDateTime::MIN)
}

/// Why a job stopped before its end.
#[derive(Debug)]
enum Halt {
    /// Another worker runs it now, it was canceled, or this instance is stopping.
    Lost,
    /// Stripe or the database failed for a while: the job is given back and retried.
    Transient(String),
    /// It cannot succeed (no access to the account, a type Stripe refuses...).
    Failed(String),
    /// Stripe has no such object (404): fails the job, unless the caller expects it.
    Missing(String),
}

impl Halt {
    /// Which of two lists' errors is the job's (`list_stage`): one that fails the job before
    /// one that gives it back, before `Lost` (what the others stop with).
    fn gravity(&self) -> u8 {
        match self {
            Halt::Lost => 0,
            Halt::Transient(_) => 1,
            Halt::Failed(_) | Halt::Missing(_) => 2,
        }
    }
}

impl From<DbError> for Halt {
    fn from(err: DbError) -> Self {
        Halt::Transient(format!("database: {err}"))
    }
}

impl From<ApiError> for Halt {
    fn from(err: ApiError) -> Self {
        Halt::Transient(err.detail.clone())
    }
}

impl Worker {
    async fn run(mut self) {
        let mut reconciled: Option<std::time::Instant> = None;
        loop {
            if *self.stop.borrow() {
                return;
            }
            if let Some(every) = self.limits.reconcile_every
                && self.lane.is_none()
                && reconciled.is_none_or(|at| at.elapsed() >= every.min(Duration::from_secs(60)))
            {
                reconciled = Some(std::time::Instant::now());
                if let Err(err) = self.enqueue_due(every).await {
                    tracing::warn!(error = %err, "sync worker: queuing reconciliations failed");
                }
            }
            let (owner, until, lane) = (self.owner.clone(), after(self.limits.lease), self.lane);
            let leased = self
                .db
                .run(move |conn| {
                    rows::lease_next(conn, &owner, lane, now(), until).map_err(DbError::from)
                })
                .await;
            match leased {
                Ok(Some(job)) => {
                    self.run_job(job).await;
                    continue;
                }
                Ok(None) => {}
                Err(err) => tracing::warn!(error = %err, "sync worker: leasing a job failed"),
            }
            let poll = self.limits.poll;
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = self.stop.changed() => {}
                Ok(()) = self.queued.changed() => {}
            }
        }
    }

    /// Queues a reconciliation for each tenant not reconciled within `every` (checked every
    /// minute at most; on several instances the unique index keeps one job per tenant).
    async fn enqueue_due(&self, every: Duration) -> Result<(), DbError> {
        let before = before(every);
        let due = self
            .db
            .run(move |conn| rows::due_for_reconcile(conn, before, 1000).map_err(DbError::from))
            .await?;
        for (tenant, created) in due {
            let queued = self
                .db
                .run(move |conn| {
                    enqueue_reconcile(conn, &tenant, created, "reconcile_interval")
                        .map_err(|err| DbError::Join(err.detail.clone()))
                })
                .await;
            if let Err(err) = queued {
                tracing::warn!(error = %err, "sync worker: queuing a reconciliation failed");
            }
        }
        Ok(())
    }

    async fn run_job(&mut self, job: rows::SyncJob) {
        let id = job.id.clone();
        let tenant_id = job.tenant_id.clone();
        tracing::info!(sync.job = %id, tenant.id = %tenant_id, "sync job started");
        let outcome = if job.attempts >= MAX_ATTEMPTS {
            // Taken over once too often: whatever stops its workers (a kill for memory, say)
            // would stop the next one too.
            Err(Halt::Failed(format!(
                "stopped after {} attempts: {}",
                job.attempts,
                job.last_error.as_deref().unwrap_or(rows::TAKEN_OVER)
            )))
        } else if job.kind == RECONCILE {
            self.reconcile(&job).await
        } else {
            self.sync(&job).await
        };
        let owner = self.owner.clone();
        let (status, error, give_back) = match outcome {
            Ok(()) => {
                if let Err(err) = self.record_success(&job).await {
                    tracing::warn!(sync.job = %id, error = %err, "sync job: recording its result failed");
                }
                (rows::SUCCEEDED, None, false)
            }
            Err(Halt::Failed(why) | Halt::Missing(why)) => (rows::FAILED, Some(why), false),
            Err(Halt::Transient(why)) if job.attempts + 1 >= MAX_ATTEMPTS => {
                (rows::FAILED, Some(why), false)
            }
            Err(Halt::Transient(why)) => (rows::RUNNING, Some(why), true),
            Err(Halt::Lost) => {
                // Stopping: give the lease back so another instance resumes at once.
                if *self.stop.borrow() {
                    let (id, owner) = (id.clone(), owner.clone());
                    let _ = self
                        .db
                        .run(move |conn| {
                            rows::hand_back(conn, &id, &owner, now()).map_err(DbError::from)
                        })
                        .await;
                }
                tracing::info!(sync.job = %id, "sync job left to another worker");
                return;
            }
        };
        if !give_back {
            // Counted before its end is saved: whoever sees the job ended sees it counted.
            crate::metrics::sync_job(metric_kind(&job.kind), status);
        }
        let db_id = id.clone();
        let result = self
            .db
            .run(move |conn| {
                if give_back {
                    rows::release(
                        conn,
                        &db_id,
                        &owner,
                        error.as_deref().unwrap_or_default(),
                        after(RETRY_JOB_AFTER),
                        now(),
                    )
                } else {
                    rows::finish(conn, &db_id, &owner, status, error.as_deref(), now())
                }
                .map_err(DbError::from)
            })
            .await;
        if let Err(err) = result {
            tracing::warn!(sync.job = %id, error = %err, "sync job: saving its end failed");
        }
        tracing::info!(sync.job = %id, status, "sync job stopped");
    }

    /// What a finished job leaves for the tenant: a reconciliation moves its window on; a
    /// historical sync of every type fills an earlier gap.
    async fn record_success(&self, job: &rows::SyncJob) -> Result<(), DbError> {
        let tenant = job.tenant_id.clone();
        if job.kind == RECONCILE {
            let (through, note) = (job.created_lt.unwrap_or_default(), job.note.is_some());
            let gap = note.then_some(job.created_gte.unwrap_or_default());
            let id = job.id.clone();
            return self
                .db
                .run(move |conn| {
                    let progress: Progress = rows::find(conn, &tenant, &id)?
                        .and_then(|j| serde_json::from_str(&j.progress).ok())
                        .unwrap_or_default();
                    let recovered = progress.get(EVENTS).map_or(0, |p| p.written) as i64;
                    rows::record_reconciled(conn, &tenant, through, recovered, gap, now())
                        .map_err(DbError::from)
                })
                .await;
        }
        let all = serde_json::from_str::<Vec<String>>(&job.objects)
            .is_ok_and(|o| o.len() == kinds::KINDS.len());
        if all && job.created_gte.is_none() && job.created_lt.is_none() {
            self.db
                .run(move |conn| rows::clear_gap(conn, &tenant, now()).map_err(DbError::from))
                .await?;
        }
        Ok(())
    }

    /// Pages the tenant's events of the job's window and feeds each through the receiver:
    /// one already delivered is a duplicate (no change), a missed one is stored and applied
    /// under the ordering rule. The progress counts events read and recovered.
    async fn reconcile(&mut self, job: &rows::SyncJob) -> Result<(), Halt> {
        let tenant = self.tenant_afresh(job).await?;
        let tenant_id = job.tenant_id.clone();
        let notify = self
            .db
            .run(move |conn| {
                crate::db::tenants::notify_target(conn, &tenant_id).map_err(DbError::from)
            })
            .await?
            .is_some();
        let mut progress: Progress = serde_json::from_str(&job.progress).unwrap_or_default();
        loop {
            let entry = progress.entry(EVENTS.to_owned()).or_default().clone();
            if entry.done {
                return Ok(());
            }
            let mut query: Vec<(String, String)> = vec![("limit".into(), PAGE.to_string())];
            if let Some(gte) = job.created_gte {
                query.push(("created[gte]".into(), gte.to_string()));
            }
            if let Some(lt) = job.created_lt {
                query.push(("created[lt]".into(), lt.to_string()));
            }
            if let Some(cursor) = &entry.cursor {
                query.push(("starting_after".into(), cursor.clone()));
            }
            let page = self
                .call(job, tenant.stripe.as_ref(), "/events", &query, &Fields::All)
                .await?;
            let (events, has_more) = list_of(page, "/events")?;
            crate::metrics::sync_objects(EVENTS, events.len());
            let mut next = entry;
            // A page's events go to the receiver together: stored in one or a few group
            // commits instead of one commit each.
            let receiver = &self.state.receiver;
            let outcomes =
                futures_util::future::join_all(events.iter().map(|event| {
                    crate::receiver::recover(receiver, &job.tenant_id, notify, event)
                }))
                .await;
            for outcome in outcomes {
                match outcome {
                    Ok("duplicate") => {}
                    Ok(_) => next.written += 1,
                    // An event the receiver refuses (not an event, a NUL...) is skipped, as a
                    // delivery of it would be refused.
                    Err(err) if err.status.is_client_error() => {
                        tracing::warn!(sync.job = %job.id, error = %err, "reconcile: an event was refused");
                    }
                    Err(err) => return Err(err.into()),
                }
                next.read += 1;
            }
            if let Some(last) = events
                .last()
                .and_then(|e| e.get("id"))
                .and_then(Value::as_str)
            {
                next.cursor = Some(last.to_owned());
            }
            next.done = !has_more || events.is_empty();
            progress.insert(EVENTS.to_owned(), next);
            let (id, owner) = (job.id.clone(), self.owner.clone());
            let (text, until) = (
                serde_json::to_string(&progress).unwrap_or_default(),
                after(self.limits.lease),
            );
            let saved = self
                .db
                .run(move |conn| {
                    rows::save_progress(conn, &id, &owner, &text, now(), until)
                        .map_err(DbError::from)
                })
                .await?;
            if !saved || *self.stop.borrow() {
                return Err(Halt::Lost);
            }
        }
    }

    /// The job's tenant as the database holds it now, not as this instance cached it: the
    /// job may have been queued by a change of the tenant's Stripe access on another
    /// instance (connecting an account queues a sync), which only that instance's cache
    /// forgot.
    async fn tenant_afresh(&self, job: &rows::SyncJob) -> Result<Arc<TenantContext>, Halt> {
        self.tenants.forget(&job.tenant_id);
        self.tenants
            .by_id(&job.tenant_id)
            .await?
            .ok_or_else(|| Halt::Failed("the tenant no longer exists".into()))
    }

    async fn sync(&mut self, job: &rows::SyncJob) -> Result<(), Halt> {
        let tenant = self.tenant_afresh(job).await?;
        let objects: Vec<String> = serde_json::from_str(&job.objects)
            .map_err(|err| Halt::Failed(format!("unreadable objects: {err}")))?;
        let mut progress: Progress = serde_json::from_str(&job.progress).unwrap_or_default();
        self.oldest.store(i64::MAX, Ordering::Relaxed);
        let kinds = objects
            .iter()
            .map(|name| {
                kinds::kind(name).ok_or_else(|| Halt::Failed(format!("unknown object type {name}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // The first pages of the next list (by name), read while the last writes of the one
        // before end.
        let mut ahead: Option<(&str, Fetched)> = None;
        let at_once = self.lists_at_once();
        let done =
            |progress: &Progress, kind: &Kind| progress.get(kind.name).is_some_and(|p| p.done);
        let mut at = 0;
        while let Some(kind) = kinds.get(at).copied() {
            at += 1;
            if done(&progress, kind) {
                continue;
            }
            match kind.path {
                Some(path) => {
                    // This list and those of its stage (`Kind::stage`) after it still to
                    // read, up to `at_once`; the rest of them follow as the lists after it.
                    let mut stage = vec![(kind, path)];
                    while stage.len() < at_once {
                        match kinds.get(at).copied() {
                            Some(beside) if beside.stage == kind.stage => {
                                at += 1;
                                if let Some(path) = beside.path.filter(|_| !done(&progress, beside))
                                {
                                    stage.push((beside, path));
                                }
                            }
                            _ => break,
                        }
                    }
                    // On PostgreSQL a list may be read in parts at once (`list_stage`); a list
                    // read in parts is resumed so wherever.
                    let parted = stage.iter().any(|(kind, _)| {
                        progress.get(kind.name).is_some_and(|e| !e.parts.is_empty())
                    });
                    if stage.len() > 1 || self.db.is_postgres() || parted {
                        let first = ahead.take();
                        self.list_stage(job, tenant.stripe.as_ref(), &stage, &mut progress, first)
                            .await?;
                        continue;
                    }
                    // The next type with a list of its own still to read.
                    let next = kinds[at..]
                        .iter()
                        .find(|k| !done(&progress, k))
                        .and_then(|k| Some((*k, k.path?)));
                    // Pages read ahead for another list (never: `next` skips what this loop
                    // skips) are dropped, not written as this one's.
                    let first = ahead
                        .take()
                        .and_then(|(name, pages)| (name == kind.name).then_some(pages));
                    ahead = self
                        .list_kind(
                            job,
                            tenant.stripe.as_ref(),
                            (kind, path),
                            0,
                            &mut progress,
                            first,
                            next,
                            None,
                        )
                        .await?
                        .zip(next)
                        .map(|(pages, (next, _))| (next.name, pages));
                }
                None => loop {
                    let done = self
                        .payment_methods_page(job, tenant.stripe.as_ref(), &mut progress)
                        .await?;
                    self.renew(job).await?;
                    if done {
                        break;
                    }
                },
            }
        }
        Ok(())
    }

    /// How many lists a sync reads at once ([`Kind::stage`]): on PostgreSQL as many as the
    /// pool has connections for, three per list (two pages' writes in flight and the check
    /// beside each page read), two left for the ties, the webhook receiver and the requests
    /// the service answers meanwhile; at most three. On SQLite, whose one writer takes a
    /// write at a time, one.
    fn lists_at_once(&self) -> usize {
        if !self.db.is_postgres() {
            return 1;
        }
        let lists = self.db.max_connections().saturating_sub(2) / 3;
        usize::try_from(lists).unwrap_or(1).clamp(1, 3)
    }

    /// Lists read at once (`stage`, [`Kind::stage`]), each in one part or several: each part
    /// paged and written as [`Self::list_kind`] does a list, its progress saved beside the
    /// others' ([`save_part`]); as many parts at once as [`Self::lists_at_once`], a list that
    /// has more to read cutting what it has left into more parts while there is room and
    /// Stripe is slow ([`Stage::cut`]); `first`: pages read ahead for one of them. A part
    /// that halts stops the others before their next call at Stripe or wait for it (the
    /// writes they have in flight end first); the stage's error is the gravest of theirs (one
    /// that fails the job before one that gives it back, before the others' `Lost`).
    async fn list_stage(
        &self,
        job: &rows::SyncJob,
        stripe: &dyn StripeApi,
        stage: &[(&Kind, &str)],
        progress: &mut Progress,
        first: Option<(&str, Fetched)>,
    ) -> Result<(), Halt> {
        let mut first = first;
        self.stage_halted.send_replace(false);
        let (started, mut new_parts) = tokio::sync::mpsc::unbounded_channel();
        let names = stage.iter().map(|(kind, _)| kind.name);
        let room = Stage::new(self.lists_at_once(), cut_before(progress, names), started);
        // Each list's parts still to read (resumed as they were cut), in stage order.
        let mut waiting: VecDeque<(usize, usize)> = stage
            .iter()
            .enumerate()
            .flat_map(|(list, (kind, _))| {
                let open = progress
                    .get(kind.name)
                    .map_or(vec![0], TypeProgress::open_parts);
                open.into_iter().map(move |part| (list, part))
            })
            .collect();
        let room = &room;
        let run = |list: usize, part: usize, mut own: Progress, pages: Option<Fetched>| {
            let (kind, path) = stage[list];
            async move {
                let result = self
                    .list_kind(
                        job,
                        stripe,
                        (kind, path),
                        part,
                        &mut own,
                        pages,
                        None,
                        Some((room, list)),
                    )
                    .await;
                if result.is_err() {
                    self.stage_halted.send_replace(true);
                }
                (kind.name, own.remove(kind.name), result)
            }
        };
        let mut reading = FuturesUnordered::new();
        let mut halt: Option<Halt> = None;
        loop {
            while halt.is_none() && room.reading.load(Ordering::Relaxed) < room.slots {
                let Some((list, part)) = waiting.pop_front() else {
                    break;
                };
                room.reading.fetch_add(1, Ordering::Relaxed);
                let pages = first
                    .take_if(|(name, _)| part == 0 && *name == stage[list].0.name)
                    .map(|(_, pages)| pages);
                reading.push(run(list, part, progress.clone(), pages));
            }
            if reading.is_empty() {
                // Every part started has ended: one it cut may still be on its way.
                match new_parts.try_recv() {
                    Ok((list, part, own)) => {
                        if halt.is_none() {
                            reading.push(run(list, part, own, None));
                        }
                    }
                    Err(_) if waiting.is_empty() || halt.is_some() => break,
                    // Nothing is read and nothing is on its way: no room is taken.
                    Err(_) => room.reading.store(0, Ordering::Relaxed),
                }
                continue;
            }
            tokio::select! {
                Some((name, entry, result)) = reading.next() => {
                    room.reading.fetch_sub(1, Ordering::Relaxed);
                    // The newest of what the parts of a list saved (each saves all of them).
                    if let Some(entry) = entry {
                        let stored = progress.entry(name.to_owned()).or_default();
                        if (entry.read + entry.written, entry.done)
                            >= (stored.read + stored.written, stored.done)
                        {
                            *stored = entry;
                        }
                    }
                    if let Err(err) = result
                        && halt
                            .as_ref()
                            .is_none_or(|halt| err.gravity() > halt.gravity())
                    {
                        halt = Some(err);
                    }
                }
                // Its room was taken when the part before it cut it.
                Some((list, part, own)) = new_parts.recv() => {
                    if halt.is_none() {
                        reading.push(run(list, part, own, None));
                    } else {
                        room.reading.fetch_sub(1, Ordering::Relaxed);
                    }
                }
            }
        }
        self.stage_halted.send_replace(false);
        halt.map_or(Ok(()), Err)
    }

    /// Waits for the tenant's turn (its request rate), then for Stripe's answer; retries 429
    /// and Stripe's failures with back-off. The job's lease is kept meanwhile
    /// ([`Self::holding_lease`]): with its retries, one call can outlast the lease.
    async fn call(
        &self,
        job: &rows::SyncJob,
        stripe: &dyn StripeApi,
        path: &str,
        query: &[(String, String)],
        keep: &'static Fields,
    ) -> Result<Value, Halt> {
        self.holding_lease(
            job,
            self.retrying(&job.tenant_id, path, || stripe.list_json(path, query, keep)),
        )
        .await?
    }

    /// Runs `work`, renewing the job's lease each third of it that `work` takes: a wait on
    /// Stripe (slow answers, 429s and their back-off) longer than the lease would otherwise
    /// let another instance take the job over and read the same pages again. A lease that
    /// is lost meanwhile stops `work`.
    async fn holding_lease<T>(
        &self,
        job: &rows::SyncJob,
        work: impl Future<Output = T>,
    ) -> Result<T, Halt> {
        let every = self.limits.lease / 3;
        let mut work = std::pin::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => return Ok(done),
                () = tokio::time::sleep(every) => match self.renew(job).await {
                    Ok(()) => {}
                    Err(Halt::Lost) => return Err(Halt::Lost),
                    // A renewal the database failed: the lease has two thirds left, and the
                    // next renewal or the page's write tries again.
                    Err(err) => {
                        tracing::warn!(sync.job = %job.id, error = ?err, "sync: renewing a lease failed");
                    }
                },
            }
        }
    }

    /// One Stripe call (`request`, to `path`) in the tenant's turn, retried as [`Self::call`]
    /// says (a 404 is [`Halt::Missing`]).
    async fn retrying<F>(
        &self,
        tenant_id: &str,
        path: &str,
        request: impl Fn() -> F,
    ) -> Result<Value, Halt>
    where
        F: Future<Output = Result<Value, GatewayError>>,
    {
        let mut delay = Duration::from_secs(1);
        let mut last = String::new();
        for _ in 0..=CALL_RETRIES {
            let mut wait = delay;
            self.turn(tenant_id).await?;
            match request().await {
                Ok(page) => return Ok(page),
                Err(GatewayError::NotConnected) => {
                    return Err(Halt::Failed(
                        "the tenant's Stripe account is not connected".into(),
                    ));
                }
                Err(GatewayError::Stripe(f)) if f.http_status == 429 || f.http_status >= 500 => {
                    last = format!("Stripe answered {} to {path}: {}", f.http_status, f.message);
                    if f.http_status == 429 {
                        // As long as Stripe asks (within reason: a proxy's hour is not
                        // kept), never less than the back-off; every call of the tenant
                        // on this instance waits too (`turn`).
                        let asked = f.retry_after.unwrap_or_default().min(LONGEST_RETRY_AFTER);
                        wait = delay.max(asked);
                        self.pause_tenant(tenant_id, wait);
                    }
                }
                Err(GatewayError::Stripe(f)) => {
                    let why = format!("Stripe refused {path} ({}): {}", f.http_status, f.message);
                    return Err(if f.http_status == 404 {
                        Halt::Missing(why)
                    } else {
                        Halt::Failed(why)
                    });
                }
                Err(err @ (GatewayError::Timeout | GatewayError::Unreachable(_))) => {
                    last = format!("{path}: {err}");
                }
                Err(err) => return Err(Halt::Failed(format!("{path}: {err}"))),
            }
            self.sleep(wait).await?;
            delay = (delay * 2).min(Duration::from_secs(30));
        }
        Err(Halt::Transient(last))
    }

    /// Sleeps unless this instance is stopping or a list read beside this one halted (every
    /// sleep is a wait for the tenant's turn or a back-off: counted in `throttled`).
    async fn sleep(&self, wait: Duration) -> Result<(), Halt> {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        let mut stop = self.stop.clone();
        let mut halted = self.stage_halted.subscribe();
        if *stop.borrow_and_update() || *halted.borrow_and_update() {
            return Err(Halt::Lost);
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => Ok(()),
            _ = stop.changed() => Err(Halt::Lost),
            _ = halted.wait_for(|halted| *halted) => Err(Halt::Lost),
        }
    }

    /// Holds every call of the tenant back for `wait` from now (a later pause is kept); the
    /// pauses that are over are forgotten.
    fn pause_tenant(&self, tenant_id: &str, wait: Duration) {
        let now = tokio::time::Instant::now();
        let until = now + wait;
        let mut paused = self.paused();
        paused.retain(|_, until| *until > now);
        let entry = paused.entry(tenant_id.to_owned()).or_insert(until);
        *entry = (*entry).max(until);
    }

    fn paused(&self) -> std::sync::MutexGuard<'_, HashMap<String, tokio::time::Instant>> {
        self.paused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn turn(&self, tenant_id: &str) -> Result<(), Halt> {
        loop {
            if *self.stop.borrow() || *self.stage_halted.borrow() {
                return Err(Halt::Lost);
            }
            let paused = self.paused().get(tenant_id).copied();
            if let Some(until) = paused
                && until > tokio::time::Instant::now()
            {
                self.sleep(until - tokio::time::Instant::now()).await?;
                continue;
            }
            match self.rate.check_key(&tenant_id.to_owned()) {
                Ok(()) => return Ok(()),
                Err(not_until) => {
                    let wait = not_until.wait_time_from(self.rate.clock().now());
                    self.sleep(wait).await?;
                }
            }
        }
    }

    /// Whether the job is still this worker's to run (not canceled, its lease not lost, the
    /// instance not stopping), read without waiting for the job's row: beside each page,
    /// where a renewal would wait for the write in flight to commit.
    async fn still_held(&self, job: &rows::SyncJob) -> bool {
        if *self.stop.borrow() {
            return false;
        }
        let (id, owner) = (job.id.clone(), self.owner.clone());
        // A read that fails tells nothing: the job goes on, and the write's own check in
        // its transaction decides (a failing database fails the write, a transient error
        // that gives the job back; taken for a lost lease, the job would be left to lapse
        // and counted as an attempt when taken over).
        self.db
            .run(move |conn| rows::still_held(conn, &id, &owner).map_err(DbError::from))
            .await
            .unwrap_or(true)
    }

    async fn renew(&self, job: &rows::SyncJob) -> Result<(), Halt> {
        if *self.stop.borrow() {
            return Err(Halt::Lost);
        }
        let (id, owner, until) = (job.id.clone(), self.owner.clone(), after(self.limits.lease));
        let held = self
            .db
            .run(move |conn| rows::renew(conn, &id, &owner, now(), until).map_err(DbError::from))
            .await?;
        if held { Ok(()) } else { Err(Halt::Lost) }
    }

    /// The next pages of a list after `cursor` (up to [`PAGES_PER_WRITE`] while they come
    /// within [`GATHER_PAGES_FOR`], written as one),
    /// their nested lists completed and their objects read into what they change in the
    /// mirror.
    async fn fetch_page(
        &self,
        job: &rows::SyncJob,
        stripe: &dyn StripeApi,
        kind: &Kind,
        path: &str,
        (gte, lt): Bounds,
        cursor: Option<String>,
    ) -> Result<Fetched, Halt> {
        let mut query: Vec<(String, String)> = vec![("limit".into(), PAGE.to_string())];
        query.extend(
            kind.fixed
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        if let Some(gte) = gte {
            query.push(("created[gte]".into(), gte.to_string()));
        }
        if let Some(lt) = lt {
            query.push(("created[lt]".into(), lt.to_string()));
        }
        let mut fetched = Fetched {
            held: true,
            ..Fetched::default()
        };
        let mut cursor = cursor;
        let started = std::time::Instant::now();
        let throttled = self.throttled.load(Ordering::Relaxed);
        // SQLite's one writer would be held the longer for nothing: its writes cost little
        // per statement.
        let most = if self.db.is_postgres() {
            PAGES_PER_WRITE
        } else {
            1
        };
        for n in 0..most {
            let mut query = query.clone();
            let asked = cursor.take();
            if let Some(cursor) = &asked {
                query.push(("starting_after".into(), cursor.clone()));
            }
            // Whether the job is still this worker's is read beside each page: a canceled
            // job, or one whose lease is lost, reads no further page, and the pages gathered
            // are not written (`Fetched::held`). A read, as a renewal would wait for the
            // write in flight; the lease is kept by each write's commit.
            let (held, page) = tokio::join!(
                self.still_held(job),
                self.read_page(job, stripe, kind, path, &query)
            );
            // A list read beside it that halted stops this one too (`list_stage`).
            fetched.held = held && !*self.stage_halted.borrow();
            let page = page.and_then(|page| {
                moved_on(path, asked.as_deref(), page.last.as_deref(), page.has_more)?;
                Ok(page)
            });
            let page = match page {
                Ok(page) => page,
                // The pages gathered are written; the error comes back on the next read,
                // from the cursor they save.
                Err(_) if n > 0 => break,
                Err(halt) => return Err(halt),
            };
            let empty = page.objects.is_empty();
            if let Some(oldest) = page.oldest {
                self.oldest.fetch_min(oldest, Ordering::Relaxed);
            }
            fetched.add(kind.family, page);
            cursor = fetched.last.clone();
            if !fetched.held || !fetched.has_more || empty || fetched.rows >= ROWS_PER_WRITE {
                break;
            }
            if started.elapsed() >= GATHER_PAGES_FOR {
                // Fewer pages than a write takes came in the time: Stripe is slow, unless a
                // call waited for the tenant's rate or a back-off meanwhile.
                fetched.waited = self.throttled.load(Ordering::Relaxed) == throttled;
                break;
            }
        }
        Ok(fetched)
    }

    /// One page of a list (`query` with its cursor), its nested lists completed.
    async fn read_page(
        &self,
        job: &rows::SyncJob,
        stripe: &dyn StripeApi,
        kind: &Kind,
        path: &str,
        query: &[(String, String)],
    ) -> Result<Page, Halt> {
        // Stripe's answer is at least as new as the second it was requested.
        let requested_at = Utc::now().timestamp();
        let keep = listed::fields(kind.family);
        let page = self.call(job, stripe, path, query, keep).await?;
        let (mut objects, has_more) = list_of(page, path)?;
        let mut rows = objects.len();
        if let Some(nested) = kind.nested {
            for object in &mut objects {
                rows += self.complete(job, stripe, nested, keep, object).await?;
            }
        }
        let created = |o: &Value| o.get("created").and_then(Value::as_i64);
        let oldest = objects.iter().filter_map(created).min();
        let last = match objects.last() {
            None => None,
            Some(last) => Some(
                last.get("id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        Halt::Failed(format!(
                            "Stripe's answer to {path} lists an object without an id"
                        ))
                    })?,
            ),
        };
        Ok(Page {
            requested_at,
            objects,
            rows,
            last,
            oldest,
            has_more,
        })
    }

    /// Every page of a list from the saved cursor (its first pages `first`, when read while
    /// the list before was written), each written with the progress. The next
    /// page is read while one is written (two pages in memory at most): the time is about
    /// the slower of Stripe and the database, not their sum. While its last pages are
    /// written, the first pages of the `next` list are read, and returned: they are written
    /// after these (parents first). On PostgreSQL, a list whose
    /// pages write only their own objects ([`Kind::pipelined`]) keeps two pages' writes in
    /// flight on two connections: each writes its objects at once, then waits for the page
    /// before it to commit (its ties settled) before it saves the progress and commits, so
    /// the saved cursor never passes a page that is not written.
    ///
    /// `part`: which `created` range of the list this reads ([`TypeProgress::parts`]; `0`
    /// for a list read whole). Read as one of a `stage`'s, a part that has more to read while
    /// the stage has room and Stripe is slow ([`Fetched::waited`]) cuts what it has left into
    /// more parts ([`Stage::cut`]), saved with its next page's write and read at once from
    /// then on.
    #[allow(clippy::too_many_arguments)]
    async fn list_kind(
        &self,
        job: &rows::SyncJob,
        stripe: &dyn StripeApi,
        (kind, path): (&Kind, &str),
        part: usize,
        progress: &mut Progress,
        first: Option<Fetched>,
        next: Option<(&Kind, &str)>,
        stage: Option<(&Stage, usize)>,
    ) -> Result<Option<Fetched>, Halt> {
        let entry = progress.entry(kind.name.to_owned()).or_default().part(part);
        if entry.done {
            return Ok(None);
        }
        let mut bounds = (
            entry.created_gte.or(job.created_gte),
            entry.created_lt.or(job.created_lt),
        );
        // SQLite has one writer: a second page's transaction would wait for it forever. Two
        // pages in flight hold two connections; two are left for the lease, the ties and the
        // requests the service answers meanwhile.
        let pipelined = kind.pipelined && self.db.is_postgres() && self.db.max_connections() >= 4;
        let mut fetched = match first {
            Some(first) => first,
            None => {
                self.fetch_page(job, stripe, kind, path, bounds, entry.cursor)
                    .await?
            }
        };
        // The write still running from the turn before, and where its committed progress
        // will arrive (pipelined lists only).
        let mut running: Option<MaybeDone<Write<'_>>> = None;
        let mut before: Option<mpsc::Receiver<Progress>> = None;
        loop {
            let Fetched {
                targets,
                read,
                last,
                oldest,
                waited,
                has_more,
                held,
                ..
            } = fetched;
            if !held {
                // Canceled, taken over, or stopping: the write in flight goes to its end
                // (its ties settled), the pages just read are left to whoever resumes.
                if let Some(Ok(written)) = finish(running.take()).await {
                    *progress = written;
                }
                return Err(Halt::Lost);
            }
            crate::metrics::sync_objects(kind.name, read);
            let done = !has_more || read == 0;
            // What is left below the last object read, cut for the room the stage has: this
            // part reads on from the top cut, the new parts (started once this page has
            // committed) the ranges below it. Only while Stripe is what the part waits for:
            // with pages coming fast a sync is bound by the CPU, and more parts at once
            // gained nothing but memory (docs/BENCHMARKS.md, issue 17).
            let split = match (stage, oldest) {
                (Some((stage, _)), Some(at)) if !done && waited => {
                    let now = chrono::Utc::now().timestamp();
                    stage.cut(bounds, at, self.oldest.load(Ordering::Relaxed), now)
                }
                _ => Vec::new(),
            };
            if let Some(&top) = split.first() {
                bounds.0 = Some(top);
            }
            let step = Step {
                read,
                last: last.clone(),
                done,
                split,
            };
            let base = match before.take() {
                Some(before) => Base::After(before),
                None => Base::Known(progress.clone()),
            };
            let announce = if pipelined && !done {
                let (announce, next) = mpsc::sync_channel(1);
                before = Some(next);
                Some(announce)
            } else {
                None
            };
            let write: Write<'_> = Box::pin(self.write(
                job,
                stripe,
                (kind.name, part),
                targets,
                step,
                base,
                announce,
                stage,
            ));
            let mut current = maybe_done(write);
            let earlier = running.take();
            if done {
                // The next list is read whole (`next` is only given when it is).
                let from = next.and_then(|(next, _)| progress.get(next.name).map(|e| e.part(0)));
                let read_ahead = async {
                    match (next, from.unwrap_or_default()) {
                        (Some((next, path)), from) => {
                            let bounds = (
                                from.created_gte.or(job.created_gte),
                                from.created_lt.or(job.created_lt),
                            );
                            Some(
                                self.fetch_page(job, stripe, next, path, bounds, from.cursor)
                                    .await,
                            )
                        }
                        (None, _) => None,
                    }
                };
                let mut read_ahead = std::pin::pin!(maybe_done(read_ahead));
                // The writes to their end, the read-ahead meanwhile; a write that fails
                // drops it at once (no further request at Stripe for a job that halts).
                let writes = async { tokio::join!(finish(earlier), finish(Some(current))) };
                let mut writes = std::pin::pin!(writes);
                let (earlier, current) = std::future::poll_fn(|cx| {
                    let _ = read_ahead.as_mut().poll(cx);
                    writes.as_mut().poll(cx)
                })
                .await;
                if let Some(earlier) = earlier {
                    earlier?;
                }
                if let Some(current) = current {
                    *progress = current?;
                }
                self.renew(job).await?;
                (&mut read_ahead).await;
                return read_ahead.take_output().flatten().transpose();
            }
            // The earlier write and the next page to their end, the current write meanwhile.
            let rest = async {
                tokio::join!(
                    finish(earlier),
                    self.fetch_page(job, stripe, kind, path, bounds, last)
                )
            };
            let mut rest = std::pin::pin!(rest);
            let (earlier, next) = std::future::poll_fn(|cx| {
                // A write that is done stays done: polled again, it answers at once.
                let _ = Pin::new(&mut current).poll(cx);
                rest.as_mut().poll(cx)
            })
            .await;
            if let Some(earlier) = earlier {
                // Failed: the current write, told by its channel, rolls back.
                *progress = earlier?;
            }
            if pipelined {
                fetched = match next {
                    Ok(next) => next,
                    Err(halt) => return Err(self.wind_down(current, progress, halt).await),
                };
                running = Some(current);
            } else {
                if let Some(current) = finish(Some(current)).await {
                    *progress = current?;
                }
                fetched = next?;
            }
        }
    }

    /// The payment methods of the next customers of the mirror (in id order), each listed in
    /// full. `Ok(true)` when every customer is done.
    async fn payment_methods_page(
        &self,
        job: &rows::SyncJob,
        stripe: &dyn StripeApi,
        progress: &mut Progress,
    ) -> Result<bool, Halt> {
        const CUSTOMERS_PER_STEP: i64 = 20;
        let name = "payment_methods";
        let entry = progress.entry(name.to_owned()).or_default().clone();
        let (tenant, cursor) = (job.tenant_id.clone(), entry.cursor.clone());
        let customers = self
            .db
            .run(move |conn| {
                rows::customer_ids_after(conn, &tenant, cursor.as_deref(), CUSTOMERS_PER_STEP)
                    .map_err(DbError::from)
            })
            .await?;
        let requested_at = Utc::now().timestamp();
        let mut objects = Vec::new();
        let keep = listed::fields("payment_method");
        // A few customers' lists at once, in the tenant's turns; kept in customer order.
        let paths: Vec<String> = customers
            .iter()
            .map(|customer| format!("/customers/{customer}/payment_methods"))
            .collect();
        let mut lists = futures_util::stream::iter(paths)
            .map(|path| async move { self.read_all(job, stripe, &path, &[], keep).await })
            .buffered(PAYMENT_METHOD_LISTS_AT_ONCE);
        while let Some(read) = lists.next().await {
            match read {
                Ok(items) => objects.extend(items),
                // A mirrored customer Stripe does not have (deleted there while its
                // deletion did not reach the mirror, or one of the account the tenant
                // had before connecting this one): no payment methods to read.
                Err(Halt::Missing(why)) => {
                    tracing::warn!(sync.job = %job.id, "sync: {why}; its payment methods are skipped");
                }
                Err(halt) => return Err(halt),
            }
        }
        crate::metrics::sync_objects(name, objects.len());
        let targets = listed_targets("payment_method", &objects, requested_at);
        let step = Step {
            read: objects.len(),
            last: customers.last().cloned(),
            done: (customers.len() as i64) < CUSTOMERS_PER_STEP,
            split: Vec::new(),
        };
        drop(objects);
        *progress = self
            .write(
                job,
                stripe,
                (name, 0),
                targets,
                step,
                Base::Known(progress.clone()),
                None,
                None,
            )
            .await?;
        Ok(progress.get(name).is_some_and(|p| p.done))
    }

    /// A pipelined list stopping early (its lease lost, the instance stopping, Stripe
    /// failing): the write still in flight may already hold the progress of the page before
    /// and commit, so it is driven to its end (its ties settled, or its rollback) before the
    /// job stops. The job's error stays `halt`.
    async fn wind_down(
        &self,
        current: MaybeDone<Write<'_>>,
        progress: &mut Progress,
        halt: Halt,
    ) -> Halt {
        if let Some(Ok(written)) = finish(Some(current)).await {
            *progress = written;
        }
        halt
    }

    /// Writes a page and the job's progress in one transaction (rolled back if the job is no
    /// longer this worker's), then settles the page's ties; then hands the progress to the
    /// next page's write, if one waits for it (`announce`). The parts the page cut its own
    /// into ([`Step::split`]) are handed to the `stage` once it has committed.
    #[allow(clippy::too_many_arguments)]
    async fn write(
        &self,
        job: &rows::SyncJob,
        stripe: &dyn StripeApi,
        (name, part): (&str, usize),
        targets: ListedTargets,
        step: Step,
        base: Base,
        announce: Option<mpsc::SyncSender<Progress>>,
        stage: Option<(&Stage, usize)>,
    ) -> Result<Progress, Halt> {
        let (targets, step) = (Arc::new(targets), Arc::new(step));
        let mut base = base;
        let (page, saved, added) = loop {
            let (tenant, id, owner) = (job.tenant_id.clone(), job.id.clone(), self.owner.clone());
            let (key, targets, step) = (name.to_owned(), targets.clone(), step.clone());
            let lease = self.limits.lease;
            let page = self
                .db
                .run(move |conn| {
                    Ok::<_, DbError>(write_page(
                        conn,
                        &PageWrite {
                            tenant: &tenant,
                            job: &id,
                            owner: &owner,
                            name: &key,
                            part,
                            targets: &targets,
                            step: &step,
                            lease,
                        },
                        base,
                    ))
                })
                .await?;
            match page {
                Ok(saved) => break saved,
                Err(PageFailure::Waited(Some(before))) => {
                    // The page before is slow (its ties, a slow database): wait for it with
                    // no transaction and no connection held, then write this page again.
                    let progress = tokio::task::spawn_blocking(move || before.recv())
                        .await
                        .map_err(|err| Halt::Transient(format!("waiting for a page: {err}")))?;
                    // Gone without a word: the page before failed, and its error is the job's.
                    base = Base::Known(progress.map_err(|_| Halt::Lost)?);
                }
                Err(PageFailure::Db(err)) => return Err(DbError::from(err).into()),
                // The page before failed: its error is the job's; this page was rolled back.
                Err(PageFailure::Lost | PageFailure::Before | PageFailure::Waited(None)) => {
                    return Err(Halt::Lost);
                }
            }
        };
        let mut progress = saved;
        if let Some((stage, list)) = stage {
            for &at in &added {
                stage.start(list, at, &progress);
            }
        }
        if page.ties() > 0 {
            let settled = settle_ties(&self.db, stripe, &job.tenant_id, page).await?;
            let mut entry = progress.get(name).map(|e| e.part(part)).unwrap_or_default();
            entry.written += settled as u64;
            let (id, owner, key) = (job.id.clone(), self.owner.clone(), name.to_owned());
            let until = after(self.limits.lease);
            let saved = self
                .db
                .run(move |conn| {
                    db::write_transaction(conn, |conn| {
                        save_part(conn, (&id, &owner), (&key, part, entry, &[]), until)
                    })
                    .map_err(DbError::from)
                })
                .await?;
            // Not this worker's any more: the next page's write finds it so.
            if let Some((saved, _)) = saved {
                progress = saved;
            }
        }
        if let Some(announce) = announce {
            // The next page's write may have given up (its job halted): nobody to tell.
            // Never waits: the channel holds one message and this is the only one sent.
            let _ = announce.try_send(progress.clone());
        }
        Ok(progress)
    }

    /// Whether Stripe answers 404 for the object at `path` (in the tenant's turns, a 429, a
    /// 5xx or a timeout retried as a page's are, the lease kept meanwhile): `false` when it
    /// answers it, or refuses it otherwise.
    async fn gone(
        &self,
        job: &rows::SyncJob,
        stripe: &dyn StripeApi,
        path: &str,
    ) -> Result<bool, Halt> {
        let read = self.retrying(&job.tenant_id, path, || stripe.retrieve_json(path));
        match self.holding_lease(job, read).await? {
            Ok(_) => Ok(false),
            Err(Halt::Missing(_)) => Ok(true),
            Err(Halt::Failed(_)) => Ok(false),
            Err(halt) => Err(halt),
        }
    }

    /// Completes a parent's embedded list that Stripe cut at 10 entries, each entry kept as
    /// the parent's `keep` keeps those it embeds. Returns how many entries the list has.
    async fn complete(
        &self,
        job: &rows::SyncJob,
        stripe: &dyn StripeApi,
        nested: Nested,
        keep: &'static Fields,
        object: &mut Value,
    ) -> Result<usize, Halt> {
        let (field, path, query) = match nested {
            Nested::SubscriptionItems => {
                let id = object["id"].as_str().unwrap_or_default().to_owned();
                (
                    "items",
                    "/subscription_items".to_owned(),
                    vec![("subscription".to_owned(), id)],
                )
            }
            Nested::InvoiceLines => {
                let id = object["id"].as_str().unwrap_or_default().to_owned();
                ("lines", format!("/invoices/{id}/lines"), Vec::new())
            }
        };
        let embedded = object[field]["data"].as_array().map_or(0, Vec::len);
        if object[field]["has_more"].as_bool() != Some(true) {
            return Ok(embedded);
        }
        let keep = keep.get(field).get("data");
        let all = match self.read_all(job, stripe, &path, &query, keep).await {
            Ok(all) => all,
            // Its lines are gone: if the invoice is too (a draft deleted for good since its
            // page was read), it is written as deleted, as its `invoice.deleted` event has
            // it, and the list goes on. An invoice Stripe still has fails the job as before:
            // the 404 of its lines is not a deletion.
            Err(Halt::Missing(why)) if nested == Nested::InvoiceLines => {
                let id = object["id"].as_str().unwrap_or_default().to_owned();
                if !self.gone(job, stripe, &format!("/invoices/{id}")).await? {
                    return Err(Halt::Missing(why));
                }
                tracing::warn!(sync.job = %job.id, "sync: {why}; the invoice is gone, written as deleted");
                object["deleted"] = Value::Bool(true);
                return Ok(embedded);
            }
            Err(halt) => return Err(halt),
        };
        let entries = all.len();
        object[field]["data"] = Value::Array(all);
        object[field]["has_more"] = Value::Bool(false);
        Ok(entries)
    }

    /// Every entry of a list nested under one object (`query` beside the paging), page
    /// after page, each kept as `keep` says.
    async fn read_all(
        &self,
        job: &rows::SyncJob,
        stripe: &dyn StripeApi,
        path: &str,
        query: &[(String, String)],
        keep: &'static Fields,
    ) -> Result<Vec<Value>, Halt> {
        let mut all: Vec<Value> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut q = query.to_vec();
            q.push(("limit".into(), PAGE.to_string()));
            if let Some(after) = &after {
                q.push(("starting_after".into(), after.clone()));
            }
            let page = self.call(job, stripe, path, &q, keep).await?;
            let (items, has_more) = list_of(page, path)?;
            let last = items
                .last()
                .and_then(|o| o.get("id"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            moved_on(path, after.as_deref(), last.as_deref(), has_more)?;
            after = last;
            all.extend(items);
            if !has_more || after.is_none() {
                return Ok(all);
            }
        }
    }
}

/// A page of `path` asked for after `cursor` that has more to follow must end past it: one
/// that ends on the cursor again (a stand-in answering its first page whatever the cursor)
/// would be asked for again forever, holding the worker. The job fails, with Stripe's list
/// named.
fn moved_on(
    path: &str,
    cursor: Option<&str>,
    last: Option<&str>,
    has_more: bool,
) -> Result<(), Halt> {
    match cursor {
        Some(cursor) if has_more && last == Some(cursor) => Err(Halt::Failed(format!(
            "Stripe's list {path} answered the page after {cursor} with {cursor} last again: \
             it does not move on"
        ))),
        _ => Ok(()),
    }
}

/// A write of one page, still running, whose result can be kept once it is done.
type Write<'a> = Pin<Box<dyn Future<Output = Result<Progress, Halt>> + Send + 'a>>;

/// Drives a write to its end, if there is one, and takes its result.
async fn finish(write: Option<MaybeDone<Write<'_>>>) -> Option<Result<Progress, Halt>> {
    let mut write = write?;
    (&mut write).await;
    Pin::new(&mut write).take_output()
}

/// What a page adds to its part's progress: objects read, the cursor after it, whether the
/// part is done, and where what the part has left is cut into new parts (newest first; none:
/// not cut, [`TypeProgress::split`]).
struct Step {
    read: usize,
    last: Option<String>,
    done: bool,
    split: Vec<i64>,
}

/// The progress a page's write adds its step to: known when it starts, or the one the page
/// before it will have saved, sent once that page has committed and settled its ties.
enum Base {
    Known(Progress),
    After(mpsc::Receiver<Progress>),
}

/// How long a page that has written its objects waits, its rows locked, for the page before
/// it to commit (a page's write takes milliseconds; its ties, Stripe round trips) before it
/// rolls back and waits holding nothing. Two pages of a pipelined list write different rows,
/// so the page before never waits for this one; but a third writer can (a delivery holding
/// a row of the page before while it waits for one of this page's): the cycle then ends
/// here, well before the receiver's 10 s lock timeout and the pool's 5 s checkout.
const WAIT_FOR_PAGE_BEFORE: Duration = Duration::from_secs(2);

/// Why a page's write did not commit.
enum PageFailure {
    Db(diesel::result::Error),
    /// The job is no longer this worker's (or was canceled): rolled back.
    Lost,
    /// The page before failed: rolled back, as its cursor would pass unwritten objects.
    Before,
    /// The page before did not commit within [`WAIT_FOR_PAGE_BEFORE`]: rolled back, to be
    /// written again once it has; the wait for it is handed back.
    Waited(Option<mpsc::Receiver<Progress>>),
}

impl From<diesel::result::Error> for PageFailure {
    fn from(err: diesel::result::Error) -> Self {
        PageFailure::Db(err)
    }
}

/// One page's write: whose, where, what.
struct PageWrite<'a> {
    tenant: &'a str,
    job: &'a str,
    owner: &'a str,
    name: &'a str,
    /// The part of the list ([`TypeProgress::parts`]).
    part: usize,
    targets: &'a ListedTargets,
    step: &'a Step,
    /// How long the job's lease is kept from the commit.
    lease: Duration,
}

/// Writes a page's objects, then (once the page before has committed, for `Base::After`) its
/// progress, in one transaction. A wait for the page before that outlasts
/// [`WAIT_FOR_PAGE_BEFORE`] rolls back and hands the wait back to the caller
/// ([`PageFailure::Waited`]).
fn write_page(
    conn: &mut db::AnyConnection,
    page: &PageWrite<'_>,
    base: Base,
) -> Result<(crate::receiver::listed::ListedPage, Progress, Vec<usize>), PageFailure> {
    use diesel::connection::SimpleConnection;
    let attempt = db::write_transaction(conn, |conn| {
        if let Base::After(_) = &base {
            // The wait below is not the client going idle. (The progress row it then updates
            // is read as committed by the page before: the pool's sessions are READ
            // COMMITTED, `db::pool::set_session`.)
            conn.batch_execute("SET LOCAL idle_in_transaction_session_timeout = 0")?;
        }
        let written = record_listed(conn, page.tenant, page.targets)?;
        let staged = match &base {
            Base::Known(progress) => progress.clone(),
            Base::After(before) => match before.recv_timeout(WAIT_FOR_PAGE_BEFORE) {
                Ok(progress) => progress,
                Err(mpsc::RecvTimeoutError::Timeout) => return Err(PageFailure::Waited(None)),
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(PageFailure::Before),
            },
        };
        let mut part = staged
            .get(page.name)
            .map(|e| e.part(page.part))
            .unwrap_or_default();
        part.read += page.step.read as u64;
        part.written += written.written as u64;
        if let Some(last) = &page.step.last {
            part.cursor = Some(last.clone());
        }
        part.done = page.step.done;
        let entry = (page.name, page.part, part, &page.step.split[..]);
        match save_part(conn, (page.job, page.owner), entry, after(page.lease))? {
            Some((saved, added)) => Ok((written, saved, added)),
            None => Err(PageFailure::Lost),
        }
    });
    match (attempt, base) {
        (Err(PageFailure::Waited(_)), Base::After(before)) => {
            Err(PageFailure::Waited(Some(before)))
        }
        (attempt, _) => attempt,
    }
}

/// Saves `part` as the progress of its part of its list (`(name, at, part, split)`), cut at
/// `split` if given ([`TypeProgress::split`]), beside what the job's row holds of the other
/// parts and lists, and keeps the lease until `until`, in the caller's transaction. The lists
/// of a stage and the parts of a list run at once, each saving its own part: the row is read
/// locked ([`rows::progress_held`]), so no save is lost to another's. The progress saved and
/// the places of the new parts, or `None` when the job is no longer this worker's.
fn save_part(
    conn: &mut db::AnyConnection,
    (job, owner): (&str, &str),
    (name, at, part, split): (&str, usize, PartProgress, &[i64]),
    until: NaiveDateTime,
) -> diesel::QueryResult<Option<(Progress, Vec<usize>)>> {
    let Some(stored) = rows::progress_held(conn, job, owner)? else {
        return Ok(None);
    };
    // What the worker wrote: one that cannot be read fails the page (and in the end the job)
    // instead of starting the other lists again from nothing.
    let mut progress: Progress = serde_json::from_str(&stored)
        .map_err(|err| diesel::result::Error::DeserializationError(Box::new(err)))?;
    let entry = progress.entry(name.to_owned()).or_default();
    entry.set_part(at, part);
    let added = if split.is_empty() {
        Vec::new()
    } else {
        entry.split(at, split)
    };
    let text = serde_json::to_string(&progress).map_err(db::prepared::not_serialized)?;
    Ok(rows::save_progress(conn, job, owner, &text, now(), until)?.then_some((progress, added)))
}

/// Customers whose payment methods are read at once (each customer's is a list of its own
/// at Stripe): one after another, a sync waited a Stripe round trip per customer.
const PAYMENT_METHOD_LISTS_AT_ONCE: usize = 4;

/// A part's `created` bounds: at or after, before (none: unbounded).
type Bounds = (Option<i64>, Option<i64>);

/// The most parts one cut adds ([`Stage::cut`]).
const MOST_NEW_PARTS: usize = 2;
/// The most parts all cuts of a stage's lists add, over every run of the job (a resumed job
/// counts the parts cut before, [`cut_before`]): each part is saved in the job's progress, which
/// every page's write reads and writes again. Evenly spread objects take a few cuts per list;
/// a Stripe (or what stands for it) whose ranges end as soon as they are cut would otherwise
/// grow the progress with every page.
const MOST_PARTS_PER_STAGE: usize = 64;

/// The parts the lists `names` were cut into before (by this run or one the job was resumed
/// from): each counts toward [`MOST_PARTS_PER_STAGE`], or a Stripe whose ranges end as soon
/// as they are cut would add that many again at every resumption.
fn cut_before<'a>(progress: &Progress, names: impl Iterator<Item = &'a str>) -> usize {
    names
        .filter_map(|name| progress.get(name))
        .map(|list| list.parts.len().saturating_sub(1))
        .sum()
}
/// 2010-01-01: no Stripe object was created before (the oldest a cut guesses an account's
/// history starts, [`Stage::cut`]).
const STRIPE_BEGAN: i64 = 1_262_304_000;
/// When the job has read nothing older than the part being cut, how many times as long as
/// the span it has read back from now a cut guesses the account's history is below it.
const HISTORY_BELOW_GUESS: i128 = 8;

/// The parts of a stage's lists read at once (`Worker::list_stage`): how many may be
/// (`slots`), how many are or are about to be (`reading`), and where a part's page that cut
/// it sends the new parts once it has committed (`started`: the list's place in the stage,
/// the part's, the progress saved with the cut).
struct Stage {
    slots: usize,
    reading: AtomicUsize,
    /// Parts the stage's lists were cut into, before it and by it ([`MOST_PARTS_PER_STAGE`]).
    added: AtomicUsize,
    started: tokio::sync::mpsc::UnboundedSender<(usize, usize, Progress)>,
}

impl Stage {
    /// A stage of `slots` parts at once, whose lists were cut into `cut` parts before.
    fn new(
        slots: usize,
        cut: usize,
        started: tokio::sync::mpsc::UnboundedSender<(usize, usize, Progress)>,
    ) -> Self {
        Self {
            slots,
            reading: AtomicUsize::new(0),
            added: AtomicUsize::new(cut),
            started,
        }
    }

    /// Where to cut what a part has left to read (the part at or after `gte` and before `lt`,
    /// its last object read created at `at`) into as many more parts as the stage has room
    /// for (at most [`MOST_NEW_PARTS`]), newest first: in equal ranges of time down to where
    /// the account's history seems to start (`oldest`, the oldest `created` the job has read,
    /// of any list: a guess; the lowest part still reaches down to `gte`, so nothing is left
    /// out if it is wrong). When nothing the job has read is older than `at` (as in a job of
    /// customers alone), the guess is that the history below `at` is [`HISTORY_BELOW_GUESS`]
    /// times as long as the span from `now` back to `at`, and no older than Stripe
    /// ([`STRIPE_BEGAN`]): the part reading the oldest range guesses again when it is cut in
    /// turn. No cut without room, within two seconds, before 1970 (whatever a page says),
    /// or, with nothing older read, at or after `now` or before 2010. Every cut lies below
    /// the part's own `lt`, whatever a page's objects say. The room for the new parts is
    /// taken at once.
    fn cut(&self, (gte, lt): Bounds, at: i64, oldest: i64, now: i64) -> Vec<i64> {
        let free = self
            .slots
            .saturating_sub(self.reading.load(Ordering::Relaxed))
            .min(MOST_NEW_PARTS)
            .min(MOST_PARTS_PER_STAGE.saturating_sub(self.added.load(Ordering::Relaxed)));
        if free == 0 {
            return Vec::new();
        }
        let top = i128::from(lt.map_or(at, |lt| lt.min(at)));
        let guess = if oldest < at {
            i128::from(oldest)
        } else {
            let read = (i128::from(now) - top).max(0);
            (top - read * HISTORY_BELOW_GUESS).max(i128::from(STRIPE_BEGAN))
        };
        let lo = gte.map_or(guess, |gte| i128::from(gte).max(guess)).max(0);
        let span = top - lo;
        let parts = i128::try_from(free).unwrap_or(1).min(span - 1);
        if parts < 1 {
            return Vec::new();
        }
        let parts_added = usize::try_from(parts).unwrap_or_default();
        self.reading.fetch_add(parts_added, Ordering::Relaxed);
        self.added.fetch_add(parts_added, Ordering::Relaxed);
        (1..=parts)
            .rev()
            .map(|j| i64::try_from(lo + span * j / (parts + 1)).unwrap_or(at))
            .collect()
    }

    /// Hands a new part (its room taken by [`Self::cut`]) to the stage.
    fn start(&self, list: usize, part: usize, progress: &Progress) {
        // The stage may have ended (its job halted): the part is read on resumption.
        let _ = self.started.send((list, part, progress.clone()));
    }
}

/// Pages as the writer needs them: their objects read into what they change (each stamped
/// with the second its page was requested; the objects themselves freed), how many were
/// read and how many rows they make with their nested lists, the last one's id (the next
/// cursor), whether more follow.
#[derive(Default)]
struct Fetched {
    targets: ListedTargets,
    read: usize,
    rows: usize,
    last: Option<String>,
    /// The oldest `created` of the pages (where the list is in time: Stripe lists newest
    /// first).
    oldest: Option<i64>,
    /// The pages came slower than they are gathered for one write ([`GATHER_PAGES_FOR`]):
    /// what the list waits for is Stripe.
    waited: bool,
    has_more: bool,
    /// The job was still this worker's when the last page was read.
    held: bool,
}

impl Fetched {
    /// Adds the next page of the list.
    fn add(&mut self, family: &str, page: Page) {
        self.targets
            .append(listed_targets(family, &page.objects, page.requested_at));
        self.read += page.objects.len();
        self.rows += page.rows;
        if let Some(last) = page.last {
            self.last = Some(last);
        }
        self.oldest = match (self.oldest, page.oldest) {
            (Some(before), Some(now)) => Some(before.min(now)),
            (before, now) => before.or(now),
        };
        self.has_more = page.has_more;
    }
}

/// One page of a list as read from Stripe, its nested lists completed.
struct Page {
    requested_at: i64,
    objects: Vec<Value>,
    /// The objects and the entries of their nested lists.
    rows: usize,
    /// The last object's id (`None` for an empty page).
    last: Option<String>,
    /// The oldest `created` of the page's objects.
    oldest: Option<i64>,
    has_more: bool,
}

/// A job's kind as a metric label (bounded: one of two).
fn metric_kind(kind: &str) -> &'static str {
    if kind == RECONCILE {
        RECONCILE
    } else {
        HISTORICAL
    }
}

/// A Stripe list's `data` and `has_more`, taken out of the page (not copied).
fn list_of(mut page: Value, path: &str) -> Result<(Vec<Value>, bool), Halt> {
    let has_more = page
        .get("has_more")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    match page.get_mut("data").map(Value::take) {
        Some(Value::Array(data)) => Ok((data, has_more)),
        _ => Err(Halt::Failed(format!(
            "Stripe's answer to {path} is not a list"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_past_the_calendar_are_clamped_not_a_panic() {
        assert_eq!(after(Duration::from_secs(u64::MAX)), NaiveDateTime::MAX);
        assert_eq!(before(Duration::from_secs(u64::MAX)), NaiveDateTime::MIN);
        assert!(after(Duration::from_secs(60)) > now());
    }

    #[test]
    fn a_part_is_cut_for_the_room_there_is_into_ranges_that_meet() {
        let (started, _parts) = tokio::sync::mpsc::unbounded_channel();
        let stage = Stage::new(3, 0, started);
        stage.reading.store(1, Ordering::Relaxed);
        // Nothing read older than the part's last object: the history below it guessed 8
        // times as long as what was read back from now (nothing read back yet: no cut)...
        let now = 1_800_000_000;
        assert!(stage.cut((None, None), now, now, now).is_empty());
        let at = now - 300;
        assert_eq!(
            stage.cut((None, None), at, at, now),
            vec![at - 800, at - 1600]
        );
        stage.reading.store(1, Ordering::Relaxed);
        assert_eq!(
            stage.cut((Some(at - 600), None), at, i64::MAX, now),
            vec![at - 200, at - 400]
        );
        // ... and no older than Stripe.
        stage.reading.store(1, Ordering::Relaxed);
        let at = STRIPE_BEGAN + 3_000;
        assert_eq!(
            stage.cut((None, None), at, at, now),
            vec![STRIPE_BEGAN + 2_000, STRIPE_BEGAN + 1_000]
        );
        stage.reading.store(1, Ordering::Relaxed);
        assert!(
            stage
                .cut((None, None), STRIPE_BEGAN + 1, i64::MAX, now)
                .is_empty()
        );
        assert!(
            stage
                .cut((None, None), i64::MAX, i64::MAX, i64::MIN)
                .is_empty()
        );
        assert!(
            stage
                .cut((None, None), i64::MIN, i64::MAX, i64::MAX)
                .is_empty()
        );
        assert!(stage.cut((None, None), 1000, 1000, now).is_empty());
        // Room for two more: three equal ranges from the guess up; the room is taken.
        assert_eq!(stage.cut((None, None), 1000, 100, now), vec![700, 400]);
        assert_eq!(stage.reading.load(Ordering::Relaxed), 3);
        assert!(
            stage.cut((None, None), 1000, 100, now).is_empty(),
            "no room left"
        );
        // The part's own lower bound above the guess is where it ends.
        stage.reading.store(2, Ordering::Relaxed);
        assert_eq!(stage.cut((Some(700), None), 1000, 100, now), vec![850]);
        // A range of a second or two is not cut (or into fewer parts).
        stage.reading.store(1, Ordering::Relaxed);
        assert!(stage.cut((Some(999), None), 1000, 100, now).is_empty());
        assert_eq!(stage.cut((Some(998), None), 1000, 100, now), vec![999]);
        stage.reading.store(1, Ordering::Relaxed);
        assert_eq!(stage.cut((Some(997), None), 1000, 100, now), vec![999, 998]);
        // Whatever Stripe's objects say, no overflow, and no bound before 1970.
        stage.reading.store(1, Ordering::Relaxed);
        let far = stage.cut((None, None), i64::MAX, i64::MIN, now);
        assert!(far.len() == 2 && far[0] > far[1] && far[1] > 0, "{far:?}");
        stage.reading.store(1, Ordering::Relaxed);
        assert_eq!(stage.cut((None, None), 900, -5000, now), vec![600, 300]);
        stage.reading.store(1, Ordering::Relaxed);
        assert!(stage.cut((None, None), 0, -5000, now).is_empty());
        // Whatever a page says, no cut at or above the part's own upper bound.
        stage.reading.store(1, Ordering::Relaxed);
        assert_eq!(stage.cut((None, Some(400)), 1000, 100, now), vec![300, 200]);
        stage.reading.store(1, Ordering::Relaxed);
        assert!(stage.cut((Some(400), Some(400)), 1000, 100, now).is_empty());
        // However the ranges end, a stage adds at most so many parts in all.
        let before = stage.added.load(Ordering::Relaxed);
        let mut added = before;
        for _ in 0..1000 {
            stage.reading.store(1, Ordering::Relaxed);
            added += stage.cut((None, None), 1_000_000, 0, now).len();
        }
        assert_eq!(added, MOST_PARTS_PER_STAGE.max(before));
        assert!(stage.cut((None, None), 1_000_000, 0, now).is_empty());
        // A job resumed counts the parts its lists were cut into before: the cap holds
        // across resumptions, not per run.
        let mut progress = Progress::new();
        for (name, parts) in [("customers", 40), ("invoices", 25), ("products", 0)] {
            progress.insert(
                name.into(),
                TypeProgress {
                    parts: vec![PartProgress::default(); parts],
                    ..TypeProgress::default()
                },
            );
        }
        let names = ["customers", "invoices", "products", "prices"];
        assert_eq!(cut_before(&progress, names.into_iter()), 39 + 24);
        let (started, _parts) = tokio::sync::mpsc::unbounded_channel();
        let resumed = Stage::new(3, cut_before(&progress, names.into_iter()), started);
        assert_eq!(resumed.cut((None, None), 1_000_000, 0, now), vec![500_000]);
        assert!(resumed.cut((None, None), 1_000_000, 0, now).is_empty());

        let mut list = TypeProgress {
            read: 300,
            written: 290,
            cursor: Some("cus_3".into()),
            ..TypeProgress::default()
        };
        assert_eq!(list.open_parts(), vec![0]);
        assert_eq!(list.split(0, &[700, 400]), vec![1, 2]);
        let bounds = |p: &PartProgress| (p.created_gte, p.created_lt);
        assert_eq!(
            list.parts.iter().map(bounds).collect::<Vec<_>>(),
            vec![(Some(700), None), (Some(400), Some(700)), (None, Some(400))]
        );
        assert_eq!((list.parts[0].read, list.parts[0].written), (300, 290));
        assert_eq!(list.parts[0].cursor.as_deref(), Some("cus_3"));
        let mut second = list.part(1);
        (second.read, second.written, second.done) = (5, 4, true);
        second.cursor = Some("cus_9".into());
        list.set_part(1, second);
        assert_eq!((list.read, list.written, list.done), (305, 294, false));
        // The list's cursor is its newest part's.
        assert_eq!(list.cursor.as_deref(), Some("cus_3"));
        // A part cut again keeps its own bottom for the new lowest part.
        assert_eq!(list.split(2, &[200]), vec![3]);
        assert_eq!(bounds(&list.parts[2]), (Some(200), Some(400)));
        assert_eq!(bounds(&list.parts[3]), (None, Some(200)));
        assert_eq!(list.open_parts(), vec![0, 2, 3]);
        for at in [0, 2, 3] {
            let mut part = list.part(at);
            part.done = true;
            list.set_part(at, part);
        }
        assert!(list.done && list.open_parts().is_empty());
        assert_eq!(list.read, 305);
    }

    #[test]
    fn windows_follow_on_with_an_overlap_and_never_reach_past_thirty_days() {
        let now = 1_800_000_000;
        let first = reconcile_window(None, now - 10, now);
        assert_eq!(
            (first.gte, first.lt, first.gap_before),
            (now - 10 - OVERLAP_SECS, now + 1, None)
        );
        let next = reconcile_window(Some(first.lt), now - 10, now + 900);
        assert_eq!(next.gte, first.lt - OVERLAP_SECS);
        let late = reconcile_window(Some(now - 40 * 24 * 3600), now - 50 * 24 * 3600, now);
        assert_eq!(late.gte, now - EVENTS_REACH_SECS);
        assert_eq!(late.gap_before, Some(now - EVENTS_REACH_SECS));
    }
}
