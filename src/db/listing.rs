//! Pages of a list, newest first, read along an index that matches the list's order exactly:
//! an offset page from whichever end of the list is nearer, over the index alone before the
//! page's rows are fetched; a cursor page (Stripe's `starting_after` / `ending_before`) as a
//! range of the index from the cursor's key.

use chrono::NaiveDateTime;

use super::{AnyConnection, counts};

/// Where a page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageStart<K> {
    /// After this many rows from the newest.
    Offset(i64),
    /// Just older than this key (Stripe's `starting_after`).
    After(K),
    /// Just newer than this key (Stripe's `ending_before`).
    Before(K),
}

/// One page and what the caller is told about the rest.
#[derive(Debug)]
pub struct Page<R> {
    pub rows: Vec<R>,
    /// Every row of the list (all pages, the caller's filters applied).
    pub total: i64,
    /// Whether rows follow this page in its direction: older ones, or newer ones for
    /// `ending_before` (Stripe's `has_more`).
    pub has_more: bool,
}

/// How an offset page is read: from the newest end or the oldest, skipping and taking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    pub newest_first: bool,
    pub skip: i64,
    pub take: i64,
}

impl Read {
    /// The rows `offset..offset + limit` (newest first) of a list of `total`, read from the
    /// nearer end so no page walks more than half the list. `None`: past the end.
    pub fn of(total: i64, offset: i64, limit: i64) -> Option<Read> {
        if offset < 0 || offset >= total || limit <= 0 {
            return None;
        }
        let take = limit.min(total - offset);
        let from_oldest = total - offset - take;
        Some(if from_oldest < offset {
            Read {
                newest_first: false,
                skip: from_oldest,
                take,
            }
        } else {
            Read {
                newest_first: true,
                skip: offset,
                take,
            }
        })
    }
}

/// A list whose total and spans come from the tenant's counters (`db::counts`): the caller's
/// filters are exactly a counter's buckets.
#[derive(Debug, Clone, Copy)]
pub struct Counted<'a> {
    pub tenant_id: &'a str,
    pub list: counts::List,
    pub buckets: counts::Buckets<'a>,
}

impl Counted<'_> {
    /// The list's rows per span, newest first, from the counters (one read gives the total
    /// and, for a deep page, where it starts).
    pub fn spans(&self, conn: &mut AnyConnection) -> diesel::QueryResult<Vec<(i64, i64)>> {
        counts::spans(conn, self.tenant_id, self.list, self.buckets)
    }

    /// The list's total alone, from the counters.
    pub fn total(&self, conn: &mut AnyConnection) -> diesel::QueryResult<i64> {
        counts::total(conn, self.tenant_id, self.list, self.buckets)
    }

    /// The list's total from the counters, flagged, as a column beside a page's rows
    /// ([`counts::total_column`]).
    pub fn total_column<QS>(&self, conn: &AnyConnection) -> counts::Column<QS> {
        let postgres = matches!(conn, AnyConnection::Postgresql(_));
        counts::total_column(self.tenant_id, self.list, self.buckets, postgres)
    }

    /// A total read through [`Counted::total_column`], unflagged.
    pub fn unflag(&self, flagged: i64) -> i64 {
        counts::unflag_total(flagged, self.tenant_id, self.list)
    }
}

/// Where a page's total comes from.
#[derive(Debug, Clone, Copy)]
pub enum Total<'a> {
    /// The tenant's counters: the list's filters are exactly some of their buckets.
    Counters(Counted<'a>),
    /// Counted beside the page's rows: every matching row is read once, rows and all, so
    /// only for a list narrowed to a few customers' rows (a non-admin's, one customer's, one
    /// payment's).
    Narrow,
    /// Counted over the list's index, in a statement of its own.
    Count,
}

/// The number of rows a list's filters match, as a column beside its page's rows (counted
/// over all of them before the page is cut): for [`Total::Narrow`] lists.
pub fn narrow_total<QS>() -> counts::Column<QS> {
    Box::new(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "COUNT(*) OVER ()",
    ))
}

/// Rows an offset read walks before it seeks by span instead. A page shallower than this
/// reads its rows and its total in one statement.
pub const DEEP: i64 = 200;

/// Whether an offset page (`Some(offset)`; `None` for a cursor page) is read in one statement
/// with its total ([`read_page!`]), so needs no transaction to be consistent.
pub fn one_statement(offset: Option<i64>) -> bool {
    offset.is_some_and(|offset| (0..DEEP).contains(&offset))
}

/// The span (from `spans`, newest first) where a read's first row lies, and how many rows of
/// the read's direction precede it within that span.
pub fn seek(spans: &[(i64, i64)], read: Read) -> Option<(i64, i64)> {
    let mut before = 0;
    let mut check = |&(span, n): &(i64, i64)| {
        if before + n > read.skip {
            return Some((span, read.skip - before));
        }
        before += n;
        None
    };
    if read.newest_first {
        spans.iter().find_map(&mut check)
    } else {
        spans.iter().rev().find_map(&mut check)
    }
}

/// The first value of a span of a list's first order column.
pub trait SpanEdge {
    fn span_edge(span: i64) -> Self;
}

impl SpanEdge for i64 {
    fn span_edge(span: i64) -> i64 {
        span.saturating_mul(counts::SPAN_SECS)
    }
}

impl SpanEdge for NaiveDateTime {
    fn span_edge(span: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(span.saturating_mul(counts::SPAN_SECS), 0)
            .unwrap_or_default()
            .naive_utc()
    }
}

/// Rows strictly past a key in a list's order: `($lt_or_gt, $le_or_ge)` = `(lt, le)` for
/// older, `(gt, ge)` for newer. The leading bound on the first column lets the index be read
/// as a range; the rest settles ties.
macro_rules! past_key {
    ($table:ident, $strict:ident, $loose:ident; $first:ident $(, $rest:ident)*) => {
        $table::$first
            .$loose($first.clone())
            .and($crate::db::listing::past_key!(@tie $table, $strict; $first $(, $rest)*))
    };
    (@tie $table:ident, $strict:ident; $last:ident) => {
        $table::$last.$strict($last.clone())
    };
    (@tie $table:ident, $strict:ident; $first:ident, $($rest:ident),+) => {
        $table::$first.$strict($first.clone()).or($table::$first
            .eq($first.clone())
            .and($crate::db::listing::past_key!(@tie $table, $strict; $($rest),+)))
    };
}
pub(crate) use past_key;

/// Runs a list's reads (its total and its page) on one snapshot, so the total a page is
/// placed by is the one its rows come from even while writers go on. The page starts at
/// `offset` (`None`: at a cursor); a page read in one statement ([`one_statement`]) is its
/// own snapshot and runs without a transaction (two round trips fewer). Reads the work makes
/// around it (the row a filter names, the rows' attempts) then see the database as it is at
/// their own moment.
pub fn snapshot<T, E, F>(conn: &mut AnyConnection, offset: Option<i64>, work: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, Connection, TransactionManager};
    type Manager = <AnyConnection as Connection>::TransactionManager;
    if one_statement(offset) {
        return work(conn);
    }
    // Inside a caller's transaction a BEGIN would be refused: the reads join it (a
    // savepoint), on whatever isolation the caller chose.
    if Manager::transaction_manager_status_mut(conn)
        .transaction_depth()?
        .is_some()
    {
        return conn.transaction(work);
    }
    // On PostgreSQL the snapshot's level is set by its BEGIN: one statement, not two.
    if let AnyConnection::Postgresql(pg) = conn {
        AnsiTransactionManager::begin_transaction_sql(
            pg,
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
        )?;
    } else {
        Manager::begin_transaction(conn)?;
    }
    // As `Connection::transaction` ends it.
    match work(conn) {
        Ok(value) => {
            Manager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(err) => match Manager::rollback_transaction(conn) {
            Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(err),
            Err(rollback) => Err(rollback.into()),
        },
    }
}

/// Reads one page of `$table` (rows `$row`), newest first by the columns given (the last
/// one unique), from the boxed query `$build()` builds (the list's filters), placed by
/// `$start`; with its total, as `$total` ([`Total`]) says.
macro_rules! read_page {
    (
        $conn:expr, $build:expr, $table:ident, $row:ty,
        ($first:ident: $first_ty:ty $(, $col:ident)*),
        $start:expr, $limit:expr, $total:expr
    ) => {{
        use diesel::prelude::*;
        use $crate::db::listing::{Page, PageStart, Read, SpanEdge, Total};
        let total_from: Total<'_> = $total;
        let counted = match total_from {
            Total::Counters(counted) => Some(counted),
            Total::Narrow | Total::Count => None,
        };
        let build = $build;
        let limit: i64 = $limit;
        let newest_first = ($table::$first.desc(), $($table::$col.desc()),*);
        let oldest_first = ($table::$first.asc(), $($table::$col.asc()),*);
        let conn: &mut $crate::db::AnyConnection = $conn;
        let start: &PageStart<_> = $start;
        let shallow = match start {
            PageStart::Offset(offset) => {
                $crate::db::listing::one_statement(Some(*offset)).then_some(*offset)
            }
            _ => None,
        };
        let fetched: diesel::QueryResult<Page<$row>> = match (shallow, total_from) {
            // A shallow page whose total can be read beside its rows: one statement (newest
            // first, the offset walked: at most DEEP rows), the total a column of each row;
            // only a page past the end asks for the total again.
            (Some(offset), Total::Counters(_) | Total::Narrow) => (|| {
                let column = match &counted {
                    Some(counted) => counted.total_column::<$table::table>(&*conn),
                    None => $crate::db::listing::narrow_total::<$table::table>(),
                };
                let found: Vec<($row, i64)> = build()
                    .order(newest_first)
                    .limit(limit)
                    .offset(offset)
                    .select((<$row>::as_select(), column))
                    .load(conn)?;
                let total = match (found.first(), &counted) {
                    (Some((_, flagged)), Some(counted)) => counted.unflag(*flagged),
                    (Some((_, total)), None) => *total,
                    // An empty first page: the list is empty (a new tenant's, a user's
                    // without customers), no second statement.
                    (None, _) if offset == 0 => 0,
                    (None, Some(counted)) => counted.total(conn)?,
                    (None, None) => build().count().get_result(conn)?,
                };
                let rows: Vec<$row> = found.into_iter().map(|(row, _)| row).collect();
                let has_more = offset + (rows.len() as i64) < total;
                Ok(Page { rows, total, has_more })
            })(),
            // Two statements or more: on one snapshot. A shallow page runs outside the
            // caller's (skipped, see `snapshot`), so it takes its own.
            (shallow, _) => {
                let general = |conn: &mut $crate::db::AnyConnection| -> diesel::QueryResult<Page<$row>> {
                    // The total: the tenant's counters when the list is exactly some of their
                    // buckets, else counted over the narrowest index. Per week (summed to the
                    // total) for a page that may seek, one DEEP rows or more from the newest end
                    // (from the oldest end it is shallower still); else the all-time counters.
                    // Reading the all-time total first to skip the weeks for pages near the
                    // oldest end cost every seeking page a statement more, and measured no gain.
                    let spans = match (&counted, start) {
                        (Some(counted), PageStart::Offset(offset))
                            if *offset >= $crate::db::listing::DEEP =>
                        {
                            Some(counted.spans(conn)?)
                        }
                        _ => None,
                    };
                    let total: i64 = match (&spans, &counted) {
                        (Some(spans), _) => spans.iter().map(|(_, n)| n).sum(),
                        (None, Some(counted)) => counted.total(conn)?,
                        (None, None) => build().count().get_result(conn)?,
                    };
                    match start {
                    PageStart::Offset(offset) => {
                        let offset: i64 = *offset;
                        let Some(read) = Read::of(total, offset, limit) else {
                            return Ok(Page { rows: Vec::new(), total, has_more: false });
                        };
                        // A deep page starts from the span it falls in (the counters say which).
                        let seek = spans
                            .as_deref()
                            .filter(|_| read.skip >= $crate::db::listing::DEEP)
                            .and_then(|spans| $crate::db::listing::seek(spans, read));
                        let mut page = build().limit(read.take);
                        page = match (seek, read.newest_first) {
                            (None, _) => page.offset(read.skip),
                            (Some((span, within)), true) => page
                                .filter($table::$first.lt(<$first_ty as SpanEdge>::span_edge(span + 1)))
                                .offset(within),
                            (Some((span, within)), false) => page
                                .filter($table::$first.ge(<$first_ty as SpanEdge>::span_edge(span)))
                                .offset(within),
                        };
                        let page = if read.newest_first {
                            page.order(newest_first)
                        } else {
                            page.order(oldest_first)
                        };
                        // Rows walked past before the page: none (the first page from either
                        // end, or a seek that lands on a span's first row) reads the rows at
                        // once; else the page's ids first, over the index alone, then its rows.
                        let walked = seek.map_or(read.skip, |(_, within)| within);
                        let rows: Vec<$row> = if walked == 0 {
                            let mut rows: Vec<$row> = page.select(<$row>::as_select()).load(conn)?;
                            if !read.newest_first {
                                rows.reverse();
                            }
                            rows
                        } else {
                            let ids: Vec<String> = page.select($table::id).load(conn)?;
                            $table::table
                                .filter($table::id.eq_any(&ids))
                                .order(newest_first)
                                .select(<$row>::as_select())
                                .load(conn)?
                        };
                        let has_more = offset + (rows.len() as i64) < total;
                        Ok(Page { rows, total, has_more })
                    }
                    PageStart::After(key) => {
                        let ($first, $($col,)*) = key.clone();
                        let mut rows: Vec<$row> = build()
                            .filter($crate::db::listing::past_key!($table, lt, le; $first $(, $col)*))
                            .order(newest_first)
                            .limit(limit + 1)
                            .select(<$row>::as_select())
                            .load(conn)?;
                        let has_more = rows.len() as i64 > limit;
                        rows.truncate(usize::try_from(limit).unwrap_or(0));
                        Ok(Page { rows, total, has_more })
                    }
                    PageStart::Before(key) => {
                        let ($first, $($col,)*) = key.clone();
                        let mut rows: Vec<$row> = build()
                            .filter($crate::db::listing::past_key!($table, gt, ge; $first $(, $col)*))
                            .order(oldest_first)
                            .limit(limit + 1)
                            .select(<$row>::as_select())
                            .load(conn)?;
                        let has_more = rows.len() as i64 > limit;
                        rows.truncate(usize::try_from(limit).unwrap_or(0));
                        rows.reverse();
                        Ok(Page { rows, total, has_more })
                    }
                }};
                if shallow.is_some() {
                    $crate::db::listing::snapshot(conn, None, general)
                } else {
                    general(conn)
                }
            }
        };
        fetched
    }};
}
pub(crate) use read_page;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every page of every list size, read as planned, is the slice of the list it names.
    #[test]
    fn an_offset_page_read_from_either_end_is_the_slice_it_names() {
        for total in 0..40i64 {
            let list: Vec<i64> = (0..total).rev().collect(); // newest first
            for limit in 1..7 {
                for offset in 0..total + 3 {
                    let expected: Vec<i64> = list
                        .iter()
                        .skip(offset as usize)
                        .take(limit as usize)
                        .copied()
                        .collect();
                    let got: Vec<i64> = match Read::of(total, offset, limit) {
                        None => Vec::new(),
                        Some(read) => {
                            let mut ordered = list.clone();
                            if !read.newest_first {
                                ordered.reverse();
                            }
                            let mut rows: Vec<i64> = ordered
                                .into_iter()
                                .skip(read.skip as usize)
                                .take(read.take as usize)
                                .collect();
                            rows.sort_unstable_by(|a, b| b.cmp(a));
                            rows
                        }
                    };
                    assert_eq!(got, expected, "total {total} offset {offset} limit {limit}");
                    if let Some(read) = Read::of(total, offset, limit) {
                        assert!(read.skip <= total / 2, "{read:?} walks past the middle");
                    }
                }
            }
        }
    }

    /// Seeking by span lands on the same row as walking the offset, from either end.
    #[test]
    fn a_seek_by_span_lands_where_the_offset_walk_does() {
        // Rows newest first, as (span, position): spans of uneven sizes, some empty.
        let sizes = [3i64, 0, 1, 7, 2, 5, 0, 4];
        let mut rows: Vec<i64> = Vec::new();
        for (span, n) in sizes.iter().enumerate().rev() {
            rows.extend(std::iter::repeat_n(span as i64, *n as usize));
        }
        let spans: Vec<(i64, i64)> = sizes
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, n)| **n > 0)
            .map(|(span, n)| (span as i64, *n))
            .collect();
        let total = rows.len() as i64;
        for offset in 0..total {
            let read = Read::of(total, offset, 2).unwrap();
            let (span, within) = seek(&spans, read).unwrap();
            // The read's first row, counted from its end, is row `skip`.
            let ordered: Vec<i64> = if read.newest_first {
                rows.clone()
            } else {
                rows.iter().rev().copied().collect()
            };
            let first = ordered[read.skip as usize];
            assert_eq!(span, first, "offset {offset}");
            let in_span_before = ordered[..read.skip as usize]
                .iter()
                .filter(|s| **s == span)
                .count() as i64;
            assert_eq!(within, in_span_before, "offset {offset}");
        }
        assert_eq!(
            seek(
                &spans,
                Read {
                    newest_first: true,
                    skip: total,
                    take: 1
                }
            ),
            None
        );
    }
}
