//! The webhook receiver: verify, store once, apply to the mirror in the same transaction, and
//! only then acknowledge (STRIPE_RULES.md, Delivery).
//!
//! Ordering: each mirrored row keeps a watermark, the Stripe `created` second of the state it
//! holds. An event older than the row is stored and skipped; a newer one is applied; one of
//! the same second cannot be ordered by `created` alone, so the object is re-read from Stripe
//! after the commit and that current state is written (the safe rule; the event is marked
//! `refresh_pending` until then, and a retried delivery completes the refresh).

mod writer;

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::web::Bytes;
use chrono::Utc;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde_json::Value;

use crate::db::events::{self, NewEvent};
use crate::db::{self, AnyConnection, Applied, DbError, Freshness};
use crate::error::ApiError;
use crate::signature::{self, SignatureError};
use crate::state::AppState;
use crate::stripe::objects::{
    ChargeRefunded, InvoiceSnapshot, PaymentMethodSnapshot, PriceSnapshot, ProductSnapshot,
    RefundSnapshot,
};
use crate::stripe::objects::{
    CheckoutSnapshot, CustomerSnapshot, PaymentSnapshot, SubscriptionSnapshot,
};
pub use writer::EventWriter;

/// What an event changes in the mirror.
#[derive(Debug, Clone)]
enum Target {
    Customer(CustomerSnapshot),
    Subscription(SubscriptionSnapshot),
    Payment(PaymentSnapshot),
    Checkout(CheckoutSnapshot),
    Product(ProductSnapshot),
    Price(PriceSnapshot),
    Invoice(InvoiceSnapshot),
    Refund(RefundSnapshot),
    PaymentMethod(PaymentMethodSnapshot),
    /// A payment's refunded total only grows: applied in any order, no watermark.
    ChargeRefunded(ChargeRefunded),
    /// A type we store but do not mirror.
    Nothing,
}

impl Target {
    /// The order in which a batch locks mirror rows (see `writer`): by table, then object.
    fn lock_key(&self) -> (u8, &str) {
        match self {
            Target::Customer(c) => (0, &c.id),
            Target::Product(p) => (1, &p.id),
            Target::Price(p) => (2, &p.id),
            Target::Subscription(s) => (3, &s.id),
            Target::Invoice(i) => (4, &i.id),
            Target::Payment(p) => (5, &p.id),
            Target::ChargeRefunded(c) => (6, &c.payment_intent),
            Target::Refund(r) => (7, &r.id),
            Target::Checkout(c) => (8, &c.id),
            Target::PaymentMethod(m) => (9, &m.id),
            Target::Nothing => (u8::MAX, ""),
        }
    }

    /// Whether only the newest of several events of one object in a batch need be written
    /// (states under the watermark rule).
    fn is_state(&self) -> bool {
        !matches!(self, Target::ChargeRefunded(_) | Target::Nothing)
    }
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
    /// What the tenant's app is told once this event is applied (`crate::notifications`).
    notification: Option<(&'static str, Value)>,
}

fn parse_event(body: &[u8]) -> Result<Event, ApiError> {
    let bad = |detail: &str| ApiError::bad_request("invalid_event", detail.to_owned());
    let value: Value =
        serde_json::from_slice(body).map_err(|_| bad("The body is not a JSON Stripe event."))?;
    // PostgreSQL cannot store a NUL: refused here, not a storage error Stripe retries for days.
    if has_nul(&value) {
        return Err(bad("The event contains a NUL character."));
    }
    let id = value
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| stripe_id_shape(id))
        .ok_or_else(|| bad("The event has no id of at most 255 ASCII characters."))?;
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .filter(|kind| stripe_id_shape(kind))
        .ok_or_else(|| bad("The event has no type of at most 255 ASCII characters."))?;
    let created = value
        .get("created")
        .and_then(Value::as_i64)
        .ok_or_else(|| bad("The event has no created time."))?;
    let object = value.pointer("/data/object");
    let object_id = object
        .and_then(|o| o.get("id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if object_id.as_deref().is_some_and(|id| !stripe_id_shape(id)) {
        return Err(bad(
            "The event's object id is not at most 255 ASCII characters.",
        ));
    }
    let target = object.map_or(Target::Nothing, |obj| target_of(kind, obj));
    let notification = object.and_then(|obj| crate::notifications::for_event(kind, obj));
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
        notification,
    })
}

/// Stripe's ids and event types: ASCII without spaces or control characters, 1 to 255 bytes.
fn stripe_id_shape(id: &str) -> bool {
    !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_graphic())
}

fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// What an event of this type carrying this object changes; `Nothing` for types we do not
/// mirror or objects we cannot read.
fn target_of(kind: &str, obj: &Value) -> Target {
    use crate::stripe::objects as mirror;
    let deleted = kind.ends_with(".deleted");
    let target = match kind.split('.').collect::<Vec<_>>().as_slice() {
        ["customer", "subscription", _] => mirror::subscription(obj).map(Target::Subscription),
        ["customer", _] => mirror::customer(obj, deleted).map(Target::Customer),
        ["payment_intent", _] => mirror::payment(obj).map(Target::Payment),
        ["checkout", "session", _] => mirror::checkout_session(obj).map(Target::Checkout),
        ["product", _] => mirror::product(obj, deleted).map(Target::Product),
        ["price", _] => mirror::price(obj, deleted).map(Target::Price),
        ["invoice", _] => mirror::invoice(obj, deleted).map(Target::Invoice),
        ["refund", _] | ["charge", "refund", "updated"] => mirror::refund(obj).map(Target::Refund),
        ["charge", "refunded"] => mirror::charge_refunded(obj).map(Target::ChargeRefunded),
        ["payment_method", _] => mirror::payment_method(obj).map(Target::PaymentMethod),
        _ => None,
    };
    target.unwrap_or(Target::Nothing)
}

/// Writes the target's state with the given freshness; returns the event outcome.
fn apply(
    conn: &mut AnyConnection,
    tenant_id: &str,
    target: &Target,
    freshness: Freshness,
) -> Result<&'static str, DieselError> {
    // A state read from Stripe just now wins over one of its own second; an event's does not.
    let (at, equal_wins) = match freshness {
        Freshness::Event(at) => (at, false),
        Freshness::Current(at) => (at, true),
    };
    fn one(outcomes: Vec<Applied>) -> &'static str {
        outcomes.into_iter().next().map_or(events::IGNORED, outcome)
    }
    Ok(match target {
        Target::Nothing => events::IGNORED,
        Target::ChargeRefunded(c) => {
            apply_charge_refunded(conn, tenant_id, c, at)?;
            events::APPLIED
        }
        Target::Customer(c) => one(db::customers::apply_customers(
            conn,
            &[(tenant_id, c, at)],
            equal_wins,
        )?),
        Target::Subscription(s) => one(db::subscriptions::apply_subscriptions(
            conn,
            &[(tenant_id, s, at)],
            equal_wins,
        )?),
        Target::Payment(p) => one(db::payments::apply_payments(
            conn,
            &[(tenant_id, p, at)],
            equal_wins,
        )?),
        Target::Checkout(c) => one(db::checkout_sessions::apply_sessions(
            conn,
            &[(tenant_id, c, at)],
            equal_wins,
        )?),
        Target::Product(p) => one(db::catalog::apply_products(
            conn,
            &[(tenant_id, p, at)],
            equal_wins,
        )?),
        Target::Price(p) => one(db::catalog::apply_prices(
            conn,
            &[(tenant_id, p, at)],
            equal_wins,
        )?),
        Target::Invoice(i) => one(db::invoices::apply_invoices(
            conn,
            &[(tenant_id, i, at)],
            equal_wins,
        )?),
        Target::Refund(r) => one(db::refunds::apply_refunds(
            conn,
            &[(tenant_id, r, at)],
            equal_wins,
        )?),
        Target::PaymentMethod(m) => one(db::payment_methods::apply_payment_methods(
            conn,
            &[(tenant_id, m, at)],
            equal_wins,
        )?),
    })
}

/// A refunded charge: the payment's refunded total is raised, and the refunds the charge
/// carries are written under their own watermarks.
fn apply_charge_refunded(
    conn: &mut AnyConnection,
    tenant_id: &str,
    charge: &ChargeRefunded,
    at: i64,
) -> Result<(), DieselError> {
    db::refunds::raise_refunded(conn, tenant_id, charge)?;
    let refunds: Vec<_> = charge.refunds.iter().map(|r| (tenant_id, r, at)).collect();
    if !refunds.is_empty() {
        db::refunds::apply_refunds(conn, &refunds, false)?;
    }
    Ok(())
}

fn outcome(applied: Applied) -> &'static str {
    match applied {
        Applied::Written => events::APPLIED,
        Applied::Stale => events::STALE,
        Applied::Tie => events::REFRESH_PENDING,
    }
}

fn unavailable(err: impl std::fmt::Display) -> ApiError {
    // Any storage failure is transient for Stripe: a non-2xx makes it retry.
    ApiError::unavailable(err)
}

/// A verified delivery on its way to storage.
pub(crate) struct Pending {
    tenant_id: String,
    endpoint_id: String,
    event: Event,
    payload: String,
    /// The tenant has a notify_url: applied events are announced to its app.
    notify: bool,
}

fn signature_error(err: SignatureError) -> ApiError {
    let code = match err {
        SignatureError::Missing => "missing_signature",
        _ => "invalid_signature",
    };
    ApiError::bad_request(code, format!("{err}.")).with_header("stripe-signature")
}

/// Bodies larger than this are verified on the blocking pool: hashing them (once per secret,
/// up to 1 MiB) must not hold an async worker that serves other requests.
const INLINE_VERIFY_BYTES: usize = 16 * 1024;

/// `signature::verify`, off the async workers for a large body. The outer error is the
/// blocking pool failing (503: Stripe retries).
async fn verify(
    header: Option<&str>,
    body: &Bytes,
    secrets: Vec<String>,
    now: i64,
) -> Result<Result<(), SignatureError>, ApiError> {
    if body.len() <= INLINE_VERIFY_BYTES {
        return Ok(signature::verify(header, body, &secrets, now));
    }
    let (header, body) = (header.map(str::to_owned), body.clone());
    actix_web::web::block(move || signature::verify(header.as_deref(), &body, &secrets, now))
        .await
        .map_err(unavailable)
}

/// Handles one delivery; `Ok` means the event is durably stored (and applied as far as it can
/// be) and Stripe may be told 200.
pub async fn receive(
    state: &AppState,
    url_id: &str,
    signature_header: Option<&str>,
    body: &Bytes,
) -> Result<&'static str, ApiError> {
    let unknown = || ApiError::not_found("No webhook endpoint has this URL.");
    let now = Utc::now().timestamp();
    let mut endpoint = state
        .receiver_endpoint(url_id, false)
        .await?
        .ok_or_else(unknown)?;
    let verified = verify(signature_header, body, endpoint.live_secrets(now), now).await?;
    match verified {
        Ok(()) => {}
        // The secrets may have been rolled since they were cached (through another instance).
        Err(SignatureError::Mismatch) if endpoint.age() > Duration::from_secs(1) => {
            endpoint = state
                .receiver_endpoint(url_id, true)
                .await?
                .ok_or_else(unknown)?;
            verify(signature_header, body, endpoint.live_secrets(now), now)
                .await?
                .map_err(signature_error)?;
        }
        Err(err) => return Err(signature_error(err)),
    }
    let event = parse_event(body)?;
    let pending = Pending {
        tenant_id: endpoint.tenant_id.clone(),
        endpoint_id: endpoint.id.clone(),
        event,
        payload: String::from_utf8_lossy(body).into_owned(),
        notify: endpoint.notify,
    };
    let (tenant_id, event) = (pending.tenant_id.clone(), pending.event.clone());
    let stored = state.events.write(pending).await.map_err(unavailable)?;
    if stored == events::REFRESH_PENDING {
        refresh(state, &tenant_id, &event).await?;
        return Ok(events::REFRESHED);
    }
    Ok(stored)
}

fn new_event<'a>(pending: &'a Pending, id: &'a str) -> NewEvent<'a> {
    let event = &pending.event;
    NewEvent {
        id,
        tenant_id: &pending.tenant_id,
        endpoint_id: &pending.endpoint_id,
        event_id: &event.id,
        event_type: &event.kind,
        object_id: event.object_id.as_deref(),
        stripe_created: event.created,
        api_version: event.api_version.as_deref(),
        payload: &pending.payload,
        outcome: usual_outcome(&event.target),
        received_at: Utc::now().naive_utc(),
    }
}

/// The outcome an event is stored with, before applying it shows otherwise.
fn usual_outcome(target: &Target) -> &'static str {
    match target {
        Target::Nothing => events::IGNORED,
        _ => events::APPLIED,
    }
}

/// Applies a newly stored event and records an outcome other than the one it was stored with.
fn apply_stored(conn: &mut AnyConnection, pending: &Pending) -> Result<&'static str, DieselError> {
    let event = &pending.event;
    let outcome = apply(
        conn,
        &pending.tenant_id,
        &event.target,
        Freshness::Event(event.created),
    )?;
    if outcome != events::APPLIED && outcome != events::IGNORED {
        events::set_outcome(conn, &pending.tenant_id, &event.id, outcome)?;
    }
    Ok(outcome)
}

/// Writes to the outbox the notifications of the deliveries that were applied, in the same
/// transaction as their mirror change.
fn enqueue_notifications<'a>(
    conn: &mut AnyConnection,
    applied: impl Iterator<Item = &'a Pending>,
) -> Result<(), DieselError> {
    let rows: Vec<_> = applied
        .filter(|p| p.notify)
        .filter_map(|p| {
            let (kind, data) = p.event.notification.as_ref()?;
            Some(crate::notifications::outbox_row(
                &p.tenant_id,
                &p.event.id,
                kind,
                data,
            ))
        })
        .collect();
    crate::db::notifications::enqueue(conn, &rows)
}

/// What a second delivery of a stored event answers: a tie still waiting for its re-read is
/// finished by this delivery; anything else is a duplicate that changes nothing.
fn repeated(previous: &str) -> &'static str {
    if previous == events::REFRESH_PENDING {
        events::REFRESH_PENDING
    } else {
        "duplicate"
    }
}

/// Several deliveries in one transaction (see `writer`): the events are inserted in
/// (tenant, event id) order, skipping those already stored; then the newest new state of each
/// object is applied in (kind, object id) order. Returns each delivery's outcome, in the batch's order.
pub(crate) fn store_batch(
    conn: &mut AnyConnection,
    batch: &[Pending],
) -> Result<Vec<&'static str>, DieselError> {
    db::write_transaction(conn, |conn| {
        let mut by_event: Vec<usize> = (0..batch.len()).collect();
        by_event.sort_by(|&a, &b| {
            (&batch[a].tenant_id, &batch[a].event.id)
                .cmp(&(&batch[b].tenant_id, &batch[b].event.id))
        });
        // The outcome each event is stored with: what it gets if every distinct event of the
        // batch is new, which is nearly always so. An event superseded by a newer one of its
        // object in the batch is thus stored as such, and not updated after the apply. Only
        // each event's first delivery counts: a repeat in the batch is never inserted.
        let mut distinct = by_event.clone();
        distinct.dedup_by(|&mut a, &mut b| same_event(&batch[a], &batch[b]));
        let mut stored_as: Vec<&'static str> = batch
            .iter()
            .map(|p| usual_outcome(&p.event.target))
            .collect();
        let planned = supersede(batch, &mut distinct);
        for &(i, outcome) in &planned.1 {
            stored_as[i] = outcome;
        }
        let ids: Vec<String> = by_event
            .iter()
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect();
        let rows: Vec<NewEvent<'_>> = by_event
            .iter()
            .zip(&ids)
            .map(|(&i, id)| NewEvent {
                outcome: stored_as[i],
                ..new_event(&batch[i], id)
            })
            .collect();
        let mut inserted = events::insert_new(conn, &rows)?;
        // The first delivery of each newly inserted event applies it; its repeats in this batch
        // and deliveries of events stored before are answered from the stored outcome.
        let (mut fresh, repeats): (Vec<usize>, Vec<usize>) = by_event.iter().partition(|&&i| {
            inserted.remove(&(batch[i].tenant_id.clone(), batch[i].event.id.clone()))
        });
        // Every distinct event new (`fresh` holds the same first deliveries): the plan stands.
        let (newest, superseded) = if fresh.len() == distinct.len() {
            planned
        } else {
            supersede(batch, &mut fresh)
        };
        let mut applied = apply_batch(conn, batch, &newest)?;
        applied.extend(superseded);
        let mut outcomes = vec![""; batch.len()];
        // Outcomes other than the one stored (an event older than its row, or one whose newer
        // event in the batch had been stored before), recorded per tenant and outcome.
        let mut unusual: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
        for (i, outcome) in applied {
            outcomes[i] = outcome;
            if outcome != stored_as[i] {
                unusual
                    .entry((batch[i].tenant_id.as_str(), outcome))
                    .or_default()
                    .push(batch[i].event.id.as_str());
            }
        }
        for ((tenant_id, outcome), event_ids) in unusual {
            events::set_outcomes(conn, tenant_id, &event_ids, outcome)?;
        }
        let applied = (0..batch.len()).filter(|&i| outcomes[i] == events::APPLIED);
        enqueue_notifications(conn, applied.map(|i| &batch[i]))?;
        let mut by_tenant: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for i in repeats {
            by_tenant.entry(&batch[i].tenant_id).or_default().push(i);
        }
        for (tenant_id, repeats) in by_tenant {
            let ids: Vec<&str> = repeats
                .iter()
                .map(|&i| batch[i].event.id.as_str())
                .collect();
            let stored = events::outcomes(conn, tenant_id, &ids)?;
            for i in repeats {
                let (_, previous) = stored
                    .iter()
                    .find(|(event_id, _)| *event_id == batch[i].event.id)
                    // Not inserted yet not stored: a concurrent first delivery rolled back.
                    // The per-delivery path retries it.
                    .ok_or(DieselError::NotFound)?;
                outcomes[i] = repeated(previous);
            }
        }
        Ok(outcomes)
    })
}

fn same_event(a: &Pending, b: &Pending) -> bool {
    a.event.id == b.event.id && a.tenant_id == b.tenant_id
}

/// Sorts new events (batch indices, each event once) into lock order and splits them into
/// those to write and those superseded. Several new events of one object: only the newest is
/// written; the others are older state (stale), or of its very second, which makes the
/// object's order undecidable from `created` alone: those are re-read from Stripe after the
/// commit.
fn supersede(batch: &[Pending], fresh: &mut [usize]) -> (Vec<usize>, Vec<(usize, &'static str)>) {
    fresh.sort_by(|&a, &b| {
        let key = |i: usize| {
            let event = &batch[i].event;
            let (kind, object) = event.target.lock_key();
            (kind, object, &batch[i].tenant_id, event.created, &event.id)
        };
        key(a).cmp(&key(b))
    });
    let mut newest: Vec<usize> = Vec::with_capacity(fresh.len());
    let mut superseded: Vec<(usize, &'static str)> = Vec::new();
    for (pos, &i) in fresh.iter().enumerate() {
        let same_object = |j: usize| {
            batch[j].event.target.lock_key() == batch[i].event.target.lock_key()
                && batch[j].tenant_id == batch[i].tenant_id
        };
        match fresh.get(pos + 1) {
            Some(&next) if same_object(next) && batch[i].event.target.is_state() => {
                let tie = batch[next].event.created == batch[i].event.created;
                superseded.push((
                    i,
                    if tie {
                        events::REFRESH_PENDING
                    } else {
                        events::STALE
                    },
                ));
            }
            _ => newest.push(i),
        }
    }
    (newest, superseded)
}

/// The mirror writes of a batch: one call per table (one statement on PostgreSQL) with its
/// objects in key order (`newest` holds each object at most once), tables in `lock_key`
/// order. Returns each event's outcome.
fn apply_batch(
    conn: &mut AnyConnection,
    batch: &[Pending],
    newest: &[usize],
) -> Result<Vec<(usize, &'static str)>, DieselError> {
    let mut applied = Vec::with_capacity(newest.len());
    let (mut customers, mut products, mut prices, mut subscriptions, mut invoices) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut payments, mut charges, mut refunds, mut sessions, mut methods) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for &i in newest {
        let Pending {
            tenant_id, event, ..
        } = &batch[i];
        let (tenant, at) = (tenant_id.as_str(), event.created);
        match &event.target {
            Target::Customer(c) => customers.push((i, (tenant, c, at))),
            Target::Product(p) => products.push((i, (tenant, p, at))),
            Target::Price(p) => prices.push((i, (tenant, p, at))),
            Target::Subscription(s) => subscriptions.push((i, (tenant, s, at))),
            Target::Invoice(v) => invoices.push((i, (tenant, v, at))),
            Target::Payment(p) => payments.push((i, (tenant, p, at))),
            Target::ChargeRefunded(c) => charges.push((i, (tenant, c, at))),
            Target::Refund(r) => refunds.push((i, (tenant, r, at))),
            Target::Checkout(c) => sessions.push((i, (tenant, c, at))),
            Target::PaymentMethod(m) => methods.push((i, (tenant, m, at))),
            Target::Nothing => applied.push((i, events::IGNORED)),
        }
    }
    use db::{catalog, checkout_sessions, customers as cus, invoices as inv};
    settle(&mut applied, &customers, |x| {
        cus::apply_customers(conn, x, false)
    })?;
    settle(&mut applied, &products, |x| {
        catalog::apply_products(conn, x, false)
    })?;
    settle(&mut applied, &prices, |x| {
        catalog::apply_prices(conn, x, false)
    })?;
    settle(&mut applied, &subscriptions, |x| {
        db::subscriptions::apply_subscriptions(conn, x, false)
    })?;
    settle(&mut applied, &invoices, |x| {
        inv::apply_invoices(conn, x, false)
    })?;
    settle(&mut applied, &payments, |x| {
        db::payments::apply_payments(conn, x, false)
    })?;
    for (i, (tenant, charge, at)) in charges {
        apply_charge_refunded(conn, tenant, charge, at)?;
        applied.push((i, events::APPLIED));
    }
    settle(&mut applied, &refunds, |x| {
        db::refunds::apply_refunds(conn, x, false)
    })?;
    settle(&mut applied, &sessions, |x| {
        checkout_sessions::apply_sessions(conn, x, false)
    })?;
    settle(&mut applied, &methods, |x| {
        db::payment_methods::apply_payment_methods(conn, x, false)
    })?;
    Ok(applied)
}

/// Runs one table's batch upsert (if it has rows) and records each event's outcome.
fn settle<T: Copy>(
    applied: &mut Vec<(usize, &'static str)>,
    rows: &[(usize, T)],
    upsert: impl FnOnce(&[T]) -> Result<Vec<Applied>, DieselError>,
) -> Result<(), DieselError> {
    if rows.is_empty() {
        return Ok(());
    }
    let items: Vec<T> = rows.iter().map(|(_, item)| *item).collect();
    let outcomes = upsert(&items)?;
    applied.extend(
        rows.iter()
            .map(|(i, _)| *i)
            .zip(outcomes.into_iter().map(outcome)),
    );
    Ok(())
}

/// One delivery in its own transaction: the event row and its effect land together or not at
/// all. A duplicate (the unique constraint) changes nothing and reports the first delivery's
/// outcome.
pub(crate) fn store_and_apply(
    conn: &mut AnyConnection,
    pending: &Pending,
) -> Result<&'static str, DbError> {
    // A race on the mirror row's own unique key (two first events for one object at once) is
    // retried; the second attempt finds the row.
    for _ in 0..3 {
        let result = db::write_transaction(conn, |conn| {
            let id = uuid::Uuid::new_v4().to_string();
            events::insert(conn, &new_event(pending, &id))?;
            let outcome = apply_stored(conn, pending)?;
            if outcome == events::APPLIED {
                enqueue_notifications(conn, std::iter::once(pending))?;
            }
            Ok(outcome)
        });
        match result {
            Ok(outcome) => return Ok(outcome),
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                match events::outcome(conn, &pending.tenant_id, &pending.event.id)? {
                    Some(previous) => return Ok(repeated(&previous)),
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

/// An object our gateway has no typed call for (a product, price, invoice, refund or payment
/// method), re-read as JSON and read as an `*.updated` event would carry it. An object Stripe
/// no longer has (404: a deleted product, price or draft invoice) is the event's state marked
/// deleted, so the tie settles instead of failing on every retry.
async fn reread(
    stripe: &dyn crate::stripe::StripeApi,
    seen: &Target,
) -> Result<Target, crate::stripe::GatewayError> {
    let (kind, path) = match seen {
        Target::Product(p) => ("product.updated", format!("/products/{}", p.id)),
        Target::Price(p) => ("price.updated", format!("/prices/{}", p.id)),
        Target::Invoice(i) => ("invoice.updated", format!("/invoices/{}", i.id)),
        Target::Refund(r) => ("refund.updated", format!("/refunds/{}", r.id)),
        Target::PaymentMethod(m) => (
            "payment_method.updated",
            format!("/payment_methods/{}", m.id),
        ),
        // The other targets are re-read through typed calls, or never tie (`refresh`).
        _ => return Ok(Target::Nothing),
    };
    match stripe.retrieve_json(&path).await {
        Ok(object) => Ok(target_of(kind, &object)),
        Err(crate::stripe::GatewayError::Stripe(failure)) if failure.http_status == 404 => {
            Ok(match seen.clone() {
                Target::Product(mut p) => {
                    p.deleted = true;
                    Target::Product(p)
                }
                Target::Price(mut p) => {
                    p.deleted = true;
                    Target::Price(p)
                }
                Target::Invoice(mut i) => {
                    i.deleted = true;
                    Target::Invoice(i)
                }
                // Refunds and payment methods are never deleted at Stripe.
                _ => return Err(crate::stripe::GatewayError::Stripe(failure)),
            })
        }
        Err(err) => Err(err),
    }
}

/// Re-reads a tied object from Stripe and writes that current state. A failure is a 503, so
/// Stripe delivers again and the retry finishes the refresh.
async fn refresh(state: &AppState, tenant_id: &str, event: &Event) -> Result<(), ApiError> {
    let tenant = state
        .tenant_by_id(tenant_id)
        .await?
        .ok_or_else(|| ApiError::internal("an endpoint's tenant is gone"))?;
    let stripe = &tenant.stripe;
    let gateway_failed = |err: crate::stripe::GatewayError| {
        tracing::warn!(stripe.event_id = %event.id, error = %err, "re-read for a same-second tie failed");
        ApiError::unavailable("Stripe could not be reached to settle two same-second events")
    };
    let fresh = match &event.target {
        Target::Customer(c) => stripe.retrieve_customer(&c.id).await.map(Target::Customer),
        Target::Subscription(s) => stripe
            .retrieve_subscription(&s.id)
            .await
            .map(Target::Subscription),
        Target::Payment(p) => stripe
            .retrieve_payment_intent(&p.id)
            .await
            .map(Target::Payment),
        Target::Checkout(c) => stripe
            .retrieve_checkout_session(&c.id)
            .await
            .map(Target::Checkout),
        Target::Product(_)
        | Target::Price(_)
        | Target::Invoice(_)
        | Target::Refund(_)
        | Target::PaymentMethod(_) => reread(stripe.as_ref(), &event.target).await,
        // Not under the watermark rule: never a tie.
        Target::ChargeRefunded(_) | Target::Nothing => Ok(Target::Nothing),
    }
    .map_err(gateway_failed)?;
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use diesel::prelude::*;

    use super::*;
    use crate::db::Database;
    use crate::db::schema::{stripe_events, subscriptions};

    fn delivery(id: &str, created: i64, status: &str) -> Pending {
        let body = serde_json::json!({
            "id": id, "object": "event", "type": "customer.subscription.updated",
            "created": created,
            "data": {"object": {
                "id": "sub_batch", "object": "subscription", "customer": "cus_batch",
                "status": status, "cancel_at_period_end": false, "created": 1_700_000_000,
                "metadata": {},
                "items": {"object": "list", "data": [{"id": "si_1", "quantity": 1,
                    "price": {"id": "price_1", "unit_amount": 500, "currency": "usd",
                              "recurring": {"interval": "month"}}}]}}}
        })
        .to_string();
        Pending {
            tenant_id: "tenant_batch".into(),
            endpoint_id: "we_batch".into(),
            event: parse_event(body.as_bytes()).unwrap(),
            payload: body,
            notify: false,
        }
    }

    fn stored(conn: &mut AnyConnection) -> (BTreeMap<String, String>, Vec<String>) {
        let AnyConnection::Sqlite(sqlite) = conn else {
            panic!("the test database is SQLite");
        };
        let outcomes = stripe_events::table
            .select((stripe_events::event_id, stripe_events::outcome))
            .load::<(String, String)>(sqlite)
            .unwrap()
            .into_iter()
            .collect();
        let status = subscriptions::table
            .select(subscriptions::status)
            .load::<String>(sqlite)
            .unwrap();
        (outcomes, status)
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_batch_stores_each_event_with_the_outcome_it_answers() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("batch.db").display());
        let db = Database::connect(&url, 1).unwrap();
        db.migrate().unwrap();
        let mut conn = db.connect_one().unwrap();

        // Three states of one subscription out of order, one delivered twice: only the newest
        // is written; the others are stored stale (decided before the insert).
        let first = [
            delivery("evt_b", 110, "past_due"),
            delivery("evt_a", 100, "active"),
            delivery("evt_c", 120, "canceled"),
            delivery("evt_a", 100, "active"),
        ];
        let answered = store_batch(&mut conn, &first).unwrap();
        assert_eq!(answered, ["stale", "stale", "applied", "duplicate"]);
        assert_eq!(
            stored(&mut conn),
            (
                map(&[("evt_a", "stale"), ("evt_b", "stale"), ("evt_c", "applied")]),
                vec!["canceled".to_owned()]
            )
        );

        // evt_c again, an older new event, and a new one of evt_c's very second. The batch
        // alone would apply evt_d; the stored row's watermark makes it a tie, so its stored
        // outcome is corrected to match what the delivery is answered.
        let second = [
            delivery("evt_c", 120, "canceled"),
            delivery("evt_d", 120, "unpaid"),
            delivery("evt_e", 90, "trialing"),
        ];
        let answered = store_batch(&mut conn, &second).unwrap();
        assert_eq!(answered, ["duplicate", "refresh_pending", "stale"]);
        assert_eq!(
            stored(&mut conn),
            (
                map(&[
                    ("evt_a", "stale"),
                    ("evt_b", "stale"),
                    ("evt_c", "applied"),
                    ("evt_d", "refresh_pending"),
                    ("evt_e", "stale"),
                ]),
                vec!["canceled".to_owned()]
            )
        );
    }
}
