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
use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use diesel::sql_types::{Array, Bool, HasSqlType, Nullable, Text, Untyped};
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
pub(crate) fn not_serialized(
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

/// One column of a batch as PostgreSQL's binary `text[]`, each value in its text form (as
/// PostgreSQL's own input functions read it), or NULL.
#[derive(Debug, Default, diesel::expression::AsExpression)]
#[diesel(sql_type = Array<Nullable<Text>>)]
pub struct TextColumn {
    /// The elements as the binary format has them: each a length (-1 for NULL) and its
    /// bytes.
    elements: Vec<u8>,
    len: usize,
}

impl TextColumn {
    fn null(&mut self) {
        self.elements.extend_from_slice(&(-1_i32).to_be_bytes());
        self.len += 1;
    }

    /// Writes one value through `write`, then its length before it.
    fn value(
        &mut self,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), ColumnError>,
    ) -> Result<(), ColumnError> {
        let at = self.elements.len();
        self.elements.extend_from_slice(&[0; 4]);
        write(&mut self.elements)?;
        let size = i32::try_from(self.elements.len() - at - 4)
            .map_err(|_| ColumnError("a value longer than PostgreSQL takes".into()))?;
        self.elements[at..at + 4].copy_from_slice(&size.to_be_bytes());
        self.len += 1;
        Ok(())
    }
}

impl diesel::serialize::ToSql<Array<Nullable<Text>>, Pg> for TextColumn {
    fn to_sql<'b>(
        &'b self,
        out: &mut diesel::serialize::Output<'b, '_, Pg>,
    ) -> diesel::serialize::Result {
        use std::io::Write;
        /// `text`'s type oid, fixed by PostgreSQL.
        const TEXT_OID: u32 = 25;
        let len = i32::try_from(self.len)?;
        // One dimension, no flags, of text, `len` elements from 1.
        out.write_all(&1_i32.to_be_bytes())?;
        out.write_all(&0_i32.to_be_bytes())?;
        out.write_all(&TEXT_OID.to_be_bytes())?;
        out.write_all(&len.to_be_bytes())?;
        out.write_all(&1_i32.to_be_bytes())?;
        out.write_all(&self.elements)?;
        Ok(diesel::serialize::IsNull::No)
    }
}

/// Rows written straight into one binary `text[]` per column (`unnest` takes them apart,
/// each cast to its column's type): no JSON for PostgreSQL to parse (`json_populate_recordset`
/// parsed each batch twice, once as the `json` input, once into records, which took about
/// half of the upsert's time), and no `serde_json::Value` per row on this side.
pub struct ColumnRows {
    names: Vec<String>,
    columns: Vec<TextColumn>,
    rows: usize,
    /// Where the next field is looked for first (a row's fields come in the same order).
    hint: usize,
}

impl ColumnRows {
    /// Rows of these columns, in this order.
    pub fn new<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        Self {
            columns: names.iter().map(|_| TextColumn::default()).collect(),
            names,
            rows: 0,
            hint: 0,
        }
    }

    /// Starts a row with the fields of `columns`, a struct whose fields are named as its
    /// table's columns; more may follow ([`Self::column`]) until [`Self::end_row`].
    pub fn row<T: serde::Serialize + ?Sized>(&mut self, columns: &T) -> QueryResult<()> {
        columns
            .serialize(RowSerializer { rows: self })
            .map_err(not_serialized)
    }

    /// Adds a column to the row started last.
    pub fn column<T: serde::Serialize + ?Sized>(
        &mut self,
        name: &str,
        value: &T,
    ) -> QueryResult<()> {
        self.put(name, value).map_err(not_serialized)
    }

    fn put<T: serde::Serialize + ?Sized>(
        &mut self,
        name: &str,
        value: &T,
    ) -> Result<(), ColumnError> {
        let n = self.names.len();
        let at = (0..n)
            .map(|k| (self.hint + k) % n)
            .find(|&i| self.names[i] == name)
            .ok_or_else(|| ColumnError(format!("no column {name} in this batch")))?;
        self.hint = at + 1;
        let column = &mut self.columns[at];
        if column.len != self.rows {
            return Err(ColumnError(format!("column {name} given twice in a row")));
        }
        value.serialize(ValueSerializer { column })
    }

    /// Ends the row: a column it did not give is NULL.
    pub fn end_row(&mut self) {
        for column in &mut self.columns {
            if column.len == self.rows {
                column.null();
            }
        }
        self.rows += 1;
        self.hint = 0;
    }

    /// The columns, in the order they were named.
    pub fn finish(self) -> Vec<TextColumn> {
        self.columns
    }
}

/// Why a value could not be written into a column.
#[derive(Debug)]
struct ColumnError(String);

impl std::fmt::Display for ColumnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ColumnError {}

impl serde::ser::Error for ColumnError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        ColumnError(msg.to_string())
    }
}

fn unsupported<T>(what: &str) -> Result<T, ColumnError> {
    Err(ColumnError(format!("a column cannot hold {what}")))
}

/// A row (a struct) into its columns.
struct RowSerializer<'a> {
    rows: &'a mut ColumnRows,
}

impl serde::ser::SerializeStruct for RowSerializer<'_> {
    type Ok = ();
    type Error = ColumnError;

    fn serialize_field<T: serde::Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ColumnError> {
        self.rows.put(key, value)
    }

    fn end(self) -> Result<(), ColumnError> {
        Ok(())
    }
}

/// Only a struct is a row: everything else is refused.
macro_rules! refuse {
    ($($method:ident($($arg:ty),*) -> $ret:ty;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<$ret, ColumnError> {
            unsupported(stringify!($method))
        })*
    };
}

impl serde::Serializer for RowSerializer<'_> {
    type Ok = ();
    type Error = ColumnError;
    type SerializeSeq = serde::ser::Impossible<(), ColumnError>;
    type SerializeTuple = serde::ser::Impossible<(), ColumnError>;
    type SerializeTupleStruct = serde::ser::Impossible<(), ColumnError>;
    type SerializeTupleVariant = serde::ser::Impossible<(), ColumnError>;
    type SerializeMap = serde::ser::Impossible<(), ColumnError>;
    type SerializeStruct = Self;
    type SerializeStructVariant = serde::ser::Impossible<(), ColumnError>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, ColumnError> {
        Ok(self)
    }

    fn serialize_some<T: serde::Serialize + ?Sized>(self, value: &T) -> Result<(), ColumnError> {
        value.serialize(self)
    }

    fn serialize_newtype_struct<T: serde::Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), ColumnError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: serde::Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), ColumnError> {
        unsupported("a variant as a row")
    }

    refuse! {
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> ();
        serialize_i16(i16) -> ();
        serialize_i32(i32) -> ();
        serialize_i64(i64) -> ();
        serialize_u8(u8) -> ();
        serialize_u16(u16) -> ();
        serialize_u32(u32) -> ();
        serialize_u64(u64) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_char(char) -> ();
        serialize_str(&str) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_none() -> ();
        serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }
}

/// One value into its column, in PostgreSQL's text form: a string as it is, a number in
/// decimal, a boolean as `true`/`false`, `None` as NULL (a date and time comes as the
/// ISO 8601 string chrono writes, which `timestamp` reads).
struct ValueSerializer<'a> {
    column: &'a mut TextColumn,
}

impl ValueSerializer<'_> {
    fn display(self, value: impl std::fmt::Display) -> Result<(), ColumnError> {
        use std::io::Write;
        self.column
            .value(|out| write!(out, "{value}").map_err(|err| ColumnError(err.to_string())))
    }
}

impl serde::Serializer for ValueSerializer<'_> {
    type Ok = ();
    type Error = ColumnError;
    type SerializeSeq = serde::ser::Impossible<(), ColumnError>;
    type SerializeTuple = serde::ser::Impossible<(), ColumnError>;
    type SerializeTupleStruct = serde::ser::Impossible<(), ColumnError>;
    type SerializeTupleVariant = serde::ser::Impossible<(), ColumnError>;
    type SerializeMap = serde::ser::Impossible<(), ColumnError>;
    type SerializeStruct = serde::ser::Impossible<(), ColumnError>;
    type SerializeStructVariant = serde::ser::Impossible<(), ColumnError>;

    fn serialize_bool(self, v: bool) -> Result<(), ColumnError> {
        self.serialize_str(if v { "true" } else { "false" })
    }
    fn serialize_i8(self, v: i8) -> Result<(), ColumnError> {
        self.display(v)
    }
    fn serialize_i16(self, v: i16) -> Result<(), ColumnError> {
        self.display(v)
    }
    fn serialize_i32(self, v: i32) -> Result<(), ColumnError> {
        self.display(v)
    }
    fn serialize_i64(self, v: i64) -> Result<(), ColumnError> {
        self.display(v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), ColumnError> {
        self.display(v)
    }
    fn serialize_u16(self, v: u16) -> Result<(), ColumnError> {
        self.display(v)
    }
    fn serialize_u32(self, v: u32) -> Result<(), ColumnError> {
        self.display(v)
    }
    fn serialize_u64(self, v: u64) -> Result<(), ColumnError> {
        self.display(v)
    }
    fn serialize_f32(self, v: f32) -> Result<(), ColumnError> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), ColumnError> {
        if v.is_finite() {
            self.display(v)
        } else {
            unsupported("a number that is not finite")
        }
    }
    fn serialize_char(self, v: char) -> Result<(), ColumnError> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), ColumnError> {
        self.column.value(|out| {
            out.extend_from_slice(v.as_bytes());
            Ok(())
        })
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), ColumnError> {
        unsupported("bytes")
    }
    fn serialize_none(self) -> Result<(), ColumnError> {
        self.column.null();
        Ok(())
    }
    fn serialize_some<T: serde::Serialize + ?Sized>(self, value: &T) -> Result<(), ColumnError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), ColumnError> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), ColumnError> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), ColumnError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: serde::Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), ColumnError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: serde::Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), ColumnError> {
        unsupported("a variant with data")
    }

    refuse! {
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }
}

/// A table's columns by name, each with its type as PostgreSQL names it.
pub type ColumnTypes = std::sync::Arc<std::collections::HashMap<String, String>>;

/// A table's columns and their types as PostgreSQL names them (`format_type`), read once
/// per table and process: the casts from `text` a batch's columns need.
pub fn column_types(pg: &mut PgConnection, table: &str) -> QueryResult<ColumnTypes> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static TYPES: OnceLock<Mutex<HashMap<String, ColumnTypes>>> = OnceLock::new();
    let types = TYPES.get_or_init(Mutex::default);
    if let Some(known) = types.lock().ok().and_then(|t| t.get(table).cloned()) {
        return Ok(known);
    }
    #[derive(diesel::QueryableByName)]
    struct Column {
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = Text)]
        ty: String,
    }
    let columns: Vec<Column> = prepared([
        "SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS ty \
         FROM pg_attribute a WHERE a.attrelid = ",
        "::regclass AND a.attnum > 0 AND NOT a.attisdropped",
    ])
    .bind::<Text, _>(table)
    .load(pg)?;
    let found: ColumnTypes = Arc::new(columns.into_iter().map(|c| (c.name, c.ty)).collect());
    if let Ok(mut types) = types.lock() {
        types.insert(table.to_owned(), found.clone());
    }
    Ok(found)
}

/// `INSERT INTO table (columns) SELECT <each cast to its type> FROM unnest($k::text[], ...)
/// AS u(columns)`, in parts around the first `columns.len()` binds: the statement's start,
/// up to its closing `u(...)` alias; the caller appends the rest.
pub fn insert_columns(
    pg: &mut PgConnection,
    table: &str,
    columns: &[&str],
) -> QueryResult<Vec<String>> {
    let types = column_types(pg, table)?;
    let mut casts = Vec::with_capacity(columns.len());
    for column in columns {
        let ty = types
            .get(*column)
            .ok_or_else(|| not_serialized(format!("table {table} has no column {column}")))?;
        casts.push(if ty == "text" {
            format!("u.{column}")
        } else {
            format!("u.{column}::{ty}")
        });
    }
    let list = columns.join(", ");
    let mut parts = vec![format!(
        "INSERT INTO {table} ({list}) SELECT {} FROM unnest(",
        casts.join(", ")
    )];
    parts.extend((1..columns.len()).map(|_| "::text[], ".to_owned()));
    parts.push(format!("::text[]) AS u({list}) "));
    Ok(parts)
}

/// The fewest rows a batch has for a plain insert to be tried first ([`try_insert`]): its
/// savepoint costs two round trips, which fewer rows would not pay back.
const INSERT_FIRST_ROWS: usize = 20;

/// How many batches of a table go straight to the upsert after one met a stored row
/// ([`InsertFirst`]).
const SKIP_AFTER_STORED: u32 = 16;

/// Whether a tenant's batches of one table are tried as plain inserts first
/// ([`super::Rule::Listed`]). After a batch of a tenant meets a stored row (and is rolled
/// back), that tenant's next [`SKIP_AFTER_STORED`] batches of the table are upserted at once:
/// a sync of a mirror that already holds the account (a second full sync) would otherwise
/// try, fail and roll back every batch, and a sync that meets the objects deliveries just
/// wrote (the newest, listed first) tries again past them. Kept per tenant, so that one
/// tenant's second sync leaves another's first one alone; a tenant is kept only while it
/// has batches to skip.
#[derive(Debug, Default)]
pub struct InsertFirst {
    skip: Mutex<BTreeMap<String, u32>>,
}

impl InsertFirst {
    pub const fn new() -> Self {
        InsertFirst {
            skip: Mutex::new(BTreeMap::new()),
        }
    }

    /// The countdowns (a panic elsewhere while it was held leaves it usable).
    fn skip(&self) -> MutexGuard<'_, BTreeMap<String, u32>> {
        self.skip.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether this batch of `tenant` is tried (counting down the batches skipped).
    fn ready(&self, tenant: &str) -> bool {
        let mut skip = self.skip();
        match skip.get_mut(tenant) {
            None => true,
            Some(left) if *left <= 1 => {
                skip.remove(tenant);
                false
            }
            Some(left) => {
                *left -= 1;
                false
            }
        }
    }

    /// A batch of `tenant` met a stored row.
    fn stored(&self, tenant: &str) {
        self.skip().insert(tenant.to_owned(), SKIP_AFTER_STORED);
    }
}

/// Writes a batch by `insert` (a plain `INSERT` of `columns`, no conflict clause) in a
/// savepoint, when `gate` lets it and the batch is large enough to pay for the savepoint.
/// `Ok(true)`: every row was written (none was stored: a unique key of the table would have
/// refused it). `Ok(false)`: not tried, or a row was already stored, and the savepoint rolled
/// back: the caller upserts the batch. PostgreSQL's speculative insertion (`ON CONFLICT`)
/// costs about a fifth more per row than a plain insert (docs/BENCHMARKS.md).
pub fn try_insert(
    pg: &mut PgConnection,
    insert: &[String],
    columns: &[TextColumn],
    (gate, tenant): (&InsertFirst, &str),
) -> QueryResult<bool> {
    use diesel::connection::SimpleConnection;
    use diesel::result::{DatabaseErrorKind, Error};
    let rows = columns.first().map_or(0, |c| c.len);
    // A savepoint needs a transaction (a listed page's write has one).
    let in_transaction = super::pool::in_transaction(pg).unwrap_or(false);
    if rows < INSERT_FIRST_ROWS || !in_transaction || !gate.ready(tenant) {
        return Ok(false);
    }
    // Its own savepoint, released either way: after `ROLLBACK TO` a savepoint stays open,
    // and the rest of the transaction would run in its subtransaction.
    pg.batch_execute("SAVEPOINT insert_first")?;
    let mut statement = prepared(insert);
    for column in columns {
        statement = statement.bind::<Array<Nullable<Text>>, _>(column);
    }
    match statement.execute(pg) {
        Ok(_) => {
            pg.batch_execute("RELEASE SAVEPOINT insert_first")?;
            Ok(true)
        }
        Err(err) => {
            let back = pg.batch_execute(
                "ROLLBACK TO SAVEPOINT insert_first; RELEASE SAVEPOINT insert_first",
            );
            match (err, back) {
                (Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _), Ok(())) => {
                    gate.stored(tenant);
                    Ok(false)
                }
                // The insert's own error (a rollback that fails too, on a connection gone,
                // changes nothing: the page's transaction is rolled back with it).
                (err, _) => Err(err),
            }
        }
    }
}

/// The batch statements of one mirror table on PostgreSQL, each of fixed text (prepared once
/// per connection), built once per table from its column names.
pub struct MirrorSql {
    /// `INSERT INTO t (cols) SELECT cols FROM unnest($1::text[], ...) ON CONFLICT (tenant_id,
    /// key) DO UPDATE SET col = EXCLUDED.col ... WHERE the stored watermark is older (or equal,
    /// when the last bind is true) RETURNING tenant_id, key`: the rows come as one array per
    /// column ([`ColumnRows`]), in key order, so locks are taken in that order. The conflict
    /// clause settles a race between two writers inserting the same object without an error
    /// (no savepoint is needed inside a batch), and each row is locked by the statement itself.
    upsert: Vec<String>,
    /// The same rows by a plain `INSERT` (no conflict clause, nothing returned), tried first
    /// for [`super::Rule::Listed`] batches ([`try_insert`]).
    insert: Vec<String>,
    insert_first: InsertFirst,
    /// The columns, in the order of the upsert's binds.
    columns: Vec<&'static str>,
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
    /// state decides, `watermark` among them. Reads the table's column types.
    pub fn new(
        pg: &mut PgConnection,
        table: &str,
        key: &str,
        insert_only: &[&'static str],
        state: &[&'static str],
    ) -> QueryResult<Self> {
        let columns: Vec<&'static str> = insert_only.iter().chain(state).copied().collect();
        let set = state
            .iter()
            .map(|column| format!("{column} = EXCLUDED.{column}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut upsert = insert_columns(pg, table, &columns)?;
        let insert = upsert.clone();
        if let Some(last) = upsert.last_mut() {
            last.push_str(&format!(
                "ON CONFLICT (tenant_id, {key}) DO UPDATE SET {set} WHERE {}",
                super::watermark::wins_sql(table)
            ));
        }
        upsert.push(format!(") RETURNING tenant_id, {key} AS id"));
        Ok(Self {
            upsert,
            insert,
            insert_first: InsertFirst::new(),
            columns,
            watermarks: [
                format!(
                    "SELECT k.tenant_id, k.id, (SELECT t.watermark FROM {table} t \
                     WHERE t.tenant_id = k.tenant_id AND t.{key} = k.id) AS watermark \
                     FROM unnest("
                ),
                "::text[], ".to_owned(),
                "::text[]) AS k(tenant_id, id)".to_owned(),
            ],
        })
    }

    /// An empty batch of this table's rows, its columns in the statement's order.
    pub fn rows(&self) -> ColumnRows {
        ColumnRows::new(self.columns.iter().copied())
    }

    /// Writes `rows` (from [`Self::rows`], one per item, each object at most once and in
    /// key order) under the watermark rule; `items` are their (tenant id, Stripe id, created).
    /// By `rule`: with [`super::Rule::NewerOrEqual`], state of the row's own second wins too;
    /// with [`super::Rule::Listed`], a plain insert is tried first ([`try_insert`]).
    pub fn upsert(
        &self,
        pg: &mut PgConnection,
        items: &[(&str, &str, i64)],
        rows: ColumnRows,
        rule: super::Rule,
    ) -> QueryResult<Vec<super::Applied>> {
        let columns = rows.finish();
        // A listed batch is one tenant's page.
        let tenant = items.first().map_or("", |(tenant, ..)| *tenant);
        if rule.insert_first()
            && try_insert(pg, &self.insert, &columns, (&self.insert_first, tenant))?
        {
            return Ok(vec![super::Applied::Written; items.len()]);
        }
        let mut statement = prepared(&self.upsert);
        for column in columns {
            statement = statement.bind::<Array<Nullable<Text>>, _>(column);
        }
        let written: HashSet<(String, String)> = statement
            .bind::<Bool, _>(rule.equal_wins())
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
    use diesel::RunQueryDsl;
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

    /// A column's elements as the binary array carries them.
    fn elements(column: &super::TextColumn) -> Vec<Option<String>> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < column.elements.len() {
            let len = i32::from_be_bytes(column.elements[at..at + 4].try_into().unwrap());
            at += 4;
            if len < 0 {
                out.push(None);
            } else {
                let end = at + len as usize;
                out.push(Some(
                    String::from_utf8(column.elements[at..end].to_vec()).unwrap(),
                ));
                at = end;
            }
        }
        assert_eq!(out.len(), column.len);
        out
    }

    #[derive(serde::Serialize)]
    struct Row<'a> {
        b: Option<&'a str>,
        a: i64,
        flag: bool,
    }

    #[test]
    fn a_rows_fields_go_to_their_columns_by_name_and_what_it_leaves_is_null() {
        let mut rows = super::ColumnRows::new(["a", "b", "flag", "at", "extra"]);
        rows.row(&Row {
            b: Some("x, {\"y\"}"),
            a: -7,
            flag: true,
        })
        .unwrap();
        rows.column(
            "at",
            &chrono::DateTime::from_timestamp(0, 5_000)
                .unwrap()
                .naive_utc(),
        )
        .unwrap();
        rows.end_row();
        rows.row(&Row {
            b: None,
            a: 2,
            flag: false,
        })
        .unwrap();
        rows.end_row();
        let columns: Vec<Vec<Option<String>>> = rows.finish().iter().map(elements).collect();
        let text = |s: &str| Some(s.to_owned());
        assert_eq!(columns[0], vec![text("-7"), text("2")]);
        assert_eq!(columns[1], vec![text("x, {\"y\"}"), None]);
        assert_eq!(columns[2], vec![text("true"), text("false")]);
        assert_eq!(columns[3], vec![text("1970-01-01T00:00:00.000005"), None]);
        assert_eq!(columns[4], vec![None, None]);
    }

    #[test]
    fn a_column_not_in_the_batch_given_twice_or_not_a_struct_is_an_error() {
        let mut rows = super::ColumnRows::new(["a", "b"]);
        assert!(rows.column("nope", &1).is_err());
        let mut rows = super::ColumnRows::new(["a", "b", "flag"]);
        rows.row(&Row {
            b: None,
            a: 1,
            flag: true,
        })
        .unwrap();
        assert!(rows.column("a", &2).is_err(), "a given twice in one row");
        let mut rows = super::ColumnRows::new(["a"]);
        assert!(rows.row(&5).is_err());
        assert!(rows.row(&vec![1, 2]).is_err());
        assert!(rows.column("a", &vec![1, 2]).is_err(), "a list in a column");
    }

    /// The columns reach PostgreSQL as their types: text with characters an array literal
    /// would quote, the empty string and the word NULL as text, not NULL; numbers, booleans
    /// and times cast from their text; NULL in any column.
    #[test]
    fn postgres_columns_arrive_as_their_types() {
        use diesel::Connection;
        let url = std::env::var("TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let mut pg = diesel::PgConnection::establish(&url).expect("the test PostgreSQL answers");
        diesel::sql_query(
            "CREATE TEMP TABLE column_rows_probe (name TEXT, n BIGINT, flag BOOLEAN, \
             at TIMESTAMP WITHOUT TIME ZONE)",
        )
        .execute(&mut pg)
        .unwrap();
        #[derive(serde::Serialize)]
        struct Probe<'a> {
            name: Option<&'a str>,
            n: Option<i64>,
            flag: Option<bool>,
            at: Option<chrono::NaiveDateTime>,
        }
        let at = chrono::DateTime::from_timestamp(1_796_473_860, 702_600_000)
            .unwrap()
            .naive_utc();
        let probes = [
            Probe {
                name: Some("a,b {c} \"d\" \\e ünï"),
                n: Some(i64::MIN),
                flag: Some(true),
                at: Some(at),
            },
            Probe {
                name: Some(""),
                n: Some(0),
                flag: Some(false),
                at: None,
            },
            Probe {
                name: Some("NULL"),
                n: None,
                flag: None,
                at: None,
            },
            Probe {
                name: None,
                n: Some(i64::MAX),
                flag: None,
                at: None,
            },
        ];
        let names = ["name", "n", "flag", "at"];
        let parts = super::insert_columns(&mut pg, "column_rows_probe", &names).unwrap();
        let mut rows = super::ColumnRows::new(names);
        for probe in &probes {
            rows.row(probe).unwrap();
            rows.end_row();
        }
        let mut statement = prepared(&parts);
        for column in rows.finish() {
            statement = statement.bind::<Array<diesel::sql_types::Nullable<Text>>, _>(column);
        }
        assert_eq!(statement.execute(&mut pg).unwrap(), 4);
        #[derive(diesel::QueryableByName, PartialEq, Debug)]
        struct Stored {
            #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
            name: Option<String>,
            #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
            n: Option<i64>,
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Bool>)]
            flag: Option<bool>,
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamp>)]
            at: Option<chrono::NaiveDateTime>,
        }
        let stored: Vec<Stored> = diesel::sql_query(
            "SELECT name, n, flag, at FROM column_rows_probe ORDER BY n NULLS LAST",
        )
        .load(&mut pg)
        .unwrap();
        let expected: Vec<Stored> = [&probes[0], &probes[1], &probes[3], &probes[2]]
            .iter()
            .map(|p| Stored {
                name: p.name.map(str::to_owned),
                n: p.n,
                flag: p.flag,
                at: p.at,
            })
            .collect();
        assert_eq!(stored, expected);
    }

    #[test]
    fn a_missing_bind_is_an_error_not_a_bad_statement() {
        let missing = prepared(["SELECT ", " + ", ""]).bind::<BigInt, _>(1_i64);
        let mut builder = diesel::pg::PgQueryBuilder::default();
        assert!(missing.to_sql(&mut builder, &diesel::pg::Pg).is_err());
    }
}
