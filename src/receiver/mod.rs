//! The webhook receiver: verify, store once, apply to the mirror in the same transaction, and
//! only then acknowledge (STRIPE_RULES.md, Delivery).
//!
//! Ordering: each mirrored row keeps a watermark, the Stripe `created` second of the state it
//! holds. An event older than the row is stored and skipped; a newer one is applied; one of
//! the same second cannot be ordered by `created` alone, so the object is re-read from Stripe
//! after the commit and that current state is written (the safe rule; the event is marked
//! `refresh_pending` until then, and a retried delivery completes the refresh).

use chrono::Utc;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde_json::Value;

use crate::db::events::{self, NewEvent};
use crate::db::{self, AnyConnection, Applied, DbError, Freshness};
use crate::error::ApiError;
use crate::gateway::CustomerSnapshot;
use crate::gateway::checkout::CheckoutSnapshot;
use crate::gateway::payments::PaymentSnapshot;
use crate::gateway::subscriptions::SubscriptionSnapshot;
use crate::signature::{self, SignatureError};
use crate::state::AppState;

/// What an event changes in the mirror.
#[derive(Debug, Clone)]
enum Target {
    Customer(CustomerSnapshot),
    Subscription(SubscriptionSnapshot),
    Payment(PaymentSnapshot),
    Checkout(CheckoutSnapshot),
    /// A type we store but do not mirror (yet).
    Nothing,
}

/// The parts of an event the receiver relies on.
#[derive(Debug, Clone)]
struct Event {
    id: String,
    kind: String,
    created: i64,
    object_id: Option<String>,
    api_version: Option<String>,
    target: Target,
}

fn parse_event(body: &[u8]) -> Result<Event, ApiError> {
    let bad = |detail: &str| ApiError::bad_request("invalid_event", detail.to_owned());
    let value: Value =
        serde_json::from_slice(body).map_err(|_| bad("The body is not a JSON Stripe event."))?;
    let id = value
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| bad("The event has no id."))?;
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("The event has no type."))?;
    let created = value
        .get("created")
        .and_then(Value::as_i64)
        .ok_or_else(|| bad("The event has no created time."))?;
    let object = value.pointer("/data/object");
    let object_id = object
        .and_then(|o| o.get("id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let target = match (kind.split('.').next(), object) {
        (Some("customer"), Some(obj)) if kind.starts_with("customer.subscription.") => {
            crate::mirror::subscription(obj).map_or(Target::Nothing, Target::Subscription)
        }
        (Some("customer"), Some(obj))
            if kind.starts_with("customer.") && kind.matches('.').count() == 1 =>
        {
            crate::mirror::customer(obj, kind == "customer.deleted")
                .map_or(Target::Nothing, Target::Customer)
        }
        (Some("payment_intent"), Some(obj)) => {
            crate::mirror::payment(obj).map_or(Target::Nothing, Target::Payment)
        }
        (Some("checkout"), Some(obj)) if kind.starts_with("checkout.session.") => {
            crate::mirror::checkout_session(obj).map_or(Target::Nothing, Target::Checkout)
        }
        _ => Target::Nothing,
    };
    Ok(Event {
        id: id.to_owned(),
        kind: kind.to_owned(),
        created,
        object_id,
        api_version: value
            .get("api_version")
            .and_then(Value::as_str)
            .map(str::to_owned),
        target,
    })
}

/// Writes the target's state with the given freshness; returns the event outcome.
fn apply(
    conn: &mut AnyConnection,
    tenant_id: &str,
    target: &Target,
    freshness: Freshness,
) -> Result<&'static str, DieselError> {
    // Rows first seen through an event belong to no caller: only admins see them.
    const NO_OWNER: &str = "";
    let applied = match target {
        Target::Nothing => return Ok(events::IGNORED),
        Target::Customer(c) => outcome(db::customers::apply_stripe_state(
            conn, tenant_id, c, freshness,
        )?),
        Target::Subscription(s) => {
            outcome(db::subscriptions::upsert(conn, tenant_id, s, freshness)?)
        }
        Target::Payment(p) => outcome(db::payments::upsert(
            conn, tenant_id, NO_OWNER, p, freshness,
        )?),
        Target::Checkout(c) => outcome(db::checkout_sessions::upsert(
            conn, tenant_id, NO_OWNER, c, freshness,
        )?),
    };
    Ok(applied)
}

fn outcome<R>(applied: Applied<R>) -> &'static str {
    match applied {
        Applied::Written(_) => events::APPLIED,
        Applied::Stale(_) => events::STALE,
        Applied::Tie(_) => events::REFRESH_PENDING,
    }
}

fn unavailable(err: impl std::fmt::Display) -> ApiError {
    // Any storage failure is transient for Stripe: a non-2xx makes it retry.
    ApiError::unavailable(err)
}

/// Handles one delivery; `Ok` means the event is durably stored (and applied as far as it can
/// be) and Stripe may be told 200.
pub async fn receive(
    state: &AppState,
    url_id: &str,
    signature_header: Option<&str>,
    body: &[u8],
) -> Result<&'static str, ApiError> {
    let wanted = url_id.to_owned();
    let found = state
        .db
        .run(move |conn| {
            db::webhook_endpoints::find_by_url_id(conn, &wanted).map_err(DbError::from)
        })
        .await
        .map_err(unavailable)?;
    let (endpoint, sealed) =
        found.ok_or_else(|| ApiError::not_found("No webhook endpoint has this URL."))?;
    let secrets: Vec<String> = sealed
        .iter()
        .filter_map(|s| state.master.decrypt(s).ok())
        .collect();
    signature::verify(signature_header, body, &secrets, Utc::now().timestamp()).map_err(|err| {
        let code = match err {
            SignatureError::Missing => "missing_signature",
            _ => "invalid_signature",
        };
        ApiError::bad_request(code, format!("{err}.")).with_header("stripe-signature")
    })?;
    let event = parse_event(body)?;
    let payload = String::from_utf8_lossy(body).into_owned();
    let tenant_id = endpoint.tenant_id.clone();
    let stored = {
        let event = event.clone();
        let tenant_id = tenant_id.clone();
        state
            .db
            .run(move |conn| store_and_apply(conn, &tenant_id, &endpoint.id, &event, &payload))
            .await
            .map_err(unavailable)?
    };
    if stored == events::REFRESH_PENDING {
        refresh(state, &tenant_id, &event).await?;
        return Ok(events::REFRESHED);
    }
    Ok(stored)
}

/// One transaction: the event row and its effect land together or not at all. A duplicate
/// (the unique constraint) changes nothing and reports the first delivery's outcome.
fn store_and_apply(
    conn: &mut AnyConnection,
    tenant_id: &str,
    endpoint_id: &str,
    event: &Event,
    payload: &str,
) -> Result<&'static str, DbError> {
    // A race on the mirror row's own unique key (two first events for one object at once) is
    // retried; the second attempt finds the row.
    for _ in 0..3 {
        let result = db::write_transaction(conn, |conn| {
            events::insert(
                conn,
                &NewEvent {
                    id: &uuid::Uuid::new_v4().to_string(),
                    tenant_id,
                    endpoint_id,
                    event_id: &event.id,
                    event_type: &event.kind,
                    object_id: event.object_id.as_deref(),
                    stripe_created: event.created,
                    api_version: event.api_version.as_deref(),
                    payload,
                    outcome: events::APPLIED,
                    received_at: Utc::now().naive_utc(),
                },
            )?;
            let outcome = apply(
                conn,
                tenant_id,
                &event.target,
                Freshness::Event(event.created),
            )?;
            events::set_outcome(conn, tenant_id, &event.id, outcome)?;
            Ok::<_, DieselError>(outcome)
        });
        match result {
            Ok(outcome) => return Ok(outcome),
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                match events::outcome(conn, tenant_id, &event.id)? {
                    // Already received: a duplicate. A tie still waiting for its re-read is
                    // finished by this delivery.
                    Some(previous) if previous == events::REFRESH_PENDING => {
                        return Ok(events::REFRESH_PENDING);
                    }
                    Some(_) => return Ok("duplicate"),
                    None => continue,
                }
            }
            Err(err) => return Err(err.into()),
        }
    }
    Err(DbError::Join(
        "the mirror row kept changing under a concurrent writer".into(),
    ))
}

/// Re-reads a tied object from Stripe and writes that current state. A failure is a 503, so
/// Stripe delivers again and the retry finishes the refresh.
async fn refresh(state: &AppState, tenant_id: &str, event: &Event) -> Result<(), ApiError> {
    let tenant = state
        .tenant_by_id(tenant_id)
        .await?
        .ok_or_else(|| ApiError::internal("an endpoint's tenant is gone"))?;
    let stripe = &tenant.stripe;
    let gateway_failed = |err: crate::gateway::GatewayError| {
        tracing::warn!(stripe.event_id = %event.id, error = %err, "re-read for a same-second tie failed");
        ApiError::unavailable("Stripe could not be reached to settle two same-second events")
    };
    let fresh = match &event.target {
        Target::Customer(c) => Target::Customer(
            stripe
                .retrieve_customer(&c.id)
                .await
                .map_err(gateway_failed)?,
        ),
        Target::Subscription(s) => Target::Subscription(
            stripe
                .retrieve_subscription(&s.id)
                .await
                .map_err(gateway_failed)?,
        ),
        Target::Payment(p) => Target::Payment(
            stripe
                .retrieve_payment_intent(&p.id)
                .await
                .map_err(gateway_failed)?,
        ),
        Target::Checkout(c) => Target::Checkout(
            stripe
                .retrieve_checkout_session(&c.id)
                .await
                .map_err(gateway_failed)?,
        ),
        Target::Nothing => Target::Nothing,
    };
    let (tenant_id, event_id, created) = (tenant_id.to_owned(), event.id.clone(), event.created);
    state
        .db
        .run(move |conn| {
            db::write_transaction(conn, |conn| {
                apply(conn, &tenant_id, &fresh, Freshness::Current(created))?;
                events::set_outcome(conn, &tenant_id, &event_id, events::REFRESHED)
            })
            .map_err(DbError::from)
        })
        .await
        .map_err(unavailable)
}
