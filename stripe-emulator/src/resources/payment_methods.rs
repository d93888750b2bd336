//! Payment methods: Stripe's test tokens, attach, detach, retrieve, update and list.
//!
//! A test token such as `pm_card_visa` names a card; using it (on attach, or as a customer's
//! `payment_method`) creates a new `pm_...` object of type `card`, as Stripe does. Cards
//! from the "declined" tokens attach fine and decline only when charged (see
//! [`decline_of`](crate::objects::payment_methods::decline_of)).

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::json::{metadata_of, opt_str, set, set_in};
use crate::list::ListParams;
use crate::objects::customers;
pub use crate::objects::payment_methods::TEST_CARDS;
use crate::objects::payment_methods::{
    LABEL, PmRef, attach_ref, check_attachable, detach_stored, test_card,
};
use crate::params::merge_metadata;
use crate::resources::ctx::Ctx;
use crate::store::{Store, kinds};

fn stored(store: &Store, id: &str) -> ApiResult<Value> {
    store
        .get_live(kinds::PAYMENT_METHOD, id)
        .map(|r| r.object.clone())
        .ok_or_else(|| ApiError::resource_missing(LABEL, id, "id"))
}

/// `GET /v1/payment_methods/:id`.
pub fn retrieve(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    stored(ctx.store, id)
}

/// `POST /v1/payment_methods/:id`: `metadata`, `billing_details[name|email|phone]`,
/// `card[exp_month|exp_year]`.
pub fn update(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let p = ctx.params;
    let current = stored(ctx.store, id)?;
    let metadata = merge_metadata(&metadata_of(&current), p.hash(&["metadata"])?)?;
    let mut billing = Vec::new();
    for field in ["name", "email", "phone"] {
        if let Some(value) = p.nullable_string(&["billing_details", field])? {
            billing.push((field, opt_str(value)));
        }
    }
    let exp_month = p.integer(&["card", "exp_month"])?;
    if let Some(month) = exp_month
        && !(1..=12).contains(&month)
    {
        return Err(
            ApiError::invalid_request("Your card's expiration month is invalid.")
                .with_code("invalid_expiry_month")
                .with_param("card[exp_month]"),
        );
    }
    let exp_year = p.integer(&["card", "exp_year"])?;
    let Some(record) = ctx.store.get_live_mut(kinds::PAYMENT_METHOD, id) else {
        return Err(ApiError::resource_missing(LABEL, id, "id"));
    };
    set(&mut record.object, "metadata", Value::Object(metadata));
    for (field, value) in billing {
        set_in(&mut record.object, &["billing_details", field], value);
    }
    if let Some(month) = exp_month {
        set_in(&mut record.object, &["card", "exp_month"], json!(month));
    }
    if let Some(year) = exp_year {
        set_in(&mut record.object, &["card", "exp_year"], json!(year));
    }
    Ok(record.object.clone())
}

/// `POST /v1/payment_methods/:id/attach` with `customer`.
pub fn attach(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let customer = ctx.params.required_string(&["customer"])?.to_owned();
    customers::require_live(ctx.store, &customer, "customer")?;
    let pm = match test_card(id) {
        Some(card) => PmRef::Token(card),
        None => {
            stored(ctx.store, id)?;
            PmRef::Stored(id.to_owned())
        }
    };
    check_attachable(ctx.store, &pm, &customer, "payment_method")?;
    let pm_id = attach_ref(ctx.store, ctx.now, &pm, &customer);
    stored(ctx.store, &pm_id)
}

/// `POST /v1/payment_methods/:id/detach`.
pub fn detach(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let current = stored(ctx.store, id)?;
    let Some(customer) = current
        .get("customer")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Err(ApiError::invalid_request(
            "The payment method you provided is not attached to a customer so detachment is impossible.",
        ));
    };
    detach_stored(ctx.store, id, &customer);
    stored(ctx.store, id)
}

fn list_filtered(ctx: &mut Ctx<'_>, url: &str, customer: Option<&str>) -> ApiResult<Value> {
    let type_ = ctx
        .params
        .string(&["type"])?
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let paging = ListParams::parse(ctx.params, ctx.store, kinds::PAYMENT_METHOD, LABEL)?;
    let records = paging
        .walk_where(ctx.store, &[("customer", customer)])
        .filter(|r| {
            let of_customer = customer
                .is_none_or(|c| r.object.get("customer").and_then(Value::as_str) == Some(c));
            let of_type = type_
                .as_deref()
                .is_none_or(|t| r.object.get("type").and_then(Value::as_str) == Some(t));
            of_customer && of_type
        });
    Ok(paging.page(url, records))
}

/// `GET /v1/payment_methods?customer=&type=`.
pub fn list(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let customer = ctx
        .params
        .string(&["customer"])?
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    if let Some(customer) = &customer {
        customers::require_live(ctx.store, customer, "customer")?;
    }
    list_filtered(ctx, "/v1/payment_methods", customer.as_deref())
}

/// `GET /v1/customers/:id/payment_methods?type=`.
pub fn list_for_customer(ctx: &mut Ctx<'_>, customer: &str) -> ApiResult<Value> {
    customers::require_live(ctx.store, customer, "id")?;
    list_filtered(
        ctx,
        &format!("/v1/customers/{customer}/payment_methods"),
        Some(customer),
    )
}

/// `GET /v1/customers/:id/payment_methods/:pm`.
pub fn retrieve_for_customer(ctx: &mut Ctx<'_>, customer: &str, pm: &str) -> ApiResult<Value> {
    customers::require_live(ctx.store, customer, "id")?;
    let object = stored(ctx.store, pm)?;
    if object.get("customer").and_then(Value::as_str) != Some(customer) {
        return Err(ApiError::resource_missing(LABEL, pm, "id"));
    }
    Ok(object)
}
