//! `PUT /stripe/notifications/settings` and `GET /stripe/notifications` (admins): where the
//! app is told of payment events, and the delivery log.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::caller::Caller;
use crate::db::listing;
use crate::db::notifications::{self, AttemptRow, NotificationRow};
use crate::domain::optional_text;
use crate::domain::paging::{FirstPage, Paging};
use crate::error::ApiError;
use crate::http::jsonapi::{self, ListMeta, parse_body, timestamp};
use crate::services;
use crate::state::AppState;

const WHO: &str = "manage notifications";

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct NotificationSettingsFields {
    /// Where to POST notifications (https; a public address, see the egress policy); null
    /// turns them off.
    pub url: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NotificationSettingsAttributes {
    pub url: Option<String>,
    /// Verifies `Sales-Signature` (same scheme as Stripe-Signature); shown only here.
    pub signing_secret: Option<String>,
}

#[utoipa::path(
    put, path = "/stripe/notifications/settings", tag = "notifications",
    request_body(content = NotificationSettingsFields, description = "Wrapped as {\"notification_settings\": {...}}"),
    responses(
        (status = 200, description = "Saved; a new signing secret each time a url is set", body = NotificationSettingsAttributes),
        (status = 403, description = "Admins only"),
        (status = 422, description = "Not an absolute https URL, or its host is not a public address (egress policy); nothing stored"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn put_settings(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin(WHO)?;
    let (fields, at) =
        parse_body::<NotificationSettingsFields>(body.into_inner(), "notification_settings")?;
    let pointer = format!("{at}/url");
    // The egress policy: https, a host that resolves only to public addresses.
    let url = match optional_text(fields.url, &pointer, 2048)? {
        Some(raw) => Some(state.egress.check_url(&raw, &pointer).await?.to_string()),
        None => None,
    };
    let tenant_id = caller.tenant.id.clone();
    let saved = url.clone();
    let master = state.master.clone();
    let secret = state
        .db
        .run(move |conn| {
            crate::outbound::notifications::set_target(&master, conn, &tenant_id, saved.as_deref())
        })
        .await?;
    // This instance's receiver knows at once whether the tenant is notified.
    state.forget_endpoints();
    Ok(jsonapi::resource(
        StatusCode::OK,
        "notification_settings",
        &caller.tenant.id,
        &NotificationSettingsAttributes {
            url,
            signing_secret: secret,
        },
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttemptAttributes {
    pub attempted_at: String,
    pub url: String,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NotificationAttributes {
    pub unique_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub stripe_event_id: String,
    /// pending, delivered or failed.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    #[schema(value_type = Object)]
    pub payload: Value,
    pub created_at: String,
    pub delivered_at: Option<String>,
    pub delivery_log: Vec<AttemptAttributes>,
}

fn attributes(row: NotificationRow, attempts: Vec<AttemptRow>) -> NotificationAttributes {
    NotificationAttributes {
        unique_id: row.id,
        event_type: row.event_type,
        stripe_event_id: row.source_event_id,
        next_attempt_at: (row.status == crate::db::notifications::PENDING)
            .then(|| timestamp(row.next_attempt_at)),
        status: row.status,
        attempts: row.attempts,
        last_error: row.last_error,
        payload: serde_json::from_str(&row.payload).unwrap_or(Value::Null),
        created_at: timestamp(row.created_at),
        delivered_at: row.delivered_at.map(timestamp),
        delivery_log: attempts
            .into_iter()
            .map(|a| AttemptAttributes {
                attempted_at: timestamp(a.attempted_at),
                url: a.url,
                status_code: a.status_code,
                error: a.error,
                duration_ms: a.duration_ms,
            })
            .collect(),
    }
}

crate::domain::paging::paged_query! {
    /// Paging of the delivery log (23blocks pages by default).
    pub struct LogQuery {}
}

#[utoipa::path(
    get, path = "/stripe/notifications", tag = "notifications",
    params(LogQuery),
    responses(
        (status = 200, description = "A page of the app's notifications, newest first, each with its delivery attempts (meta as on the other lists)", body = [NotificationAttributes]),
        (status = 400, description = "A paging parameter out of range, both kinds of paging, both cursors, or a cursor naming no notification of the app's"),
        (status = 403, description = "Admins only"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn list_notifications(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin(WHO)?;
    let paging = Paging::parse(query.paging(), FirstPage::Pages)?;
    let tenant_id = caller.tenant.id.clone();
    let reading = paging.clone();
    let page = state
        .db
        .run(move |conn| {
            listing::snapshot(conn, reading.offset_page(), |conn| {
                let start = services::paging::start(&reading, "notification", |id| {
                    notifications::list_position(conn, &tenant_id, id)
                })?;
                Ok::<_, ApiError>(notifications::list(
                    conn,
                    &tenant_id,
                    &start,
                    reading.limit(),
                )?)
            })
        })
        .await?;
    let items: Vec<(String, NotificationAttributes)> = page
        .rows
        .into_iter()
        .map(|(row, attempts)| (row.id.clone(), attributes(row, attempts)))
        .collect();
    let meta = ListMeta::new(&paging, page.total, page.has_more);
    Ok(jsonapi::list("notification", &items, &meta))
}

#[utoipa::path(
    post, path = "/stripe/notifications/{notification_id}/retry", tag = "notifications",
    params(("notification_id" = String, Path, description = "The notification's unique id")),
    responses(
        (status = 202, description = "Due again now, with a fresh count of attempts (the earlier attempts stay in its delivery_log)", body = NotificationAttributes),
        (status = 403, description = "Admins only"),
        (status = 404, description = "No such notification in this app"),
        (status = 409, description = "Still waiting for delivery: nothing to retry"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn retry_notification(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin(WHO)?;
    let id = path.into_inner();
    let tenant_id = caller.tenant.id.clone();
    let wanted = id.clone();
    let retried = state
        .db
        .run(move |conn| Ok::<_, ApiError>(notifications::retry(conn, &tenant_id, &wanted)?))
        .await?;
    match retried {
        notifications::Retried::Queued(queued) => {
            let (row, attempts) = *queued;
            let id = row.id.clone();
            Ok(jsonapi::resource(
                StatusCode::ACCEPTED,
                "notification",
                &id,
                &attributes(row, attempts),
            ))
        }
        notifications::Retried::StillPending => Err(ApiError::new(
            StatusCode::CONFLICT,
            "notification_pending",
            "Conflict",
            format!("Notification {id:?} is still waiting for delivery: nothing to retry."),
        )),
        notifications::Retried::Missing => Err(ApiError::not_found(format!(
            "No notification {id:?} in this app."
        ))),
    }
}
