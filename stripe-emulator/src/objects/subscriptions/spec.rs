//! What a new subscription is made of (validated), and the object it starts as.

use serde_json::{Map, Value, json};

use crate::fixtures::fixture;
use crate::json::{opt_str, set};
use crate::store::kinds;

/// Everything a new subscription is made of (validated).
#[derive(Debug, Clone, PartialEq)]
pub struct NewSubscription {
    /// The customer.
    pub customer: String,
    /// `(price, quantity, metadata)` of each item; prices are stored recurring prices.
    pub items: Vec<(Value, i64, Map<String, Value>)>,
    /// `(price, quantity)` one-time charges on the first invoice.
    pub add_invoice_items: Vec<(Value, i64)>,
    /// End of the trial, if any.
    pub trial_end: Option<i64>,
    /// A stored payment method attached to the customer.
    pub default_payment_method: Option<String>,
    /// Coupon ids.
    pub coupons: Vec<String>,
    /// Metadata.
    pub metadata: Map<String, Value>,
    /// Description.
    pub description: Option<String>,
    /// Cancel at the end of the first period.
    pub cancel_at_period_end: bool,
    /// Cancel at this time.
    pub cancel_at: Option<i64>,
    /// `allow_incomplete`, `default_incomplete`, `error_if_incomplete`,
    /// `pending_if_incomplete`.
    pub payment_behavior: String,
    /// `charge_automatically` or `send_invoice`.
    pub collection_method: String,
    /// For `send_invoice`.
    pub days_until_due: Option<i64>,
    /// The checkout session creating it (for its discounts).
    pub checkout_session: Option<String>,
}

/// A new subscription object, `incomplete` until its first invoice settles.
#[expect(
    clippy::too_many_arguments,
    reason = "the parts of a new subscription computed before it is stored"
)]
pub fn subscription_object(
    livemode: bool,
    now: i64,
    spec: &NewSubscription,
    id: &str,
    currency: &str,
    end: i64,
    items: Vec<Value>,
    discounts: &[String],
) -> Value {
    let cancel_at = if spec.cancel_at_period_end {
        Some(end)
    } else {
        spec.cancel_at
    };
    let mut sub = fixture(kinds::SUBSCRIPTION);
    for (key, value) in [
        ("id", json!(id)),
        ("object", json!("subscription")),
        ("application", Value::Null),
        ("application_fee_percent", Value::Null),
        (
            "automatic_tax",
            json!({"disabled_reason": null, "enabled": false, "liability": null}),
        ),
        ("billing_cycle_anchor", json!(spec.trial_end.unwrap_or(now))),
        ("billing_cycle_anchor_config", Value::Null),
        (
            "billing_mode",
            json!({"flexible": {"proration_discounts": "included"}, "type": "flexible"}),
        ),
        ("billing_schedules", json!([])),
        ("billing_thresholds", Value::Null),
        ("cancel_at", cancel_at.map_or(Value::Null, |c| json!(c))),
        ("cancel_at_period_end", json!(spec.cancel_at_period_end)),
        ("canceled_at", Value::Null),
        (
            "cancellation_details",
            json!({"comment": null, "feedback": null, "feedback_option": null, "reason": null}),
        ),
        ("collection_method", json!(spec.collection_method)),
        ("created", json!(now)),
        ("currency", json!(currency)),
        ("customer", json!(spec.customer)),
        ("customer_account", Value::Null),
        (
            "days_until_due",
            spec.days_until_due.map_or(Value::Null, |d| json!(d)),
        ),
        (
            "default_payment_method",
            opt_str(spec.default_payment_method.as_deref()),
        ),
        ("default_source", Value::Null),
        ("default_tax_rates", json!([])),
        ("description", opt_str(spec.description.as_deref())),
        ("discounts", json!(discounts)),
        ("ended_at", Value::Null),
        (
            "invoice_settings",
            json!({"account_tax_ids": null, "custom_fields": null, "description": null, "footer": null, "issuer": {"type": "self"}}),
        ),
        (
            "items",
            json!({
                "object": "list",
                "data": items,
                "has_more": false,
                "url": format!("/v1/subscription_items?subscription={id}"),
            }),
        ),
        ("latest_invoice", Value::Null),
        ("livemode", json!(livemode)),
        ("managed_payments", Value::Null),
        ("metadata", Value::Object(spec.metadata.clone())),
        ("next_pending_invoice_item_invoice", Value::Null),
        ("on_behalf_of", Value::Null),
        ("pause_collection", Value::Null),
        (
            "payment_settings",
            json!({"payment_method_options": null, "payment_method_types": null, "save_default_payment_method": "off"}),
        ),
        ("pending_invoice_item_interval", Value::Null),
        ("pending_setup_intent", Value::Null),
        ("pending_update", Value::Null),
        ("schedule", Value::Null),
        ("start_date", json!(now)),
        ("status", json!("incomplete")),
        ("test_clock", Value::Null),
        ("transfer_data", Value::Null),
        (
            "trial_end",
            spec.trial_end.map_or(Value::Null, |t| json!(t)),
        ),
        (
            "trial_settings",
            json!({"end_behavior": {"billing_cycle_anchor": null, "missing_payment_method": "create_invoice"}}),
        ),
        (
            "trial_start",
            spec.trial_end.map_or(Value::Null, |_| json!(now)),
        ),
    ] {
        set(&mut sub, key, value);
    }
    sub
}
