//! Settings: config/default.toml, then an optional env file, then environment variables.

use std::path::PathBuf;

use anyhow::Context;
use secrecy::SecretString;
use serde::Deserialize;

/// Everything the service reads at start. See config/default.toml for each key's meaning.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub bind: String,
    pub database_url: String,
    pub database_pool_size: u32,
    /// SQLite only: how long a write waits for another process's write lock, in milliseconds
    /// (this process's writers queue on an in-process lock instead).
    pub database_busy_timeout_ms: u64,
    /// PostgreSQL: longest a statement may run, in ms (0: no limit).
    pub database_statement_timeout_ms: u64,
    /// PostgreSQL: longest a statement may wait for a lock, in ms (0: no limit).
    pub database_lock_timeout_ms: u64,
    /// PostgreSQL: longest a new connection may take, in seconds (0: libpq's default).
    pub database_connect_timeout_secs: u64,
    pub public_url: String,
    /// Base64 of 32 bytes; a secrecy type so `Debug` of the settings never prints it.
    #[serde(default)]
    pub master_key: SecretString,
    /// Comma-separated keys rolled away from: they still decrypt, never encrypt.
    #[serde(default)]
    pub master_key_previous: SecretString,
    /// When set, `GET /metrics` requires `Authorization: Bearer <metrics_token>`.
    #[serde(default)]
    pub metrics_token: SecretString,
    pub master_key_file: PathBuf,
    /// `production` (SALES_ENV) makes a missing master key an error instead of a generated one.
    #[serde(default)]
    pub env: String,
    pub log_format: LogFormat,
    pub log_filter: String,
    pub cors_origins: Vec<String>,
    pub max_body_bytes: usize,
    pub stripe_timeout_secs: u64,
    /// How long a loaded tenant and a webhook endpoint are reused before they are read again,
    /// in seconds (at least 1): the longest a CLI change takes to reach a running instance.
    pub tenant_cache_secs: u64,
    #[serde(default)]
    pub receiver_writers: u32,
    /// Deliveries that may wait for a writer; more are answered 503 at once.
    pub receiver_queue: usize,
    /// On SIGTERM: how long requests in flight, then the notification worker, may finish.
    pub shutdown_grace_secs: u64,
    /// Longest a delivery waits for its batch to commit before it is answered 503, in ms.
    pub receiver_answer_timeout_ms: u64,
    /// Run the notification worker in this instance.
    pub notify_worker: bool,
    /// How often the worker looks for due notifications, in milliseconds.
    pub notify_poll_ms: u64,
    /// The first retry's delay in milliseconds; each further one doubles it (up to 6 h).
    pub notify_retry_base_ms: u64,
    /// Attempts before a notification is given up (status failed).
    pub notify_max_attempts: i64,
    /// Days stored event payloads are kept (rows: at least 30); 0 keeps them forever.
    pub event_payload_retention_days: u32,
    /// Days delivered or failed notifications (and attempts) are kept; 0 keeps them forever.
    pub notification_retention_days: u32,
    /// Tenant URLs (notify_url...) may be `http`, not only `https` (see `crate::outbound::egress`).
    #[serde(default)]
    pub egress_allow_http: bool,
    /// Tenant URLs may point at loopback addresses (tests and the demo; never in production).
    #[serde(default)]
    pub egress_allow_loopback: bool,
    /// Requests per second each tenant may make through the API (token bucket; 0: no limit).
    pub rate_limit_tenant_per_sec: u32,
    /// Requests a tenant may make at once past its rate.
    pub rate_limit_tenant_burst: u32,
    /// Requests per second each caller (a token's subject in a tenant) may make (0: no limit).
    pub rate_limit_caller_per_sec: u32,
    /// Requests a caller may make at once past its rate.
    pub rate_limit_caller_burst: u32,
    /// Stripe Connect / Stripe Apps (see config/default.toml). The platform's own secret key:
    /// Connect token exchanges, calls with `Stripe-Account`, Apps token exchanges.
    #[serde(default)]
    pub stripe_platform_secret_key: SecretString,
    /// The platform's Connect client id (`ca_...`).
    #[serde(default)]
    pub stripe_connect_client_id: String,
    /// The Stripe App's OAuth client id.
    #[serde(default)]
    pub stripe_app_client_id: String,
    /// The Stripe App's signing secret (`absec_...`): install links' `install_signature`.
    #[serde(default)]
    pub stripe_app_secret: SecretString,
    /// The platform's Connect webhook signing secrets (comma-separated `whsec_...`).
    #[serde(default)]
    pub stripe_platform_webhook_secrets: SecretString,
    /// Where a browser lands with `?claim_token=` after an install started on Stripe's side.
    #[serde(default)]
    pub connect_claim_url: String,
    /// Origins a login's `return_url` may point at (empty: `cors_origins`, without `*`).
    #[serde(default)]
    pub connect_return_origins: Vec<String>,
    /// Connect's host (`https://connect.stripe.com`; the emulator's `/connect` in tests).
    pub stripe_connect_base: String,
    /// The Stripe Apps install host (`https://marketplace.stripe.com`).
    pub stripe_marketplace_base: String,
    /// Stripe's API for the platform's calls (empty: Stripe's own).
    #[serde(default)]
    pub stripe_api_base: String,
    /// Run the historical sync worker in this instance.
    pub sync_worker: bool,
    /// Stripe requests per second a sync makes for one tenant.
    pub sync_requests_per_sec: u32,
    /// How often the sync worker looks for jobs, in milliseconds.
    pub sync_poll_ms: u64,
    /// How long a worker's lease on a job lasts without renewal (a dead worker's lapses).
    pub sync_lease_secs: u64,
    /// How often each tenant's events are reconciled with Stripe's, in seconds (0: never on
    /// its own; `POST /stripe/sync/reconcile` still works).
    pub reconcile_interval_secs: u64,
    /// Queue a historical sync of every type when a tenant connects a Stripe account
    /// (Connect or Stripe Apps), so the mirror holds the account's history.
    pub sync_on_connect: bool,
    /// What `POST /stripe/fetch` may pass through to Stripe: `METHOD /v1/...` rules, `{id}`
    /// standing for an object id (`crate::domain::fetch`); tenants may narrow it.
    pub fetch_allowed: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

const DEFAULTS: &str = include_str!("../config/default.toml");

impl Settings {
    /// Loads the layered settings. `config/default.toml` is compiled in, so the binary runs from
    /// any directory; a `config/local.toml` beside the working directory overrides it.
    pub fn load() -> anyhow::Result<Self> {
        let env_file = std::env::var("SALES_ENV_FILE").ok();
        match &env_file {
            Some(path) => {
                dotenvy::from_path(path).with_context(|| format!("reading env file {path}"))?;
            }
            None => {
                // A missing .env is normal; a malformed one is an error worth stopping for.
                if let Err(err) = dotenvy::dotenv()
                    && !err.not_found()
                {
                    return Err(err).context("reading .env");
                }
            }
        }
        let settings = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml))
            .add_source(config::File::with_name("config/local").required(false))
            .add_source(
                config::Environment::with_prefix("SALES")
                    .prefix_separator("_")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("cors_origins")
                    .with_list_parse_key("connect_return_origins")
                    .with_list_parse_key("fetch_allowed"),
            )
            .set_override_option("database_url", std::env::var("DATABASE_URL").ok())?
            .build()
            .context("building settings")?
            .try_deserialize::<Settings>()
            .context("reading settings")?;
        Ok(settings)
    }

    /// Production mode: `SALES_ENV=production` (or the CLI's `--production`).
    pub fn is_production(&self) -> bool {
        self.env.trim().eq_ignore_ascii_case("production")
    }

    pub fn public_url(&self) -> &str {
        self.public_url.trim_end_matches('/')
    }
}
