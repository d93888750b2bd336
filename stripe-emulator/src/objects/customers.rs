//! Customers: the object, its lookup, and the minimal customer Checkout creates.

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::fixtures::fixture;
use crate::ids;
use crate::json::{opt_str, set};
use crate::store::{Record, Store, kinds};

/// How customers are named in "No such ..." messages.
pub const LABEL: &str = "customer";

/// The live (not deleted) customer `id`, or `resource_missing` on `param` (404 when the id
/// was in the URL, i.e. `param` is `id`).
pub fn require_live<'s>(store: &'s Store, id: &str, param: &str) -> ApiResult<&'s Record> {
    store
        .get_live(kinds::CUSTOMER, id)
        .ok_or_else(|| ApiError::resource_missing(LABEL, id, param))
}

/// A new customer object, shaped from the fixture, with Stripe's defaults.
pub fn new_object(id: &str, now: i64, livemode: bool) -> Value {
    let mut c = fixture(kinds::CUSTOMER);
    for (key, value) in [
        ("id", json!(id)),
        ("object", json!("customer")),
        ("created", json!(now)),
        ("livemode", json!(livemode)),
        ("address", Value::Null),
        ("balance", json!(0)),
        ("currency", Value::Null),
        ("customer_account", Value::Null),
        ("default_source", Value::Null),
        ("delinquent", json!(false)),
        ("description", Value::Null),
        ("discount", Value::Null),
        ("email", Value::Null),
        ("invoice_prefix", json!(ids::invoice_prefix())),
        (
            "invoice_settings",
            json!({"custom_fields": null, "default_payment_method": null, "footer": null, "rendering_options": null}),
        ),
        ("metadata", json!({})),
        ("name", Value::Null),
        ("next_invoice_sequence", json!(1)),
        ("phone", Value::Null),
        ("preferred_locales", json!([])),
        ("shipping", Value::Null),
        ("tax_exempt", json!("none")),
        ("test_clock", Value::Null),
    ] {
        set(&mut c, key, value);
    }
    c
}

/// Stores a customer with just an email (as Checkout creates them) and returns its id.
pub fn insert_minimal(store: &mut Store, now: i64, email: Option<&str>) -> String {
    let id = ids::short_id("cus");
    let mut object = new_object(&id, now, store.livemode);
    set(&mut object, "email", opt_str(email));
    store.insert(kinds::CUSTOMER, object);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_customers_have_stripe_defaults() {
        let c = new_object("cus_x", 5, false);
        assert_eq!(c["id"], "cus_x");
        assert_eq!(c["created"], 5);
        assert!(c["discount"].is_null());
        assert!(c["shipping"].is_null());
        assert!(c["invoice_settings"]["default_payment_method"].is_null());
        assert_eq!(c["tax_exempt"], "none");
    }
}
