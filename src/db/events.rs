//! Received Stripe events: stored once per tenant (the unique constraint is the dedup), with
//! what applying them did.

use std::collections::HashSet;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamp};

use super::AnyConnection;
use super::prepared::{Key, prepared};
use super::schema::stripe_events;

/// The outcome recorded for an event.
#[derive(QueryableByName)]
struct Outcome {
    #[diesel(sql_type = Text)]
    event_id: String,
    #[diesel(sql_type = Text)]
    outcome: String,
}

pub const APPLIED: &str = "applied";
pub const STALE: &str = "stale";
pub const IGNORED: &str = "ignored";
pub const REFRESH_PENDING: &str = "refresh_pending";
pub const REFRESHED: &str = "refreshed";

#[derive(Debug, Insertable)]
#[diesel(table_name = stripe_events)]
pub struct NewEvent<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub endpoint_id: &'a str,
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub object_id: Option<&'a str>,
    pub stripe_created: i64,
    pub api_version: Option<&'a str>,
    pub payload: &'a str,
    pub outcome: &'a str,
    pub received_at: NaiveDateTime,
}

/// Inserts the event. A second delivery of the same event fails here with a unique violation,
/// which rolls back the caller's transaction: nothing is applied twice.
pub fn insert(conn: &mut AnyConnection, new: &NewEvent<'_>) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::insert_into(stripe_events::table)
            .values(new)
            .execute(conn)
    })
    .map(|_| ())
}

/// Inserts the events not stored yet and returns which ones were inserted, as (tenant id,
/// event id); rows are written in the order given. One statement on PostgreSQL (`ON CONFLICT
/// DO NOTHING`); on SQLite, whose writer holds the database lock, one `INSERT OR IGNORE`
/// each.
pub fn insert_new<'r>(
    conn: &mut AnyConnection,
    rows: &[NewEvent<'r>],
) -> QueryResult<HashSet<(String, String)>> {
    super::write_statement(conn, |conn| match conn {
        AnyConnection::Postgresql(pg) => {
            // One array per column (sent in binary, so payloads need no escaping): the
            // statement's text is the same for any batch size and stays prepared.
            let column = |f: fn(&NewEvent<'r>) -> &'r str| rows.iter().map(f).collect::<Vec<_>>();
            let inserted: Vec<Key> = prepared([
                "INSERT INTO stripe_events (id, tenant_id, endpoint_id, event_id, event_type, \
                 object_id, stripe_created, api_version, payload, outcome, received_at) \
                 SELECT * FROM unnest(",
                "::text[], ",
                "::text[], ",
                "::text[], ",
                "::text[], ",
                "::text[], ",
                "::text[], ",
                "::bigint[], ",
                "::text[], ",
                "::text[], ",
                "::text[], ",
                "::timestamp[]) ON CONFLICT DO NOTHING RETURNING tenant_id, event_id AS id",
            ])
            .bind::<Array<Text>, _>(column(|r| r.id))
            .bind::<Array<Text>, _>(column(|r| r.tenant_id))
            .bind::<Array<Text>, _>(column(|r| r.endpoint_id))
            .bind::<Array<Text>, _>(column(|r| r.event_id))
            .bind::<Array<Text>, _>(column(|r| r.event_type))
            .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.object_id).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(rows.iter().map(|r| r.stripe_created).collect::<Vec<_>>())
            .bind::<Array<Nullable<Text>>, _>(
                rows.iter().map(|r| r.api_version).collect::<Vec<_>>(),
            )
            .bind::<Array<Text>, _>(column(|r| r.payload))
            .bind::<Array<Text>, _>(column(|r| r.outcome))
            .bind::<Array<Timestamp>, _>(rows.iter().map(|r| r.received_at).collect::<Vec<_>>())
            .load(pg)?;
            Ok(inserted
                .into_iter()
                .map(|row| (row.tenant_id, row.id))
                .collect())
        }
        AnyConnection::Sqlite(sqlite) => {
            let mut inserted = HashSet::new();
            for row in rows {
                let count = diesel::insert_or_ignore_into(stripe_events::table)
                    .values(row)
                    .execute(sqlite)?;
                if count == 1 {
                    inserted.insert((row.tenant_id.to_owned(), row.event_id.to_owned()));
                }
            }
            Ok(inserted)
        }
    })
}

pub fn set_outcome(
    conn: &mut AnyConnection,
    tenant_id: &str,
    event_id: &str,
    outcome: &str,
) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::update(
            stripe_events::table
                .filter(stripe_events::tenant_id.eq(tenant_id))
                .filter(stripe_events::event_id.eq(event_id)),
        )
        .set(stripe_events::outcome.eq(outcome))
        .execute(conn)
    })
    .map(|_| ())
}

/// Records one outcome for several events of a tenant.
pub fn set_outcomes(
    conn: &mut AnyConnection,
    tenant_id: &str,
    event_ids: &[&str],
    outcome: &str,
) -> QueryResult<()> {
    match conn {
        // By the full unique key, planned per call for the table as it is (see `prepared`):
        // no plan made while the table was small can turn into a scan of the tenant's events.
        AnyConnection::Postgresql(pg) => prepared([
            "UPDATE stripe_events SET outcome = ",
            " WHERE tenant_id = ",
            " AND event_id = ANY(",
            "::text[])",
        ])
        .bind::<Text, _>(outcome)
        .bind::<Text, _>(tenant_id)
        .bind::<Array<Text>, _>(event_ids)
        .planned_per_call()
        .execute(pg),
        sqlite => super::write_statement(sqlite, |sqlite| {
            diesel::update(
                stripe_events::table
                    .filter(stripe_events::tenant_id.eq(tenant_id))
                    .filter(stripe_events::event_id.eq_any(event_ids)),
            )
            .set(stripe_events::outcome.eq(outcome))
            .execute(sqlite)
        }),
    }
    .map(|_| ())
}

/// The outcomes recorded for these events of a tenant, as (event id, outcome).
pub fn outcomes(
    conn: &mut AnyConnection,
    tenant_id: &str,
    event_ids: &[&str],
) -> QueryResult<Vec<(String, String)>> {
    match conn {
        // As in `set_outcomes`.
        AnyConnection::Postgresql(pg) => Ok(prepared([
            "SELECT event_id, outcome FROM stripe_events WHERE tenant_id = ",
            " AND event_id = ANY(",
            "::text[])",
        ])
        .bind::<Text, _>(tenant_id)
        .bind::<Array<Text>, _>(event_ids)
        .planned_per_call()
        .load::<Outcome>(pg)?
        .into_iter()
        .map(|row| (row.event_id, row.outcome))
        .collect()),
        AnyConnection::Sqlite(sqlite) => stripe_events::table
            .filter(stripe_events::tenant_id.eq(tenant_id))
            .filter(stripe_events::event_id.eq_any(event_ids))
            .select((stripe_events::event_id, stripe_events::outcome))
            .load(sqlite),
    }
}

/// The outcome recorded for an event already received (through `outcomes`, whose lookup is
/// planned per call on PostgreSQL).
pub fn outcome(
    conn: &mut AnyConnection,
    tenant_id: &str,
    event_id: &str,
) -> QueryResult<Option<String>> {
    Ok(outcomes(conn, tenant_id, &[event_id])?
        .into_iter()
        .next()
        .map(|(_, outcome)| outcome))
}
