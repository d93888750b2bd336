//! The customer list: Stripe's cursor paging or the 23blocks pages.

use crate::caller::Caller;
use crate::db::customers::{self as rows, Customer};
use crate::db::listing::{self, Page};
use crate::domain::paging::{FirstPage, Paging};
use crate::error::ApiError;
use crate::services::paging;
use crate::state::AppState;

crate::domain::paging::paged_query! {
    /// `GET /stripe/customers`: Stripe's cursor paging (the default, 10 a page), or the 23blocks
    /// pages when `page` or `records` is given (STRIPE_RULES.md, Lists).
    pub struct ListCustomersQuery {}
}

pub fn parse_list(query: &ListCustomersQuery) -> Result<Paging, ApiError> {
    Paging::parse(query.paging(), FirstPage::Cursor)
}

/// The customers the caller sees (admins: all of the tenant's; others: their own), not
/// deleted, newest first. A cursor may name a customer deleted since, so a client paging
/// through keeps its place.
pub async fn list_customers(
    state: &AppState,
    caller: &Caller,
    paging: Paging,
) -> Result<Page<Customer>, ApiError> {
    let tenant_id = caller.tenant.id.clone();
    let visibility = caller.visibility();
    state
        .db
        .run(move |conn| {
            listing::snapshot(conn, paging.offset_page(), |conn| {
                let start = paging::start(&paging, "customer", |id| {
                    rows::list_position(conn, &tenant_id, id, &visibility)
                })?;
                rows::list(conn, &tenant_id, &visibility, &start, paging.limit())
                    .map_err(ApiError::from)
            })
        })
        .await
}
