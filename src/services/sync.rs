//! Historical sync jobs as admins see them: start one, list them, read one, cancel one
//! (`crate::sync` runs them).

use std::collections::BTreeSet;

use actix_web::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::caller::Caller;
use crate::db::sync_jobs::{self as rows, SyncJob};
use crate::domain::PageRequest;
use crate::error::ApiError;
use crate::state::AppState;
use crate::sync::kinds;
use crate::sync::{Scope, TypeProgress};

/// The body of `POST /stripe/sync/historical` (all optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncFields {
    /// Object types to sync (default: all): products, prices, customers, subscriptions,
    /// invoices, payment_intents, charges, refunds, checkout_sessions, payment_links,
    /// payment_methods. They are synced in that order whatever the order given.
    pub objects: Option<Vec<String>>,
    /// Only objects created at or after this unix second.
    pub created_gte: Option<i64>,
    /// Only objects created before this unix second.
    pub created_lt: Option<i64>,
}

/// A job as admins read it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobView {
    pub kind: String,
    /// queued, running, succeeded, failed or canceled
    pub status: String,
    pub objects: Vec<String>,
    pub created_gte: Option<i64>,
    pub created_lt: Option<i64>,
    /// Per object type: read, written, cursor (the last id written), done.
    pub progress: std::collections::BTreeMap<String, TypeProgress>,
    pub requested_by: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    /// What an admin should know (a reconciliation's gap older than Stripe keeps events).
    pub note: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

impl From<SyncJob> for JobView {
    fn from(job: SyncJob) -> Self {
        let ts = crate::domain::time::timestamp;
        Self {
            kind: job.kind,
            status: job.status,
            objects: serde_json::from_str(&job.objects).unwrap_or_default(),
            created_gte: job.created_gte,
            created_lt: job.created_lt,
            progress: serde_json::from_str(&job.progress).unwrap_or_default(),
            requested_by: job.requested_by,
            attempts: job.attempts,
            last_error: job.last_error,
            note: job.note,
            created_at: ts(job.created_at),
            started_at: job.started_at.map(ts),
            finished_at: job.finished_at.map(ts),
        }
    }
}

/// The newest second a `created` bound may name (year 9999).
const MAX_UNIX: i64 = 253_402_300_799;

/// What a job is to read: the object types in sync order and the `created` range.
pub fn check(fields: SyncFields, at: &str) -> Result<Scope, ApiError> {
    let objects = match fields.objects {
        None => Scope::everything().objects,
        Some(list) => {
            if list.is_empty() {
                return Err(ApiError::validation(
                    format!("{at}/objects"),
                    "objects must name at least one type (or be left out for all)",
                ));
            }
            let mut wanted = BTreeSet::new();
            for (i, name) in list.iter().enumerate() {
                if kinds::kind(name).is_none() {
                    return Err(ApiError::validation(
                        format!("{at}/objects/{i}"),
                        format!("unknown object type; one of: {}", kinds::names().join(", ")),
                    ));
                }
                wanted.insert(name.as_str());
            }
            // Parents first, whatever the order given; each type once.
            kinds::names()
                .into_iter()
                .filter(|n| wanted.contains(n))
                .map(str::to_owned)
                .collect()
        }
    };
    for (name, value) in [
        ("created_gte", fields.created_gte),
        ("created_lt", fields.created_lt),
    ] {
        if value.is_some_and(|v| !(0..=MAX_UNIX).contains(&v)) {
            return Err(ApiError::validation(
                format!("{at}/{name}"),
                format!("{name} must be a unix second between 0 and {MAX_UNIX}"),
            ));
        }
    }
    if let (Some(gte), Some(lt)) = (fields.created_gte, fields.created_lt)
        && gte >= lt
    {
        return Err(ApiError::validation(
            format!("{at}/created_lt"),
            "created_lt must be after created_gte",
        ));
    }
    Ok(Scope {
        objects,
        created_gte: fields.created_gte,
        created_lt: fields.created_lt,
    })
}

/// `POST /stripe/sync/historical`: queues a job, unless one of the tenant's is queued or
/// running (409 with its id).
pub async fn start(
    state: &AppState,
    caller: &Caller,
    fields: SyncFields,
    at: &str,
) -> Result<(String, JobView), ApiError> {
    caller.require_admin("sync the mirror from Stripe")?;
    let scope = check(fields, at)?;
    let (tenant_id, subject) = (caller.tenant.id.clone(), caller.subject.clone());
    let queued = state
        .db
        .run(move |conn| crate::sync::queue_historical(conn, &tenant_id, &scope, &subject, None))
        .await?;
    let job = queued.map_err(in_progress)?;
    state.sync_queued();
    Ok((job.id.clone(), job.into()))
}

fn in_progress(running: SyncJob) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "sync_in_progress",
        "A sync is in progress",
        format!(
            "This app's {} job {} is {}; wait for it or cancel it (DELETE /stripe/sync/jobs/{}).",
            running.kind, running.id, running.status, running.id
        ),
    )
    .with_meta("job_id", running.id)
}

/// `POST /stripe/sync/reconcile`: queues a reconciliation of the app's events now.
pub async fn reconcile(state: &AppState, caller: &Caller) -> Result<(String, JobView), ApiError> {
    caller.require_admin("reconcile the mirror with Stripe")?;
    let (tenant, subject) = (caller.tenant.id.clone(), caller.subject.clone());
    let queued = state
        .db
        .run(move |conn| {
            let row = crate::db::tenants::find_by_id(conn, &tenant)?
                .ok_or_else(|| ApiError::not_found("This app no longer exists."))?;
            crate::sync::enqueue_reconcile(conn, &tenant, row.created_at, &subject)
        })
        .await?;
    match queued {
        Ok(job) => {
            state.sync_queued();
            Ok((job.id.clone(), job.into()))
        }
        Err(running) => Err(in_progress(running)),
    }
}

/// `GET /stripe/sync/status`: how current the mirror is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SyncStatus {
    /// Every event created before this time has been read from Stripe and applied.
    pub reconciled_through: Option<String>,
    pub last_reconciled_at: Option<String>,
    /// Events the last reconciliation recovered (never delivered before), and all of them.
    pub last_recovered: i64,
    pub total_recovered: i64,
    /// Events before this time were out of Stripe's reach (30 days) when reconciled: a
    /// historical sync of every type fills the gap.
    pub gap_before: Option<String>,
    pub hint: Option<String>,
    /// The app's queued or running jobs.
    pub active_jobs: Vec<String>,
}

pub async fn status(state: &AppState, caller: &Caller) -> Result<SyncStatus, ApiError> {
    caller.require_admin("see the sync status")?;
    let tenant = caller.tenant.id.clone();
    let (sync_state, active) = state
        .db
        .run(move |conn| {
            let known = rows::state_of(conn, &tenant)?;
            let mut active = Vec::new();
            for kind in [crate::sync::HISTORICAL, crate::sync::RECONCILE] {
                active.extend(rows::active(conn, &tenant, kind)?.map(|j| j.id));
            }
            Ok::<_, ApiError>((known, active))
        })
        .await?;
    let unix = crate::domain::time::unix_timestamp;
    let ts = crate::domain::time::timestamp;
    Ok(match sync_state {
        None => SyncStatus {
            reconciled_through: None,
            last_reconciled_at: None,
            last_recovered: 0,
            total_recovered: 0,
            gap_before: None,
            hint: Some(
                "Never reconciled: POST /stripe/sync/reconcile, or wait for the periodic run."
                    .into(),
            ),
            active_jobs: active,
        },
        Some(s) => SyncStatus {
            reconciled_through: s.reconciled_through.and_then(unix),
            last_reconciled_at: s.last_reconciled_at.map(ts),
            last_recovered: s.last_recovered,
            total_recovered: s.total_recovered,
            gap_before: s.gap_before.and_then(unix),
            hint: s.gap_before.map(crate::sync::gap_note),
            active_jobs: active,
        },
    })
}

/// `GET /stripe/sync/jobs`: the tenant's jobs, newest first, 23blocks pages.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    page: PageRequest,
) -> Result<(Vec<(String, JobView)>, i64), ApiError> {
    caller.require_admin("see the sync jobs")?;
    let tenant = caller.tenant.id.clone();
    let (jobs, total) = state
        .db
        .run(move |conn| {
            rows::list(conn, &tenant, page.offset(), page.per_page).map_err(ApiError::from)
        })
        .await?;
    Ok((
        jobs.into_iter().map(|j| (j.id.clone(), j.into())).collect(),
        total,
    ))
}

fn no_such_job() -> ApiError {
    ApiError::not_found("This app has no sync job with this id.")
}

/// A job id as we issue them could look: anything else names none, without a query.
fn plausible(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// `GET /stripe/sync/jobs/{id}`.
pub async fn get(state: &AppState, caller: &Caller, id: &str) -> Result<JobView, ApiError> {
    caller.require_admin("see the sync jobs")?;
    if !plausible(id) {
        return Err(no_such_job());
    }
    let (tenant, id) = (caller.tenant.id.clone(), id.to_owned());
    state
        .db
        .run(move |conn| rows::find(conn, &tenant, &id).map_err(ApiError::from))
        .await?
        .map(JobView::from)
        .ok_or_else(no_such_job)
}

/// `DELETE /stripe/sync/jobs/{id}`: a queued or running job is canceled (a running one
/// stops after the page in flight); a finished one is 409.
pub async fn cancel(state: &AppState, caller: &Caller, id: &str) -> Result<JobView, ApiError> {
    let current = get(state, caller, id).await?;
    let (tenant, job) = (caller.tenant.id.clone(), id.to_owned());
    let canceled = state
        .db
        .run(move |conn| {
            rows::cancel(conn, &tenant, &job, None, chrono::Utc::now().naive_utc())
                .map_err(ApiError::from)
        })
        .await?;
    if !canceled {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "sync_finished",
            "Sync finished",
            format!(
                "This sync job is {}: there is nothing to cancel.",
                current.status
            ),
        ));
    }
    get(state, caller, id).await
}
