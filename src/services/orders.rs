//! Orders (issue 12, point 5): what a payment for an `order_unique_id` charges, recorded by
//! the tenant's backend (`PUT /stripe/orders/{id}`, admins) or answered by the tenant's
//! `order_lookup_url`, so that end users pay orders without ever naming an amount (the
//! published SDK's `createPaymentIntent` sends none).

use crate::caller::Caller;
use crate::db::orders::{self as rows, OrderRow, OrderTerms, Recorded};
use crate::error::ApiError;
pub use crate::orders::terms::{MAX_AMOUNT, OrderFields, PAYMENT_LEASE, parse_terms};
use crate::state::AppState;

/// A client's order id: 1 to 255 printable characters.
pub fn order_id(raw: &str, pointer: &str) -> Result<String, ApiError> {
    let id = raw.trim();
    // `.` and `..` would be read as path steps when the id is sent to the app's lookup URL.
    if id.is_empty() || id == "." || id == ".." || crate::domain::ids::id_problem(id).is_some() {
        return Err(ApiError::validation(
            pointer,
            "order_unique_id must be 1 to 255 printable characters",
        ));
    }
    Ok(id.to_owned())
}

/// Records (or, while unpaid, changes) an order; admins only. Returns the row and whether it
/// was new. Changing a paid order's terms is 409 `order_paid`.
pub async fn record(
    state: &AppState,
    caller: &Caller,
    order_unique_id: String,
    terms: OrderTerms,
) -> Result<(OrderRow, bool), ApiError> {
    caller.require_admin("record orders")?;
    let tenant_id = caller.tenant.id.clone();
    let recorded = state
        .db
        .run(move |conn| {
            let claimed_after = chrono::Utc::now().naive_utc() - PAYMENT_LEASE;
            rows::record_order(
                conn,
                &tenant_id,
                &order_unique_id,
                &terms,
                "recorded",
                claimed_after,
            )
            .map(|r| (r, terms))
            .map_err(ApiError::from)
        })
        .await?;
    match recorded {
        (Recorded::Created(row), _) => Ok((row, true)),
        (Recorded::Updated(row), _) => Ok((row, false)),
        (Recorded::Busy(_), _) => Err(payment_in_progress()),
        (Recorded::Paid(row), terms) if row.terms() == terms => Ok((row, false)),
        (Recorded::Paid(row), _) => Err(ApiError::new(
            actix_web::http::StatusCode::CONFLICT,
            "order_paid",
            "Order already paid",
            format!(
                "Order {:?} has a payment ({}); its terms can no longer change.",
                row.order_unique_id,
                row.stripe_payment_intent_id.as_deref().unwrap_or_default()
            ),
        )),
    }
}

/// Whether the caller may read and pay `order`: admins, and the user it is for. An order that
/// names no user is the app's backend's to pay: were any user allowed, a stranger could
/// attach a payment to it and lock out the buyer.
fn open_to(order: &OrderRow, caller: &Caller) -> bool {
    caller.admin || order.user_unique_id.as_deref() == Some(caller.subject.as_str())
}

/// 409 `order_payment_in_progress`.
pub fn payment_in_progress() -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::CONFLICT,
        "order_payment_in_progress",
        "Payment in progress",
        "A request is creating this order's payment right now; retry in a moment.",
    )
}

fn not_found(order_unique_id: &str) -> ApiError {
    ApiError::not_found(format!("No order {order_unique_id:?} in this app."))
}

/// `GET /stripe/orders/{id}`: admins, or the user it was recorded for; 404 for anyone else (an
/// order for no one in particular is read by admins only).
pub async fn read(
    state: &AppState,
    caller: &Caller,
    order_unique_id: &str,
) -> Result<OrderRow, ApiError> {
    let order = find(state, caller, order_unique_id)
        .await?
        .ok_or_else(|| not_found(order_unique_id))?;
    if open_to(&order, caller) {
        Ok(order)
    } else {
        Err(not_found(order_unique_id))
    }
}

async fn find(
    state: &AppState,
    caller: &Caller,
    order_unique_id: &str,
) -> Result<Option<OrderRow>, ApiError> {
    let (tenant_id, wanted) = (caller.tenant.id.clone(), order_unique_id.to_owned());
    state
        .db
        .run(move |conn| rows::find_order(conn, &tenant_id, &wanted).map_err(ApiError::from))
        .await
}

/// The order a payment is for: recorded, or (when the tenant set an `order_lookup_url`)
/// looked up now and recorded. Unknown, or another user's: 404.
pub async fn for_payment(
    state: &AppState,
    caller: &Caller,
    order_unique_id: &str,
) -> Result<OrderRow, ApiError> {
    let order = match find(state, caller, order_unique_id).await? {
        Some(order) => order,
        None => {
            // An admin's lookup is for no user in particular.
            let subject = (!caller.admin).then_some(caller.subject.as_str());
            let context = state.order_lookup();
            crate::orders::lookup::look_up(&context, &caller.tenant.id, subject, order_unique_id)
                .await?
                .ok_or_else(|| not_found(order_unique_id))?
        }
    };
    if open_to(&order, caller) {
        Ok(order)
    } else {
        Err(not_found(order_unique_id))
    }
}

/// Claims the right to create `order`'s payment (see [`rows::claim_payment`]).
pub async fn claim_payment(
    state: &AppState,
    order: &OrderRow,
) -> Result<rows::PaymentClaim, ApiError> {
    let id = order.id.clone();
    state
        .db
        .run(move |conn| rows::claim_payment(conn, &id, PAYMENT_LEASE).map_err(ApiError::from))
        .await
}

/// Drops `order`'s payment intent `pi` (canceled at Stripe) so a new one can be made.
pub async fn drop_payment(state: &AppState, order: &OrderRow, pi: &str) -> Result<(), ApiError> {
    let (id, pi) = (order.id.clone(), pi.to_owned());
    state
        .db
        .run(move |conn| rows::drop_payment(conn, &id, &pi).map_err(ApiError::from))
        .await
}

/// Gives the claim up: Stripe created nothing, so a corrected retry may try again at once.
pub async fn release_payment(state: &AppState, order: &OrderRow) {
    let id = order.id.clone();
    let released = state
        .db
        .run(move |conn| rows::release_payment(conn, &id).map_err(ApiError::from))
        .await;
    if let Err(err) = released {
        // The lease lapses on its own.
        tracing::warn!(error = %err.detail, "releasing an order's payment claim");
    }
}

/// Notes the payment intent that pays `order` (the first one noted wins); returns it.
pub async fn mark_paid(
    state: &AppState,
    order: &OrderRow,
    payment_intent: &str,
) -> Result<String, ApiError> {
    let (id, pi) = (order.id.clone(), payment_intent.to_owned());
    state
        .db
        .run(move |conn| rows::mark_paid(conn, &id, &pi).map_err(ApiError::from))
        .await
}
