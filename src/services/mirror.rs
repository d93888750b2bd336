//! Stripe's answer recorded in the mirror: what a service writes after each Stripe call.

use crate::auth::Caller;
use crate::db::payments::{self as payment_rows, PaymentRow};
use crate::db::subscriptions::{self as subscription_rows, SubscriptionRow};
use crate::error::ApiError;
use crate::state::AppState;
use crate::stripe::objects::{PaymentSnapshot, SubscriptionSnapshot};

/// Writes Stripe's payment into the mirror; the caller is recorded as the owner of a new row.
pub async fn payment(
    state: &AppState,
    caller: &Caller,
    snapshot: PaymentSnapshot,
) -> Result<PaymentRow, ApiError> {
    let tenant_id = caller.tenant.id.clone();
    let owner = caller.subject.clone();
    let now = chrono::Utc::now().timestamp();
    state
        .db
        .run(move |conn| {
            payment_rows::record(conn, &tenant_id, &owner, &snapshot, now).map_err(ApiError::from)
        })
        .await
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
