//! Payment links as stored: lookup, line items; retrieve, update, list.

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::json::{metadata_of, opt_str, set, str_field};
use crate::list::ListParams;
use crate::objects::line_items::{line_items_list_of, stored_line_items};
use crate::params::{merge_metadata, one_of, unsupported};
use crate::resources::ctx::Ctx;
use crate::resources::payment_links::read::{SUBMIT_TYPES, message_param, read_after_completion};
use crate::store::{Store, kinds};

/// How payment links are named in "No such ..." messages.
pub const LABEL: &str = "payment_link";

/// Path prefix of the hosted payment link pages.
pub const PAGE_PREFIX: &str = "/b/";

pub fn stored(store: &Store, id: &str) -> ApiResult<Value> {
    store
        .get_live(kinds::PAYMENT_LINK, id)
        .map(|r| r.object.clone())
        .ok_or_else(|| ApiError::resource_missing(LABEL, id, "id"))
}

pub fn line_items(store: &Store, id: &str) -> Vec<Value> {
    stored_line_items(store, kinds::PAYMENT_LINK, id)
}

pub fn line_items_list(store: &Store, id: &str) -> Value {
    let url = format!("/v1/payment_links/{id}/line_items");
    line_items_list_of(store, kinds::PAYMENT_LINK, id, &url)
}

/// The link as answered: with `line_items` when `expand[]=line_items` asks for it.
pub fn respond(ctx: &Ctx<'_>, id: &str) -> ApiResult<Value> {
    let mut link = stored(ctx.store, id)?;
    if ctx.params.expand()?.iter().any(|p| p == "line_items") {
        set(&mut link, "line_items", line_items_list(ctx.store, id));
    }
    Ok(link)
}

/// `GET /v1/payment_links/:id`.
pub fn retrieve(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    respond(ctx, id)
}

/// `GET /v1/payment_links/:id/line_items`.
pub fn list_line_items(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    stored(ctx.store, id)?;
    Ok(line_items_list(ctx.store, id))
}

/// `POST /v1/payment_links/:id`: `active`, `metadata`, `after_completion`,
/// `allow_promotion_codes`, `billing_address_collection`, `customer_creation`,
/// `inactive_message`, `submit_type`.
pub fn update(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let p = ctx.params;
    let current = stored(ctx.store, id)?;
    unsupported(
        p,
        &[
            "line_items",
            "optional_items",
            "shipping_address_collection",
            "automatic_tax",
            "invoice_creation",
            "restrictions",
            "payment_method_types",
        ],
    )?;
    let metadata = merge_metadata(&metadata_of(&current), p.hash(&["metadata"])?)?;
    let active = p.boolean(&["active"])?;
    let after_completion = read_after_completion(p)?;
    let allow_promotion_codes = p.boolean(&["allow_promotion_codes"])?;
    let billing_address_collection =
        one_of(p, &["billing_address_collection"], &["auto", "required"])?;
    let customer_creation = one_of(p, &["customer_creation"], &["always", "if_required"])?;
    if customer_creation.is_some()
        && current
            .get("subscription_data")
            .is_some_and(|s| !s.is_null())
    {
        return Err(ApiError::invalid_param(
            "customer_creation",
            "`customer_creation` can only be used with one-time prices.",
        ));
    }
    let inactive_message = message_param(p, &["inactive_message"])?;
    let submit_type = one_of(p, &["submit_type"], SUBMIT_TYPES)?;

    let Some(record) = ctx.store.get_live_mut(kinds::PAYMENT_LINK, id) else {
        return Err(ApiError::resource_missing(LABEL, id, "id"));
    };
    let o = &mut record.object;
    set(o, "metadata", Value::Object(metadata));
    for (key, value) in [
        ("active", active.map(|a| json!(a))),
        ("after_completion", after_completion),
        (
            "allow_promotion_codes",
            allow_promotion_codes.map(|a| json!(a)),
        ),
        (
            "billing_address_collection",
            billing_address_collection.map(|b| json!(b)),
        ),
        ("customer_creation", customer_creation.map(|c| json!(c))),
        (
            "inactive_message",
            inactive_message.map(|m| opt_str(m.as_deref())),
        ),
        ("submit_type", submit_type.map(|s| json!(s))),
    ] {
        if let Some(value) = value {
            set(o, key, value);
        }
    }
    respond(ctx, id)
}

/// `GET /v1/payment_links` with `active` (`expand[]=data.line_items` includes each link's
/// items).
pub fn list(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    let active = p.boolean(&["active"])?;
    let paging = ListParams::parse(p, ctx.store, kinds::PAYMENT_LINK, LABEL)?;
    let records = paging.walk(ctx.store).filter(|r| {
        active.is_none_or(|a| r.object.get("active").and_then(Value::as_bool) == Some(a))
    });
    let mut page = paging.page("/v1/payment_links", records);
    if p.expand()?.iter().any(|e| e == "data.line_items")
        && let Some(data) = page.get_mut("data").and_then(Value::as_array_mut)
    {
        for link in data {
            if let Some(id) = str_field(link, "id").map(str::to_owned) {
                set(link, "line_items", line_items_list(ctx.store, &id));
            }
        }
    }
    Ok(page)
}
