//! Received Stripe events: stored once per tenant (the unique constraint is the dedup), with
//! what applying them did.

use std::collections::HashSet;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::AnyConnection;
use super::schema::stripe_events;

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
    diesel::insert_into(stripe_events::table)
        .values(new)
        .execute(conn)
        .map(|_| ())
}

/// Inserts the events not stored yet and returns which ones were inserted, as (tenant id,
/// event id); rows are written in the order given. One statement on PostgreSQL (`ON CONFLICT
/// DO NOTHING`); on SQLite, whose writer holds the database lock, one `INSERT OR IGNORE`
/// each.
pub fn insert_new(
    conn: &mut AnyConnection,
    rows: &[NewEvent<'_>],
) -> QueryResult<HashSet<(String, String)>> {
    match conn {
        AnyConnection::Postgresql(pg) => {
            let inserted: Vec<(String, String)> = diesel::insert_into(stripe_events::table)
                .values(rows)
                .on_conflict_do_nothing()
                .returning((stripe_events::tenant_id, stripe_events::event_id))
                .get_results(pg)?;
            Ok(inserted.into_iter().collect())
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
    }
}

pub fn set_outcome(
    conn: &mut AnyConnection,
    tenant_id: &str,
    event_id: &str,
    outcome: &str,
) -> QueryResult<()> {
    diesel::update(
        stripe_events::table
            .filter(stripe_events::tenant_id.eq(tenant_id))
            .filter(stripe_events::event_id.eq(event_id)),
    )
    .set(stripe_events::outcome.eq(outcome))
    .execute(conn)
    .map(|_| ())
}

/// Records one outcome for several events of a tenant.
pub fn set_outcomes(
    conn: &mut AnyConnection,
    tenant_id: &str,
    event_ids: &[&str],
    outcome: &str,
) -> QueryResult<()> {
    diesel::update(
        stripe_events::table
            .filter(stripe_events::tenant_id.eq(tenant_id))
            .filter(stripe_events::event_id.eq_any(event_ids)),
    )
    .set(stripe_events::outcome.eq(outcome))
    .execute(conn)
    .map(|_| ())
}

/// The outcomes recorded for these events of a tenant, as (event id, outcome).
pub fn outcomes(
    conn: &mut AnyConnection,
    tenant_id: &str,
    event_ids: &[&str],
) -> QueryResult<Vec<(String, String)>> {
    stripe_events::table
        .filter(stripe_events::tenant_id.eq(tenant_id))
        .filter(stripe_events::event_id.eq_any(event_ids))
        .select((stripe_events::event_id, stripe_events::outcome))
        .load(conn)
}

/// The outcome recorded for an event already received.
pub fn outcome(
    conn: &mut AnyConnection,
    tenant_id: &str,
    event_id: &str,
) -> QueryResult<Option<String>> {
    stripe_events::table
        .filter(stripe_events::tenant_id.eq(tenant_id))
        .filter(stripe_events::event_id.eq(event_id))
        .select(stripe_events::outcome)
        .first(conn)
        .optional()
}
