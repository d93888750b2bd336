//! `GET /v1/subscriptions` and `/v1/subscriptions/:id`; `GET /v1/subscription_items` and
//! `/v1/subscription_items/:id` (items are kept inside their subscription).

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::json::str_field;
use crate::list::{ListParams, page_values};
use crate::objects::subscriptions::record::{ITEM_LABEL, LABEL, items_of, require};
use crate::params::one_of;
use crate::resources::ctx::Ctx;
use crate::store::kinds;

/// Statuses `GET /v1/subscriptions?status=` accepts.
const LIST_STATUSES: &[&str] = &[
    "active",
    "all",
    "canceled",
    "ended",
    "incomplete",
    "incomplete_expired",
    "past_due",
    "paused",
    "trialing",
    "unpaid",
];

/// `GET /v1/subscriptions/:id`.
pub fn retrieve(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    require(ctx.store, id, "id").map(|r| r.object.clone())
}

/// `GET /v1/subscriptions` with `customer`, `price`, `status` (default: all but
/// canceled), `collection_method`, `created`.
pub fn list(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    let customer = p.non_empty(&["customer"])?;
    let price = match p.non_empty(&["price"])? {
        Some(price) => Some(price),
        None => p.non_empty(&["plan"])?,
    };
    let status = one_of(p, &["status"], LIST_STATUSES)?;
    let collection = one_of(
        p,
        &["collection_method"],
        &["charge_automatically", "send_invoice"],
    )?;
    let paging = ListParams::parse(p, ctx.store, kinds::SUBSCRIPTION, LABEL)?;
    if status == Some("all") && customer.is_none() && price.is_none() && collection.is_none() {
        return Ok(paging.page_plain("/v1/subscriptions", ctx.store));
    }
    let records = paging
        .walk_where(ctx.store, &[("customer", customer)])
        .filter(|r| {
            let o = &r.object;
            let s = str_field(o, "status").unwrap_or_default();
            let status_ok = match status {
                None => s != "canceled",
                Some("all") => true,
                Some("ended") => matches!(s, "canceled" | "incomplete_expired"),
                Some(wanted) => s == wanted,
            };
            status_ok
                && customer.is_none_or(|c| str_field(o, "customer") == Some(c))
                && price.is_none_or(|pr| {
                    items_of(o)
                        .iter()
                        .any(|i| i.pointer("/price/id").and_then(Value::as_str) == Some(pr))
                })
                && collection.is_none_or(|c| str_field(o, "collection_method") == Some(c))
        });
    Ok(paging.page("/v1/subscriptions", records))
}

/// `GET /v1/subscription_items?subscription=`.
pub fn list_items(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let subscription = ctx.params.required_string(&["subscription"])?.to_owned();
    let sub = require(ctx.store, &subscription, "subscription")?
        .object
        .clone();
    page_values(
        ctx.params,
        "/v1/subscription_items",
        items_of(&sub),
        ITEM_LABEL,
    )
}

/// `GET /v1/subscription_items/:id`.
pub fn retrieve_item(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    ctx.store
        .live_newest_first(kinds::SUBSCRIPTION)
        .flat_map(|r| items_of(&r.object))
        .find(|i| str_field(i, "id") == Some(id))
        .ok_or_else(|| ApiError::resource_missing(ITEM_LABEL, id, "id"))
}
