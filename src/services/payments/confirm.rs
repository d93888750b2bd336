//! Confirming a payment at Stripe (with a payment method, or the one it has).

use serde::Deserialize;

use super::declined;
use crate::caller::Caller;
use crate::db::payments::PaymentRow;
use crate::domain::{optional_text, parse_web_url, stripe_id};
use crate::error::ApiError;
use crate::services::{mirror, owned};
use crate::state::AppState;
use crate::stripe::GatewayError;
use crate::stripe::requests::PaymentConfirmation;

/// The raw fields of a confirmation (spec 001's `payment_method`, spec 002's
/// `payment_method_id`).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct ConfirmPaymentFields {
    /// The payment method to pay with: a `pm_` id or a test token such as `pm_card_visa`.
    /// Required unless the payment already has one.
    pub payment_method: Option<String>,
    /// Same as `payment_method`.
    pub payment_method_id: Option<String>,
    /// Where Stripe sends the customer back after a redirect (3-D Secure); absolute http(s).
    pub return_url: Option<String>,
}

/// A confirmation that passed validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfirmPayment {
    pub payment_method: Option<String>,
    pub return_url: Option<String>,
}

pub fn parse_confirm(fields: ConfirmPaymentFields, at: &str) -> Result<ConfirmPayment, ApiError> {
    let (raw, pointer) = match (fields.payment_method, fields.payment_method_id) {
        (Some(pm), _) => (Some(pm), format!("{at}/payment_method")),
        (None, pm) => (pm, format!("{at}/payment_method_id")),
    };
    let payment_method = optional_text(raw, &pointer, 255)?
        .map(|pm| stripe_id(&pm, &["pm_", "card_", "src_"], &pointer, "payment method"))
        .transpose()?;
    let return_url = optional_text(fields.return_url, &format!("{at}/return_url"), 2048)?
        .map(|url| parse_web_url(&url, &format!("{at}/return_url")))
        .transpose()?;
    Ok(ConfirmPayment {
        payment_method,
        return_url,
    })
}

/// Confirms the caller's payment at Stripe and mirrors Stripe's answer. A decline keeps
/// Stripe's codes (402 `card_declined`); the intent the decline changed is mirrored first.
pub async fn confirm_payment(
    state: &AppState,
    caller: &Caller,
    any_id: &str,
    confirm: ConfirmPayment,
    at: &str,
) -> Result<PaymentRow, ApiError> {
    let row = owned::find_payment(state, caller, any_id).await?;
    if confirm.payment_method.is_none() && row.payment_method.is_none() {
        return Err(ApiError::validation(
            format!("{at}/payment_method"),
            "payment_method is required: this payment has no payment method yet",
        ));
    }
    let stripe = &caller.tenant.stripe;
    let id = &row.stripe_payment_intent_id;
    match stripe
        .confirm_payment_intent(
            id,
            PaymentConfirmation {
                payment_method: confirm.payment_method,
                return_url: confirm.return_url,
                off_session: false,
            },
            caller.stripe_key(),
        )
        .await
    {
        Ok(snapshot) => mirror::payment(state, caller, snapshot).await,
        Err(GatewayError::Stripe(mut failure)) if failure.error_type == "card_error" => {
            if failure.payment_intent.is_none() {
                // Not every answer carries the intent: read the state the decline left.
                match stripe.retrieve_payment_intent(id).await {
                    Ok(current) => failure.payment_intent = Some(Box::new(current)),
                    Err(err) => tracing::warn!(error = %err, "re-reading a declined payment"),
                }
            }
            Err(declined(state, caller, failure).await)
        }
        Err(err) => Err(err.into()),
    }
}
