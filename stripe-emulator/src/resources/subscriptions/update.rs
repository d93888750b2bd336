//! `POST /v1/subscriptions/:id`: plan changes with prorations, cancel at period end, trial
//! changes; an invoice at once for a new period (interval change, anchor reset, trial end)
//! or with `proration_behavior=always_invoice`.
//!
//! The update is read and checked whole first ([`read_update`]); then, in this order, the
//! default payment method is set, the items' prices are resolved, prorations are billed,
//! coupons applied, the subscription written and the invoice made (the events of the
//! request follow that order).

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::json::{int_field, opt_str, set, set_in, str_field};
use crate::objects::coupons;
use crate::objects::payment_methods::{self};
use crate::objects::subscriptions::items::item_object;
use crate::objects::subscriptions::record::LABEL;
use crate::resources::ctx::Ctx;
use crate::resources::subscriptions::list::retrieve;
use crate::resources::subscriptions::update_billing::{
    Billing, bill_prorations, check_payment, invoice_now, resolve_items,
};
use crate::resources::subscriptions::update_request::{UpdateRequest, read_update};
use crate::store::{Store, kinds};

/// `POST /v1/subscriptions/:id`.
pub fn update(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let now = ctx.now;
    let mut request = read_update(ctx.params, ctx.store, now, id)?;
    let billing = Billing::of(&request);
    if request.payment_behavior == "error_if_incomplete" && billing.will_invoice {
        check_payment(ctx.store, id, &request)?;
    }

    // Apply.
    set_default_payment_method(ctx.store, now, id, &request);
    let new_items = std::mem::take(&mut request.new_items);
    let removed = std::mem::take(&mut request.removed);
    let (changes, resolved_items) =
        resolve_items(ctx.store, now, &request.old_items, new_items, removed);
    if !billing.trialing_after
        && !matches!(request.status.as_str(), "incomplete")
        && request.proration_behavior != "none"
    {
        bill_prorations(ctx.store, now, id, &request, &billing, &changes);
    }
    let period = billing.item_period(&request, now);
    let item_objects: Vec<Value> = resolved_items
        .iter()
        .map(|(si, price, qty, meta)| {
            let created = request
                .old_items
                .iter()
                .find(|i| str_field(i, "id") == Some(si.as_str()))
                .map_or(now, |i| int_field(i, "created"));
            item_object(si, id, price, *qty, meta, period, created)
        })
        .collect();
    let new_discounts = request.new_coupons.as_ref().map(|found| {
        found
            .iter()
            .map(|coupon| {
                coupons::apply(
                    ctx.store,
                    coupon,
                    coupons::Target {
                        customer: Some(&request.customer),
                        subscription: Some(id),
                        checkout_session: None,
                        invoice: None,
                    },
                    now,
                )
            })
            .collect::<Vec<_>>()
    });
    write_subscription(
        ctx.store,
        now,
        id,
        &request,
        &billing,
        item_objects,
        new_discounts,
        period.1,
    )?;

    // Invoice now: a new period (interval change, anchor reset, trial end), or
    // `always_invoice`.
    if billing.will_invoice {
        invoice_now(
            ctx.store,
            now,
            id,
            &request,
            &billing,
            &resolved_items,
            period,
        );
    }
    retrieve(ctx, id)
}

/// Sets (or unsets) `default_payment_method`, attaching a test token's new card to the
/// customer.
fn set_default_payment_method(store: &mut Store, now: i64, id: &str, request: &UpdateRequest<'_>) {
    if let Some(pm) = &request.default_pm {
        let pm_id = pm
            .as_ref()
            .map(|pm| payment_methods::materialize(store, now, pm, Some(&request.customer)));
        if let Some(record) = store.get_live_mut(kinds::SUBSCRIPTION, id) {
            set(
                &mut record.object,
                "default_payment_method",
                opt_str(pm_id.as_deref()),
            );
        }
    }
}

/// Writes the update's fields, items, discounts, trial and cancellation into the stored
/// subscription.
#[expect(
    clippy::too_many_arguments,
    reason = "the parts of the update computed before writing"
)]
fn write_subscription(
    store: &mut Store,
    now: i64,
    id: &str,
    request: &UpdateRequest<'_>,
    billing: &Billing,
    item_objects: Vec<Value>,
    new_discounts: Option<Vec<String>>,
    item_end: i64,
) -> ApiResult<()> {
    let Some(record) = store.get_live_mut(kinds::SUBSCRIPTION, id) else {
        return Err(ApiError::resource_missing(LABEL, id, "id"));
    };
    let o = &mut record.object;
    set(o, "metadata", Value::Object(request.metadata.clone()));
    if let Some(comment) = request.comment {
        set_in(o, &["cancellation_details", "comment"], opt_str(comment));
    }
    if let Some(feedback) = request.feedback {
        set_in(o, &["cancellation_details", "feedback"], opt_str(feedback));
    }
    if let Some(description) = request.description {
        set(o, "description", opt_str(description));
    }
    set(o, "collection_method", json!(request.collection_method));
    if let Some(days) = request.days_until_due {
        set(o, "days_until_due", json!(days));
    }
    if request.collection_method == "charge_automatically" {
        set(o, "days_until_due", Value::Null);
    }
    if let Some(discounts) = &new_discounts {
        set(o, "discounts", json!(discounts));
    }
    set_in(o, &["items", "data"], Value::Array(item_objects));
    match request.trial {
        Some(Some(ts)) => set(o, "trial_end", json!(ts)),
        Some(None) if request.status == "trialing" => {
            set(o, "trial_end", json!(now));
            set(o, "status", json!("active"));
        }
        _ => {}
    }
    if billing.resets_period {
        set(o, "billing_cycle_anchor", json!(now));
    }
    set_cancellation(o, request.cancel_at_period_end, request.cancel_at, item_end);
    Ok(())
}

/// `cancel_at_period_end` and `cancel_at` after the update (a cancellation at period end
/// follows the new period).
fn set_cancellation(
    o: &mut Value,
    cancel_at_period_end: Option<bool>,
    cancel_at: Option<Option<i64>>,
    item_end: i64,
) {
    match (cancel_at_period_end, cancel_at) {
        (Some(true), _) => {
            set(o, "cancel_at_period_end", json!(true));
            set(o, "cancel_at", json!(item_end));
        }
        (Some(false), _) => {
            set(o, "cancel_at_period_end", json!(false));
            set(o, "cancel_at", Value::Null);
        }
        (None, Some(Some(-1))) => {
            set(o, "cancel_at_period_end", json!(false));
            set(o, "cancel_at", json!(item_end));
        }
        (None, Some(at)) => {
            set(o, "cancel_at_period_end", json!(false));
            set(o, "cancel_at", at.map_or(Value::Null, |a| json!(a)));
        }
        (None, None) => {
            if o.get("cancel_at_period_end").and_then(Value::as_bool) == Some(true) {
                set(o, "cancel_at", json!(item_end));
            }
        }
    }
}
