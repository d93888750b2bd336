//! Charges, as payment intents create them (one per confirmation attempt): retrieve and
//! list. A declined attempt leaves a `failed` charge, as in Stripe. Refunds (see
//! [`refunds`](super::refunds)) raise `amount_refunded` and set `refunded` once the whole
//! amount is refunded; `expand[]=refunds` (`data.refunds` on lists) includes the charge's
//! refunds.

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::json::{set, str_field};
use crate::list::ListParams;
use crate::objects::charges::LABEL;
use crate::objects::refunds;
use crate::resources::ctx::Ctx;
use crate::store::{Store, kinds};

/// Adds the charge's `refunds` list (an includable field, sent only when expanded).
fn include_refunds(store: &Store, charge: &mut Value) {
    if let Some(id) = str_field(charge, "id").map(str::to_owned) {
        set(charge, "refunds", refunds::of_charge(store, &id));
    }
}

/// `GET /v1/charges/:id` (`expand[]=refunds` includes its refunds).
pub fn retrieve(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let mut charge = ctx
        .store
        .get_live(kinds::CHARGE, id)
        .map(|r| r.object.clone())
        .ok_or_else(|| ApiError::resource_missing(LABEL, id, "id"))?;
    if ctx.params.expand()?.iter().any(|p| p == "refunds") {
        include_refunds(ctx.store, &mut charge);
    }
    Ok(charge)
}

/// `GET /v1/charges` with `customer`, `payment_intent`, `created`.
pub fn list(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    let customer = p.non_empty(&["customer"])?;
    let intent = p.non_empty(&["payment_intent"])?;
    let paging = ListParams::parse(p, ctx.store, kinds::CHARGE, LABEL)?;
    let mut page = if customer.is_none() && intent.is_none() {
        paging.page_plain("/v1/charges", ctx.store)
    } else {
        let needles = [("customer", customer), ("payment_intent", intent)];
        let records = paging.walk_where(ctx.store, &needles).filter(|r| {
            customer.is_none_or(|c| str_field(&r.object, "customer") == Some(c))
                && intent.is_none_or(|i| str_field(&r.object, "payment_intent") == Some(i))
        });
        paging.page("/v1/charges", records)
    };
    if p.expand()?.iter().any(|e| e == "data.refunds")
        && let Some(data) = page.get_mut("data").and_then(Value::as_array_mut)
    {
        for charge in data {
            include_refunds(ctx.store, charge);
        }
    }
    Ok(page)
}
