//! Refunds: create (of a payment intent's latest charge, or of a charge), retrieve, update
//! (metadata only), list.
//!
//! A refund of a test card succeeds at once (`status: succeeded`). It raises the charge's
//! `amount_refunded` (and sets `refunded` once nothing is left), which announces
//! `charge.refunded`; the refund itself announces `refund.created`, and a metadata change
//! `refund.updated` and `charge.refund.updated`. The charge lists its refunds when asked
//! with `expand[]=refunds` (see [`charges`](super::charges)). Errors are Stripe's:
//! `amount_too_large` when the amount exceeds what is left, `charge_already_refunded` when
//! nothing is left.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::fixtures::fixture;
use crate::form::Params;
use crate::ids;
use crate::json::{int_field, metadata_of, opt_str, set, str_field};
use crate::list::ListParams;
use crate::money::{self, format_amount};
use crate::objects::charges;
use crate::objects::payment_intents;
use crate::params::{merge_metadata, one_of, unsupported};
use crate::resources::ctx::Ctx;
use crate::store::{Store, kinds};

/// How refunds are named in "No such ..." messages.
pub const LABEL: &str = "refund";

/// The reasons a client may give.
const REASONS: &[&str] = &["duplicate", "fraudulent", "requested_by_customer"];

fn stored(store: &Store, id: &str) -> ApiResult<Value> {
    store
        .get_live(kinds::REFUND, id)
        .map(|r| r.object.clone())
        .ok_or_else(|| ApiError::resource_missing(LABEL, id, "id"))
}

/// The charge a create request refunds, and the parameter that named it (`payment_intent`
/// or `charge`).
fn target_charge(store: &Store, p: &Params) -> ApiResult<(Value, &'static str)> {
    let intent = p.non_empty(&["payment_intent"])?;
    let charge = p.non_empty(&["charge"])?;
    match (intent, charge) {
        (Some(_), Some(_)) => Err(ApiError::invalid_request(
            "You may only specify one of these parameters: charge, payment_intent.",
        )
        .with_code("parameters_exclusive")
        .with_param("charge")),
        (None, None) => Err(ApiError::invalid_request(
            "One of the following params should be provided for this request: payment_intent or charge.",
        )
        .with_code("parameter_missing")
        .with_param("payment_intent")),
        (Some(id), None) => {
            let intent = store
                .get_live(kinds::PAYMENT_INTENT, id)
                .ok_or_else(|| {
                    ApiError::resource_missing(payment_intents::LABEL, id, "payment_intent")
                })?
                .object
                .clone();
            let no_charge = || {
                ApiError::invalid_param(
                    "payment_intent",
                    format!(
                        "This PaymentIntent ({id}) does not have a successful charge to refund."
                    ),
                )
            };
            if str_field(&intent, "status") != Some("succeeded") {
                return Err(no_charge());
            }
            let charge = str_field(&intent, "latest_charge")
                .and_then(|ch| store.get_live(kinds::CHARGE, ch))
                .map(|r| r.object.clone())
                .filter(|ch| str_field(ch, "status") == Some("succeeded"))
                .ok_or_else(no_charge)?;
            Ok((charge, "payment_intent"))
        }
        (None, Some(id)) => {
            let charge = store
                .get_live(kinds::CHARGE, id)
                .ok_or_else(|| ApiError::resource_missing(charges::LABEL, id, "charge"))?
                .object
                .clone();
            Ok((charge, "charge"))
        }
    }
}

/// The amount still refundable on `charge` (its amount less what was refunded, which
/// includes the part a partial capture released).
pub fn unrefunded(charge: &Value) -> i64 {
    (int_field(charge, "amount") - int_field(charge, "amount_refunded")).max(0)
}

/// Checks that `charge` can be refunded by `amount` (`None`: whatever remains) and returns
/// the amount to refund.
fn check_refundable(charge: &Value, param: &str, amount: Option<i64>) -> ApiResult<i64> {
    let id = str_field(charge, "id").unwrap_or_default();
    let currency = str_field(charge, "currency").unwrap_or("usd");
    let status = str_field(charge, "status").unwrap_or_default();
    if status != "succeeded" {
        return Err(ApiError::invalid_param(
            param,
            format!("Charge {id} cannot be refunded because its status is {status}."),
        ));
    }
    let remaining = unrefunded(charge);
    let refunded = charge.get("refunded").and_then(Value::as_bool) == Some(true);
    if refunded || remaining == 0 {
        return Err(
            ApiError::invalid_request(format!("Charge {id} has already been refunded."))
                .with_code("charge_already_refunded"),
        );
    }
    if charge.get("captured").and_then(Value::as_bool) != Some(true) {
        return Err(ApiError::invalid_param(
            param,
            format!(
                "Charge {id} has not been captured. To release an uncaptured payment, cancel its PaymentIntent instead."
            ),
        ));
    }
    let amount = amount.unwrap_or(remaining);
    if amount > remaining {
        let what = if int_field(charge, "amount_refunded") == 0 {
            "charge amount"
        } else {
            "unrefunded amount on charge"
        };
        return Err(ApiError::invalid_request(format!(
            "Refund amount ({}) is greater than {what} ({})",
            format_amount(amount, currency),
            format_amount(remaining, currency)
        ))
        .with_code("amount_too_large")
        .with_param("amount"));
    }
    Ok(amount)
}

/// A positive `amount` parameter.
fn read_amount(p: &Params) -> ApiResult<Option<i64>> {
    match p.integer(&["amount"])? {
        Some(n) if n < 1 => Err(ApiError::invalid_request("Invalid positive integer")
            .with_code("parameter_invalid_integer")
            .with_param("amount")),
        other => Ok(other),
    }
}

/// A succeeded refund of `amount` of `charge`, shaped from the fixture.
fn new_object(
    id: &str,
    charge: &Value,
    amount: i64,
    reason: Option<&str>,
    metadata: Map<String, Value>,
    now: i64,
) -> Value {
    let mut refund = fixture(kinds::REFUND);
    for (key, value) in [
        ("id", json!(id)),
        ("object", json!("refund")),
        ("amount", json!(amount)),
        ("balance_transaction", json!(ids::long_id("txn"))),
        ("charge", charge.get("id").cloned().unwrap_or(Value::Null)),
        ("created", json!(now)),
        (
            "currency",
            charge.get("currency").cloned().unwrap_or(json!("usd")),
        ),
        ("customer", Value::Null),
        ("customer_account", Value::Null),
        (
            "destination_details",
            json!({"card": {"reference_status": "pending", "reference_type": "acquirer_reference_number", "type": "refund"}, "type": "card"}),
        ),
        ("metadata", Value::Object(metadata)),
        (
            "payment_intent",
            charge.get("payment_intent").cloned().unwrap_or(Value::Null),
        ),
        ("payment_method", Value::Null),
        ("reason", opt_str(reason)),
        ("receipt_number", Value::Null),
        ("source_transfer_reversal", Value::Null),
        ("status", json!("succeeded")),
        ("transfer_reversal", Value::Null),
    ] {
        set(&mut refund, key, value);
    }
    refund
}

/// `POST /v1/refunds` with `payment_intent` or `charge`, optional `amount` (default:
/// whatever remains), `reason`, `metadata`.
pub fn create(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    unsupported(p, &["customer", "origin", "instructions_email"])?;
    let amount = read_amount(p)?;
    let (charge, param) = target_charge(ctx.store, p)?;
    let amount = check_refundable(&charge, param, amount)?;
    if let Some(currency) = money::currency(p, &["currency"])?
        && Some(currency.as_str()) != str_field(&charge, "currency")
    {
        return Err(ApiError::invalid_param(
            "currency",
            format!(
                "The currency ({currency}) does not match the charge's currency ({}).",
                str_field(&charge, "currency").unwrap_or_default()
            ),
        ));
    }
    let reason = one_of(p, &["reason"], REASONS)?;
    p.boolean(&["refund_application_fee"])?;
    p.boolean(&["reverse_transfer"])?;
    let metadata = merge_metadata(&Map::new(), p.hash(&["metadata"])?)?;

    let charge_id = str_field(&charge, "id").unwrap_or_default().to_owned();
    let Some(record) = ctx.store.get_live_mut(kinds::CHARGE, &charge_id) else {
        return Err(ApiError::resource_missing(
            charges::LABEL,
            &charge_id,
            param,
        ));
    };
    let o = &mut record.object;
    let refunded = int_field(o, "amount_refunded").saturating_add(amount);
    set(o, "amount_refunded", json!(refunded));
    set(o, "refunded", json!(refunded >= int_field(o, "amount")));
    let id = ids::long_id("re");
    let refund = new_object(&id, &charge, amount, reason, metadata, ctx.now);
    ctx.store.insert(kinds::REFUND, refund);
    stored(ctx.store, &id)
}

/// `GET /v1/refunds/:id`.
pub fn retrieve(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    stored(ctx.store, id)
}

/// `POST /v1/refunds/:id`: `metadata` only (any other parameter is unknown, as in Stripe).
pub fn update(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let p = ctx.params;
    let current = stored(ctx.store, id)?;
    if let Some((name, _)) = p
        .pairs()
        .iter()
        .find(|(name, _)| !name.starts_with("metadata") && !name.starts_with("expand"))
    {
        return Err(
            ApiError::invalid_param(name, format!("Received unknown parameter: {name}"))
                .with_code("parameter_unknown"),
        );
    }
    let metadata = merge_metadata(&metadata_of(&current), p.hash(&["metadata"])?)?;
    let Some(record) = ctx.store.get_live_mut(kinds::REFUND, id) else {
        return Err(ApiError::resource_missing(LABEL, id, "id"));
    };
    set(&mut record.object, "metadata", Value::Object(metadata));
    Ok(record.object.clone())
}

/// `GET /v1/refunds` with `payment_intent`, `charge`, `created`.
pub fn list(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    let intent = p.non_empty(&["payment_intent"])?;
    let charge = p.non_empty(&["charge"])?;
    let paging = ListParams::parse(p, ctx.store, kinds::REFUND, LABEL)?;
    if intent.is_none() && charge.is_none() {
        return Ok(paging.page_plain("/v1/refunds", ctx.store));
    }
    let needles = [("payment_intent", intent), ("charge", charge)];
    let records = paging.walk_where(ctx.store, &needles).filter(|r| {
        intent.is_none_or(|i| str_field(&r.object, "payment_intent") == Some(i))
            && charge.is_none_or(|c| str_field(&r.object, "charge") == Some(c))
    });
    Ok(paging.page("/v1/refunds", records))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charge(amount: i64, refunded: i64) -> Value {
        json!({"id": "ch_1", "amount": amount, "amount_refunded": refunded, "currency": "usd",
            "status": "succeeded", "captured": true, "refunded": refunded >= amount})
    }

    #[test]
    fn refundable_amounts() {
        assert_eq!(
            check_refundable(&charge(1000, 0), "charge", None).unwrap(),
            1000
        );
        assert_eq!(
            check_refundable(&charge(1000, 400), "charge", Some(600)).unwrap(),
            600
        );
        let err = check_refundable(&charge(1000, 0), "charge", Some(1500)).unwrap_err();
        assert_eq!(err.code.as_deref(), Some("amount_too_large"));
        assert_eq!(err.param.as_deref(), Some("amount"));
        assert_eq!(
            err.message,
            "Refund amount ($15.00) is greater than charge amount ($10.00)"
        );
        let err = check_refundable(&charge(1000, 400), "charge", Some(601)).unwrap_err();
        assert_eq!(
            err.message,
            "Refund amount ($6.01) is greater than unrefunded amount on charge ($6.00)"
        );
        let err = check_refundable(&charge(1000, 1000), "payment_intent", None).unwrap_err();
        assert_eq!(err.code.as_deref(), Some("charge_already_refunded"));
        assert_eq!(err.message, "Charge ch_1 has already been refunded.");
        let mut uncaptured = charge(1000, 0);
        uncaptured["captured"] = json!(false);
        assert_eq!(
            check_refundable(&uncaptured, "charge", None)
                .unwrap_err()
                .param
                .as_deref(),
            Some("charge")
        );
        let mut failed = charge(1000, 0);
        failed["status"] = json!("failed");
        assert!(check_refundable(&failed, "charge", None).is_err());
    }
}
