//! Coupons (create, retrieve, update, delete, list) and the discounts that apply them.
//!
//! A coupon is either `percent_off` or `amount_off` + `currency`, with a `duration` of
//! `once`, `repeating` (`duration_in_months`) or `forever`. Applying one (to a subscription,
//! a checkout session) creates a `di_...` discount object and counts a redemption; a
//! coupon past `redeem_by` or `max_redemptions` is no longer `valid`. Deleting a coupon
//! removes it (retrieval answers 404) but leaves existing discounts in place, as Stripe does.

use chrono::{Months, TimeZone, Utc};
use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::fixtures::fixture;
use crate::ids;
use crate::list::{ListParams, created_filter};
use crate::store::{Store, kinds};

use super::{Ctx, int_field, merge_metadata, metadata_of, one_of, opt_str, set, str_field};

/// How coupons are named in "No such ..." messages.
pub const LABEL: &str = "coupon";

/// Longest coupon name.
const MAX_NAME_LEN: usize = 40;

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

/// `POST /v1/coupons`.
pub fn create(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    super::unsupported(p, &["applies_to", "currency_options"])?;
    let percent_off = p.float(&["percent_off"])?;
    let amount_off = p.integer(&["amount_off"])?;
    let currency = super::currency(p, &["currency"])?;
    match (percent_off, amount_off) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_request(
                "You may only specify one of these parameters: amount_off, percent_off.",
            )
            .with_code("parameters_exclusive")
            .with_param("amount_off"));
        }
        (None, None) => {
            return Err(ApiError::invalid_param(
                "percent_off",
                "You must pass either `percent_off` or `amount_off`.",
            ));
        }
        (Some(percent), None) => {
            if !(percent > 0.0 && percent <= 100.0) {
                return Err(ApiError::invalid_param(
                    "percent_off",
                    "Invalid percent_off: must be greater than 0 and at most 100.",
                ));
            }
        }
        (None, Some(amount)) => {
            if amount <= 0 {
                return Err(ApiError::invalid_param(
                    "amount_off",
                    "Invalid amount_off: must be a positive integer.",
                ));
            }
            if currency.is_none() {
                return Err(ApiError::invalid_param(
                    "currency",
                    "You must pass currency when passing amount_off.",
                ));
            }
        }
    }
    let duration = one_of(p, &["duration"], &["once", "repeating", "forever"])?.unwrap_or("once");
    let months = p.integer(&["duration_in_months"])?;
    match (duration, months) {
        ("repeating", None) => {
            return Err(ApiError::invalid_param(
                "duration_in_months",
                "You must pass duration_in_months when duration is repeating.",
            ));
        }
        ("repeating", Some(m)) if m < 1 => {
            return Err(ApiError::invalid_param(
                "duration_in_months",
                "Invalid duration_in_months: must be a positive integer.",
            ));
        }
        ("once" | "forever", Some(_)) => {
            return Err(ApiError::invalid_param(
                "duration_in_months",
                "You may only pass duration_in_months when duration is repeating.",
            ));
        }
        _ => {}
    }
    let name = p.non_empty(&["name"])?;
    if let Some(name) = name
        && name.chars().count() > MAX_NAME_LEN
    {
        return Err(ApiError::invalid_param(
            "name",
            format!("Coupon names may be at most {MAX_NAME_LEN} characters."),
        ));
    }
    let max_redemptions = p.integer(&["max_redemptions"])?;
    if max_redemptions.is_some_and(|m| m < 1) {
        return Err(ApiError::invalid_param(
            "max_redemptions",
            "Invalid max_redemptions: must be a positive integer.",
        ));
    }
    let redeem_by = p.integer(&["redeem_by"])?;
    if redeem_by.is_some_and(|r| r <= ctx.now) {
        return Err(ApiError::invalid_param(
            "redeem_by",
            "Invalid redeem_by: must be in the future.",
        ));
    }
    let metadata = merge_metadata(&Map::new(), p.hash(&["metadata"])?)?;
    let id = match p.non_empty(&["id"])? {
        Some(id) => {
            if ctx.store.get(kinds::COUPON, id).is_some() {
                return Err(ApiError::invalid_param("id", "Coupon already exists.")
                    .with_code("resource_already_exists"));
            }
            id.to_owned()
        }
        None => ids::random_alnum(8).to_ascii_uppercase(),
    };

    let mut coupon = fixture(kinds::COUPON);
    for (key, value) in [
        ("id", json!(id)),
        ("object", json!("coupon")),
        ("amount_off", amount_off.map_or(Value::Null, |a| json!(a))),
        ("applies_to", Value::Null),
        ("created", json!(ctx.now)),
        (
            "currency",
            if amount_off.is_some() {
                opt_str(currency.as_deref())
            } else {
                Value::Null
            },
        ),
        ("duration", json!(duration)),
        (
            "duration_in_months",
            months.map_or(Value::Null, |m| json!(m)),
        ),
        ("livemode", json!(ctx.livemode())),
        (
            "max_redemptions",
            max_redemptions.map_or(Value::Null, |m| json!(m)),
        ),
        ("metadata", Value::Object(metadata)),
        ("name", opt_str(name)),
        ("percent_off", percent_off.map_or(Value::Null, |p| json!(p))),
        ("redeem_by", redeem_by.map_or(Value::Null, |r| json!(r))),
        ("times_redeemed", json!(0)),
        ("valid", json!(true)),
    ] {
        set(&mut coupon, key, value);
    }
    ctx.store.insert(kinds::COUPON, coupon);
    retrieve(ctx, &id)
}

/// `GET /v1/coupons/:id`.
pub fn retrieve(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    require(ctx.store, id, "id", ctx.now)
}

/// `POST /v1/coupons/:id`: `name`, `metadata`.
pub fn update(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let p = ctx.params;
    let existing = require(ctx.store, id, "id", ctx.now)?;
    let metadata = merge_metadata(&metadata_of(&existing), p.hash(&["metadata"])?)?;
    let name = p.nullable_string(&["name"])?;
    let now = ctx.now;
    let Some(record) = ctx.store.get_live_mut(kinds::COUPON, id) else {
        return Err(ApiError::resource_missing(LABEL, id, "id"));
    };
    set(&mut record.object, "metadata", Value::Object(metadata));
    if let Some(name) = name {
        set(&mut record.object, "name", opt_str(name));
    }
    Ok(current(&record.object, now))
}

/// `DELETE /v1/coupons/:id`: the coupon is gone; discounts already applied stay.
pub fn delete(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let coupon = require(ctx.store, id, "id", ctx.now)?;
    // Keep a copy for the discounts that still apply it.
    let discount_ids = ctx.store.ids_where(kinds::DISCOUNT, |r| {
        r.internal.get("coupon").and_then(Value::as_str) == Some(id)
    });
    for discount in discount_ids {
        if let Some(record) = ctx.store.get_mut(kinds::DISCOUNT, &discount) {
            record
                .internal
                .insert("coupon_snapshot".into(), coupon.clone());
        }
    }
    ctx.store.remove(kinds::COUPON, id);
    let mut tombstone = fixture("deleted_coupon");
    set(&mut tombstone, "id", json!(id));
    set(&mut tombstone, "object", json!("coupon"));
    set(&mut tombstone, "deleted", json!(true));
    Ok(tombstone)
}

/// `GET /v1/coupons` with `created` and paging.
pub fn list(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let created = created_filter(ctx.params)?;
    let paging = ListParams::parse(ctx.params, ctx.store, kinds::COUPON, LABEL)?;
    let now = ctx.now;
    let mut page = paging.page(
        "/v1/coupons",
        ctx.store
            .live_newest_first(kinds::COUPON)
            .filter(|r| created(r)),
    );
    if let Some(data) = page.get_mut("data").and_then(Value::as_array_mut) {
        for coupon in data {
            *coupon = current(coupon, now);
        }
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

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
