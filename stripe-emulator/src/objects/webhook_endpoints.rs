//! Webhook endpoints as event delivery sees them: which endpoints an event goes to, and the
//! secrets its deliveries are signed with (internal, newest first, each with an optional
//! expiry for rolled secrets).

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::ids;
use crate::json::{set, str_field};
use crate::store::{Store, kinds};

/// How webhook endpoints are named in "No such ..." messages.
pub const LABEL: &str = "webhook_endpoint";

/// A new signing secret.
pub fn new_secret() -> String {
    format!("whsec_{}", ids::random_alnum(32))
}

/// Longest overlap of a rolled secret with its successor (Stripe allows up to 24 hours).
pub const MAX_ROLL_OVERLAP_SECS: i64 = 24 * 60 * 60;

/// Rolls an endpoint's signing secret: a new secret signs from now on, and the live ones
/// keep signing beside it until `now + expires_in` (at once for 0). Returns the new
/// secret.
pub fn roll_secret(store: &mut Store, id: &str, now: i64, expires_in: i64) -> ApiResult<String> {
    let Some(record) = store.get_live_mut(kinds::WEBHOOK_ENDPOINT, id) else {
        return Err(ApiError::resource_missing(LABEL, id, "id"));
    };
    let expires_at = now.saturating_add(expires_in);
    let mut secrets: Vec<Value> = record
        .internal
        .get("secrets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|s| {
            s.get("expires_at")
                .and_then(Value::as_i64)
                .is_none_or(|at| at > now)
        })
        .map(|mut s| {
            let sooner = s
                .get("expires_at")
                .and_then(Value::as_i64)
                .map_or(expires_at, |at| at.min(expires_at));
            set(&mut s, "expires_at", json!(sooner));
            s
        })
        .collect();
    let secret = new_secret();
    secrets.insert(0, json!({"secret": secret, "expires_at": null}));
    record
        .internal
        .insert("secrets".into(), Value::Array(secrets));
    Ok(secret)
}

/// The secrets an endpoint's deliveries are signed with at `now`, newest first (more than
/// one while a rolled secret has not expired; Stripe then sends one `v1=` per secret).
pub fn signing_secrets(store: &Store, id: &str, now: i64) -> Vec<String> {
    store
        .get_live(kinds::WEBHOOK_ENDPOINT, id)
        .and_then(|r| r.internal.get("secrets").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .filter(|s| {
            s.get("expires_at")
                .and_then(Value::as_i64)
                .is_none_or(|at| at > now)
        })
        .filter_map(|s| str_field(s, "secret").map(str::to_owned))
        .collect()
}

/// Ids of the enabled endpoints subscribed to `event_type` (directly or with `*`), oldest
/// first.
pub fn subscribers(store: &Store, event_type: &str) -> Vec<String> {
    let mut ids = store.ids_where(kinds::WEBHOOK_ENDPOINT, |r| {
        str_field(&r.object, "status") == Some("enabled")
            && r.object
                .get("enabled_events")
                .and_then(Value::as_array)
                .is_some_and(|events| {
                    events
                        .iter()
                        .any(|e| e.as_str() == Some("*") || e.as_str() == Some(event_type))
                })
    });
    ids.reverse();
    ids
}

/// Ids of the enabled endpoints subscribed to `event_type` that are (`connect`) or are not
/// Connect endpoints, oldest first: an account's own events go to its own endpoints, a
/// connected account's events also to the platform's Connect endpoints.
pub fn subscribers_of(store: &Store, event_type: &str, connect: bool) -> Vec<String> {
    subscribers(store, event_type)
        .into_iter()
        .filter(|id| {
            store
                .get(kinds::WEBHOOK_ENDPOINT, id)
                .and_then(|r| r.internal.get("connect"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
                == connect
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    #[test]
    fn subscribers_and_secrets() {
        let mut store = Store::new(false);
        let mut internal = Map::new();
        internal.insert(
            "secrets".into(),
            json!([{"secret": "whsec_new", "expires_at": null}, {"secret": "whsec_old", "expires_at": 100}]),
        );
        store.insert_with(
            kinds::WEBHOOK_ENDPOINT,
            json!({"id": "we_1", "status": "enabled", "enabled_events": ["invoice.paid"]}),
            internal,
        );
        store.insert(
            kinds::WEBHOOK_ENDPOINT,
            json!({"id": "we_2", "status": "enabled", "enabled_events": ["*"]}),
        );
        store.insert(
            kinds::WEBHOOK_ENDPOINT,
            json!({"id": "we_3", "status": "disabled", "enabled_events": ["*"]}),
        );
        assert_eq!(subscribers(&store, "invoice.paid"), ["we_1", "we_2"]);
        assert_eq!(subscribers(&store, "customer.created"), ["we_2"]);
        assert_eq!(
            signing_secrets(&store, "we_1", 50),
            ["whsec_new", "whsec_old"]
        );
        assert_eq!(signing_secrets(&store, "we_1", 150), ["whsec_new"]);

        let rolled = roll_secret(&mut store, "we_1", 50, 30).unwrap();
        assert!(rolled.starts_with("whsec_"));
        assert_eq!(
            signing_secrets(&store, "we_1", 60),
            [rolled.as_str(), "whsec_new", "whsec_old"]
        );
        assert_eq!(
            signing_secrets(&store, "we_1", 80),
            [rolled.as_str()],
            "the old secrets expire together"
        );
        let again = roll_secret(&mut store, "we_1", 90, 0).unwrap();
        assert_eq!(signing_secrets(&store, "we_1", 90), [again.as_str()]);
        assert!(roll_secret(&mut store, "we_9", 90, 0).is_err());
    }
}
