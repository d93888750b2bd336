//! What every request handler shares: the database, the master key, settings, tenant cache.
//! It only composes the parts below it (the tenant cache, the rate limits, the order lookups,
//! the receiver), each of which takes just what it needs.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Settings;
use crate::crypto::MasterKey;
use crate::db::Database;
use crate::domain::fetch::AllowList;
use crate::error::ApiError;
pub use crate::misses::UNKNOWN_TTL;
use crate::orders::lookup::Lookups;
use crate::outbound::egress::EgressPolicy;
use crate::ratelimit::RateLimits;
use crate::receiver::Receiver;
use crate::tenant_cache::TenantCache;
use crate::tenants::TenantContext;
use crate::tenants::platform::Platform;

pub struct AppState {
    pub db: Database,
    pub master: MasterKey,
    pub settings: Settings,
    /// Which tenant-given URLs this service may call (`crate::outbound::egress`).
    pub egress: EgressPolicy,
    /// Per-tenant and per-caller request limits (`crate::ratelimit`).
    pub limits: Arc<RateLimits>,
    /// Tenants by api key and by id (`crate::tenant_cache`).
    pub tenants: Arc<TenantCache>,
    /// Order lookups in flight and their recent misses (`crate::orders::lookup`).
    pub order_lookups: Lookups,
    /// The webhook receiver: its endpoint cache and batch writer (`crate::receiver`).
    pub receiver: Receiver,
    /// The operator's `fetch_allowed`, parsed (`crate::domain::fetch`).
    pub fetch_allowed: AllowList,
    /// Counts the sync jobs this instance queued: its sync workers wait on it as well as
    /// on their poll, so a job queued here starts at once (`AppState::sync_queued`).
    pub sync_queue: tokio::sync::watch::Sender<u64>,
}

impl AppState {
    /// Starts the receiver's batch writer threads.
    pub fn new(db: Database, master: MasterKey, settings: Settings) -> anyhow::Result<Self> {
        let stripe_timeout = Duration::from_secs(settings.stripe_timeout_secs.max(1));
        let cache_ttl = Duration::from_secs(settings.tenant_cache_secs.max(1));
        let platform =
            Platform::from_settings(&settings, db.clone(), master.clone(), stripe_timeout)?;
        let tenants = Arc::new(TenantCache::new(
            db.clone(),
            master.clone(),
            stripe_timeout,
            cache_ttl,
            platform,
        ));
        let receiver = Receiver::new(
            db.clone(),
            master.clone(),
            tenants.clone(),
            settings.receiver_writers,
            crate::receiver::WriterLimits {
                queue: settings.receiver_queue,
                answer_within: Duration::from_millis(settings.receiver_answer_timeout_ms.max(1)),
            },
            cache_ttl,
        );
        // Checked at start (`Application::build`); unreadable here: nothing is allowed.
        let fetch_allowed =
            crate::domain::fetch::AllowList::of_settings(&settings).unwrap_or_default();
        Ok(Self {
            db,
            master,
            fetch_allowed,
            egress: EgressPolicy::from_settings(&settings),
            limits: Arc::new(RateLimits::from_settings(&settings)),
            settings,
            tenants,
            order_lookups: Lookups::default(),
            receiver,
            sync_queue: tokio::sync::watch::Sender::new(0),
        })
    }

    /// Tells this instance's sync workers that a job was queued (after its transaction
    /// committed). Other instances find it at their next poll (`sync_poll_ms`).
    pub fn sync_queued(&self) {
        self.sync_queue.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// What an order lookup works with (`crate::orders::lookup`).
    pub fn order_lookup(&self) -> crate::orders::lookup::LookupContext<'_> {
        crate::orders::lookup::LookupContext {
            db: &self.db,
            master: &self.master,
            egress: self.egress,
            lookups: &self.order_lookups,
        }
    }

    /// Drops every cached endpoint (a tenant's notify_url changed here).
    pub fn forget_endpoints(&self) {
        self.receiver.endpoints().forget_all();
    }

    /// Drops a cached endpoint (its secrets changed here, or it was just created here and a
    /// delivery may have found its url_id unknown a moment before).
    pub fn forget_endpoint(&self, url_id: &str) {
        self.receiver.endpoints().forget(url_id);
    }

    /// The tenant an api key names, from the cache or the database; `None` for an unknown key.
    pub async fn tenant_by_api_key(
        &self,
        api_key: &str,
    ) -> Result<Option<Arc<TenantContext>>, ApiError> {
        self.tenants.by_api_key(api_key).await
    }

    /// How many tenant-by-api-key and endpoint-by-url_id queries this instance has made (what
    /// the caches of known and unknown values save; read by tests).
    pub fn database_lookups(&self) -> u64 {
        self.tenants.database_lookups() + self.receiver.endpoints().database_lookups()
    }

    /// The tenant with this id (the webhook receiver knows tenants by id), through the same
    /// cache.
    pub async fn tenant_by_id(&self, id: &str) -> Result<Option<Arc<TenantContext>>, ApiError> {
        self.tenants.by_id(id).await
    }
}
