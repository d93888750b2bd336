//! The `evt_...` objects: turning a request's journaled changes into stored events (see
//! [`commit`]), the endpoints each goes to, and what is left to deliver.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::events::derive::{Derived, derive};
use crate::fixtures::{API_VERSION, fixture};
use crate::ids;
use crate::json::str_field;
use crate::objects::webhook_endpoints;
use crate::state::data::KeyData;
use crate::state::deliveries::{Dispatch, Target};
use crate::store::{Store, kinds};

/// Events kept per account; older ones are forgotten.
pub const MAX_EVENTS: usize = 10_000;

/// How far back `GET /v1/events` lists (Stripe: 30 days).
pub const RETENTION_SECS: i64 = 30 * 86_400;

/// The request an event comes from (`request` of the event).
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin<'a> {
    /// The `Request-Id` of the API request; `None` for automatic events (hosted pages,
    /// test helpers).
    pub request_id: Option<&'a str>,
    /// Its `Idempotency-Key`.
    pub idempotency_key: Option<&'a str>,
}

/// An event object, shaped from the fixture.
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per field of the event"
)]
pub fn event_object(
    id: &str,
    event_type: &str,
    object: Value,
    previous_attributes: Option<Value>,
    created: i64,
    livemode: bool,
    account: &str,
    origin: Origin<'_>,
) -> Value {
    let mut object = object;
    // As in answers, at most 10 invoice lines and subscription items are embedded.
    crate::list::cap_nested_lists(&mut object);
    let mut data = Map::new();
    data.insert("object".into(), object);
    if let Some(previous) = previous_attributes {
        data.insert("previous_attributes".into(), previous);
    }
    let mut event = fixture(kinds::EVENT);
    let Some(map) = event.as_object_mut() else {
        return event;
    };
    if !account.is_empty() {
        map.insert("account".into(), json!(account));
    }
    for (key, value) in [
        ("id", json!(id)),
        ("object", json!("event")),
        ("api_version", json!(API_VERSION)),
        ("created", json!(created)),
        ("data", Value::Object(data)),
        ("livemode", json!(livemode)),
        ("pending_webhooks", json!(0)),
        (
            "request",
            json!({"id": origin.request_id, "idempotency_key": origin.idempotency_key}),
        ),
        ("type", json!(event_type)),
    ] {
        map.insert(key.into(), value);
    }
    event
}

/// The endpoints an event of `event_type` in `account` goes to: the account's own endpoints
/// and, for a connected account's event, the platform's Connect endpoints.
pub fn targets(data: &mut KeyData, account: &str, event_type: &str) -> Vec<Target> {
    let mut targets: Vec<Target> = Vec::new();
    let own = webhook_endpoints::subscribers_of(data.store(account), event_type, false);
    targets.extend(own.into_iter().map(|endpoint| Target {
        account: account.to_owned(),
        endpoint,
    }));
    if !account.is_empty()
        && let Some(platform) = data.existing_store("")
    {
        let connect = webhook_endpoints::subscribers_of(platform, event_type, true);
        targets.extend(connect.into_iter().map(|endpoint| Target {
            account: String::new(),
            endpoint,
        }));
    }
    targets
}

fn target_json(target: &Target) -> Value {
    json!({"account": target.account, "endpoint": target.endpoint})
}

/// Stores `event` (an event object) in `account`'s store, with `pending_webhooks` set to
/// the number of endpoints it goes to, and returns its delivery (if any endpoint wants it).
pub fn store_event(data: &mut KeyData, account: &str, mut event: Value) -> Option<Dispatch> {
    let event_type = str_field(&event, "type").unwrap_or_default().to_owned();
    let event_id = str_field(&event, "id").unwrap_or_default().to_owned();
    let targets = targets(data, account, &event_type);
    if let Some(map) = event.as_object_mut() {
        map.insert("pending_webhooks".into(), json!(targets.len()));
    }
    let body = (!targets.is_empty()).then(|| Arc::<str>::from(event.to_string()));
    let mut internal = Map::new();
    internal.insert(
        "pending".into(),
        Value::Array(targets.iter().map(target_json).collect()),
    );
    let store = data.store(account);
    store.insert_with(kinds::EVENT, event, internal);
    store.trim_oldest(kinds::EVENT, MAX_EVENTS);
    body.map(|body| Dispatch {
        account: account.to_owned(),
        event_id,
        event_type,
        body,
        targets,
    })
}

/// Turns the changes journaled in `account`'s store into stored events, and returns the
/// deliveries to make (after releasing the lock).
pub fn commit(data: &mut KeyData, account: &str, origin: Origin<'_>, now: i64) -> Vec<Dispatch> {
    let store = data.store(account);
    let changes = store.drain_changes();
    if changes.is_empty() {
        store.compact();
        return Vec::new();
    }
    let livemode = store.livemode;
    // Creations are announced when the object was created, everything else when the
    // object last changed.
    let mut derived: Vec<(u64, Derived)> = changes
        .iter()
        .flat_map(|c| {
            derive(c, now).into_iter().map(|event| {
                let at = if c.before.is_none() && event.event_type.ends_with(".created") {
                    c.first
                } else {
                    c.last
                };
                (at, event)
            })
        })
        .collect();
    derived.sort_by_key(|(at, _)| *at);
    let mut dispatches = Vec::new();
    for (_, event) in derived {
        let object = event_object(
            &ids::long_id("evt"),
            event.event_type,
            event.object,
            event.previous_attributes,
            now,
            livemode,
            account,
            origin,
        );
        dispatches.extend(store_event(data, account, object));
    }
    // Everything the request read or changed goes back to rest (compact JSON).
    data.store(account).compact();
    dispatches
}

/// Records that `target` answered a delivery of the event 2xx: it no longer counts in the
/// event's `pending_webhooks`.
pub fn mark_delivered(data: &mut KeyData, account: &str, event_id: &str, target: &Target) {
    let Some(record) = data.store(account).get_mut(kinds::EVENT, event_id) else {
        return;
    };
    let wanted = target_json(target);
    let remaining = match record
        .internal
        .get_mut("pending")
        .and_then(Value::as_array_mut)
    {
        Some(pending) => {
            pending.retain(|t| *t != wanted);
            pending.len()
        }
        None => 0,
    };
    if let Some(map) = record.object.as_object_mut() {
        map.insert("pending_webhooks".into(), json!(remaining));
    }
    data.store(account).compact();
}

/// A stored event by id.
pub fn stored_event(store: &Store, id: &str) -> Option<Value> {
    store.get(kinds::EVENT, id).map(|r| r.object.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_shaped_like_the_fixture() {
        let event = event_object(
            "evt_1",
            "customer.updated",
            json!({"id": "cus_1"}),
            Some(json!({"email": null})),
            5,
            false,
            "",
            Origin {
                request_id: Some("req_1"),
                idempotency_key: None,
            },
        );
        assert_eq!(event["object"], "event");
        assert_eq!(event["api_version"], API_VERSION);
        assert_eq!(event["created"], 5);
        assert_eq!(event["data"]["object"]["id"], "cus_1");
        assert_eq!(event["data"]["previous_attributes"]["email"], Value::Null);
        assert_eq!(
            event["request"],
            json!({"id": "req_1", "idempotency_key": null})
        );
        assert!(event.get("account").is_none());
    }
}
