//! The operator's side of tenants: creating them, changing their token rules, and signing
//! development tokens (`sales-block tenant ...`, the demo).

use std::time::Duration;

use anyhow::{Context, bail};
use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::Serialize;

use super::{DEFAULT_MAX_TOKEN_LIFETIME, HS256, MAX_MAX_TOKEN_LIFETIME, RS256};
use crate::crypto::{MasterKey, random_token};
use crate::db::AnyConnection;
use crate::db::tenants::{self as rows, NewTenant, Tenant};
use crate::domain::fetch::AllowList;

/// What `tenant create` is given.
#[derive(Debug, Default, Clone)]
pub struct TenantSpec {
    pub name: String,
    pub stripe_secret_key: String,
    pub stripe_api_base: Option<String>,
    /// PEM of an RSA public key: the tenant's tokens are RS256. Otherwise HS256 with a
    /// generated secret.
    pub jwt_rs256_public_key: Option<String>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    /// Tokens must carry `app_id` equal to the tenant's api key.
    pub require_app_binding: bool,
    /// The longest token lifetime accepted (`exp - iat`); `None`: 24 h.
    pub max_token_lifetime: Option<Duration>,
}

/// What `tenant update` changes; `None` leaves a setting as it is.
#[derive(Debug, Default, Clone)]
pub struct TokenRulesUpdate {
    pub require_app_binding: Option<bool>,
    pub max_token_lifetime: Option<Duration>,
}

/// What `tenant create` prints: the only time the HS256 secret is shown.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedTenant {
    pub id: String,
    pub name: String,
    pub api_key: String,
    pub jwt_algorithm: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stripe_api_base: Option<String>,
    pub require_app_binding: bool,
    pub max_token_lifetime_secs: i64,
}

/// A tenant as listed by `tenant list`: no secrets.
#[derive(Debug, Clone, Serialize)]
pub struct TenantSummary {
    pub id: String,
    pub name: String,
    pub api_key: String,
    pub jwt_algorithm: String,
    pub stripe_api_base: Option<String>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    pub require_app_binding: bool,
    pub max_token_lifetime_secs: i64,
    /// Its narrowing of the operator's `POST /stripe/fetch` allow-list (`None`: the operator's).
    pub fetch_allow: Option<Vec<String>>,
    pub created_at: String,
    /// When the operator disabled it (`tenant disable`); `None`: enabled.
    pub disabled_at: Option<String>,
}

impl From<Tenant> for TenantSummary {
    fn from(row: Tenant) -> Self {
        Self {
            id: row.id,
            name: row.name,
            api_key: row.api_key,
            jwt_algorithm: row.jwt_algorithm,
            stripe_api_base: row.stripe_api_base,
            jwt_issuer: row.jwt_issuer,
            jwt_audience: row.jwt_audience,
            require_app_binding: row.jwt_require_app_binding,
            max_token_lifetime_secs: row.jwt_max_lifetime_secs,
            fetch_allow: row
                .fetch_allow
                .as_deref()
                .and_then(|stored| serde_json::from_str(stored).ok()),
            created_at: row.created_at.and_utc().to_rfc3339(),
            disabled_at: row.disabled_at.map(|at| at.and_utc().to_rfc3339()),
        }
    }
}

pub fn create_tenant(
    conn: &mut AnyConnection,
    master: &MasterKey,
    spec: &TenantSpec,
) -> anyhow::Result<CreatedTenant> {
    let name = spec.name.trim();
    if name.is_empty() {
        bail!("a tenant needs a name");
    }
    let stripe_key = checked_stripe_key(&spec.stripe_secret_key)?;
    if let Some(base) = &spec.stripe_api_base {
        let parsed = url::Url::parse(base).context("--stripe-api-base is not a URL")?;
        if !matches!(parsed.scheme(), "http" | "https") {
            bail!("--stripe-api-base must be an http(s) URL");
        }
    }
    let (algorithm, secret) = match &spec.jwt_rs256_public_key {
        Some(pem) => {
            DecodingKey::from_rsa_pem(pem.as_bytes())
                .context("the RS256 public key is not an RSA public key in PEM")?;
            (RS256, None)
        }
        None => (HS256, Some(random_token("", 32))),
    };
    let max_lifetime = lifetime_secs(spec.max_token_lifetime)?;
    if let Some(pem) = &spec.jwt_rs256_public_key {
        let rules = TokenRules {
            public_key: Some(pem),
            issuer: spec.jwt_issuer.as_deref(),
            audience: spec.jwt_audience.as_deref(),
            require_app_binding: spec.require_app_binding,
        };
        refuse_indistinguishable(conn, None, &rules)?;
    }
    let id = crate::db::new_row_id();
    let api_key = new_api_key(is_live_key(stripe_key));
    let secret_enc = secret.as_deref().map(|s| master.encrypt(s));
    let stripe_enc = master.encrypt(stripe_key);
    rows::insert(
        conn,
        &NewTenant {
            id: &id,
            name,
            api_key: &api_key,
            jwt_algorithm: algorithm,
            jwt_secret_enc: secret_enc.as_deref(),
            jwt_public_key: spec.jwt_rs256_public_key.as_deref(),
            jwt_issuer: spec.jwt_issuer.as_deref(),
            jwt_audience: spec.jwt_audience.as_deref(),
            stripe_secret_key_enc: &stripe_enc,
            stripe_api_base: spec.stripe_api_base.as_deref(),
            created_at: Utc::now().naive_utc(),
            jwt_require_app_binding: spec.require_app_binding,
            jwt_max_lifetime_secs: max_lifetime,
        },
    )?;
    Ok(CreatedTenant {
        id,
        name: name.to_owned(),
        api_key,
        jwt_algorithm: algorithm.to_owned(),
        jwt_secret: secret,
        stripe_api_base: spec.stripe_api_base.clone(),
        require_app_binding: spec.require_app_binding,
        max_token_lifetime_secs: max_lifetime,
    })
}

/// A Stripe secret (`sk_`) or restricted (`rk_`) key, trimmed.
pub fn checked_stripe_key(key: &str) -> anyhow::Result<&str> {
    let key = key.trim();
    if !(key.starts_with("sk_") || key.starts_with("rk_")) {
        bail!("the Stripe secret key must start with sk_ or rk_");
    }
    Ok(key)
}

/// A live-mode Stripe key (`sk_live_`, `rk_live_`).
pub fn is_live_key(key: &str) -> bool {
    key.starts_with("sk_live_") || key.starts_with("rk_live_")
}

/// A fresh api key, `pk_live_` or `pk_test_` as the tenant's Stripe key's mode.
fn new_api_key(live: bool) -> String {
    random_token(if live { "pk_live_" } else { "pk_test_" }, 16)
}

fn find(conn: &mut AnyConnection, api_key: &str) -> anyhow::Result<Tenant> {
    rows::find_by_api_key(conn, api_key)?
        .with_context(|| format!("no tenant has the api key {api_key:?}"))
}

/// Disables the tenant (`tenant disable`) or enables it again; returns the tenant. Running
/// instances see the change within their tenant cache's lifetime (`tenant_cache_secs`).
pub fn set_disabled(
    conn: &mut AnyConnection,
    api_key: &str,
    disabled: bool,
) -> anyhow::Result<TenantSummary> {
    crate::db::write_transaction(conn, |conn| {
        let row = find(conn, api_key)?;
        // Disabling twice keeps the first time.
        let at = match (disabled, row.disabled_at) {
            (true, Some(since)) => Some(since),
            (true, None) => Some(Utc::now().naive_utc()),
            (false, _) => None,
        };
        rows::set_disabled(conn, &row.id, at)?;
        let row = rows::find_by_id(conn, &row.id)?.context("the tenant disappeared")?;
        Ok(TenantSummary::from(row))
    })
}

/// What `tenant rotate-api-key` prints.
#[derive(Debug, Clone, Serialize)]
pub struct RotatedApiKey {
    pub id: String,
    pub name: String,
    pub api_key: String,
    pub previous_api_key: String,
}

/// Gives the tenant a new api key; the old one names no tenant any more (on running instances
/// once their tenant cache has expired, `tenant_cache_secs`).
pub fn rotate_api_key(
    conn: &mut AnyConnection,
    master: &MasterKey,
    api_key: &str,
) -> anyhow::Result<RotatedApiKey> {
    crate::db::write_transaction(conn, |conn| {
        let row = find(conn, api_key)?;
        // Same mode as before; an imported key of another form takes its Stripe key's mode.
        let live = match &row.api_key {
            k if k.starts_with("pk_live_") => true,
            k if k.starts_with("pk_test_") => false,
            _ => {
                row.stripe_livemode.unwrap_or(false)
                    || master
                        .decrypt(&row.stripe_secret_key_enc)
                        .is_ok_and(|key| is_live_key(&key))
            }
        };
        let fresh = new_api_key(live);
        rows::set_api_key(conn, &row.id, &fresh)?;
        Ok(RotatedApiKey {
            id: row.id,
            name: row.name,
            api_key: fresh,
            previous_api_key: row.api_key,
        })
    })
}

/// What `tenant rotate-jwt-secret` prints: the only time the new secret is shown.
#[derive(Debug, Clone, Serialize)]
pub struct RotatedJwtSecret {
    pub id: String,
    pub api_key: String,
    pub jwt_algorithm: String,
    pub jwt_secret: String,
}

/// Gives an HS256 tenant a new JWT secret. Tokens signed with the old one are refused from
/// then on (on running instances once their tenant cache has expired): there is no overlap.
pub fn rotate_jwt_secret(
    conn: &mut AnyConnection,
    master: &MasterKey,
    api_key: &str,
) -> anyhow::Result<RotatedJwtSecret> {
    crate::db::write_transaction(conn, |conn| {
        let row = find(conn, api_key)?;
        if row.jwt_algorithm != HS256 {
            bail!(
                "tenant {:?} verifies {} tokens with its identity provider's public key: there is \
                 no secret of ours to rotate (its key pair is rotated at the provider)",
                row.name,
                row.jwt_algorithm
            );
        }
        let secret = random_token("", 32);
        rows::set_jwt_secret(conn, &row.id, &master.encrypt(&secret))?;
        Ok(RotatedJwtSecret {
            id: row.id,
            api_key: row.api_key,
            jwt_algorithm: row.jwt_algorithm,
            jwt_secret: secret,
        })
    })
}

/// The tenant a Stripe key would be set for, with the checks that need no Stripe call: a
/// key (`sk_`/`rk_`) of the tenant's mode (a test-mode app stays in test mode), for a tenant
/// that reaches Stripe with its own key (not one connected through the platform).
pub fn stripe_key_target(
    conn: &mut AnyConnection,
    api_key: &str,
    new_key: &str,
) -> anyhow::Result<Tenant> {
    let key = checked_stripe_key(new_key)?;
    let row = find(conn, api_key)?;
    if row.stripe_access != crate::db::connect::ACCESS_SECRET_KEY {
        bail!(
            "tenant {:?} reaches Stripe through the platform ({}), not with a key of its own",
            row.name,
            row.stripe_access
        );
    }
    let tenant_live = row.api_key.starts_with("pk_live_");
    let tenant_test = row.api_key.starts_with("pk_test_");
    if (tenant_live && !is_live_key(key)) || (tenant_test && is_live_key(key)) {
        bail!(
            "the tenant's api key is {} mode and the new Stripe key is not: another mode is \
             another set of Stripe objects (create another tenant for it)",
            if tenant_live { "live" } else { "test" }
        );
    }
    Ok(row)
}

/// Replaces the tenant's Stripe key (checked by [`stripe_key_target`]; the CLI has also tried
/// it at Stripe); running instances use it once their tenant cache has expired.
pub fn set_stripe_key(
    conn: &mut AnyConnection,
    master: &MasterKey,
    api_key: &str,
    new_key: &str,
) -> anyhow::Result<TenantSummary> {
    crate::db::write_transaction(conn, |conn| {
        let row = stripe_key_target(conn, api_key, new_key)?;
        let sealed = master.encrypt(checked_stripe_key(new_key)?);
        rows::set_stripe_key(conn, &row.id, &sealed)?;
        let row = rows::find_by_id(conn, &row.id)?.context("the tenant disappeared")?;
        Ok(TenantSummary::from(row))
    })
}

/// Changes the rules a tenant's tokens must satisfy (`tenant update`); returns the tenant.
pub fn update_token_rules(
    conn: &mut AnyConnection,
    api_key: &str,
    update: &TokenRulesUpdate,
) -> anyhow::Result<TenantSummary> {
    crate::db::write_transaction(conn, |conn| {
        let row = rows::find_by_api_key(conn, api_key)?
            .with_context(|| format!("no tenant has the api key {api_key:?}"))?;
        let require = update
            .require_app_binding
            .unwrap_or(row.jwt_require_app_binding);
        let max_lifetime = match update.max_token_lifetime {
            Some(max) => lifetime_secs(Some(max))?,
            None => row.jwt_max_lifetime_secs,
        };
        if row.jwt_algorithm == RS256 {
            let rules = TokenRules {
                public_key: row.jwt_public_key.as_deref(),
                issuer: row.jwt_issuer.as_deref(),
                audience: row.jwt_audience.as_deref(),
                require_app_binding: require,
            };
            refuse_indistinguishable(conn, Some(&row.id), &rules)?;
        }
        rows::set_token_rules(conn, &row.id, require, max_lifetime)?;
        let row = rows::find_by_id(conn, &row.id)?.context("the tenant disappeared")?;
        Ok(TenantSummary::from(row))
    })
}

/// Narrows what the tenant's admins may call through `POST /stripe/fetch` to `rules` (each one
/// of the `operator`'s `fetch_allowed`), or with `None` gives it the operator's list again.
/// The operator's list still applies at each call: a rule it drops later is closed for every
/// tenant.
pub fn set_fetch_allow(
    conn: &mut AnyConnection,
    api_key: &str,
    rules: Option<&[String]>,
    operator: &AllowList,
) -> anyhow::Result<TenantSummary> {
    let stored = rules
        .map(|rules| {
            let list = AllowList::parse(rules).map_err(anyhow::Error::msg)?;
            if let Some(outside) = list.rules().iter().find(|r| !operator.contains(r)) {
                bail!("{outside} is not in the operator's fetch_allowed list");
            }
            Ok(serde_json::to_string(&list.to_lines())?)
        })
        .transpose()?;
    crate::db::write_transaction(conn, |conn| {
        let row = rows::find_by_api_key(conn, api_key)?
            .with_context(|| format!("no tenant has the api key {api_key:?}"))?;
        rows::set_fetch_allow(conn, &row.id, stored.as_deref())?;
        let row = rows::find_by_id(conn, &row.id)?.context("the tenant disappeared")?;
        Ok(TenantSummary::from(row))
    })
}

fn lifetime_secs(max: Option<Duration>) -> anyhow::Result<i64> {
    let max = max.unwrap_or(DEFAULT_MAX_TOKEN_LIFETIME);
    if max.is_zero() || max > MAX_MAX_TOKEN_LIFETIME {
        bail!("the maximum token lifetime must be between 1 second and 366 days");
    }
    Ok(i64::try_from(max.as_secs())?)
}

/// What tells an RS256 tenant's tokens apart from another's signed by the same key.
struct TokenRules<'a> {
    public_key: Option<&'a str>,
    issuer: Option<&'a str>,
    audience: Option<&'a str>,
    require_app_binding: bool,
}

impl TokenRules<'_> {
    /// Whether neither of two tenants can accept a token meant for the other. A token carrying
    /// `app_id` is only accepted by that app, so binding on either side suffices: that side's
    /// tokens carry its `app_id` (refused by the other) and it refuses tokens without its own.
    fn distinguishable(&self, other: &TokenRules<'_>) -> bool {
        let differ =
            |a: Option<&str>, b: Option<&str>| matches!((a, b), (Some(a), Some(b)) if a != b);
        self.require_app_binding
            || other.require_app_binding
            || differ(self.issuer, other.issuer)
            || differ(self.audience, other.audience)
    }
}

/// PEM text without its line breaks and spaces, to find one key given twice.
fn normalized_pem(pem: &str) -> String {
    pem.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Refuses an RS256 tenant whose public key another tenant (other than `except`) already uses
/// when nothing tells their tokens apart: each would accept the other's.
fn refuse_indistinguishable(
    conn: &mut AnyConnection,
    except: Option<&str>,
    rules: &TokenRules<'_>,
) -> anyhow::Result<()> {
    let Some(pem) = rules.public_key.map(normalized_pem) else {
        return Ok(());
    };
    for other in rows::list(conn)? {
        if Some(other.id.as_str()) == except
            || other.jwt_algorithm != RS256
            || other.jwt_public_key.as_deref().map(normalized_pem) != Some(pem.clone())
        {
            continue;
        }
        let theirs = TokenRules {
            public_key: other.jwt_public_key.as_deref(),
            issuer: other.jwt_issuer.as_deref(),
            audience: other.jwt_audience.as_deref(),
            require_app_binding: other.jwt_require_app_binding,
        };
        if !rules.distinguishable(&theirs) {
            bail!(
                "tenant {:?} ({}) verifies tokens with the same RS256 public key, and nothing \
                 tells the two apps' tokens apart: each would accept the other's. Require app \
                 binding (--require-app-binding: tokens must carry `app_id` = the app's api key), \
                 or give the tenants different --jwt-issuer or --jwt-audience values",
                other.name,
                other.id
            );
        }
    }
    Ok(())
}

#[derive(Debug, Serialize)]
struct MintClaims<'a> {
    sub: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    /// The tenant's api key: the token is bound to this app.
    app_id: &'a str,
}

/// Signs a development token for a tenant: HS256 with its stored secret, or RS256 with the
/// private key given. It is bound to the tenant (`app_id` = its api key) and carries the
/// tenant's `iss` and `aud` when it sets them.
pub fn mint_token(
    row: &Tenant,
    master: &MasterKey,
    subject: &str,
    admin: bool,
    ttl: Duration,
    rs256_private_key: Option<&str>,
) -> anyhow::Result<String> {
    if ttl.as_secs() > row.jwt_max_lifetime_secs.unsigned_abs() {
        bail!(
            "--ttl is over this tenant's maximum token lifetime ({} s): the token would be refused",
            row.jwt_max_lifetime_secs
        );
    }
    let now = Utc::now().timestamp();
    let claims = MintClaims {
        sub: subject,
        iat: now,
        nbf: now,
        exp: now + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
        role: admin.then_some("admin"),
        iss: row.jwt_issuer.as_deref(),
        aud: row.jwt_audience.as_deref(),
        app_id: &row.api_key,
    };
    let (header, key) = match row.jwt_algorithm.as_str() {
        HS256 => {
            let secret = master.decrypt(
                row.jwt_secret_enc
                    .as_deref()
                    .context("HS256 tenant has no secret")?,
            )?;
            (
                Header::new(Algorithm::HS256),
                EncodingKey::from_secret(secret.as_bytes()),
            )
        }
        RS256 => {
            let pem = rs256_private_key
                .context("this tenant verifies RS256 tokens: pass --jwt-rs256-private-key FILE")?;
            (
                Header::new(Algorithm::RS256),
                EncodingKey::from_rsa_pem(pem.as_bytes())?,
            )
        }
        other => bail!("unsupported JWT algorithm {other}"),
    };
    Ok(jsonwebtoken::encode(&header, &claims, &key)?)
}
