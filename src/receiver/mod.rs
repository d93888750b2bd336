//! The webhook receiver: verify, store once, apply to the mirror in the same transaction, and
//! only then acknowledge (STRIPE_RULES.md, Delivery).
//!
//! Ordering: each mirrored row keeps a watermark, the Stripe `created` second of the state it
//! holds. An event older than the row is stored and skipped; a newer one is applied; one of
//! the same second cannot be ordered by `created` alone, so the object is re-read from Stripe
//! after the commit and that current state is written (the safe rule; the event is marked
//! `refresh_pending` until then, and a retried delivery completes the refresh).

//!
//! The files, by job: [`verify`] (signature and event), [`compact`] (the stored body),
//! [`endpoints`] (the endpoint cache),
//! [`writer`] (group commit), [`batch`] (storing deliveries), [`target`] and [`apply`] (what
//! an event writes to the mirror), [`notify`] (the outbox), [`refresh`] (same-second ties).

mod apply;
mod batch;
mod compact;
mod endpoints;
mod event;
pub mod listed;
mod notify;
mod refresh;
mod target;
mod verify;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use chrono::Utc;

use crate::crypto::MasterKey;
use crate::db::Database;
use crate::db::events;
use crate::error::ApiError;
use crate::signature::SignatureError;
use crate::tenant_cache::TenantCache;
pub use apply::record_answer;
pub use endpoints::{Endpoints, ReceiverEndpoint};
use event::Pending;
use verify::{event_of, parse_event, signature_error, verify};
pub use writer::{EventWriter, Limits as WriterLimits};

/// What the receiver works with: the database, the tenants (a tie is re-read with the
/// tenant's Stripe client), the endpoint cache and the batch writer.
pub struct Receiver {
    db: Database,
    tenants: Arc<TenantCache>,
    endpoints: Endpoints,
    /// Batches the receiver's writes (group commit).
    events: EventWriter,
}

impl Receiver {
    /// Writer threads running now.
    pub fn writers_alive(&self) -> usize {
        self.events.writers_alive()
    }

    /// Deliveries waiting for a writer, and how many may.
    pub fn backlog(&self) -> (usize, usize) {
        self.events.backlog()
    }

    /// Starts the batch writer threads (`writers`: see [`EventWriter::start`]); endpoints are
    /// cached for `endpoint_ttl`.
    pub fn new(
        db: Database,
        master: MasterKey,
        tenants: Arc<TenantCache>,
        writers: u32,
        limits: WriterLimits,
        endpoint_ttl: Duration,
    ) -> Self {
        let events = EventWriter::start(db.clone(), writers, limits);
        Self {
            endpoints: Endpoints::new(db.clone(), master, endpoint_ttl),
            db,
            tenants,
            events,
        }
    }

    /// The cached endpoints (forgotten when they change here).
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }
}

/// Handles one delivery; `Ok` means the event is durably stored (and applied as far as it can
/// be) and Stripe may be told 200.
pub async fn receive(
    receiver: &Receiver,
    url_id: &str,
    signature_header: Option<&str>,
    body: &Bytes,
) -> Result<&'static str, ApiError> {
    let unknown = || ApiError::not_found("No webhook endpoint has this URL.");
    let now = Utc::now().timestamp();
    let mut endpoint = receiver
        .endpoints
        .get(url_id, false)
        .await?
        .ok_or_else(unknown)?;
    let verified = verify(signature_header, body, endpoint.live_secrets(now), now).await?;
    match verified {
        Ok(()) => {}
        // The secrets may have been rolled since they were cached (through another instance).
        Err(SignatureError::Mismatch) if endpoint.age() > Duration::from_secs(1) => {
            endpoint = receiver
                .endpoints
                .get(url_id, true)
                .await?
                .ok_or_else(unknown)?;
            verify(signature_header, body, endpoint.live_secrets(now), now)
                .await?
                .map_err(signature_error)?;
        }
        Err(err) => return Err(signature_error(err)),
    }
    // Checked once the delivery is known to be Stripe's: nobody else learns the state.
    if endpoint.disabled {
        return Err(ApiError::new(
            actix_web::http::StatusCode::GONE,
            "endpoint_disabled",
            "Gone",
            "This webhook endpoint is disabled; its deliveries are not accepted.",
        ));
    }
    if endpoint.tenant_disabled {
        return Err(ApiError::tenant_disabled_delivery());
    }
    let event = parse_event(body)?;
    let pending = Pending {
        tenant_id: endpoint.tenant_id.clone(),
        endpoint_id: endpoint.id.clone(),
        event,
        payload: compact::compact_json(body),
        notify: endpoint.notify,
    };
    store(receiver, pending).await
}

/// Stores a verified delivery for its tenant (once), applies it, and re-reads a same-second
/// tie: the path every delivery takes, whichever endpoint it came through.
async fn store(receiver: &Receiver, pending: Pending) -> Result<&'static str, ApiError> {
    let (tenant_id, event) = (pending.tenant_id.clone(), pending.event.clone());
    crate::telemetry::record_tenant(&tenant_id);
    crate::telemetry::record_event(&event.id, event.object_id.as_deref());
    // Any storage failure is transient for Stripe: a non-2xx makes it retry.
    let stored = receiver
        .events
        .write(pending)
        .await
        .map_err(ApiError::busy)?;
    if stored == events::REFRESH_PENDING {
        refresh::refresh(&receiver.db, &receiver.tenants, &tenant_id, &event).await?;
        return Ok(events::REFRESHED);
    }
    Ok(stored)
}

/// The `endpoint_id` stored with events recovered by reconciliation (listed from Stripe).
pub const RECONCILE_ENDPOINT: &str = "reconcile";

/// Feeds an event listed from Stripe (`GET /v1/events`, reconciliation) through the path a
/// delivery takes: stored once per tenant (one already delivered is a `duplicate`, changing
/// nothing), applied under the watermark rule, announced to the tenant's app.
pub async fn recover(
    receiver: &Receiver,
    tenant_id: &str,
    notify: bool,
    event: &serde_json::Value,
) -> Result<&'static str, ApiError> {
    let parsed = event_of(event)?;
    let pending = Pending {
        tenant_id: tenant_id.to_owned(),
        endpoint_id: RECONCILE_ENDPOINT.to_owned(),
        event: parsed,
        // serde_json writes compact JSON: the form a delivery is stored in.
        payload: event.to_string(),
        notify,
    };
    store(receiver, pending).await
}

/// The `endpoint_id` stored with events that came through the platform's Connect endpoint.
pub const PLATFORM_ENDPOINT: &str = "platform";

/// What an event of a connected account is routed by.
struct Routing {
    account: Option<String>,
    livemode: bool,
}

/// Handles one delivery to the platform's Connect endpoint (`POST /stripe/public/webhook`):
/// verified against the platform's secrets, routed by the event's `account` and `livemode`
/// to the tenant connected to it, then stored and applied as any delivery of that tenant.
/// An event of an account no tenant holds is acknowledged and dropped (`unrouted`), or
/// Stripe would retry it for days. `account.application.deauthorized` disconnects the tenant
/// (unless it connected again after the event).
pub async fn receive_platform(
    receiver: &Receiver,
    secrets: Vec<String>,
    signature_header: Option<&str>,
    body: &Bytes,
) -> Result<&'static str, ApiError> {
    if secrets.is_empty() {
        return Err(ApiError::not_found(
            "This service has no platform webhook (stripe_platform_webhook_secrets is not set).",
        ));
    }
    let now = Utc::now().timestamp();
    verify(signature_header, body, secrets, now)
        .await?
        .map_err(signature_error)?;
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| {
        ApiError::bad_request("invalid_event", "The body is not a JSON Stripe event.")
    })?;
    let event = event_of(&value)?;
    let routing = Routing {
        account: value
            .get("account")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned),
        livemode: value
            .get("livemode")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false),
    };
    let Some(account) = routing.account.filter(|a| !a.is_empty() && a.len() <= 255) else {
        tracing::info!(stripe.event_id = %event.id, "platform event without an account: not a tenant's");
        return Ok(UNROUTED);
    };
    let livemode = routing.livemode;
    let lookup = account.clone();
    let route = receiver
        .db
        .run(move |conn| crate::db::connect::route(conn, &lookup, livemode).map_err(ApiError::from))
        .await?;
    let Some(crate::db::connect::Route {
        tenant_id,
        notify,
        disabled: route_disabled,
    }) = route
    else {
        tracing::info!(stripe.event_id = %event.id, stripe.account = %account, livemode, "platform event for an account no tenant holds");
        return Ok(UNROUTED);
    };
    if event.kind == DEAUTHORIZED {
        let (tenant, created) = (tenant_id.clone(), event.created);
        let removed = receiver
            .db
            .run(move |conn| {
                let by = chrono::DateTime::from_timestamp(created.saturating_add(1), 0)
                    .map(|t| t.naive_utc());
                // Connected before the second after the event: the event is about this
                // connection (an older one's deauthorization must not undo a newer one).
                match by {
                    Some(by) => crate::db::connect::disconnect(
                        conn,
                        &tenant,
                        Some(by),
                        Utc::now().naive_utc(),
                    )
                    .map_err(ApiError::from),
                    None => Ok(false),
                }
            })
            .await?;
        if removed {
            receiver.tenants.forget(&tenant_id);
            tracing::warn!(tenant.id = %tenant_id, stripe.account = %account, "stripe account deauthorized: the tenant is disconnected");
        }
    }
    // After a deauthorization is applied (the platform's access is gone, whatever the app's
    // state): a disabled app's events wait for Stripe's retries.
    if route_disabled {
        return Err(ApiError::tenant_disabled_delivery());
    }
    let pending = Pending {
        tenant_id,
        endpoint_id: PLATFORM_ENDPOINT.to_owned(),
        event,
        payload: compact::compact_json(body),
        notify,
    };
    store(receiver, pending).await
}

/// The outcome of a platform event no tenant holds.
pub const UNROUTED: &str = "unrouted";
/// Stripe's event when a connected account removes the platform's access.
const DEAUTHORIZED: &str = "account.application.deauthorized";
