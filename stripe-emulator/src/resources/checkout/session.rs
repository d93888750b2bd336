//! Checkout sessions as stored: lookup, line items, expiry (an open session past
//! `expires_at` reads as expired); `GET /v1/checkout/sessions[/:id[/line_items]]` and
//! `POST /v1/checkout/sessions/:id/expire`.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::json::{int_field, set, str_field};
use crate::list::ListParams;
use crate::objects::line_items::{line_items_list_of, stored_line_items};
use crate::params::one_of;
use crate::resources::ctx::Ctx;
use crate::store::{Store, kinds};

/// How checkout sessions are named in "No such ..." messages.
pub const LABEL: &str = "checkout.session";

/// Path prefix of hosted checkout pages.
pub const PAGE_PREFIX: &str = "/c/pay/";

pub fn stored(store: &Store, id: &str) -> ApiResult<Value> {
    store
        .get_live(kinds::CHECKOUT_SESSION, id)
        .map(|r| r.object.clone())
        .ok_or_else(|| ApiError::resource_missing(LABEL, id, "id"))
}

pub fn line_items(store: &Store, id: &str) -> Vec<Value> {
    stored_line_items(store, kinds::CHECKOUT_SESSION, id)
}

pub fn line_items_list(store: &Store, id: &str) -> Value {
    let url = format!("/v1/checkout/sessions/{id}/line_items");
    line_items_list_of(store, kinds::CHECKOUT_SESSION, id, &url)
}

/// The session as answered: with `line_items` when `expand[]=line_items` asks for it.
pub fn respond(ctx: &Ctx<'_>, id: &str) -> ApiResult<Value> {
    let mut session = stored(ctx.store, id)?;
    expire_if_due(&mut session, ctx.now);
    if ctx.params.expand()?.iter().any(|p| p == "line_items") {
        set(&mut session, "line_items", line_items_list(ctx.store, id));
    }
    Ok(session)
}

/// An open session past `expires_at` reads as expired.
pub fn expire_if_due(session: &mut Value, now: i64) {
    if str_field(session, "status") == Some("open") && int_field(session, "expires_at") <= now {
        set(session, "status", json!("expired"));
        set(session, "url", Value::Null);
    }
}

/// `GET /v1/checkout/sessions/:id`.
pub fn retrieve(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    respond(ctx, id)
}

/// `GET /v1/checkout/sessions/:id/line_items`.
pub fn list_line_items(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    stored(ctx.store, id)?;
    Ok(line_items_list(ctx.store, id))
}

/// `GET /v1/checkout/sessions` with `customer`, `payment_intent`, `payment_link`,
/// `subscription`, `status`, `customer_details[email]`, `created`.
pub fn list(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    let customer = p.non_empty(&["customer"])?;
    let intent = p.non_empty(&["payment_intent"])?;
    let link = p.non_empty(&["payment_link"])?;
    let subscription = p.non_empty(&["subscription"])?;
    let status = one_of(p, &["status"], &["open", "complete", "expired"])?;
    let email = p.non_empty(&["customer_details", "email"])?;
    let paging = ListParams::parse(p, ctx.store, kinds::CHECKOUT_SESSION, LABEL)?;
    let now = ctx.now;
    let with_items = p.expand()?.iter().any(|e| e == "data.line_items");
    let records: Vec<_> = paging
        .walk(ctx.store)
        .filter(|r| {
            let mut o = r.object.clone();
            expire_if_due(&mut o, now);
            customer.is_none_or(|c| str_field(&o, "customer") == Some(c))
                && intent.is_none_or(|i| str_field(&o, "payment_intent") == Some(i))
                && link.is_none_or(|l| str_field(&o, "payment_link") == Some(l))
                && subscription.is_none_or(|s| str_field(&o, "subscription") == Some(s))
                && status.is_none_or(|s| str_field(&o, "status") == Some(s))
                && email.is_none_or(|e| {
                    o.pointer("/customer_details/email").and_then(Value::as_str) == Some(e)
                        || str_field(&o, "customer_email") == Some(e)
                })
        })
        .collect();
    let mut page = paging.page("/v1/checkout/sessions", records);
    if let Some(data) = page.get_mut("data").and_then(Value::as_array_mut) {
        for session in data {
            expire_if_due(session, now);
            if with_items && let Some(id) = str_field(session, "id").map(str::to_owned) {
                set(session, "line_items", line_items_list(ctx.store, &id));
            }
        }
    }
    Ok(page)
}

/// `POST /v1/checkout/sessions/:id/expire`.
pub fn expire(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let mut session = stored(ctx.store, id)?;
    expire_if_due(&mut session, ctx.now);
    let status = str_field(&session, "status").unwrap_or_default().to_owned();
    if status != "open" {
        return Err(ApiError::invalid_request(format!(
            "Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout Session has a status of \"{status}\"."
        )));
    }
    if let Some(record) = ctx.store.get_live_mut(kinds::CHECKOUT_SESSION, id) {
        set(&mut record.object, "status", json!("expired"));
        set(&mut record.object, "url", Value::Null);
    }
    respond(ctx, id)
}

pub fn internal_str(store: &Store, id: &str, key: &str) -> Option<String> {
    store
        .get(kinds::CHECKOUT_SESSION, id)?
        .internal
        .get(key)?
        .as_str()
        .map(str::to_owned)
}

pub fn internal_map(store: &Store, id: &str, key: &str) -> Map<String, Value> {
    store
        .get(kinds::CHECKOUT_SESSION, id)
        .and_then(|r| r.internal.get(key).and_then(Value::as_object).cloned())
        .unwrap_or_default()
}
