//! `sales-block sync`: queue a historical sync for a tenant (the service's workers run it) and
//! follow it; `sales-block sync status`: the tenant's jobs and reconciliation state.

use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use super::open_database;
use crate::config::Settings;
use crate::db::sync_jobs as rows;
use crate::services::sync::{JobView, SyncFields, check};

fn tenant_id(conn: &mut crate::db::AnyConnection, api_key: &str) -> anyhow::Result<String> {
    Ok(crate::db::tenants::find_by_api_key(conn, api_key)?
        .with_context(|| format!("no tenant has the api key {api_key}"))?
        .id)
}

/// Queues the job (printing it as JSON) and, with `wait`, follows it until it ends.
pub(super) async fn start(
    settings: Settings,
    api_key: String,
    objects: Vec<String>,
    wait: bool,
) -> anyhow::Result<()> {
    let (db, _) = open_database(&settings)?;
    let fields = SyncFields {
        objects: (!objects.is_empty()).then_some(objects),
        ..SyncFields::default()
    };
    let scope = check(fields, "--objects").map_err(|err| anyhow::anyhow!("{}", err.detail))?;
    let job_db = db.clone();
    let job = tokio::task::spawn_blocking(move || -> anyhow::Result<rows::SyncJob> {
        let mut conn = job_db.get()?;
        let tenant = tenant_id(&mut conn, &api_key)?;
        match crate::sync::queue_historical(&mut conn, &tenant, &scope, "cli", None)
            .map_err(|err| anyhow::anyhow!("{}", err.detail))?
        {
            Ok(job) => Ok(job),
            Err(running) => anyhow::bail!(
                "the tenant's sync {} is {}: wait for it or cancel it first",
                running.id,
                running.status
            ),
        }
    })
    .await??;
    let (id, tenant) = (job.id.clone(), job.tenant_id.clone());
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({"id": id, "job": JobView::from(job)}))?
    );
    if !wait {
        return Ok(());
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {elapsed} {msg}")?);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar.set_message("queued: the service's sync worker takes it");
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (db, tenant, job_id) = (db.clone(), tenant.clone(), id.clone());
        let current = tokio::task::spawn_blocking(move || -> anyhow::Result<rows::SyncJob> {
            let mut conn = db.get()?;
            rows::find(&mut conn, &tenant, &job_id)?.context("the job vanished")
        })
        .await??;
        let view = JobView::from(current);
        let (read, written): (u64, u64) = view
            .progress
            .values()
            .fold((0, 0), |(r, w), p| (r + p.read, w + p.written));
        let at = view
            .progress
            .iter()
            .find(|(_, p)| !p.done)
            .map_or("", |(name, _)| name.as_str());
        bar.set_message(format!(
            "{}: {read} read, {written} written {at}",
            view.status
        ));
        match view.status.as_str() {
            rows::SUCCEEDED => {
                bar.finish_with_message(format!("succeeded: {read} read, {written} written"));
                return Ok(());
            }
            rows::FAILED | rows::CANCELED => {
                bar.finish_with_message(format!(
                    "{}: {}",
                    view.status,
                    view.last_error.unwrap_or_default()
                ));
                anyhow::bail!("the sync {id} ended {}", view.status);
            }
            _ => {}
        }
    }
}

/// The tenant's jobs (newest 20) and reconciliation state as JSON.
pub(super) fn status(settings: &Settings, api_key: &str) -> anyhow::Result<String> {
    let (db, _) = open_database(settings)?;
    let mut conn = db.get()?;
    let tenant = tenant_id(&mut conn, api_key)?;
    let (jobs, total) = rows::list(&mut conn, &tenant, 0, 20)?;
    let state = rows::state_of(&mut conn, &tenant)?;
    let jobs: Vec<serde_json::Value> = jobs
        .into_iter()
        .map(|job| serde_json::json!({"id": job.id.clone(), "job": JobView::from(job)}))
        .collect();
    Ok(serde_json::to_string_pretty(&serde_json::json!({
        "jobs": jobs,
        "total_jobs": total,
        "reconciled_through": state.as_ref().and_then(|s| s.reconciled_through),
        "last_recovered": state.as_ref().map_or(0, |s| s.last_recovered),
        "total_recovered": state.as_ref().map_or(0, |s| s.total_recovered),
        "gap_before": state.as_ref().and_then(|s| s.gap_before),
    }))?)
}
