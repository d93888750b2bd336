//! PostgreSQL statements of fixed text that stay prepared on their connection.
//!
//! Diesel caches a prepared statement only when its SQL cannot vary: a multi-row `INSERT`
//! built from a `Vec`, an `UPDATE` and anything from `sql_query` are parsed and planned again
//! on every call. The receiver's batch statements run thousands of times a second, so they are
//! written once over arrays (`unnest($1::text[], ...)`): the text is the same whatever the
//! batch size, Diesel keeps the statement prepared (keyed by its text), and PostgreSQL skips
//! parsing and, once it settles on a generic plan, planning.
//!
//! A statement that reads a table (a lookup by key, a delete) is marked
//! [`Prepared::planned_per_call`] instead: a generic plan made while the table was nearly
//! empty would be kept as it grows, and could scan it (measured: a lookup of 10 events read
//! 19,583 rows).

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use std::collections::HashSet;

use diesel::sql_types::{Array, Bool, HasSqlType, Text, Untyped};
use diesel::{PgConnection, QueryResult, RunQueryDsl};

type Bind<'a> = Box<dyn QueryFragment<Pg> + Send + 'a>;

/// SQL text with one bind parameter between each two of its parts.
pub struct Prepared<'a> {
    parts: Vec<&'a str>,
    binds: Vec<Bind<'a>>,
    /// Kept prepared on the connection (see [`Prepared::planned_per_call`]).
    cached: bool,
}

/// Starts a statement from its parts: `parts.len() - 1` binds are expected, added in order
/// with [`Prepared::bind`]. The parts must not vary with the data, or nothing is gained.
pub fn prepared<'a, S: AsRef<str> + ?Sized + 'a>(
    parts: impl IntoIterator<Item = &'a S>,
) -> Prepared<'a> {
    let parts: Vec<&'a str> = parts.into_iter().map(AsRef::as_ref).collect();
    Prepared {
        binds: Vec::with_capacity(parts.len().saturating_sub(1)),
        parts,
        cached: true,
    }
}

impl<'a> Prepared<'a> {
    /// Adds the next bind parameter, of SQL type `ST`.
    pub fn bind<'b, ST, T>(self, value: T) -> Prepared<'b>
    where
        'a: 'b,
        Pg: HasSqlType<ST>,
        T: diesel::expression::AsExpression<ST>,
        T::Expression: QueryFragment<Pg> + Send + 'b,
        ST: diesel::sql_types::SqlType + diesel::expression::TypedExpressionType,
    {
        let mut binds: Vec<Bind<'b>> = self.binds;
        binds.push(Box::new(value.as_expression()));
        let parts: Vec<&'b str> = self.parts;
        Prepared {
            parts,
            binds,
            cached: self.cached,
        }
    }

    /// Sends the statement unnamed (parsed and bound in one round trip) so that PostgreSQL
    /// plans it for these values and the table as it is now. For a statement that reads a
    /// table: a plan kept on the connection could be one made while the table was nearly
    /// empty, which scans it once it has grown.
    pub fn planned_per_call(mut self) -> Self {
        self.cached = false;
        self
    }
}

impl QueryFragment<Pg> for Prepared<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        if self.parts.len() != self.binds.len() + 1 {
            return Err(diesel::result::Error::QueryBuilderError(
                format!(
                    "a prepared statement of {} parts needs {} binds, got {}",
                    self.parts.len(),
                    self.parts.len().saturating_sub(1),
                    self.binds.len()
                )
                .into(),
            ));
        }
        for (part, bind) in self.parts.iter().zip(&self.binds) {
            out.push_sql(part);
            bind.walk_ast(out.reborrow())?;
        }
        if let Some(last) = self.parts.last() {
            out.push_sql(last);
        }
        Ok(())
    }

    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(self.cached)
    }
}

/// No static id: Diesel's cache keys the statement by its SQL text and bind types.
impl QueryId for Prepared<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

/// Rows are read by column name (`QueryableByName`), as from `sql_query`.
impl Query for Prepared<'_> {
    type SqlType = Untyped;
}

impl RunQueryDsl<PgConnection> for Prepared<'_> {}

/// A row that could not be turned into JSON, as Diesel's error.
fn not_serialized(
    err: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> diesel::result::Error {
    diesel::result::Error::SerializationError(err.into())
}

/// A value as JSON, for a row sent to `json_populate_recordset`.
fn json_value<T: serde::Serialize + ?Sized>(value: &T) -> QueryResult<serde_json::Value> {
    serde_json::to_value(value).map_err(not_serialized)
}

/// A row (a struct whose fields are named as its table's columns) as a JSON object.
pub fn json_object<T: serde::Serialize + ?Sized>(
    row: &T,
) -> QueryResult<serde_json::Map<String, serde_json::Value>> {
    match json_value(row)? {
        serde_json::Value::Object(fields) => Ok(fields),
        other => Err(not_serialized(format!(
            "a row must serialize to a JSON object, not {other}"
        ))),
    }
}

/// Rows written straight out as one JSON array of objects, for `json_populate_recordset`: no
/// `serde_json::Value` per row (building and freeing those took about a tenth of the service's
/// CPU in a backfill, and most of its memory for a write in flight).
pub struct JsonRows {
    buf: Vec<u8>,
    rows: usize,
}

impl JsonRows {
    pub fn new() -> Self {
        Self {
            buf: vec![b'['],
            rows: 0,
        }
    }

    /// Starts a row with the columns of `columns`, a struct whose fields are named as its
    /// table's columns; more may follow ([`Self::column`]) until [`Self::end_row`].
    pub fn row<T: serde::Serialize + ?Sized>(&mut self, columns: &T) -> QueryResult<()> {
        if self.rows > 0 {
            self.buf.push(b',');
        }
        serde_json::to_writer(&mut self.buf, columns).map_err(not_serialized)?;
        // Reopened for the columns that follow.
        if self.buf.pop() != Some(b'}') {
            return Err(not_serialized("a row must serialize to a JSON object"));
        }
        self.rows += 1;
        Ok(())
    }

    /// Adds a column to the row started last.
    pub fn column<T: serde::Serialize + ?Sized>(
        &mut self,
        name: &str,
        value: &T,
    ) -> QueryResult<()> {
        if self.buf.last() != Some(&b'{') {
            self.buf.push(b',');
        }
        serde_json::to_writer(&mut self.buf, name).map_err(not_serialized)?;
        self.buf.push(b':');
        serde_json::to_writer(&mut self.buf, value).map_err(not_serialized)
    }

    pub fn end_row(&mut self) {
        self.buf.push(b'}');
    }

    /// The rows as JSON text.
    pub fn finish(mut self) -> QueryResult<String> {
        self.buf.push(b']');
        String::from_utf8(self.buf).map_err(not_serialized)
    }
}

impl Default for JsonRows {
    fn default() -> Self {
        Self::new()
    }
}

/// The batch statements of one mirror table on PostgreSQL, each of fixed text (prepared once
/// per connection), built once per table from its column names.
pub struct MirrorSql {
    /// `INSERT INTO t (cols) SELECT cols FROM json_populate_recordset(NULL::t, $1::json) ON
    /// CONFLICT (tenant_id, key) DO UPDATE SET col = EXCLUDED.col ... WHERE the stored
    /// watermark is older (or equal, when `$2`) RETURNING tenant_id, key`: the rows come as
    /// one JSON array, in key order, so locks are taken in that order. The conflict clause
    /// settles a race between two writers inserting the same object without an error (no
    /// savepoint is needed inside a batch), and each row is locked by the statement itself.
    upsert: [String; 3],
    /// The watermarks of rows not written, one lookup by the full unique key each, planned
    /// per call (it reads the table), to tell a tie from stale state. It
    /// is a statement of its own: it must see what a concurrent writer committed while the
    /// upsert waited for its lock.
    watermarks: [String; 3],
}

/// A (tenant id, Stripe or event id) pair returned by a batch statement.
#[derive(diesel::QueryableByName)]
pub struct Key {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub tenant_id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub id: String,
}

impl MirrorSql {
    /// `insert_only`: columns set when the row is created; `state`: the columns an event's
    /// state decides, `watermark` among them.
    pub fn new(table: &str, key: &str, insert_only: &[&str], state: &[&str]) -> Self {
        let columns = insert_only
            .iter()
            .chain(state)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        let set = state
            .iter()
            .map(|column| format!("{column} = EXCLUDED.{column}"))
            .collect::<Vec<_>>()
            .join(", ");
        Self {
            upsert: [
                format!(
                    "INSERT INTO {table} ({columns}) SELECT {columns} \
                     FROM json_populate_recordset(NULL::{table}, "
                ),
                format!(
                    "::json) ON CONFLICT (tenant_id, {key}) DO UPDATE SET {set} WHERE {}",
                    super::watermark::wins_sql(table)
                ),
                format!(") RETURNING tenant_id, {key} AS id"),
            ],
            watermarks: [
                format!(
                    "SELECT k.tenant_id, k.id, (SELECT t.watermark FROM {table} t \
                     WHERE t.tenant_id = k.tenant_id AND t.{key} = k.id) AS watermark \
                     FROM unnest("
                ),
                "::text[], ".to_owned(),
                "::text[]) AS k(tenant_id, id)".to_owned(),
            ],
        }
    }

    /// Writes `rows` (a JSON array of objects, one per item, each object at most once and in
    /// key order) under the watermark rule; `items` are their (tenant id, Stripe id, created).
    /// With `equal_wins`, state of the row's own second wins too (`Freshness::Current`).
    pub fn upsert(
        &self,
        pg: &mut PgConnection,
        items: &[(&str, &str, i64)],
        json: String,
        equal_wins: bool,
    ) -> QueryResult<Vec<super::Applied>> {
        let written: HashSet<(String, String)> = prepared(&self.upsert)
            .bind::<Text, _>(json)
            .bind::<Bool, _>(equal_wins)
            .load::<Key>(pg)?
            .into_iter()
            .map(|key| (key.tenant_id, key.id))
            .collect();
        let (tenants, ids): (Vec<&str>, Vec<&str>) = items
            .iter()
            .filter(|(tenant, id, _)| !written.contains(&((*tenant).to_owned(), (*id).to_owned())))
            .map(|(tenant, id, _)| (*tenant, *id))
            .unzip();
        let stored: Vec<StoredWatermark> = if ids.is_empty() {
            Vec::new()
        } else {
            prepared(&self.watermarks)
                .bind::<Array<Text>, _>(tenants)
                .bind::<Array<Text>, _>(ids)
                .planned_per_call()
                .load(pg)?
        };
        Ok(settle_batch(items, &written, &stored))
    }
}

/// The watermark of a row the batch statement did not write (`None`: no row, or none yet).
#[derive(Debug, diesel::QueryableByName)]
struct StoredWatermark {
    #[diesel(sql_type = diesel::sql_types::Text)]
    tenant_id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    watermark: Option<i64>,
}

/// Each item's outcome after a batch upsert: written, or a tie or stale by the stored
/// watermark.
fn settle_batch(
    items: &[(&str, &str, i64)],
    written: &std::collections::HashSet<(String, String)>,
    stored: &[StoredWatermark],
) -> Vec<super::Applied> {
    items
        .iter()
        .map(|&(tenant, id, at)| {
            if written.contains(&(tenant.to_owned(), id.to_owned())) {
                return super::Applied::Written;
            }
            let watermark = stored
                .iter()
                .find(|s| s.tenant_id == tenant && s.id == id)
                .and_then(|s| s.watermark);
            // Not written, so the stored state was newer or of the same second.
            match super::watermark::decide(watermark, at, false) {
                super::Applied::Tie => super::Applied::Tie,
                _ => super::Applied::Stale,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use diesel::query_builder::QueryFragment;
    use diesel::sql_types::{Array, BigInt, Text};

    use super::prepared;

    fn sql_of(query: &impl QueryFragment<diesel::pg::Pg>) -> String {
        diesel::debug_query::<diesel::pg::Pg, _>(query)
            .to_string()
            .split(" -- binds")
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    #[test]
    fn binds_are_numbered_between_the_parts_and_the_text_does_not_depend_on_their_size() {
        let small = prepared(["SELECT * FROM unnest(", "::text[]) LIMIT ", ""])
            .bind::<Array<Text>, _>(vec!["a"])
            .bind::<BigInt, _>(1_i64);
        let large = prepared(["SELECT * FROM unnest(", "::text[]) LIMIT ", ""])
            .bind::<Array<Text>, _>(vec!["a", "b", "c"])
            .bind::<BigInt, _>(3_i64);
        assert_eq!(sql_of(&small), "SELECT * FROM unnest($1::text[]) LIMIT $2");
        assert_eq!(sql_of(&small), sql_of(&large));
        assert!(small.is_safe_to_cache_prepared(&diesel::pg::Pg).unwrap());
        let per_call = prepared(["SELECT ", ""]).bind::<BigInt, _>(1_i64);
        assert!(
            !per_call
                .planned_per_call()
                .is_safe_to_cache_prepared(&diesel::pg::Pg)
                .unwrap()
        );
    }

    #[test]
    fn a_missing_bind_is_an_error_not_a_bad_statement() {
        let missing = prepared(["SELECT ", " + ", ""]).bind::<BigInt, _>(1_i64);
        let mut builder = diesel::pg::PgQueryBuilder::default();
        assert!(missing.to_sql(&mut builder, &diesel::pg::Pg).is_err());
    }
}
