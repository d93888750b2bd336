//! Storing deliveries: each event once, with its outcome, and its effect in the same
//! transaction; a batch of deliveries (see `writer`) in one.

use std::collections::BTreeMap;

use chrono::Utc;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::apply::{apply, apply_batch};
use super::event::Pending;
use super::notify::enqueue_notifications;
use super::target::{outcome, usual_outcome};
use crate::db::events::{self, NewEvent};
use crate::db::{self, AnyConnection, DbError, Freshness};

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
pub(super) fn store_batch(
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
        let ids: Vec<String> = by_event.iter().map(|_| crate::db::new_row_id()).collect();
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
                // The newer event's state is as good as stored: the watermark rule says
                // whether this one is stale or a tie (never written: `fresh` is sorted).
                let over = db::watermark::decide(
                    Some(batch[next].event.created),
                    batch[i].event.created,
                    false,
                );
                superseded.push((i, outcome(over)));
            }
            _ => newest.push(i),
        }
    }
    (newest, superseded)
}

/// One delivery in its own transaction: the event row and its effect land together or not at
/// all. A duplicate (the unique constraint) changes nothing and reports the first delivery's
/// outcome.
pub(super) fn store_and_apply(
    conn: &mut AnyConnection,
    pending: &Pending,
) -> Result<&'static str, DbError> {
    // A race on the mirror row's own unique key (two first events for one object at once) is
    // retried; the second attempt finds the row.
    for _ in 0..3 {
        let result = db::write_transaction(conn, |conn| {
            let id = crate::db::new_row_id();
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use diesel::prelude::*;

    use super::*;
    use crate::db::Database;
    use crate::db::schema::{stripe_events, subscriptions};
    use crate::receiver::verify::parse_event;

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
