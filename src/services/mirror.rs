//! Stripe's answer recorded in the mirror: what a service writes after each Stripe call.

use crate::caller::Caller;
use crate::db::AnyConnection;
use crate::db::checkout_sessions::{self as session_rows, CheckoutSessionRow};
use crate::db::payments::{self as payment_rows, PaymentRow};
use crate::db::refunds::{self as refund_rows, RefundRow};
use crate::db::subscriptions::{self as subscription_rows, SubscriptionRow};
use crate::error::ApiError;
use crate::state::AppState;
use crate::stripe::objects::{
    CheckoutSnapshot, PaymentSnapshot, RefundSnapshot, SubscriptionSnapshot,
};

/// Writes Stripe's answer with `record(conn, tenant id, caller's subject, now)` on the
/// blocking pool.
async fn write<R: Send + 'static>(
    state: &AppState,
    caller: &Caller,
    record: impl FnOnce(&mut AnyConnection, &str, &str, i64) -> diesel::QueryResult<R> + Send + 'static,
) -> Result<R, ApiError> {
    let tenant_id = caller.tenant.id.clone();
    let owner = caller.subject.clone();
    let now = chrono::Utc::now().timestamp();
    state
        .db
        .run(move |conn| record(conn, &tenant_id, &owner, now).map_err(ApiError::from))
        .await
}

/// Writes Stripe's payment into the mirror; the caller owns a new row.
pub async fn payment(
    state: &AppState,
    caller: &Caller,
    snapshot: PaymentSnapshot,
) -> Result<PaymentRow, ApiError> {
    write(state, caller, move |conn, tenant, owner, now| {
        payment_rows::record(conn, tenant, owner, &snapshot, now)
    })
    .await
}

/// Writes Stripe's checkout session into the mirror; the caller owns a new row.
pub async fn checkout_session(
    state: &AppState,
    caller: &Caller,
    snapshot: CheckoutSnapshot,
) -> Result<CheckoutSessionRow, ApiError> {
    write(state, caller, move |conn, tenant, owner, now| {
        session_rows::record(conn, tenant, owner, &snapshot, now)
    })
    .await
}

/// Writes Stripe's refund into the mirror; the caller owns a new row.
pub async fn refund(
    state: &AppState,
    caller: &Caller,
    snapshot: RefundSnapshot,
) -> Result<RefundRow, ApiError> {
    write(state, caller, move |conn, tenant, owner, now| {
        refund_rows::record(conn, tenant, owner, &snapshot, now)
    })
    .await
}

/// Writes Stripe's subscription into the mirror (subscriptions have no owner of their own:
/// they are seen through their customer).
pub async fn subscription(
    state: &AppState,
    caller: &Caller,
    snapshot: SubscriptionSnapshot,
) -> Result<SubscriptionRow, ApiError> {
    write(state, caller, move |conn, tenant, _owner, now| {
        subscription_rows::record(conn, tenant, &snapshot, now)
    })
    .await
}
