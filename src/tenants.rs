//! Tenants (23blocks "apps"): creating them, and turning a stored row into what a request
//! needs: the JWT verifier pinned to the tenant's algorithm and its own Stripe gateway.

use std::time::Duration;

use anyhow::{Context, bail};
use chrono::Utc;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::crypto::{MasterKey, random_token};
use crate::db::AnyConnection;
use crate::db::tenants::{self as rows, NewTenant, Tenant};
use crate::gateway::StripeGateway;

const HS256: &str = "HS256";
const RS256: &str = "RS256";

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
}

/// A tenant as listed by `tenant list`: no secrets.
#[derive(Debug, Clone, Serialize)]
pub struct TenantSummary {
    pub id: String,
    pub name: String,
    pub api_key: String,
    pub jwt_algorithm: String,
    pub stripe_api_base: Option<String>,
    pub created_at: String,
}

impl From<Tenant> for TenantSummary {
    fn from(row: Tenant) -> Self {
        Self {
            id: row.id,
            name: row.name,
            api_key: row.api_key,
            jwt_algorithm: row.jwt_algorithm,
            stripe_api_base: row.stripe_api_base,
            created_at: row.created_at.and_utc().to_rfc3339(),
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
    let stripe_key = spec.stripe_secret_key.trim();
    if !(stripe_key.starts_with("sk_") || stripe_key.starts_with("rk_")) {
        bail!("the Stripe secret key must start with sk_ or rk_");
    }
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
    let id = uuid::Uuid::new_v4().to_string();
    let live = stripe_key.starts_with("sk_live_") || stripe_key.starts_with("rk_live_");
    let api_key = random_token(if live { "pk_live_" } else { "pk_test_" }, 16);
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
        },
    )?;
    Ok(CreatedTenant {
        id,
        name: name.to_owned(),
        api_key,
        jwt_algorithm: algorithm.to_owned(),
        jwt_secret: secret,
        stripe_api_base: spec.stripe_api_base.clone(),
    })
}

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
}

/// A tenant ready to serve requests. Built once per tenant and cached.
pub struct TenantContext {
    pub id: String,
    pub name: String,
    pub api_key: String,
    pub stripe: StripeGateway,
    decoding: DecodingKey,
    validation: Validation,
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
    pub fn load(row: Tenant, master: &MasterKey, stripe_timeout: Duration) -> anyhow::Result<Self> {
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
        validation.leeway = 30;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match &row.jwt_issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &row.jwt_audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        let stripe_key = master.decrypt(&row.stripe_secret_key_enc)?;
        let stripe =
            StripeGateway::new(&stripe_key, row.stripe_api_base.as_deref(), stripe_timeout)
                .map_err(|err| anyhow::anyhow!("tenant {}: {err}", row.id))?;
        Ok(Self {
            id: row.id,
            name: row.name,
            api_key: row.api_key,
            stripe,
            decoding,
            validation,
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
}

/// Signs a development token for a tenant: HS256 with its stored secret, or RS256 with the
/// private key given.
pub fn mint_token(
    row: &Tenant,
    master: &MasterKey,
    subject: &str,
    admin: bool,
    ttl: Duration,
    rs256_private_key: Option<&str>,
) -> anyhow::Result<String> {
    let now = Utc::now().timestamp();
    let claims = MintClaims {
        sub: subject,
        iat: now,
        nbf: now,
        exp: now + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
        role: admin.then_some("admin"),
        iss: row.jwt_issuer.as_deref(),
        aud: row.jwt_audience.as_deref(),
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
