//! Paying an order: its terms, never twice, only with the intent the order names.

use super::{CreatedPayment, answer, declined};
use crate::caller::Caller;
use crate::db::orders::PaymentClaim;
use crate::domain::Metadata;
use crate::error::ApiError;
use crate::services::{mirror, owned};
use crate::state::AppState;
use crate::stripe::GatewayError;
use crate::stripe::objects::PaymentSnapshot;
use crate::stripe::requests::{NewPayment, PaymentConfirmation};

/// Pays an order, never twice and never for other terms than it has:
/// 1. the request claims the order (a lease; a concurrent one gets 409), and reads its terms
///    under the claim (they cannot change while it is held);
/// 2. the intent is created unconfirmed with Stripe's idempotency key of the order, its
///    attempt and these parameters (a request that died is answered the same intent when
///    retried), and at once becomes the order's payment;
/// 3. only then, with a payment method, is it confirmed: the only intent that can ever be
///    charged for the order is the one the order names.
///
/// A refusal that left no intent (Stripe's 4xx) frees the order at once; an unknown outcome
/// (time-out, Stripe's 5xx) keeps the claim until its lease ends, when a retry with the same
/// parameters is answered the intent Stripe may have made.
pub(super) async fn pay_order(
    state: &AppState,
    caller: &Caller,
    order: crate::db::orders::OrderRow,
    mut new: NewPayment,
    (amount, currency): (Option<i64>, Option<String>),
    at: &str,
) -> Result<CreatedPayment, ApiError> {
    let order = match order.stripe_payment_intent_id.clone() {
        Some(pi) => match existing_payment(state, caller, &order, &pi).await? {
            Some(paid) => return Ok(paid),
            // Its intent was canceled at Stripe: the order takes a new one.
            None => order,
        },
        None => order,
    };
    let order = match crate::services::orders::claim_payment(state, &order).await? {
        PaymentClaim::Claimed(order) => *order,
        PaymentClaim::Paid(pi) => {
            return match existing_payment(state, caller, &order, &pi).await? {
                Some(paid) => Ok(paid),
                None => Err(crate::services::orders::payment_in_progress()),
            };
        }
        PaymentClaim::Busy => return Err(crate::services::orders::payment_in_progress()),
    };
    let mismatch = if amount.is_some_and(|a| a != order.amount) {
        Some((
            "amount",
            format!(
                "order {:?} is for {} {}; leave amount out to pay it",
                order.order_unique_id, order.amount, order.currency
            ),
        ))
    } else if currency.as_ref().is_some_and(|c| c != &order.currency) {
        Some((
            "currency",
            format!(
                "order {:?} is in {}; leave currency out or send {}",
                order.order_unique_id, order.currency, order.currency
            ),
        ))
    } else {
        None
    };
    if let Some((field, detail)) = mismatch {
        crate::services::orders::release_payment(state, &order).await;
        return Err(ApiError::validation(format!("{at}/{field}"), detail));
    }
    // The order's terms are the merchant's: they win over anything the body says.
    new.amount = order.amount;
    new.currency = order.currency.clone();
    if order.description.is_some() {
        new.description = order.description.clone();
    }
    for (key, value) in Metadata::from_stored(&order.metadata)
        .as_object()
        .into_iter()
        .flatten()
    {
        if let Some(value) = value.as_str() {
            new.metadata.insert(key.clone(), value.to_owned());
        }
    }
    let confirm_with = new.payment_method.take();
    let off_session = new.off_session;
    new.off_session = false;
    new.confirmed_later = confirm_with.is_some();
    new.idempotency_key = Some(order_stripe_key(&order, &new));
    let created = match caller
        .tenant
        .stripe
        .create_payment_intent(new, caller.stripe_key())
        .await
    {
        Ok(created) => created,
        Err(err) => {
            let refused = matches!(&err, GatewayError::Stripe(f)
                if (400..500).contains(&f.http_status) && f.http_status != 429);
            if refused {
                crate::services::orders::release_payment(state, &order).await;
            }
            return Err(err.into());
        }
    };
    let paying = crate::services::orders::mark_paid(state, &order, &created.id).await?;
    if paying != created.id {
        // Another request paid the order first (after this one's claim lapsed).
        return match existing_payment(state, caller, &order, &paying).await? {
            Some(paid) => Ok(paid),
            None => Err(crate::services::orders::payment_in_progress()),
        };
    }
    let snapshot = match confirm_with {
        None => created,
        Some(pm) => match caller
            .tenant
            .stripe
            .confirm_payment_intent(
                &created.id,
                PaymentConfirmation {
                    payment_method: Some(pm),
                    return_url: None,
                    off_session,
                },
                caller.stripe_key(),
            )
            .await
        {
            Ok(confirmed) => PaymentSnapshot {
                client_secret: created.client_secret,
                ..confirmed
            },
            Err(GatewayError::Stripe(mut failure)) => {
                if failure.payment_intent.is_none() {
                    failure.payment_intent = Some(Box::new(created));
                }
                return Err(declined(state, caller, failure).await);
            }
            Err(err) => {
                // The intent is the order's; its state is read again by the next request.
                let _ = mirror::payment(state, caller, created).await;
                return Err(err.into());
            }
        },
    };
    answer(state, caller, snapshot, false).await
}

/// Stripe's idempotency key for creating an order's payment: the order, its attempt and the
/// parameters, so the same request retried gets the same intent back, and a corrected one (a
/// refused customer fixed) is not refused by Stripe as a reuse. Either way only the intent
/// the order names is ever confirmed.
fn order_stripe_key(order: &crate::db::orders::OrderRow, new: &NewPayment) -> String {
    use sha2::{Digest, Sha256};
    let metadata: std::collections::BTreeMap<_, _> = new.metadata.iter().collect();
    let canonical = serde_json::json!([
        new.amount,
        new.currency,
        new.customer,
        new.description,
        metadata,
        new.confirmed_later,
    ]);
    let digest = Sha256::digest(canonical.to_string().as_bytes());
    format!(
        "order-{}-{}-{}",
        order.id,
        order.payment_attempt,
        hex::encode(&digest[..12])
    )
}

/// An order's payment `pi`, as Stripe has it now (with its `client_secret`, so the browser
/// can confirm it), for a caller who may see it (another caller learns only that it is paid:
/// 409). `None` when the intent was canceled at Stripe: it is dropped from the order, which
/// can then be paid anew.
async fn existing_payment(
    state: &AppState,
    caller: &Caller,
    order: &crate::db::orders::OrderRow,
    pi: &str,
) -> Result<Option<CreatedPayment>, ApiError> {
    match owned::find_payment(state, caller, pi).await {
        Ok(_) => {}
        Err(err) if err.status.as_u16() == 404 => {
            return Err(ApiError::new(
                actix_web::http::StatusCode::CONFLICT,
                "order_paid",
                "Order already paid",
                "This order already has a payment.",
            ));
        }
        Err(err) => return Err(err),
    }
    let snapshot = caller.tenant.stripe.retrieve_payment_intent(pi).await?;
    if snapshot.status == "canceled" {
        mirror::payment(state, caller, snapshot).await?;
        crate::services::orders::drop_payment(state, order, pi).await?;
        return Ok(None);
    }
    answer(state, caller, snapshot, true).await.map(Some)
}
