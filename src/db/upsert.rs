//! The write side of every mirror table, declared once per table by [`mirror_table!`]: the
//! columns an object's Stripe state decides, one line each, from which the changeset, the
//! PostgreSQL batch statement's column list and the SQLite path are all generated; and the
//! helpers that record a fresh state and replace a parent's child rows.

/// Declares a mirror table's write: `pub fn $name(conn, items: &[(tenant id, &Snapshot,
/// created)], rule) -> Vec<Applied>`, the watermark rule ([`super::watermark`]) for
/// several objects on either backend: one prepared batch statement on PostgreSQL
/// ([`super::prepared::MirrorSql`]), row by row on SQLite, whose writer holds the database
/// lock for the whole transaction (`write_transaction` begins IMMEDIATE), so reading the
/// watermark and then writing cannot race another writer.
///
/// `insert(tenant, now) { column: expr, ... }` are the columns set when the row is created;
/// `state $Changeset<'a> { column: type = expr, ... }` the columns the object's state decides,
/// each read from the snapshot `$s` (`now` is the write's time). Every mirror table also
/// has `metadata` (the snapshot's, stored sorted), `updated_at` and `watermark`, which the
/// macro adds.
macro_rules! mirror_table {
    (
        pub fn $name:ident($table:ident by $key:ident, $s:ident: $snap:ty);
        insert($tenant:ident, $now:ident) { $($icol:ident: $iexpr:expr),+ $(,)? }
        state $changeset:ident<$lt:lifetime> { $($col:ident: $ty:ty = $expr:expr),+ $(,)? }
    ) => {
        #[derive(Debug, diesel::AsChangeset, diesel::Insertable, serde::Serialize)]
        #[diesel(table_name = $table, treat_none_as_null = true)]
        struct $changeset<$lt> {
            $($col: $ty,)+
            metadata: &$lt str,
            updated_at: chrono::NaiveDateTime,
            watermark: Option<i64>,
        }

        impl<$lt> $changeset<$lt> {
            fn of(
                $s: &$lt $snap,
                metadata: &$lt str,
                at: i64,
                $now: chrono::NaiveDateTime,
            ) -> Self {
                Self {
                    $($col: $expr,)+
                    metadata,
                    updated_at: $now,
                    watermark: Some(at),
                }
            }
        }

        pub fn $name(
            conn: &mut $crate::db::AnyConnection,
            items: &[(&str, &$snap, i64)],
            rule: $crate::db::Rule,
        ) -> diesel::QueryResult<Vec<$crate::db::Applied>> {
            let now = chrono::Utc::now().naive_utc();
            let metadata: Vec<String> = items
                .iter()
                .map(|(_, s, _)| $crate::db::stored_metadata(&s.metadata))
                .collect();
            match conn {
                $crate::db::AnyConnection::Postgresql(pg) => {
                    static SQL: std::sync::OnceLock<$crate::db::prepared::MirrorSql> =
                        std::sync::OnceLock::new();
                    let sql = match SQL.get() {
                        Some(sql) => sql,
                        None => {
                            let built = $crate::db::prepared::MirrorSql::new(
                                pg,
                                stringify!($table),
                                stringify!($key),
                                &[$(stringify!($icol)),+],
                                &[$(stringify!($col),)+ "metadata", "updated_at", "watermark"],
                            )?;
                            SQL.get_or_init(|| built)
                        }
                    };
                    let mut rows = sql.rows();
                    for ((tenant, s, at), metadata) in items.iter().zip(&metadata) {
                        let ($tenant, $s, $now) = (*tenant, *s, now);
                        rows.row(&$changeset::of($s, metadata, *at, $now))?;
                        $(rows.column(stringify!($icol), &$iexpr)?;)+
                        rows.end_row();
                    }
                    let keys: Vec<(&str, &str, i64)> = items
                        .iter()
                        .map(|(tenant, s, at)| (*tenant, s.id.as_str(), *at))
                        .collect();
                    sql.upsert(pg, &keys, rows, rule)
                }
                // In the caller's write transaction, or one of its own: under the write lock.
                sqlite => $crate::db::write_statement(sqlite, |sqlite| items
                    .iter()
                    .zip(&metadata)
                    .map(|((tenant, s, at), metadata)| {
                        let ($tenant, $s, $now) = (*tenant, *s, now);
                        let changes = $changeset::of($s, metadata, *at, $now);
                        let find = $table::tenant_id.eq($tenant).and($table::$key.eq(&$s.id));
                        let stored: Option<Option<i64>> = $table::table
                            .filter(find)
                            .select($table::watermark)
                            .first(sqlite)
                            .optional()?;
                        let applied =
                            $crate::db::watermark::decide(stored.flatten(), *at, rule.equal_wins());
                        match (stored, applied) {
                            (None, _) => {
                                diesel::insert_into($table::table)
                                    .values((($($table::$icol.eq($iexpr),)+), &changes))
                                    .execute(sqlite)?;
                            }
                            (Some(_), $crate::db::Applied::Written) => {
                                diesel::update($table::table.filter(find))
                                    .set(&changes)
                                    .execute(sqlite)?;
                            }
                            _ => {}
                        }
                        Ok(applied)
                    })
                    .collect()),
            }
        }
    };
}

/// Defines `pub fn $name(conn, tenant_id, [owner,] snapshot, now) -> Row`: writes a state
/// Stripe gave us just now (our own call's answer, or a re-read; it wins over a stored state
/// of the same second) through the table's `mirror_table!` function, records `owner` as
/// the owner of a row nobody owns yet (one first seen through a webhook), and returns the row.
macro_rules! mirror_record_fn {
    ($name:ident, $apply:path, $table:ident, $key:ident, $snap:ty, $row:ty $(, owner: $owner:ident)?) => {
        pub fn $name(
            conn: &mut $crate::db::AnyConnection,
            tenant_id: &str,
            $($owner: &str,)?
            snapshot: &$snap,
            now: i64,
        ) -> diesel::QueryResult<$row> {
            $crate::db::write_transaction(conn, |conn| {
                $apply(conn, &[(tenant_id, snapshot, now)], $crate::db::Rule::NewerOrEqual)?;
                let mine = $table::table
                    .filter($table::tenant_id.eq(tenant_id))
                    .filter($table::$key.eq(&snapshot.id));
                $(
                    diesel::update(mine.filter($table::owner_subject.eq("")))
                        .set($table::owner_subject.eq($owner))
                        .execute(conn)?;
                )?
                mine.select(<$row>::as_select()).first(conn)
            })
        }
    };
}

/// Replaces the child rows (invoice lines, subscription items) of parents just written: after
/// it, the children of `$parents` (Stripe ids of the tenant, in `$parent` column) are `$rows`,
/// by position. On PostgreSQL [`upsert_children`]: a child that did not change is not written
/// at all (most events of a subscription leave its items as they were); on SQLite, whose writer
/// holds the lock, the old rows are deleted and the new ones inserted, one per row.
macro_rules! replace_children {
    ($conn:expr, $table:ident, $parent:ident, $tenant:expr, $parents:expr, $rows:expr, $rule:expr) => {{
        let (tenant_id, parents): (&str, &[&str]) = ($tenant, $parents);
        let rows = $rows;
        static INSERT_FIRST: $crate::db::prepared::InsertFirst =
            $crate::db::prepared::InsertFirst::new();
        let rule: $crate::db::Rule = $rule;
        match $conn {
            $crate::db::AnyConnection::Postgresql(pg) => $crate::db::upsert::upsert_children(
                pg,
                stringify!($table),
                stringify!($parent),
                tenant_id,
                parents,
                &rows,
                |row| AsRef::<str>::as_ref(&row.$parent),
                rule.insert_first().then_some(&INSERT_FIRST),
            ),
            sqlite => $crate::db::write_statement(sqlite, |sqlite| {
                diesel::delete(
                    $table::table
                        .filter($table::tenant_id.eq(tenant_id))
                        .filter($table::$parent.eq_any(parents)),
                )
                .execute(sqlite)?;
                for row in &rows {
                    diesel::insert_into($table::table)
                        .values(row)
                        .execute(sqlite)?;
                }
                Ok(())
            }),
        }
    }};
}

pub(crate) use {mirror_record_fn, mirror_table, replace_children};

/// The child rows of `parents` (Stripe ids of one tenant, in column `parent`) become `rows`
/// (structs named as the table's columns, with `parent` and `position`), on PostgreSQL, in
/// two statements of fixed text: an upsert by the unique (tenant_id, parent, position) that
/// updates a stored child only if one of its columns differs, then a delete of the positions
/// past each parent's new count (planned per call: it reads the table). Deleting every child
/// and inserting it again, as before, wrote two heap rows, their index entries and WAL per
/// child for each event of the parent, though most events leave the children as they were.
/// A stored child keeps its row id.
#[allow(clippy::too_many_arguments)]
pub fn upsert_children<T: serde::Serialize>(
    pg: &mut diesel::PgConnection,
    table: &str,
    parent: &str,
    tenant_id: &str,
    parents: &[&str],
    rows: &[T],
    parent_of: impl Fn(&T) -> &str,
    insert_first: Option<&super::prepared::InsertFirst>,
) -> diesel::QueryResult<()> {
    use diesel::RunQueryDsl;
    use diesel::sql_types::{Array, BigInt, Nullable, Text};

    use super::prepared::{ColumnRows, insert_columns, json_object, prepared, try_insert};

    let mut counts: std::collections::BTreeMap<&str, i64> =
        parents.iter().map(|p| (*p, 0)).collect();
    for row in rows {
        if let Some(count) = counts.get_mut(parent_of(row)) {
            *count += 1;
        }
    }
    if let Some(first) = rows.first() {
        // The columns, named by the first row.
        let first = json_object(first)?;
        let columns: Vec<&str> = first.keys().map(String::as_str).collect();
        let changing: Vec<&str> = columns
            .iter()
            .copied()
            .filter(|c| !["id", "tenant_id", parent, "position"].contains(c))
            .collect();
        let list = |prefix: &str| {
            changing
                .iter()
                .map(|c| format!("{prefix}{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let on_conflict = if changing.is_empty() {
            "DO NOTHING".to_owned()
        } else {
            format!(
                "DO UPDATE SET ({}) = ROW({}) WHERE ({}) IS DISTINCT FROM ({})",
                list(""),
                list("EXCLUDED."),
                list(&format!("{table}.")),
                list("EXCLUDED.")
            )
        };
        let mut parts = insert_columns(pg, table, &columns)?;
        let insert = parts.clone();
        if let Some(last) = parts.last_mut() {
            last.push_str(&format!(
                "ON CONFLICT (tenant_id, {parent}, position) {on_conflict}"
            ));
        }
        let mut batch = ColumnRows::new(columns.iter().copied());
        for row in rows {
            batch.row(row)?;
            batch.end_row();
        }
        let columns = batch.finish();
        let inserted = match insert_first {
            Some(gate) => try_insert(pg, &insert, &columns, (gate, tenant_id))?,
            None => false,
        };
        if !inserted {
            let mut statement = prepared(&parts);
            for column in columns {
                statement = statement.bind::<Array<Nullable<Text>>, _>(column);
            }
            statement.execute(pg)?;
        }
    }
    let (ids, counts): (Vec<&str>, Vec<i64>) = counts.into_iter().unzip();
    // One index probe per parent, whatever the statistics say: the lateral sub-select (kept
    // a sub-select by `OFFSET 0`) reads each parent's positions past its new count, and the
    // delete takes those rows by their ctid. Written as a join, the planner chose by the
    // table's statistics, and with none yet or ones older than a load (a new database, a
    // backfill) it read every child of the tenant into a hash join per call (9.5 ms a page
    // of 100 invoices, growing with the tenant). The ctids cannot move meanwhile: the
    // parents' rows are locked by this transaction, and only their writer changes their
    // children.
    let parts = [
        format!("DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT c.ctid FROM unnest("),
        "::text[], ".to_owned(),
        format!(
            "::bigint[]) AS k(parent, n) CROSS JOIN LATERAL (SELECT t.ctid FROM {table} t \
             WHERE t.tenant_id = "
        ),
        format!(" AND t.{parent} = k.parent AND t.position >= k.n OFFSET 0) c))"),
    ];
    prepared(&parts)
        .bind::<Array<Text>, _>(ids)
        .bind::<Array<BigInt>, _>(counts)
        .bind::<Text, _>(tenant_id)
        .planned_per_call()
        .execute(pg)
        .map(|_| ())
}

/// Metadata as stored: JSON text with keys in order, so equal maps store equal text.
pub fn stored_metadata(metadata: &std::collections::HashMap<String, String>) -> String {
    let sorted: std::collections::BTreeMap<_, _> = metadata.iter().collect();
    serde_json::to_string(&sorted).unwrap_or_else(|_| "{}".to_owned())
}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Nullable, Text};

    use crate::db::AnyConnection;
    use crate::db::schema::subscription_items;

    #[derive(Debug, diesel::Insertable, serde::Serialize)]
    #[diesel(table_name = subscription_items)]
    struct Item<'a> {
        id: String,
        tenant_id: &'static str,
        stripe_subscription_id: &'a str,
        position: i64,
        stripe_item_id: &'static str,
        price_id: Option<&'static str>,
        quantity: Option<i64>,
    }

    fn item(sub: &str, position: i64, quantity: i64) -> Item<'_> {
        Item {
            id: crate::db::new_row_id(),
            tenant_id: "t1",
            stripe_subscription_id: sub,
            position,
            stripe_item_id: "si_1",
            price_id: Some("price_1"),
            quantity: Some(quantity),
        }
    }

    #[derive(Debug, PartialEq, diesel::QueryableByName)]
    struct Stored {
        #[diesel(sql_type = Text)]
        stripe_subscription_id: String,
        #[diesel(sql_type = BigInt)]
        position: i64,
        #[diesel(sql_type = Nullable<BigInt>)]
        quantity: Option<i64>,
        /// The row version: changes whenever the row is written.
        #[diesel(sql_type = Text)]
        version: String,
    }

    fn write(conn: &mut AnyConnection, parents: &[&str], rows: Vec<Item<'_>>) -> QueryResult<()> {
        replace_children!(
            conn,
            subscription_items,
            stripe_subscription_id,
            "t1",
            parents,
            rows,
            crate::db::Rule::Newer
        )
    }

    fn write_listed(
        conn: &mut AnyConnection,
        tenant: &str,
        parents: &[&str],
        rows: Vec<Item<'_>>,
    ) -> QueryResult<()> {
        replace_children!(
            conn,
            subscription_items,
            stripe_subscription_id,
            tenant,
            parents,
            rows,
            crate::db::Rule::Listed
        )
    }

    #[derive(Debug, PartialEq, diesel::QueryableByName)]
    struct Written {
        #[diesel(sql_type = Text)]
        stripe_subscription_id: String,
        #[diesel(sql_type = Nullable<BigInt>)]
        quantity: Option<i64>,
        /// Written in a savepoint of the current transaction (by the plain insert), not by
        /// the transaction's own statements.
        #[diesel(sql_type = diesel::sql_types::Bool)]
        in_savepoint: bool,
    }

    fn written(conn: &mut AnyConnection) -> Vec<Written> {
        diesel::sql_query(
            "SELECT stripe_subscription_id, quantity, \
             xmin <> pg_current_xact_id()::xid AS in_savepoint \
             FROM subscription_items ORDER BY 1, position",
        )
        .load(conn)
        .unwrap()
    }

    /// A listed batch of new children is written by a plain insert in a savepoint; one that
    /// meets a stored child is rolled back to it and upserted (the stored child as the
    /// upsert leaves it, the rest written), and the table's next batches go straight to
    /// the upsert.
    #[test]
    fn postgres_a_listed_batch_is_inserted_plainly_and_upserted_where_a_row_is_stored() {
        let conn = &mut temporary_items();
        let names: Vec<String> = (0..30).map(|n| format!("sub_{n:02}")).collect();
        let parents: Vec<&str> = names.iter().map(String::as_str).collect();
        conn.transaction(|conn| {
            write_listed(
                conn,
                "t1",
                &parents[..25],
                parents[..25].iter().map(|p| item(p, 0, 1)).collect(),
            )?;
            let first = written(conn);
            assert_eq!(first.len(), 25);
            assert!(first.iter().all(|w| w.in_savepoint), "{first:?}");

            // 25 again (one quantity changed) and 5 new: the plain insert meets the stored
            // rows and rolls back; the upsert writes the change and the new ones.
            let mut rows: Vec<Item<'_>> = parents.iter().map(|p| item(p, 0, 1)).collect();
            rows[3].quantity = Some(9);
            write_listed(conn, "t1", &parents, rows)?;
            let second = written(conn);
            assert_eq!(second.len(), 30);
            assert_eq!(second[3].quantity, Some(9));
            assert!(
                second[..25]
                    .iter()
                    .enumerate()
                    .all(|(i, w)| i == 3 || w.in_savepoint)
            );
            assert!(
                !second[3].in_savepoint && second[25..].iter().all(|w| !w.in_savepoint),
                "{second:?}"
            );

            // The next batch of new rows is upserted at once (no savepoint).
            let more: Vec<String> = (30..60).map(|n| format!("sub_{n:02}")).collect();
            let more: Vec<&str> = more.iter().map(String::as_str).collect();
            write_listed(
                conn,
                "t1",
                &more,
                more.iter().map(|p| item(p, 0, 1)).collect(),
            )?;
            let third = written(conn);
            assert_eq!(third.len(), 60);
            assert!(third[30..].iter().all(|w| !w.in_savepoint));

            // Another tenant's batch is still tried as a plain insert.
            let rows = parents
                .iter()
                .map(|p| Item {
                    tenant_id: "t2",
                    ..item(p, 0, 1)
                })
                .collect();
            write_listed(conn, "t2", &parents, rows)?;
            let fourth = written(conn);
            assert_eq!(fourth.len(), 90);
            assert_eq!(
                fourth.iter().filter(|w| w.in_savepoint).count(),
                24 + 30,
                "t1's 24 unchanged rows of its first batch and t2's 30"
            );
            diesel::QueryResult::Ok(())
        })
        .unwrap();
    }

    fn stored(conn: &mut AnyConnection) -> Vec<Stored> {
        let AnyConnection::Postgresql(pg) = conn else {
            panic!("a PostgreSQL test");
        };
        diesel::sql_query(
            "SELECT stripe_subscription_id, position, quantity, xmin::text || ctid::text AS version \
             FROM subscription_items ORDER BY 1, 2",
        )
        .load(pg)
        .unwrap()
    }

    /// On PostgreSQL (the suite's `TEST_POSTGRES_URL`, a temporary table shadowing the real
    /// one), a child that did not change is not written again; changed ones are updated and
    /// positions past the new count deleted.
    /// A connection to the suite's PostgreSQL (`TEST_POSTGRES_URL`) on which
    /// `subscription_items` is a temporary table of the same shape, shadowing the real one.
    fn temporary_items() -> AnyConnection {
        let url = std::env::var("TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let mut pg = diesel::PgConnection::establish(&url).expect("the test PostgreSQL answers");
        diesel::sql_query(
            "CREATE TEMP TABLE subscription_items (id TEXT PRIMARY KEY NOT NULL, \
             tenant_id TEXT NOT NULL, stripe_subscription_id TEXT NOT NULL, \
             position BIGINT NOT NULL, stripe_item_id TEXT NOT NULL, price_id TEXT, \
             quantity BIGINT, UNIQUE (tenant_id, stripe_subscription_id, position))",
        )
        .execute(&mut pg)
        .unwrap();
        AnyConnection::Postgresql(pg)
    }

    #[test]
    fn postgres_children_are_written_only_where_they_changed() {
        let conn = &mut temporary_items();

        write(
            conn,
            &["sub_a", "sub_b"],
            vec![
                item("sub_a", 0, 1),
                item("sub_a", 1, 2),
                item("sub_b", 0, 1),
            ],
        )
        .unwrap();
        let first = stored(conn);
        assert_eq!(first.len(), 3);

        // sub_a's first item unchanged, its second gone; sub_b's quantity changed.
        write(
            conn,
            &["sub_a", "sub_b"],
            vec![item("sub_a", 0, 1), item("sub_b", 0, 5)],
        )
        .unwrap();
        let second = stored(conn);
        assert_eq!(second.len(), 2);
        assert_eq!(second[0], first[0], "an unchanged child was written again");
        assert_eq!(
            (
                second[1].stripe_subscription_id.as_str(),
                second[1].quantity
            ),
            ("sub_b", Some(5))
        );
        assert_ne!(second[1].version, first[2].version);

        // A parent left without children loses them; the other parent's stay as they were.
        write(conn, &["sub_b"], vec![]).unwrap();
        assert_eq!(stored(conn), vec![second.into_iter().next().unwrap()]);
    }

    #[derive(diesel::QueryableByName)]
    struct Read {
        #[diesel(sql_type = BigInt)]
        rows: i64,
    }

    /// Rows of `subscription_items` read so far in this transaction, by any scan.
    fn rows_read(conn: &mut AnyConnection) -> i64 {
        diesel::sql_query(
            "SELECT (COALESCE(seq_tup_read, 0) + COALESCE(idx_tup_fetch, 0))::bigint AS rows \
             FROM pg_stat_xact_all_tables WHERE relid = 'subscription_items'::regclass",
        )
        .get_result::<Read>(conn)
        .unwrap()
        .rows
    }

    /// Replacing a page's children reads those parents' children, not the tenant's: with no
    /// statistics yet (a new database, a backfill under way before autovacuum comes by), the
    /// delete of positions past each parent's count read every child of the tenant.
    #[test]
    fn postgres_replacing_children_reads_only_their_parents_rows() {
        let conn = &mut temporary_items();
        let AnyConnection::Postgresql(pg) = conn else {
            unreachable!()
        };
        // 20,000 children of the tenant and no statistics yet (autovacuum has not come by).
        diesel::sql_query(
            "INSERT INTO subscription_items \
             SELECT 'i' || n, 't1', 'sub_' || (n / 2), n % 2, 'si_' || n, 'price_1', 1 \
             FROM generate_series(0, 19999) n",
        )
        .execute(pg)
        .unwrap();

        conn.transaction(|conn| {
            let before = rows_read(conn);
            // A page of 100 subscriptions: the first loses its second item, the others keep two.
            let names: Vec<String> = (0..100).map(|n| format!("sub_{}", n * 97)).collect();
            let parents: Vec<&str> = names.iter().map(String::as_str).collect();
            let mut rows = Vec::new();
            for (n, parent) in parents.iter().enumerate() {
                rows.push(item(parent, 0, 1));
                if n > 0 {
                    rows.push(item(parent, 1, 1));
                }
            }
            write(conn, &parents, rows)?;
            let read = rows_read(conn) - before;
            assert!(
                read <= 400,
                "replacing 100 parents' children read {read} rows of a tenant's 20,000"
            );
            let left: i64 = subscription_items::table
                .filter(subscription_items::stripe_subscription_id.eq(parents[0]))
                .count()
                .get_result(conn)?;
            assert_eq!(left, 1, "the position past the new count is deleted");
            diesel::QueryResult::Ok(())
        })
        .unwrap();
    }
}
