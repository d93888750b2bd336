//! Stripe's official example objects (`fixtures/fixtures3.json`, from Stripe's OpenAPI
//! repository), embedded at compile time.
//!
//! Every object the emulator returns starts as a clone of the fixture for its resource, so
//! its shape (the set of fields, nesting, types) is Stripe's; the resource modules then
//! overwrite the values.

use std::sync::OnceLock;

use serde_json::Value;

/// The API version the emulator speaks: the one async-stripe 1.0.0-rc.10 pins
/// (`stripe_shared::version::VERSION`).
pub const API_VERSION: &str = "2026-09-30.endive";

static RAW: &str = include_str!("../fixtures/fixtures3.json");
static PARSED: OnceLock<Value> = OnceLock::new();

fn resources() -> &'static Value {
    PARSED.get_or_init(|| {
        let all: Value = serde_json::from_str(RAW).expect("fixtures3.json is valid JSON");
        all.get("resources").cloned().unwrap_or(Value::Null)
    })
}

/// A fresh copy of the example object for `resource` (e.g. `customer`,
/// `billing_portal.session`), or an empty object if the fixture file has none.
pub fn fixture(resource: &str) -> Value {
    resources()
        .get(resource)
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()))
}

/// True if the fixture file has an example for `resource`.
pub fn has_fixture(resource: &str) -> bool {
    resources().get(resource).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_load() {
        for resource in [
            "customer",
            "deleted_customer",
            "payment_method",
            "billing_portal.session",
        ] {
            assert!(has_fixture(resource), "{resource}");
            assert!(fixture(resource).is_object());
        }
        assert_eq!(fixture("customer")["object"], "customer");
        assert!(!has_fixture("no_such_thing"));
    }
}
