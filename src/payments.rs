//! Payments: a payment intent created at Stripe (and confirmed when a payment method is
//! given), mirrored.

use serde::Deserialize;

use crate::auth::Caller;
use crate::customers::resolve_customer;
use crate::db::payments::{self as rows, PaymentRow};
use crate::db::{Applied, Freshness};
use crate::domain::{Metadata, bounded, currency, optional_text, stripe_id};
use crate::error::ApiError;
use crate::gateway::payments::NewPayment;
use crate::state::AppState;

/// The raw fields of a create-payment request (spec and SDK shapes).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct CreatePaymentFields {
    /// In the currency's smallest unit (999 = $9.99). Required.
    pub amount: Option<i64>,
    /// Three-letter ISO code. Required.
    pub currency: Option<String>,
    pub customer_id: Option<String>,
    /// A `pm_` id or a test token such as `pm_card_visa`: the payment is confirmed at once.
    pub payment_method: Option<String>,
    pub description: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// The SDK's order and entity fields, kept in Stripe metadata.
    pub order_unique_id: Option<String>,
    pub identity_type: Option<String>,
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
}

/// Stripe's ceiling for one charge in the smallest unit (99,999,999, i.e. $999,999.99).
const MAX_AMOUNT: i64 = 99_999_999;

pub fn parse(
    fields: CreatePaymentFields,
    at: &str,
) -> Result<(NewPayment, Option<String>), ApiError> {
    let amount = fields.amount.ok_or_else(|| {
        ApiError::validation(
            format!("{at}/amount"),
            "amount is required: an integer in the currency's smallest unit (999 for $9.99)",
        )
    })?;
    let amount = bounded(amount, 1, MAX_AMOUNT, &format!("{at}/amount"), "amount")?;
    let currency = match optional_text(fields.currency, &format!("{at}/currency"), 3)? {
        Some(raw) => currency(&raw, &format!("{at}/currency"))?,
        None => {
            return Err(ApiError::validation(
                format!("{at}/currency"),
                "currency is required, e.g. usd",
            ));
        }
    };
    let payment_method =
        optional_text(fields.payment_method, &format!("{at}/payment_method"), 255)?
            .map(|pm| {
                stripe_id(
                    &pm,
                    &["pm_", "card_", "src_"],
                    &format!("{at}/payment_method"),
                    "payment method",
                )
            })
            .transpose()?;
    let mut metadata = Metadata::parse(fields.metadata.as_ref(), &format!("{at}/metadata"))?;
    for (key, value) in [
        ("order_unique_id", fields.order_unique_id),
        ("identity_type", fields.identity_type),
        ("entity_type", fields.entity_type),
        ("entity_id", fields.entity_id),
    ] {
        if let Some(value) = optional_text(value, &format!("{at}/{key}"), 500)? {
            metadata.0.insert(key.to_owned(), value);
        }
    }
    if metadata.0.len() > crate::domain::METADATA_MAX_KEYS {
        return Err(ApiError::validation(
            format!("{at}/metadata"),
            "metadata plus the order and entity fields exceed Stripe's 50 keys",
        ));
    }
    let customer = optional_text(fields.customer_id, &format!("{at}/customer_id"), 255)?;
    Ok((
        NewPayment {
            amount,
            currency,
            customer: None,
            payment_method,
            description: optional_text(fields.description, &format!("{at}/description"), 1000)?,
            metadata: metadata.0,
        },
        customer,
    ))
}

/// Creates the payment intent at Stripe and mirrors it. Returns the row and Stripe's
/// `client_secret` (shown to the caller, never stored).
pub async fn create_payment(
    state: &AppState,
    caller: &Caller,
    mut new: NewPayment,
    customer: Option<String>,
) -> Result<(PaymentRow, Option<String>), ApiError> {
    if let Some(raw) = customer {
        new.customer = Some(resolve_customer(state, caller, &raw).await?.stripe_id);
    }
    let mut snapshot = caller.tenant.stripe.create_payment_intent(new).await?;
    let client_secret = snapshot.client_secret.take();
    let tenant_id = caller.tenant.id.clone();
    let owner = caller.subject.clone();
    let now = chrono::Utc::now().timestamp();
    let row = state
        .db
        .run(move |conn| {
            rows::upsert(conn, &tenant_id, &owner, &snapshot, Freshness::Current(now))
                .map(Applied::into_row)
                .map_err(ApiError::from)
        })
        .await?;
    Ok((row, client_secret))
}
