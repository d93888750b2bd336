//! The line items of a `POST /v1/checkout/sessions`, and the currency they give the session.

use std::collections::HashSet;

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::form::Params;
use crate::json::str_field;
use crate::money;
use crate::objects::prices::{self, PriceData, ProductRef, Recurrence};
use crate::store::Store;

/// Most line items a session takes.
const MAX_LINE_ITEMS: usize = 100;

/// The price of a requested line item: a stored price, or inline `price_data` (stored as a
/// price of its own when the session is created).
pub enum Line {
    Stored(Value),
    Inline(PriceData, ProductRef),
}

/// A requested line item: its price, quantity, currency, billing interval (recurring
/// prices) and the parameter that named its price.
pub type RequestedLine = (Line, i64, String, Option<(String, i64)>, String);

/// `line_items[N][price|price_data|quantity]`: none in `setup` mode, at most
/// `MAX_LINE_ITEMS`, each stored price active and used once, no recurring price in
/// `payment` mode.
pub fn read_lines(p: &Params, store: &Store, mode: &str) -> ApiResult<Vec<RequestedLine>> {
    let indexes = p.indexed(&["line_items"])?;
    if mode == "setup" && !indexes.is_empty() {
        return Err(ApiError::invalid_param(
            "line_items",
            "You cannot pass `line_items` in `setup` mode.",
        ));
    }
    if mode != "setup" && indexes.is_empty() {
        return Err(ApiError::parameter_missing("line_items"));
    }
    if indexes.len() > MAX_LINE_ITEMS {
        return Err(ApiError::invalid_param(
            "line_items",
            format!("You may only specify up to {MAX_LINE_ITEMS} line items."),
        ));
    }
    let mut lines = Vec::new();
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
                let data_prefix = ["line_items", index.as_str(), "price_data"];
                let (data, product) =
                    prices::read_inline(p, &data_prefix, store, Recurrence::Allowed)?;
                Line::Inline(data, product)
            }
            None => return Err(ApiError::parameter_missing(&price_param)),
        };
        let qty_param = format!("line_items[{index}][quantity]");
        let quantity = p
            .integer(&["line_items", index, "quantity"])?
            .ok_or_else(|| ApiError::parameter_missing(&qty_param))?;
        if quantity < 1 {
            return Err(ApiError::invalid_param(
                &qty_param,
                "Quantity must be greater than 0.",
            ));
        }
        let (currency, recurring) = match &line {
            Line::Stored(price) => (
                str_field(price, "currency").unwrap_or_default().to_owned(),
                prices::interval_of(price),
            ),
            Line::Inline(data, _) => (
                data.currency.clone(),
                data.recurring
                    .as_ref()
                    .map(|r| (r.interval.clone(), r.interval_count)),
            ),
        };
        if mode == "payment" && recurring.is_some() {
            return Err(ApiError::invalid_param(
                &price_param,
                "You specified `payment` mode but passed a recurring price. Either switch to `subscription` mode or use only one-time prices.",
            ));
        }
        lines.push((line, quantity, currency, recurring, price_param));
    }
    Ok(lines)
}

/// The session's currency: the line items' (all alike, and `currency` if sent must match),
/// else `currency`; in `subscription` mode the recurring prices share one interval.
pub fn read_currency(p: &Params, lines: &[RequestedLine], mode: &str) -> ApiResult<Option<String>> {
    let currency = match lines.first() {
        Some((_, _, currency, _, _)) => Some(currency.clone()),
        None => money::currency(p, &["currency"])?,
    };
    for (_, _, c, _, param) in lines {
        if Some(c) != currency.as_ref() {
            return Err(ApiError::invalid_param(
                param,
                "All line items must have the same currency.",
            ));
        }
    }
    if let (Some(wanted), Some(currency)) = (money::currency(p, &["currency"])?, &currency)
        && &wanted != currency
    {
        return Err(ApiError::invalid_param(
            "currency",
            format!(
                "The currency ({wanted}) does not match the line items' currency ({currency})."
            ),
        ));
    }
    if mode == "subscription" {
        let intervals: Vec<_> = lines.iter().filter_map(|l| l.3.clone()).collect();
        if intervals.is_empty() {
            return Err(ApiError::invalid_param(
                "line_items",
                "You must provide at least one recurring price in `subscription` mode when using prices.",
            ));
        }
        if intervals.iter().any(|i| i != &intervals[0]) {
            return Err(ApiError::invalid_param(
                "line_items",
                "All recurring prices of a subscription must have the same billing interval.",
            ));
        }
    }
    Ok(currency)
}
