//! The webhook endpoints the receiver verifies deliveries for, by url_id: loaded with their
//! decrypted signing secrets and kept for a short while, and the url_ids recently found to
//! name no endpoint.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::crypto::MasterKey;
use crate::db::{Database, DbError};
use crate::error::ApiError;
use crate::misses::Misses;

/// A url_id as we issue them could look (`wh_<hex>`): letters, digits, `_` and `-`, at most 64
/// bytes. Anything else names no endpoint, without a query.
fn plausible_url_id(url_id: &str) -> bool {
    !url_id.is_empty()
        && url_id.len() <= 64
        && url_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// What the receiver needs of an endpoint, loaded once and kept for [`Endpoints`]' lifetime.
#[derive(Debug)]
pub struct ReceiverEndpoint {
    pub id: String,
    pub tenant_id: String,
    /// The tenant has a notify_url (its app is told of applied events).
    pub notify: bool,
    /// Disabled through our API: its deliveries are refused (410).
    pub disabled: bool,
    /// Its tenant is disabled by the operator: its deliveries are answered 503 (Stripe retries).
    pub tenant_disabled: bool,
    /// Decrypted signing secrets, newest first, with when each stops verifying (unix seconds).
    secrets: Vec<(String, Option<i64>)>,
    loaded: Instant,
}

impl ReceiverEndpoint {
    /// The secrets that still verify at `now` (unix seconds).
    pub fn live_secrets(&self, now: i64) -> Vec<String> {
        self.secrets
            .iter()
            .filter(|(_, expires)| expires.is_none_or(|at| at > now))
            .map(|(secret, _)| secret.clone())
            .collect()
    }

    /// How long ago this copy was read.
    pub fn age(&self) -> Duration {
        self.loaded.elapsed()
    }
}

/// This instance's endpoints, read from the database when not cached (or cached too long ago).
pub struct Endpoints {
    db: Database,
    master: MasterKey,
    /// How long an endpoint, its decrypted secrets and its tenant's state are reused
    /// (`tenant_cache_secs`). A secret rolled through another instance is found sooner: a
    /// signature that fails against the cached secrets is checked once more against the
    /// stored ones.
    ttl: Duration,
    endpoints: RwLock<HashMap<String, Arc<ReceiverEndpoint>>>,
    unknown_url_ids: Misses,
    /// Endpoint queries made (see [`Self::database_lookups`]).
    lookups: AtomicU64,
}

impl Endpoints {
    pub fn new(db: Database, master: MasterKey, ttl: Duration) -> Self {
        Self {
            db,
            master,
            ttl,
            endpoints: RwLock::new(HashMap::new()),
            unknown_url_ids: Misses::new(),
            lookups: AtomicU64::new(0),
        }
    }

    /// The endpoint a receiver URL names, from the cache or the database; `None` for an
    /// unknown url_id. `fresh` skips the cache (after a signature failed against it).
    pub async fn get(
        &self,
        url_id: &str,
        fresh: bool,
    ) -> Result<Option<Arc<ReceiverEndpoint>>, ApiError> {
        if !fresh
            && let Ok(cache) = self.endpoints.read()
            && let Some(endpoint) = cache.get(url_id)
            && endpoint.loaded.elapsed() < self.ttl
        {
            return Ok(Some(endpoint.clone()));
        }
        if !plausible_url_id(url_id) || self.unknown_url_ids.contains(url_id) {
            return Ok(None);
        }
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let found = self.load(url_id).await?;
        if found.is_none() {
            self.unknown_url_ids.insert(url_id);
        }
        let Ok(mut cache) = self.endpoints.write() else {
            return Ok(found.map(Arc::new));
        };
        Ok(match found {
            Some(endpoint) => {
                let endpoint = Arc::new(endpoint);
                cache.insert(url_id.to_owned(), endpoint.clone());
                Some(endpoint)
            }
            None => {
                cache.remove(url_id);
                None
            }
        })
    }

    /// Reads the endpoint, whether its tenant has a notify_url, and decrypts its secrets.
    async fn load(&self, url_id: &str) -> Result<Option<ReceiverEndpoint>, ApiError> {
        let master = self.master.clone();
        let wanted = url_id.to_owned();
        self.db
            .run(move |conn| {
                let found = crate::db::webhook_endpoints::find_by_url_id(conn, &wanted)
                    .map_err(DbError::from)?;
                let (notify, tenant_disabled) = match &found {
                    Some((endpoint, _)) => {
                        crate::db::tenants::delivery_state(conn, &endpoint.tenant_id)
                            .map_err(DbError::from)?
                            .unwrap_or((false, false))
                    }
                    None => (false, false),
                };
                Ok::<_, DbError>(found.map(|(endpoint, sealed)| {
                    ReceiverEndpoint {
                        disabled: endpoint.status == crate::db::webhook_endpoints::DISABLED,
                        id: endpoint.id,
                        tenant_id: endpoint.tenant_id,
                        notify,
                        tenant_disabled,
                        secrets: sealed
                            .iter()
                            .filter_map(|(enc, expires)| {
                                let secret = master.decrypt(enc).ok()?;
                                Some((secret, expires.map(|at| at.and_utc().timestamp())))
                            })
                            .collect(),
                        loaded: Instant::now(),
                    }
                }))
            })
            .await
            // Stripe retries a 503; the receiver never answers 500 for a storage failure.
            .map_err(ApiError::unavailable)
    }

    /// Drops every cached endpoint (a tenant's notify_url changed here).
    pub fn forget_all(&self) {
        if let Ok(mut cache) = self.endpoints.write() {
            cache.clear();
        }
    }

    /// Drops a cached endpoint (its secrets changed here, or it was just created here and a
    /// delivery may have found its url_id unknown a moment before).
    pub fn forget(&self, url_id: &str) {
        self.unknown_url_ids.remove(url_id);
        if let Ok(mut cache) = self.endpoints.write() {
            cache.remove(url_id);
        }
    }

    /// How many endpoint queries this cache has made.
    pub fn database_lookups(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }
}
