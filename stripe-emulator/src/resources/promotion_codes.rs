//! Promotion codes: create, retrieve, update (`active`, `metadata`), list.
//!
//! A promotion code is a customer-facing code for a coupon (`promotion[type]=coupon`),
//! optionally limited to a customer, a number of redemptions, an expiry and a minimum
//! amount. Checkout sessions redeem them (see [`crate::resources::checkout`]); the rules
//! are in [`crate::objects::promotion_codes`]. Simplified: `restrictions[currency_options]`
//! is refused.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::fixtures::fixture;
use crate::ids;
use crate::json::{metadata_of, opt_str, set, str_field};
use crate::list::ListParams;
use crate::money;
use crate::objects::promotion_codes::{LABEL, find_active_by_code, require};
use crate::objects::{coupons, customers};
use crate::params::{merge_metadata, one_of, unsupported};
use crate::resources::ctx::Ctx;
use crate::store::kinds;

/// Longest code Stripe accepts.
const MAX_CODE_LEN: usize = 500;

/// Length of a generated code.
const GENERATED_CODE_LEN: usize = 8;

/// `POST /v1/promotion_codes`.
pub fn create(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    unsupported(p, &["customer_account"])?;
    if p.has(&["restrictions", "currency_options"]) {
        return Err(ApiError::invalid_param(
            "restrictions[currency_options]",
            "The Stripe emulator does not support the `restrictions[currency_options]` parameter.",
        ));
    }
    if !p.has(&["promotion"]) {
        return Err(ApiError::parameter_missing("promotion"));
    }
    if one_of(p, &["promotion", "type"], &["coupon"])?.is_none() {
        return Err(ApiError::parameter_missing("promotion[type]"));
    }
    let Some(coupon_id) = p.non_empty(&["promotion", "coupon"])? else {
        return Err(ApiError::parameter_missing("promotion[coupon]"));
    };
    let coupon = coupons::require(ctx.store, coupon_id, "promotion[coupon]", ctx.now)?;
    let code = match p.non_empty(&["code"])? {
        Some(code) => {
            if code.chars().count() > MAX_CODE_LEN
                || !code.chars().all(|c| c.is_ascii_alphanumeric())
            {
                return Err(ApiError::invalid_param(
                    "code",
                    "Invalid code: a promotion code may contain only letters (a-z, A-Z) and digits (0-9), up to 500 characters.",
                ));
            }
            if find_active_by_code(ctx.store, code).is_some() {
                return Err(ApiError::invalid_param(
                    "code",
                    format!("An active promotion code with `code: {code}` already exists."),
                )
                .with_code("resource_already_exists"));
            }
            code.to_owned()
        }
        None => ids::random_alnum(GENERATED_CODE_LEN).to_ascii_uppercase(),
    };
    let customer = p.non_empty(&["customer"])?;
    if let Some(customer) = customer {
        customers::require_live(ctx.store, customer, "customer")?;
    }
    let active = p.boolean(&["active"])?.unwrap_or(true);
    let max_redemptions = p.integer(&["max_redemptions"])?;
    if max_redemptions.is_some_and(|m| m < 1) {
        return Err(ApiError::invalid_param(
            "max_redemptions",
            "Invalid max_redemptions: must be a positive integer.",
        ));
    }
    let expires_at = p.integer(&["expires_at"])?;
    if expires_at.is_some_and(|at| at <= ctx.now) {
        return Err(ApiError::invalid_param(
            "expires_at",
            "Invalid expires_at: must be in the future.",
        ));
    }
    if let (Some(at), Some(redeem_by)) =
        (expires_at, coupon.get("redeem_by").and_then(Value::as_i64))
        && at > redeem_by
    {
        return Err(ApiError::invalid_param(
            "expires_at",
            "The promotion code's `expires_at` may not be after the coupon's `redeem_by`.",
        ));
    }
    let first_time = p
        .boolean(&["restrictions", "first_time_transaction"])?
        .unwrap_or(false);
    let minimum = p.integer(&["restrictions", "minimum_amount"])?;
    let minimum_currency = money::currency(p, &["restrictions", "minimum_amount_currency"])?;
    match (minimum, &minimum_currency) {
        (Some(m), _) if m < 1 => {
            return Err(ApiError::invalid_param(
                "restrictions[minimum_amount]",
                "Invalid minimum_amount: must be a positive integer.",
            ));
        }
        (Some(_), None) => {
            return Err(ApiError::parameter_missing(
                "restrictions[minimum_amount_currency]",
            ));
        }
        (None, Some(_)) => {
            return Err(ApiError::parameter_missing("restrictions[minimum_amount]"));
        }
        _ => {}
    }
    let metadata = merge_metadata(&Map::new(), p.hash(&["metadata"])?)?;

    let id = ids::long_id("promo");
    let mut promo = fixture(kinds::PROMOTION_CODE);
    for (key, value) in [
        ("id", json!(id)),
        ("object", json!("promotion_code")),
        ("active", json!(active)),
        ("code", json!(code)),
        ("created", json!(ctx.now)),
        ("customer", opt_str(customer)),
        ("customer_account", Value::Null),
        ("expires_at", expires_at.map_or(Value::Null, |at| json!(at))),
        ("livemode", json!(ctx.livemode())),
        (
            "max_redemptions",
            max_redemptions.map_or(Value::Null, |m| json!(m)),
        ),
        ("metadata", Value::Object(metadata)),
        ("promotion", json!({"coupon": coupon_id, "type": "coupon"})),
        (
            "restrictions",
            json!({
                "first_time_transaction": first_time,
                "minimum_amount": minimum,
                "minimum_amount_currency": minimum_currency,
            }),
        ),
        ("times_redeemed", json!(0)),
    ] {
        set(&mut promo, key, value);
    }
    ctx.store.insert(kinds::PROMOTION_CODE, promo);
    require(ctx.store, &id, "id")
}

/// `GET /v1/promotion_codes/:id`.
pub fn retrieve(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    require(ctx.store, id, "id")
}

/// `POST /v1/promotion_codes/:id`: `active`, `metadata`.
pub fn update(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let p = ctx.params;
    if p.has(&["restrictions"]) {
        return Err(ApiError::invalid_param(
            "restrictions",
            "The Stripe emulator does not support the `restrictions` parameter.",
        ));
    }
    let current = require(ctx.store, id, "id")?;
    let active = p.boolean(&["active"])?;
    if active == Some(true) && current.get("active").and_then(Value::as_bool) != Some(true) {
        let code = str_field(&current, "code").unwrap_or_default();
        if find_active_by_code(ctx.store, code).is_some() {
            return Err(ApiError::invalid_param(
                "active",
                format!("An active promotion code with `code: {code}` already exists."),
            )
            .with_code("resource_already_exists"));
        }
    }
    let metadata = merge_metadata(&metadata_of(&current), p.hash(&["metadata"])?)?;
    let Some(record) = ctx.store.get_live_mut(kinds::PROMOTION_CODE, id) else {
        return Err(ApiError::resource_missing(LABEL, id, "id"));
    };
    if let Some(active) = active {
        set(&mut record.object, "active", json!(active));
    }
    set(&mut record.object, "metadata", Value::Object(metadata));
    Ok(record.object.clone())
}

/// `GET /v1/promotion_codes` with `code`, `active`, `coupon`, `customer`, `created` and
/// paging.
pub fn list(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    unsupported(p, &["customer_account"])?;
    let code = p.non_empty(&["code"])?;
    let active = p.boolean(&["active"])?;
    let coupon = p.non_empty(&["coupon"])?;
    let customer = p.non_empty(&["customer"])?;
    let paging = ListParams::parse(p, ctx.store, kinds::PROMOTION_CODE, LABEL)?;
    let records = paging.walk(ctx.store).filter(|r| {
        let o = &r.object;
        code.is_none_or(|c| str_field(o, "code").is_some_and(|own| own.eq_ignore_ascii_case(c)))
            && active.is_none_or(|a| o.get("active").and_then(Value::as_bool) == Some(a))
            && coupon
                .is_none_or(|c| o.pointer("/promotion/coupon").and_then(Value::as_str) == Some(c))
            && customer.is_none_or(|c| str_field(o, "customer") == Some(c))
    });
    Ok(paging.page("/v1/promotion_codes", records))
}
