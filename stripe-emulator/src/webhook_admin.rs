//! The webhook test endpoints under `/_emulator` (JSON bodies; they act on the key, and on
//! the `Stripe-Account` given, like the API):
//! - `GET /_emulator/deliveries[?event=evt_...&endpoint=we_...]`: every delivery attempt,
//!   oldest first (`DELETE` forgets them);
//! - `GET /_emulator/delivery`, `POST /_emulator/delivery {"paused": bool}`: pause (events
//!   queue up) or resume (the queue is sent in order);
//! - `POST /_emulator/delivery/flush {"order": "as_queued" | "reverse"}`: sends the queue
//!   now and answers once each first attempt is done, with their records;
//! - `GET`/`POST /_emulator/delivery/config {"retry_base_ms", "retry_max_ms",
//!   "max_attempts", "timeout_ms", "fail", "drop_until"}`: the retry settings and two fault
//!   modes: `"fail": true` makes every attempt fail without reaching the endpoint (recorded
//!   with `"error"`, retried on the schedule, so turning it off lets retries succeed);
//!   `"drop_until": <unix>` loses every attempt due before that time (recorded with
//!   `"dropped": true`, never retried: the event keeps `pending_webhooks` and is listed by
//!   `GET /v1/events?delivery_success=false`); `null` or 0 ends it;
//! - `POST /_emulator/events {"type", "object", "created"?, "id"?, "previous_attributes"?,
//!   "deliver"? (true)}`: records (and delivers) an arbitrary event;
//! - `POST /_emulator/events/age {"seconds": N}`: makes the account's stored events N
//!   seconds older (`created`), so that those past 30 days drop out of `GET /v1/events`;
//! - `POST /_emulator/events/:id/redeliver {"endpoint"?: "we_..."}`: delivers a stored
//!   event again (to that endpoint, else to every endpoint now subscribed to its type);
//! - `POST /_emulator/webhook_endpoints/:id/roll_secret {"expires_in_secs"?: 86400}`: a new
//!   signing secret; the old ones keep signing beside it until they expire.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::events::record::{Origin, event_object, store_event, stored_event, targets};
use crate::events::types as event_types;
use crate::form::Params;
use crate::ids;
use crate::list::list_object;
use crate::objects::webhook_endpoints;
use crate::state::deliveries::{Dispatch, Target};
use crate::state::{Emulator, KeyState};
use crate::store::kinds;

/// Longest id `POST /_emulator/events` accepts.
const MAX_ID_LEN: usize = 255;

/// A JSON object body (an empty body is `{}`).
fn object_body(body: &[u8]) -> ApiResult<Map<String, Value>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ApiError::invalid_request(
            "The request body must be a JSON object.",
        )),
    }
}

fn invalid(param: &str, message: &str) -> ApiError {
    ApiError::invalid_param(param, message.to_owned())
}

fn optional_bool(body: &Map<String, Value>, name: &str) -> ApiResult<Option<bool>> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(invalid(name, &format!("{name} must be true or false"))),
    }
}

fn optional_str<'b>(body: &'b Map<String, Value>, name: &str) -> ApiResult<Option<&'b str>> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(name, &format!("{name} must be a string"))),
    }
}

fn optional_int(
    body: &Map<String, Value>,
    name: &str,
    min: i64,
    max: i64,
) -> ApiResult<Option<i64>> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match value.as_i64() {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(invalid(
                name,
                &format!("{name} must be an integer from {min} to {max}"),
            )),
        },
    }
}

/// `GET /_emulator/deliveries`.
pub fn deliveries(state: &KeyState, query: &str) -> ApiResult<Value> {
    let params = Params::parse(&[query.as_bytes()])?;
    let attempts = state.delivery.attempts(
        params.non_empty(&["event"])?,
        params.non_empty(&["endpoint"])?,
    );
    Ok(list_object("/_emulator/deliveries", attempts, false))
}

/// `GET /_emulator/delivery`.
pub fn status(state: &KeyState) -> Value {
    let (paused, queued) = state.delivery.status();
    json!({
        "object": "emulator.delivery",
        "paused": paused,
        "queued": queued,
        "config": state.delivery.config().to_json(),
    })
}

/// `POST /_emulator/delivery`.
pub fn pause(emulator: &Emulator, state: &Arc<KeyState>, body: &[u8]) -> ApiResult<Value> {
    let body = object_body(body)?;
    let paused =
        optional_bool(&body, "paused")?.ok_or_else(|| ApiError::parameter_missing("paused"))?;
    emulator.deliveries.set_paused(state, paused);
    Ok(status(state))
}

/// `POST /_emulator/delivery/flush`.
pub async fn flush(emulator: &Emulator, state: &Arc<KeyState>, body: &[u8]) -> ApiResult<Value> {
    let body = object_body(body)?;
    let reverse = match optional_str(&body, "order")? {
        None | Some("as_queued") => false,
        Some("reverse") => true,
        Some(_) => return Err(invalid("order", "order must be as_queued or reverse")),
    };
    let attempts = emulator.deliveries.flush(state, reverse).await;
    Ok(list_object("/_emulator/delivery/flush", attempts, false))
}

/// `GET /_emulator/delivery/config`.
pub fn config(state: &KeyState) -> Value {
    let mut value = state.delivery.config().to_json();
    if let Some(map) = value.as_object_mut() {
        map.insert("object".into(), json!("emulator.delivery_config"));
    }
    value
}

/// `POST /_emulator/delivery/config`.
pub fn set_config(state: &KeyState, body: &[u8]) -> ApiResult<Value> {
    let body = object_body(body)?;
    let mut config = state.delivery.config();
    let day_ms = 86_400_000;
    let read = |name, min, max| -> ApiResult<Option<u64>> {
        Ok(optional_int(&body, name, min, max)?.and_then(|n| u64::try_from(n).ok()))
    };
    if let Some(ms) = read("retry_base_ms", 1, day_ms)? {
        config.retry_base_ms = ms;
    }
    if let Some(ms) = read("retry_max_ms", 1, day_ms)? {
        config.retry_max_ms = ms;
    }
    if let Some(ms) = read("timeout_ms", 1, 600_000)? {
        config.timeout_ms = ms;
    }
    if let Some(n) = optional_int(&body, "max_attempts", 1, 100)? {
        config.max_attempts = u32::try_from(n).unwrap_or(1);
    }
    if let Some(fail) = optional_bool(&body, "fail")? {
        config.fail = fail;
    }
    match body.get("drop_until") {
        None => {}
        Some(Value::Null) => config.drop_until = 0,
        Some(_) => {
            config.drop_until = optional_int(&body, "drop_until", 0, 253_402_300_799)?.unwrap_or(0);
        }
    }
    state.delivery.set_config(config);
    Ok(self::config(state))
}

/// `POST /_emulator/events`.
pub fn create_event(
    emulator: &Emulator,
    state: &Arc<KeyState>,
    account: &str,
    body: &[u8],
) -> ApiResult<Value> {
    let body = object_body(body)?;
    let event_type =
        optional_str(&body, "type")?.ok_or_else(|| ApiError::parameter_missing("type"))?;
    if event_type == "*" || !event_types::is_known(event_type) {
        return Err(invalid(
            "type",
            &format!("`{event_type}` is not a Stripe event type."),
        ));
    }
    let object = match body.get("object") {
        Some(Value::Object(object)) => Value::Object(object.clone()),
        None | Some(Value::Null) => return Err(ApiError::parameter_missing("object")),
        Some(_) => return Err(invalid("object", "object must be a JSON object")),
    };
    let previous = match body.get("previous_attributes") {
        None | Some(Value::Null) => None,
        Some(Value::Object(previous)) => Some(Value::Object(previous.clone())),
        Some(_) => {
            return Err(invalid(
                "previous_attributes",
                "previous_attributes must be a JSON object",
            ));
        }
    };
    let created = optional_int(&body, "created", 0, i64::MAX)?.unwrap_or_else(ids::now);
    let deliver = optional_bool(&body, "deliver")?.unwrap_or(true);
    let id = match optional_str(&body, "id")? {
        None => ids::long_id("evt"),
        Some(id) => {
            let valid = id.len() > 4
                && id.len() <= MAX_ID_LEN
                && id.starts_with("evt_")
                && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(invalid(
                    "id",
                    "id must start with `evt_` and have only letters, digits and `_`",
                ));
            }
            id.to_owned()
        }
    };
    let mut data = state.lock();
    let event = {
        let store = data.store(account);
        if store.get(kinds::EVENT, &id).is_some() {
            return Err(invalid(
                "id",
                &format!("An event with id {id} already exists."),
            ));
        }
        let livemode = store.livemode;
        let event = event_object(
            &id,
            event_type,
            object,
            previous,
            created,
            livemode,
            account,
            Origin::default(),
        );
        let dispatch = store_event(&mut data, account, event);
        // Queued under the lock, like the API's events, to keep their order.
        if deliver {
            emulator
                .deliveries
                .enqueue(state, dispatch.into_iter().collect(), false);
        }
        stored_event(data.store(account), &id).unwrap_or(Value::Null)
    };
    Ok(event)
}

/// Longest `POST /_emulator/events/age` shift (ten years).
const MAX_AGE_SECS: i64 = 10 * 365 * 86_400;

/// `POST /_emulator/events/age {"seconds": N}`: makes every stored event of the account N
/// seconds older (its `created`), e.g. past the 30 days `GET /v1/events` lists.
pub fn age_events(state: &KeyState, account: &str, body: &[u8]) -> ApiResult<Value> {
    let body = object_body(body)?;
    let seconds = optional_int(&body, "seconds", 0, MAX_AGE_SECS)?
        .ok_or_else(|| ApiError::parameter_missing("seconds"))?;
    let mut data = state.lock();
    let store = data.store(account);
    let aged = store.shift_created(kinds::EVENT, seconds);
    store.compact();
    Ok(json!({"object": "emulator.events_aged", "seconds": seconds, "events": aged}))
}

/// `POST /_emulator/events/:id/redeliver`.
pub fn redeliver(
    emulator: &Emulator,
    state: &Arc<KeyState>,
    account: &str,
    id: &str,
    body: &[u8],
) -> ApiResult<Value> {
    let body = object_body(body)?;
    let endpoint = optional_str(&body, "endpoint")?;
    let mut data = state.lock();
    let dispatch = {
        let event = stored_event(data.store(account), id)
            .ok_or_else(|| ApiError::resource_missing("event", id, "id").with_status(404))?;
        let event_type = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let targets = match endpoint {
            None => targets(&mut data, account, &event_type),
            Some(endpoint) => {
                let own = data
                    .store(account)
                    .get_live(kinds::WEBHOOK_ENDPOINT, endpoint)
                    .is_some();
                let platform = !account.is_empty()
                    && data
                        .existing_store("")
                        .and_then(|s| s.get_live(kinds::WEBHOOK_ENDPOINT, endpoint))
                        .is_some();
                if !own && !platform {
                    return Err(ApiError::resource_missing(
                        webhook_endpoints::LABEL,
                        endpoint,
                        "endpoint",
                    ));
                }
                vec![Target {
                    account: if own {
                        account.to_owned()
                    } else {
                        String::new()
                    },
                    endpoint: endpoint.to_owned(),
                }]
            }
        };
        Dispatch {
            account: account.to_owned(),
            event_id: id.to_owned(),
            event_type,
            body: Arc::from(event.to_string()),
            targets,
        }
    };
    let endpoints: Vec<&str> = dispatch
        .targets
        .iter()
        .map(|t| t.endpoint.as_str())
        .collect();
    let answer = json!({
        "object": "emulator.redelivery",
        "event": id,
        "endpoints": endpoints,
        "queued": state.delivery.status().0,
    });
    emulator.deliveries.enqueue(state, vec![dispatch], true);
    drop(data);
    Ok(answer)
}

/// `POST /_emulator/webhook_endpoints/:id/roll_secret`.
pub fn roll_secret(state: &KeyState, account: &str, id: &str, body: &[u8]) -> ApiResult<Value> {
    let body = object_body(body)?;
    let expires_in = optional_int(
        &body,
        "expires_in_secs",
        0,
        webhook_endpoints::MAX_ROLL_OVERLAP_SECS,
    )?
    .unwrap_or(webhook_endpoints::MAX_ROLL_OVERLAP_SECS);
    let now = ids::now();
    let mut data = state.lock();
    let store = data.store(account);
    let secret = webhook_endpoints::roll_secret(store, id, now, expires_in)?;
    // Secrets are internal: the change announces nothing, but leave no journal behind.
    store.drain_changes();
    Ok(json!({
        "object": "emulator.webhook_endpoint_secret",
        "endpoint": id,
        "secret": secret,
        "previous_expires_at": now.saturating_add(expires_in),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        assert!(object_body(b"").unwrap().is_empty());
        assert!(object_body(b"[]").is_err());
        assert!(object_body(b"nope").is_err());
        let body = object_body(br#"{"a": true, "n": 5, "s": "x"}"#).unwrap();
        assert_eq!(optional_bool(&body, "a").unwrap(), Some(true));
        assert!(optional_bool(&body, "n").is_err());
        assert_eq!(optional_int(&body, "n", 1, 5).unwrap(), Some(5));
        assert!(optional_int(&body, "n", 6, 9).is_err());
        assert_eq!(optional_str(&body, "s").unwrap(), Some("x"));
        assert_eq!(optional_str(&body, "missing").unwrap(), None);
    }
}
