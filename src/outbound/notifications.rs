//! Notifications to the tenant's own app: after a webhook changes the mirror, a compact event
//! (`payment.completed`, `payment.failed`, `refund.completed`, `subscription.created`,
//! `subscription.updated`, `subscription.canceled`, `checkout.completed`) is written to the
//! outbox in the same transaction, and a worker POSTs it to the tenant's `notify_url`, signed
//! like Stripe signs (`Sales-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`), with
//! exponential back-off, at least once. Several instances may run workers: each notification
//! is leased to one at a time. Within a worker each tenant's notifications are sent by a task
//! of their own, so one tenant's app that hangs delays no other tenant's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::config::Settings;
use crate::crypto::MasterKey;
use crate::db::Database;
use crate::db::notifications::{self as outbox, Attempt, Due, NewNotification, Next};
use crate::error::ApiError;
use crate::outbound::egress::EgressPolicy;

/// Notifications one claim takes.
const BATCH: i64 = 20;
/// At most this many of one tenant's in a claim, sent one after another by the tenant's task.
const PER_TENANT: i64 = 5;
/// Tenants delivered to at once (about: one claim may go a little past it), each by a task of
/// its own. A tenant whose URL hangs (each attempt up to [`DELIVERY_TIMEOUT`]) holds up only
/// its own task: the worker goes on claiming and sending the others' notifications meanwhile,
/// leaving out the tenants it is still delivering to.
const TENANTS_AT_ONCE: usize = 16;
/// Longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);
/// The tenant's app must answer within this.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed notification is reserved for the worker that claimed it: longer than a
/// tenant's task, which sends its notifications one after another, each for up to
/// [`DELIVERY_TIMEOUT`]; a shorter lease would run out mid-task and let another instance
/// send the same notification again.
const LEASE: Duration = Duration::from_secs(DELIVERY_TIMEOUT.as_secs() * PER_TENANT as u64 + 60);
// Checked when the crate is built: the lease outlasts the slowest task, and one tenant
// cannot fill a claim.
const _: () = assert!(LEASE.as_secs() > DELIVERY_TIMEOUT.as_secs() * PER_TENANT as u64);
const _: () = assert!(PER_TENANT < BATCH);

/// The notification an applied Stripe event of `kind` causes, with its data; `None` for the
/// others.
pub fn for_event(kind: &str, object: &Value) -> Option<(&'static str, Value)> {
    let text = |key: &str| object.get(key).cloned().unwrap_or(Value::Null);
    let id_of = |key: &str| match object.get(key) {
        Some(Value::Object(o)) => o.get("id").cloned().unwrap_or(Value::Null),
        Some(other) => other.clone(),
        None => Value::Null,
    };
    let payment = || {
        json!({"payment_intent": text("id"), "amount": text("amount"),
               "currency": text("currency"), "status": text("status"), "customer": id_of("customer")})
    };
    let subscription = || {
        json!({"subscription": text("id"), "customer": id_of("customer"), "status": text("status"),
               "cancel_at_period_end": text("cancel_at_period_end")})
    };
    Some(match kind {
        "payment_intent.succeeded" => ("payment.completed", payment()),
        "payment_intent.payment_failed" => ("payment.failed", payment()),
        "refund.created" | "refund.updated" | "charge.refund.updated"
            if object.get("status").and_then(Value::as_str) == Some("succeeded") =>
        {
            (
                "refund.completed",
                json!({"refund": text("id"), "payment_intent": id_of("payment_intent"),
                       "amount": text("amount"), "currency": text("currency")}),
            )
        }
        "customer.subscription.created" => ("subscription.created", subscription()),
        "customer.subscription.updated" => ("subscription.updated", subscription()),
        "customer.subscription.deleted" => ("subscription.canceled", subscription()),
        "checkout.session.completed" => (
            "checkout.completed",
            json!({"session": text("id"), "customer": id_of("customer"), "mode": text("mode"),
                   "payment_status": text("payment_status"), "amount_total": text("amount_total"),
                   "currency": text("currency")}),
        ),
        _ => return None,
    })
}

/// The outbox row for a notification caused by a Stripe event.
pub fn outbox_row<'a>(
    tenant_id: &'a str,
    stripe_event_id: &'a str,
    event_type: &'a str,
    data: &Value,
) -> NewNotification<'a> {
    let id = crate::db::new_row_id();
    let now = Utc::now();
    let payload = json!({"id": id, "type": event_type, "created": now.timestamp(),
                         "stripe_event_id": stripe_event_id, "data": data});
    NewNotification {
        id,
        tenant_id,
        event_type,
        source_event_id: stripe_event_id,
        payload: payload.to_string(),
        status: outbox::PENDING,
        attempts: 0,
        next_attempt_at: now.naive_utc(),
        created_at: now.naive_utc(),
    }
}

/// What the delivery worker works with.
pub struct Worker {
    pub db: Database,
    /// Opens the tenants' notify secrets.
    pub master: MasterKey,
    /// Which URLs may be called (`crate::outbound::egress`).
    pub egress: EgressPolicy,
    /// The `notify_*` settings.
    pub settings: Settings,
}

/// Starts this instance's worker (unless turned off by `notify_worker`).
pub fn start_worker(state: Worker) -> Option<WorkerHandle> {
    if !state.settings.notify_worker {
        return None;
    }
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        // Connects only to addresses the egress policy allows; never follows a redirect.
        let client = match state.egress.client(DELIVERY_TIMEOUT) {
            Ok(client) => client,
            Err(err) => {
                tracing::error!(error = %err, "notification worker could not start");
                return;
            }
        };
        let poll = Duration::from_millis(state.settings.notify_poll_ms.max(10));
        let mut stopping = stopping;
        let mut tenants = Tenants {
            state: Arc::new(state),
            client,
            tasks: JoinSet::new(),
            busy: HashMap::new(),
        };
        while !*stopping.borrow() {
            tenants.reap();
            let claimed = if tenants.tasks.len() < TENANTS_AT_ONCE {
                match tenants.claim(&stopping).await {
                    Ok(n) => n,
                    Err(err) => {
                        tracing::warn!(error = %err.detail, "notification worker");
                        0
                    }
                }
            } else {
                0
            };
            // Some were claimed: more may be waiting, of other tenants.
            if claimed > 0 {
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(poll) => {}
                _ = stopping.changed() => {}
                Some(done) = tenants.tasks.join_next_with_id() => tenants.forget(done),
            }
        }
        // Each task finishes the delivery in flight and gives back the rest of its leases.
        while let Some(done) = tenants.tasks.join_next_with_id().await {
            tenants.forget(done);
        }
    });
    Some(WorkerHandle { stop, task })
}

/// A running worker, to stop when the service stops.
pub struct WorkerHandle {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl WorkerHandle {
    /// Lets the deliveries in flight finish, gives the other claimed notifications' leases
    /// back (another instance, or this one restarted, sends them at once instead of after the
    /// lease), and waits up to `grace` for that.
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(grace, self.task).await.is_err() {
            tracing::warn!("the notification worker did not stop within the grace period");
        }
    }
}

/// The tenants the worker is delivering to, each by a task of its own.
struct Tenants {
    state: Arc<Worker>,
    client: reqwest::Client,
    tasks: JoinSet<()>,
    /// Each task's tenant.
    busy: HashMap<tokio::task::Id, String>,
}

impl Tenants {
    /// Claims the due notifications of tenants not being delivered to, and starts a task for
    /// each tenant; returns how many were claimed.
    async fn claim(
        &mut self,
        stopping: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<usize, ApiError> {
        let now = Utc::now().naive_utc();
        let lease_until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
        let busy: Vec<String> = self.busy.values().cloned().collect();
        let due = self
            .state
            .db
            .run(move |conn| {
                Ok::<_, ApiError>(outbox::claim_due(
                    conn,
                    now,
                    lease_until,
                    BATCH,
                    PER_TENANT,
                    &busy,
                )?)
            })
            .await?;
        let count = due.len();
        let mut by_tenant: HashMap<String, Vec<Due>> = HashMap::new();
        for notification in due {
            by_tenant
                .entry(notification.tenant_id.clone())
                .or_default()
                .push(notification);
        }
        for (tenant, due) in by_tenant {
            let task = deliver_in_turn(
                self.state.clone(),
                self.client.clone(),
                due,
                stopping.clone(),
            );
            let id = self.tasks.spawn(task).id();
            self.busy.insert(id, tenant);
        }
        Ok(count)
    }

    /// Forgets the tenants whose tasks have ended.
    fn reap(&mut self) {
        while let Some(done) = self.tasks.try_join_next_with_id() {
            self.forget(done);
        }
    }

    fn forget(&mut self, done: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let id = match done {
            Ok((id, ())) => id,
            Err(err) => {
                tracing::error!(error = %err, "a notification task failed");
                err.id()
            }
        };
        self.busy.remove(&id);
    }
}

/// Delivers one tenant's claimed notifications one after another; at a stop (or a database
/// error) it finishes the delivery in flight and gives the rest's leases back.
async fn deliver_in_turn(
    state: Arc<Worker>,
    client: reqwest::Client,
    due: Vec<Due>,
    stopping: tokio::sync::watch::Receiver<bool>,
) {
    let mut due = due.into_iter();
    for notification in due.by_ref() {
        if let Err(err) = deliver(&state, &client, notification).await {
            tracing::warn!(error = %err.detail, "notification worker");
            break;
        }
        if *stopping.borrow() {
            break;
        }
    }
    let left: Vec<String> = due.map(|d| d.id).collect();
    if !left.is_empty() {
        let released = state
            .db
            .run(move |conn| Ok::<_, ApiError>(outbox::release_leases(conn, &left)?))
            .await;
        if let Err(err) = released {
            tracing::warn!(error = %err.detail, "notification worker: leases not given back");
        }
    }
}

async fn deliver(state: &Worker, client: &reqwest::Client, due: Due) -> Result<(), ApiError> {
    let tenant_id = due.tenant_id.clone();
    let target = state
        .db
        .run(move |conn| Ok::<_, ApiError>(crate::db::tenants::notify_target(conn, &tenant_id)?))
        .await?;
    let started = Instant::now();
    let (url, status_code, error) = match target {
        None => (
            String::new(),
            None,
            Some("the app has no notify_url any more".to_owned()),
        ),
        Some((url, sealed)) => match state.master.decrypt(&sealed) {
            Err(_) => (
                url,
                None,
                Some("the notify secret cannot be decrypted".to_owned()),
            ),
            Ok(_) if let Err(refused) = egress_check(state, &url) => (url, None, Some(refused)),
            Ok(secret) => {
                let t = Utc::now().timestamp();
                let signature = crate::signature::sign(due.payload.as_bytes(), &secret, t);
                let sent = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("sales-signature", signature)
                    .header("sales-event-type", &due.event_type)
                    .body(due.payload.clone())
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status().is_success() => {
                        (url, Some(i64::from(response.status().as_u16())), None)
                    }
                    Ok(response) => {
                        let status = response.status().as_u16();
                        (
                            url,
                            Some(i64::from(status)),
                            Some(format!("answered {status}")),
                        )
                    }
                    Err(err) => (url, None, Some(format!("not delivered: {err}"))),
                }
            }
        },
    };
    let now = Utc::now().naive_utc();
    let attempts = due.attempts + 1;
    let next = match (&error, &url) {
        (None, _) => Next::Delivered,
        (Some(_), url) if url.is_empty() => Next::GiveUp,
        (Some(_), _) if attempts >= state.settings.notify_max_attempts => Next::GiveUp,
        (Some(_), _) => {
            let base = Duration::from_millis(state.settings.notify_retry_base_ms.max(1));
            let wait = base
                .saturating_mul(2u32.saturating_pow(u32::try_from(attempts - 1).unwrap_or(31)))
                .min(MAX_BACKOFF);
            Next::RetryAt(now + chrono::Duration::from_std(wait).unwrap_or_default())
        }
    };
    crate::metrics::notification(match (&next, status_code) {
        (Next::Delivered, _) => "delivered",
        (Next::GiveUp, _) => "given_up",
        (Next::RetryAt(_), Some(_)) => "refused",
        (Next::RetryAt(_), None) => "unreachable",
    });
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    state
        .db
        .run(move |conn| {
            let attempt = Attempt {
                url: &url,
                status_code,
                error: error.as_deref(),
                duration_ms,
            };
            Ok::<_, ApiError>(outbox::record_attempt(conn, &due, &attempt, next, now)?)
        })
        .await
}

/// The send-time egress check: an IP-literal host never reaches the client's resolver, and a
/// URL stored before the policy (or under a looser one) is refused here.
fn egress_check(state: &Worker, url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|_| format!("{url:?} is not a URL"))?;
    state
        .egress
        .check_target(&parsed)
        .map(|_| ())
        .map_err(|err| format!("refused by the egress policy: {err}"))
}

/// Sets the tenant's notify_url with a new signing secret (returned, to be shown once), or
/// with `None` turns notifications off.
/// Instances' receivers learn of the change within their endpoint cache's 30 s.
pub fn set_target(
    master: &crate::crypto::MasterKey,
    conn: &mut crate::db::AnyConnection,
    tenant_id: &str,
    url: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let secret = url.map(|_| crate::crypto::random_token("nsec_", 24));
    let sealed = secret.as_deref().map(|s| master.encrypt(s));
    let target = url.zip(sealed.as_deref());
    if !crate::db::tenants::set_notify_target(conn, tenant_id, target)? {
        return Err(ApiError::not_found(format!("No app {tenant_id:?}.")));
    }
    Ok(secret)
}
