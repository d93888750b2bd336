//! What every request handler shares: the database, the master key, settings, tenant cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::config::Settings;
use crate::crypto::MasterKey;
use crate::db::{Database, DbError};
use crate::egress::EgressPolicy;
use crate::error::ApiError;
use crate::ratelimit::RateLimits;
use crate::receiver::EventWriter;
use crate::tenants::TenantContext;

/// How long a loaded tenant (decrypted keys, JWT verifier, Stripe client) is reused before it
/// is read again, so a changed tenant takes effect within this time.
const TENANT_TTL: Duration = Duration::from_secs(30);

/// How long a webhook endpoint and its decrypted secrets are reused by the receiver. A secret
/// rolled through another instance is found sooner: a signature that fails against the cached
/// secrets is checked once more against the stored ones.
const ENDPOINT_TTL: Duration = Duration::from_secs(30);

/// How long an api key or url_id that named nothing is answered as unknown without asking the
/// database again. A tenant created by the CLI (another process) or an endpoint created through
/// another instance is found at most this long after a request tried its key or url_id before
/// it existed (url_ids are random, so in practice never); this instance forgets a url_id's miss
/// when it creates the endpoint.
pub const UNKNOWN_TTL: Duration = Duration::from_secs(5);

/// The most misses remembered per kind: a flood of distinct random values cannot grow memory
/// past this (expired ones are dropped first, then all).
const UNKNOWN_MAX: usize = 10_000;

/// Recent lookups that found nothing, so a repeated unknown value costs no database (or
/// backend) query: remembered for [`UNKNOWN_TTL`], at most [`UNKNOWN_MAX`] of them.
pub(crate) struct Misses {
    seen: Mutex<HashMap<String, Instant>>,
}

impl Misses {
    pub(crate) fn new() -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.seen
            .lock()
            .ok()
            .and_then(|seen| seen.get(key).map(|at| at.elapsed() < UNKNOWN_TTL))
            .unwrap_or(false)
    }

    pub(crate) fn insert(&self, key: &str) {
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() >= UNKNOWN_MAX {
                seen.retain(|_, at| at.elapsed() < UNKNOWN_TTL);
                if seen.len() >= UNKNOWN_MAX {
                    seen.clear();
                }
            }
            seen.insert(key.to_owned(), Instant::now());
        }
    }

    fn remove(&self, key: &str) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.remove(key);
        }
    }
}

/// An api key as we issue them could look (`pk_test_<hex>`; older or imported keys may differ):
/// printable ASCII, at most 255 bytes. Anything else names no tenant, without a query.
fn plausible_api_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic())
}

/// A url_id as we issue them could look (`wh_<hex>`): letters, digits, `_` and `-`, at most 64
/// bytes. Anything else names no endpoint, without a query.
fn plausible_url_id(url_id: &str) -> bool {
    !url_id.is_empty()
        && url_id.len() <= 64
        && url_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// What the receiver needs of an endpoint, loaded once and kept for [`ENDPOINT_TTL`].
#[derive(Debug)]
pub struct ReceiverEndpoint {
    pub id: String,
    pub tenant_id: String,
    /// The tenant has a notify_url (its app is told of applied events).
    pub notify: bool,
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

pub struct AppState {
    pub db: Database,
    pub master: MasterKey,
    pub settings: Settings,
    /// Which tenant-given URLs this service may call (`crate::egress`).
    pub egress: EgressPolicy,
    /// Per-tenant and per-caller request limits (`crate::ratelimit`).
    pub limits: RateLimits,
    tenants: RwLock<HashMap<String, (Instant, Arc<TenantContext>)>>,
    endpoints: RwLock<HashMap<String, Arc<ReceiverEndpoint>>>,
    unknown_api_keys: Misses,
    unknown_url_ids: Misses,
    /// Tenant-by-key and endpoint-by-url_id queries made (see [`Self::database_lookups`]).
    lookups: AtomicU64,
    /// Order lookups in flight and their recent misses (`crate::order_lookup`).
    pub order_lookups: crate::order_lookup::Lookups,
    /// Batches the receiver's writes (group commit).
    pub events: EventWriter,
}

impl AppState {
    /// Starts the receiver's batch writer threads.
    pub fn new(db: Database, master: MasterKey, settings: Settings) -> Self {
        let events = EventWriter::start(db.clone(), settings.receiver_writers);
        Self {
            db,
            master,
            egress: EgressPolicy::from_settings(&settings),
            limits: RateLimits::from_settings(&settings),
            settings,
            tenants: RwLock::new(HashMap::new()),
            endpoints: RwLock::new(HashMap::new()),
            unknown_api_keys: Misses::new(),
            unknown_url_ids: Misses::new(),
            lookups: AtomicU64::new(0),
            order_lookups: crate::order_lookup::Lookups::default(),
            events,
        }
    }

    /// The endpoint a receiver URL names, from the cache or the database; `None` for an
    /// unknown url_id. `fresh` skips the cache (after a signature failed against it).
    pub async fn receiver_endpoint(
        &self,
        url_id: &str,
        fresh: bool,
    ) -> Result<Option<Arc<ReceiverEndpoint>>, ApiError> {
        if !fresh
            && let Ok(cache) = self.endpoints.read()
            && let Some(endpoint) = cache.get(url_id)
            && endpoint.loaded.elapsed() < ENDPOINT_TTL
        {
            return Ok(Some(endpoint.clone()));
        }
        if !plausible_url_id(url_id) || self.unknown_url_ids.contains(url_id) {
            return Ok(None);
        }
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let master = self.master.clone();
        let wanted = url_id.to_owned();
        let found = self
            .db
            .run(move |conn| {
                let found = crate::db::webhook_endpoints::find_by_url_id(conn, &wanted)
                    .map_err(DbError::from)?;
                let notify = match &found {
                    Some((endpoint, _)) => {
                        crate::db::tenants::notify_target(conn, &endpoint.tenant_id)
                            .map_err(DbError::from)?
                            .is_some()
                    }
                    None => false,
                };
                Ok::<_, DbError>(found.map(|(endpoint, sealed)| {
                    ReceiverEndpoint {
                        id: endpoint.id,
                        tenant_id: endpoint.tenant_id,
                        notify,
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
            .map_err(ApiError::unavailable)?;
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

    /// Drops every cached endpoint (a tenant's notify_url changed here).
    pub fn forget_endpoints(&self) {
        if let Ok(mut cache) = self.endpoints.write() {
            cache.clear();
        }
    }

    /// Drops a cached endpoint (its secrets changed here, or it was just created here and a
    /// delivery may have found its url_id unknown a moment before).
    pub fn forget_endpoint(&self, url_id: &str) {
        self.unknown_url_ids.remove(url_id);
        if let Ok(mut cache) = self.endpoints.write() {
            cache.remove(url_id);
        }
    }

    fn stripe_timeout(&self) -> Duration {
        Duration::from_secs(self.settings.stripe_timeout_secs.max(1))
    }

    /// The tenant an api key names, from the cache or the database; `None` for an unknown key.
    pub async fn tenant_by_api_key(
        &self,
        api_key: &str,
    ) -> Result<Option<Arc<TenantContext>>, ApiError> {
        if let Ok(cache) = self.tenants.read()
            && let Some((loaded, tenant)) = cache.get(api_key)
            && loaded.elapsed() < TENANT_TTL
        {
            return Ok(Some(tenant.clone()));
        }
        if !plausible_api_key(api_key) || self.unknown_api_keys.contains(api_key) {
            return Ok(None);
        }
        let tenant = self
            .load_tenant(TenantKey::ApiKey(api_key.to_owned()))
            .await?;
        if tenant.is_none() {
            self.unknown_api_keys.insert(api_key);
        }
        Ok(tenant)
    }

    /// How many tenant-by-api-key and endpoint-by-url_id queries this instance has made (what
    /// the caches of known and unknown values save; read by tests).
    pub fn database_lookups(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }

    /// The tenant with this id (the webhook receiver knows tenants by id), through the same
    /// cache.
    pub async fn tenant_by_id(&self, id: &str) -> Result<Option<Arc<TenantContext>>, ApiError> {
        if let Ok(cache) = self.tenants.read()
            && let Some((_, tenant)) = cache
                .values()
                .find(|(loaded, t)| t.id == id && loaded.elapsed() < TENANT_TTL)
        {
            return Ok(Some(tenant.clone()));
        }
        self.load_tenant(TenantKey::Id(id.to_owned())).await
    }

    /// Reads the row and builds the context (decrypting keys, building the Stripe client,
    /// which reads the system's certificates) on the blocking pool, then caches it.
    async fn load_tenant(&self, key: TenantKey) -> Result<Option<Arc<TenantContext>>, ApiError> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let master = self.master.clone();
        let timeout = self.stripe_timeout();
        let tenant = self
            .db
            .run(move |conn| {
                let row = match &key {
                    TenantKey::ApiKey(k) => crate::db::tenants::find_by_api_key(conn, k),
                    TenantKey::Id(id) => crate::db::tenants::find_by_id(conn, id),
                }
                .map_err(ApiError::from)?;
                row.map(|row| TenantContext::load(row, &master, timeout).map(Arc::new))
                    .transpose()
                    .map_err(ApiError::internal)
            })
            .await?;
        if let Some(tenant) = &tenant
            && let Ok(mut cache) = self.tenants.write()
        {
            cache.insert(tenant.api_key.clone(), (Instant::now(), tenant.clone()));
        }
        Ok(tenant)
    }
}

enum TenantKey {
    ApiKey(String),
    Id(String),
}
