//! Payment intents: the object and the engine that confirms one (charging its payment
//! method), shared by the payment intents API, invoices and checkout.
//!
//! Confirming charges the intent's payment method: a test card that succeeds gives
//! `succeeded` (or `requires_capture` with `capture_method=manual`) and a `ch_...` charge;
//! a declining card gives HTTP 402 with a `card_error` that carries the intent (now
//! `requires_payment_method`, with `last_payment_error`), and leaves a failed charge.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult, ErrorType};
use crate::fixtures::fixture;
use crate::ids;
use crate::json::{int_field, opt_str, set, str_field};
use crate::objects::charges;
use crate::objects::paid_invoices::mark_paid;
use crate::objects::payment_methods::{self, PmRef};
use crate::store::{Store, kinds};

/// How payment intents are named in "No such ..." messages.
pub const LABEL: &str = "payment_intent";

/// What a new intent is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIntent {
    /// Amount in minor units.
    pub amount: i64,
    /// Lower-case currency.
    pub currency: String,
    /// The customer.
    pub customer: Option<String>,
    /// A stored payment method.
    pub payment_method: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Metadata.
    pub metadata: Map<String, Value>,
    /// `automatic`, `automatic_async` or `manual`.
    pub capture_method: String,
    /// `automatic` or `manual`.
    pub confirmation_method: String,
    /// `on_session` or `off_session`.
    pub setup_future_usage: Option<String>,
    /// Receipt email.
    pub receipt_email: Option<String>,
    /// Statement descriptor.
    pub statement_descriptor: Option<String>,
    /// Statement descriptor suffix.
    pub statement_descriptor_suffix: Option<String>,
    /// `None`: automatic payment methods (the API default).
    pub payment_method_types: Option<Vec<String>>,
    /// `automatic_payment_methods[allow_redirects]`.
    pub allow_redirects: Option<String>,
    /// Transfer group.
    pub transfer_group: Option<String>,
    /// The invoice this intent pays (internal link).
    pub invoice: Option<String>,
}

impl NewIntent {
    /// An intent for `amount` in `currency` paid by card (as invoices make them).
    pub fn card(amount: i64, currency: &str) -> Self {
        NewIntent {
            amount,
            currency: currency.to_owned(),
            customer: None,
            payment_method: None,
            description: None,
            metadata: Map::new(),
            capture_method: "automatic".into(),
            confirmation_method: "automatic".into(),
            setup_future_usage: None,
            receipt_email: None,
            statement_descriptor: None,
            statement_descriptor_suffix: None,
            payment_method_types: Some(vec!["card".into()]),
            allow_redirects: None,
            transfer_group: None,
            invoice: None,
        }
    }
}

fn new_object(id: &str, spec: &NewIntent, now: i64, livemode: bool) -> Value {
    let mut intent = fixture(kinds::PAYMENT_INTENT);
    let automatic = match &spec.payment_method_types {
        None => json!({
            "enabled": true,
            "allow_redirects": spec.allow_redirects.as_deref().unwrap_or("always")
        }),
        Some(_) => Value::Null,
    };
    let types = spec
        .payment_method_types
        .clone()
        .unwrap_or_else(|| vec!["card".into()]);
    for (key, value) in [
        ("id", json!(id)),
        ("object", json!("payment_intent")),
        (
            "allowed_payment_method_types",
            spec.payment_method_types
                .as_ref()
                .map_or(Value::Null, |t| json!(t)),
        ),
        ("amount", json!(spec.amount)),
        ("amount_capturable", json!(0)),
        ("amount_details", json!({"tip": {}})),
        ("amount_received", json!(0)),
        ("application", Value::Null),
        ("application_fee_amount", Value::Null),
        ("automatic_payment_methods", automatic),
        ("canceled_at", Value::Null),
        ("cancellation_reason", Value::Null),
        ("capture_method", json!(spec.capture_method)),
        (
            "client_secret",
            json!(format!("{id}_secret_{}", ids::random_alnum(25))),
        ),
        ("confirmation_method", json!(spec.confirmation_method)),
        ("created", json!(now)),
        ("currency", json!(spec.currency)),
        ("customer", opt_str(spec.customer.as_deref())),
        ("customer_account", Value::Null),
        ("description", opt_str(spec.description.as_deref())),
        ("excluded_payment_method_types", Value::Null),
        ("last_payment_error", Value::Null),
        ("latest_charge", Value::Null),
        ("livemode", json!(livemode)),
        ("managed_payments", Value::Null),
        ("metadata", Value::Object(spec.metadata.clone())),
        ("next_action", Value::Null),
        ("on_behalf_of", Value::Null),
        ("payment_method", opt_str(spec.payment_method.as_deref())),
        ("payment_method_configuration_details", Value::Null),
        ("payment_method_options", json!({})),
        ("payment_method_types", json!(types)),
        ("payment_record", Value::Null),
        ("processing", Value::Null),
        ("receipt_email", opt_str(spec.receipt_email.as_deref())),
        ("review", Value::Null),
        (
            "setup_future_usage",
            opt_str(spec.setup_future_usage.as_deref()),
        ),
        ("shipping", Value::Null),
        ("source", Value::Null),
        (
            "statement_descriptor",
            opt_str(spec.statement_descriptor.as_deref()),
        ),
        (
            "statement_descriptor_suffix",
            opt_str(spec.statement_descriptor_suffix.as_deref()),
        ),
        (
            "status",
            json!(if spec.payment_method.is_some() {
                "requires_confirmation"
            } else {
                "requires_payment_method"
            }),
        ),
        ("transfer_data", Value::Null),
        ("transfer_group", opt_str(spec.transfer_group.as_deref())),
    ] {
        set(&mut intent, key, value);
    }
    intent
}

/// Stores a new intent (not confirmed) and returns its id.
pub fn insert(store: &mut Store, now: i64, spec: &NewIntent) -> String {
    let id = ids::long_id("pi");
    let intent = new_object(&id, spec, now, store.livemode);
    let mut internal = Map::new();
    if let Some(invoice) = &spec.invoice {
        internal.insert("invoice".into(), json!(invoice));
    }
    store.insert_with(kinds::PAYMENT_INTENT, intent, internal);
    id
}

pub fn stored(store: &Store, id: &str, param: &str) -> ApiResult<Value> {
    store
        .get_live(kinds::PAYMENT_INTENT, id)
        .map(|r| r.object.clone())
        .ok_or_else(|| ApiError::resource_missing(LABEL, id, param))
}

pub fn missing_payment_method() -> ApiError {
    ApiError::invalid_request(
        "You cannot confirm this PaymentIntent because it's missing a payment method. You can either update the PaymentIntent with a payment method and then confirm it again, or confirm it again directly with a payment method.",
    )
    .with_code("payment_intent_unexpected_state")
}

/// The 402 `card_error` of a declined confirmation.
fn decline_error(
    decline: payment_methods::Decline,
    charge: &str,
    intent: &Value,
    pm: &Value,
) -> ApiError {
    ApiError::new(402, ErrorType::Card, decline.message)
        .with_code(decline.code)
        .with_decline_code(decline.decline_code)
        .with_extra("charge", json!(charge))
        .with_extra("payment_intent", intent.clone())
        .with_extra("payment_method", pm.clone())
}

/// Confirms a stored intent with its payment method: charges it. On success the intent
/// is `succeeded` (or `requires_capture`) and, if it pays an invoice, the invoice is paid.
/// On a decline the intent is stored as `requires_payment_method` with
/// `last_payment_error`, and the 402 card error is returned.
pub fn confirm_stored(store: &mut Store, now: i64, id: &str) -> ApiResult<Value> {
    let intent = stored(store, id, "id")?;
    let Some(pm_id) = str_field(&intent, "payment_method").map(str::to_owned) else {
        return Err(missing_payment_method());
    };
    let pm = store
        .get(kinds::PAYMENT_METHOD, &pm_id)
        .map(|r| r.object.clone())
        .ok_or_else(|| {
            ApiError::resource_missing(payment_methods::LABEL, &pm_id, "payment_method")
        })?;
    let decline = payment_methods::decline_of(store, &pm_id);
    let manual = str_field(&intent, "capture_method") == Some("manual");
    let charge_id = ids::long_id("ch");
    let charge = charges::new_object(&charge_id, &intent, &pm, decline, !manual, now);
    store.insert(kinds::CHARGE, charge);
    let customer = str_field(&intent, "customer").map(str::to_owned);
    let amount = int_field(&intent, "amount");

    match decline {
        None => {
            let save = intent
                .get("setup_future_usage")
                .is_some_and(|v| !v.is_null());
            match (&customer, save) {
                (Some(customer), true) if payment_methods::owner_of(store, &pm_id).is_none() => {
                    payment_methods::materialize(
                        store,
                        now,
                        &PmRef::Stored(pm_id.clone()),
                        Some(customer),
                    );
                }
                _ => payment_methods::consume_if_unattached(store, &pm_id),
            }
            let invoice = {
                let Some(record) = store.get_live_mut(kinds::PAYMENT_INTENT, id) else {
                    return Err(ApiError::resource_missing(LABEL, id, "id"));
                };
                let o = &mut record.object;
                if manual {
                    set(o, "status", json!("requires_capture"));
                    set(o, "amount_capturable", json!(amount));
                } else {
                    set(o, "status", json!("succeeded"));
                    set(o, "amount_received", json!(amount));
                }
                set(o, "latest_charge", json!(charge_id));
                set(o, "last_payment_error", Value::Null);
                record
                    .internal
                    .get("invoice")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            if let Some(invoice) = invoice
                && !manual
            {
                mark_paid(store, now, &invoice, id);
            }
            stored(store, id, "id")
        }
        Some(decline) => {
            payment_methods::consume_if_unattached(store, &pm_id);
            let pm = store
                .get(kinds::PAYMENT_METHOD, &pm_id)
                .map_or(pm, |r| r.object.clone());
            let mut error = ApiError::new(402, ErrorType::Card, decline.message)
                .with_code(decline.code)
                .with_decline_code(decline.decline_code)
                .with_extra("charge", json!(charge_id))
                .with_extra("payment_method", pm.clone())
                .to_json()["error"]
                .clone();
            set(&mut error, "payment_method", pm.clone());
            let Some(record) = store.get_live_mut(kinds::PAYMENT_INTENT, id) else {
                return Err(ApiError::resource_missing(LABEL, id, "id"));
            };
            let o = &mut record.object;
            set(o, "status", json!("requires_payment_method"));
            set(o, "payment_method", Value::Null);
            set(o, "latest_charge", json!(charge_id));
            set(o, "last_payment_error", error);
            let intent = record.object.clone();
            Err(decline_error(decline, &charge_id, &intent, &pm))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_and_declines() {
        let mut store = Store::new(false);
        let card = payment_methods::test_card("pm_card_chargeDeclinedInsufficientFunds").unwrap();
        let pm = payment_methods::materialize(&mut store, 1, &PmRef::Token(card), None);
        let mut spec = NewIntent::card(1000, "usd");
        spec.payment_method = Some(pm.clone());
        let id = insert(&mut store, 1, &spec);
        assert_eq!(
            store.get(kinds::PAYMENT_INTENT, &id).unwrap().object["status"],
            "requires_confirmation"
        );
        let err = confirm_stored(&mut store, 2, &id).unwrap_err();
        assert_eq!(err.status, 402);
        assert_eq!(err.decline_code.as_deref(), Some("insufficient_funds"));
        let body = err.to_json();
        assert_eq!(
            body["error"]["payment_intent"]["status"],
            "requires_payment_method"
        );
        assert_eq!(
            body["error"]["payment_intent"]["last_payment_error"]["decline_code"],
            "insufficient_funds"
        );
        assert!(body["error"].get("param").is_none());
        let charge = body["error"]["charge"].as_str().unwrap();
        assert_eq!(
            store.get(kinds::CHARGE, charge).unwrap().object["status"],
            "failed"
        );
        assert!(payment_methods::is_consumed(&store, &pm));
    }
}
