//! Parameters of creating, updating and confirming payment intents, and the checks on them.

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::form::Params;
use crate::json::str_field;
use crate::money::{format_amount, minimum_amount};
use crate::objects::payment_methods::{self, PmRef};
use crate::store::Store;
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

pub fn status_of(intent: &Value) -> &str {
    str_field(intent, "status").unwrap_or_default()
}

pub fn unexpected_state(action: &str, status: &str, allowed: &[&str]) -> ApiError {
    ApiError::invalid_request(format!(
        "This PaymentIntent could not be {action} because it has a status of {status}. Only a PaymentIntent with one of the following statuses may be {action}: {}.",
        allowed.join(", ")
    ))
    .with_code("payment_intent_unexpected_state")
}

/// Reads `off_session` (`true`, `false`, `one_off`, `recurring`).
pub fn off_session(p: &Params) -> ApiResult<bool> {
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
pub fn check_return_url(
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

/// `allowed_payment_method_types[]` (this API version's name for the older
/// `payment_method_types[]`, which it refuses as unknown); `None` when not sent.
pub fn read_types(p: &Params) -> ApiResult<Option<Vec<String>>> {
    let name = "allowed_payment_method_types";
    if !p.has(&[name]) {
        return Ok(None);
    }
    let types = p.string_list(&[name])?;
    if types.is_empty() {
        return Err(ApiError::invalid_param(
            name,
            format!("Invalid array: {name} must not be empty"),
        ));
    }
    Ok(Some(types))
}

/// Resolves a `payment_method` argument for an intent of `customer`.
pub fn read_payment_method(
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

pub fn read_strings<'p>(
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
