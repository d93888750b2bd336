//! Historical sync (admins): `POST /stripe/sync/historical`, `GET /stripe/sync/jobs`,
//! `GET`/`DELETE /stripe/sync/jobs/{job_id}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::Value;

use crate::caller::Caller;
use crate::domain::PageRequest;
use crate::error::ApiError;
use crate::http::jsonapi::{self, PageMeta, parse_body};
use crate::services::sync::{self, JobView, SyncFields, SyncStatus};
use crate::state::AppState;

const KIND: &str = "stripe_sync_job";

#[utoipa::path(
    post, path = "/stripe/sync/historical", tag = "sync",
    request_body(content = SyncFields, description = "Optional, wrapped as {\"sync\": {...}}"),
    responses(
        (status = 202, description = "The job, queued: a worker pages Stripe's lists into the mirror", body = JobView),
        (status = 403, description = "Not an admin"),
        (status = 409, description = "sync_in_progress: a job of this app is queued or running (meta.job_id)"),
        (status = 422, description = "An unknown object type or a bad created range"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn start_sync(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin("sync the mirror from Stripe")?;
    let (fields, at) = if body.iter().all(u8::is_ascii_whitespace) {
        (SyncFields::default(), "/sync".to_owned())
    } else {
        let value: Value = serde_json::from_slice(&body).map_err(|err| {
            ApiError::bad_request(
                "invalid_json",
                format!("The body is not valid JSON: {err}."),
            )
        })?;
        parse_body::<SyncFields>(value, "sync")?
    };
    let (id, job) = sync::start(&state, &caller, fields, &at).await?;
    Ok(jsonapi::resource(StatusCode::ACCEPTED, KIND, &id, &job))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    /// The page, from 1.
    pub page: Option<String>,
    /// 1 to 100 per page, default 20.
    pub records: Option<String>,
}

#[utoipa::path(
    get, path = "/stripe/sync/jobs", tag = "sync",
    params(JobsQuery),
    responses(
        (status = 200, description = "The app's sync jobs, newest first", body = [JobView]),
        (status = 400, description = "A paging parameter out of range"),
        (status = 403, description = "Not an admin"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn list_jobs(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<JobsQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = PageRequest::parse(query.page.as_deref(), query.records.as_deref(), 20)?;
    let (jobs, total) = sync::list(&state, &caller, page).await?;
    Ok(jsonapi::list(
        KIND,
        &jobs,
        &PageMeta::new(page.page, page.per_page, total),
    ))
}

#[utoipa::path(
    get, path = "/stripe/sync/jobs/{job_id}", tag = "sync",
    params(("job_id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job and its progress per object type", body = JobView),
        (status = 403, description = "Not an admin"),
        (status = 404, description = "No job of this app has this id"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn get_job(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let job = sync::get(&state, &caller, &id).await?;
    Ok(jsonapi::resource(StatusCode::OK, KIND, &id, &job))
}

#[utoipa::path(
    delete, path = "/stripe/sync/jobs/{job_id}", tag = "sync",
    params(("job_id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "Canceled (a running job stops after the page in flight)", body = JobView),
        (status = 403, description = "Not an admin"),
        (status = 404, description = "No job of this app has this id"),
        (status = 409, description = "sync_finished: nothing to cancel"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn cancel_job(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let job = sync::cancel(&state, &caller, &id).await?;
    Ok(jsonapi::resource(StatusCode::OK, KIND, &id, &job))
}

#[utoipa::path(
    post, path = "/stripe/sync/reconcile", tag = "sync",
    responses(
        (status = 202, description = "A reconciliation, queued: the app's events since the last one (at most 30 days) are read from Stripe and fed through the receiver", body = JobView),
        (status = 403, description = "Not an admin"),
        (status = 409, description = "sync_in_progress: a reconciliation is queued or running (meta.job_id)"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn start_reconcile(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let (id, job) = sync::reconcile(&state, &caller).await?;
    Ok(jsonapi::resource(StatusCode::ACCEPTED, KIND, &id, &job))
}

#[utoipa::path(
    get, path = "/stripe/sync/status", tag = "sync",
    responses(
        (status = 200, description = "When the mirror was last reconciled, what it recovered, any gap past Stripe's 30 days, the active jobs", body = SyncStatus),
        (status = 403, description = "Not an admin"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn get_status(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let status = sync::status(&state, &caller).await?;
    Ok(jsonapi::resource(
        StatusCode::OK,
        "stripe_sync_status",
        &caller.tenant.id,
        &status,
    ))
}
