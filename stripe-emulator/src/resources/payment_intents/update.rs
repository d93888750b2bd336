//! `POST /v1/payment_intents/:id`.

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::json::{metadata_of, opt_str, set, str_field};
use crate::money::{self};
use crate::objects::customers;
use crate::objects::payment_intents::{LABEL, stored};
use crate::objects::payment_methods::{self};
use crate::params::{merge_metadata, one_of};
use crate::resources::ctx::Ctx;
use crate::resources::payment_intents::read::{
    check_amount, read_payment_method, read_strings, status_of, unexpected_state,
};
use crate::store::kinds;

const UPDATABLE: &[&str] = &[
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
];

/// `POST /v1/payment_intents/:id`: `amount`, `currency`, `customer`, `payment_method`,
/// `description`, `metadata`, `receipt_email`, `setup_future_usage`, statement descriptors,
/// `capture_method`. Once succeeded or canceled only `description`, `metadata` and
/// `receipt_email` can change.
pub fn update(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let p = ctx.params;
    let current = stored(ctx.store, id, "id")?;
    let status = status_of(&current).to_owned();
    let metadata = merge_metadata(&metadata_of(&current), p.hash(&["metadata"])?)?;
    let strings = read_strings(
        p,
        &[
            "description",
            "receipt_email",
            "statement_descriptor",
            "statement_descriptor_suffix",
            "transfer_group",
        ],
    )?;
    let amount = p.integer(&["amount"])?;
    let currency = money::currency(p, &["currency"])?;
    let customer = p.nullable_string(&["customer"])?;
    let capture_method = one_of(
        p,
        &["capture_method"],
        &["automatic", "automatic_async", "manual"],
    )?;
    let setup_future_usage = p.nullable_string(&["setup_future_usage"])?;
    let changes_payment = amount.is_some()
        || currency.is_some()
        || customer.is_some()
        || p.has(&["payment_method"])
        || capture_method.is_some()
        || setup_future_usage.is_some()
        || strings
            .iter()
            .any(|(f, _)| matches!(*f, "statement_descriptor" | "statement_descriptor_suffix"));
    if changes_payment && !UPDATABLE.contains(&status.as_str()) {
        return Err(unexpected_state("updated", &status, UPDATABLE));
    }
    let new_currency = currency
        .clone()
        .unwrap_or_else(|| str_field(&current, "currency").unwrap_or("usd").to_owned());
    if let Some(amount) = amount {
        check_amount(amount, &new_currency, "amount")?;
    }
    let new_customer = match customer {
        Some(Some(c)) => {
            customers::require_live(ctx.store, c, "customer")?;
            Some(c.to_owned())
        }
        Some(None) => None,
        None => str_field(&current, "customer").map(str::to_owned),
    };
    if let Some(sfu) = setup_future_usage.flatten()
        && !matches!(sfu, "on_session" | "off_session")
    {
        return Err(ApiError::invalid_param(
            "setup_future_usage",
            "Invalid setup_future_usage: must be one of on_session, off_session",
        ));
    }
    let pm = read_payment_method(ctx.store, p, new_customer.as_deref())?;

    let pm_id = pm.map(|pm| payment_methods::materialize(ctx.store, ctx.now, &pm, None));
    let Some(record) = ctx.store.get_live_mut(kinds::PAYMENT_INTENT, id) else {
        return Err(ApiError::resource_missing(LABEL, id, "id"));
    };
    let o = &mut record.object;
    set(o, "metadata", Value::Object(metadata));
    for (field, value) in strings {
        set(o, field, opt_str(value));
    }
    if let Some(amount) = amount {
        set(o, "amount", json!(amount));
    }
    if currency.is_some() {
        set(o, "currency", json!(new_currency));
    }
    if customer.is_some() {
        set(o, "customer", opt_str(new_customer.as_deref()));
    }
    if let Some(method) = capture_method {
        set(o, "capture_method", json!(method));
    }
    if let Some(sfu) = setup_future_usage {
        set(o, "setup_future_usage", opt_str(sfu));
    }
    if let Some(pm_id) = pm_id {
        set(o, "payment_method", json!(pm_id));
        set(o, "status", json!("requires_confirmation"));
    }
    if changes_payment {
        set(o, "last_payment_error", Value::Null);
    }
    Ok(record.object.clone())
}
