//! Parameters shared by creating and updating subscriptions: prices (stored or inline),
//! quantities, trials, coupons, the default payment method, collection and cancellation.

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::form::{Params, param_name};
use crate::json::str_field;
use crate::objects::coupons;
use crate::objects::payment_methods::{self, PmRef};
use crate::objects::prices::{self, PriceData, ProductRef, Recurrence};
use crate::params::{non_negative, one_of};
use crate::store::{Store, kinds};

/// Longest trial Stripe accepts (730 days).
const MAX_TRIAL_DAYS: i64 = 730;

/// A price named or described by a request, before anything is stored.
#[derive(Debug, Clone, PartialEq)]
pub enum PriceRef {
    Stored(Value),
    Inline(PriceData, ProductRef),
}

impl PriceRef {
    pub fn currency(&self) -> &str {
        match self {
            PriceRef::Stored(price) => str_field(price, "currency").unwrap_or_default(),
            PriceRef::Inline(data, _) => &data.currency,
        }
    }

    pub fn interval(&self) -> Option<(String, i64)> {
        match self {
            PriceRef::Stored(price) => prices::interval_of(price),
            PriceRef::Inline(data, _) => data
                .recurring
                .as_ref()
                .map(|r| (r.interval.clone(), r.interval_count)),
        }
    }

    pub fn id(&self) -> Option<&str> {
        match self {
            PriceRef::Stored(price) => str_field(price, "id"),
            PriceRef::Inline(..) => None,
        }
    }

    /// The stored price (storing inline price data now).
    pub fn resolve(self, store: &mut Store, now: i64) -> Value {
        match self {
            PriceRef::Stored(price) => price,
            PriceRef::Inline(data, product) => {
                let id = prices::insert_inline(store, now, &data, product);
                store
                    .get(kinds::PRICE, &id)
                    .map(|r| r.object.clone())
                    .unwrap_or_default()
            }
        }
    }
}

/// Reads `<prefix>[price]` (or `[plan]`) or `<prefix>[price_data]` as a price that must
/// (or must not) be recurring.
pub fn read_price(
    p: &Params,
    store: &Store,
    prefix: &[&str],
    recurring: bool,
) -> ApiResult<Option<PriceRef>> {
    let price_path = prices::at(prefix, &["price"]);
    let name = param_name(&price_path);
    let id = match p.non_empty(&price_path)? {
        Some(id) => Some(id),
        None => p.non_empty(&prices::at(prefix, &["plan"]))?,
    };
    if let Some(id) = id {
        let price = prices::require(store, id, &name)?.object.clone();
        if price.get("active").and_then(Value::as_bool) == Some(false) {
            return Err(ApiError::invalid_param(
                &name,
                format!(
                    "The price specified ({id}) is inactive. This field only accepts active prices."
                ),
            ));
        }
        let (want, got) = if recurring {
            ("recurring", "one_time")
        } else {
            ("one_time", "recurring")
        };
        if prices::is_recurring(&price) != recurring {
            return Err(ApiError::invalid_param(
                &name,
                format!(
                    "The price specified is set to `type={got}` but this field only accepts prices with `type={want}`."
                ),
            ));
        }
        return Ok(Some(PriceRef::Stored(price)));
    }
    let data_path = prices::at(prefix, &["price_data"]);
    if p.has(&data_path) {
        let recurrence = if recurring {
            Recurrence::Required
        } else {
            Recurrence::Forbidden
        };
        let (data, product) = prices::read_inline(p, &data_path, store, recurrence)?;
        return Ok(Some(PriceRef::Inline(data, product)));
    }
    Ok(None)
}

pub fn quantity(p: &Params, path: &[&str]) -> ApiResult<Option<i64>> {
    non_negative(p, path)
}

/// A price's currency, its interval (and count), and the parameter that named it.
pub type PriceShape = (String, Option<(String, i64)>, String);

/// Checks that every price shares one currency and one billing interval.
pub fn check_consistent(items: &[PriceShape]) -> ApiResult<()> {
    let Some((currency, interval, _)) = items.first() else {
        return Err(ApiError::parameter_missing("items"));
    };
    for (c, i, param) in items {
        if c != currency {
            return Err(ApiError::invalid_param(
                param,
                "Currency and interval fields must match across all plans on this subscription. Found mismatch in currency field.",
            ));
        }
        if i != interval {
            return Err(ApiError::invalid_param(
                param,
                "Currency and interval fields must match across all plans on this subscription. Found mismatch in interval field.",
            ));
        }
    }
    Ok(())
}

/// Reads the trial of a create or update: `trial_end` (`now` or a timestamp) or
/// `trial_period_days`. `Some(None)` is `trial_end=now`.
pub fn read_trial(p: &Params, now: i64) -> ApiResult<Option<Option<i64>>> {
    let days = p.integer(&["trial_period_days"])?;
    let end = p.non_empty(&["trial_end"])?;
    if days.is_some() && end.is_some() {
        return Err(ApiError::invalid_request(
            "You may only specify one of these parameters: trial_end, trial_period_days.",
        )
        .with_code("parameters_exclusive")
        .with_param("trial_end"));
    }
    if let Some(days) = days {
        if !(0..=MAX_TRIAL_DAYS).contains(&days) {
            return Err(ApiError::invalid_param(
                "trial_period_days",
                format!("Invalid trial_period_days: must be between 0 and {MAX_TRIAL_DAYS}."),
            ));
        }
        return Ok(Some((days > 0).then_some(now + days * 86_400)));
    }
    match end {
        None => Ok(None),
        Some("now") => Ok(Some(None)),
        Some(ts) => {
            let ts: i64 = ts
                .parse()
                .map_err(|_| ApiError::invalid_integer("trial_end", ts))?;
            if ts <= now {
                return Err(ApiError::invalid_param(
                    "trial_end",
                    "Invalid timestamp: must be in the future, or `now`.",
                ));
            }
            if ts > now + MAX_TRIAL_DAYS * 86_400 {
                return Err(ApiError::invalid_param(
                    "trial_end",
                    "Invalid timestamp: can be no more than two years in the future",
                ));
            }
            Ok(Some(Some(ts)))
        }
    }
}

/// Reads coupons from `discounts[i][coupon]`, checked against `currency`.
pub fn read_coupons(p: &Params, store: &Store, now: i64, currency: &str) -> ApiResult<Vec<String>> {
    let mut coupons_found = Vec::new();
    let indexes = p.indexed(&["discounts"])?;
    for index in indexes {
        if let Some(code) = p.non_empty(&["discounts", &index, "promotion_code"])? {
            return Err(ApiError::invalid_param(
                &format!("discounts[{index}][promotion_code]"),
                format!(
                    "The Stripe emulator redeems promotion codes only in checkout sessions; \
                     use `discounts[][coupon]` on a subscription (got '{code}')."
                ),
            )
            .with_code("resource_missing"));
        }
        if p.non_empty(&["discounts", &index, "discount"])?.is_some() {
            return Err(ApiError::invalid_param(
                &format!("discounts[{index}][discount]"),
                "The Stripe emulator supports only `discounts[][coupon]`.",
            ));
        }
        let param = format!("discounts[{index}][coupon]");
        let coupon = p
            .non_empty(&["discounts", &index, "coupon"])?
            .ok_or_else(|| ApiError::parameter_missing(&param))?;
        coupons::require_usable(store, coupon, &param, now, Some(currency))?;
        coupons_found.push(coupon.to_owned());
    }
    Ok(coupons_found)
}

/// Resolves `default_payment_method` for `customer`: a test token (attached on use) or a
/// payment method attached to the customer.
pub fn read_default_pm(
    p: &Params,
    store: &Store,
    customer: &str,
) -> ApiResult<Option<Option<PmRef>>> {
    let Some(value) = p.nullable_string(&["default_payment_method"])? else {
        return Ok(None);
    };
    let Some(value) = value else {
        return Ok(Some(None));
    };
    let pm = payment_methods::resolve(store, value, "default_payment_method")?;
    if let PmRef::Stored(id) = &pm
        && payment_methods::owner_of(store, id).as_deref() != Some(customer)
    {
        return Err(ApiError::invalid_param(
            "default_payment_method",
            format!(
                "The customer does not have a payment method with the ID {id}. The payment method must be attached to the customer."
            ),
        )
        .with_code("resource_missing"));
    }
    Ok(Some(Some(pm)))
}

pub fn read_collection(p: &Params, current: Option<&str>) -> ApiResult<(String, Option<i64>)> {
    let method = one_of(
        p,
        &["collection_method"],
        &["charge_automatically", "send_invoice"],
    )?
    .or(current)
    .unwrap_or("charge_automatically")
    .to_owned();
    let days = p.integer(&["days_until_due"])?;
    if days.is_some_and(|d| d < 0) {
        return Err(ApiError::invalid_param(
            "days_until_due",
            "Invalid days_until_due: must be a non-negative integer.",
        ));
    }
    if method == "send_invoice" && days.is_none() && current != Some("send_invoice") {
        return Err(ApiError::invalid_param(
            "days_until_due",
            "`days_until_due` is required when `collection_method` is `send_invoice`.",
        ));
    }
    Ok((method, days))
}

pub const PAYMENT_BEHAVIORS: &[&str] = &[
    "allow_incomplete",
    "default_incomplete",
    "error_if_incomplete",
    "pending_if_incomplete",
];

pub const PRORATION_BEHAVIORS: &[&str] = &["always_invoice", "create_prorations", "none"];

/// `cancel_at`: a future timestamp, `max_period_end`/`min_period_end` (read as the period
/// end), or empty to unset (`Some(None)`).
pub fn read_cancel_at(p: &Params, now: i64) -> ApiResult<Option<Option<i64>>> {
    match p.string(&["cancel_at"])? {
        None => Ok(None),
        Some("") => Ok(Some(None)),
        Some("max_period_end" | "min_period_end" | "max_billed_until") => Ok(Some(Some(-1))),
        Some(ts) => {
            let ts: i64 = ts
                .parse()
                .map_err(|_| ApiError::invalid_integer("cancel_at", ts))?;
            if ts <= now {
                return Err(ApiError::invalid_param(
                    "cancel_at",
                    "Invalid timestamp: must be in the future.",
                ));
            }
            Ok(Some(Some(ts)))
        }
    }
}

pub fn read_feedback(p: &Params) -> ApiResult<Option<Option<&str>>> {
    let feedback = p.nullable_string(&["cancellation_details", "feedback"])?;
    if let Some(Some(value)) = feedback
        && !matches!(
            value,
            "customer_service"
                | "low_quality"
                | "missing_features"
                | "other"
                | "switched_service"
                | "too_complex"
                | "too_expensive"
                | "unused"
        )
    {
        return Err(ApiError::invalid_param(
            "cancellation_details[feedback]",
            format!("Invalid cancellation_details[feedback]: {value}"),
        ));
    }
    Ok(feedback)
}
