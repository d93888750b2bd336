//! Coupons and the discounts that apply them: validity, redemption, the amount a coupon takes
//! off.

use chrono::{Months, TimeZone, Utc};
use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::fixtures::fixture;
use crate::ids;
use crate::json::{int_field, opt_str, set, str_field};
use crate::store::{Store, kinds};

/// How coupons are named in "No such ..." messages.
pub const LABEL: &str = "coupon";

/// A coupon with `valid` brought up to date.
pub fn current(object: &Value, now: i64) -> Value {
    let mut coupon = object.clone();
    let max = coupon.get("max_redemptions").and_then(Value::as_i64);
    let redeem_by = coupon.get("redeem_by").and_then(Value::as_i64);
    let times = int_field(&coupon, "times_redeemed");
    let valid = max.is_none_or(|m| times < m) && redeem_by.is_none_or(|r| now <= r);
    set(&mut coupon, "valid", json!(valid));
    coupon
}

/// The coupon `id` (current), or `resource_missing` on `param` (`No such coupon: 'x'`).
pub fn require(store: &Store, id: &str, param: &str, now: i64) -> ApiResult<Value> {
    store
        .get_live(kinds::COUPON, id)
        .map(|r| current(&r.object, now))
        .ok_or_else(|| ApiError::resource_missing(LABEL, id, param))
}

/// A coupon that can be applied now, in `currency`: it exists, is valid, and an
/// `amount_off` coupon is in the same currency.
pub fn require_usable(
    store: &Store,
    id: &str,
    param: &str,
    now: i64,
    currency: Option<&str>,
) -> ApiResult<Value> {
    let coupon = require(store, id, param, now)?;
    if coupon.get("valid").and_then(Value::as_bool) != Some(true) {
        return Err(ApiError::invalid_request(format!("Coupon expired: {id}"))
            .with_code("coupon_expired")
            .with_param(param));
    }
    if let (Some(coupon_currency), Some(currency)) = (
        str_field(&coupon, "currency").filter(|_| !coupon["amount_off"].is_null()),
        currency,
    ) && coupon_currency != currency
    {
        return Err(ApiError::invalid_param(
            param,
            format!(
                "The coupon currency ({coupon_currency}) must match the currency of the purchase ({currency})."
            ),
        ));
    }
    Ok(coupon)
}

/// The discount a coupon gives on `subtotal` (never more than the subtotal).
pub fn discount_amount(coupon: &Value, subtotal: i64) -> i64 {
    if subtotal <= 0 {
        return 0;
    }
    if let Some(percent) = coupon.get("percent_off").and_then(Value::as_f64) {
        // Amounts are far below 2^53, so the float round trip is exact enough; rounding
        // half away from zero as Stripe does.
        let off = (subtotal as f64 * percent / 100.0).round() as i64;
        return off.clamp(0, subtotal);
    }
    int_field(coupon, "amount_off").clamp(0, subtotal)
}

/// Where a discount is applied.
#[derive(Debug, Default, Clone, Copy)]
pub struct Target<'a> {
    /// The customer.
    pub customer: Option<&'a str>,
    /// The subscription.
    pub subscription: Option<&'a str>,
    /// The checkout session.
    pub checkout_session: Option<&'a str>,
    /// The invoice.
    pub invoice: Option<&'a str>,
}

/// Applies a coupon: counts a redemption and stores a `di_...` discount object. Returns
/// the discount id.
pub fn apply(store: &mut Store, coupon_id: &str, target: Target<'_>, now: i64) -> String {
    let id = ids::long_id("di");
    let mut end = Value::Null;
    if let Some(record) = store.get_live_mut(kinds::COUPON, coupon_id) {
        let times = int_field(&record.object, "times_redeemed") + 1;
        set(&mut record.object, "times_redeemed", json!(times));
        if str_field(&record.object, "duration") == Some("repeating") {
            let months = record
                .object
                .get("duration_in_months")
                .and_then(Value::as_i64)
                .and_then(|m| u32::try_from(m).ok())
                .unwrap_or(1);
            end = Utc
                .timestamp_opt(now, 0)
                .single()
                .and_then(|start| start.checked_add_months(Months::new(months)))
                .map_or(Value::Null, |t| json!(t.timestamp()));
        }
    }
    let mut discount = fixture("discount");
    for (key, value) in [
        ("id", json!(id)),
        ("object", json!("discount")),
        ("checkout_session", opt_str(target.checkout_session)),
        ("customer", opt_str(target.customer)),
        ("customer_account", Value::Null),
        ("end", end),
        ("invoice", opt_str(target.invoice)),
        ("invoice_item", Value::Null),
        ("promotion_code", Value::Null),
        ("start", json!(now)),
        ("subscription", opt_str(target.subscription)),
        ("subscription_item", Value::Null),
        ("source", json!({"coupon": coupon_id, "type": "coupon"})),
    ] {
        set(&mut discount, key, value);
    }
    let mut internal = Map::new();
    internal.insert("coupon".into(), json!(coupon_id));
    store.insert_with(kinds::DISCOUNT, discount, internal);
    id
}

/// Notes on the discounts matching `pred` that their coupon was redeemed through the
/// promotion code `promo`.
pub fn set_promotion_code(store: &mut Store, promo: &str, pred: impl Fn(&Value) -> bool) {
    for id in store.ids_where(kinds::DISCOUNT, |r| pred(&r.object)) {
        if let Some(record) = store.get_live_mut(kinds::DISCOUNT, &id) {
            set(&mut record.object, "promotion_code", json!(promo));
        }
    }
}

/// The coupon of a stored discount (as it is now, or as it was when applied if the coupon
/// has since been deleted).
pub fn coupon_of_discount(store: &Store, discount_id: &str) -> Option<Value> {
    let record = store.get(kinds::DISCOUNT, discount_id)?;
    if let Some(end) = record.object.get("end").and_then(Value::as_i64)
        && end <= ids::now()
    {
        return None;
    }
    let coupon_id = record.internal.get("coupon")?.as_str()?;
    store
        .get(kinds::COUPON, coupon_id)
        .map(|r| r.object.clone())
        .or_else(|| record.internal.get("coupon_snapshot").cloned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn discount_amounts() {
        let percent = json!({"percent_off": 25.0, "amount_off": null});
        assert_eq!(discount_amount(&percent, 2000), 500);
        assert_eq!(discount_amount(&percent, 999), 250);
        assert_eq!(discount_amount(&percent, -5), 0);
        let amount = json!({"percent_off": null, "amount_off": 700});
        assert_eq!(discount_amount(&amount, 2000), 700);
        assert_eq!(discount_amount(&amount, 500), 500);
        let full = json!({"percent_off": 100.0});
        assert_eq!(discount_amount(&full, 1234), 1234);
    }

    #[test]
    fn validity() {
        let coupon = json!({"max_redemptions": 1, "times_redeemed": 1, "redeem_by": null});
        assert_eq!(current(&coupon, 10)["valid"], false);
        let coupon = json!({"max_redemptions": null, "times_redeemed": 9, "redeem_by": 5});
        assert_eq!(current(&coupon, 4)["valid"], true);
        assert_eq!(current(&coupon, 6)["valid"], false);
    }
}
