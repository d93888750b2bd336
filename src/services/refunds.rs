//! Refunds: all or part of a payment given back at Stripe, mirrored.

use serde::Deserialize;

use crate::caller::Caller;
use crate::db::listing::{self, Page};
use crate::db::refunds::{self as rows, RefundRow};
use crate::domain::paging::{FirstPage, Paging};
use crate::domain::{Metadata, bounded, optional_text, query_text};
use crate::error::ApiError;
use crate::services::{mirror, paging};
use crate::state::AppState;
use crate::stripe::requests::NewRefund;

/// The fields of a refund request.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct CreateRefundFields {
    /// The payment to refund: our unique id or the `pi_` id. Required (or
    /// `payment_intent_id`).
    pub payment_id: Option<String>,
    /// Seed 001's name for the payment: the `pi_` id (our unique id is taken too). Either
    /// this or `payment_id`; both must then name the same payment.
    pub payment_intent_id: Option<String>,
    /// In the currency's smallest unit; omitted: everything not refunded yet.
    pub amount: Option<i64>,
    /// `duplicate`, `fraudulent` or `requested_by_customer`.
    pub reason: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

const REASONS: [&str; 3] = ["duplicate", "fraudulent", "requested_by_customer"];

/// A checked refund request: the payment as the caller named it, and what to send Stripe.
pub struct RefundRequest {
    payment: String,
    amount: Option<i64>,
    reason: Option<String>,
    metadata: Metadata,
}

pub fn parse(fields: CreateRefundFields, at: &str) -> Result<RefundRequest, ApiError> {
    let by_id = optional_text(fields.payment_id, &format!("{at}/payment_id"), 255)?;
    let by_intent = optional_text(
        fields.payment_intent_id,
        &format!("{at}/payment_intent_id"),
        255,
    )?;
    let payment = match (by_id, by_intent) {
        (Some(id), Some(intent)) if id != intent => {
            return Err(ApiError::validation(
                format!("{at}/payment_intent_id"),
                "payment_id and payment_intent_id name different payments: send one of them",
            ));
        }
        (Some(id), _) => id,
        (None, Some(intent)) => intent,
        (None, None) => {
            return Err(ApiError::validation(
                format!("{at}/payment_id"),
                "payment_id (or payment_intent_id) is required: the payment's unique_id or its pi_ id",
            ));
        }
    };
    let amount = fields
        .amount
        .map(|a| bounded(a, 1, 99_999_999, &format!("{at}/amount"), "amount"))
        .transpose()?;
    let reason = optional_text(fields.reason, &format!("{at}/reason"), 40)?;
    if let Some(r) = &reason
        && !REASONS.contains(&r.as_str())
    {
        return Err(ApiError::validation(
            format!("{at}/reason"),
            format!("reason must be one of {} (got {r:?})", REASONS.join(", ")),
        ));
    }
    Ok(RefundRequest {
        payment,
        amount,
        reason,
        metadata: Metadata::parse(fields.metadata.as_ref(), &format!("{at}/metadata"))?,
    })
}

/// Refunds (part of) a payment the caller may see. More than what is left: 422 before any
/// Stripe call (by the mirror), and Stripe's own refusal is kept as a backstop.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    request: RefundRequest,
    at: &str,
) -> Result<RefundRow, ApiError> {
    use crate::services::policy::{Choice, Gate, enforce};
    enforce(
        state,
        caller,
        &[Gate::Choice(Choice::Refunds, at.to_owned())],
    )
    .await?;
    let payment = crate::services::owned::find_payment(state, caller, &request.payment).await?;
    if payment.status != "succeeded" {
        return Err(ApiError::validation(
            format!("{at}/payment_id"),
            format!(
                "only a succeeded payment can be refunded; this one is {}",
                payment.status
            ),
        ));
    }
    let left = payment.amount - payment.amount_refunded;
    if left <= 0 {
        return Err(ApiError::validation(
            format!("{at}/payment_id"),
            "this payment has been refunded in full",
        ));
    }
    if let Some(amount) = request.amount
        && amount > left
    {
        return Err(ApiError::validation(
            format!("{at}/amount"),
            format!(
                "amount {amount} is more than what is left to refund ({left} {})",
                payment.currency
            ),
        ));
    }
    let refund = caller
        .tenant
        .stripe
        .create_refund(
            &NewRefund {
                payment_intent: payment.stripe_payment_intent_id.clone(),
                amount: request.amount,
                reason: request.reason,
                metadata: request.metadata.0,
            },
            caller.stripe_key(),
        )
        .await?;
    mirror::refund(state, caller, refund).await
}

crate::domain::paging::paged_query! {
    /// `payment_id` (optional) and paging (23blocks pages by default).
    pub struct ListQuery {
        /// Only the refunds of this payment (unique id or `pi_`).
        pub payment_id: Option<String>,
    }
}

/// One page of the refunds the caller may see, newest first, and the total.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    query: &ListQuery,
) -> Result<(Page<RefundRow>, Paging), ApiError> {
    let paging = Paging::parse(query.paging(), FirstPage::Pages)?;
    let payment = query_text(query.payment_id.as_deref()).map(str::to_owned);
    let tenant_id = caller.tenant.id.clone();
    let visibility = caller.visibility();
    let reading = paging.clone();
    let page = state
        .db
        .run(move |conn| {
            listing::snapshot(conn, reading.offset_page(), |conn| {
                let payment_intent = match &payment {
                    None => None,
                    Some(any) => Some(
                        crate::db::payments::find_visible(conn, &tenant_id, any, &visibility)?
                            .ok_or_else(|| {
                                ApiError::not_found(format!("No payment {any:?} of yours."))
                            })?
                            .stripe_payment_intent_id,
                    ),
                };
                let start = paging::start(&reading, "refund", |id| {
                    rows::list_position(conn, &tenant_id, id, &visibility)
                })?;
                Ok::<_, ApiError>(rows::list(
                    conn,
                    &tenant_id,
                    payment_intent.as_deref(),
                    &visibility,
                    &start,
                    reading.limit(),
                )?)
            })
        })
        .await?;
    Ok((page, paging))
}
