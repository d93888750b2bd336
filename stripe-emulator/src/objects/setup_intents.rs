//! Setup intents: the object, and the engine that confirms one (saving its payment method
//! for later), shared by the setup intents API and checkout sessions in `setup` mode.
//!
//! Confirming a card that succeeds gives `succeeded` and attaches the card to the intent's
//! customer (if any); a card that declines gives HTTP 402 with a `card_error` that carries
//! the intent, now `requires_payment_method` with `last_setup_error`, as Stripe does.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult, ErrorType};
use crate::fixtures::fixture;
use crate::ids;
use crate::json::{opt_str, set, str_field};
use crate::objects::payment_methods::{self, PmRef};
use crate::store::{Store, kinds};

/// How setup intents are named in "No such ..." messages.
pub const LABEL: &str = "setup_intent";

/// What a new setup intent is made of.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewSetupIntent {
    /// The customer the payment method is saved for.
    pub customer: Option<String>,
    /// A stored payment method.
    pub payment_method: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Metadata.
    pub metadata: Map<String, Value>,
    /// `on_session` or `off_session` (`None`: Stripe's default, `off_session`).
    pub usage: Option<String>,
    /// `None`: automatic payment methods (the API default).
    pub payment_method_types: Option<Vec<String>>,
    /// `automatic_payment_methods[allow_redirects]` (`None`: `always`).
    pub allow_redirects: Option<String>,
}

/// The intent's `automatic_payment_methods`: enabled unless payment method types were
/// given.
pub fn automatic_payment_methods(spec: &NewSetupIntent) -> Value {
    match &spec.payment_method_types {
        None => json!({
            "allow_redirects": spec.allow_redirects.as_deref().unwrap_or("always"),
            "enabled": true,
        }),
        Some(_) => Value::Null,
    }
}

fn new_object(id: &str, spec: &NewSetupIntent, now: i64, livemode: bool) -> Value {
    let mut intent = fixture(kinds::SETUP_INTENT);
    let automatic = automatic_payment_methods(spec);
    let types = spec
        .payment_method_types
        .clone()
        .unwrap_or_else(|| vec!["card".into()]);
    for (key, value) in [
        ("id", json!(id)),
        ("object", json!("setup_intent")),
        (
            "allowed_payment_method_types",
            spec.payment_method_types
                .as_ref()
                .map_or(Value::Null, |t| json!(t)),
        ),
        ("application", Value::Null),
        ("automatic_payment_methods", automatic),
        ("cancellation_reason", Value::Null),
        (
            "client_secret",
            json!(format!("{id}_secret_{}", ids::random_alnum(32))),
        ),
        ("created", json!(now)),
        ("customer", opt_str(spec.customer.as_deref())),
        ("customer_account", Value::Null),
        ("description", opt_str(spec.description.as_deref())),
        ("excluded_payment_method_types", Value::Null),
        ("flow_directions", Value::Null),
        ("last_setup_error", Value::Null),
        ("latest_attempt", Value::Null),
        ("livemode", json!(livemode)),
        ("mandate", Value::Null),
        ("metadata", Value::Object(spec.metadata.clone())),
        ("next_action", Value::Null),
        ("on_behalf_of", Value::Null),
        ("payment_method", opt_str(spec.payment_method.as_deref())),
        ("payment_method_configuration_details", Value::Null),
        ("payment_method_options", json!({})),
        ("payment_method_types", json!(types)),
        ("single_use_mandate", Value::Null),
        (
            "status",
            json!(if spec.payment_method.is_some() {
                "requires_confirmation"
            } else {
                "requires_payment_method"
            }),
        ),
        (
            "usage",
            json!(spec.usage.as_deref().unwrap_or("off_session")),
        ),
    ] {
        set(&mut intent, key, value);
    }
    intent
}

/// Stores a new setup intent (not confirmed) and returns its id.
pub fn insert(store: &mut Store, now: i64, spec: &NewSetupIntent) -> String {
    let id = ids::long_id("seti");
    let intent = new_object(&id, spec, now, store.livemode);
    store.insert(kinds::SETUP_INTENT, intent);
    id
}

/// Stores a `succeeded` setup intent that saved `payment_method` for `customer` (as a
/// checkout session in `setup` mode makes it; the card was checked beforehand).
pub fn insert_succeeded(
    store: &mut Store,
    now: i64,
    customer: Option<&str>,
    payment_method: &str,
    metadata: Map<String, Value>,
) -> String {
    let spec = NewSetupIntent {
        customer: customer.map(str::to_owned),
        payment_method: Some(payment_method.to_owned()),
        metadata,
        payment_method_types: Some(vec!["card".into()]),
        ..NewSetupIntent::default()
    };
    let id = insert(store, now, &spec);
    if let Some(record) = store.get_live_mut(kinds::SETUP_INTENT, &id) {
        set(&mut record.object, "status", json!("succeeded"));
    }
    id
}

/// The stored setup intent `id`, or `resource_missing` on `param`.
pub fn stored(store: &Store, id: &str, param: &str) -> ApiResult<Value> {
    store
        .get_live(kinds::SETUP_INTENT, id)
        .map(|r| r.object.clone())
        .ok_or_else(|| ApiError::resource_missing(LABEL, id, param))
}

/// The 400 of an intent whose status does not allow `action` (`confirm`, `cancel`, ...).
pub fn unexpected_state(action: &str, status: &str) -> ApiError {
    let message = if status == "succeeded" && action == "confirm" {
        "You cannot confirm this SetupIntent because it has already succeeded.".to_owned()
    } else {
        format!("You cannot {action} this SetupIntent because it has a status of {status}.")
    };
    ApiError::invalid_request(message).with_code("setup_intent_unexpected_state")
}

/// The 400 of confirming an intent without a payment method.
pub fn missing_payment_method() -> ApiError {
    ApiError::invalid_request(
        "You cannot confirm this SetupIntent because it's missing a payment method. You can either update the SetupIntent with a payment method and then confirm it again, or confirm it again directly with a payment method.",
    )
    .with_code("setup_intent_unexpected_state")
}

/// Checks that `pm` can be saved by an intent of `customer`, without changing anything.
pub fn check_payment_method(
    store: &Store,
    pm: &PmRef,
    customer: Option<&str>,
    param: &str,
) -> ApiResult<()> {
    match customer {
        Some(customer) => payment_methods::check_attachable(store, pm, customer, param),
        None => payment_methods::check_usable_for(store, pm, None, param),
    }
}

/// Confirms a stored intent with its payment method. On success the intent is
/// `succeeded` and the card is attached to the intent's customer; on a decline the intent
/// is stored as `requires_payment_method` with `last_setup_error` and the 402 card error
/// (carrying the intent) is returned.
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
    let customer = str_field(&intent, "customer").map(str::to_owned);
    match payment_methods::decline_of(store, &pm_id) {
        None => {
            if let Some(customer) = &customer {
                payment_methods::materialize(
                    store,
                    now,
                    &PmRef::Stored(pm_id.clone()),
                    Some(customer),
                );
            }
            let Some(record) = store.get_live_mut(kinds::SETUP_INTENT, id) else {
                return Err(ApiError::resource_missing(LABEL, id, "id"));
            };
            set(&mut record.object, "status", json!("succeeded"));
            set(&mut record.object, "last_setup_error", Value::Null);
            Ok(record.object.clone())
        }
        Some(decline) => {
            let base = ApiError::new(402, ErrorType::Card, decline.message)
                .with_code(decline.code)
                .with_decline_code(decline.decline_code);
            let mut last_error = base.to_json()["error"].clone();
            set(&mut last_error, "payment_method", pm.clone());
            set(&mut last_error, "payment_method_type", json!("card"));
            let Some(record) = store.get_live_mut(kinds::SETUP_INTENT, id) else {
                return Err(ApiError::resource_missing(LABEL, id, "id"));
            };
            let o = &mut record.object;
            set(o, "status", json!("requires_payment_method"));
            set(o, "payment_method", Value::Null);
            set(o, "last_setup_error", last_error);
            let intent = record.object.clone();
            Err(base
                .with_extra("payment_method", pm)
                .with_extra("setup_intent", intent))
        }
    }
}

/// Cancels a stored intent (its status checked by the caller).
pub fn cancel_stored(store: &mut Store, id: &str, reason: Option<&str>) -> ApiResult<Value> {
    let Some(record) = store.get_live_mut(kinds::SETUP_INTENT, id) else {
        return Err(ApiError::resource_missing(LABEL, id, "id"));
    };
    set(&mut record.object, "status", json!("canceled"));
    set(&mut record.object, "cancellation_reason", opt_str(reason));
    Ok(record.object.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declined_card_leaves_the_intent_waiting_for_another() {
        let mut store = Store::new(false);
        let card = payment_methods::test_card("pm_card_chargeDeclined").unwrap();
        let pm = payment_methods::materialize(&mut store, 1, &PmRef::Token(card), None);
        let spec = NewSetupIntent {
            payment_method: Some(pm),
            ..NewSetupIntent::default()
        };
        let id = insert(&mut store, 1, &spec);
        let intent = stored(&store, &id, "id").unwrap();
        assert_eq!(intent["status"], "requires_confirmation");
        assert_eq!(intent["automatic_payment_methods"]["enabled"], true);
        let err = confirm_stored(&mut store, 2, &id).unwrap_err();
        assert_eq!(err.status, 402);
        let body = err.to_json();
        assert_eq!(body["error"]["code"], "card_declined");
        assert_eq!(
            body["error"]["setup_intent"]["status"],
            "requires_payment_method"
        );
        let stored_intent = stored(&store, &id, "id").unwrap();
        assert_eq!(
            stored_intent["last_setup_error"]["decline_code"],
            "generic_decline"
        );
        assert!(stored_intent["payment_method"].is_null());
    }
}
