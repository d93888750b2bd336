//! The notification outbox (what the tenant's app is to be told) and its delivery log.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

use super::AnyConnection;
use super::counts::{self, Buckets};
use super::listing::{Counted, Page, PageStart, Total};
use super::schema::{notification_attempts, notification_outbox};

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";

#[derive(Debug, Insertable)]
#[diesel(table_name = notification_outbox)]
pub struct NewNotification<'a> {
    pub id: String,
    pub tenant_id: &'a str,
    pub event_type: &'a str,
    pub source_event_id: &'a str,
    pub payload: String,
    pub status: &'a str,
    pub attempts: i64,
    pub next_attempt_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

/// Adds notifications in the caller's transaction; one per (tenant, Stripe event, type), so a
/// re-applied event cannot notify twice.
pub fn enqueue(conn: &mut AnyConnection, rows: &[NewNotification<'_>]) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    super::write_statement(conn, |conn| match conn {
        AnyConnection::Postgresql(pg) => diesel::insert_into(notification_outbox::table)
            .values(rows)
            .on_conflict_do_nothing()
            .execute(pg)
            .map(|_| ()),
        AnyConnection::Sqlite(sqlite) => {
            for row in rows {
                diesel::insert_or_ignore_into(notification_outbox::table)
                    .values(row)
                    .execute(sqlite)?;
            }
            Ok(())
        }
    })
}

/// A notification claimed for delivery.
#[derive(Debug, Clone, QueryableByName, Queryable)]
pub struct Due {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = Text)]
    pub tenant_id: String,
    #[diesel(sql_type = Text)]
    pub event_type: String,
    #[diesel(sql_type = Text)]
    pub payload: String,
    #[diesel(sql_type = BigInt)]
    pub attempts: i64,
}

/// Leases up to `limit` due notifications until `lease_until`, at most `per_tenant` of any
/// one tenant, oldest due first, none of the tenants in `busy` (the worker is still
/// delivering to them): a tenant whose URL hangs or fails holds at most that many of a
/// claim's places, and the others' notifications go on. On PostgreSQL rows another instance
/// is claiming are skipped (`FOR UPDATE SKIP LOCKED`); on SQLite the claim runs under the
/// database's write lock. A lease that runs out (its worker died) makes the row due again.
pub fn claim_due(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
    per_tenant: i64,
    busy: &[String],
) -> QueryResult<Vec<Due>> {
    // The busy tenants as a JSON array, one parameter on both backends.
    let busy = serde_json::Value::from(busy).to_string();
    // The due notifications ranked within their tenant (both backends have window
    // functions); `now` is the placeholder for the current time, `busy` the tenants left out.
    let ranked = |now: &str, busy: &str| {
        format!(
            "SELECT id, row_number() OVER (\
                 PARTITION BY tenant_id ORDER BY next_attempt_at, id) AS place \
             FROM notification_outbox \
             WHERE status = 'pending' AND next_attempt_at <= {now} \
               AND (leased_until IS NULL OR leased_until < {now}) \
               AND tenant_id NOT IN ({busy})"
        )
    };
    match conn {
        AnyConnection::Postgresql(pg) => diesel::sql_query(format!(
            "UPDATE notification_outbox SET leased_until = $1 WHERE id IN (\
                 SELECT o.id FROM notification_outbox o \
                 WHERE o.id IN (SELECT id FROM ({}) ranked WHERE place <= $4) \
                 ORDER BY o.next_attempt_at, o.id LIMIT $3 FOR UPDATE OF o SKIP LOCKED) \
             RETURNING id, tenant_id, event_type, payload, attempts",
            ranked("$2", "SELECT jsonb_array_elements_text(CAST($5 AS jsonb))")
        ))
        .bind::<Timestamp, _>(lease_until)
        .bind::<Timestamp, _>(now)
        .bind::<BigInt, _>(limit)
        .bind::<BigInt, _>(per_tenant)
        .bind::<Text, _>(&busy)
        .load(pg),
        sqlite => super::write_transaction(sqlite, |conn| {
            let due: Vec<Due> = diesel::sql_query(format!(
                "SELECT o.id, o.tenant_id, o.event_type, o.payload, o.attempts \
                 FROM notification_outbox o JOIN ({}) ranked ON ranked.id = o.id \
                 WHERE ranked.place <= ?2 \
                 ORDER BY o.next_attempt_at, o.id LIMIT ?3",
                ranked("?1", "SELECT value FROM json_each(?4)")
            ))
            .bind::<Timestamp, _>(now)
            .bind::<BigInt, _>(per_tenant)
            .bind::<BigInt, _>(limit)
            .bind::<Text, _>(&busy)
            .load(conn)?;
            let ids: Vec<&str> = due.iter().map(|d| d.id.as_str()).collect();
            diesel::update(notification_outbox::table.filter(notification_outbox::id.eq_any(&ids)))
                .set(notification_outbox::leased_until.eq(Some(lease_until)))
                .execute(conn)?;
            Ok(due)
        }),
    }
}

/// What retrying a notification found.
pub enum Retried {
    /// Due again now, with a fresh count of attempts; with its earlier attempts.
    Queued(Box<WithAttempts>),
    /// Still waiting for delivery: nothing to retry.
    StillPending,
    /// No such notification of the tenant.
    Missing,
}

/// Makes a delivered or failed notification of the tenant due again now, with a fresh count
/// of attempts (its log of earlier attempts stays).
pub fn retry(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> QueryResult<Retried> {
    super::write_transaction(conn, |conn| {
        let mine = notification_outbox::table
            .filter(notification_outbox::tenant_id.eq(tenant_id))
            .filter(notification_outbox::id.eq(id));
        let Some(status) = mine
            .select(notification_outbox::status)
            .first::<String>(conn)
            .optional()?
        else {
            return Ok(Retried::Missing);
        };
        if status == PENDING {
            return Ok(Retried::StillPending);
        }
        let now = chrono::Utc::now().naive_utc();
        diesel::update(mine)
            .set((
                notification_outbox::status.eq(PENDING),
                notification_outbox::attempts.eq(0_i64),
                notification_outbox::next_attempt_at.eq(now),
                notification_outbox::leased_until.eq(None::<NaiveDateTime>),
                notification_outbox::delivered_at.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?;
        let row = mine.select(NotificationRow::as_select()).first(conn)?;
        let attempts = notification_attempts::table
            .filter(notification_attempts::notification_id.eq(id))
            .order(notification_attempts::attempted_at.asc())
            .select(AttemptRow::as_select())
            .load(conn)?;
        Ok(Retried::Queued(Box::new((row, attempts))))
    })
}

/// Gives back the leases of these notifications (claimed, not attempted): they are due at
/// once for any worker.
pub fn release_leases(conn: &mut AnyConnection, ids: &[String]) -> QueryResult<usize> {
    super::write_statement(conn, |conn| {
        diesel::update(notification_outbox::table.filter(notification_outbox::id.eq_any(ids)))
            .set(notification_outbox::leased_until.eq(None::<NaiveDateTime>))
            .execute(conn)
    })
}

/// How many notifications wait for delivery (all tenants).
pub fn pending_count(conn: &mut AnyConnection) -> QueryResult<i64> {
    notification_outbox::table
        .filter(notification_outbox::status.eq(PENDING))
        .count()
        .get_result(conn)
}

/// What an attempt leads to.
pub enum Next {
    Delivered,
    RetryAt(NaiveDateTime),
    GiveUp,
}

pub struct Attempt<'a> {
    pub url: &'a str,
    pub status_code: Option<i64>,
    pub error: Option<&'a str>,
    pub duration_ms: i64,
}

/// Logs an attempt and moves the notification on, releasing its lease.
pub fn record_attempt(
    conn: &mut AnyConnection,
    due: &Due,
    attempt: &Attempt<'_>,
    next: Next,
    now: NaiveDateTime,
) -> QueryResult<()> {
    super::write_transaction(conn, |conn| {
        diesel::insert_into(notification_attempts::table)
            .values((
                notification_attempts::id.eq(super::new_row_id()),
                notification_attempts::notification_id.eq(&due.id),
                notification_attempts::tenant_id.eq(&due.tenant_id),
                notification_attempts::attempted_at.eq(now),
                notification_attempts::url.eq(attempt.url),
                notification_attempts::status_code.eq(attempt.status_code),
                notification_attempts::error.eq(attempt.error),
                notification_attempts::duration_ms.eq(attempt.duration_ms),
            ))
            .execute(conn)?;
        let row = notification_outbox::table.find(&due.id);
        let attempts = due.attempts + 1;
        let (status, next_at, delivered_at) = match next {
            Next::Delivered => (DELIVERED, now, Some(now)),
            Next::RetryAt(at) => (PENDING, at, None),
            Next::GiveUp => (FAILED, now, None),
        };
        diesel::update(row)
            .set((
                notification_outbox::status.eq(status),
                notification_outbox::attempts.eq(attempts),
                notification_outbox::next_attempt_at.eq(next_at),
                notification_outbox::leased_until.eq(None::<NaiveDateTime>),
                notification_outbox::last_error.eq(attempt.error),
                notification_outbox::delivered_at.eq(delivered_at),
            ))
            .execute(conn)
            .map(|_| ())
    })
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = notification_outbox)]
pub struct NotificationRow {
    pub id: String,
    pub tenant_id: String,
    pub event_type: String,
    pub source_event_id: String,
    pub payload: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: NaiveDateTime,
    pub leased_until: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub delivered_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = notification_attempts)]
pub struct AttemptRow {
    pub id: String,
    pub notification_id: String,
    pub tenant_id: String,
    pub attempted_at: NaiveDateTime,
    pub url: String,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// A notification with its delivery attempts, oldest first.
pub type WithAttempts = (NotificationRow, Vec<AttemptRow>);

/// A notification's place in the log: (our `created_at`, our id).
pub type SortKey = (NaiveDateTime, String);

/// Where a list cursor stands: the key of the tenant's notification `id`.
pub fn list_position(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
) -> QueryResult<Option<SortKey>> {
    notification_outbox::table
        .filter(notification_outbox::tenant_id.eq(tenant_id))
        .filter(notification_outbox::id.eq(id))
        .select((notification_outbox::created_at, notification_outbox::id))
        .first(conn)
        .optional()
}

/// One page of the tenant's notifications, newest first, each with its attempts; and the
/// total (the tenant's counter).
pub fn list(
    conn: &mut AnyConnection,
    tenant_id: &str,
    start: &PageStart<SortKey>,
    limit: i64,
) -> QueryResult<Page<WithAttempts>> {
    let counted = Total::Counters(Counted {
        tenant_id,
        list: counts::List::Notifications,
        buckets: Buckets::All,
    });
    let build = || {
        notification_outbox::table
            .filter(notification_outbox::tenant_id.eq(tenant_id.to_owned()))
            .into_boxed()
    };
    let page = super::listing::read_page!(
        conn,
        build,
        notification_outbox,
        NotificationRow,
        (created_at: NaiveDateTime, id),
        start,
        limit,
        counted
    )?;
    let ids: Vec<&str> = page.rows.iter().map(|r| r.id.as_str()).collect();
    let attempts: Vec<AttemptRow> = notification_attempts::table
        .filter(notification_attempts::notification_id.eq_any(&ids))
        .order(notification_attempts::attempted_at.asc())
        .select(AttemptRow::as_select())
        .load(conn)?;
    let rows = page
        .rows
        .into_iter()
        .map(|row| {
            let mine = attempts
                .iter()
                .filter(|a| a.notification_id == row.id)
                .cloned()
                .collect();
            (row, mine)
        })
        .collect();
    Ok(Page {
        rows,
        total: page.total,
        has_more: page.has_more,
    })
}
