//! Webhook endpoints: registered at Stripe for the tenant, pointing at this service's own
//! receiver unless a URL is given; the signing secret is stored encrypted and shown once.

use chrono::Utc;
use serde::Deserialize;

use crate::caller::Caller;
use crate::crypto::{MasterKey, random_token};
use crate::db::Database;
use crate::db::webhook_endpoints::{self as rows, NewWebhookEndpoint, WebhookEndpointRow};
use crate::domain::{optional_text, parse_web_url};
use crate::error::ApiError;
use crate::receiver::Endpoints;
use crate::state::AppState;
use crate::stripe::is_known_event_type;

/// What the webhook endpoint use cases work with: the database, the master key (secrets are
/// stored encrypted), the service's public URL (where Stripe delivers) and, in the service,
/// its receiver's endpoint cache, told of each change at once. The CLI has no cache of its
/// own: running instances read its changes within `tenant_cache_secs`.
pub struct WebhookStore<'a> {
    pub db: &'a Database,
    pub master: &'a MasterKey,
    pub public_url: &'a str,
    pub endpoints: Option<&'a Endpoints>,
}

impl<'a> WebhookStore<'a> {
    /// The service's: its database, key, public URL and receiver cache.
    pub fn of(state: &'a AppState) -> Self {
        Self {
            db: &state.db,
            master: &state.master,
            public_url: state.settings.public_url(),
            endpoints: Some(state.receiver.endpoints()),
        }
    }

    /// Drops the endpoint from this instance's receiver cache (its secrets or state changed,
    /// or a delivery may have found its url_id unknown a moment before it was stored).
    fn forget(&self, url_id: &str) {
        if let Some(endpoints) = self.endpoints {
            endpoints.forget(url_id);
        }
    }
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct CreateWebhookFields {
    /// Stripe event types (or `*`): the spec's name.
    pub events: Option<Vec<String>>,
    /// The SDK's name for `events`.
    pub enabled_events: Option<Vec<String>>,
    /// Where Stripe should deliver; default: this service's receiver for a new url_id.
    pub url: Option<String>,
}

#[derive(Debug)]
pub struct NewWebhook {
    pub events: Vec<String>,
    pub url: Option<String>,
}

pub fn parse(fields: CreateWebhookFields, at: &str) -> Result<NewWebhook, ApiError> {
    let (events, pointer) = match (fields.events, fields.enabled_events) {
        (Some(e), _) => (e, format!("{at}/events")),
        (None, Some(e)) => (e, format!("{at}/enabled_events")),
        (None, None) => {
            return Err(ApiError::validation(
                format!("{at}/events"),
                "events is required: a list of Stripe event types such as checkout.session.completed, or [\"*\"]",
            ));
        }
    };
    let out = parse_events(&events, &pointer)?;
    let url = match optional_text(fields.url, &format!("{at}/url"), 2048)? {
        Some(raw) => Some(parse_web_url(&raw, &format!("{at}/url"))?),
        None => None,
    };
    Ok(NewWebhook { events: out, url })
}

/// A non-empty list of Stripe event types (or `*`), trimmed and without repeats.
fn parse_events(events: &[String], pointer: &str) -> Result<Vec<String>, ApiError> {
    if events.is_empty() {
        return Err(ApiError::validation(pointer, "events must not be empty"));
    }
    let mut out: Vec<String> = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        let event = event.trim();
        if !is_known_event_type(event) {
            return Err(ApiError::validation(
                format!("{pointer}/{i}"),
                format!("{event:?} is not a Stripe event type"),
            ));
        }
        if !out.iter().any(|e| e == event) {
            out.push(event.to_owned());
        }
    }
    Ok(out)
}

/// The fields of `PUT /stripe/webhooks/{id}` (body key `webhook`).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct UpdateWebhookFields {
    /// `enabled` or `disabled`.
    pub status: Option<String>,
    /// Replaces the event types (Stripe event types or `*`).
    pub events: Option<Vec<String>>,
    /// The SDK's name for `events`.
    pub enabled_events: Option<Vec<String>>,
}

/// A checked change: `disabled` and/or the new event types.
#[derive(Debug)]
pub struct WebhookChange {
    pub disabled: Option<bool>,
    pub events: Option<Vec<String>>,
}

pub fn parse_update(fields: UpdateWebhookFields, at: &str) -> Result<WebhookChange, ApiError> {
    let disabled = match fields.status.as_deref().map(str::trim) {
        None => None,
        Some("enabled") => Some(false),
        Some(rows::DISABLED) => Some(true),
        Some(other) => {
            return Err(ApiError::validation(
                format!("{at}/status"),
                format!("status must be enabled or disabled (got {other:?})"),
            ));
        }
    };
    let events = match (fields.events, fields.enabled_events) {
        (Some(e), _) => Some(parse_events(&e, &format!("{at}/events"))?),
        (None, Some(e)) => Some(parse_events(&e, &format!("{at}/enabled_events"))?),
        (None, None) => None,
    };
    if disabled.is_none() && events.is_none() {
        return Err(ApiError::validation(
            at,
            "nothing to change: send status (enabled or disabled) and/or events",
        ));
    }
    Ok(WebhookChange { disabled, events })
}

/// The tenant's endpoint by our unique id or url_id; 404 for another tenant's.
async fn find(
    store: &WebhookStore<'_>,
    caller: &Caller,
    any_id: &str,
) -> Result<WebhookEndpointRow, ApiError> {
    let tenant_id = caller.tenant.id.clone();
    let wanted = any_id.to_owned();
    store
        .db
        .run(move |conn| rows::find_for_tenant(conn, &tenant_id, &wanted).map_err(ApiError::from))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No webhook endpoint {any_id:?} in this app.")))
}

/// Changes the endpoint at Stripe, then records Stripe's answer. A disabled endpoint's
/// deliveries are refused by the receiver (410), on every instance within its cache's life.
pub async fn update(
    store: &WebhookStore<'_>,
    caller: &Caller,
    any_id: &str,
    change: WebhookChange,
) -> Result<WebhookEndpointRow, ApiError> {
    let endpoint = find(store, caller, any_id).await?;
    let answer = caller
        .tenant
        .stripe
        .update_webhook_endpoint(
            &endpoint.stripe_endpoint_id,
            change.disabled,
            change.events.as_deref(),
            caller.stripe_key(),
        )
        .await?;
    let events = serde_json::to_string(&answer.enabled_events).map_err(ApiError::internal)?;
    let id = endpoint.id.clone();
    let row = store
        .db
        .run(move |conn| {
            rows::set_state(conn, &id, &answer.status, &events).map_err(ApiError::from)
        })
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!("No webhook endpoint {any_id:?} in this app."))
        })?;
    store.forget(&row.url_id);
    Ok(row)
}

/// Deletes the endpoint at Stripe, then here (with its secrets): its URL answers 404 after.
/// Returns the endpoint as it was.
pub async fn delete(
    store: &WebhookStore<'_>,
    caller: &Caller,
    any_id: &str,
) -> Result<WebhookEndpointRow, ApiError> {
    let endpoint = find(store, caller, any_id).await?;
    caller
        .tenant
        .stripe
        .delete_webhook_endpoint(&endpoint.stripe_endpoint_id, caller.stripe_key())
        .await?;
    let id = endpoint.id.clone();
    store
        .db
        .run(move |conn| rows::delete(conn, &id).map_err(ApiError::from))
        .await?;
    store.forget(&endpoint.url_id);
    Ok(endpoint)
}

/// Registers the endpoint at Stripe and stores it with its secret. Returns the row and the
/// secret (for the one response that shows it).
pub async fn create(
    store: &WebhookStore<'_>,
    caller: &Caller,
    new: NewWebhook,
) -> Result<(WebhookEndpointRow, String), ApiError> {
    // A retried request (same Idempotency-Key) must send Stripe the same URL, or Stripe refuses
    // the replay: its url_id is derived from the caller's key, still unguessable without the
    // master key.
    let url_id = match caller.stripe_key() {
        Some(key) => store.master.derived_token(
            "wh_",
            &format!(
                "webhook url_id\0{}\0{}\0{}",
                caller.tenant.id,
                caller.subject,
                key.client_key()
            ),
            16,
        ),
        None => random_token("wh_", 16),
    };
    let url = new
        .url
        .unwrap_or_else(|| format!("{}/stripe/{url_id}/webhook", store.public_url));
    let created = caller
        .tenant
        .stripe
        .create_webhook_endpoint(&url, &new.events, caller.stripe_key())
        .await?;
    let secret_enc = store.master.encrypt(&created.secret);
    let events = serde_json::to_string(&created.enabled_events).map_err(ApiError::internal)?;
    let tenant_id = caller.tenant.id.clone();
    let row = store
        .db
        .run(move |conn| {
            let now = Utc::now().naive_utc();
            rows::insert(
                conn,
                &NewWebhookEndpoint {
                    id: &crate::db::new_row_id(),
                    tenant_id: &tenant_id,
                    url_id: &url_id,
                    stripe_endpoint_id: &created.id,
                    url: &created.url,
                    events: &events,
                    status: &created.status,
                    created_at: now,
                    updated_at: now,
                },
                &secret_enc,
            )
            .map_err(ApiError::from)
        })
        .await?;
    // A delivery that came before the row (Stripe is quick) must not keep it unknown here.
    store.forget(&row.url_id);
    Ok((row, created.secret))
}

pub async fn list(
    store: &WebhookStore<'_>,
    caller: &Caller,
) -> Result<Vec<WebhookEndpointRow>, ApiError> {
    let tenant_id = caller.tenant.id.clone();
    store
        .db
        .run(move |conn| rows::list(conn, &tenant_id).map_err(ApiError::from))
        .await
}

/// A secret rolled at Stripe (Dashboard → webhook → roll secret), given to us so both verify
/// during the overlap (STRIPE_RULES.md, secret rotation).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct RollSecretFields {
    /// The new `whsec_...` secret Stripe shows after the roll.
    pub signing_secret: Option<String>,
    /// Seconds the previous secret(s) keep verifying: 0 retires them now; at most 86400
    /// (Stripe's longest overlap); default 86400.
    pub expire_previous_in: Option<i64>,
}

#[derive(Debug)]
pub struct RolledSecret {
    pub endpoint: WebhookEndpointRow,
    pub previous_expires_at: chrono::NaiveDateTime,
}

pub fn parse_roll(fields: RollSecretFields, at: &str) -> Result<(String, i64), ApiError> {
    let secret = optional_text(fields.signing_secret, &format!("{at}/signing_secret"), 255)?
        .filter(|s| s.starts_with("whsec_") && s.len() > 10)
        .ok_or_else(|| {
            ApiError::validation(
                format!("{at}/signing_secret"),
                "signing_secret is required: the whsec_... secret Stripe shows after rolling",
            )
        })?;
    let overlap = crate::domain::bounded(
        fields.expire_previous_in.unwrap_or(86_400),
        0,
        86_400,
        &format!("{at}/expire_previous_in"),
        "expire_previous_in",
    )?;
    Ok((secret, overlap))
}

/// Stores the rolled secret for the tenant's endpoint (our unique id or url_id); 404 for an
/// endpoint of another tenant.
pub async fn roll_secret(
    store: &WebhookStore<'_>,
    caller: &Caller,
    any_id: &str,
    secret: String,
    overlap_secs: i64,
) -> Result<RolledSecret, ApiError> {
    let secret_enc = store.master.encrypt(&secret);
    let tenant_id = caller.tenant.id.clone();
    let wanted = any_id.to_owned();
    let previous_expires_at = Utc::now().naive_utc() + chrono::Duration::seconds(overlap_secs);
    let endpoint = store
        .db
        .run(move |conn| {
            let endpoint = rows::find_for_tenant(conn, &tenant_id, &wanted)?.ok_or_else(|| {
                ApiError::not_found(format!("No webhook endpoint {wanted:?} in this app."))
            })?;
            rows::add_secret(conn, &endpoint.id, &secret_enc, previous_expires_at)?;
            Ok::<_, ApiError>(endpoint)
        })
        .await?;
    store.forget(&endpoint.url_id);
    Ok(RolledSecret {
        endpoint,
        previous_expires_at,
    })
}
