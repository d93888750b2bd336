//! Parameters of creating and updating payment links: line items, after-completion
//! behaviour, messages, and the mode-specific data.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::form::{Params, param_name};
use crate::json::str_field;
use crate::objects::prices;
use crate::params::merge_metadata;
use crate::store::Store;
use crate::text::is_url;

/// Most line items a link takes.
const MAX_LINE_ITEMS: usize = 20;

/// Longest `inactive_message` and `custom_message` Stripe accepts.
const MAX_MESSAGE_LEN: usize = 500;

pub const SUBMIT_TYPES: &[&str] = &["auto", "book", "donate", "pay", "subscribe"];

pub fn message_param(p: &Params, path: &[&str]) -> ApiResult<Option<Option<String>>> {
    let value = p.nullable_string(path)?;
    if let Some(Some(message)) = value
        && message.chars().count() > MAX_MESSAGE_LEN
    {
        let name = param_name(path);
        return Err(ApiError::invalid_param(
            &name,
            format!("{name} must be at most {MAX_MESSAGE_LEN} characters."),
        ));
    }
    Ok(value.map(|v| v.map(str::to_owned)))
}

/// `after_completion[type]` with `[hosted_confirmation][custom_message]` or
/// `[redirect][url]`, as the object shows it; `None` when not sent.
pub fn read_after_completion(p: &Params) -> ApiResult<Option<Value>> {
    if !p.has(&["after_completion"]) {
        return Ok(None);
    }
    let kind = p
        .non_empty(&["after_completion", "type"])?
        .ok_or_else(|| ApiError::parameter_missing("after_completion[type]"))?;
    match kind {
        "hosted_confirmation" => {
            let message = message_param(
                p,
                &["after_completion", "hosted_confirmation", "custom_message"],
            )?
            .flatten();
            Ok(Some(json!({
                "hosted_confirmation": {"custom_message": message},
                "type": "hosted_confirmation"
            })))
        }
        "redirect" => {
            let param = "after_completion[redirect][url]";
            let url = p
                .non_empty(&["after_completion", "redirect", "url"])?
                .ok_or_else(|| ApiError::parameter_missing(param))?;
            if !is_url(url) {
                return Err(ApiError::invalid_request("Not a valid URL")
                    .with_code("url_invalid")
                    .with_param(param));
            }
            Ok(Some(json!({"redirect": {"url": url}, "type": "redirect"})))
        }
        other => Err(ApiError::invalid_param(
            "after_completion[type]",
            format!(
                "Invalid after_completion[type]: {other}. Must be one of hosted_confirmation, redirect"
            ),
        )),
    }
}

/// A line item of a create request: a stored price, or inline `price_data` (stored as a
/// price of its own when the link is created).
pub enum Line {
    Stored(Value),
    Inline(prices::PriceData, prices::ProductRef),
}

impl Line {
    pub fn currency(&self) -> &str {
        match self {
            Line::Stored(price) => str_field(price, "currency").unwrap_or_default(),
            Line::Inline(data, _) => &data.currency,
        }
    }

    pub fn interval(&self) -> Option<(String, i64)> {
        match self {
            Line::Stored(price) => {
                prices::interval_of(price).filter(|_| prices::is_recurring(price))
            }
            Line::Inline(data, _) => data
                .recurring
                .as_ref()
                .map(|r| (r.interval.clone(), r.interval_count)),
        }
    }
}

/// The line items of a create request: each a stored price (active, used once) or
/// `price_data`, with its quantity; all in one currency, recurring ones on one interval.
pub fn read_line_items(store: &Store, p: &Params) -> ApiResult<Vec<(Line, i64)>> {
    let indexes = p.indexed(&["line_items"])?;
    if indexes.is_empty() {
        return Err(ApiError::parameter_missing("line_items"));
    }
    if indexes.len() > MAX_LINE_ITEMS {
        return Err(ApiError::invalid_param(
            "line_items",
            format!("You may only specify up to {MAX_LINE_ITEMS} line items."),
        ));
    }
    let mut lines: Vec<(Line, i64)> = Vec::new();
    let mut seen = HashSet::new();
    for index in &indexes {
        let price_param = format!("line_items[{index}][price]");
        let line = match p.non_empty(&["line_items", index, "price"])? {
            Some(id) => {
                let price = prices::require(store, id, &price_param)?.object.clone();
                if price.get("active").and_then(Value::as_bool) == Some(false) {
                    return Err(ApiError::invalid_param(
                        &price_param,
                        format!("The price `{id}` is not active."),
                    ));
                }
                if !seen.insert(id.to_owned()) {
                    return Err(ApiError::invalid_param(
                        &price_param,
                        format!("The price `{id}` is used by more than one line item."),
                    ));
                }
                Line::Stored(price)
            }
            None if p.has(&["line_items", index, "price_data"]) => {
                let prefix = ["line_items", index.as_str(), "price_data"];
                let (data, product) =
                    prices::read_inline(p, &prefix, store, prices::Recurrence::Allowed)?;
                Line::Inline(data, product)
            }
            None => return Err(ApiError::parameter_missing(&price_param)),
        };
        let qty_param = format!("line_items[{index}][quantity]");
        let quantity = p
            .integer(&["line_items", index, "quantity"])?
            .ok_or_else(|| ApiError::parameter_missing(&qty_param))?;
        if quantity < 1 {
            return Err(ApiError::invalid_request(
                "This value must be greater than or equal to 1.",
            )
            .with_code("parameter_invalid_integer")
            .with_param(qty_param));
        }
        if let Some((first, _)) = lines.first() {
            if first.currency() != line.currency() {
                return Err(ApiError::invalid_param(
                    &price_param,
                    "All line items must have the same currency.",
                ));
            }
            let first_interval = lines.iter().find_map(|(l, _)| l.interval());
            if let (Some(first), Some(this)) = (first_interval, line.interval())
                && first != this
            {
                return Err(ApiError::invalid_param(
                    &price_param,
                    "All recurring prices of a payment link must have the same billing interval.",
                ));
            }
        }
        lines.push((line, quantity));
    }
    Ok(lines)
}

/// `payment_intent_data[description|metadata]` or `subscription_data[description|metadata|
/// trial_period_days]` as the object shows them; `None` when not sent.
pub fn read_mode_data(p: &Params, subscription: bool) -> ApiResult<(Option<Value>, Option<Value>)> {
    let (wanted, other) = if subscription {
        ("subscription_data", "payment_intent_data")
    } else {
        ("payment_intent_data", "subscription_data")
    };
    if p.has(&[other]) {
        return Err(ApiError::invalid_param(
            other,
            if subscription {
                "`payment_intent_data` can only be used with one-time prices; use `subscription_data` for recurring prices."
            } else {
                "`subscription_data` can only be used with recurring prices."
            },
        ));
    }
    if !p.has(&[wanted]) {
        return Ok((None, None));
    }
    let description = p.non_empty(&[wanted, "description"])?;
    let metadata = merge_metadata(&Map::new(), p.hash(&[wanted, "metadata"])?)?;
    if subscription {
        let trial = p.integer(&[wanted, "trial_period_days"])?;
        if let Some(days) = trial
            && !(1..=730).contains(&days)
        {
            return Err(ApiError::invalid_param(
                "subscription_data[trial_period_days]",
                "Invalid trial_period_days: must be between 1 and 730.",
            ));
        }
        Ok((
            None,
            Some(json!({
                "description": description,
                "invoice_settings": {"issuer": {"type": "self"}},
                "metadata": metadata,
                "trial_period_days": trial,
                "trial_settings": null
            })),
        ))
    } else {
        Ok((
            Some(json!({
                "capture_method": null,
                "description": description,
                "metadata": metadata,
                "setup_future_usage": null,
                "statement_descriptor": null,
                "statement_descriptor_suffix": null,
                "transfer_group": null
            })),
            None,
        ))
    }
}
