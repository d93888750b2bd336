//! Payments: a payment intent created at Stripe (and confirmed when a payment method is
//! given, or later), mirrored; and the list of the mirror.

use serde::Deserialize;

use crate::auth::Caller;
use crate::customers::resolve_customer;
use chrono::{DateTime, NaiveDateTime};

use crate::customers::find_customer;
use crate::db::orders::PaymentClaim;
use crate::db::payments::{self as rows, PaymentFilter, PaymentRow};
use crate::domain::{
    Metadata, PageRequest, bounded, currency, currency_field, optional_text, parse_web_url,
    query_text, required_currency, stripe_id,
};
use crate::error::ApiError;
use crate::policy::{Choice, Gate};
use crate::state::AppState;
use crate::stripe::objects::PaymentSnapshot;
use crate::stripe::requests::{NewPayment, PaymentConfirmation};
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
const MAX_AMOUNT: i64 = crate::orders::MAX_AMOUNT;

pub fn parse(fields: CreatePaymentFields, at: &str) -> Result<PaymentRequest, ApiError> {
    let order = optional_text(
        fields.order_unique_id.clone(),
        &format!("{at}/order_unique_id"),
        255,
    )?
    .map(|id| crate::orders::order_id(&id, &format!("{at}/order_unique_id")))
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
    crate::policy::enforce(state, caller, &request.gates).await?;
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
        Some(id) => Some(crate::orders::for_payment(state, caller, id).await?),
        None => None,
    };
    if let Some(raw) = request.customer {
        new.customer = Some(resolve_customer(state, caller, &raw).await?.stripe_id);
    }
    if let Some(raw) = request.saved_card {
        // The card's own customer pays; naming another customer is a mistake.
        let card = crate::cards::find_saved(state, caller, &raw).await?;
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
        return pay_order(state, caller, order, new, named, &at).await;
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
async fn pay_order(
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
    let order = match crate::orders::claim_payment(state, &order).await? {
        PaymentClaim::Claimed(order) => *order,
        PaymentClaim::Paid(pi) => {
            return match existing_payment(state, caller, &order, &pi).await? {
                Some(paid) => Ok(paid),
                None => Err(crate::orders::payment_in_progress()),
            };
        }
        PaymentClaim::Busy => return Err(crate::orders::payment_in_progress()),
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
        crate::orders::release_payment(state, &order).await;
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
                crate::orders::release_payment(state, &order).await;
            }
            return Err(err.into());
        }
    };
    let paying = crate::orders::mark_paid(state, &order, &created.id).await?;
    if paying != created.id {
        // Another request paid the order first (after this one's claim lapsed).
        return match existing_payment(state, caller, &order, &paying).await? {
            Some(paid) => Ok(paid),
            None => Err(crate::orders::payment_in_progress()),
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
                let _ = mirror(state, caller, created).await;
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
    match find_payment(state, caller, pi).await {
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
        mirror(state, caller, snapshot).await?;
        crate::orders::drop_payment(state, order, pi).await?;
        return Ok(None);
    }
    answer(state, caller, snapshot, true).await.map(Some)
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
    let row = mirror(state, caller, snapshot).await?;
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
    match mirror(state, caller, intent).await {
        Ok(row) => error
            .with_meta("payment_intent_id", row.stripe_payment_intent_id)
            .with_meta("unique_id", row.id),
        Err(err) => {
            tracing::warn!(error = %err, stripe.object_id = %pi, "mirroring a declined payment");
            error.with_meta("payment_intent_id", pi)
        }
    }
}

/// Writes Stripe's answer into the mirror; the caller is recorded as the owner of a new row.
async fn mirror(
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
            rows::record(conn, &tenant_id, &owner, &snapshot, now).map_err(ApiError::from)
        })
        .await
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
            rows::find_visible(conn, &tenant_id, &wanted, &visibility).map_err(ApiError::from)
        })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No payment {any_id:?} in this app.")))
}

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
    let row = find_payment(state, caller, any_id).await?;
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
        Ok(snapshot) => mirror(state, caller, snapshot).await,
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

/// Stripe's payment intent statuses.
pub const STATUSES: [&str; 7] = [
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "processing",
    "requires_capture",
    "canceled",
    "succeeded",
];

/// The payments service's status names (spec 002) and the Stripe statuses each stands for. A
/// declined intent goes back to `requires_payment_method` at Stripe, so `failed` includes it.
const STATUS_ALIASES: [(&str, &[&str]); 3] = [
    ("completed", &["succeeded"]),
    (
        "pending",
        &[
            "requires_confirmation",
            "requires_action",
            "processing",
            "requires_capture",
        ],
    ),
    ("failed", &["requires_payment_method", "canceled"]),
];

/// `GET /stripe/payments`: filters and 23blocks paging.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListPaymentsQuery {
    /// From 1.
    pub page: Option<String>,
    /// 1 to 100, default 20.
    pub records: Option<String>,
    /// A Stripe status (`succeeded`, `requires_payment_method`, ...) or spec 002's `completed`,
    /// `pending`, `failed`; several separated by commas.
    pub status: Option<String>,
    /// Three-letter ISO code.
    pub currency: Option<String>,
    /// At least this amount, in the smallest unit.
    pub min_amount: Option<String>,
    /// At most this amount, in the smallest unit.
    pub max_amount: Option<String>,
    /// Our customer unique id, the user unique id or the `cus_` id.
    pub customer_id: Option<String>,
    /// Created at or after: RFC 3339 (`2025-06-01T00:00:00Z`) or unix seconds.
    pub since: Option<String>,
    /// Created before: RFC 3339 or unix seconds.
    pub until: Option<String>,
}

/// A validated payment list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentListRequest {
    pub paging: PageRequest,
    /// The filter, but with the customer as sent (resolved for the caller when listing).
    pub filter: PaymentFilter,
    pub customer: Option<String>,
}

fn amount(raw: Option<&str>, name: &str) -> Result<Option<i64>, ApiError> {
    let Some(raw) = query_text(raw) else {
        return Ok(None);
    };
    match raw.parse::<i64>() {
        Ok(n) if (0..=MAX_AMOUNT).contains(&n) => Ok(Some(n)),
        _ => Err(ApiError::invalid_parameter(
            name,
            format!(
                "{name} must be a whole number of the currency's smallest unit from 0 to {MAX_AMOUNT} (got {raw:?})"
            ),
        )),
    }
}

/// RFC 3339 or unix seconds. A `+` offset decoded as a space (an unencoded query) is read as
/// the `+` it was.
fn instant(raw: Option<&str>, name: &str) -> Result<Option<NaiveDateTime>, ApiError> {
    let Some(raw) = query_text(raw) else {
        return Ok(None);
    };
    let parsed = if let Ok(secs) = raw.parse::<i64>() {
        DateTime::from_timestamp(secs, 0)
    } else {
        DateTime::parse_from_rfc3339(raw)
            .or_else(|_| DateTime::parse_from_rfc3339(&raw.replace(' ', "+")))
            .ok()
            .map(|t| t.to_utc())
    };
    parsed.map(|t| Some(t.naive_utc())).ok_or_else(|| {
        ApiError::invalid_parameter(
            name,
            format!(
                "{name} must be an RFC 3339 time such as 2025-06-01T00:00:00Z, or unix seconds (got {raw:?})"
            ),
        )
    })
}

fn statuses(raw: Option<&str>) -> Result<Option<Vec<String>>, ApiError> {
    let Some(raw) = query_text(raw) else {
        return Ok(None);
    };
    let mut out: Vec<String> = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let expanded: &[&str] = if let Some(i) = STATUSES.iter().position(|s| *s == name) {
            &STATUSES[i..=i]
        } else if let Some((_, stands_for)) = STATUS_ALIASES.iter().find(|(a, _)| *a == name) {
            stands_for
        } else {
            return Err(ApiError::invalid_parameter(
                "status",
                format!(
                    "status must be one of {}, or completed, pending, failed (got {name:?})",
                    STATUSES.join(", ")
                ),
            ));
        };
        for status in expanded {
            if !out.iter().any(|s| s == status) {
                out.push((*status).to_owned());
            }
        }
    }
    Ok(Some(out))
}

pub fn parse_list(query: &ListPaymentsQuery) -> Result<PaymentListRequest, ApiError> {
    let paging = PageRequest::parse(query.page.as_deref(), query.records.as_deref(), 20)?;
    let currency = query_text(query.currency.as_deref())
        .map(|raw| {
            currency(raw, "").map_err(|err| ApiError::invalid_parameter("currency", &err.detail))
        })
        .transpose()?;
    let min_amount = amount(query.min_amount.as_deref(), "min_amount")?;
    let max_amount = amount(query.max_amount.as_deref(), "max_amount")?;
    if let (Some(min), Some(max)) = (min_amount, max_amount)
        && min > max
    {
        return Err(ApiError::invalid_parameter(
            "max_amount",
            format!("max_amount ({max}) is below min_amount ({min})"),
        ));
    }
    let since = instant(query.since.as_deref(), "since")?;
    let until = instant(query.until.as_deref(), "until")?;
    if let (Some(since), Some(until)) = (since, until)
        && since >= until
    {
        return Err(ApiError::invalid_parameter(
            "until",
            "until must be later than since",
        ));
    }
    let customer = query_text(query.customer_id.as_deref()).map(str::to_owned);
    if customer.as_ref().is_some_and(|c| c.chars().count() > 255) {
        return Err(ApiError::invalid_parameter(
            "customer_id",
            "customer_id must be at most 255 characters",
        ));
    }
    Ok(PaymentListRequest {
        paging,
        filter: PaymentFilter {
            statuses: statuses(query.status.as_deref())?,
            currency,
            min_amount,
            max_amount,
            stripe_customer_id: None,
            since,
            until,
        },
        customer,
    })
}

/// One page of the caller's payments from the mirror, newest first, and the total.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    request: PaymentListRequest,
) -> Result<(Vec<PaymentRow>, i64), ApiError> {
    let mut filter = request.filter;
    if let Some(raw) = &request.customer {
        // A customer the caller cannot see simply matches nothing (as on subscriptions).
        filter.stripe_customer_id = Some(match find_customer(state, caller, raw).await {
            Ok(row) => row.stripe_customer_id,
            Err(err) if err.status.as_u16() == 404 => raw.clone(),
            Err(err) => return Err(err),
        });
    }
    let tenant_id = caller.tenant.id.clone();
    let visibility = caller.visibility();
    let paging = request.paging;
    state
        .db
        .run(move |conn| {
            rows::list(
                conn,
                &tenant_id,
                &visibility,
                &filter,
                paging.offset(),
                paging.per_page,
            )
            .map_err(ApiError::from)
        })
        .await
}
