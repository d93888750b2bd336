//! Promotion codes: customer-facing codes for a coupon, and the rules for redeeming one
//! (active, not expired, not used up, for this customer, above the minimum amount, its
//! coupon still valid).

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::json::{int_field, set, str_field};
use crate::objects::coupons;
use crate::store::{Store, kinds};

/// How promotion codes are named in "No such ..." messages.
pub const LABEL: &str = "promotion_code";

/// The stored promotion code `id`, or `resource_missing` on `param`.
pub fn require(store: &Store, id: &str, param: &str) -> ApiResult<Value> {
    store
        .get_live(kinds::PROMOTION_CODE, id)
        .map(|r| r.object.clone())
        .ok_or_else(|| ApiError::resource_missing(LABEL, id, param))
}

/// The active promotion code whose customer-facing `code` is `code` (codes ignore case).
pub fn find_active_by_code(store: &Store, code: &str) -> Option<Value> {
    store
        .live_newest_first(kinds::PROMOTION_CODE)
        .find(|r| {
            r.object.get("active").and_then(Value::as_bool) == Some(true)
                && str_field(&r.object, "code").is_some_and(|c| c.eq_ignore_ascii_case(code))
        })
        .map(|r| r.object.clone())
}

/// The promotion code a customer typed: by its `code` (an active one first) or its id.
pub fn find_by_code(store: &Store, code: &str) -> Option<Value> {
    find_active_by_code(store, code)
        .or_else(|| {
            store
                .live_newest_first(kinds::PROMOTION_CODE)
                .find(|r| {
                    str_field(&r.object, "code").is_some_and(|c| c.eq_ignore_ascii_case(code))
                })
                .map(|r| r.object.clone())
        })
        .or_else(|| {
            store
                .get_live(kinds::PROMOTION_CODE, code)
                .map(|r| r.object.clone())
        })
}

/// The coupon id of a promotion code.
pub fn coupon_id(promo: &Value) -> Option<&str> {
    promo.pointer("/promotion/coupon").and_then(Value::as_str)
}

/// What a promotion code is redeemed on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Purchase<'a> {
    /// The customer (if known).
    pub customer: Option<&'a str>,
    /// The purchase's currency.
    pub currency: Option<&'a str>,
    /// The amount before discounts (if known).
    pub amount: Option<i64>,
}

/// Checks that `promo` can be redeemed now on `purchase`, and returns its coupon (as it is
/// now). Errors are 400s on `param`.
pub fn require_redeemable(
    store: &Store,
    promo: &Value,
    param: &str,
    now: i64,
    purchase: Purchase<'_>,
) -> ApiResult<Value> {
    let code = str_field(promo, "code").unwrap_or_default();
    let refuse = |message: String| ApiError::invalid_param(param, message);
    if promo.get("active").and_then(Value::as_bool) != Some(true) {
        return Err(refuse(format!("This promotion code is inactive: {code}")));
    }
    if promo
        .get("expires_at")
        .and_then(Value::as_i64)
        .is_some_and(|at| at <= now)
    {
        return Err(refuse(format!("This promotion code has expired: {code}")));
    }
    if promo
        .get("max_redemptions")
        .and_then(Value::as_i64)
        .is_some_and(|max| int_field(promo, "times_redeemed") >= max)
    {
        return Err(refuse(format!(
            "This promotion code has reached its maximum number of redemptions: {code}"
        )));
    }
    if let Some(owner) = str_field(promo, "customer")
        && purchase.customer != Some(owner)
    {
        return Err(refuse(format!(
            "This promotion code cannot be redeemed by this customer: {code}"
        )));
    }
    let restrictions = promo.get("restrictions").cloned().unwrap_or_default();
    if let (Some(minimum), Some(amount)) = (
        restrictions.get("minimum_amount").and_then(Value::as_i64),
        purchase.amount,
    ) {
        let minimum_currency = str_field(&restrictions, "minimum_amount_currency");
        if minimum_currency == purchase.currency && amount < minimum {
            return Err(refuse(format!(
                "This promotion code requires a minimum purchase of {minimum} {}: {code}",
                minimum_currency.unwrap_or_default()
            )));
        }
    }
    if restrictions
        .get("first_time_transaction")
        .and_then(Value::as_bool)
        == Some(true)
        && let Some(customer) = purchase.customer
        && has_paid_before(store, customer)
    {
        return Err(refuse(format!(
            "This promotion code is only valid for first-time customers: {code}"
        )));
    }
    let Some(coupon) = coupon_id(promo) else {
        return Err(refuse(format!("This promotion code is inactive: {code}")));
    };
    coupons::require_usable(store, coupon, param, now, purchase.currency)
}

/// Whether `customer` has paid for anything before (a succeeded charge).
fn has_paid_before(store: &Store, customer: &str) -> bool {
    store
        .live_where(
            kinds::CHARGE,
            &[("customer", customer), ("status", "succeeded")],
        )
        .next()
        .is_some()
}

/// Counts a redemption of the promotion code `id` (its coupon's is counted where the
/// coupon is applied).
pub fn redeem(store: &mut Store, id: &str) {
    if let Some(record) = store.get_live_mut(kinds::PROMOTION_CODE, id) {
        let times = int_field(&record.object, "times_redeemed") + 1;
        set(&mut record.object, "times_redeemed", json!(times));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn promo(extra: Value) -> Value {
        let mut promo = json!({
            "id": "promo_1", "code": "SAVE", "active": true, "expires_at": null,
            "max_redemptions": null, "times_redeemed": 0, "customer": null,
            "promotion": {"type": "coupon", "coupon": "C"},
            "restrictions": {"first_time_transaction": false, "minimum_amount": null, "minimum_amount_currency": null},
        });
        if let (Some(map), Some(extra)) = (promo.as_object_mut(), extra.as_object()) {
            map.extend(extra.clone());
        }
        promo
    }

    #[test]
    fn redemption_rules() {
        let mut store = Store::new(false);
        store.insert(
            kinds::COUPON,
            json!({"id": "C", "object": "coupon", "percent_off": 10.0, "amount_off": null, "currency": null, "max_redemptions": null, "redeem_by": null, "times_redeemed": 0}),
        );
        let ok =
            |p: &Value, purchase| require_redeemable(&store, p, "promotion_code", 100, purchase);
        assert!(ok(&promo(json!({})), Purchase::default()).is_ok());
        for bad in [
            json!({"active": false}),
            json!({"expires_at": 100}),
            json!({"max_redemptions": 1, "times_redeemed": 1}),
            json!({"customer": "cus_other"}),
            json!({"restrictions": {"first_time_transaction": false, "minimum_amount": 5000, "minimum_amount_currency": "usd"}}),
        ] {
            let purchase = Purchase {
                customer: Some("cus_1"),
                currency: Some("usd"),
                amount: Some(1000),
            };
            let err = ok(&promo(bad.clone()), purchase).unwrap_err();
            assert_eq!(err.param.as_deref(), Some("promotion_code"), "{bad}");
        }
    }
}
