//! Changing a customer: update, delete (which cancels its subscriptions at Stripe), and a
//! refresh of the mirror from Stripe. Admins may change any customer of the app, other
//! callers only the customers they own (anything else is 404, as for reads).

use std::collections::HashMap;

use serde_json::Value;

use crate::caller::Caller;
use crate::db::customers::{self as rows, Customer};
use crate::db::payment_methods as card_rows;
use crate::db::subscriptions as subscription_rows;
use crate::domain::{Email, Metadata};
use crate::error::ApiError;
use crate::services::mirror;
use crate::services::owned::find_customer;
use crate::state::AppState;
use crate::stripe::objects::CustomerSnapshot;
use crate::stripe::requests::{CustomerChange, InvoiceDefault};

/// The fields of `PUT /stripe/customers/{id}` (body key `customer`): each one sent is changed,
/// `null` (or `""`) clears it; a metadata key set to `""` or `null` is removed.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct UpdateCustomerFields {
    #[serde(default, deserialize_with = "crate::domain::present")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::domain::present")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::domain::present")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::domain::present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Keys to set (`""` or `null` removes a key); keys not named stay.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// One of the customer's cards (our unique id or the `pm_` id): the default for invoices
    /// and subscriptions.
    pub default_payment_method: Option<String>,
}

/// A text field of the update: `Some("")` clears it at Stripe.
fn text_change(
    raw: Option<Option<String>>,
    pointer: &str,
    max_chars: usize,
) -> Result<Option<String>, ApiError> {
    let Some(value) = raw else {
        return Ok(None);
    };
    let text = value.map(|s| s.trim().to_owned()).unwrap_or_default();
    if text.chars().count() > max_chars {
        return Err(ApiError::validation(
            pointer,
            format!("must be at most {max_chars} characters"),
        ));
    }
    Ok(Some(text))
}

/// A checked update: what to send Stripe, with the card still to be resolved.
#[derive(Debug)]
pub struct CustomerUpdate {
    change: CustomerChange,
    card: Option<String>,
    at: String,
}

impl CustomerUpdate {
    /// `at` is the JSON pointer the fields live under (`/customer`).
    pub fn parse(fields: UpdateCustomerFields, at: &str) -> Result<Self, ApiError> {
        let email = text_change(fields.email, &format!("{at}/email"), 512)?;
        if let Some(email) = email.as_deref().filter(|e| !e.is_empty()) {
            Email::parse(email, &format!("{at}/email"))?;
        }
        let metadata = match &fields.metadata {
            None => HashMap::new(),
            Some(Value::Object(map)) => {
                // A null removes a key: Stripe's "" (Metadata::parse would drop the key),
                // so every key named is checked alike (count, length, brackets).
                let removals: serde_json::Map<String, Value> = map
                    .iter()
                    .map(|(k, v)| {
                        let v = if v.is_null() {
                            Value::String(String::new())
                        } else {
                            v.clone()
                        };
                        (k.clone(), v)
                    })
                    .collect();
                Metadata::parse(Some(&Value::Object(removals)), &format!("{at}/metadata"))?.0
            }
            Some(_) => {
                return Err(ApiError::validation(
                    format!("{at}/metadata"),
                    "metadata must be an object of keys to set",
                ));
            }
        };
        let card = match fields.default_payment_method.as_deref().map(str::trim) {
            None => None,
            Some("") => {
                return Err(ApiError::validation(
                    format!("{at}/default_payment_method"),
                    "default_payment_method must name one of the customer's cards",
                ));
            }
            Some(card) => Some(card.to_owned()),
        };
        let change = CustomerChange {
            email,
            name: text_change(fields.name, &format!("{at}/name"), 256)?,
            phone: text_change(fields.phone, &format!("{at}/phone"), 40)?,
            description: text_change(fields.description, &format!("{at}/description"), 1000)?,
            metadata,
            invoice_settings: None,
        };
        let nothing = change.email.is_none()
            && change.name.is_none()
            && change.phone.is_none()
            && change.description.is_none()
            && change.metadata.is_empty()
            && card.is_none();
        if nothing {
            return Err(ApiError::validation(
                at,
                "nothing to change: send at least one of email, name, phone, description, metadata, default_payment_method",
            ));
        }
        Ok(Self {
            change,
            card,
            at: at.to_owned(),
        })
    }
}

/// Mirrors Stripe's answer about `customer`; `None` when the row is gone (it never is: the
/// customer was found a moment ago and rows are only marked deleted).
async fn record(
    state: &AppState,
    caller: &Caller,
    snapshot: CustomerSnapshot,
) -> Result<Option<Customer>, ApiError> {
    let tenant_id = caller.tenant.id.clone();
    let now = chrono::Utc::now().timestamp();
    state
        .db
        .run(move |conn| {
            rows::record_state(conn, &tenant_id, &snapshot, now).map_err(ApiError::from)
        })
        .await
}

fn gone(any_id: &str) -> ApiError {
    ApiError::not_found(format!("No customer {any_id:?} in this app."))
}

/// `PUT /stripe/customers/{id}`: changed at Stripe, then mirrored.
pub async fn update_customer(
    state: &AppState,
    caller: &Caller,
    any_id: &str,
    update: CustomerUpdate,
) -> Result<Customer, ApiError> {
    let customer = find_customer(state, caller, any_id).await?;
    let mut change = update.change;
    if let Some(card) = update.card {
        let tenant_id = caller.tenant.id.clone();
        let owner = customer.stripe_customer_id.clone();
        let wanted = card.clone();
        let pm = state
            .db
            .run(move |conn| {
                card_rows::find_of_customer(conn, &tenant_id, &wanted, &owner)
                    .map_err(ApiError::from)
            })
            .await?
            .ok_or_else(|| {
                ApiError::validation(
                    format!("{}/default_payment_method", update.at),
                    format!("{card:?} is not one of this customer's cards"),
                )
            })?;
        change.invoice_settings = Some(InvoiceDefault {
            default_payment_method: pm,
        });
    }
    let snapshot = caller
        .tenant
        .stripe
        .update_customer(&customer.stripe_customer_id, &change, caller.stripe_key())
        .await?;
    record(state, caller, snapshot)
        .await?
        .ok_or_else(|| gone(any_id))
}

/// Subscriptions of a deleted customer re-read from Stripe in the request; the rest arrive by
/// webhook.
const REREAD_AT_MOST: usize = 10;

/// `DELETE /stripe/customers/{id}`: deleted at Stripe, which cancels its subscriptions at
/// once; the mirror marks it deleted and re-reads those subscriptions from Stripe (the
/// `customer.subscription.deleted` deliveries would bring the same). Returns the row as
/// deleted.
pub async fn delete_customer(
    state: &AppState,
    caller: &Caller,
    any_id: &str,
) -> Result<Customer, ApiError> {
    let customer = find_customer(state, caller, any_id).await?;
    let stripe = &caller.tenant.stripe;
    let snapshot = stripe
        .delete_customer(&customer.stripe_customer_id, caller.stripe_key())
        .await?;
    let row = record(state, caller, snapshot)
        .await?
        .ok_or_else(|| gone(any_id))?;
    let tenant_id = caller.tenant.id.clone();
    let owner = customer.stripe_customer_id.clone();
    let open = state
        .db
        .run(move |conn| {
            subscription_rows::not_over_of_customer(conn, &tenant_id, &owner)
                .map_err(ApiError::from)
        })
        .await?;
    // The customer is gone at Stripe whatever happens here: what is not re-read (beyond the
    // first few, or after a failure: Stripe slow, down or answering 429) is left to the
    // `customer.subscription.deleted` deliveries, not turned into an error or a long wait.
    for id in open.into_iter().take(REREAD_AT_MOST) {
        match stripe.retrieve_subscription(&id).await {
            Ok(subscription) => {
                mirror::subscription(state, caller, subscription).await?;
            }
            Err(error) => {
                tracing::warn!(subscription = %id, %error, "re-reading a deleted customer's subscription failed; the deliveries will bring it");
                break;
            }
        }
    }
    Ok(row)
}

/// `GET /stripe/customers/{id}?refresh=true`: Stripe's state mirrored, then answered. A
/// customer Stripe reports deleted is marked so and answered 404, like every deleted one.
pub async fn refresh_customer(
    state: &AppState,
    caller: &Caller,
    any_id: &str,
) -> Result<Customer, ApiError> {
    let customer = find_customer(state, caller, any_id).await?;
    let snapshot = caller
        .tenant
        .stripe
        .retrieve_customer(&customer.stripe_customer_id)
        .await?;
    let row = record(state, caller, snapshot)
        .await?
        .ok_or_else(|| gone(any_id))?;
    if row.deleted_at.is_some() {
        return Err(gone(any_id));
    }
    Ok(row)
}
