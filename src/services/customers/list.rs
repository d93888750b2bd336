//! The customer list: Stripe's cursor paging or the 23blocks pages.

use crate::caller::Caller;
use crate::db::customers::{self as rows, Customer, PageStart};
use crate::domain::{PageRequest, query_number, query_text};
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /stripe/customers`: Stripe's cursor paging, or the 23blocks pages when `page` or
/// `records` is given (STRIPE_RULES.md, Lists).
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListCustomersQuery {
    /// Stripe paging: 1 to 100, default 10.
    pub limit: Option<String>,
    /// Stripe paging: the page older than this customer (the last of the previous page), by
    /// our unique id or the `cus_` id.
    pub starting_after: Option<String>,
    /// Stripe paging: the page newer than this customer (the first of the next page).
    pub ending_before: Option<String>,
    /// 23blocks paging: the page, from 1.
    pub page: Option<String>,
    /// 23blocks paging: 1 to 100 per page, default 20.
    pub records: Option<String>,
}

/// A Stripe list cursor: the customer a page starts after or ends before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    StartingAfter(String),
    EndingBefore(String),
}

/// How a customer list is paged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerPaging {
    /// Stripe's: `limit` customers from the cursor (from the newest without one).
    Cursor { limit: i64, cursor: Option<Cursor> },
    /// 23blocks': page `page` of `per_page`.
    Pages(PageRequest),
}

pub fn parse_list(query: &ListCustomersQuery) -> Result<CustomerPaging, ApiError> {
    let page = query_text(query.page.as_deref());
    let records = query_text(query.records.as_deref());
    let limit = query_text(query.limit.as_deref());
    let starting_after = query_text(query.starting_after.as_deref());
    let ending_before = query_text(query.ending_before.as_deref());
    if page.is_some() || records.is_some() {
        let stripe_paging = [
            ("limit", limit),
            ("starting_after", starting_after),
            ("ending_before", ending_before),
        ];
        if let Some((name, _)) = stripe_paging.into_iter().find(|(_, v)| v.is_some()) {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("page/records and limit/starting_after/ending_before are two ways to page; send one (got {name} with page or records)"),
            )
            .with_parameter(name));
        }
        return Ok(CustomerPaging::Pages(PageRequest::parse(
            page, records, 20,
        )?));
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
    Ok(CustomerPaging::Cursor {
        limit: query_number(limit, "limit", 10, 1, 100)?,
        cursor,
    })
}

/// One page of a customer list.
#[derive(Debug)]
pub struct CustomerPage {
    pub rows: Vec<Customer>,
    /// All the customers the caller sees.
    pub total: i64,
    /// Whether more customers follow this page in its direction: older ones, or newer ones
    /// for `ending_before` (as Stripe's `has_more`).
    pub has_more: bool,
}

/// The customers the caller sees (admins: all of the tenant's; others: their own), not
/// deleted, newest first.
pub async fn list_customers(
    state: &AppState,
    caller: &Caller,
    paging: CustomerPaging,
) -> Result<CustomerPage, ApiError> {
    let tenant_id = caller.tenant.id.clone();
    let visibility = caller.visibility();
    state
        .db
        .run(move |conn| {
            let position = |name: &str, id: &str, conn: &mut crate::db::AnyConnection| {
                rows::list_position(conn, &tenant_id, id, &visibility)?.ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_query",
                        format!("{name}: no customer {id:?} in this app"),
                    )
                    .with_parameter(name)
                })
            };
            let (start, limit) = match &paging {
                CustomerPaging::Pages(pages) => (PageStart::Offset(pages.offset()), pages.per_page),
                CustomerPaging::Cursor { limit, cursor } => {
                    let start = match cursor {
                        None => PageStart::Offset(0),
                        Some(Cursor::StartingAfter(id)) => {
                            PageStart::After(position("starting_after", id, conn)?)
                        }
                        Some(Cursor::EndingBefore(id)) => {
                            PageStart::Before(position("ending_before", id, conn)?)
                        }
                    };
                    (start, *limit)
                }
            };
            // One row more than asked tells whether another page follows.
            let (mut rows, total) = rows::list(conn, &tenant_id, &visibility, &start, limit + 1)?;
            let has_more = rows.len() as i64 > limit;
            rows.truncate(usize::try_from(limit).unwrap_or(0));
            if matches!(start, PageStart::Before(_)) {
                rows.reverse();
            }
            Ok(CustomerPage {
                rows,
                total,
                has_more,
            })
        })
        .await
}
