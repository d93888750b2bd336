//! `DELETE /v1/subscriptions/:id`: cancels now, optionally crediting the unused time
//! (`prorate`) and invoicing what is pending (`invoice_now`).

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::json::{int_field, opt_str, set, set_in, str_field};
use crate::money::line_amount;
use crate::objects::invoices::draft::{NewInvoice, create_draft};
use crate::objects::invoices::lines::pending_items;
use crate::objects::invoices::payment::{finalize, pay};
use crate::objects::invoices::record::{format_date, void_open_of_subscription};
use crate::objects::prices;
use crate::objects::subscriptions::items::quantity_label;
use crate::objects::subscriptions::prorations::{add_proration, prorate};
use crate::objects::subscriptions::record::{LABEL, current_period, items_of, require};
use crate::resources::ctx::Ctx;
use crate::resources::subscriptions::read::read_feedback;
use crate::store::kinds;

/// `DELETE /v1/subscriptions/:id` (cancel now), with `invoice_now`, `prorate`,
/// `cancellation_details[comment|feedback]`.
pub fn cancel(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let p = ctx.params;
    let now = ctx.now;
    let current = require(ctx.store, id, "id")?.object.clone();
    let status = str_field(&current, "status").unwrap_or_default().to_owned();
    if matches!(status.as_str(), "canceled" | "incomplete_expired") {
        return Err(ApiError::invalid_request(format!(
            "This subscription has already been canceled ({id})."
        )));
    }
    let invoice_now = p.boolean(&["invoice_now"])?.unwrap_or(false);
    let prorate_now = p.boolean(&["prorate"])?.unwrap_or(false);
    let comment = p.nullable_string(&["cancellation_details", "comment"])?;
    let feedback = read_feedback(p)?;
    let customer = str_field(&current, "customer")
        .unwrap_or_default()
        .to_owned();
    let currency = str_field(&current, "currency").unwrap_or("usd").to_owned();

    if status == "incomplete" {
        void_open_of_subscription(ctx.store, now, id);
    }
    if prorate_now && matches!(status.as_str(), "active" | "past_due") {
        let (start, end) = current_period(&current);
        let whole = end - start;
        let left = (end - now).clamp(0, whole.max(0));
        let date = format_date(now);
        for item in items_of(&current) {
            let price = item.get("price").cloned().unwrap_or_default();
            let qty = int_field(&item, "quantity");
            let amount = -prorate(line_amount(prices::unit_amount(&price), qty), left, whole);
            if amount != 0 {
                let label = quantity_label(ctx.store, &price, qty);
                add_proration(
                    ctx.store,
                    now,
                    &customer,
                    &currency,
                    id,
                    str_field(&item, "id").unwrap_or_default(),
                    &price,
                    qty,
                    amount,
                    format!("Unused time on {label} after {date}"),
                    (now, end),
                );
            }
        }
    }
    if invoice_now && !pending_items(ctx.store, &customer, Some(id)).is_empty() {
        let invoice = create_draft(
            ctx.store,
            now,
            &NewInvoice {
                customer: customer.clone(),
                currency,
                subscription: Some(id.to_owned()),
                billing_reason: "subscription_update".into(),
                collection_method: str_field(&current, "collection_method")
                    .unwrap_or("charge_automatically")
                    .to_owned(),
                days_until_due: current.get("days_until_due").and_then(Value::as_i64),
                lines: Vec::new(),
                include_pending: true,
                discounts: Vec::new(),
                period: (current_period(&current).0, now),
                description: None,
                metadata: Map::new(),
                default_payment_method: None,
            },
        );
        finalize(ctx.store, now, &invoice);
        let _ = pay(ctx.store, now, &invoice, None);
        if let Some(record) = ctx.store.get_live_mut(kinds::SUBSCRIPTION, id) {
            set(&mut record.object, "latest_invoice", json!(invoice));
        }
    }
    let Some(record) = ctx.store.get_live_mut(kinds::SUBSCRIPTION, id) else {
        return Err(ApiError::resource_missing(LABEL, id, "id"));
    };
    let o = &mut record.object;
    set(o, "status", json!("canceled"));
    set(o, "canceled_at", json!(now));
    set(o, "ended_at", json!(now));
    set(o, "cancel_at_period_end", json!(false));
    set_in(
        o,
        &["cancellation_details", "reason"],
        json!("cancellation_requested"),
    );
    if let Some(comment) = comment {
        set_in(o, &["cancellation_details", "comment"], opt_str(comment));
    }
    if let Some(feedback) = feedback {
        set_in(o, &["cancellation_details", "feedback"], opt_str(feedback));
    }
    Ok(record.object.clone())
}
