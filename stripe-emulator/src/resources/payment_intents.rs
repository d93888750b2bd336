//! Payment intents: create (optionally confirming), retrieve, update, confirm, capture,
//! cancel, list.
//!
//! Confirming charges the intent's payment method: a test card that succeeds gives
//! `succeeded` (or `requires_capture` with `capture_method=manual`) and a `ch_...` charge;
//! a declining card gives HTTP 402 with a `card_error` that carries the intent (now
//! `requires_payment_method`, with `last_payment_error`), and leaves a failed charge. The
//! same engine ([`insert`], [`confirm_stored`]) pays invoices.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::form::Params;
use crate::ids;
use crate::json::{int_field, metadata_of, opt_str, set, str_field};
use crate::list::{ListParams, created_filter};
use crate::money::{self, format_amount, minimum_amount};
use crate::objects::customers;
use crate::objects::paid_invoices::mark_paid;
use crate::objects::payment_intents::{
    LABEL, NewIntent, confirm_stored, insert, missing_payment_method, stored,
};
use crate::objects::payment_methods::{self, PmRef};
use crate::params::{merge_metadata, one_of, unsupported};
use crate::resources::ctx::Ctx;
use crate::store::{Store, kinds};
use crate::text::is_url;

/// Largest amount Stripe charges (eight digits).
const MAX_AMOUNT: i64 = 99_999_999;

/// Checks an amount against Stripe's minimum and maximum for `currency`.
pub fn check_amount(amount: i64, currency: &str, param: &str) -> ApiResult<()> {
    let minimum = minimum_amount(currency);
    if amount < minimum {
        return Err(ApiError::invalid_request(format!(
            "Amount must be at least {} {currency}",
            format_amount(minimum, currency)
        ))
        .with_code("amount_too_small")
        .with_param(param));
    }
    if amount > MAX_AMOUNT {
        return Err(ApiError::invalid_request(format!(
            "Amount must be no more than {} {currency}",
            format_amount(MAX_AMOUNT, currency)
        ))
        .with_code("amount_too_large")
        .with_param(param));
    }
    Ok(())
}

fn status_of(intent: &Value) -> &str {
    str_field(intent, "status").unwrap_or_default()
}

fn unexpected_state(action: &str, status: &str, allowed: &[&str]) -> ApiError {
    ApiError::invalid_request(format!(
        "This PaymentIntent could not be {action} because it has a status of {status}. Only a PaymentIntent with one of the following statuses may be {action}: {}.",
        allowed.join(", ")
    ))
    .with_code("payment_intent_unexpected_state")
}

/// Reads `off_session` (`true`, `false`, `one_off`, `recurring`).
fn off_session(p: &Params) -> ApiResult<bool> {
    match p.non_empty(&["off_session"])? {
        None | Some("false") => Ok(false),
        Some("true" | "one_off" | "recurring") => Ok(true),
        Some(other) => Err(ApiError::invalid_param(
            "off_session",
            format!("Invalid off_session: {other}"),
        )),
    }
}

/// Stripe requires a `return_url` to confirm an intent that allows redirect-based payment
/// methods (automatic payment methods with `allow_redirects` other than `never`).
fn check_return_url(
    intent_types: Option<&[String]>,
    allow_redirects: Option<&str>,
    p: &Params,
) -> ApiResult<()> {
    let redirects = intent_types.is_none() && allow_redirects != Some("never");
    if redirects && p.non_empty(&["return_url"])?.is_none() {
        return Err(ApiError::invalid_param(
            "return_url",
            "This PaymentIntent is configured to accept payment methods enabled in your Dashboard. Because some of these payment methods might redirect your customer off of your page, you must provide a `return_url`. If you don't want to accept redirect-based payment methods, set `automatic_payment_methods[enabled]` to `true` and `automatic_payment_methods[allow_redirects]` to `never` when creating Setup Intents and Payment Intents.",
        ));
    }
    if let Some(url) = p.non_empty(&["return_url"])?
        && !is_url(url)
    {
        return Err(ApiError::invalid_request("Not a valid URL")
            .with_code("url_invalid")
            .with_param("return_url"));
    }
    Ok(())
}

/// `allowed_payment_method_types[]` (this API version's name) or the older
/// `payment_method_types[]`; `None` when neither is sent.
fn read_types(p: &Params) -> ApiResult<Option<Vec<String>>> {
    for name in ["allowed_payment_method_types", "payment_method_types"] {
        if p.has(&[name]) {
            let types = p.string_list(&[name])?;
            if types.is_empty() {
                return Err(ApiError::invalid_param(
                    name,
                    format!("Invalid array: {name} must not be empty"),
                ));
            }
            return Ok(Some(types));
        }
    }
    Ok(None)
}

/// Resolves a `payment_method` argument for an intent of `customer`.
fn read_payment_method(
    store: &Store,
    p: &Params,
    customer: Option<&str>,
) -> ApiResult<Option<PmRef>> {
    let Some(value) = p.non_empty(&["payment_method"])? else {
        return Ok(None);
    };
    let pm = payment_methods::resolve(store, value, "payment_method")?;
    payment_methods::check_usable_for(store, &pm, customer, "payment_method")?;
    Ok(Some(pm))
}

fn read_strings<'p>(
    p: &'p Params,
    fields: &[&'static str],
) -> ApiResult<Vec<(&'static str, Option<&'p str>)>> {
    let mut out = Vec::new();
    for field in fields {
        if let Some(value) = p.nullable_string(&[field])? {
            if matches!(
                *field,
                "statement_descriptor" | "statement_descriptor_suffix"
            ) && value.is_some_and(|v| v.chars().count() > 22)
            {
                return Err(ApiError::invalid_param(
                    field,
                    format!("The {field} must be at most 22 characters."),
                ));
            }
            out.push((*field, value));
        }
    }
    Ok(out)
}

/// `POST /v1/payment_intents`.
pub fn create(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    unsupported(
        p,
        &["confirmation_token", "payment_method_data", "mandate_data"],
    )?;
    let amount = p
        .integer(&["amount"])?
        .ok_or_else(|| ApiError::parameter_missing("amount"))?;
    let currency = money::required_currency(p, &["currency"])?;
    check_amount(amount, &currency, "amount")?;
    let customer = p.non_empty(&["customer"])?;
    if let Some(customer) = customer {
        customers::require_live(ctx.store, customer, "customer")?;
    }
    let pm = read_payment_method(ctx.store, p, customer)?;
    let confirm = p.boolean(&["confirm"])?.unwrap_or(false);
    let off_session = off_session(p)?;
    if off_session && !confirm {
        return Err(ApiError::invalid_param(
            "off_session",
            "You can only pass `off_session` when `confirm` is true.",
        ));
    }
    let capture_method = one_of(
        p,
        &["capture_method"],
        &["automatic", "automatic_async", "manual"],
    )?
    .unwrap_or("automatic_async");
    let confirmation_method =
        one_of(p, &["confirmation_method"], &["automatic", "manual"])?.unwrap_or("automatic");
    let setup_future_usage = one_of(p, &["setup_future_usage"], &["on_session", "off_session"])?;
    let types = read_types(p)?;
    let automatic = p.boolean(&["automatic_payment_methods", "enabled"])?;
    if types.is_some() && automatic == Some(true) {
        return Err(ApiError::invalid_request(
            "You may only specify one of these parameters: automatic_payment_methods, payment_method_types.",
        )
        .with_code("parameters_exclusive")
        .with_param("automatic_payment_methods"));
    }
    let allow_redirects = one_of(
        p,
        &["automatic_payment_methods", "allow_redirects"],
        &["always", "never"],
    )?;
    if confirm {
        if pm.is_none() {
            return Err(missing_payment_method());
        }
        check_return_url(types.as_deref(), allow_redirects, p)?;
    }
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
    let string = |name: &str| {
        strings
            .iter()
            .find(|(field, _)| *field == name)
            .and_then(|(_, v)| v.map(str::to_owned))
    };
    let metadata = merge_metadata(&Map::new(), p.hash(&["metadata"])?)?;

    let pm_id = pm.map(|pm| payment_methods::materialize(ctx.store, ctx.now, &pm, None));
    let spec = NewIntent {
        amount,
        currency,
        customer: customer.map(str::to_owned),
        payment_method: pm_id,
        description: string("description"),
        metadata,
        capture_method: capture_method.to_owned(),
        confirmation_method: confirmation_method.to_owned(),
        setup_future_usage: setup_future_usage.map(str::to_owned),
        receipt_email: string("receipt_email"),
        statement_descriptor: string("statement_descriptor"),
        statement_descriptor_suffix: string("statement_descriptor_suffix"),
        payment_method_types: types,
        allow_redirects: allow_redirects.map(str::to_owned),
        transfer_group: string("transfer_group"),
        invoice: None,
    };
    let id = insert(ctx.store, ctx.now, &spec);
    if confirm {
        confirm_stored(ctx.store, ctx.now, &id)
    } else {
        stored(ctx.store, &id, "id")
    }
}

/// `GET /v1/payment_intents/:id`.
pub fn retrieve(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    stored(ctx.store, id, "id")
}

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
    let created = created_filter(p)?;
    let paging = ListParams::parse(p, ctx.store, kinds::PAYMENT_INTENT, LABEL)?;
    let records = ctx
        .store
        .live_newest_first(kinds::PAYMENT_INTENT)
        .filter(|r| {
            customer.is_none_or(|c| str_field(&r.object, "customer") == Some(c)) && created(r)
        });
    Ok(paging.page("/v1/payment_intents", records))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        assert_eq!(format_amount(50, "usd"), "$0.50");
        assert_eq!(format_amount(50, "jpy"), "¥50");
        assert_eq!(format_amount(200, "aed"), "2.00");
        assert!(check_amount(50, "usd", "amount").is_ok());
        let err = check_amount(49, "usd", "amount").unwrap_err();
        assert_eq!(err.code.as_deref(), Some("amount_too_small"));
        assert_eq!(err.param.as_deref(), Some("amount"));
        assert_eq!(err.message, "Amount must be at least $0.50 usd");
        assert!(check_amount(29, "gbp", "amount").is_err());
        assert!(check_amount(30, "gbp", "amount").is_ok());
        assert_eq!(
            check_amount(100_000_000, "usd", "amount")
                .unwrap_err()
                .code
                .as_deref(),
            Some("amount_too_large")
        );
    }
}
