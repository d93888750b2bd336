//! Coupons (create, retrieve, update, delete, list) and the discounts that apply them.
//!
//! A coupon is either `percent_off` or `amount_off` + `currency`, with a `duration` of
//! `once`, `repeating` (`duration_in_months`) or `forever`. Applying one (to a subscription,
//! a checkout session) creates a `di_...` discount object and counts a redemption; a
//! coupon past `redeem_by` or `max_redemptions` is no longer `valid`. Deleting a coupon
//! removes it (retrieval answers 404) but leaves existing discounts in place, as Stripe does.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::fixtures::fixture;
use crate::ids;
use crate::json::{metadata_of, opt_str, set};
use crate::list::ListParams;
use crate::money;
use crate::objects::coupons::{LABEL, current, require};
use crate::params::{merge_metadata, one_of, unsupported};
use crate::resources::ctx::Ctx;
use crate::store::kinds;

/// Longest coupon name.
const MAX_NAME_LEN: usize = 40;

/// `POST /v1/coupons`.
pub fn create(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    unsupported(p, &["applies_to", "currency_options"])?;
    let percent_off = p.float(&["percent_off"])?;
    let amount_off = p.integer(&["amount_off"])?;
    let currency = money::currency(p, &["currency"])?;
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
    let paging = ListParams::parse(ctx.params, ctx.store, kinds::COUPON, LABEL)?;
    let now = ctx.now;
    let mut page = paging.page("/v1/coupons", paging.walk(ctx.store));
    if let Some(data) = page.get_mut("data").and_then(Value::as_array_mut) {
        for coupon in data {
            *coupon = current(coupon, now);
        }
    }
    Ok(page)
}
