//! Reading a `POST /v1/checkout/sessions` and checking all of it before anything is stored.

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::form::Params;
use crate::objects::coupons;
use crate::objects::customers;
use crate::objects::promotion_codes::{self, Purchase};
use crate::params::{merge_metadata, one_of, unsupported};
use crate::resources::checkout::create_lines::{RequestedLine, read_currency, read_lines};
use crate::store::Store;
use crate::text::is_url;

/// Shortest and longest session lifetimes (30 minutes, 24 hours).
const MIN_LIFETIME: i64 = 30 * 60;
const MAX_LIFETIME: i64 = 24 * 60 * 60;

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
    /// The coupon of `discounts[0][coupon]` (or of its promotion code), as it is now.
    pub coupon: Option<Value>,
    /// The promotion code of `discounts[0][promotion_code]`.
    pub promotion_code: Option<String>,
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
    let discount = read_discount(p, store, now, currency.as_deref(), customer.as_deref())?;
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
        allow_promotion_codes: discount.allow_promotion_codes,
        coupon: discount.coupon,
        promotion_code: discount.promotion_code,
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

/// A session's discount: `allow_promotion_codes`, or the coupon of one
/// `discounts[0][coupon]` or `discounts[0][promotion_code]`.
struct Discount {
    allow_promotion_codes: Option<bool>,
    coupon: Option<Value>,
    promotion_code: Option<String>,
}

/// `allow_promotion_codes`, or one `discounts[0][coupon]` or
/// `discounts[0][promotion_code]` usable in `currency` (by `customer`).
fn read_discount(
    p: &Params,
    store: &Store,
    now: i64,
    currency: Option<&str>,
    customer: Option<&str>,
) -> ApiResult<Discount> {
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
    let mut discount = Discount {
        allow_promotion_codes,
        coupon: None,
        promotion_code: None,
    };
    let Some(index) = discount_indexes.first() else {
        return Ok(discount);
    };
    let Some(currency) = currency else {
        return Err(ApiError::invalid_param(
            "discounts",
            "Discounts can only be used with line items.",
        ));
    };
    let coupon = p.non_empty(&["discounts", index, "coupon"])?;
    let promo = p.non_empty(&["discounts", index, "promotion_code"])?;
    match (coupon, promo) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_request(format!(
                "You may only specify one of these parameters: discounts[{index}][coupon], discounts[{index}][promotion_code]."
            ))
            .with_code("parameters_exclusive")
            .with_param(format!("discounts[{index}][promotion_code]")));
        }
        (Some(id), None) => {
            let param = format!("discounts[{index}][coupon]");
            discount.coupon = Some(coupons::require_usable(
                store,
                id,
                &param,
                now,
                Some(currency),
            )?);
        }
        (None, Some(id)) => {
            let param = format!("discounts[{index}][promotion_code]");
            let promo = promotion_codes::require(store, id, &param)?;
            let purchase = Purchase {
                customer,
                currency: Some(currency),
                amount: None,
            };
            discount.coupon = Some(promotion_codes::require_redeemable(
                store, &promo, &param, now, purchase,
            )?);
            discount.promotion_code = Some(id.to_owned());
        }
        (None, None) => {
            return Err(ApiError::parameter_missing(&format!(
                "discounts[{index}][coupon]"
            )));
        }
    }
    Ok(discount)
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
