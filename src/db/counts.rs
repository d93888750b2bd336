//! How many rows each list holds, kept as the rows are written: a page's total is read from
//! a few counter rows instead of counted over the tenant's rows on every call.
//!
//! The counters are kept by triggers, in the transaction that writes the rows, so every
//! write path (receiver batches, API writes, deletes) keeps them exact, and a write the
//! watermark rule refuses changes no row and no count. Their SQL differs between the
//! backends, so they are installed here at start rather than by a migration; the table they
//! write is the migration's `list_counts`.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use super::AnyConnection;
use super::schema::{list_count_definitions, list_counts, list_totals};

/// A list whose rows are counted: its table and the bucket a row counts in. `{r}` in the
/// bucket stands for the row (`NEW.`/`OLD.` in SQLite's row triggers, nothing in
/// PostgreSQL's statement triggers over transition tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    Subscriptions,
    Payments,
    Customers,
    Refunds,
    Cards,
    Notifications,
    PaymentLinks,
    Charges,
}

/// Customers' buckets: the list shows the live ones.
pub const LIVE: &str = "live";
/// Cards' buckets: the list shows the attached ones.
pub const ATTACHED: &str = "attached";
/// Payment links' buckets: active or deactivated.
pub const ACTIVE: &str = "active";
pub const INACTIVE: &str = "inactive";

impl List {
    pub const ALL: [List; 8] = [
        List::Subscriptions,
        List::Payments,
        List::Customers,
        List::Refunds,
        List::Cards,
        List::Notifications,
        List::PaymentLinks,
        List::Charges,
    ];

    fn name(self) -> &'static str {
        match self {
            List::Subscriptions => "subscriptions",
            List::Payments => "payments",
            List::Customers => "customers",
            List::Refunds => "refunds",
            List::Cards => "cards",
            List::Notifications => "notifications",
            List::PaymentLinks => "payment_links",
            List::Charges => "charges",
        }
    }

    fn table(self) -> &'static str {
        match self {
            List::Subscriptions => "subscriptions",
            List::Payments => "payments",
            List::Customers => "customers",
            List::Refunds => "refunds",
            List::Cards => "payment_methods",
            List::Notifications => "notification_outbox",
            List::PaymentLinks => "payment_links",
            List::Charges => "charges",
        }
    }

    fn bucket(self) -> &'static str {
        match self {
            List::Subscriptions | List::Payments | List::Charges => "{r}status",
            List::Customers => "CASE WHEN {r}deleted_at IS NULL THEN 'live' ELSE 'deleted' END",
            List::Cards => {
                "CASE WHEN {r}stripe_customer_id IS NULL THEN 'detached' ELSE 'attached' END"
            }
            List::PaymentLinks => "CASE WHEN {r}active THEN 'active' ELSE 'inactive' END",
            List::Refunds | List::Notifications => "'all'",
        }
    }

    fn bucket_of(self, row: &str) -> String {
        self.bucket().replace("{r}", row)
    }

    /// The list's first order column: Stripe's `created` in seconds, or a timestamp of ours.
    fn first_column(self) -> (&'static str, bool) {
        match self {
            List::Subscriptions | List::Refunds | List::Charges => ("stripe_created", false),
            List::Payments
            | List::Customers
            | List::Cards
            | List::Notifications
            | List::PaymentLinks => ("created_at", true),
        }
    }

    /// The span (week of the first order column) a row counts in, in `postgres`'s dialect
    /// or SQLite's.
    fn span_of(self, row: &str, postgres: bool) -> String {
        let (column, timestamp) = self.first_column();
        match (timestamp, postgres) {
            (false, _) => format!("{row}{column} / {SPAN_SECS}"),
            (true, true) => {
                format!("CAST(FLOOR(EXTRACT(EPOCH FROM {row}{column}) / {SPAN_SECS}) AS BIGINT)")
            }
            (true, false) => {
                format!("CAST(strftime('%s', {row}{column}) AS INTEGER) / {SPAN_SECS}")
            }
        }
    }

    /// What the counters mean (the table, bucket and span, and the counter tables kept): a
    /// change reinstalls the triggers and recounts the list.
    fn counting(self) -> String {
        format!(
            "v3 {} {} {}",
            self.table(),
            self.bucket(),
            self.span_of("", true)
        )
    }

    /// What the installed triggers must match: what they count, then how they are written
    /// (`TRIGGER_CODE`). A change of the code alone reinstalls them and keeps the counts.
    fn definition(self) -> String {
        format!("{}{TRIGGER_CODE}", self.counting())
    }
}

/// The version of the triggers' code, after what they count in a list's definition: 2 skips
/// a statement's empty transition table (an upsert fires both its INSERT and UPDATE
/// statement triggers, one of them almost always empty: 0.25 ms a statement before, 0.06
/// after). Definitions stored before it have no such suffix.
const TRIGGER_CODE: &str = "; triggers 2";

/// Rows are also counted per week of the list's first order column, so a deep page is found
/// by summing weeks and walking only the week it falls in.
pub const SPAN_SECS: i64 = 7 * 24 * 3600;

/// Which buckets of a list a total sums.
#[derive(Debug, Clone, Copy)]
pub enum Buckets<'a> {
    All,
    Only(&'a [&'a str]),
}

/// A sum of counters as a BIGINT (PostgreSQL's `SUM` of BIGINT is NUMERIC).
const SUM_N: &str = "CAST(COALESCE(SUM(n), 0) AS BIGINT)";

/// The number of the tenant's rows of `list` in `buckets`, summed by the database from the
/// all-time counters (one row back). A bucket whose counters sum below zero (damaged)
/// counts as empty, as a week does in [`spans`].
pub fn total(
    conn: &mut AnyConnection,
    tenant_id: &str,
    list: List,
    buckets: Buckets<'_>,
) -> QueryResult<i64> {
    let postgres = matches!(conn, AnyConnection::Postgresql(_));
    let flagged: i64 =
        diesel::select(total_column::<_>(tenant_id, list, buckets, postgres)).get_result(conn)?;
    Ok(unflag_total(flagged, tenant_id, list))
}

/// An expression selected beside a list's rows (or alone): one BIGINT.
pub type Column<QS> = Box<
    dyn BoxableExpression<
            QS,
            <AnyConnection as Connection>::Backend,
            SqlType = diesel::sql_types::BigInt,
        >,
>;

/// The list's total as a scalar sub-select of the counters (`list_totals`: a row per bucket
/// and writer shard, whatever the list's age), to select beside a page's rows: a shallow page
/// and its total come back in one statement, which is their snapshot. The value is
/// *flagged*: below zero when some bucket's counters were damaged, that bucket then counting
/// as empty (see [`unflag_total`]); `postgres` picks the dialect of a several-bucket filter.
pub fn total_column<QS>(
    tenant_id: &str,
    list: List,
    buckets: Buckets<'_>,
    postgres: bool,
) -> Column<QS> {
    use diesel::dsl::sql;
    use diesel::sql_types::{BigInt, Text};
    // Per bucket, then the clamp: a bucket below zero counts as empty and flags the total.
    const HEAD: &str = "(SELECT CAST(CASE WHEN COALESCE(SUM(CASE WHEN s < 0 THEN 1 ELSE 0 END), 0) > 0 \
         THEN -1 - COALESCE(SUM(CASE WHEN s > 0 THEN s ELSE 0 END), 0) \
         ELSE COALESCE(SUM(CASE WHEN s > 0 THEN s ELSE 0 END), 0) END AS BIGINT) \
         FROM (SELECT SUM(n) AS s FROM list_totals WHERE tenant_id = ";
    const TAIL: &str = " GROUP BY bucket) AS buckets)";
    let head = sql::<BigInt>(HEAD)
        .bind::<Text, _>(tenant_id.to_owned())
        .sql(" AND list = ")
        .bind::<Text, _>(list.name());
    match buckets {
        Buckets::All => Box::new(head.sql(TAIL)),
        Buckets::Only([]) => Box::new(head.sql(" AND 1 = 0").sql(TAIL)),
        Buckets::Only([one]) => Box::new(
            head.sql(" AND bucket = ")
                .bind::<Text, _>((*one).to_owned())
                .sql(TAIL),
        ),
        // Buckets are names of ours or Stripe's statuses: never a comma.
        Buckets::Only(several) => {
            let (before, after) = if postgres {
                (
                    " AND position(',' || bucket || ',' IN ',' || ",
                    " || ',') > 0",
                )
            } else {
                (" AND instr(',' || ", " || ',', ',' || bucket || ',') > 0")
            };
            Box::new(
                head.sql(before)
                    .bind::<Text, _>(several.join(","))
                    .sql(after)
                    .sql(TAIL),
            )
        }
    }
}

/// A total read through [`total_column`], its damage flag taken off (and logged).
pub fn unflag_total(flagged: i64, tenant_id: &str, list: List) -> i64 {
    if flagged < 0 {
        warn_damaged(tenant_id, list);
        -1 - flagged
    } else {
        flagged
    }
}

fn warn_damaged(tenant_id: &str, list: List) {
    tracing::warn!(
        tenant_id,
        list = list.name(),
        "list counters below zero: damaged"
    );
}

/// The tenant's rows of `list` in `buckets`, per span, newest span first (their sum is the
/// list's total): summed per span by the database (one row per week back, not one per week,
/// bucket and shard).
pub fn spans(
    conn: &mut AnyConnection,
    tenant_id: &str,
    list: List,
    buckets: Buckets<'_>,
) -> QueryResult<Vec<(i64, i64)>> {
    let rows = list_counts::table
        .filter(list_counts::tenant_id.eq(tenant_id))
        .filter(list_counts::list.eq(list.name()));
    let per_span = (
        list_counts::span,
        diesel::dsl::sql::<diesel::sql_types::BigInt>(SUM_N),
    );
    let by_span: Vec<(i64, i64)> = match buckets {
        Buckets::All => rows
            .group_by(list_counts::span)
            .select(per_span)
            .order(list_counts::span.desc())
            .load(conn)?,
        Buckets::Only(only) => rows
            .filter(list_counts::bucket.eq_any(only))
            .group_by(list_counts::span)
            .select(per_span)
            .order(list_counts::span.desc())
            .load(conn)?,
    };
    // A week below zero means the counters were damaged (rows written with the triggers off,
    // a partial restore): it counts as empty, so no total or seek goes negative; the recount
    // at the next start of a changed definition repairs it.
    if by_span.iter().any(|(_, n)| *n < 0) {
        warn_damaged(tenant_id, list);
    }
    Ok(by_span.into_iter().filter(|(_, n)| *n > 0).collect())
}

/// Installs (or, when a list's definition changed, reinstalls) every list's count triggers
/// and counts the list afresh under a lock that holds its writers back meanwhile; then folds
/// the shards of PostgreSQL connections that are gone. Run after the migrations.
pub fn install(conn: &mut AnyConnection) -> QueryResult<()> {
    let stored = |conn: &mut AnyConnection, list: List| -> QueryResult<Option<String>> {
        list_count_definitions::table
            .filter(list_count_definitions::list.eq(list.name()))
            .select(list_count_definitions::definition)
            .first(conn)
            .optional()
    };
    for list in List::ALL {
        if stored(conn, list)?.as_deref() == Some(list.definition().as_str()) {
            continue;
        }
        super::write_transaction(conn, |conn| -> QueryResult<()> {
            let postgres = matches!(conn, AnyConnection::Postgresql(_));
            if postgres {
                // Writers wait here until the triggers and the recount are in; another
                // instance starting at the same time finds them installed.
                conn.batch_execute(&format!(
                    "LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE",
                    list.table()
                ))?;
            }
            let stored = stored(conn, list)?;
            if stored.as_deref() == Some(list.definition().as_str()) {
                return Ok(());
            }
            // Counted the same way before (only the triggers' code differs): the counts hold.
            let counted_alike = stored
                .as_deref()
                .and_then(|stored| stored.split(';').next())
                .is_some_and(|counting| counting == list.counting());
            let triggers = if postgres {
                postgres_triggers(list)
            } else {
                sqlite_triggers(list)
            };
            conn.batch_execute(&triggers)?;
            if !counted_alike {
                recount(conn, list)?;
            }
            diesel::delete(
                list_count_definitions::table.filter(list_count_definitions::list.eq(list.name())),
            )
            .execute(conn)?;
            diesel::insert_into(list_count_definitions::table)
                .values((
                    list_count_definitions::list.eq(list.name()),
                    list_count_definitions::definition.eq(list.definition()),
                ))
                .execute(conn)?;
            Ok(())
        })?;
    }
    fold_gone_shards(conn)
}

/// Counts a list from its rows, replacing its counters.
fn recount(conn: &mut AnyConnection, list: List) -> QueryResult<()> {
    diesel::delete(list_counts::table.filter(list_counts::list.eq(list.name()))).execute(conn)?;
    diesel::delete(list_totals::table.filter(list_totals::list.eq(list.name()))).execute(conn)?;
    let postgres = matches!(conn, AnyConnection::Postgresql(_));
    conn.batch_execute(&format!(
        "INSERT INTO list_counts (tenant_id, list, bucket, span, shard, n) \
         SELECT tenant_id, '{name}', bucket, span, 0, COUNT(*) \
         FROM (SELECT tenant_id, {bucket} AS bucket, {span} AS span FROM {table}) AS rows \
         GROUP BY tenant_id, bucket, span; \
         INSERT INTO list_totals (tenant_id, list, bucket, shard, n) \
         SELECT tenant_id, list, bucket, 0, SUM(n) FROM list_counts WHERE list = '{name}' \
         GROUP BY tenant_id, list, bucket",
        name = list.name(),
        table = list.table(),
        bucket = list.bucket_of(""),
        span = list.span_of("", postgres),
    ))
}

/// PostgreSQL: one statement trigger per kind of write, over the statement's transition
/// tables, adding each (tenant, bucket)'s net change to this connection's shard.
fn postgres_triggers(list: List) -> String {
    let name = list.name();
    let table = list.table();
    let bucket = list.bucket_of("");
    let span = list.span_of("", true);
    // Per week into list_counts, per bucket into list_totals: one statement, the rows'
    // changes read once.
    let add = |rows: &str| {
        format!(
            "WITH x AS ({rows}), \
             weeks AS (INSERT INTO list_counts AS c (tenant_id, list, bucket, span, shard, n) \
               SELECT tenant_id, '{name}', bucket, span, pg_backend_pid(), SUM(d) \
               FROM x GROUP BY tenant_id, bucket, span HAVING SUM(d) <> 0 \
               ORDER BY tenant_id, bucket, span \
               ON CONFLICT (tenant_id, list, bucket, span, shard) \
               DO UPDATE SET n = c.n + EXCLUDED.n) \
             INSERT INTO list_totals AS t (tenant_id, list, bucket, shard, n) \
             SELECT tenant_id, '{name}', bucket, pg_backend_pid(), SUM(d) \
             FROM x GROUP BY tenant_id, bucket HAVING SUM(d) <> 0 \
             ORDER BY tenant_id, bucket \
             ON CONFLICT (tenant_id, list, bucket, shard) \
             DO UPDATE SET n = t.n + EXCLUDED.n;"
        )
    };
    let new_rows =
        format!("SELECT tenant_id, {bucket} AS bucket, {span} AS span, 1 AS d FROM new_rows");
    let old_rows =
        format!("SELECT tenant_id, {bucket} AS bucket, {span} AS span, -1 AS d FROM old_rows");
    let function = format!("list_counts_{name}");
    format!(
        "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $f$ \
         BEGIN \
           IF TG_OP = 'INSERT' THEN \
             IF NOT EXISTS (SELECT FROM new_rows) THEN RETURN NULL; END IF; {insert} \
           ELSIF TG_OP = 'DELETE' THEN \
             IF NOT EXISTS (SELECT FROM old_rows) THEN RETURN NULL; END IF; {delete} \
           ELSE \
             IF NOT EXISTS (SELECT FROM new_rows) THEN RETURN NULL; END IF; {update} \
           END IF; \
           RETURN NULL; \
         END $f$; \
         DROP TRIGGER IF EXISTS {function}_insert ON {table}; \
         DROP TRIGGER IF EXISTS {function}_update ON {table}; \
         DROP TRIGGER IF EXISTS {function}_delete ON {table}; \
         CREATE TRIGGER {function}_insert AFTER INSERT ON {table} \
           REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}(); \
         CREATE TRIGGER {function}_update AFTER UPDATE ON {table} \
           REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows \
           FOR EACH STATEMENT EXECUTE FUNCTION {function}(); \
         CREATE TRIGGER {function}_delete AFTER DELETE ON {table} \
           REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}();",
        insert = add(&new_rows),
        delete = add(&old_rows),
        update = add(&format!("{new_rows} UNION ALL {old_rows}")),
    )
}

/// SQLite: row triggers (one writer at a time, so one shard).
fn sqlite_triggers(list: List) -> String {
    let name = list.name();
    let table = list.table();
    let (new, old) = (list.bucket_of("NEW."), list.bucket_of("OLD."));
    let (new_span, old_span) = (list.span_of("NEW.", false), list.span_of("OLD.", false));
    let add = |bucket: &str, span: &str, tenant: &str, d: i64| {
        format!(
            "INSERT INTO list_counts (tenant_id, list, bucket, span, shard, n) \
             VALUES ({tenant}.tenant_id, '{name}', {bucket}, {span}, 0, {d}) \
             ON CONFLICT (tenant_id, list, bucket, span, shard) DO UPDATE SET n = n + {d}; \
             INSERT INTO list_totals (tenant_id, list, bucket, shard, n) \
             VALUES ({tenant}.tenant_id, '{name}', {bucket}, 0, {d}) \
             ON CONFLICT (tenant_id, list, bucket, shard) DO UPDATE SET n = n + {d};"
        )
    };
    let trigger = format!("list_counts_{name}");
    format!(
        "DROP TRIGGER IF EXISTS {trigger}_insert; \
         DROP TRIGGER IF EXISTS {trigger}_update; \
         DROP TRIGGER IF EXISTS {trigger}_delete; \
         CREATE TRIGGER {trigger}_insert AFTER INSERT ON {table} BEGIN {inc_new} END; \
         CREATE TRIGGER {trigger}_update AFTER UPDATE ON {table} \
           WHEN ({new}) IS NOT ({old}) OR ({new_span}) IS NOT ({old_span}) \
             OR NEW.tenant_id IS NOT OLD.tenant_id \
           BEGIN {dec_old} {inc_new} END; \
         CREATE TRIGGER {trigger}_delete AFTER DELETE ON {table} BEGIN {dec_old} END;",
        inc_new = add(&new, &new_span, "NEW", 1),
        dec_old = add(&old, &old_span, "OLD", -1),
    )
}

/// Folds the shards of PostgreSQL connections that are gone into shard 0, so a total sums
/// a handful of rows however often connections come and go. One folder at a time.
pub fn fold_gone_shards(conn: &mut AnyConnection) -> QueryResult<()> {
    if !matches!(conn, AnyConnection::Postgresql(_)) {
        return Ok(());
    }
    conn.transaction(|conn| {
        conn.batch_execute(
            "SELECT pg_advisory_xact_lock(hashtext('list_counts fold')); \
             WITH gone AS ( \
               DELETE FROM list_counts WHERE shard <> 0 \
                 AND shard NOT IN (SELECT pid FROM pg_stat_activity) \
               RETURNING tenant_id, list, bucket, span, n) \
             INSERT INTO list_counts AS c (tenant_id, list, bucket, span, shard, n) \
             SELECT tenant_id, list, bucket, span, 0, SUM(n) FROM gone \
             GROUP BY tenant_id, list, bucket, span ORDER BY tenant_id, list, bucket, span \
             ON CONFLICT (tenant_id, list, bucket, span, shard) \
             DO UPDATE SET n = c.n + EXCLUDED.n; \
             WITH gone AS ( \
               DELETE FROM list_totals WHERE shard <> 0 \
                 AND shard NOT IN (SELECT pid FROM pg_stat_activity) \
               RETURNING tenant_id, list, bucket, n) \
             INSERT INTO list_totals AS t (tenant_id, list, bucket, shard, n) \
             SELECT tenant_id, list, bucket, 0, SUM(n) FROM gone \
             GROUP BY tenant_id, list, bucket ORDER BY tenant_id, list, bucket \
             ON CONFLICT (tenant_id, list, bucket, shard) \
             DO UPDATE SET n = t.n + EXCLUDED.n",
        )
    })
}
