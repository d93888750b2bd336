//! Webhook endpoint rows and their signing secrets (encrypted; several per endpoint so a
//! secret can be rolled).

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;

use super::AnyConnection;
use super::schema::{webhook_endpoints, webhook_secrets};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_endpoints)]
pub struct WebhookEndpointRow {
    pub id: String,
    pub tenant_id: String,
    pub url_id: String,
    pub stripe_endpoint_id: String,
    pub url: String,
    pub events: String,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = webhook_endpoints)]
pub struct NewWebhookEndpoint<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub url_id: &'a str,
    pub stripe_endpoint_id: &'a str,
    pub url: &'a str,
    pub events: &'a str,
    pub status: &'a str,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Stores the endpoint and its first secret together.
pub fn insert(
    conn: &mut AnyConnection,
    new: &NewWebhookEndpoint<'_>,
    secret_enc: &str,
) -> QueryResult<WebhookEndpointRow> {
    super::write_transaction(conn, |conn| {
        diesel::insert_into(webhook_endpoints::table)
            .values(new)
            .execute(conn)?;
        diesel::insert_into(webhook_secrets::table)
            .values((
                webhook_secrets::id.eq(super::new_row_id()),
                webhook_secrets::endpoint_id.eq(new.id),
                webhook_secrets::secret_enc.eq(secret_enc),
                webhook_secrets::created_at.eq(Utc::now().naive_utc()),
            ))
            .execute(conn)?;
        webhook_endpoints::table
            .find(new.id)
            .select(WebhookEndpointRow::as_select())
            .first(conn)
    })
}

pub fn list(conn: &mut AnyConnection, tenant_id: &str) -> QueryResult<Vec<WebhookEndpointRow>> {
    webhook_endpoints::table
        .filter(webhook_endpoints::tenant_id.eq(tenant_id))
        .order((
            webhook_endpoints::created_at.desc(),
            webhook_endpoints::id.desc(),
        ))
        .select(WebhookEndpointRow::as_select())
        .load(conn)
}

/// A signing secret as stored: encrypted, and when it stops verifying (none: never).
pub type SealedSecret = (String, Option<NaiveDateTime>);

/// Stripe's status of an endpoint that does not deliver.
pub const DISABLED: &str = "disabled";

/// Records Stripe's answer to a change of the endpoint `id`: its status and event types.
pub fn set_state(
    conn: &mut AnyConnection,
    id: &str,
    status: &str,
    events: &str,
) -> QueryResult<Option<WebhookEndpointRow>> {
    super::write_statement(conn, |conn| {
        diesel::update(webhook_endpoints::table.find(id))
            .set((
                webhook_endpoints::status.eq(status),
                webhook_endpoints::events.eq(events),
                webhook_endpoints::updated_at.eq(Utc::now().naive_utc()),
            ))
            .execute(conn)
    })?;
    webhook_endpoints::table
        .find(id)
        .select(WebhookEndpointRow::as_select())
        .first(conn)
        .optional()
}

/// Forgets the endpoint `id` and its secrets (deleted at Stripe).
pub fn delete(conn: &mut AnyConnection, id: &str) -> QueryResult<()> {
    super::write_transaction(conn, |conn| {
        diesel::delete(webhook_secrets::table.filter(webhook_secrets::endpoint_id.eq(id)))
            .execute(conn)?;
        diesel::delete(webhook_endpoints::table.find(id)).execute(conn)?;
        Ok(())
    })
}

/// The endpoint a receiver URL names, with its secrets that have not expired yet, newest first.
pub fn find_by_url_id(
    conn: &mut AnyConnection,
    url_id: &str,
) -> QueryResult<Option<(WebhookEndpointRow, Vec<SealedSecret>)>> {
    let Some(endpoint) = webhook_endpoints::table
        .filter(webhook_endpoints::url_id.eq(url_id))
        .select(WebhookEndpointRow::as_select())
        .first(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let now = Utc::now().naive_utc();
    let secrets = webhook_secrets::table
        .filter(webhook_secrets::endpoint_id.eq(&endpoint.id))
        .filter(
            webhook_secrets::expires_at
                .is_null()
                .or(webhook_secrets::expires_at.gt(now)),
        )
        .order(webhook_secrets::created_at.desc())
        .select((webhook_secrets::secret_enc, webhook_secrets::expires_at))
        .load(conn)?;
    Ok(Some((endpoint, secrets)))
}

/// The tenant's endpoint by our unique id or its url_id.
pub fn find_for_tenant(
    conn: &mut AnyConnection,
    tenant_id: &str,
    any_id: &str,
) -> QueryResult<Option<WebhookEndpointRow>> {
    webhook_endpoints::table
        .filter(webhook_endpoints::tenant_id.eq(tenant_id))
        .filter(
            webhook_endpoints::id
                .eq(any_id)
                .or(webhook_endpoints::url_id.eq(any_id)),
        )
        .select(WebhookEndpointRow::as_select())
        .first(conn)
        .optional()
}

/// Adds a signing secret (a secret rolled at Stripe) and makes the endpoint's other unexpired
/// secrets expire at `previous_expire_at`, in one transaction. Returns the new secret's id.
pub fn add_secret(
    conn: &mut AnyConnection,
    endpoint_id: &str,
    secret_enc: &str,
    previous_expire_at: NaiveDateTime,
) -> QueryResult<String> {
    super::write_transaction(conn, |conn| {
        let now = Utc::now().naive_utc();
        diesel::update(
            webhook_secrets::table
                .filter(webhook_secrets::endpoint_id.eq(endpoint_id))
                .filter(
                    webhook_secrets::expires_at
                        .is_null()
                        .or(webhook_secrets::expires_at.gt(previous_expire_at)),
                ),
        )
        .set(webhook_secrets::expires_at.eq(Some(previous_expire_at)))
        .execute(conn)?;
        let id = super::new_row_id();
        diesel::insert_into(webhook_secrets::table)
            .values((
                webhook_secrets::id.eq(&id),
                webhook_secrets::endpoint_id.eq(endpoint_id),
                webhook_secrets::secret_enc.eq(secret_enc),
                webhook_secrets::created_at.eq(now),
            ))
            .execute(conn)?;
        Ok(id)
    })
}

/// Every endpoint signing secret (row id, encrypted secret), for re-encrypting them under a new
/// master key.
pub fn sealed_secrets(conn: &mut AnyConnection) -> QueryResult<Vec<(String, String)>> {
    webhook_secrets::table
        .order(webhook_secrets::id.asc())
        .select((webhook_secrets::id, webhook_secrets::secret_enc))
        .load(conn)
}

/// Replaces one signing secret's ciphertext (a master key rotation).
pub fn reseal_secret(conn: &mut AnyConnection, id: &str, sealed: &str) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::update(webhook_secrets::table.find(id))
            .set(webhook_secrets::secret_enc.eq(sealed))
            .execute(conn)
    })
    .map(|_| ())
}
