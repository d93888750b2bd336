//! Historical sync jobs: created by an admin, leased by one worker at a time, their progress
//! saved with each page written.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::AnyConnection;
use super::schema::{sync_jobs, sync_state, tenants};

pub const QUEUED: &str = "queued";
pub const RUNNING: &str = "running";
pub const SUCCEEDED: &str = "succeeded";
pub const FAILED: &str = "failed";
pub const CANCELED: &str = "canceled";

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sync_jobs)]
pub struct SyncJob {
    pub id: String,
    pub tenant_id: String,
    pub kind: String,
    pub status: String,
    /// JSON list of object types, in the order they are synced.
    pub objects: String,
    pub created_gte: Option<i64>,
    pub created_lt: Option<i64>,
    /// JSON object: per type `{read, written, cursor, done}`.
    pub progress: String,
    pub requested_by: String,
    pub lease_owner: Option<String>,
    pub lease_until: Option<NaiveDateTime>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub note: Option<String>,
    pub created_at: NaiveDateTime,
    pub started_at: Option<NaiveDateTime>,
    pub finished_at: Option<NaiveDateTime>,
    pub updated_at: NaiveDateTime,
}

pub fn insert(conn: &mut AnyConnection, job: &SyncJob) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::insert_into(sync_jobs::table)
            .values(job)
            .execute(conn)
    })
    .map(|_| ())
}

/// The tenant's job of this kind that is queued or running, if any.
pub fn active(
    conn: &mut AnyConnection,
    tenant_id: &str,
    kind: &str,
) -> QueryResult<Option<SyncJob>> {
    sync_jobs::table
        .filter(sync_jobs::tenant_id.eq(tenant_id))
        .filter(sync_jobs::kind.eq(kind))
        .filter(sync_jobs::status.eq_any([QUEUED, RUNNING]))
        .select(SyncJob::as_select())
        .first(conn)
        .optional()
}

/// Creates the job unless the tenant has one of its kind queued or running (returned
/// instead; a unique index holds it across instances).
pub fn insert_unless_active(
    conn: &mut AnyConnection,
    job: &SyncJob,
) -> QueryResult<Result<(), SyncJob>> {
    if let Some(running) = active(conn, &job.tenant_id, &job.kind)? {
        return Ok(Err(running));
    }
    // A savepoint of its own inside a caller's transaction (the binding of a connected
    // account): on PostgreSQL a unique violation would otherwise abort the whole transaction
    // and the look at the job that won could not run.
    match super::write_transaction(conn, |conn| insert(conn, job)) {
        Ok(()) => Ok(Ok(())),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            info,
        )) => match active(conn, &job.tenant_id, &job.kind)? {
            Some(running) => Ok(Err(running)),
            None => Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                info,
            )),
        },
        Err(err) => Err(err),
    }
}

pub fn find(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> QueryResult<Option<SyncJob>> {
    sync_jobs::table
        .filter(sync_jobs::tenant_id.eq(tenant_id))
        .filter(sync_jobs::id.eq(id))
        .select(SyncJob::as_select())
        .first(conn)
        .optional()
}

/// A page of the tenant's jobs, newest first, and how many there are.
pub fn list(
    conn: &mut AnyConnection,
    tenant_id: &str,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<SyncJob>, i64)> {
    let total = sync_jobs::table
        .filter(sync_jobs::tenant_id.eq(tenant_id))
        .count()
        .get_result(conn)?;
    let rows = sync_jobs::table
        .filter(sync_jobs::tenant_id.eq(tenant_id))
        .order((sync_jobs::created_at.desc(), sync_jobs::id.desc()))
        .offset(offset)
        .limit(limit)
        .select(SyncJob::as_select())
        .load(conn)?;
    Ok((rows, total))
}

/// Cancels a queued or running job: `Ok(true)` when this call did.
pub fn cancel(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
    why: Option<&str>,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    super::write_statement(conn, |conn| {
        diesel::update(
            sync_jobs::table
                .filter(sync_jobs::tenant_id.eq(tenant_id))
                .filter(sync_jobs::id.eq(id))
                .filter(sync_jobs::status.eq_any([QUEUED, RUNNING])),
        )
        .set((
            sync_jobs::status.eq(CANCELED),
            sync_jobs::last_error.eq(why),
            sync_jobs::finished_at.eq(at),
            sync_jobs::updated_at.eq(at),
            sync_jobs::lease_owner.eq(None::<String>),
            sync_jobs::lease_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)
    })
    .map(|n| n == 1)
}

/// The job `id` while it runs under `owner`'s lease: what every write of a worker to its job
/// requires (a canceled job, or one another worker took over, is no longer its to write).
#[diesel::dsl::auto_type]
fn held_by<'a>(id: &'a str, owner: &'a str) -> _ {
    let running: &'static str = RUNNING;
    sync_jobs::id
        .eq(id)
        .and(sync_jobs::status.eq(running))
        .and(sync_jobs::lease_owner.eq(owner))
}

/// A job's last error once another worker took it over.
pub const TAKEN_OVER: &str =
    "the instance running it stopped without giving it back (its lease ran out)";

/// Leases the oldest job due (of `kind`, if given; queued, or running under a lease that
/// lapsed: its worker died, which counts as an attempt) to `owner` until `until`; `None` when there is none (or
/// another worker took it first).
pub fn lease_next(
    conn: &mut AnyConnection,
    owner: &str,
    kind: Option<&str>,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<Option<SyncJob>> {
    let due = || {
        sync_jobs::status.eq_any([QUEUED, RUNNING]).and(
            sync_jobs::lease_until
                .is_null()
                .or(sync_jobs::lease_until.lt(now)),
        )
    };
    let mut oldest = sync_jobs::table.filter(due()).into_boxed();
    if let Some(kind) = kind {
        oldest = oldest.filter(sync_jobs::kind.eq(kind));
    }
    let Some((id, previous)) = oldest
        .order(sync_jobs::created_at.asc())
        .select((sync_jobs::id, sync_jobs::lease_owner))
        .first::<(String, Option<String>)>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let taken = super::write_statement(conn, |conn| {
        let job = sync_jobs::table.filter(sync_jobs::id.eq(&id)).filter(due());
        let lease = (
            sync_jobs::status.eq(RUNNING),
            sync_jobs::lease_owner.eq(owner),
            sync_jobs::lease_until.eq(until),
            sync_jobs::updated_at.eq(now),
        );
        match &previous {
            // Its lease ran out under another worker that never gave it back (an instance
            // killed, or one that lost touch): an attempt, so that a job that kills its
            // worker is not taken over for ever.
            Some(previous) => diesel::update(job.filter(sync_jobs::lease_owner.eq(previous)))
                .set((
                    lease,
                    sync_jobs::attempts.eq(sync_jobs::attempts + 1),
                    sync_jobs::last_error.eq(TAKEN_OVER),
                ))
                .execute(conn),
            None => diesel::update(job.filter(sync_jobs::lease_owner.is_null()))
                .set(lease)
                .execute(conn),
        }
    })?;
    if taken != 1 {
        return Ok(None);
    }
    super::write_statement(conn, |conn| {
        diesel::update(
            sync_jobs::table
                .filter(sync_jobs::id.eq(&id))
                .filter(sync_jobs::started_at.is_null()),
        )
        .set(sync_jobs::started_at.eq(now))
        .execute(conn)
    })?;
    sync_jobs::table
        .find(&id)
        .select(SyncJob::as_select())
        .first(conn)
        .optional()
}

/// The lease `owner` holds on a running job, renewed until `until`; `false`: the job is no
/// longer this worker's to run (canceled, or its lease lapsed and another took it).
pub fn renew(
    conn: &mut AnyConnection,
    id: &str,
    owner: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<bool> {
    super::write_statement(conn, |conn| {
        diesel::update(sync_jobs::table.filter(held_by(id, owner)))
            .set((
                sync_jobs::lease_until.eq(until),
                sync_jobs::updated_at.eq(now),
            ))
            .execute(conn)
    })
    .map(|n| n == 1)
}

/// Whether the job still runs under `owner`'s lease: a read, which waits for no lock (a
/// write of the job's progress in flight holds its row).
pub fn still_held(conn: &mut AnyConnection, id: &str, owner: &str) -> QueryResult<bool> {
    sync_jobs::table
        .filter(held_by(id, owner))
        .count()
        .get_result::<i64>(conn)
        .map(|n| n == 1)
}

/// The job's saved progress while it runs under `owner`'s lease, its row locked until the
/// transaction ends on PostgreSQL (on SQLite the transaction holds the one writer's lock): a
/// page's write reads what the lists running beside its own saved, then saves it with its own
/// list's, and no other write can save in between. `None` when the job is no longer this
/// worker's.
pub fn progress_held(
    conn: &mut AnyConnection,
    id: &str,
    owner: &str,
) -> QueryResult<Option<String>> {
    let query = sync_jobs::table
        .filter(held_by(id, owner))
        .select(sync_jobs::progress);
    match conn {
        AnyConnection::Postgresql(pg) => query.for_no_key_update().first(pg).optional(),
        AnyConnection::Sqlite(sqlite) => query.first(sqlite).optional(),
    }
}

/// Saves progress (inside the transaction that wrote the page) and keeps the lease until
/// `until`: a job whose writes commit keeps its lease with no statement of its own, which
/// would wait for the write in flight (it holds the job's row until it commits). `false`
/// when the job is no longer this worker's (then the caller rolls the page back).
pub fn save_progress(
    conn: &mut AnyConnection,
    id: &str,
    owner: &str,
    progress: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(sync_jobs::table.filter(held_by(id, owner)))
        .set((
            sync_jobs::progress.eq(progress),
            sync_jobs::lease_until.eq(until),
            sync_jobs::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|n| n == 1)
}

/// Ends the job (`succeeded` or `failed`) if this worker still runs it.
pub fn finish(
    conn: &mut AnyConnection,
    id: &str,
    owner: &str,
    status: &str,
    error: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    super::write_statement(conn, |conn| {
        diesel::update(sync_jobs::table.filter(held_by(id, owner)))
            .set((
                sync_jobs::status.eq(status),
                sync_jobs::last_error.eq(error),
                sync_jobs::finished_at.eq(now),
                sync_jobs::updated_at.eq(now),
                sync_jobs::lease_owner.eq(None::<String>),
                sync_jobs::lease_until.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)
    })
    .map(|n| n == 1)
}

/// Gives the job back after a transient failure (it is retried after `retry_at`), counting
/// the attempt.
pub fn release(
    conn: &mut AnyConnection,
    id: &str,
    owner: &str,
    error: &str,
    retry_at: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    super::write_statement(conn, |conn| {
        diesel::update(sync_jobs::table.filter(held_by(id, owner)))
            .set((
                sync_jobs::attempts.eq(sync_jobs::attempts + 1),
                sync_jobs::last_error.eq(error),
                sync_jobs::lease_owner.eq(None::<String>),
                // Not due before retry_at: the lease column doubles as the back-off.
                sync_jobs::lease_until.eq(retry_at),
                sync_jobs::updated_at.eq(now),
            ))
            .execute(conn)
    })
    .map(|n| n == 1)
}

/// Gives the job back as its instance stops (another resumes it at once), counting no
/// attempt: a deploy's restarts are not the job's failures.
pub fn hand_back(
    conn: &mut AnyConnection,
    id: &str,
    owner: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    super::write_statement(conn, |conn| {
        diesel::update(sync_jobs::table.filter(held_by(id, owner)))
            .set((
                sync_jobs::lease_owner.eq(None::<String>),
                sync_jobs::lease_until.eq(None::<NaiveDateTime>),
                sync_jobs::updated_at.eq(now),
            ))
            .execute(conn)
    })
    .map(|n| n == 1)
}

/// The tenant's mirrored customers' Stripe ids after `after`, in id order (the payment
/// methods of each are synced customer by customer).
pub fn customer_ids_after(
    conn: &mut AnyConnection,
    tenant_id: &str,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<String>> {
    use super::schema::customers;
    let mut query = customers::table
        .filter(customers::tenant_id.eq(tenant_id))
        .select(customers::stripe_customer_id)
        .order(customers::stripe_customer_id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(customers::stripe_customer_id.gt(after.to_owned()));
    }
    query.load(conn)
}

/// A tenant's reconciliation state.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sync_state)]
pub struct SyncState {
    pub tenant_id: String,
    pub reconciled_through: Option<i64>,
    pub last_reconciled_at: Option<NaiveDateTime>,
    pub last_recovered: i64,
    pub total_recovered: i64,
    pub gap_before: Option<i64>,
    pub updated_at: NaiveDateTime,
}

pub fn state_of(conn: &mut AnyConnection, tenant_id: &str) -> QueryResult<Option<SyncState>> {
    sync_state::table
        .find(tenant_id)
        .select(SyncState::as_select())
        .first(conn)
        .optional()
}

/// A reconciliation finished: every event before `through` was fed; `recovered` were new.
/// `gap_before`: events before it were out of Stripe's reach (`None` clears an old gap only
/// when a backfill is recorded, so it is kept here).
pub fn record_reconciled(
    conn: &mut AnyConnection,
    tenant_id: &str,
    through: i64,
    recovered: i64,
    gap_before: Option<i64>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    super::write_transaction(conn, |conn| {
        let known = state_of(conn, tenant_id)?;
        match known {
            None => diesel::insert_into(sync_state::table)
                .values((
                    sync_state::tenant_id.eq(tenant_id),
                    sync_state::reconciled_through.eq(through),
                    sync_state::last_reconciled_at.eq(now),
                    sync_state::last_recovered.eq(recovered),
                    sync_state::total_recovered.eq(recovered),
                    sync_state::gap_before.eq(gap_before),
                    sync_state::updated_at.eq(now),
                ))
                .execute(conn)?,
            Some(state) => diesel::update(sync_state::table.find(tenant_id))
                .set((
                    sync_state::reconciled_through
                        .eq(state.reconciled_through.map_or(through, |t| t.max(through))),
                    sync_state::last_reconciled_at.eq(now),
                    sync_state::last_recovered.eq(recovered),
                    sync_state::total_recovered.eq(state.total_recovered + recovered),
                    sync_state::gap_before.eq(gap_before.or(state.gap_before)),
                    sync_state::updated_at.eq(now),
                ))
                .execute(conn)?,
        };
        Ok(())
    })
}

/// A historical sync of every type succeeded: an old gap is filled.
pub fn clear_gap(conn: &mut AnyConnection, tenant_id: &str, now: NaiveDateTime) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::update(sync_state::table.find(tenant_id))
            .set((
                sync_state::gap_before.eq(None::<i64>),
                sync_state::updated_at.eq(now),
            ))
            .execute(conn)
    })
    .map(|_| ())
}

/// Tenants with Stripe access whose last reconciliation is older than `before` (or never
/// ran), with when each was created.
pub fn due_for_reconcile(
    conn: &mut AnyConnection,
    before: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<(String, NaiveDateTime)>> {
    tenants::table
        .left_join(sync_state::table.on(sync_state::tenant_id.eq(tenants::id)))
        .filter(tenants::stripe_access.ne(super::connect::ACCESS_NONE))
        // A disabled tenant is not reconciled on its own; enabled again, it is due as before.
        .filter(tenants::disabled_at.is_null())
        .filter(
            sync_state::last_reconciled_at
                .is_null()
                .or(sync_state::last_reconciled_at.lt(before)),
        )
        .order(tenants::id.asc())
        .limit(limit)
        .select((tenants::id, tenants::created_at))
        .load(conn)
}
