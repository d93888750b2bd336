//! Invoice payments (`/v1/invoice_payments`): the payments of finalized invoices, as their
//! invoices keep them (`payments.data`), retrieved and listed.

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::list::list_object;
use crate::params::one_of;
use crate::resources::ctx::Ctx;
use crate::store::{Store, kinds};

/// How invoice payments are named in "No such ..." messages.
pub const LABEL: &str = "invoice_payment";

/// Every invoice payment, newest invoice first.
fn all(store: &Store) -> Vec<Value> {
    store
        .live_newest_first(kinds::INVOICE)
        .filter_map(|r| r.object.pointer("/payments/data").and_then(Value::as_array))
        .flatten()
        .cloned()
        .collect()
}

/// `GET /v1/invoice_payments/:id`.
pub fn retrieve(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    all(ctx.store)
        .into_iter()
        .find(|p| p.get("id").and_then(Value::as_str) == Some(id))
        .ok_or_else(|| ApiError::resource_missing(LABEL, id, "id"))
}

/// `GET /v1/invoice_payments` with `invoice`, `payment[type]`, `payment[payment_intent]`,
/// `status` and paging (`limit`, `starting_after`, `ending_before`).
pub fn list(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    let invoice = p.non_empty(&["invoice"])?;
    let intent = p.non_empty(&["payment", "payment_intent"])?;
    let payment_type = one_of(
        p,
        &["payment", "type"],
        &["payment_intent", "payment_record"],
    )?;
    let status = one_of(p, &["status"], &["canceled", "open", "paid"])?;
    let limit = match p.integer(&["limit"])? {
        None => 10,
        Some(n @ 1..=100) => usize::try_from(n).unwrap_or(10),
        Some(_) => {
            return Err(ApiError::invalid_request(
                "This value must be greater than or equal to 1 and less than or equal to 100.",
            )
            .with_code("parameter_invalid_integer")
            .with_param("limit"));
        }
    };
    let field = |v: &Value, pointer: &str| {
        v.pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let payments: Vec<Value> = all(ctx.store)
        .into_iter()
        .filter(|v| {
            invoice.is_none_or(|i| field(v, "/invoice").as_deref() == Some(i))
                && intent.is_none_or(|i| field(v, "/payment/payment_intent").as_deref() == Some(i))
                && payment_type.is_none_or(|t| field(v, "/payment/type").as_deref() == Some(t))
                && status.is_none_or(|s| field(v, "/status").as_deref() == Some(s))
        })
        .collect();
    let position = |param: &str| -> ApiResult<Option<usize>> {
        let Some(id) = p.non_empty(&[param])? else {
            return Ok(None);
        };
        payments
            .iter()
            .position(|v| v.get("id").and_then(Value::as_str) == Some(id))
            .map(Some)
            .ok_or_else(|| ApiError::resource_missing(LABEL, id, param).with_status(404))
    };
    let (data, has_more) = match (position("starting_after")?, position("ending_before")?) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_request(
                "You may only specify one of these parameters: ending_before, starting_after.",
            )
            .with_code("parameters_exclusive")
            .with_param("ending_before"));
        }
        (Some(after), None) => {
            let rest = &payments[after + 1..];
            (
                rest.iter().take(limit).cloned().collect(),
                rest.len() > limit,
            )
        }
        (None, Some(before)) => {
            let start = before.saturating_sub(limit);
            (payments[start..before].to_vec(), start > 0)
        }
        (None, None) => (
            payments.iter().take(limit).cloned().collect(),
            payments.len() > limit,
        ),
    };
    Ok(list_object("/v1/invoice_payments", data, has_more))
}
