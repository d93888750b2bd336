//! The list of the caller's payments from the mirror: filters and paging.

use chrono::{DateTime, NaiveDateTime};

use super::MAX_AMOUNT;
use crate::caller::Caller;
use crate::db::listing::{self, Page};
use crate::db::payments::{self as rows, PaymentFilter, PaymentRow};
use crate::domain::paging::{FirstPage, Paging};
use crate::domain::{currency, query_text};
use crate::error::ApiError;
use crate::services::{owned, paging};
use crate::state::AppState;

/// Stripe's payment intent statuses.
pub const STATUSES: [&str; 7] = [
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "processing",
    "requires_capture",
    "canceled",
    "succeeded",
];

/// The payments service's status names (spec 002) and the Stripe statuses each stands for. A
/// declined intent goes back to `requires_payment_method` at Stripe, so `failed` includes it.
const STATUS_ALIASES: [(&str, &[&str]); 3] = [
    ("completed", &["succeeded"]),
    (
        "pending",
        &[
            "requires_confirmation",
            "requires_action",
            "processing",
            "requires_capture",
        ],
    ),
    ("failed", &["requires_payment_method", "canceled"]),
];

crate::domain::paging::paged_query! {
    /// `GET /stripe/payments`: filters and paging (23blocks pages by default).
    pub struct ListPaymentsQuery {
        /// A Stripe status (`succeeded`, `requires_payment_method`, ...) or spec 002's
        /// `completed`, `pending`, `failed`; several separated by commas.
        pub status: Option<String>,
        /// Three-letter ISO code.
        pub currency: Option<String>,
        /// At least this amount, in the smallest unit.
        pub min_amount: Option<String>,
        /// At most this amount, in the smallest unit.
        pub max_amount: Option<String>,
        /// Our customer unique id, the user unique id or the `cus_` id.
        pub customer_id: Option<String>,
        /// Created at or after: RFC 3339 (`2025-06-01T00:00:00Z`) or unix seconds.
        pub since: Option<String>,
        /// Created before: RFC 3339 or unix seconds.
        pub until: Option<String>,
    }
}

/// A validated payment list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentListRequest {
    pub paging: Paging,
    /// The filter, but with the customer as sent (resolved for the caller when listing).
    pub filter: PaymentFilter,
    pub customer: Option<String>,
}

fn amount(raw: Option<&str>, name: &str) -> Result<Option<i64>, ApiError> {
    let Some(raw) = query_text(raw) else {
        return Ok(None);
    };
    match raw.parse::<i64>() {
        Ok(n) if (0..=MAX_AMOUNT).contains(&n) => Ok(Some(n)),
        _ => Err(ApiError::invalid_parameter(
            name,
            format!(
                "{name} must be a whole number of the currency's smallest unit from 0 to {MAX_AMOUNT} (got {raw:?})"
            ),
        )),
    }
}

/// RFC 3339 or unix seconds. A `+` offset decoded as a space (an unencoded query) is read as
/// the `+` it was.
fn instant(raw: Option<&str>, name: &str) -> Result<Option<NaiveDateTime>, ApiError> {
    let Some(raw) = query_text(raw) else {
        return Ok(None);
    };
    let parsed = if let Ok(secs) = raw.parse::<i64>() {
        DateTime::from_timestamp(secs, 0)
    } else {
        DateTime::parse_from_rfc3339(raw)
            .or_else(|_| DateTime::parse_from_rfc3339(&raw.replace(' ', "+")))
            .ok()
            .map(|t| t.to_utc())
    };
    parsed.map(|t| Some(t.naive_utc())).ok_or_else(|| {
        ApiError::invalid_parameter(
            name,
            format!(
                "{name} must be an RFC 3339 time such as 2025-06-01T00:00:00Z, or unix seconds (got {raw:?})"
            ),
        )
    })
}

fn statuses(raw: Option<&str>) -> Result<Option<Vec<String>>, ApiError> {
    let Some(raw) = query_text(raw) else {
        return Ok(None);
    };
    let mut out: Vec<String> = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let expanded: &[&str] = if let Some(i) = STATUSES.iter().position(|s| *s == name) {
            &STATUSES[i..=i]
        } else if let Some((_, stands_for)) = STATUS_ALIASES.iter().find(|(a, _)| *a == name) {
            stands_for
        } else {
            return Err(ApiError::invalid_parameter(
                "status",
                format!(
                    "status must be one of {}, or completed, pending, failed (got {name:?})",
                    STATUSES.join(", ")
                ),
            ));
        };
        for status in expanded {
            if !out.iter().any(|s| s == status) {
                out.push((*status).to_owned());
            }
        }
    }
    Ok(Some(out))
}

pub fn parse_list(query: &ListPaymentsQuery) -> Result<PaymentListRequest, ApiError> {
    let paging = Paging::parse(query.paging(), FirstPage::Pages)?;
    let currency = query_text(query.currency.as_deref())
        .map(|raw| {
            currency(raw, "").map_err(|err| ApiError::invalid_parameter("currency", &err.detail))
        })
        .transpose()?;
    let min_amount = amount(query.min_amount.as_deref(), "min_amount")?;
    let max_amount = amount(query.max_amount.as_deref(), "max_amount")?;
    if let (Some(min), Some(max)) = (min_amount, max_amount)
        && min > max
    {
        return Err(ApiError::invalid_parameter(
            "max_amount",
            format!("max_amount ({max}) is below min_amount ({min})"),
        ));
    }
    let since = instant(query.since.as_deref(), "since")?;
    let until = instant(query.until.as_deref(), "until")?;
    if let (Some(since), Some(until)) = (since, until)
        && since >= until
    {
        return Err(ApiError::invalid_parameter(
            "until",
            "until must be later than since",
        ));
    }
    let customer = query_text(query.customer_id.as_deref()).map(str::to_owned);
    if customer.as_ref().is_some_and(|c| c.chars().count() > 255) {
        return Err(ApiError::invalid_parameter(
            "customer_id",
            "customer_id must be at most 255 characters",
        ));
    }
    Ok(PaymentListRequest {
        paging,
        filter: PaymentFilter {
            statuses: statuses(query.status.as_deref())?,
            currency,
            min_amount,
            max_amount,
            stripe_customer_id: None,
            since,
            until,
        },
        customer,
    })
}

/// One page of the caller's payments from the mirror, newest first, and the total.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    request: PaymentListRequest,
) -> Result<Page<PaymentRow>, ApiError> {
    let mut filter = request.filter;
    if let Some(raw) = &request.customer {
        // A customer the caller cannot see simply matches nothing (as on subscriptions).
        filter.stripe_customer_id = Some(owned::customer_filter(state, caller, raw).await?);
    }
    let tenant_id = caller.tenant.id.clone();
    let visibility = caller.visibility();
    let paging = request.paging;
    state
        .db
        .run(move |conn| {
            listing::snapshot(conn, paging.offset_page(), |conn| {
                let start = paging::start(&paging, "payment", |id| {
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
