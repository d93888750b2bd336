//! Charges, as payment intents create them (one per confirmation attempt).

use serde_json::{Value, json};

use crate::fixtures::fixture;
use crate::ids;
use crate::json::{int_field, set};
use crate::objects::payment_methods::Decline;
use crate::store::kinds;

/// How charges are named in "No such ..." messages.
pub const LABEL: &str = "charge";

/// A charge for `intent` made with the payment method `pm` (both as stored), succeeded or
/// failed with `decline`. `captured` is false for `capture_method=manual`.
pub fn new_object(
    id: &str,
    intent: &Value,
    pm: &Value,
    decline: Option<Decline>,
    captured: bool,
    now: i64,
) -> Value {
    let amount = int_field(intent, "amount");
    let succeeded = decline.is_none();
    let mut charge = fixture(kinds::CHARGE);
    let details = card_details(&charge, pm, amount, succeeded);
    let outcome = outcome(decline);
    let billing_details = pm.get("billing_details").cloned().unwrap_or_else(
        || json!({"address": null, "email": null, "name": null, "phone": null, "tax_id": null}),
    );
    for (key, value) in [
        ("id", json!(id)),
        ("object", json!("charge")),
        ("amount", json!(amount)),
        (
            "amount_captured",
            json!(if succeeded && captured { amount } else { 0 }),
        ),
        ("amount_refunded", json!(0)),
        ("application", Value::Null),
        ("application_fee", Value::Null),
        ("application_fee_amount", Value::Null),
        (
            "balance_transaction",
            if succeeded && captured {
                json!(ids::long_id("txn"))
            } else {
                Value::Null
            },
        ),
        ("billing_details", billing_details),
        ("calculated_statement_descriptor", json!("STRIPE EMULATOR")),
        ("captured", json!(succeeded && captured)),
        ("created", json!(now)),
        (
            "currency",
            intent.get("currency").cloned().unwrap_or(Value::Null),
        ),
        (
            "customer",
            intent.get("customer").cloned().unwrap_or(Value::Null),
        ),
        (
            "description",
            intent.get("description").cloned().unwrap_or(Value::Null),
        ),
        ("disputed", json!(false)),
        ("failure_balance_transaction", Value::Null),
        (
            "failure_code",
            decline.map_or(Value::Null, |d| json!(d.code)),
        ),
        (
            "failure_message",
            decline.map_or(Value::Null, |d| json!(d.message)),
        ),
        ("fraud_details", json!({})),
        (
            "livemode",
            intent.get("livemode").cloned().unwrap_or(json!(false)),
        ),
        (
            "metadata",
            intent.get("metadata").cloned().unwrap_or_else(|| json!({})),
        ),
        ("on_behalf_of", Value::Null),
        ("outcome", outcome),
        ("paid", json!(succeeded)),
        (
            "payment_intent",
            intent.get("id").cloned().unwrap_or(Value::Null),
        ),
        (
            "payment_method",
            pm.get("id").cloned().unwrap_or(Value::Null),
        ),
        (
            "payment_method_details",
            json!({"card": details, "type": "card"}),
        ),
        (
            "receipt_email",
            intent.get("receipt_email").cloned().unwrap_or(Value::Null),
        ),
        ("receipt_number", Value::Null),
        // Stripe links a receipt for every paid charge (emailed only with a receipt_email).
        (
            "receipt_url",
            if succeeded {
                json!(format!("https://pay.stripe.com/receipts/payment/{id}"))
            } else {
                Value::Null
            },
        ),
        ("refunded", json!(false)),
        ("review", Value::Null),
        ("shipping", Value::Null),
        ("source", Value::Null),
        ("source_transfer", Value::Null),
        (
            "statement_descriptor",
            intent
                .get("statement_descriptor")
                .cloned()
                .unwrap_or(Value::Null),
        ),
        (
            "statement_descriptor_suffix",
            intent
                .get("statement_descriptor_suffix")
                .cloned()
                .unwrap_or(Value::Null),
        ),
        (
            "status",
            json!(if succeeded { "succeeded" } else { "failed" }),
        ),
        ("transfer_data", Value::Null),
        (
            "transfer_group",
            intent.get("transfer_group").cloned().unwrap_or(Value::Null),
        ),
    ] {
        set(&mut charge, key, value);
    }
    // `refunds` is not returned unless expanded.
    if let Some(map) = charge.as_object_mut() {
        map.remove("refunds");
    }
    charge
}

/// `payment_method_details.card` of a charge made with `pm` (the fixture's, with the
/// card's values).
fn card_details(charge: &Value, pm: &Value, amount: i64, succeeded: bool) -> Value {
    let card = pm.get("card").cloned().unwrap_or_else(|| json!({}));
    let mut details = charge
        .pointer("/payment_method_details/card")
        .cloned()
        .unwrap_or_else(|| json!({}));
    for (key, value) in [
        (
            "amount_authorized",
            if succeeded {
                json!(amount)
            } else {
                Value::Null
            },
        ),
        (
            "authorization_code",
            if succeeded {
                json!("123456")
            } else {
                Value::Null
            },
        ),
        ("brand", card.get("brand").cloned().unwrap_or(Value::Null)),
        ("checks", card.get("checks").cloned().unwrap_or(Value::Null)),
        (
            "country",
            card.get("country").cloned().unwrap_or(Value::Null),
        ),
        (
            "exp_month",
            card.get("exp_month").cloned().unwrap_or(json!(12)),
        ),
        (
            "exp_year",
            card.get("exp_year").cloned().unwrap_or(json!(2030)),
        ),
        (
            "fingerprint",
            card.get("fingerprint").cloned().unwrap_or(Value::Null),
        ),
        (
            "funding",
            card.get("funding").cloned().unwrap_or(Value::Null),
        ),
        ("installments", Value::Null),
        ("last4", card.get("last4").cloned().unwrap_or(Value::Null)),
        ("mandate", Value::Null),
        ("network", card.get("brand").cloned().unwrap_or(Value::Null)),
        ("network_token", json!({"used": false})),
        ("network_transaction_id", Value::Null),
        (
            "overcapture",
            json!({"maximum_amount_capturable": amount, "status": "unavailable"}),
        ),
        ("regulated_status", json!("unregulated")),
        ("electronic_commerce_indicator", Value::Null),
        ("three_d_secure", Value::Null),
        ("wallet", Value::Null),
        ("transaction_link_id", Value::Null),
    ] {
        set(&mut details, key, value);
    }
    details
}

/// The `outcome` of a charge: authorized, or declined by the issuer.
fn outcome(decline: Option<Decline>) -> Value {
    match decline {
        None => json!({
            "advice_code": null,
            "network_advice_code": null,
            "network_decline_code": null,
            "network_status": "approved_by_network",
            "reason": null,
            "risk_level": "normal",
            "risk_score": 32,
            "seller_message": "Payment complete.",
            "type": "authorized"
        }),
        Some(decline) => json!({
            "advice_code": null,
            "network_advice_code": null,
            "network_decline_code": null,
            "network_status": "declined_by_network",
            "reason": decline.decline_code,
            "risk_level": "normal",
            "risk_score": 32,
            "seller_message": "The bank did not return any further details with this decline.",
            "type": "issuer_declined"
        }),
    }
}
