//! Tenants (23blocks "apps"): turning a stored row into what a request needs: the JWT
//! verifier pinned to the tenant's algorithm and its own Stripe gateway. Creating them and
//! their token rules are `admin.rs`.

use std::time::Duration;

use anyhow::{Context, bail};
use chrono::Utc;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::crypto::MasterKey;
use crate::db::tenants::Tenant;
use crate::domain::fetch::AllowList;
use std::sync::Arc;

use crate::db::connect::{ACCESS_APP, ACCESS_CONNECT, ACCESS_SECRET_KEY};
use crate::stripe::{LiveStripe, StripeApi};
use platform::{AppTokens, Platform};
use secrecy::ExposeSecret;

mod admin;
pub mod platform;

pub use admin::{
    CreatedTenant, RotatedApiKey, RotatedJwtSecret, TenantSpec, TenantSummary, TokenRulesUpdate,
    checked_stripe_key, create_tenant, is_live_key, mint_token, rotate_api_key, rotate_jwt_secret,
    set_disabled, set_fetch_allow, set_stripe_key, stripe_key_target, update_token_rules,
};

const HS256: &str = "HS256";
const RS256: &str = "RS256";

/// Leeway for `exp`, `nbf` and `iat` (clock skew between the issuer and us), in seconds.
const LEEWAY_SECS: i64 = 30;

/// The default longest token lifetime (`exp - iat`): 24 hours.
pub const DEFAULT_MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// The longest a tenant may allow: a year.
const MAX_MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// The caller a valid token names.
#[derive(Debug, Clone)]
pub struct Principal {
    pub subject: String,
    pub admin: bool,
}

#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    /// Checked by jsonwebtoken (required); read again for the lifetime.
    #[serde(default)]
    exp: Option<f64>,
    #[serde(default)]
    iat: Option<f64>,
    /// The app the token is bound to: its api key.
    #[serde(default)]
    app_id: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    scope: Option<Scope>,
}

/// OAuth-style `scope`: a space-separated string or a list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Scope {
    Text(String),
    List(Vec<String>),
}

impl Scope {
    fn contains(&self, wanted: &str) -> bool {
        match self {
            Scope::Text(s) => s.split_whitespace().any(|s| s == wanted),
            Scope::List(l) => l.iter().any(|s| s == wanted),
        }
    }
}

/// The tenant's door to Stripe, by how it reaches its account (`db::connect::ACCESS_*`).
fn stripe_access(
    row: &Tenant,
    master: &MasterKey,
    timeout: Duration,
    platform: Option<&Arc<Platform>>,
) -> anyhow::Result<Arc<dyn StripeApi>> {
    let failed = |err: crate::stripe::GatewayError| anyhow::anyhow!("tenant {}: {err}", row.id);
    let live = match (row.stripe_access.as_str(), platform) {
        (ACCESS_SECRET_KEY, _) => {
            let key = master.decrypt(&row.stripe_secret_key_enc)?;
            LiveStripe::new(&key, row.stripe_api_base.as_deref(), timeout).map_err(failed)?
        }
        (ACCESS_CONNECT, Some(platform)) => match &row.stripe_account_id {
            Some(account) => LiveStripe::connected(
                platform.secret_key.expose_secret(),
                account,
                platform.api_base.as_deref(),
                timeout,
            )
            .map_err(failed)?,
            None => LiveStripe::disconnected(),
        },
        (ACCESS_APP, Some(platform)) => LiveStripe::with_tokens(
            Arc::new(AppTokens::new(platform.clone(), row.id.clone())),
            platform.api_base.as_deref(),
            timeout,
        ),
        (ACCESS_CONNECT | ACCESS_APP, None) => {
            tracing::warn!(
                tenant.id = %row.id,
                "the tenant is connected through the platform, but no stripe_platform_secret_key is configured"
            );
            LiveStripe::disconnected()
        }
        _ => LiveStripe::disconnected(),
    };
    Ok(Arc::new(live))
}

/// A tenant ready to serve requests. Built once per tenant and cached.
pub struct TenantContext {
    pub id: String,
    pub name: String,
    pub api_key: String,
    pub stripe: Arc<dyn StripeApi>,
    /// Its narrowing of the operator's `POST /stripe/fetch` allow-list; `None`: the
    /// operator's list as it is.
    pub fetch_allow: Option<AllowList>,
    /// Disabled by the operator (`tenant disable`): its API calls answer 403 `tenant_disabled`
    /// and Stripe's deliveries for it 503.
    pub disabled: bool,
    decoding: DecodingKey,
    validation: Validation,
    require_app_binding: bool,
    max_lifetime_secs: i64,
}

impl std::fmt::Debug for TenantContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantContext")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TenantContext {
    /// `platform`: the platform's configuration, which tenants connected by Connect or by an
    /// app reach Stripe through (without it they are treated as disconnected).
    pub fn load(
        row: Tenant,
        master: &MasterKey,
        stripe_timeout: Duration,
        platform: Option<&Arc<Platform>>,
    ) -> anyhow::Result<Self> {
        let (algorithm, decoding) = match row.jwt_algorithm.as_str() {
            HS256 => {
                let enc = row
                    .jwt_secret_enc
                    .as_deref()
                    .context("HS256 tenant has no secret")?;
                let secret = master.decrypt(enc)?;
                (
                    Algorithm::HS256,
                    DecodingKey::from_secret(secret.as_bytes()),
                )
            }
            RS256 => {
                let pem = row
                    .jwt_public_key
                    .as_deref()
                    .context("RS256 tenant has no public key")?;
                (Algorithm::RS256, DecodingKey::from_rsa_pem(pem.as_bytes())?)
            }
            other => bail!("unsupported JWT algorithm {other}"),
        };
        // The algorithm is pinned per tenant: a token signed any other way (or `alg: none`)
        // is refused before its claims are read.
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECS.unsigned_abs();
        validation.validate_nbf = true;
        // A configured issuer or audience is required, not only checked when present: else a
        // token of another issuer that simply leaves the claim out would pass.
        let mut required = vec!["exp", "sub"];
        required.extend(row.jwt_issuer.is_some().then_some("iss"));
        required.extend(row.jwt_audience.is_some().then_some("aud"));
        validation.set_required_spec_claims(&required);
        match &row.jwt_issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &row.jwt_audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        let stripe = stripe_access(&row, master, stripe_timeout, platform)?;
        let fetch_allow = row.fetch_allow.as_deref().map(|stored| {
            serde_json::from_str::<Vec<String>>(stored)
                .map_err(|err| err.to_string())
                .and_then(|rules| AllowList::parse(&rules))
                .unwrap_or_else(|err| {
                    // Written by `set_fetch_allow`, so never expected; closed rather than open.
                    tracing::warn!(tenant.id = %row.id, error = %err, "unreadable fetch_allow: nothing allowed");
                    AllowList::default()
                })
        });
        Ok(Self {
            id: row.id,
            name: row.name,
            api_key: row.api_key,
            stripe,
            fetch_allow,
            disabled: row.disabled_at.is_some(),
            decoding,
            validation,
            require_app_binding: row.jwt_require_app_binding,
            max_lifetime_secs: row.jwt_max_lifetime_secs,
        })
    }

    /// Verifies a bearer token; the error says what is wrong in words a developer can act on.
    pub fn verify(&self, token: &str) -> Result<Principal, String> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|err| match err.kind() {
                ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
                ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_owned(),
                ErrorKind::InvalidSignature => {
                    "the token's signature does not match this app's key".to_owned()
                }
                ErrorKind::InvalidAlgorithm => format!(
                    "the token must be signed with {:?} for this app",
                    self.validation
                        .algorithms
                        .first()
                        .unwrap_or(&Algorithm::HS256)
                ),
                ErrorKind::InvalidIssuer => "the token's issuer (iss) is not accepted".to_owned(),
                ErrorKind::InvalidAudience => {
                    "the token's audience (aud) is not accepted".to_owned()
                }
                ErrorKind::MissingRequiredClaim(claim) => {
                    format!("the token has no `{claim}` claim")
                }
                _ => "the token is malformed".to_owned(),
            })?;
        let claims = data.claims;
        self.check_binding(claims.app_id.as_deref())?;
        self.check_lifetime(claims.exp, claims.iat, Utc::now().timestamp())?;
        let subject = claims
            .sub
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| "the token has no subject (`sub` claim)".to_owned())?;
        let admin = claims.role.as_deref() == Some("admin")
            || claims
                .scope
                .as_ref()
                .is_some_and(|s| s.contains("sales:admin"));
        Ok(Principal { subject, admin })
    }

    /// A token bound to an app (`app_id`) is accepted by that app only; an app that requires
    /// binding refuses tokens without it.
    fn check_binding(&self, app_id: Option<&str>) -> Result<(), String> {
        match app_id {
            Some(app_id) if app_id != self.api_key => {
                Err("the token is bound to another app (its `app_id` is not this app's api key)"
                    .to_owned())
            }
            None if self.require_app_binding => Err(
                "this app requires tokens bound to it: the token has no `app_id` claim (this app's api key)"
                    .to_owned(),
            ),
            _ => Ok(()),
        }
    }

    /// `exp - iat` at most the tenant's maximum. A token without `iat` may not expire later
    /// than that maximum from now; an `iat` in the future (beyond the leeway) is refused, or it
    /// would stretch a token's life at will.
    fn check_lifetime(&self, exp: Option<f64>, iat: Option<f64>, now: i64) -> Result<(), String> {
        let max = self.max_lifetime_secs;
        // Required and already checked: a token reaching here has a numeric `exp`.
        let Some(exp) = exp.map(|e| e.floor() as i64) else {
            return Err("the token has no `exp` claim".to_owned());
        };
        match iat.map(|i| i.floor() as i64) {
            Some(iat) if iat > now.saturating_add(LEEWAY_SECS) => {
                Err("the token's issue time (iat) is in the future".to_owned())
            }
            Some(iat) if exp.saturating_sub(iat) > max => Err(format!(
                "the token's lifetime (exp - iat) is {} s, over this app's maximum token lifetime of {max} s",
                exp.saturating_sub(iat)
            )),
            None if exp.saturating_sub(now) > max.saturating_add(LEEWAY_SECS) => Err(format!(
                "the token has no `iat` and expires {} s from now, over this app's maximum token lifetime of {max} s",
                exp.saturating_sub(now)
            )),
            _ => Ok(()),
        }
    }
}
