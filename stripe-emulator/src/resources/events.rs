//! Events: `GET /v1/events` (newest first; the last 30 days only; `type` with `*`
//! wildcards, `types[]` (up to 20), `created`, `delivery_success` (`true`: every endpoint
//! the event went to answered 2xx, or it went to none; `false`: some delivery is pending or
//! failed for good), paging) and `GET /v1/events/:id`. Events are recorded by
//! [`crate::events`].

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::events::record::{RETENTION_SECS, stored_event};
use crate::json::str_field;
use crate::list::ListParams;
use crate::resources::ctx::Ctx;
use crate::store::kinds;

/// How events are named in "No such ..." messages.
pub const LABEL: &str = "event";

/// Stripe's limit on `types[]`.
const MAX_TYPES: usize = 20;

/// Whether `name` matches `pattern`, where `*` stands for any run of characters.
fn glob(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return false;
    };
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// `GET /v1/events/:id`.
pub fn retrieve(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    stored_event(ctx.store, id).ok_or_else(|| ApiError::resource_missing(LABEL, id, "id"))
}

/// `GET /v1/events`.
pub fn list(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    let single = p.non_empty(&["type"])?;
    let types = if p.has(&["types"]) {
        p.string_list(&["types"])?
    } else {
        Vec::new()
    };
    if single.is_some() && !types.is_empty() {
        return Err(ApiError::invalid_request(
            "You may only specify one of these parameters: type, types.",
        )
        .with_code("parameters_exclusive")
        .with_param("types"));
    }
    if types.len() > MAX_TYPES {
        return Err(ApiError::invalid_param(
            "types",
            format!("You may pass at most {MAX_TYPES} event types."),
        ));
    }
    let delivery_success = p.boolean(&["delivery_success"])?;
    // Only the last 30 days are listed (as by Stripe).
    let paging = ListParams::parse(p, ctx.store, kinds::EVENT, LABEL)?
        .with_created_min(ctx.now.saturating_sub(RETENTION_SECS));
    if single.is_none() && types.is_empty() && delivery_success.is_none() {
        return Ok(paging.page_plain("/v1/events", ctx.store));
    }
    let records = paging.walk(ctx.store).filter(|r| {
        let event_type = str_field(&r.object, "type").unwrap_or_default();
        let pending = r
            .object
            .get("pending_webhooks")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        single.is_none_or(|pattern| glob(pattern, event_type))
            && (types.is_empty() || types.iter().any(|t| t == event_type))
            && delivery_success.is_none_or(|success| success == (pending == 0))
    });
    Ok(paging.page("/v1/events", records))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(glob("customer.created", "customer.created"));
        assert!(!glob("customer.created", "customer.created2"));
        assert!(glob("customer.*", "customer.subscription.created"));
        assert!(glob("*.created", "invoice.created"));
        assert!(glob("customer.*.created", "customer.subscription.created"));
        assert!(!glob("customer.*", "invoice.created"));
        assert!(glob("*", "anything"));
    }
}
