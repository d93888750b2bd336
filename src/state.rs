//! What every request handler shares: the database, the master key, settings, tenant cache.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::config::Settings;
use crate::crypto::MasterKey;
use crate::db::Database;
use crate::error::ApiError;
use crate::tenants::TenantContext;

/// How long a loaded tenant (decrypted keys, JWT verifier, Stripe client) is reused before it
/// is read again, so a changed tenant takes effect within this time.
const TENANT_TTL: Duration = Duration::from_secs(30);

pub struct AppState {
    pub db: Database,
    pub master: MasterKey,
    pub settings: Settings,
    tenants: RwLock<HashMap<String, (Instant, Arc<TenantContext>)>>,
}

impl AppState {
    pub fn new(db: Database, master: MasterKey, settings: Settings) -> Self {
        Self {
            db,
            master,
            settings,
            tenants: RwLock::new(HashMap::new()),
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
        self.load_tenant(TenantKey::ApiKey(api_key.to_owned()))
            .await
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
