//! The caller's own objects in the mirror, found by any of their ids: another tenant's or
//! another user's object is 404 like one that does not exist (existence is never leaked).
//! Shared by the services that name a customer, a payment, a subscription or a saved card.

use crate::caller::Caller;
use crate::db::customers::{self as customer_rows, Customer};
use crate::db::payment_methods::{self as card_rows, PaymentMethodRow};
use crate::db::payments::{self as payment_rows, PaymentRow};
use crate::db::subscriptions::{self as subscription_rows, SubscriptionRow};
use crate::error::ApiError;
use crate::state::AppState;

/// The caller's customer named by any id form, or 404 (also for another tenant's or another
/// user's customer: existence is never leaked).
pub async fn find_customer(
    state: &AppState,
    caller: &Caller,
    any_id: &str,
) -> Result<Customer, ApiError> {
    let tenant_id = caller.tenant.id.clone();
    let visibility = caller.visibility();
    let wanted = any_id.to_owned();
    state
        .db
        .run(move |conn| {
            customer_rows::find_by_any_id(conn, &tenant_id, &wanted, &visibility)
                .map_err(ApiError::from)
        })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No customer {any_id:?} in this app.")))
}

/// A customer reference from a request body, resolved for the caller.
#[derive(Debug, Clone)]
pub struct CustomerRef {
    /// The `cus_...` id to send to Stripe.
    pub stripe_id: String,
    /// Our row, when the customer is mirrored.
    pub row: Option<Customer>,
}

/// Resolves `customer_id` (our unique id, the user unique id, or a `cus_` id). A customer the
/// caller cannot see is 404, like every other id. Admins may also name a `cus_` customer that
/// was created outside this service: Stripe then decides whether it exists.
pub async fn resolve_customer(
    state: &AppState,
    caller: &Caller,
    raw: &str,
) -> Result<CustomerRef, ApiError> {
    match find_customer(state, caller, raw).await {
        Ok(row) => Ok(CustomerRef {
            stripe_id: row.stripe_customer_id.clone(),
            row: Some(row),
        }),
        Err(err) if err.status.as_u16() == 404 && caller.admin && raw.starts_with("cus_") => {
            Ok(CustomerRef {
                stripe_id: raw.to_owned(),
                row: None,
            })
        }
        Err(err) => Err(err),
    }
}

/// The `cus_` id a list filters on for `customer_id`: a customer the caller cannot see simply
/// matches nothing (the raw id is kept, and no row has it).
pub async fn customer_filter(
    state: &AppState,
    caller: &Caller,
    raw: &str,
) -> Result<String, ApiError> {
    match find_customer(state, caller, raw).await {
        Ok(row) => Ok(row.stripe_customer_id),
        Err(err) if err.status.as_u16() == 404 => Ok(raw.to_owned()),
        Err(err) => Err(err),
    }
}

/// The caller's mirrored payment (our unique id or the `pi_` id), or 404.
pub async fn find_payment(
    state: &AppState,
    caller: &Caller,
    any_id: &str,
) -> Result<PaymentRow, ApiError> {
    let tenant_id = caller.tenant.id.clone();
    let (visibility, wanted) = (caller.visibility(), any_id.to_owned());
    state
        .db
        .run(move |conn| {
            payment_rows::find_visible(conn, &tenant_id, &wanted, &visibility)
                .map_err(ApiError::from)
        })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No payment {any_id:?} in this app.")))
}

/// The caller's mirrored subscription, or 404.
pub async fn find_subscription(
    state: &AppState,
    caller: &Caller,
    any_id: &str,
) -> Result<SubscriptionRow, ApiError> {
    let tenant_id = caller.tenant.id.clone();
    let (visibility, wanted) = (caller.visibility(), any_id.to_owned());
    state
        .db
        .run(move |conn| {
            subscription_rows::find_visible(conn, &tenant_id, &wanted, &visibility)
                .map_err(ApiError::from)
        })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No subscription {any_id:?} in this app.")))
}

/// A saved (attached) card of the caller's, by our unique id or `pm_` id; 404 otherwise.
pub async fn find_saved_card(
    state: &AppState,
    caller: &Caller,
    any_id: &str,
) -> Result<PaymentMethodRow, ApiError> {
    let (tenant_id, visibility) = (caller.tenant.id.clone(), caller.visibility());
    let wanted = any_id.to_owned();
    state
        .db
        .run(move |conn| {
            card_rows::find_visible(conn, &tenant_id, &wanted, &visibility).map_err(ApiError::from)
        })
        .await?
        .filter(|card| card.stripe_customer_id.is_some())
        .ok_or_else(|| ApiError::not_found(format!("No saved card {any_id:?} of yours.")))
}
