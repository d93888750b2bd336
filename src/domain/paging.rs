//! How a list request pages (STRIPE_RULES.md, Lists): Stripe's cursors (`limit`,
//! `starting_after`, `ending_before`) or the 23blocks pages (`page`, `records`).

use super::{PageRequest, query_number, query_text};
use crate::error::ApiError;

/// Declares a list's query parameters: its own filters, then the five paging parameters
/// every list takes, read by [`Paging::parse`] through `paging()`.
macro_rules! paged_query {
    (
        $(#[$meta:meta])*
        pub struct $name:ident { $($(#[$field_meta:meta])* pub $field:ident: $ty:ty,)* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
        #[into_params(parameter_in = Query)]
        pub struct $name {
            $($(#[$field_meta])* pub $field: $ty,)*
            /// 23blocks paging: the page, from 1.
            pub page: Option<String>,
            /// 23blocks paging: 1 to 100 per page, default 20.
            pub records: Option<String>,
            /// Stripe paging: 1 to 100 per page.
            pub limit: Option<String>,
            /// Stripe paging: the page older than this row (the last of the previous page), by
            /// our unique id or Stripe's id.
            pub starting_after: Option<String>,
            /// Stripe paging: the page newer than this row (the first of the next page).
            pub ending_before: Option<String>,
        }

        impl $name {
            pub fn paging(&self) -> $crate::domain::paging::PagingQuery<'_> {
                $crate::domain::paging::PagingQuery {
                    page: self.page.as_deref(),
                    records: self.records.as_deref(),
                    limit: self.limit.as_deref(),
                    starting_after: self.starting_after.as_deref(),
                    ending_before: self.ending_before.as_deref(),
                }
            }
        }
    };
}
pub(crate) use paged_query;

/// The raw paging parameters of a list request.
#[derive(Debug, Clone, Copy, Default)]
pub struct PagingQuery<'a> {
    pub page: Option<&'a str>,
    pub records: Option<&'a str>,
    pub limit: Option<&'a str>,
    pub starting_after: Option<&'a str>,
    pub ending_before: Option<&'a str>,
}

/// A Stripe list cursor: the row a page starts after or ends before, by an id the client
/// holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    StartingAfter(String),
    EndingBefore(String),
}

impl Cursor {
    /// The query parameter that named it (for errors).
    pub fn parameter(&self) -> &'static str {
        match self {
            Cursor::StartingAfter(_) => "starting_after",
            Cursor::EndingBefore(_) => "ending_before",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Cursor::StartingAfter(id) | Cursor::EndingBefore(id) => id,
        }
    }
}

/// How a list is paged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Paging {
    /// Stripe's: `limit` rows from the cursor (from the newest without one).
    Cursor { limit: i64, cursor: Option<Cursor> },
    /// 23blocks': page `page` of `per_page`.
    Pages(PageRequest),
}

/// What a list does when a request names neither kind of paging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstPage {
    /// Stripe's first page of 10 (the customer list, as Stripe's).
    Cursor,
    /// The 23blocks first page of 20 (the lists the SDK pages through).
    Pages,
}

impl Paging {
    pub fn parse(query: PagingQuery<'_>, first: FirstPage) -> Result<Paging, ApiError> {
        let page = query_text(query.page);
        let records = query_text(query.records);
        let limit = query_text(query.limit);
        let starting_after = query_text(query.starting_after);
        let ending_before = query_text(query.ending_before);
        let stripe_paging = [
            ("limit", limit),
            ("starting_after", starting_after),
            ("ending_before", ending_before),
        ];
        let stripe_named = stripe_paging.into_iter().find(|(_, v)| v.is_some());
        if page.is_some() || records.is_some() {
            if let Some((name, _)) = stripe_named {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    format!("page/records and limit/starting_after/ending_before are two ways to page; send one (got {name} with page or records)"),
                )
                .with_parameter(name));
            }
            return Ok(Paging::Pages(PageRequest::parse(page, records, 20)?));
        }
        if stripe_named.is_none() && first == FirstPage::Pages {
            return Ok(Paging::Pages(PageRequest::parse(None, None, 20)?));
        }
        let cursor = match (starting_after, ending_before) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    "starting_after and ending_before cannot be used together",
                )
                .with_parameter("ending_before"));
            }
            (Some(id), None) => Some(Cursor::StartingAfter(id.to_owned())),
            (None, Some(id)) => Some(Cursor::EndingBefore(id.to_owned())),
            (None, None) => None,
        };
        Ok(Paging::Cursor {
            limit: query_number(limit, "limit", 10, 1, 100)?,
            cursor,
        })
    }

    /// Rows per page.
    pub fn limit(&self) -> i64 {
        match self {
            Paging::Cursor { limit, .. } => *limit,
            Paging::Pages(pages) => pages.per_page,
        }
    }

    /// Rows before the page (cursor pages are placed by their cursor instead).
    pub fn offset(&self) -> i64 {
        match self {
            Paging::Cursor { .. } => 0,
            Paging::Pages(pages) => pages.offset(),
        }
    }

    /// Rows before the page when it is placed by an offset; `None` when a cursor places it.
    pub fn offset_page(&self) -> Option<i64> {
        match self.cursor() {
            Some(_) => None,
            None => Some(self.offset()),
        }
    }

    pub fn cursor(&self) -> Option<&Cursor> {
        match self {
            Paging::Cursor { cursor, .. } => cursor.as_ref(),
            Paging::Pages(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query<'a>(pairs: &[(&str, &'a str)]) -> PagingQuery<'a> {
        let get = |name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        PagingQuery {
            page: get("page"),
            records: get("records"),
            limit: get("limit"),
            starting_after: get("starting_after"),
            ending_before: get("ending_before"),
        }
    }

    #[test]
    fn a_request_naming_no_paging_gets_the_lists_default() {
        assert_eq!(
            Paging::parse(query(&[]), FirstPage::Pages).unwrap(),
            Paging::Pages(PageRequest {
                page: 1,
                per_page: 20
            })
        );
        assert_eq!(
            Paging::parse(query(&[]), FirstPage::Cursor).unwrap(),
            Paging::Cursor {
                limit: 10,
                cursor: None
            }
        );
    }

    #[test]
    fn cursors_and_pages_are_read_and_mixing_them_is_refused() {
        assert_eq!(
            Paging::parse(
                query(&[("starting_after", "sub_1"), ("limit", "3")]),
                FirstPage::Pages
            )
            .unwrap(),
            Paging::Cursor {
                limit: 3,
                cursor: Some(Cursor::StartingAfter("sub_1".into()))
            }
        );
        assert_eq!(
            Paging::parse(query(&[("page", "4"), ("records", "7")]), FirstPage::Cursor)
                .unwrap()
                .offset(),
            21
        );
        for bad in [
            vec![("page", "2"), ("limit", "3")],
            vec![("starting_after", "a"), ("ending_before", "b")],
            vec![("limit", "0")],
            vec![("limit", "101")],
            vec![("page", "0")],
            vec![("records", "abc")],
        ] {
            assert!(
                Paging::parse(query(&bad), FirstPage::Pages).is_err(),
                "{bad:?} was accepted"
            );
        }
    }
}
