//! Tenant rows: the apps this service serves, each with its own Stripe account and JWT keys.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::AnyConnection;
use super::schema::tenants;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tenants)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub api_key: String,
    pub jwt_algorithm: String,
    pub jwt_secret_enc: Option<String>,
    pub jwt_public_key: Option<String>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    pub stripe_secret_key_enc: String,
    pub stripe_api_base: Option<String>,
    pub created_at: NaiveDateTime,
    pub notify_url: Option<String>,
    pub notify_secret_enc: Option<String>,
    /// Tokens must carry `app_id` = this tenant's api key.
    pub jwt_require_app_binding: bool,
    /// The longest token lifetime accepted (`exp - iat`), in seconds.
    pub jwt_max_lifetime_secs: i64,
    /// How it reaches Stripe (`db::connect::ACCESS_*`).
    pub stripe_access: String,
    /// The connected account (Connect or Apps).
    pub stripe_account_id: Option<String>,
    pub stripe_livemode: Option<bool>,
    pub stripe_scope: Option<String>,
    pub stripe_connected_at: Option<NaiveDateTime>,
    pub stripe_disconnected_at: Option<NaiveDateTime>,
    /// Stripe Apps: the refresh token and the current access token (encrypted), its expiry,
    /// and the refresh lease (`db::connect`).
    pub stripe_refresh_token_enc: Option<String>,
    pub stripe_access_token_enc: Option<String>,
    pub stripe_access_token_expires_at: Option<NaiveDateTime>,
    pub stripe_token_lease_until: Option<NaiveDateTime>,
    /// Where a browser may be sent back after connecting (JSON list of origins).
    pub connect_return_origins: Option<String>,
    /// `POST /stripe/fetch`: the tenant's narrowing of the operator's list, a JSON array of
    /// rules; `None`: the operator's list.
    pub fetch_allow: Option<String>,
    /// When the operator disabled the tenant (`tenant disable`); `None`: enabled.
    pub disabled_at: Option<NaiveDateTime>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = tenants)]
pub struct NewTenant<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub api_key: &'a str,
    pub jwt_algorithm: &'a str,
    pub jwt_secret_enc: Option<&'a str>,
    pub jwt_public_key: Option<&'a str>,
    pub jwt_issuer: Option<&'a str>,
    pub jwt_audience: Option<&'a str>,
    pub stripe_secret_key_enc: &'a str,
    pub stripe_api_base: Option<&'a str>,
    pub created_at: NaiveDateTime,
    pub jwt_require_app_binding: bool,
    pub jwt_max_lifetime_secs: i64,
}

pub fn insert(conn: &mut AnyConnection, new: &NewTenant<'_>) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::insert_into(tenants::table)
            .values(new)
            .execute(conn)
    })
    .map(|_| ())
}

pub fn find_by_api_key(conn: &mut AnyConnection, api_key: &str) -> QueryResult<Option<Tenant>> {
    tenants::table
        .filter(tenants::api_key.eq(api_key))
        .select(Tenant::as_select())
        .first(conn)
        .optional()
}

pub fn list(conn: &mut AnyConnection) -> QueryResult<Vec<Tenant>> {
    tenants::table
        .order(tenants::created_at.asc())
        .select(Tenant::as_select())
        .load(conn)
}

pub fn find_by_id(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<Tenant>> {
    tenants::table
        .find(id)
        .select(Tenant::as_select())
        .first(conn)
        .optional()
}

/// Where the tenant's app is notified, and the (encrypted) secret notifications are signed
/// with; `None` when it has no notify_url.
pub fn notify_target(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> QueryResult<Option<(String, String)>> {
    let found: Option<(Option<String>, Option<String>)> = tenants::table
        .find(tenant_id)
        .select((tenants::notify_url, tenants::notify_secret_enc))
        .first(conn)
        .optional()?;
    Ok(match found {
        Some((Some(url), Some(secret))) => Some((url, secret)),
        _ => None,
    })
}

/// What the receiver needs of an endpoint's tenant: whether its app is notified (it has a
/// notify_url) and whether the operator disabled it; `None` when there is no such tenant.
pub fn delivery_state(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> QueryResult<Option<(bool, bool)>> {
    let found: Option<(Option<String>, Option<String>, Option<NaiveDateTime>)> = tenants::table
        .find(tenant_id)
        .select((
            tenants::notify_url,
            tenants::notify_secret_enc,
            tenants::disabled_at,
        ))
        .first(conn)
        .optional()?;
    Ok(
        found
            .map(|(url, secret, disabled)| (url.is_some() && secret.is_some(), disabled.is_some())),
    )
}

/// Sets (or with `None`, clears) the tenant's notify_url and signing secret.
pub fn set_notify_target(
    conn: &mut AnyConnection,
    tenant_id: &str,
    target: Option<(&str, &str)>,
) -> QueryResult<bool> {
    let (url, secret) = target.map_or((None, None), |(u, s)| (Some(u), Some(s)));
    super::write_statement(conn, |conn| {
        diesel::update(tenants::table.find(tenant_id))
            .set((
                tenants::notify_url.eq(url),
                tenants::notify_secret_enc.eq(secret),
            ))
            .execute(conn)
    })
    .map(|n| n == 1)
}

/// Sets the rules a tenant's tokens must satisfy (app binding, maximum lifetime).
pub fn set_token_rules(
    conn: &mut AnyConnection,
    tenant_id: &str,
    require_app_binding: bool,
    max_lifetime_secs: i64,
) -> QueryResult<bool> {
    super::write_statement(conn, |conn| {
        diesel::update(tenants::table.find(tenant_id))
            .set((
                tenants::jwt_require_app_binding.eq(require_app_binding),
                tenants::jwt_max_lifetime_secs.eq(max_lifetime_secs),
            ))
            .execute(conn)
    })
    .map(|n| n == 1)
}

/// Sets (or with `None`, clears) the tenant's narrowing of the operator's fetch allow-list.
pub fn set_fetch_allow(
    conn: &mut AnyConnection,
    tenant_id: &str,
    rules: Option<&str>,
) -> QueryResult<bool> {
    super::write_statement(conn, |conn| {
        diesel::update(tenants::table.find(tenant_id))
            .set(tenants::fetch_allow.eq(rules))
            .execute(conn)
    })
    .map(|n| n == 1)
}

/// Disables the tenant (`at`) or, with `None`, enables it again.
pub fn set_disabled(
    conn: &mut AnyConnection,
    tenant_id: &str,
    at: Option<NaiveDateTime>,
) -> QueryResult<bool> {
    super::write_statement(conn, |conn| {
        diesel::update(tenants::table.find(tenant_id))
            .set(tenants::disabled_at.eq(at))
            .execute(conn)
    })
    .map(|n| n == 1)
}

/// Replaces the tenant's (encrypted) Stripe secret key.
pub fn set_stripe_key(
    conn: &mut AnyConnection,
    tenant_id: &str,
    key_enc: &str,
) -> QueryResult<bool> {
    super::write_statement(conn, |conn| {
        diesel::update(tenants::table.find(tenant_id))
            .set(tenants::stripe_secret_key_enc.eq(key_enc))
            .execute(conn)
    })
    .map(|n| n == 1)
}

/// Replaces the tenant's api key.
pub fn set_api_key(conn: &mut AnyConnection, tenant_id: &str, api_key: &str) -> QueryResult<bool> {
    super::write_statement(conn, |conn| {
        diesel::update(tenants::table.find(tenant_id))
            .set(tenants::api_key.eq(api_key))
            .execute(conn)
    })
    .map(|n| n == 1)
}

/// Replaces the tenant's (encrypted) HS256 secret.
pub fn set_jwt_secret(
    conn: &mut AnyConnection,
    tenant_id: &str,
    secret_enc: &str,
) -> QueryResult<bool> {
    super::write_statement(conn, |conn| {
        diesel::update(tenants::table.find(tenant_id))
            .set(tenants::jwt_secret_enc.eq(Some(secret_enc)))
            .execute(conn)
    })
    .map(|n| n == 1)
}

/// Every tenant's encrypted secrets (id, JWT secret, Stripe key, notification secret), for
/// re-encrypting them under a new master key.
pub type SealedSecrets = (String, Option<String>, String, Option<String>);

pub fn sealed_secrets(conn: &mut AnyConnection) -> QueryResult<Vec<SealedSecrets>> {
    tenants::table
        .order(tenants::id.asc())
        .select((
            tenants::id,
            tenants::jwt_secret_enc,
            tenants::stripe_secret_key_enc,
            tenants::notify_secret_enc,
        ))
        .load(conn)
}

/// Replaces a tenant's encrypted secrets (a master key rotation).
pub fn reseal_secrets(conn: &mut AnyConnection, sealed: &SealedSecrets) -> QueryResult<()> {
    let (id, jwt, stripe, notify) = sealed;
    super::write_statement(conn, |conn| {
        diesel::update(tenants::table.find(id))
            .set((
                tenants::jwt_secret_enc.eq(jwt.as_deref()),
                tenants::stripe_secret_key_enc.eq(stripe),
                tenants::notify_secret_enc.eq(notify.as_deref()),
            ))
            .execute(conn)
    })
    .map(|_| ())
}
