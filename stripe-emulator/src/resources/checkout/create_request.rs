//! Reading a `POST /v1/checkout/sessions` and checking all of it before anything is stored.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::form::Params;
use crate::json::str_field;
use crate::money;
use crate::objects::coupons;
use crate::objects::customers;
use crate::objects::prices::{self, PriceData, ProductRef, Recurrence};
use crate::params::{merge_metadata, one_of, unsupported};
use crate::store::Store;
use crate::text::is_url;

/// Most line items a session takes.
const MAX_LINE_ITEMS: usize = 100;

/// Shortest and longest session lifetimes (30 minutes, 24 hours).
const MIN_LIFETIME: i64 = 30 * 60;
const MAX_LIFETIME: i64 = 24 * 60 * 60;

/// The price of a requested line item: a stored price, or inline `price_data` (stored as a
/// price of its own when the session is created).
pub enum Line {
    Stored(Value),
    Inline(PriceData, ProductRef),
}

/// A requested line item: its price, quantity, currency, billing interval (recurring
/// prices) and the parameter that named its price.
pub type RequestedLine = (Line, i64, String, Option<(String, i64)>, String);

/// Where the customer goes: the page's `ui_mode`, whether Stripe hosts it, and the
/// `success_url`, `cancel_url` and `return_url`.
pub struct Redirects {
    pub ui_mode: &'static str,
    pub hosted: bool,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    pub return_url: Option<String>,
}

/// `subscription_data[...]` and `payment_intent_data[...]`.
pub struct ModeData {
    pub trial_days: Option<i64>,
    pub trial_end: Option<i64>,
    pub sub_description: Option<String>,
    pub sub_metadata: Map<String, Value>,
    pub pi_description: Option<String>,
    pub pi_metadata: Map<String, Value>,
    pub pi_sfu: Option<String>,
}

/// A create request, checked.
pub struct SessionRequest<'p> {
    /// `payment`, `setup` or `subscription`.
    pub mode: String,
    pub redirects: Redirects,
    pub customer: Option<String>,
    pub customer_email: Option<String>,
    pub customer_creation: Option<&'p str>,
    pub lines: Vec<RequestedLine>,
    /// The line items' currency (or `currency` when there are none).
    pub currency: Option<String>,
    pub allow_promotion_codes: Option<bool>,
    /// The coupon of `discounts[0][coupon]`, as it is now.
    pub coupon: Option<Value>,
    pub mode_data: ModeData,
    pub metadata: Map<String, Value>,
    pub client_reference_id: Option<&'p str>,
    pub expires_at: i64,
    pub locale: Option<&'p str>,
    pub submit_type: Option<&'p str>,
}

fn url_param(p: &Params, name: &str) -> ApiResult<Option<String>> {
    match p.non_empty(&[name])? {
        Some(url) if !is_url(url) => Err(ApiError::invalid_request("Not a valid URL")
            .with_code("url_invalid")
            .with_param(name)),
        other => Ok(other.map(str::to_owned)),
    }
}

/// Reads and checks a create request.
pub fn read_session<'p>(p: &'p Params, store: &Store, now: i64) -> ApiResult<SessionRequest<'p>> {
    unsupported(
        p,
        &[
            "customer_account",
            "optional_items",
            "shipping_options",
            "automatic_tax",
            "payment_method_data",
        ],
    )?;
    let mode = match p.non_empty(&["mode"])? {
        None => return Err(ApiError::parameter_missing("mode")),
        Some(_) => one_of(p, &["mode"], &["payment", "setup", "subscription"])?
            .unwrap_or("payment")
            .to_owned(),
    };
    let redirects = read_redirects(p)?;
    let (customer, customer_email, customer_creation) = read_customer(p, store, &mode)?;
    let lines = read_lines(p, store, &mode)?;
    let currency = read_currency(p, &lines, &mode)?;
    let (allow_promotion_codes, coupon) = read_discount(p, store, now, currency.as_deref())?;
    let mode_data = read_mode_data(p, &mode, now)?;
    let metadata = merge_metadata(&Map::new(), p.hash(&["metadata"])?)?;
    let client_reference_id = p.non_empty(&["client_reference_id"])?;
    if client_reference_id.is_some_and(|c| c.chars().count() > 200) {
        return Err(ApiError::invalid_param(
            "client_reference_id",
            "client_reference_id must be at most 200 characters.",
        ));
    }
    let expires_at = match p.integer(&["expires_at"])? {
        None => now + MAX_LIFETIME,
        Some(at) if at < now + MIN_LIFETIME => {
            return Err(ApiError::invalid_param(
                "expires_at",
                "The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.",
            ));
        }
        Some(at) if at > now + MAX_LIFETIME => {
            return Err(ApiError::invalid_param(
                "expires_at",
                "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
            ));
        }
        Some(at) => at,
    };
    let locale = p.non_empty(&["locale"])?;
    let submit_type = one_of(
        p,
        &["submit_type"],
        &["auto", "book", "donate", "pay", "subscribe"],
    )?;
    Ok(SessionRequest {
        mode,
        redirects,
        customer,
        customer_email,
        customer_creation,
        lines,
        currency,
        allow_promotion_codes,
        coupon,
        mode_data,
        metadata,
        client_reference_id,
        expires_at,
        locale,
        submit_type,
    })
}

/// `ui_mode` and the URLs it requires: `success_url` for a hosted page, `return_url`
/// otherwise (unless `redirect_on_completion=never`).
fn read_redirects(p: &Params) -> ApiResult<Redirects> {
    let ui_mode = match p.non_empty(&["ui_mode"])? {
        None | Some("hosted" | "hosted_page") => "hosted_page",
        Some("embedded" | "embedded_page") => "embedded_page",
        Some("custom" | "elements") => "elements",
        Some("form") => "form",
        Some(other) => {
            return Err(ApiError::invalid_param(
                "ui_mode",
                format!("Invalid ui_mode: {other}"),
            ));
        }
    };
    let hosted = ui_mode == "hosted_page";
    let success_url = url_param(p, "success_url")?;
    let cancel_url = url_param(p, "cancel_url")?;
    let return_url = url_param(p, "return_url")?;
    if hosted {
        if success_url.is_none() {
            return Err(ApiError::parameter_missing("success_url"));
        }
        if return_url.is_some() {
            return Err(ApiError::invalid_param(
                "return_url",
                "`return_url` can only be used with `ui_mode` embedded_page, elements or form; use `success_url` with a hosted page.",
            ));
        }
    } else {
        if success_url.is_some() || cancel_url.is_some() {
            return Err(ApiError::invalid_param(
                "success_url",
                format!(
                    "`success_url` and `cancel_url` cannot be used with `ui_mode={ui_mode}`; use `return_url`."
                ),
            ));
        }
        let never = p.non_empty(&["redirect_on_completion"])? == Some("never");
        if return_url.is_none() && !never {
            return Err(ApiError::parameter_missing("return_url"));
        }
    }
    Ok(Redirects {
        ui_mode,
        hosted,
        success_url,
        cancel_url,
        return_url,
    })
}

/// `customer` (live) or `customer_email`, and `customer_creation` (`payment` mode only).
fn read_customer<'p>(
    p: &'p Params,
    store: &Store,
    mode: &str,
) -> ApiResult<(Option<String>, Option<String>, Option<&'p str>)> {
    let customer = p.non_empty(&["customer"])?.map(str::to_owned);
    let customer_email = p.non_empty(&["customer_email"])?.map(str::to_owned);
    if customer.is_some() && customer_email.is_some() {
        return Err(ApiError::invalid_request(
            "You may only specify one of these parameters: customer, customer_email.",
        )
        .with_code("parameters_exclusive")
        .with_param("customer_email"));
    }
    if let Some(customer) = &customer {
        customers::require_live(store, customer, "customer")?;
    }
    if let Some(email) = &customer_email
        && !email.contains('@')
    {
        return Err(
            ApiError::invalid_request(format!("Invalid email address: {email}"))
                .with_code("email_invalid")
                .with_param("customer_email"),
        );
    }
    let customer_creation = one_of(p, &["customer_creation"], &["always", "if_required"])?;
    if customer_creation.is_some() && mode != "payment" {
        return Err(ApiError::invalid_param(
            "customer_creation",
            "`customer_creation` can only be used in `payment` mode.",
        ));
    }
    Ok((customer, customer_email, customer_creation))
}

/// `line_items[N][price|price_data|quantity]`: none in `setup` mode, at most
/// [`MAX_LINE_ITEMS`], each stored price active and used once, no recurring price in
/// `payment` mode.
fn read_lines(p: &Params, store: &Store, mode: &str) -> ApiResult<Vec<RequestedLine>> {
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
fn read_currency(p: &Params, lines: &[RequestedLine], mode: &str) -> ApiResult<Option<String>> {
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

/// `allow_promotion_codes`, or one `discounts[0][coupon]` usable in `currency`.
fn read_discount(
    p: &Params,
    store: &Store,
    now: i64,
    currency: Option<&str>,
) -> ApiResult<(Option<bool>, Option<Value>)> {
    let allow_promotion_codes = p.boolean(&["allow_promotion_codes"])?;
    let discount_indexes = p.indexed(&["discounts"])?;
    if allow_promotion_codes == Some(true) && !discount_indexes.is_empty() {
        return Err(ApiError::invalid_request(
            "You may only specify one of these parameters: allow_promotion_codes, discounts.",
        )
        .with_code("parameters_exclusive")
        .with_param("discounts"));
    }
    if discount_indexes.len() > 1 {
        return Err(ApiError::invalid_param(
            "discounts",
            "You may only specify one discount for a Checkout Session.",
        ));
    }
    let coupon = match (discount_indexes.first(), currency) {
        (Some(index), Some(currency)) => {
            if p.non_empty(&["discounts", index, "promotion_code"])?
                .is_some()
            {
                return Err(ApiError::invalid_param(
                    &format!("discounts[{index}][promotion_code]"),
                    "The Stripe emulator does not support promotion codes.",
                ));
            }
            let param = format!("discounts[{index}][coupon]");
            let id = p
                .non_empty(&["discounts", index, "coupon"])?
                .ok_or_else(|| ApiError::parameter_missing(&param))?;
            Some(coupons::require_usable(
                store,
                id,
                &param,
                now,
                Some(currency),
            )?)
        }
        (Some(_), None) => {
            return Err(ApiError::invalid_param(
                "discounts",
                "Discounts can only be used with line items.",
            ));
        }
        _ => None,
    };
    Ok((allow_promotion_codes, coupon))
}

/// `subscription_data[trial_period_days|trial_end|description|metadata]` (`subscription`
/// mode) and `payment_intent_data[description|metadata|setup_future_usage]` (`payment`
/// mode).
fn read_mode_data(p: &Params, mode: &str, now: i64) -> ApiResult<ModeData> {
    let has_sub_data = p.has(&["subscription_data"]);
    if has_sub_data && mode != "subscription" {
        return Err(ApiError::invalid_param(
            "subscription_data",
            "`subscription_data` can only be used in `subscription` mode.",
        ));
    }
    let trial_days = p.integer(&["subscription_data", "trial_period_days"])?;
    if let Some(days) = trial_days
        && !(1..=730).contains(&days)
    {
        return Err(ApiError::invalid_param(
            "subscription_data[trial_period_days]",
            "Invalid trial_period_days: must be between 1 and 730.",
        ));
    }
    let trial_end = p.integer(&["subscription_data", "trial_end"])?;
    if trial_days.is_some() && trial_end.is_some() {
        return Err(ApiError::invalid_request(
            "You may only specify one of these parameters: subscription_data[trial_end], subscription_data[trial_period_days].",
        )
        .with_code("parameters_exclusive")
        .with_param("subscription_data[trial_end]"));
    }
    if let Some(end) = trial_end
        && end < now + 2 * 86_400
    {
        return Err(ApiError::invalid_param(
            "subscription_data[trial_end]",
            "subscription_data[trial_end] must be at least 48 hours in the future.",
        ));
    }
    let sub_description = p
        .non_empty(&["subscription_data", "description"])?
        .map(str::to_owned);
    let sub_metadata = merge_metadata(&Map::new(), p.hash(&["subscription_data", "metadata"])?)?;
    if p.has(&["payment_intent_data"]) && mode != "payment" {
        return Err(ApiError::invalid_param(
            "payment_intent_data",
            "`payment_intent_data` can only be used in `payment` mode.",
        ));
    }
    let pi_description = p
        .non_empty(&["payment_intent_data", "description"])?
        .map(str::to_owned);
    let pi_metadata = merge_metadata(&Map::new(), p.hash(&["payment_intent_data", "metadata"])?)?;
    let pi_sfu = one_of(
        p,
        &["payment_intent_data", "setup_future_usage"],
        &["on_session", "off_session"],
    )?
    .map(str::to_owned);
    Ok(ModeData {
        trial_days,
        trial_end,
        sub_description,
        sub_metadata,
        pi_description,
        pi_metadata,
        pi_sfu,
    })
}
