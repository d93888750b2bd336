//! Stripe Connect and Stripe Apps onboarding rows: logins in progress (`state`), installations
//! waiting to be claimed, how each tenant reaches Stripe, and the Apps token lease.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::AnyConnection;
use super::schema::{stripe_oauth_claims, stripe_oauth_states, tenants};

/// A tenant reaches Stripe with its own secret key.
pub const ACCESS_SECRET_KEY: &str = "secret_key";
/// With the platform's key and `Stripe-Account` (classic Connect OAuth).
pub const ACCESS_CONNECT: &str = "connect";
/// With a Stripe Apps OAuth access token.
pub const ACCESS_APP: &str = "app";
/// Disconnected: no access at all.
pub const ACCESS_NONE: &str = "none";

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = stripe_oauth_states)]
pub struct StateRow {
    pub state_hash: String,
    pub tenant_id: String,
    pub subject: String,
    pub flow: String,
    pub return_url: Option<String>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub fn insert_state(conn: &mut AnyConnection, row: &StateRow) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::insert_into(stripe_oauth_states::table)
            .values(row)
            .execute(conn)
    })
    .map(|_| ())
}

/// Consumes a state: the row, if this call is the one that deleted it (a replay, or a second
/// callback racing this one, gets `None`). Expired rows are returned too (the caller says so).
pub fn take_state(conn: &mut AnyConnection, hash: &str) -> QueryResult<Option<StateRow>> {
    super::write_transaction(conn, |conn| {
        let Some(row) = stripe_oauth_states::table
            .find(hash)
            .select(StateRow::as_select())
            .first(conn)
            .optional()?
        else {
            return Ok(None);
        };
        let deleted = diesel::delete(stripe_oauth_states::table.find(hash)).execute(conn)?;
        Ok((deleted == 1).then_some(row))
    })
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = stripe_oauth_claims)]
pub struct ClaimRow {
    pub token_hash: String,
    pub flow: String,
    pub stripe_account_id: String,
    pub livemode: bool,
    pub scope: Option<String>,
    pub refresh_token_enc: Option<String>,
    pub access_token_enc: Option<String>,
    pub access_token_expires_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub fn insert_claim(conn: &mut AnyConnection, row: &ClaimRow) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::insert_into(stripe_oauth_claims::table)
            .values(row)
            .execute(conn)
    })
    .map(|_| ())
}

/// Consumes a claim token, as [`take_state`] does a state.
pub fn take_claim(conn: &mut AnyConnection, hash: &str) -> QueryResult<Option<ClaimRow>> {
    super::write_transaction(conn, |conn| {
        let Some(row) = stripe_oauth_claims::table
            .find(hash)
            .select(ClaimRow::as_select())
            .first(conn)
            .optional()?
        else {
            return Ok(None);
        };
        let deleted = diesel::delete(stripe_oauth_claims::table.find(hash)).execute(conn)?;
        Ok((deleted == 1).then_some(row))
    })
}

/// Deletes states and claims that expired before `before` (the retention job).
pub fn delete_expired(conn: &mut AnyConnection, before: NaiveDateTime) -> QueryResult<usize> {
    super::write_transaction(conn, |conn| {
        let states = diesel::delete(
            stripe_oauth_states::table.filter(stripe_oauth_states::expires_at.lt(before)),
        )
        .execute(conn)?;
        let claims = diesel::delete(
            stripe_oauth_claims::table.filter(stripe_oauth_claims::expires_at.lt(before)),
        )
        .execute(conn)?;
        Ok(states + claims)
    })
}

/// A connection to bind to a tenant.
#[derive(Debug, Clone)]
pub struct NewConnection<'a> {
    pub access: &'a str,
    pub account: &'a str,
    pub livemode: bool,
    pub scope: Option<&'a str>,
    pub refresh_token_enc: Option<&'a str>,
    pub access_token_enc: Option<&'a str>,
    pub access_token_expires_at: Option<NaiveDateTime>,
    pub at: NaiveDateTime,
}

/// The tenant (id) connected to this account in this mode, if any.
pub fn holder_of(
    conn: &mut AnyConnection,
    account: &str,
    livemode: bool,
) -> QueryResult<Option<String>> {
    tenants::table
        .filter(tenants::stripe_account_id.eq(account))
        .filter(tenants::stripe_livemode.eq(livemode))
        .select(tenants::id)
        .first(conn)
        .optional()
}

/// Binds the connection to the tenant, replacing any earlier one. `Ok(false)`: another tenant
/// holds that account in that mode (nothing changed).
pub fn connect(
    conn: &mut AnyConnection,
    tenant_id: &str,
    new: &NewConnection<'_>,
) -> QueryResult<bool> {
    super::write_transaction(conn, |conn| {
        if holder_of(conn, new.account, new.livemode)?.is_some_and(|holder| holder != tenant_id) {
            return Ok(false);
        }
        let changed = diesel::update(tenants::table.find(tenant_id))
            .set((
                tenants::stripe_access.eq(new.access),
                tenants::stripe_account_id.eq(new.account),
                tenants::stripe_livemode.eq(new.livemode),
                tenants::stripe_scope.eq(new.scope),
                tenants::stripe_connected_at.eq(new.at),
                tenants::stripe_disconnected_at.eq(None::<NaiveDateTime>),
                tenants::stripe_refresh_token_enc.eq(new.refresh_token_enc),
                tenants::stripe_access_token_enc.eq(new.access_token_enc),
                tenants::stripe_access_token_expires_at.eq(new.access_token_expires_at),
                tenants::stripe_token_lease_until.eq(None::<NaiveDateTime>),
            ))
            .execute(conn);
        match changed {
            Ok(n) => Ok(n == 1),
            // The unique index: another tenant took the account meanwhile.
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => Ok(false),
            Err(err) => Err(err),
        }
    })
}

/// Marks the tenant disconnected: no access, the account freed, tokens forgotten. With
/// `connected_by`, only if its connection was made by then (an old deauthorization must not
/// undo a newer connection). `Ok(true)` when a connection was removed.
pub fn disconnect(
    conn: &mut AnyConnection,
    tenant_id: &str,
    connected_by: Option<NaiveDateTime>,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    super::write_statement(conn, |conn| {
        let target = tenants::table
            .filter(tenants::id.eq(tenant_id))
            .filter(tenants::stripe_access.eq_any([ACCESS_CONNECT, ACCESS_APP]));
        let values = (
            tenants::stripe_access.eq(ACCESS_NONE),
            tenants::stripe_account_id.eq(None::<String>),
            tenants::stripe_livemode.eq(None::<bool>),
            tenants::stripe_disconnected_at.eq(at),
            tenants::stripe_refresh_token_enc.eq(None::<String>),
            tenants::stripe_access_token_enc.eq(None::<String>),
            tenants::stripe_access_token_expires_at.eq(None::<NaiveDateTime>),
            tenants::stripe_token_lease_until.eq(None::<NaiveDateTime>),
        );
        let n = match connected_by {
            Some(by) => diesel::update(target.filter(tenants::stripe_connected_at.le(by)))
                .set(values)
                .execute(conn)?,
            None => diesel::update(target).set(values).execute(conn)?,
        };
        Ok(n == 1)
    })
}

/// The tenant the platform webhook sends an event to (see [`route`]).
#[derive(Debug, Clone)]
pub struct Route {
    pub tenant_id: String,
    /// It has a notify_url.
    pub notify: bool,
    /// The operator disabled it (`tenant disable`).
    pub disabled: bool,
}

/// Where the platform webhook sends an event of `account` in this mode: the tenant connected
/// to it, whether it has a notify_url, and whether it is disabled.
pub fn route(
    conn: &mut AnyConnection,
    account: &str,
    livemode: bool,
) -> QueryResult<Option<Route>> {
    let found: Option<(String, Option<String>, Option<NaiveDateTime>)> = tenants::table
        .filter(tenants::stripe_account_id.eq(account))
        .filter(tenants::stripe_livemode.eq(livemode))
        .filter(tenants::stripe_access.eq_any([ACCESS_CONNECT, ACCESS_APP]))
        .select((tenants::id, tenants::notify_url, tenants::disabled_at))
        .first(conn)
        .optional()?;
    Ok(found.map(|(tenant_id, notify, disabled)| Route {
        tenant_id,
        notify: notify.is_some(),
        disabled: disabled.is_some(),
    }))
}

/// A tenant's Stripe Apps tokens as stored.
#[derive(Debug, Clone, Queryable)]
pub struct StoredTokens {
    pub access: String,
    pub access_token_enc: Option<String>,
    pub expires_at: Option<NaiveDateTime>,
    pub refresh_token_enc: Option<String>,
    pub lease_until: Option<NaiveDateTime>,
}

pub fn tokens(conn: &mut AnyConnection, tenant_id: &str) -> QueryResult<Option<StoredTokens>> {
    tenants::table
        .find(tenant_id)
        .select((
            tenants::stripe_access,
            tenants::stripe_access_token_enc,
            tenants::stripe_access_token_expires_at,
            tenants::stripe_refresh_token_enc,
            tenants::stripe_token_lease_until,
        ))
        .first(conn)
        .optional()
}

/// Takes the tenant's refresh lease until `until` if nobody holds it at `now`.
pub fn take_lease(
    conn: &mut AnyConnection,
    tenant_id: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<bool> {
    super::write_statement(conn, |conn| {
        diesel::update(
            tenants::table
                .filter(tenants::id.eq(tenant_id))
                .filter(tenants::stripe_access.eq(ACCESS_APP))
                .filter(
                    tenants::stripe_token_lease_until
                        .is_null()
                        .or(tenants::stripe_token_lease_until.lt(now)),
                ),
        )
        .set(tenants::stripe_token_lease_until.eq(until))
        .execute(conn)
    })
    .map(|n| n == 1)
}

/// Stores a refresh's answer and gives the lease back.
pub fn save_tokens(
    conn: &mut AnyConnection,
    tenant_id: &str,
    access_token_enc: &str,
    expires_at: NaiveDateTime,
    refresh_token_enc: &str,
) -> QueryResult<bool> {
    super::write_statement(conn, |conn| {
        diesel::update(
            tenants::table
                .filter(tenants::id.eq(tenant_id))
                .filter(tenants::stripe_access.eq(ACCESS_APP)),
        )
        .set((
            tenants::stripe_access_token_enc.eq(access_token_enc),
            tenants::stripe_access_token_expires_at.eq(expires_at),
            tenants::stripe_refresh_token_enc.eq(refresh_token_enc),
            tenants::stripe_token_lease_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)
    })
    .map(|n| n == 1)
}

/// Gives the lease back without new tokens (the refresh failed for a transient reason).
pub fn release_lease(conn: &mut AnyConnection, tenant_id: &str) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::update(tenants::table.find(tenant_id))
            .set(tenants::stripe_token_lease_until.eq(None::<NaiveDateTime>))
            .execute(conn)
    })
    .map(|_| ())
}

/// Sets (or with `None` clears) the tenant's own list of return origins (JSON).
pub fn set_return_origins(
    conn: &mut AnyConnection,
    tenant_id: &str,
    origins: Option<&str>,
) -> QueryResult<bool> {
    super::write_statement(conn, |conn| {
        diesel::update(tenants::table.find(tenant_id))
            .set(tenants::connect_return_origins.eq(origins))
            .execute(conn)
    })
    .map(|n| n == 1)
}

/// Sealed OAuth tokens, for a master key rotation: `(table, key, refresh, access)` of every
/// tenant and waiting claim that has any.
pub type SealedTokens = (&'static str, String, Option<String>, Option<String>);

pub fn sealed_tokens(conn: &mut AnyConnection) -> QueryResult<Vec<SealedTokens>> {
    let tenant_rows: Vec<(String, Option<String>, Option<String>)> = tenants::table
        .filter(
            tenants::stripe_refresh_token_enc
                .is_not_null()
                .or(tenants::stripe_access_token_enc.is_not_null()),
        )
        .order(tenants::id.asc())
        .select((
            tenants::id,
            tenants::stripe_refresh_token_enc,
            tenants::stripe_access_token_enc,
        ))
        .load(conn)?;
    let claim_rows: Vec<(String, Option<String>, Option<String>)> = stripe_oauth_claims::table
        .order(stripe_oauth_claims::token_hash.asc())
        .select((
            stripe_oauth_claims::token_hash,
            stripe_oauth_claims::refresh_token_enc,
            stripe_oauth_claims::access_token_enc,
        ))
        .load(conn)?;
    Ok(tenant_rows
        .into_iter()
        .map(|(id, r, a)| ("tenants", id, r, a))
        .chain(
            claim_rows
                .into_iter()
                .map(|(id, r, a)| ("stripe_oauth_claims", id, r, a)),
        )
        .collect())
}

/// Replaces sealed tokens, only if they are still the ones read (`was`): a refresh that
/// stored new tokens meanwhile wins, and its tokens are resealed by the next rotation run.
pub fn reseal_tokens(
    conn: &mut AnyConnection,
    was: &SealedTokens,
    refresh: Option<&str>,
    access: Option<&str>,
) -> QueryResult<bool> {
    let (table, id, old_refresh, _) = was;
    super::write_statement(conn, |conn| {
        let n = if *table == "tenants" {
            let values = (
                tenants::stripe_refresh_token_enc.eq(refresh),
                tenants::stripe_access_token_enc.eq(access),
            );
            // The refresh token changes with every refresh: it alone tells a newer state.
            let row = tenants::table.filter(tenants::id.eq(id));
            match old_refresh {
                Some(old) => diesel::update(row.filter(tenants::stripe_refresh_token_enc.eq(old)))
                    .set(values)
                    .execute(conn)?,
                None => diesel::update(row.filter(tenants::stripe_refresh_token_enc.is_null()))
                    .set(values)
                    .execute(conn)?,
            }
        } else {
            diesel::update(stripe_oauth_claims::table.find(id))
                .set((
                    stripe_oauth_claims::refresh_token_enc.eq(refresh),
                    stripe_oauth_claims::access_token_enc.eq(access),
                ))
                .execute(conn)?
        };
        Ok(n == 1)
    })
}
