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
        let key = api_key.to_owned();
        let row = self
            .db
            .run(move |conn| {
                crate::db::tenants::find_by_api_key(conn, &key).map_err(ApiError::from)
            })
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let tenant = Arc::new(
            TenantContext::load(row, &self.master, self.stripe_timeout())
                .map_err(ApiError::internal)?,
        );
        if let Ok(mut cache) = self.tenants.write() {
            cache.insert(api_key.to_owned(), (Instant::now(), tenant.clone()));
        }
        Ok(Some(tenant))
    }
}
