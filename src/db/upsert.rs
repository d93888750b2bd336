//! The write side of every mirror table, declared once per table by [`mirror_table!`]: the
//! columns an object's Stripe state decides, one line each, from which the changeset, the
//! PostgreSQL batch statement's column list and the SQLite path are all generated; and the
//! helpers that record a fresh state and replace a parent's child rows.

/// Declares a mirror table's write: `pub fn $name(conn, items: &[(tenant id, &Snapshot,
/// created)], equal_wins) -> Vec<Applied>`, the watermark rule ([`super::watermark`]) for
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
            equal_wins: bool,
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
                    let sql = SQL.get_or_init(|| {
                        $crate::db::prepared::MirrorSql::new(
                            stringify!($table),
                            stringify!($key),
                            &[$(stringify!($icol)),+],
                            &[$(stringify!($col),)+ "metadata", "updated_at", "watermark"],
                        )
                    });
                    let mut rows = Vec::with_capacity(items.len());
                    for ((tenant, s, at), metadata) in items.iter().zip(&metadata) {
                        let ($tenant, $s, $now) = (*tenant, *s, now);
                        let mut row = $crate::db::prepared::json_object(
                            &$changeset::of($s, metadata, *at, $now),
                        )?;
                        $(
                            row.insert(
                                stringify!($icol).to_owned(),
                                $crate::db::prepared::json_value(&$iexpr)?,
                            );
                        )+
                        rows.push(serde_json::Value::Object(row));
                    }
                    let keys: Vec<(&str, &str, i64)> = items
                        .iter()
                        .map(|(tenant, s, at)| (*tenant, s.id.as_str(), *at))
                        .collect();
                    sql.upsert(pg, &keys, &rows, equal_wins)
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
                            $crate::db::watermark::decide(stored.flatten(), *at, equal_wins);
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
                $apply(conn, &[(tenant_id, snapshot, now)], true)?;
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

/// Replaces the child rows (invoice lines, subscription items) of parents just written: the
/// old rows of `$parents` (Stripe ids of the tenant, in `$parent` column) are deleted and
/// `$rows` inserted. On PostgreSQL two statements: the delete, by the unique index's prefix and
/// planned per call (it reads the table), and the insert of the rows as JSON
/// ([`prepared::insert_rows`]); on SQLite, whose writer holds the lock, one insert per row.
macro_rules! replace_children {
    ($conn:expr, $table:ident, $parent:ident, $tenant:expr, $parents:expr, $rows:expr) => {{
        let (tenant_id, parents): (&str, &[&str]) = ($tenant, $parents);
        let rows = $rows;
        match $conn {
            $crate::db::AnyConnection::Postgresql(pg) => {
                $crate::db::prepared::prepared([
                    concat!("DELETE FROM ", stringify!($table), " WHERE tenant_id = "),
                    concat!(" AND ", stringify!($parent), " = ANY("),
                    "::text[])",
                ])
                .bind::<diesel::sql_types::Text, _>(tenant_id)
                .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(parents)
                .planned_per_call()
                .execute(pg)?;
                $crate::db::prepared::insert_rows(pg, stringify!($table), &rows)
            }
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

/// Metadata as stored: JSON text with keys in order, so equal maps store equal text.
pub fn stored_metadata(metadata: &std::collections::HashMap<String, String>) -> String {
    let sorted: std::collections::BTreeMap<_, _> = metadata.iter().collect();
    serde_json::to_string(&sorted).unwrap_or_else(|_| "{}".to_owned())
}
