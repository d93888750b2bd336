//! Idempotency-key rows: one per tenant, caller (JWT subject) and key, claimed `in_flight` by
//! the first request and `completed` with its answer, stored encrypted under the master key
//! (STRIPE_RULES.md, Idempotency).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error};

use super::AnyConnection;
use super::schema::idempotency_keys;

pub const IN_FLIGHT: &str = "in_flight";
pub const COMPLETED: &str = "completed";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = idempotency_keys)]
pub struct IdempotencyRow {
    pub id: String,
    pub tenant_id: String,
    pub idempotency_key: String,
    pub method: String,
    pub path: String,
    pub request_hash: String,
    pub state: String,
    pub response_status: Option<i32>,
    /// The answer's body, sealed with the master key (it may hold secrets: `whsec_`, `nsec_`,
    /// a PaymentIntent's client secret).
    pub response_body: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub caller_subject: String,
}

/// A request that wants to claim its key.
#[derive(Debug, Insertable)]
#[diesel(table_name = idempotency_keys)]
pub struct NewClaim<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub idempotency_key: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub request_hash: &'a str,
    pub state: &'a str,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub caller_subject: &'a str,
}

/// The outcome of a claim.
#[derive(Debug)]
pub enum Claim {
    /// The key is this request's now (row id `new.id`): execute it.
    Claimed,
    /// Another request holds the key: in flight, or completed with an answer to replay.
    Held(Box<IdempotencyRow>),
}

/// When an existing row no longer holds its key.
#[derive(Debug, Clone, Copy)]
pub struct Lapse {
    /// Rows created before this are expired: the key is new again.
    pub expired_before: NaiveDateTime,
    /// `in_flight` rows untouched since before this were abandoned (their instance died).
    pub abandoned_before: NaiveDateTime,
}

/// Claims `new.tenant_id` + `new.caller_subject` + `new.idempotency_key` for one request. The
/// insert is the claim: the unique constraint lets exactly one of several concurrent requests
/// (on any instance) win. An expired or abandoned row is deleted by its id and the insert tried
/// again, so two requests taking over the same lapsed row still cannot both win.
pub fn claim(conn: &mut AnyConnection, new: &NewClaim<'_>, lapse: Lapse) -> QueryResult<Claim> {
    super::write_statement(conn, |conn| claim_once(conn, new, lapse))
}

fn claim_once(conn: &mut AnyConnection, new: &NewClaim<'_>, lapse: Lapse) -> QueryResult<Claim> {
    for _ in 0..3 {
        match diesel::insert_into(idempotency_keys::table)
            .values(new)
            .execute(conn)
        {
            Ok(_) => return Ok(Claim::Claimed),
            Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {}
            Err(err) => return Err(err),
        }
        let Some(held) = find(conn, new.tenant_id, new.caller_subject, new.idempotency_key)? else {
            continue; // deleted meanwhile: claim again
        };
        let lapsed = held.created_at < lapse.expired_before
            || (held.state == IN_FLIGHT && held.updated_at < lapse.abandoned_before);
        if !lapsed {
            return Ok(Claim::Held(Box::new(held)));
        }
        diesel::delete(idempotency_keys::table.find(&held.id)).execute(conn)?;
    }
    // Lost every round to other requests taking the same key over: it is theirs.
    find(conn, new.tenant_id, new.caller_subject, new.idempotency_key)?
        .map(|held| Claim::Held(Box::new(held)))
        .ok_or(Error::NotFound)
}

pub fn find(
    conn: &mut AnyConnection,
    tenant_id: &str,
    caller_subject: &str,
    key: &str,
) -> QueryResult<Option<IdempotencyRow>> {
    idempotency_keys::table
        .filter(idempotency_keys::tenant_id.eq(tenant_id))
        .filter(idempotency_keys::caller_subject.eq(caller_subject))
        .filter(idempotency_keys::idempotency_key.eq(key))
        .select(IdempotencyRow::as_select())
        .first(conn)
        .optional()
}

/// Saves the answer (`body` already sealed) of the request holding claim `id`. Returns false
/// when the claim was lost meanwhile (taken over as abandoned), in which case nothing is
/// written.
pub fn complete(
    conn: &mut AnyConnection,
    id: &str,
    status: u16,
    body: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let target = idempotency_keys::table
        .find(id)
        .filter(idempotency_keys::state.eq(IN_FLIGHT));
    let written = super::write_statement(conn, |conn| {
        diesel::update(target)
            .set((
                idempotency_keys::state.eq(COMPLETED),
                idempotency_keys::response_status.eq(Some(i32::from(status))),
                idempotency_keys::response_body.eq(Some(body)),
                idempotency_keys::updated_at.eq(now),
            ))
            .execute(conn)
    })?;
    Ok(written == 1)
}

/// Gives claim `id` up without an answer (a server error, or a request rejected before any
/// work started), so a retry with the key executes.
pub fn release(conn: &mut AnyConnection, id: &str) -> QueryResult<()> {
    let target = idempotency_keys::table
        .find(id)
        .filter(idempotency_keys::state.eq(IN_FLIGHT));
    super::write_statement(conn, |conn| diesel::delete(target).execute(conn)).map(|_| ())
}

/// Forgets every key created before `before`; returns how many.
pub fn purge_expired(conn: &mut AnyConnection, before: NaiveDateTime) -> QueryResult<usize> {
    super::write_statement(conn, |conn| {
        diesel::delete(idempotency_keys::table.filter(idempotency_keys::created_at.lt(before)))
            .execute(conn)
    })
}

/// Every saved answer (id and sealed body), for re-encrypting them under a new master key.
pub fn sealed_answers(conn: &mut AnyConnection) -> QueryResult<Vec<(String, String)>> {
    let rows: Vec<(String, Option<String>)> = idempotency_keys::table
        .select((idempotency_keys::id, idempotency_keys::response_body))
        .filter(idempotency_keys::response_body.is_not_null())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, body)| Some((id, body?)))
        .collect())
}

/// Replaces a saved answer's sealed body (a master key rotation).
pub fn reseal_answer(conn: &mut AnyConnection, id: &str, sealed: &str) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::update(idempotency_keys::table.find(id))
            .set(idempotency_keys::response_body.eq(Some(sealed)))
            .execute(conn)
    })
    .map(|_| ())
}
