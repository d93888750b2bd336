//! Loaded tenants (decrypted keys, JWT verifier, Stripe client), by api key and by id, kept for
//! a short while, and the api keys recently found to name no tenant.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::crypto::MasterKey;
use crate::db::Database;
use crate::error::ApiError;
use crate::misses::Misses;
use crate::tenants::TenantContext;
use crate::tenants::platform::Platform;

/// An api key as we issue them could look (`pk_test_<hex>`; older or imported keys may differ):
/// printable ASCII, at most 255 bytes. Anything else names no tenant, without a query.
fn plausible_api_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic())
}

/// This instance's tenants, read from the database when not cached (or cached too long ago).
pub struct TenantCache {
    db: Database,
    master: MasterKey,
    /// The Stripe client's timeout for the tenants it loads.
    stripe_timeout: Duration,
    /// How long a loaded tenant (decrypted keys, JWT verifier, Stripe client, whether it is
    /// disabled) is reused before it is read again (`tenant_cache_secs`): a tenant changed by
    /// the CLI or another instance takes effect here within this time.
    ttl: Duration,
    tenants: RwLock<HashMap<String, (Instant, Arc<TenantContext>)>>,
    unknown_api_keys: Misses,
    /// Tenant queries made (see [`Self::database_lookups`]).
    lookups: AtomicU64,
    /// The platform connected tenants reach Stripe through (`None`: not configured).
    platform: Option<Arc<Platform>>,
    /// One load at a time per key: when a busy tenant's entry expires, the requests that find
    /// it stale wait for the first one's load instead of each building the tenant again (a
    /// Stripe client reads the system's certificates: tens of ms of CPU each; 32 callers of
    /// one tenant at once took both cores for a second and stalled every tenant, the fault
    /// suite's scenario 3). An entry lives only while a load runs, so unknown keys do not
    /// pile up here.
    /// The flag is set when a load of the key failed: those waiting behind it fail at once
    /// too instead of each trying again in turn (while the database is down every try waits
    /// out the pool's timeout, so 24 waiters would take 24 of them).
    loading: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<bool>>>>,
}

impl TenantCache {
    pub fn new(
        db: Database,
        master: MasterKey,
        stripe_timeout: Duration,
        ttl: Duration,
        platform: Option<Arc<Platform>>,
    ) -> Self {
        Self {
            db,
            master,
            stripe_timeout,
            ttl,
            tenants: RwLock::new(HashMap::new()),
            unknown_api_keys: Misses::new(),
            loading: std::sync::Mutex::new(HashMap::new()),
            lookups: AtomicU64::new(0),
            platform,
        }
    }

    /// The tenant an api key names, from the cache or the database; `None` for an unknown key.
    pub async fn by_api_key(&self, api_key: &str) -> Result<Option<Arc<TenantContext>>, ApiError> {
        if let Some(tenant) = self.cached(&TenantKey::ApiKey(api_key.to_owned())) {
            return Ok(Some(tenant));
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

    /// The tenant with this id (the webhook receiver knows tenants by id), through the same
    /// cache.
    pub async fn by_id(&self, id: &str) -> Result<Option<Arc<TenantContext>>, ApiError> {
        let key = TenantKey::Id(id.to_owned());
        if let Some(tenant) = self.cached(&key) {
            return Ok(Some(tenant));
        }
        self.load_tenant(key).await
    }

    /// The tenant a key names if it was loaded less than the cache's lifetime ago.
    fn cached(&self, key: &TenantKey) -> Option<Arc<TenantContext>> {
        let cache = self.tenants.read().ok()?;
        let fresh = |loaded: &Instant| loaded.elapsed() < self.ttl;
        match key {
            TenantKey::ApiKey(k) => cache
                .get(k)
                .filter(|(loaded, _)| fresh(loaded))
                .map(|(_, tenant)| tenant.clone()),
            TenantKey::Id(id) => cache
                .values()
                .find(|(loaded, t)| t.id == *id && fresh(loaded))
                .map(|(_, tenant)| tenant.clone()),
        }
    }

    /// The platform, when configured.
    pub fn platform(&self) -> Option<&Arc<Platform>> {
        self.platform.as_ref()
    }

    /// Drops a tenant from this instance's cache (its Stripe access changed here); other
    /// instances read it again within their cache's lifetime.
    pub fn forget(&self, tenant_id: &str) {
        if let Ok(mut cache) = self.tenants.write() {
            cache.retain(|_, (_, tenant)| tenant.id != tenant_id);
        }
    }

    /// How many tenant queries this cache has made.
    pub fn database_lookups(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }

    /// Reads the row and builds the context (decrypting keys, building the Stripe client,
    /// which reads the system's certificates) on the blocking pool, then caches it: one load
    /// at a time per key.
    async fn load_tenant(&self, key: TenantKey) -> Result<Option<Arc<TenantContext>>, ApiError> {
        let name = match &key {
            TenantKey::ApiKey(k) => format!("key:{k}"),
            TenantKey::Id(id) => format!("id:{id}"),
        };
        let turn = self
            .loading
            .lock()
            .map(|mut loading| loading.entry(name.clone()).or_default().clone())
            .unwrap_or_default();
        let loaded = {
            let mut failed = turn.lock().await;
            // Another request may have loaded it while this one waited, or failed to.
            match self.cached(&key) {
                Some(tenant) => Ok(Some(tenant)),
                None if *failed => Err(ApiError::unavailable(
                    "the tenant could not be loaded by the request before this one",
                )),
                None => {
                    let loaded = self.load_now(key).await;
                    *failed = loaded.is_err();
                    loaded
                }
            }
        };
        if let Ok(mut loading) = self.loading.lock()
            && loading.get(&name).is_some_and(|t| Arc::ptr_eq(t, &turn))
            && Arc::strong_count(&turn) <= 2
        {
            loading.remove(&name);
        }
        loaded
    }

    async fn load_now(&self, key: TenantKey) -> Result<Option<Arc<TenantContext>>, ApiError> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let master = self.master.clone();
        let timeout = self.stripe_timeout;
        let platform = self.platform.clone();
        let tenant = self
            .db
            .run(move |conn| {
                let row = match &key {
                    TenantKey::ApiKey(k) => crate::db::tenants::find_by_api_key(conn, k),
                    TenantKey::Id(id) => crate::db::tenants::find_by_id(conn, id),
                }
                .map_err(ApiError::from)?;
                row.map(|row| {
                    TenantContext::load(row, &master, timeout, platform.as_ref()).map(Arc::new)
                })
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
