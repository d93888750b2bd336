//! Charges from the mirror: listed and read as the caller may see them (as payments are).

use crate::caller::Caller;
use crate::db::charges::{self as rows, ChargeFilter, ChargeRow};
use crate::db::listing::{self, Page};
use crate::domain::paging::{FirstPage, Paging};
use crate::domain::query_text;
use crate::error::ApiError;
use crate::services::{owned, paging};
use crate::state::AppState;

/// Stripe's charge statuses.
pub const STATUSES: [&str; 3] = ["succeeded", "pending", "failed"];

crate::domain::paging::paged_query! {
    /// `GET /stripe/charges`: filters and paging (23blocks pages by default).
    pub struct ListChargesQuery {
        /// Only the charges of this payment: our payment unique id or the `pi_` id.
        pub payment_id: Option<String>,
        /// Only the charges of this customer: our customer unique id, the user unique id or
        /// the `cus_` id.
        pub customer_id: Option<String>,
        /// `succeeded`, `pending` or `failed`; several separated by commas.
        pub status: Option<String>,
    }
}

/// A validated charge list request; the payment and customer as sent (resolved for the
/// caller when listing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeListRequest {
    pub paging: Paging,
    pub statuses: Option<Vec<String>>,
    pub payment: Option<String>,
    pub customer: Option<String>,
}

fn statuses(raw: Option<&str>) -> Result<Option<Vec<String>>, ApiError> {
    let Some(raw) = query_text(raw) else {
        return Ok(None);
    };
    let mut out: Vec<String> = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !STATUSES.contains(&name) {
            return Err(ApiError::invalid_parameter(
                "status",
                format!(
                    "status must be one of {} (got {name:?})",
                    STATUSES.join(", ")
                ),
            ));
        }
        if !out.iter().any(|s| s == name) {
            out.push(name.to_owned());
        }
    }
    Ok(Some(out))
}

/// An id filter as sent: trimmed, at most 255 characters.
fn id_filter(raw: Option<&str>, name: &str) -> Result<Option<String>, ApiError> {
    let Some(raw) = query_text(raw) else {
        return Ok(None);
    };
    if raw.chars().count() > 255 {
        return Err(ApiError::invalid_parameter(
            name,
            format!("{name} must be at most 255 characters"),
        ));
    }
    Ok(Some(raw.to_owned()))
}

pub fn parse_list(query: &ListChargesQuery) -> Result<ChargeListRequest, ApiError> {
    Ok(ChargeListRequest {
        paging: Paging::parse(query.paging(), FirstPage::Pages)?,
        statuses: statuses(query.status.as_deref())?,
        payment: id_filter(query.payment_id.as_deref(), "payment_id")?,
        customer: id_filter(query.customer_id.as_deref(), "customer_id")?,
    })
}

/// One page of the caller's charges from the mirror, newest first, and the total. A payment
/// or customer the caller cannot see simply matches nothing (as on GET /stripe/payments).
pub async fn list(
    state: &AppState,
    caller: &Caller,
    request: ChargeListRequest,
) -> Result<Page<ChargeRow>, ApiError> {
    let stripe_customer_id = match &request.customer {
        Some(raw) => Some(owned::customer_filter(state, caller, raw).await?),
        None => None,
    };
    let tenant_id = caller.tenant.id.clone();
    let visibility = caller.visibility();
    let paging = request.paging;
    let (statuses, payment) = (request.statuses, request.payment);
    state
        .db
        .run(move |conn| {
            listing::snapshot(conn, paging.offset_page(), |conn| {
                // Our unique id or the `pi_` id; one the caller cannot see is kept as sent
                // and names no charge they see.
                let payment_intent = match payment {
                    None => None,
                    Some(any) => Some(
                        crate::db::payments::find_visible(conn, &tenant_id, &any, &visibility)?
                            .map_or(any, |p| p.stripe_payment_intent_id),
                    ),
                };
                let filter = ChargeFilter {
                    statuses,
                    payment_intent,
                    stripe_customer_id,
                };
                let start = paging::start(&paging, "charge", |id| {
                    rows::list_position(conn, &tenant_id, id, &visibility)
                })?;
                rows::list(
                    conn,
                    &tenant_id,
                    &visibility,
                    &filter,
                    &start,
                    paging.limit(),
                )
                .map_err(ApiError::from)
            })
        })
        .await
}

/// The caller's charge by our unique id or the `ch_` id; 404 otherwise (also another
/// tenant's or another user's: existence is never leaked).
pub async fn get(state: &AppState, caller: &Caller, any_id: &str) -> Result<ChargeRow, ApiError> {
    if any_id.trim().is_empty() || any_id.chars().count() > 255 {
        return Err(ApiError::not_found(format!(
            "No charge {any_id:?} in this app."
        )));
    }
    let tenant_id = caller.tenant.id.clone();
    let (visibility, wanted) = (caller.visibility(), any_id.to_owned());
    state
        .db
        .run(move |conn| {
            rows::find_visible(conn, &tenant_id, &wanted, &visibility).map_err(ApiError::from)
        })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No charge {any_id:?} in this app.")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(status: Option<&str>) -> ListChargesQuery {
        ListChargesQuery {
            status: status.map(str::to_owned),
            ..ListChargesQuery::default()
        }
    }

    #[test]
    fn statuses_are_stripes_and_an_unknown_one_names_the_parameter() {
        let parsed = parse_list(&query(Some("failed, succeeded,failed"))).unwrap();
        assert_eq!(
            parsed.statuses,
            Some(vec!["failed".to_owned(), "succeeded".to_owned()])
        );
        assert_eq!(parse_list(&query(Some(" "))).unwrap().statuses, None);
        let err = parse_list(&query(Some("paid"))).unwrap_err();
        assert_eq!(err.status.as_u16(), 422);
        assert!(err.detail.contains("succeeded, pending, failed"), "{err:?}");
    }

    #[test]
    fn an_overlong_id_filter_is_refused() {
        let long = ListChargesQuery {
            payment_id: Some("p".repeat(256)),
            ..ListChargesQuery::default()
        };
        assert_eq!(parse_list(&long).unwrap_err().status.as_u16(), 422);
    }
}
