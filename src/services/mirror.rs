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

/// A table's `record` for objects with an owner: (tenant id, owner, snapshot, now).
type RecordOwned<T, R> = fn(&mut AnyConnection, &str, &str, &T, i64) -> diesel::QueryResult<R>;

/// Writes Stripe's answer with `record`; the caller is recorded as the owner of a new row.
async fn owned<T, R>(
    state: &AppState,
    caller: &Caller,
    snapshot: T,
    record: RecordOwned<T, R>,
) -> Result<R, ApiError>
where
    T: Send + 'static,
    R: Send + 'static,
{
    let tenant_id = caller.tenant.id.clone();
    let owner = caller.subject.clone();
    let now = chrono::Utc::now().timestamp();
    state
        .db
        .run(move |conn| record(conn, &tenant_id, &owner, &snapshot, now).map_err(ApiError::from))
        .await
}

/// Writes Stripe's payment into the mirror; the caller owns a new row.
pub async fn payment(
    state: &AppState,
    caller: &Caller,
    snapshot: PaymentSnapshot,
) -> Result<PaymentRow, ApiError> {
    owned(state, caller, snapshot, payment_rows::record).await
}

/// Writes Stripe's checkout session into the mirror; the caller owns a new row.
pub async fn checkout_session(
    state: &AppState,
    caller: &Caller,
    snapshot: CheckoutSnapshot,
) -> Result<CheckoutSessionRow, ApiError> {
    owned(state, caller, snapshot, session_rows::record).await
}

/// Writes Stripe's refund into the mirror; the caller owns a new row.
pub async fn refund(
    state: &AppState,
    caller: &Caller,
    snapshot: RefundSnapshot,
) -> Result<RefundRow, ApiError> {
    owned(state, caller, snapshot, refund_rows::record).await
}

/// Writes Stripe's subscription into the mirror.
pub async fn subscription(
    state: &AppState,
    caller: &Caller,
    snapshot: SubscriptionSnapshot,
) -> Result<SubscriptionRow, ApiError> {
    let tenant_id = caller.tenant.id.clone();
    let now = chrono::Utc::now().timestamp();
    state
        .db
        .run(move |conn| {
            subscription_rows::record(conn, &tenant_id, &snapshot, now).map_err(ApiError::from)
        })
        .await
}
