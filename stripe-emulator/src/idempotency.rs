//! `Idempotency-Key` handling, as Stripe does it.
//!
//! The first POST with a key saves its status and body; a retry with the same endpoint and
//! parameters replays them byte for byte (with `Idempotent-Replayed: true`); the same key on
//! another endpoint or with other parameters is a 400 `idempotency_error`. Keys are
//! forgotten after 24 hours. Requests rejected by validation are not saved (see
//! [`should_save`]), so a corrected retry with the same key goes through.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// How long a key is remembered.
pub const KEY_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Stripe's maximum key length.
pub const MAX_KEY_LEN: usize = 255;

/// A saved response.
#[derive(Debug, Clone)]
pub struct Saved {
    /// HTTP status of the first response.
    pub status: u16,
    /// Its exact body.
    pub body: String,
    /// Request id of the first response.
    pub request_id: String,
    path: String,
    fingerprint: String,
    at: Instant,
}

/// The outcome of looking a key up.
#[derive(Debug)]
pub enum Lookup {
    /// Never seen (or expired): execute the request.
    Miss,
    /// Seen with the same request: answer the saved response.
    Replay(Saved),
    /// Seen with another request: answer this error.
    Conflict(ApiError),
}

/// A request that carries an `Idempotency-Key`.
#[derive(Debug, Clone, Copy)]
pub struct KeyedRequest<'a> {
    /// The `Stripe-Account` (`""` for the key's own account): keys are scoped per account.
    pub account: &'a str,
    /// The idempotency key.
    pub key: &'a str,
    /// The request path.
    pub path: &'a str,
    /// See [`fingerprint`].
    pub fingerprint: &'a str,
}

/// The saved responses of one secret key, keyed by (account, idempotency key).
#[derive(Debug, Default)]
pub struct IdempotencyCache {
    entries: HashMap<(String, String), Saved>,
    prune_at: usize,
}

/// A fingerprint of a request: method, path and its parameters in canonical order.
pub fn fingerprint(method: &str, path: &str, canonical_params: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(b" ");
    hasher.update(path.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical_params.as_bytes());
    hex::encode(hasher.finalize())
}

/// Whether a response is saved under its key. Stripe saves the outcome once an endpoint has
/// started executing (successes, card declines, server errors); requests rejected up front
/// by validation (400, 401, 404) are not saved.
pub fn should_save(status: u16) -> bool {
    status < 400 || status == 402 || status >= 500
}

/// Validates a key from the `Idempotency-Key` header.
pub fn validate_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() {
        return Err(ApiError::invalid_request(
            "Idempotency-Key header must not be empty.",
        ));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(ApiError::invalid_request(format!(
            "Idempotency-Key header is too long ({} characters). Keys can be at most {MAX_KEY_LEN} characters.",
            key.len()
        )));
    }
    Ok(())
}

impl IdempotencyCache {
    /// Looks the request's key up.
    pub fn lookup(&self, req: &KeyedRequest<'_>) -> Lookup {
        let Some(saved) = self
            .entries
            .get(&(req.account.to_owned(), req.key.to_owned()))
        else {
            return Lookup::Miss;
        };
        if saved.at.elapsed() > KEY_TTL {
            return Lookup::Miss;
        }
        if saved.path != req.path {
            return Lookup::Conflict(ApiError::new(
                400,
                crate::error::ErrorType::Idempotency,
                format!(
                    "Keys for idempotent requests can only be used for the same endpoint they were \
                     first used for ('{}' vs '{}'). Try using a key other than '{}' if you \
                     meant to execute a different request.",
                    saved.path, req.path, req.key
                ),
            ));
        }
        if saved.fingerprint != req.fingerprint {
            return Lookup::Conflict(ApiError::idempotency_mismatch(req.key));
        }
        Lookup::Replay(saved.clone())
    }

    /// Saves the response (`status`, `body`, `request_id`) to a request under its key.
    pub fn save(&mut self, req: &KeyedRequest<'_>, status: u16, body: &str, request_id: &str) {
        if self.entries.len() >= self.prune_at {
            self.entries
                .retain(|_, saved| saved.at.elapsed() <= KEY_TTL);
            self.prune_at = (self.entries.len() * 2).max(1024);
        }
        self.entries.insert(
            (req.account.to_owned(), req.key.to_owned()),
            Saved {
                status,
                body: body.to_owned(),
                request_id: request_id.to_owned(),
                path: req.path.to_owned(),
                fingerprint: req.fingerprint.to_owned(),
                at: Instant::now(),
            },
        );
    }

    /// Forgets every key.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Number of remembered keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorType;

    #[test]
    fn replay_and_conflicts() {
        let mut cache = IdempotencyCache::default();
        let fp = fingerprint("POST", "/v1/customers", "email=a");
        let req = KeyedRequest {
            account: "",
            key: "k1",
            path: "/v1/customers",
            fingerprint: &fp,
        };
        assert!(matches!(cache.lookup(&req), Lookup::Miss));
        cache.save(&req, 200, "{\"id\":\"cus_1\"}", "req_1");
        let Lookup::Replay(saved) = cache.lookup(&req) else {
            panic!("replay")
        };
        assert_eq!(saved.status, 200);
        assert_eq!(saved.body, "{\"id\":\"cus_1\"}");
        assert_eq!(saved.request_id, "req_1");
        let other = fingerprint("POST", "/v1/customers", "email=b");
        let Lookup::Conflict(err) = cache.lookup(&KeyedRequest {
            fingerprint: &other,
            ..req
        }) else {
            panic!("conflict")
        };
        assert_eq!(err.kind, ErrorType::Idempotency);
        assert_eq!(err.status, 400);
        assert!(
            err.message.starts_with(
                "Keys for idempotent requests can only be used with the same parameters"
            )
        );
        let Lookup::Conflict(err) = cache.lookup(&KeyedRequest {
            path: "/v1/payment_methods",
            ..req
        }) else {
            panic!("conflict")
        };
        assert!(err.message.contains("same endpoint"));
        // Keys are per account.
        assert!(matches!(
            cache.lookup(&KeyedRequest {
                account: "acct_1",
                ..req
            }),
            Lookup::Miss
        ));
        assert_eq!(cache.len(), 1);
        cache.clear();
        assert!(cache.is_empty());
    }

    #[test]
    fn what_is_saved() {
        assert!(should_save(200));
        assert!(should_save(402));
        assert!(should_save(500));
        assert!(!should_save(400));
        assert!(!should_save(404));
        assert!(validate_key("").is_err());
        assert!(validate_key(&"k".repeat(256)).is_err());
        assert!(validate_key(&"k".repeat(255)).is_ok());
    }
}
