//! `GET /stripe/webhooks` and `POST /stripe/webhooks` (admins only).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::Value;

use crate::caller::Caller;
use crate::db::webhook_endpoints::WebhookEndpointRow;
use crate::error::ApiError;
use crate::http::jsonapi::{self, PageMeta, parse_body, timestamp};
use crate::services::webhook_endpoints::{
    self, CreateWebhookFields, UpdateWebhookFields, WebhookStore,
};
use crate::state::AppState;

/// A webhook endpoint as clients read it (API_CONTRACT.md, GET/POST /stripe/webhooks).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookAttributes {
    pub unique_id: String,
    pub url_id: String,
    pub url: String,
    pub events: Vec<String>,
    /// Same as `events`.
    pub enabled_events: Vec<String>,
    /// enabled or disabled
    pub status: String,
    pub stripe_endpoint_id: String,
    /// Only in the create response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
    /// Only in the answer to a secret roll: until when the previous secrets still verify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_expires_at: Option<String>,
    pub created_at: String,
}

impl WebhookAttributes {
    /// The endpoint as clients read it (the CLI prints the same).
    pub(crate) fn new(row: WebhookEndpointRow, signing_secret: Option<String>) -> Self {
        let events: Vec<String> = serde_json::from_str(&row.events).unwrap_or_default();
        Self {
            unique_id: row.id,
            url_id: row.url_id,
            url: row.url,
            enabled_events: events.clone(),
            events,
            status: row.status,
            stripe_endpoint_id: row.stripe_endpoint_id,
            signing_secret,
            previous_expires_at: None,
            created_at: timestamp(row.created_at),
        }
    }
}

const KIND: &str = "stripe_webhook";

#[utoipa::path(
    get, path = "/stripe/webhooks", tag = "webhooks",
    responses(
        (status = 200, description = "The app's webhook endpoints, newest first (never their secrets)", body = [WebhookAttributes]),
        (status = 403, description = "Not an admin"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn list_webhooks(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin("manage webhook endpoints")?;
    let rows = webhook_endpoints::list(&WebhookStore::of(&state), &caller).await?;
    let total = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let items: Vec<(String, WebhookAttributes)> = rows
        .into_iter()
        .map(|row| (row.id.clone(), WebhookAttributes::new(row, None)))
        .collect();
    Ok(jsonapi::list(
        KIND,
        &items,
        &PageMeta::new(1, total.max(1), total),
    ))
}

#[utoipa::path(
    post, path = "/stripe/webhooks", tag = "webhooks",
    request_body(content = CreateWebhookFields, description = "Wrapped as {\"webhook\": {...}}"),
    responses(
        (status = 201, description = "The endpoint, registered at Stripe; signing_secret shown this once", body = WebhookAttributes),
        (status = 403, description = "Not an admin"),
        (status = 422, description = "No events, an unknown event type, or a bad url"),
        (status = 502, description = "Stripe unreachable, or it failed"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn create_webhook(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin("manage webhook endpoints")?;
    let (fields, at) = parse_body::<CreateWebhookFields>(body.into_inner(), "webhook")?;
    let new = webhook_endpoints::parse(fields, &at)?;
    let (row, secret) = webhook_endpoints::create(&WebhookStore::of(&state), &caller, new).await?;
    let id = row.id.clone();
    Ok(jsonapi::resource(
        StatusCode::CREATED,
        KIND,
        &id,
        &WebhookAttributes::new(row, Some(secret)),
    ))
}

/// A rolled endpoint as clients read it: its attributes and when its previous secrets stop
/// verifying (the CLI prints the same).
pub(crate) fn rolled_attributes(rolled: webhook_endpoints::RolledSecret) -> WebhookAttributes {
    let mut attributes = WebhookAttributes::new(rolled.endpoint, None);
    attributes.previous_expires_at = Some(timestamp(rolled.previous_expires_at));
    attributes
}

#[utoipa::path(
    post, path = "/stripe/webhooks/{webhook_id}/secrets", tag = "webhooks",
    params(("webhook_id" = String, Path, description = "Our unique id or the url_id")),
    request_body(content = crate::services::webhook_endpoints::RollSecretFields, description = "Wrapped as {\"secret\": {...}}"),
    responses(
        (status = 201, description = "The new secret verifies now; the previous ones until previous_expires_at", body = WebhookAttributes),
        (status = 403, description = "Not an admin"),
        (status = 404, description = "No such endpoint in this app"),
        (status = 422, description = "No whsec_ secret, or an overlap outside 0..86400"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn roll_secret(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin("manage webhook endpoints")?;
    let (fields, at) = parse_body::<crate::services::webhook_endpoints::RollSecretFields>(
        body.into_inner(),
        "secret",
    )?;
    let (secret, overlap) = webhook_endpoints::parse_roll(fields, &at)?;
    let rolled = webhook_endpoints::roll_secret(
        &WebhookStore::of(&state),
        &caller,
        &path.into_inner(),
        secret,
        overlap,
    )
    .await?;
    let attributes = rolled_attributes(rolled);
    Ok(jsonapi::resource(
        StatusCode::CREATED,
        KIND,
        &attributes.unique_id.clone(),
        &attributes,
    ))
}

#[utoipa::path(
    put, path = "/stripe/webhooks/{webhook_id}", tag = "webhooks",
    params(("webhook_id" = String, Path, description = "Our unique id or the url_id")),
    request_body(content = UpdateWebhookFields, description = "Wrapped as {\"webhook\": {...}}"),
    responses(
        (status = 200, description = "Changed at Stripe, then here. A disabled endpoint's deliveries are refused with 410", body = WebhookAttributes),
        (status = 403, description = "Not an admin"),
        (status = 404, description = "No such endpoint in this app"),
        (status = 422, description = "Nothing to change, a status other than enabled/disabled, or an unknown event type"),
        (status = 502, description = "Stripe unreachable, or it failed"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn update_webhook(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin("manage webhook endpoints")?;
    let (fields, at) = parse_body::<UpdateWebhookFields>(body.into_inner(), "webhook")?;
    let change = webhook_endpoints::parse_update(fields, &at)?;
    let row = webhook_endpoints::update(
        &WebhookStore::of(&state),
        &caller,
        &path.into_inner(),
        change,
    )
    .await?;
    let id = row.id.clone();
    Ok(jsonapi::resource(
        StatusCode::OK,
        KIND,
        &id,
        &WebhookAttributes::new(row, None),
    ))
}

#[utoipa::path(
    delete, path = "/stripe/webhooks/{webhook_id}", tag = "webhooks",
    params(("webhook_id" = String, Path, description = "Our unique id or the url_id")),
    responses(
        (status = 200, description = "Deleted at Stripe and here (the endpoint as it was); its URL answers 404 after", body = WebhookAttributes),
        (status = 403, description = "Not an admin"),
        (status = 404, description = "No such endpoint in this app"),
        (status = 502, description = "Stripe unreachable, or it failed"),
    ),
    security(("app_id" = [], "bearer" = []))
)]
pub async fn delete_webhook(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin("manage webhook endpoints")?;
    let row =
        webhook_endpoints::delete(&WebhookStore::of(&state), &caller, &path.into_inner()).await?;
    let id = row.id.clone();
    Ok(jsonapi::resource(
        StatusCode::OK,
        KIND,
        &id,
        &WebhookAttributes::new(row, None),
    ))
}
