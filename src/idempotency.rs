//! Idempotency keys (STRIPE_RULES.md, Idempotency): the client's `Idempotency-Key`, checked;
//! the fingerprint a retry must match; and the scope a keyed request runs in, from which each
//! Stripe call it makes takes a key of its own, so a retried request never creates anything
//! twice at Stripe either.

use std::sync::Arc;

use actix_web::http::header::HeaderMap;
use sha2::{Digest, Sha256};

use crate::db::idempotency_keys;
use crate::db::{Database, DbError};
use crate::error::ApiError;
use crate::stripe::RequestKey;

pub const HEADER: &str = "idempotency-key";

/// The header a replayed answer carries (Stripe's name).
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// Stripe's limit for a key.
pub const MAX_KEY_CHARS: usize = crate::stripe::MAX_KEY_CHARS;

/// How long a key is remembered; an older one is treated as new (Stripe's 24 h).
pub const KEY_TTL: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// How long a request may hold its key `in_flight` before it counts as abandoned (its
/// instance died mid-request) and a retry may take the key over. Far above the longest
/// request: a few Stripe calls, each bounded by `stripe_timeout_secs`.
pub const IN_FLIGHT_LEASE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// A client's idempotency key: 1 to 255 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The key of a request, `None` without the header. Empty, overlong or non-text keys are
    /// 400: silently ignoring a key would let a retry run twice.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, ApiError> {
        let Some(value) = headers.get(HEADER) else {
            return Ok(None);
        };
        let invalid = |detail: String| {
            ApiError::bad_request("invalid_idempotency_key", detail).with_header("Idempotency-Key")
        };
        let key = value
            .to_str()
            .map_err(|_| invalid("The Idempotency-Key header must be plain text.".to_owned()))?
            .trim();
        if key.is_empty() {
            return Err(invalid(
                "The Idempotency-Key header must not be empty: send a unique value such as a V4 UUID, or leave the header out.".to_owned(),
            ));
        }
        let chars = key.chars().count();
        if chars > MAX_KEY_CHARS {
            return Err(invalid(format!(
                "The Idempotency-Key header is {chars} characters long; keys can be at most {MAX_KEY_CHARS}."
            )));
        }
        Ok(Some(Self(key.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key for one Stripe call of the request made by the caller `tag` (see
    /// [`caller_tag`]): `<key>:<step>:<tag>`, or the key's SHA-256 in place of a key too long
    /// to take the suffix (Stripe's limit is ours: 255). Keys belong to a caller, and Stripe's
    /// are per account (the tenant's): without the tag two callers using one key would get the
    /// same object from Stripe, client secret included.
    pub fn for_stripe(&self, step: &str, tag: &str) -> String {
        crate::stripe::derived_key(&self.0, step, tag)
    }

    /// What the Stripe writes of the request made with this key by `subject` are keyed with.
    pub fn for_request(&self, subject: &str) -> Arc<RequestKey> {
        RequestKey::new(self.0.clone(), caller_tag(subject))
    }
}

/// A short stable tag of a caller (16 hex digits of the SHA-256 of the JWT subject), which the
/// Stripe keys of the caller's requests carry.
pub fn caller_tag(subject: &str) -> String {
    hex::encode(&Sha256::digest(subject.as_bytes())[..8])
}

/// What a retry must repeat to be answered from the saved response: the method, the path and
/// query, the caller, and the body (JSON compared by value, so key order and spacing do not
/// matter).
pub fn request_hash(method: &str, path_and_query: &str, subject: &str, body: &[u8]) -> String {
    let canonical = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .map(|value| sorted(value).to_string());
    let mut hasher = Sha256::new();
    for part in [
        method.as_bytes(),
        path_and_query.as_bytes(),
        subject.as_bytes(),
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.update(canonical.as_deref().map_or(body, str::as_bytes));
    hex::encode(hasher.finalize())
}

/// A JSON value with every object's keys in order, whatever map serde_json was built with.
fn sorted(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let ordered: std::collections::BTreeMap<String, Value> =
                map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(ordered.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Forgets expired keys every hour, for as long as the service runs.
pub async fn purge_expired_keys(db: Database) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(60 * 60));
    loop {
        every.tick().await;
        let before = chrono::Utc::now().naive_utc() - KEY_TTL;
        match db
            .run(move |conn| idempotency_keys::purge_expired(conn, before).map_err(DbError::from))
            .await
        {
            Ok(0) => {}
            Ok(purged) => tracing::info!(idempotency.purged = purged, "expired idempotency keys"),
            Err(err) => tracing::warn!(error = %err, "purging idempotency keys"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(
            HeaderName::from_static(HEADER),
            HeaderValue::from_str(value).unwrap(),
        );
        map
    }

    #[test]
    fn keys_are_one_to_255_characters() {
        assert_eq!(
            IdempotencyKey::from_headers(&HeaderMap::new()).unwrap(),
            None
        );
        assert!(IdempotencyKey::from_headers(&headers("")).is_err());
        assert!(IdempotencyKey::from_headers(&headers("  ")).is_err());
        let long = IdempotencyKey::from_headers(&headers(&"k".repeat(255)))
            .unwrap()
            .unwrap();
        let err = IdempotencyKey::from_headers(&headers(&"k".repeat(256))).unwrap_err();
        assert_eq!(err.status.as_u16(), 400);
        assert!(err.detail.contains("256"), "{}", err.detail);
        // A derived Stripe key never exceeds Stripe's limit.
        let tag = caller_tag("user-1");
        assert_eq!(tag.len(), 16);
        assert_ne!(tag, caller_tag("user-2"));
        assert!(long.for_stripe("payment_intent", &tag).len() <= 255);
        assert_eq!(
            IdempotencyKey("order-1".into()).for_stripe("customer", &tag),
            format!("order-1:customer:{tag}")
        );
    }

    #[test]
    fn the_hash_ignores_json_key_order_but_not_values_callers_or_routes() {
        let a = request_hash("POST", "/p", "u", br#"{"a":1,"b":{"c":2,"d":3}}"#);
        let b = request_hash("POST", "/p", "u", br#"{ "b": {"d":3, "c":2}, "a": 1 }"#);
        assert_eq!(a, b);
        assert_ne!(
            a,
            request_hash("POST", "/p", "u", br#"{"a":2,"b":{"c":2,"d":3}}"#)
        );
        assert_ne!(
            a,
            request_hash("POST", "/p", "v", br#"{"a":1,"b":{"c":2,"d":3}}"#)
        );
        assert_ne!(
            a,
            request_hash("PUT", "/p", "u", br#"{"a":1,"b":{"c":2,"d":3}}"#)
        );
        assert_ne!(
            a,
            request_hash("POST", "/p?x=1", "u", br#"{"a":1,"b":{"c":2,"d":3}}"#)
        );
        assert_eq!(
            request_hash("DELETE", "/p", "u", b""),
            request_hash("DELETE", "/p", "u", b"")
        );
    }

    #[test]
    fn stripe_calls_take_keys_of_their_request_and_caller() {
        let key = IdempotencyKey("k1".into());
        let scope = key.for_request("u1");
        let (first, second) = (scope.for_step("customer"), scope.for_step("attach"));
        let tag = caller_tag("u1");
        assert_eq!(first, format!("k1:customer:{tag}"));
        assert_eq!(second, format!("k1:attach:{tag}"));
        assert!(scope.wrote());
        // Another caller's same key is another key at Stripe.
        assert_ne!(key.for_request("u2").for_step("customer"), first);
        assert!(!IdempotencyKey("k2".into()).for_request("u1").wrote());
    }
}
