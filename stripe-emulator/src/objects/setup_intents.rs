//! Setup intents, as completed checkout sessions in `setup` mode create them.

use serde_json::{Map, Value, json};

use crate::fixtures::fixture;
use crate::ids;
use crate::json::{opt_str, set};
use crate::store::{Store, kinds};

/// Stores a `succeeded` setup intent that saved `payment_method` for `customer`.
pub fn insert_succeeded(
    store: &mut Store,
    now: i64,
    customer: Option<&str>,
    payment_method: &str,
    metadata: Map<String, Value>,
) -> String {
    let id = ids::long_id("seti");
    let mut intent = fixture(kinds::SETUP_INTENT);
    for (key, value) in [
        ("id", json!(id)),
        ("object", json!("setup_intent")),
        ("allowed_payment_method_types", json!(["card"])),
        ("application", Value::Null),
        ("automatic_payment_methods", Value::Null),
        ("cancellation_reason", Value::Null),
        (
            "client_secret",
            json!(format!("{id}_secret_{}", ids::random_alnum(32))),
        ),
        ("created", json!(now)),
        ("customer", opt_str(customer)),
        ("customer_account", Value::Null),
        ("description", Value::Null),
        ("excluded_payment_method_types", Value::Null),
        ("flow_directions", Value::Null),
        ("last_setup_error", Value::Null),
        ("latest_attempt", Value::Null),
        ("livemode", json!(store.livemode)),
        ("mandate", Value::Null),
        ("metadata", Value::Object(metadata)),
        ("next_action", Value::Null),
        ("on_behalf_of", Value::Null),
        ("payment_method", json!(payment_method)),
        ("payment_method_configuration_details", Value::Null),
        ("payment_method_options", json!({})),
        ("payment_method_types", json!(["card"])),
        ("single_use_mandate", Value::Null),
        ("status", json!("succeeded")),
        ("usage", json!("off_session")),
    ] {
        set(&mut intent, key, value);
    }
    store.insert(kinds::SETUP_INTENT, intent);
    id
}
