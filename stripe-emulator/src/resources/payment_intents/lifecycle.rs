//! Retrieving, confirming, capturing, canceling and listing payment intents.

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::ids;
use crate::json::{int_field, metadata_of, opt_str, set, str_field};
use crate::list::ListParams;
use crate::objects::paid_invoices::mark_paid;
use crate::objects::payment_intents::{LABEL, confirm_stored, missing_payment_method, stored};
use crate::objects::payment_methods::{self};
use crate::params::{merge_metadata, one_of};
use crate::resources::ctx::Ctx;
use crate::resources::payment_intents::read::{
    check_return_url, off_session, read_payment_method, status_of, unexpected_state,
};
use crate::store::kinds;

/// `GET /v1/payment_intents/:id`.
pub fn retrieve(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    stored(ctx.store, id, "id")
}

/// `POST /v1/payment_intents/:id/confirm` with optional `payment_method`, `return_url`,
/// `off_session`, `receipt_email`, `setup_future_usage`.
pub fn confirm(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let p = ctx.params;
    let current = stored(ctx.store, id, "id")?;
    let status = status_of(&current).to_owned();
    let confirmable = [
        "requires_payment_method",
        "requires_confirmation",
        "requires_action",
    ];
    if !confirmable.contains(&status.as_str()) {
        return Err(ApiError::invalid_request(format!(
            "You cannot confirm this PaymentIntent because it has a status of {status}."
        ))
        .with_code("payment_intent_unexpected_state"));
    }
    off_session(p)?;
    let customer = str_field(&current, "customer").map(str::to_owned);
    let pm = read_payment_method(ctx.store, p, customer.as_deref())?;
    if pm.is_none() && current.get("payment_method").is_none_or(Value::is_null) {
        return Err(missing_payment_method());
    }
    let types: Option<Vec<String>> = if current
        .get("automatic_payment_methods")
        .and_then(|a| a.get("enabled"))
        .and_then(Value::as_bool)
        == Some(true)
    {
        None
    } else {
        Some(Vec::new())
    };
    let allow_redirects = current
        .pointer("/automatic_payment_methods/allow_redirects")
        .and_then(Value::as_str)
        .map(str::to_owned);
    check_return_url(types.as_deref(), allow_redirects.as_deref(), p)?;
    let receipt_email = p.nullable_string(&["receipt_email"])?;
    let setup_future_usage = one_of(p, &["setup_future_usage"], &["on_session", "off_session"])?;

    let pm_id = pm.map(|pm| payment_methods::materialize(ctx.store, ctx.now, &pm, None));
    if let Some(record) = ctx.store.get_live_mut(kinds::PAYMENT_INTENT, id) {
        let o = &mut record.object;
        if let Some(pm_id) = pm_id {
            set(o, "payment_method", json!(pm_id));
        }
        if let Some(email) = receipt_email {
            set(o, "receipt_email", opt_str(email));
        }
        if let Some(sfu) = setup_future_usage {
            set(o, "setup_future_usage", json!(sfu));
        }
    }
    confirm_stored(ctx.store, ctx.now, id)
}

/// `POST /v1/payment_intents/:id/capture` with optional `amount_to_capture`.
pub fn capture(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let p = ctx.params;
    let current = stored(ctx.store, id, "id")?;
    let status = status_of(&current).to_owned();
    if status != "requires_capture" {
        return Err(unexpected_state("captured", &status, &["requires_capture"]));
    }
    let capturable = int_field(&current, "amount_capturable");
    let amount = p.integer(&["amount_to_capture"])?.unwrap_or(capturable);
    if amount < 1 || amount > capturable {
        return Err(ApiError::invalid_param(
            "amount_to_capture",
            format!(
                "The amount to capture must be a positive integer no greater than the amount capturable ({capturable})."
            ),
        ));
    }
    let metadata = merge_metadata(&metadata_of(&current), p.hash(&["metadata"])?)?;
    let charge_id = str_field(&current, "latest_charge").map(str::to_owned);
    if let Some(charge_id) = &charge_id
        && let Some(record) = ctx.store.get_live_mut(kinds::CHARGE, charge_id)
    {
        let o = &mut record.object;
        set(o, "captured", json!(true));
        set(o, "amount_captured", json!(amount));
        set(o, "amount_refunded", json!(int_field(o, "amount") - amount));
        set(o, "balance_transaction", json!(ids::long_id("txn")));
    }
    let invoice = {
        let Some(record) = ctx.store.get_live_mut(kinds::PAYMENT_INTENT, id) else {
            return Err(ApiError::resource_missing(LABEL, id, "id"));
        };
        let o = &mut record.object;
        set(o, "status", json!("succeeded"));
        set(o, "amount_capturable", json!(0));
        set(o, "amount_received", json!(amount));
        set(o, "metadata", Value::Object(metadata));
        record
            .internal
            .get("invoice")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if let Some(invoice) = invoice {
        mark_paid(ctx.store, ctx.now, &invoice, id);
    }
    stored(ctx.store, id, "id")
}

/// `POST /v1/payment_intents/:id/cancel` with optional `cancellation_reason`.
pub fn cancel(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let p = ctx.params;
    let current = stored(ctx.store, id, "id")?;
    let status = status_of(&current).to_owned();
    let cancelable = [
        "requires_payment_method",
        "requires_capture",
        "requires_confirmation",
        "requires_action",
        "processing",
    ];
    if !cancelable.contains(&status.as_str()) {
        return Err(ApiError::invalid_request(format!(
            "You cannot cancel this PaymentIntent because it has a status of {status}. Only a PaymentIntent with one of the following statuses may be canceled: {}.",
            cancelable.join(", ")
        ))
        .with_code("payment_intent_unexpected_state"));
    }
    let reason = one_of(
        p,
        &["cancellation_reason"],
        &[
            "duplicate",
            "fraudulent",
            "requested_by_customer",
            "abandoned",
        ],
    )?;
    if status == "requires_capture"
        && let Some(charge_id) = str_field(&current, "latest_charge")
        && let Some(record) = ctx.store.get_live_mut(kinds::CHARGE, charge_id)
    {
        let o = &mut record.object;
        set(o, "refunded", json!(true));
        set(o, "amount_refunded", json!(int_field(o, "amount")));
    }
    let now = ctx.now;
    let Some(record) = ctx.store.get_live_mut(kinds::PAYMENT_INTENT, id) else {
        return Err(ApiError::resource_missing(LABEL, id, "id"));
    };
    let o = &mut record.object;
    set(o, "status", json!("canceled"));
    set(o, "canceled_at", json!(now));
    set(o, "cancellation_reason", opt_str(reason));
    set(o, "amount_capturable", json!(0));
    Ok(record.object.clone())
}

/// `GET /v1/payment_intents` with `customer`, `created`.
pub fn list(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    let customer = p.non_empty(&["customer"])?;
    let paging = ListParams::parse(p, ctx.store, kinds::PAYMENT_INTENT, LABEL)?;
    if customer.is_none() {
        return Ok(paging.page_plain("/v1/payment_intents", ctx.store));
    }
    let records = paging
        .walk_where(ctx.store, &[("customer", customer)])
        .filter(|r| customer.is_none_or(|c| str_field(&r.object, "customer") == Some(c)));
    Ok(paging.page("/v1/payment_intents", records))
}
