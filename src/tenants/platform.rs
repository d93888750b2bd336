//! The platform: this service's own Stripe account, through which tenants connect theirs
//! (Connect OAuth, Stripe Apps). Its key, hosts and OAuth client, and the Stripe Apps token
//! source of each tenant connected by an app.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{NaiveDateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use crate::config::Settings;
use crate::crypto::MasterKey;
use crate::db::{Database, DbError, connect as rows};
use crate::stripe::oauth::{OAuthClient, OAuthError};
use crate::stripe::{GatewayError, TokenSource};

/// How long a Stripe Apps access token lives (Stripe's answer does not say: one hour).
pub const ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// A token this close to its expiry is refreshed before use.
const REFRESH_EARLY: Duration = Duration::from_secs(60);
/// How long an instance may hold a tenant's refresh lease (a dead instance's lapses).
const LEASE: Duration = Duration::from_secs(30);
/// How long a call waits for another instance's refresh before giving up (504).
const WAIT_FOR_REFRESH: Duration = Duration::from_secs(10);

/// The platform's configuration, when the operator set a platform key.
pub struct Platform {
    pub secret_key: SecretString,
    /// Stripe's API for the platform's calls (`None`: Stripe's own).
    pub api_base: Option<String>,
    pub oauth: OAuthClient,
    pub db: Database,
    pub master: MasterKey,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform")
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

impl Platform {
    /// `None` unless `stripe_platform_secret_key` is set.
    pub fn from_settings(
        settings: &Settings,
        db: Database,
        master: MasterKey,
        timeout: Duration,
    ) -> anyhow::Result<Option<Arc<Self>>> {
        let key = settings.stripe_platform_secret_key.expose_secret().trim();
        if key.is_empty() {
            return Ok(None);
        }
        let api_base = Some(settings.stripe_api_base.trim())
            .filter(|b| !b.is_empty())
            .map(str::to_owned);
        let oauth = OAuthClient::new(
            &settings.stripe_connect_base,
            api_base.as_deref().unwrap_or_default(),
            SecretString::from(key.to_owned()),
            timeout,
        )
        .map_err(|err| anyhow::anyhow!("the platform's OAuth client: {err}"))?;
        Ok(Some(Arc::new(Self {
            secret_key: SecretString::from(key.to_owned()),
            api_base,
            oauth,
            db,
            master,
        })))
    }
}

fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

fn after(d: Duration) -> NaiveDateTime {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| now().checked_add_signed(d))
        .unwrap_or(NaiveDateTime::MAX)
}

fn db_failure(err: DbError) -> GatewayError {
    GatewayError::Unreachable(format!("the token store: {err}"))
}

/// A Stripe Apps tenant's access tokens: kept by this instance while valid, refreshed one at
/// a time per tenant (a mutex here, a lease row across instances), the new refresh token
/// stored before the new access token is used.
pub struct AppTokens {
    platform: Arc<Platform>,
    tenant_id: String,
    current: tokio::sync::Mutex<Option<(String, NaiveDateTime)>>,
}

impl AppTokens {
    pub fn new(platform: Arc<Platform>, tenant_id: String) -> Self {
        Self {
            platform,
            tenant_id,
            current: tokio::sync::Mutex::new(None),
        }
    }

    fn usable(token: &(String, NaiveDateTime), stale: Option<&str>) -> bool {
        let early = chrono::Duration::from_std(REFRESH_EARLY).unwrap_or_default();
        stale != Some(token.0.as_str()) && token.1 > now() + early
    }

    /// The stored token if usable; else a refresh under the lease, or a wait for another
    /// instance's.
    async fn obtain(&self, stale: Option<String>) -> Result<(String, NaiveDateTime), GatewayError> {
        let waited_until = after(WAIT_FOR_REFRESH);
        loop {
            if let Some(token) = self.stored(stale.as_deref()).await? {
                return Ok(token);
            }
            let tenant = self.tenant_id.clone();
            let (at, until) = (now(), after(LEASE));
            let leased = self
                .platform
                .db
                .run(move |conn| rows::take_lease(conn, &tenant, at, until).map_err(DbError::from))
                .await
                .map_err(db_failure)?;
            if leased {
                return self.refresh_leased(stale.as_deref()).await;
            }
            if now() > waited_until {
                return Err(GatewayError::Timeout);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The stored access token, unless it is `stale` or about to expire. `NotConnected` when
    /// the tenant is no longer connected by an app.
    async fn stored(
        &self,
        stale: Option<&str>,
    ) -> Result<Option<(String, NaiveDateTime)>, GatewayError> {
        let tenant = self.tenant_id.clone();
        let stored = self
            .platform
            .db
            .run(move |conn| rows::tokens(conn, &tenant).map_err(DbError::from))
            .await
            .map_err(db_failure)?;
        let Some(stored) = stored.filter(|s| s.access == rows::ACCESS_APP) else {
            return Err(GatewayError::NotConnected);
        };
        let (Some(enc), Some(expires)) = (stored.access_token_enc, stored.expires_at) else {
            return Ok(None);
        };
        let token = self
            .platform
            .master
            .decrypt(&enc)
            .map_err(|err| GatewayError::Config(err.to_string()))?;
        let token = (token, expires);
        Ok(Self::usable(&token, stale).then_some(token))
    }

    /// Refreshes with the stored refresh token (read again now that the lease is ours: another
    /// instance may have refreshed meanwhile, voiding the one read before).
    async fn refresh_leased(
        &self,
        stale: Option<&str>,
    ) -> Result<(String, NaiveDateTime), GatewayError> {
        let result = self.refresh_with_lease(stale).await;
        if result.is_err() {
            let tenant = self.tenant_id.clone();
            // Best effort: a lease left behind lapses after LEASE.
            let _ = self
                .platform
                .db
                .run(move |conn| rows::release_lease(conn, &tenant).map_err(DbError::from))
                .await;
        }
        result
    }

    async fn refresh_with_lease(
        &self,
        stale: Option<&str>,
    ) -> Result<(String, NaiveDateTime), GatewayError> {
        if let Some(token) = self.stored(stale).await? {
            return Ok(token);
        }
        let tenant = self.tenant_id.clone();
        let stored = self
            .platform
            .db
            .run(move |conn| rows::tokens(conn, &tenant).map_err(DbError::from))
            .await
            .map_err(db_failure)?;
        let refresh_enc = stored
            .and_then(|s| s.refresh_token_enc)
            .ok_or(GatewayError::NotConnected)?;
        let refresh = self
            .platform
            .master
            .decrypt(&refresh_enc)
            .map_err(|err| GatewayError::Config(err.to_string()))?;
        let grant = match self.platform.oauth.refresh_app_token(&refresh).await {
            Ok(grant) => grant,
            Err(err) if err.is_invalid_grant() => {
                tracing::warn!(
                    tenant.id = %self.tenant_id,
                    "Stripe refused the app's refresh token: the tenant is now disconnected"
                );
                let (tenant, at) = (self.tenant_id.clone(), now());
                self.platform
                    .db
                    .run(move |conn| {
                        rows::disconnect(conn, &tenant, None, at).map_err(DbError::from)
                    })
                    .await
                    .map_err(db_failure)?;
                return Err(GatewayError::NotConnected);
            }
            Err(OAuthError::Refused {
                status,
                description,
                ..
            }) => {
                return Err(GatewayError::Unreachable(format!(
                    "the token refresh was refused ({status}): {description}"
                )));
            }
            Err(err) => return Err(GatewayError::Unreachable(err.to_string())),
        };
        let (Some(access), Some(refresh)) = (grant.access_token, grant.refresh_token) else {
            return Err(GatewayError::BadResponse(
                "the token refresh answered without tokens".into(),
            ));
        };
        let expires = after(ACCESS_TOKEN_LIFETIME);
        let (access_enc, refresh_enc) = (
            self.platform.master.encrypt(&access),
            self.platform.master.encrypt(&refresh),
        );
        let tenant = self.tenant_id.clone();
        // Stored before the new access token is used: the old refresh token is void now.
        let saved = self
            .platform
            .db
            .run(move |conn| {
                rows::save_tokens(conn, &tenant, &access_enc, expires, &refresh_enc)
                    .map_err(DbError::from)
            })
            .await
            .map_err(db_failure)?;
        if !saved {
            return Err(GatewayError::NotConnected);
        }
        crate::metrics::token_refresh();
        Ok((access, expires))
    }
}

#[async_trait]
impl TokenSource for AppTokens {
    async fn token(&self) -> Result<String, GatewayError> {
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref()
            && Self::usable(token, None)
        {
            return Ok(token.0.clone());
        }
        let token = self.obtain(None).await?;
        *current = Some(token.clone());
        Ok(token.0)
    }

    async fn refresh(&self, stale: &str) -> Result<String, GatewayError> {
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref()
            && Self::usable(token, Some(stale))
        {
            return Ok(token.0.clone());
        }
        let token = self.obtain(Some(stale.to_owned())).await?;
        *current = Some(token.clone());
        Ok(token.0)
    }
}
