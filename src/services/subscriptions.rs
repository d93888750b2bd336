//! Subscriptions: validated input, the Stripe calls, and the mirror row updated from Stripe's
//! answer in the same request.

use serde::Deserialize;

use crate::caller::Caller;
use crate::db::listing::{self, Page};
use crate::db::subscriptions::{self as rows, ListFilter, SubscriptionRow};
use crate::domain::paging::{FirstPage, Paging};
use crate::domain::{Metadata, bounded, optional_text, query_text, stripe_id};
use crate::error::ApiError;
use crate::services::policy::{Choice, Gate};
use crate::services::{mirror, owned, paging};
use crate::state::AppState;
use crate::stripe::requests::{NewSubscription, SubscriptionChange};

/// Stripe's subscription statuses, the values `status=` may filter on.
pub const STATUSES: [&str; 8] = [
    "incomplete",
    "incomplete_expired",
    "trialing",
    "active",
    "past_due",
    "canceled",
    "unpaid",
    "paused",
];

const PRORATION_BEHAVIORS: [&str; 3] = ["create_prorations", "none", "always_invoice"];

/// The raw fields of a create-subscription request (spec and SDK shapes).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct CreateSubscriptionFields {
    /// A `cus_` id, our customer unique id or the user unique id. Required.
    pub customer_id: Option<String>,
    /// The recurring price (the spec's name). Required, or `subscription_price_id`.
    pub price_id: Option<String>,
    /// The SDK's name for `price_id`.
    pub subscription_price_id: Option<String>,
    /// A one-time price added to the first invoice.
    pub setup_price_id: Option<String>,
    pub quantity: Option<i64>,
    /// 0 means no trial.
    pub trial_period_days: Option<i64>,
    pub coupon: Option<String>,
    /// A payment method to attach to the customer and bill the subscription with.
    pub card_token: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    pub description: Option<String>,
}

/// The raw fields of an update.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct UpdateSubscriptionFields {
    pub price_id: Option<String>,
    pub subscription_price_id: Option<String>,
    /// `create_prorations` (Stripe's default), `none` or `always_invoice`.
    pub proration_behavior: Option<String>,
    pub cancel_at_period_end: Option<bool>,
    pub quantity: Option<i64>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

crate::domain::paging::paged_query! {
    /// The list's filters and paging.
    pub struct ListQuery {
        /// A `cus_` id or our customer unique id.
        pub customer_id: Option<String>,
        pub status: Option<String>,
    }
}

fn price(raw: &str, pointer: &str) -> Result<String, ApiError> {
    stripe_id(raw, &["price_", "plan_"], pointer, "price")
}

fn quantity(raw: Option<i64>, pointer: &str) -> Result<Option<u64>, ApiError> {
    raw.map(|q| bounded(q, 1, 999_999, pointer, "quantity").map(|q| q.unsigned_abs()))
        .transpose()
}

/// A checked create-subscription request: what to send Stripe, the customer as named, and the
/// money-moving choices it makes (the tenant's policy decides).
pub struct SubscriptionRequest {
    pub new: NewSubscription,
    pub customer: String,
    pub gates: Vec<Gate>,
}

pub fn parse_new(
    fields: CreateSubscriptionFields,
    at: &str,
) -> Result<SubscriptionRequest, ApiError> {
    let customer = optional_text(fields.customer_id, &format!("{at}/customer_id"), 255)?
        .ok_or_else(|| {
            ApiError::validation(format!("{at}/customer_id"), "customer_id is required")
        })?;
    let (raw_price, price_pointer) = match (fields.price_id, fields.subscription_price_id) {
        (Some(p), _) => (p, format!("{at}/price_id")),
        (None, Some(p)) => (p, format!("{at}/subscription_price_id")),
        (None, None) => {
            return Err(ApiError::validation(
                format!("{at}/price_id"),
                "price_id (or subscription_price_id) is required",
            ));
        }
    };
    let trial_period_days = fields
        .trial_period_days
        .map(|d| {
            bounded(
                d,
                0,
                730,
                &format!("{at}/trial_period_days"),
                "trial_period_days",
            )
        })
        .transpose()?
        .and_then(|d| u32::try_from(d).ok());
    let card_token = optional_text(fields.card_token, &format!("{at}/card_token"), 255)?
        .map(|t| {
            stripe_id(
                &t,
                &["pm_", "card_", "tok_"],
                &format!("{at}/card_token"),
                "payment method",
            )
        })
        .transpose()?;
    let setup_price = optional_text(fields.setup_price_id, &format!("{at}/setup_price_id"), 255)?
        .map(|p| price(&p, &format!("{at}/setup_price_id")))
        .transpose()?;
    let new = NewSubscription {
        customer: String::new(),
        price: price(&raw_price, &price_pointer)?,
        setup_price,
        quantity: quantity(fields.quantity, &format!("{at}/quantity"))?,
        trial_period_days,
        coupon: optional_text(fields.coupon, &format!("{at}/coupon"), 255)?,
        card_token,
        description: optional_text(fields.description, &format!("{at}/description"), 500)?,
        metadata: Metadata::parse(fields.metadata.as_ref(), &format!("{at}/metadata"))?.0,
    };
    let mut gates = vec![Gate::Price(new.price.clone(), price_pointer)];
    if let Some(setup) = &new.setup_price {
        gates.push(Gate::Price(setup.clone(), format!("{at}/setup_price_id")));
    }
    if new.trial_period_days.is_some_and(|d| d > 0) {
        gates.push(Gate::Choice(
            Choice::TrialPeriodDays,
            format!("{at}/trial_period_days"),
        ));
    }
    if let Some(coupon) = &new.coupon {
        gates.push(Gate::Coupon(coupon.clone(), format!("{at}/coupon")));
    }
    Ok(SubscriptionRequest {
        new,
        customer,
        gates,
    })
}

/// A checked change and the money-moving choices it makes.
pub struct ChangeRequest {
    pub change: SubscriptionChange,
    pub gates: Vec<Gate>,
}

pub fn parse_change(fields: UpdateSubscriptionFields, at: &str) -> Result<ChangeRequest, ApiError> {
    let mut gates = Vec::new();
    let price = match (fields.price_id, fields.subscription_price_id) {
        (Some(p), _) => Some((
            price(&p, &format!("{at}/price_id"))?,
            format!("{at}/price_id"),
        )),
        (None, Some(p)) => Some((
            price(&p, &format!("{at}/subscription_price_id"))?,
            format!("{at}/subscription_price_id"),
        )),
        (None, None) => None,
    };
    let price = price.map(|(id, pointer)| {
        gates.push(Gate::Price(id.clone(), pointer));
        id
    });
    let proration_behavior = optional_text(
        fields.proration_behavior,
        &format!("{at}/proration_behavior"),
        40,
    )?;
    if let Some(b) = &proration_behavior
        && !PRORATION_BEHAVIORS.contains(&b.as_str())
    {
        return Err(ApiError::validation(
            format!("{at}/proration_behavior"),
            format!(
                "proration_behavior must be create_prorations, none or always_invoice (got {b:?})"
            ),
        ));
    }
    if proration_behavior.as_deref() == Some("none") {
        gates.push(Gate::Choice(
            Choice::ProrationNone,
            format!("{at}/proration_behavior"),
        ));
    }
    let metadata = match fields.metadata {
        Some(value) => Some(Metadata::parse(Some(&value), &format!("{at}/metadata"))?.0),
        None => None,
    };
    let change = SubscriptionChange {
        price,
        proration_behavior,
        cancel_at_period_end: fields.cancel_at_period_end,
        quantity: quantity(fields.quantity, &format!("{at}/quantity"))?,
        metadata,
    };
    if change.price.is_none()
        && change.cancel_at_period_end.is_none()
        && change.quantity.is_none()
        && change.metadata.is_none()
    {
        return Err(ApiError::validation(
            at.to_owned(),
            "nothing to change: send price_id, quantity, cancel_at_period_end or metadata",
        ));
    }
    Ok(ChangeRequest { change, gates })
}

pub async fn create(
    state: &AppState,
    caller: &Caller,
    request: SubscriptionRequest,
) -> Result<SubscriptionRow, ApiError> {
    crate::services::policy::enforce(state, caller, &request.gates).await?;
    let mut new = request.new;
    new.customer = owned::resolve_customer(state, caller, &request.customer)
        .await?
        .stripe_id;
    let snapshot = caller
        .tenant
        .stripe
        .create_subscription(new, caller.stripe_key())
        .await?;
    mirror::subscription(state, caller, snapshot).await
}

pub async fn update(
    state: &AppState,
    caller: &Caller,
    any_id: &str,
    request: ChangeRequest,
) -> Result<SubscriptionRow, ApiError> {
    let row = owned::find_subscription(state, caller, any_id).await?;
    crate::services::policy::enforce(state, caller, &request.gates).await?;
    let change = request.change;
    let snapshot = caller
        .tenant
        .stripe
        .update_subscription(&row.stripe_subscription_id, change, caller.stripe_key())
        .await?;
    mirror::subscription(state, caller, snapshot).await
}

pub async fn cancel(
    state: &AppState,
    caller: &Caller,
    any_id: &str,
) -> Result<SubscriptionRow, ApiError> {
    let row = owned::find_subscription(state, caller, any_id).await?;
    let snapshot = caller
        .tenant
        .stripe
        .cancel_subscription(&row.stripe_subscription_id, caller.stripe_key())
        .await?;
    mirror::subscription(state, caller, snapshot).await
}

/// A validated list request.
#[derive(Debug)]
pub struct ListRequest {
    pub paging: Paging,
    pub customer: Option<String>,
    pub status: Option<String>,
}

pub fn parse_list(query: &ListQuery) -> Result<ListRequest, ApiError> {
    let status = query_text(query.status.as_deref());
    if let Some(s) = status
        && !STATUSES.contains(&s)
    {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("status must be one of {} (got {s:?})", STATUSES.join(", ")),
        )
        .with_parameter("status"));
    }
    Ok(ListRequest {
        paging: Paging::parse(query.paging(), FirstPage::Pages)?,
        customer: query_text(query.customer_id.as_deref()).map(str::to_owned),
        status: status.map(str::to_owned),
    })
}

/// One page of the caller's subscriptions, newest first, and the total.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    request: ListRequest,
) -> Result<Page<SubscriptionRow>, ApiError> {
    let stripe_customer_id = match &request.customer {
        // A customer the caller cannot see simply matches nothing.
        Some(raw) => Some(owned::customer_filter(state, caller, raw).await?),
        None => None,
    };
    let tenant_id = caller.tenant.id.clone();
    let visibility = caller.visibility();
    let filter = ListFilter {
        stripe_customer_id,
        status: request.status,
    };
    state
        .db
        .run(move |conn| {
            listing::snapshot(conn, request.paging.offset_page(), |conn| {
                let start = paging::start(&request.paging, "subscription", |id| {
                    rows::list_position(conn, &tenant_id, id, &visibility)
                })?;
                let limit = request.paging.limit();
                rows::list(conn, &tenant_id, &visibility, &filter, &start, limit)
                    .map_err(ApiError::from)
            })
        })
        .await
}
