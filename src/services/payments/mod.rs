//! Payments: a payment intent created at Stripe (and confirmed when a payment method is
//! given, or later), mirrored; and the list of the mirror. Creating one is here; paying an
//! order is `order.rs`, confirming `confirm.rs` and the list `list.rs`.

mod confirm;
mod list;
mod order;

use serde::Deserialize;

pub use confirm::{ConfirmPayment, ConfirmPaymentFields, confirm_payment, parse_confirm};
pub use list::{ListPaymentsQuery, PaymentListRequest, STATUSES, list, parse_list};

use crate::caller::Caller;
use crate::db::payments::PaymentRow;
use crate::domain::{
    Metadata, bounded, currency_field, optional_text, required_currency, stripe_id,
};
use crate::error::ApiError;
use crate::services::policy::{Choice, Gate};
use crate::services::{mirror, owned};
use crate::state::AppState;
use crate::stripe::objects::PaymentSnapshot;
use crate::stripe::requests::NewPayment;
use crate::stripe::{GatewayError, StripeFailure};

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
    /// A saved card (`POST /stripe/cards`: its unique id or `pm_` id), charged off-session;
    /// instead of `payment_method`.
    pub saved_card_id: Option<String>,
}

/// A checked create-payment request: the payment, and the customer, saved card and order as
/// named.
pub struct PaymentRequest {
    /// The amount and currency as named in the body (an order's are its own).
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub customer: Option<String>,
    pub payment_method: Option<String>,
    pub description: Option<String>,
    pub metadata: std::collections::HashMap<String, String>,
    pub saved_card: Option<String>,
    /// The order this pays (`order_unique_id`): its amount is charged.
    pub order: Option<String>,
    /// The money-moving choices the body makes (the tenant's policy decides).
    pub gates: Vec<Gate>,
    /// Where the fields are in the body (`/payment`), for errors found later.
    at: String,
}

/// Stripe's ceiling for one charge in the smallest unit (99,999,999, i.e. $999,999.99).
pub(crate) const MAX_AMOUNT: i64 = crate::services::orders::MAX_AMOUNT;

pub fn parse(fields: CreatePaymentFields, at: &str) -> Result<PaymentRequest, ApiError> {
    let order = optional_text(
        fields.order_unique_id.clone(),
        &format!("{at}/order_unique_id"),
        255,
    )?
    .map(|id| crate::services::orders::order_id(&id, &format!("{at}/order_unique_id")))
    .transpose()?;
    let amount = match (fields.amount, &order) {
        (Some(amount), _) => Some(bounded(
            amount,
            1,
            MAX_AMOUNT,
            &format!("{at}/amount"),
            "amount",
        )?),
        (None, Some(_)) => None,
        (None, None) => {
            return Err(ApiError::validation(
                format!("{at}/amount"),
                "amount is required: an integer in the currency's smallest unit (999 for $9.99), or pay an order recorded by the app (order_unique_id)",
            ));
        }
    };
    let currency = match &order {
        Some(_) => currency_field(fields.currency, &format!("{at}/currency"))?,
        None => Some(required_currency(
            fields.currency,
            &format!("{at}/currency"),
        )?),
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
    let saved_card = optional_text(fields.saved_card_id, &format!("{at}/saved_card_id"), 255)?;
    if saved_card.is_some() && payment_method.is_some() {
        return Err(ApiError::validation(
            format!("{at}/saved_card_id"),
            "give saved_card_id or payment_method, not both",
        ));
    }
    // Naming the amount is the merchant's choice; an order's amount is the merchant's already.
    let mut gates = Vec::new();
    if order.is_none() {
        gates.push(Gate::Choice(Choice::Amount, format!("{at}/amount")));
    }
    Ok(PaymentRequest {
        amount,
        currency,
        customer,
        payment_method,
        description: optional_text(fields.description, &format!("{at}/description"), 1000)?,
        metadata: metadata.0,
        saved_card,
        order,
        gates,
        at: at.to_owned(),
    })
}

/// What `POST /stripe/payments` did.
pub struct CreatedPayment {
    pub row: PaymentRow,
    /// Stripe's `client_secret` (shown to the caller, never stored).
    pub client_secret: Option<String>,
    /// The order already had this payment: nothing new was created (200, not 201).
    pub existing: bool,
}

/// Creates the payment intent at Stripe and mirrors it; for an order, the order's amount, and
/// the order's payment if it has one already (an order is never charged twice).
pub async fn create_payment(
    state: &AppState,
    caller: &Caller,
    request: PaymentRequest,
) -> Result<CreatedPayment, ApiError> {
    crate::services::policy::enforce(state, caller, &request.gates).await?;
    let at = request.at.clone();
    let mut new = NewPayment {
        amount: request.amount.unwrap_or_default(),
        currency: request.currency.clone().unwrap_or_default(),
        customer: None,
        payment_method: request.payment_method,
        description: request.description,
        metadata: request.metadata,
        off_session: false,
        idempotency_key: None,
        confirmed_later: false,
    };
    // The order first: a caller who may not pay it learns nothing else.
    let order = match &request.order {
        Some(id) => Some(crate::services::orders::for_payment(state, caller, id).await?),
        None => None,
    };
    if let Some(raw) = request.customer {
        new.customer = Some(
            owned::resolve_customer(state, caller, &raw)
                .await?
                .stripe_id,
        );
    }
    if let Some(raw) = request.saved_card {
        // The card's own customer pays; naming another customer is a mistake.
        let card = owned::find_saved_card(state, caller, &raw).await?;
        if new.customer.is_some() && new.customer != card.stripe_customer_id {
            return Err(ApiError::validation(
                format!("{at}/saved_card_id"),
                "this saved card belongs to another customer than customer_id",
            ));
        }
        new.customer = card.stripe_customer_id;
        new.payment_method = Some(card.stripe_payment_method_id);
        new.off_session = true;
    }
    if let Some(order) = order {
        let named = (request.amount, request.currency);
        return order::pay_order(state, caller, order, new, named, &at).await;
    }
    let snapshot = match caller
        .tenant
        .stripe
        .create_payment_intent(new, caller.stripe_key())
        .await
    {
        Ok(snapshot) => snapshot,
        Err(GatewayError::Stripe(failure)) => return Err(declined(state, caller, failure).await),
        Err(err) => return Err(err.into()),
    };
    answer(state, caller, snapshot, false).await
}

/// Stripe's state of a payment, mirrored, as the answer: the `client_secret` goes to the
/// caller and never into the mirror.
async fn answer(
    state: &AppState,
    caller: &Caller,
    mut snapshot: PaymentSnapshot,
    existing: bool,
) -> Result<CreatedPayment, ApiError> {
    let client_secret = snapshot.client_secret.take();
    let row = mirror::payment(state, caller, snapshot).await?;
    Ok(CreatedPayment {
        row,
        client_secret,
        existing,
    })
}

/// Stripe's refusal of a payment, as the caller's error. A decline leaves a payment intent
/// behind at Stripe (it comes with the error, or is read again): it is mirrored, owned by the
/// caller, and its `pi_` id and our unique id go in the error's `meta`, so the client can
/// retry with another card (`POST /stripe/payments/{id}/confirm`) and find it in the list
/// (`status=failed`) without waiting for a webhook.
async fn declined(state: &AppState, caller: &Caller, mut failure: Box<StripeFailure>) -> ApiError {
    let intent = failure.payment_intent.take().map(|intent| *intent);
    let error = ApiError::from(GatewayError::Stripe(failure));
    let Some(mut intent) = intent else {
        return error;
    };
    let pi = intent.id.clone();
    intent.client_secret = None;
    match mirror::payment(state, caller, intent).await {
        Ok(row) => error
            .with_meta("payment_intent_id", row.stripe_payment_intent_id)
            .with_meta("unique_id", row.id),
        Err(err) => {
            tracing::warn!(error = %err, stripe.object_id = %pi, "mirroring a declined payment");
            error.with_meta("payment_intent_id", pi)
        }
    }
}
