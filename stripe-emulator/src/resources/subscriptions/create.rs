//! `POST /v1/subscriptions`: reads and checks the request, then creates the subscription
//! with its first invoice (see [`create_stored`]).
//!
//! Status on creation:
//! - a trial (`trial_period_days`, `trial_end`) → `trialing` (the first invoice is $0, or
//!   charges only `add_invoice_items`; if that charge is not paid, `incomplete`);
//! - otherwise the first invoice is charged to `default_payment_method`, else the
//!   customer's `invoice_settings.default_payment_method` → paid: `active`; declined or no
//!   payment method: `incomplete`, with the invoice `open` (`payment_behavior=
//!   default_incomplete` never charges; `error_if_incomplete` answers the 402 and creates
//!   nothing); `collection_method=send_invoice` → `active` with the invoice open.
//! - paying the open invoice later (`POST /v1/invoices/:id/pay`, or confirming its payment
//!   intent) makes an `incomplete` or `past_due` subscription `active` (or `trialing`).

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::form::Params;
use crate::money;
use crate::objects::customers;
use crate::objects::payment_methods;
use crate::objects::subscriptions::create::create_stored;
use crate::objects::subscriptions::spec::NewSubscription;
use crate::params::{merge_metadata, one_of, unsupported};
use crate::resources::ctx::Ctx;
use crate::resources::subscriptions::list::retrieve;
use crate::resources::subscriptions::read::{
    PAYMENT_BEHAVIORS, PRORATION_BEHAVIORS, PriceRef, check_consistent, quantity, read_cancel_at,
    read_collection, read_coupons, read_default_pm, read_price, read_trial,
};
use crate::store::Store;

/// `POST /v1/subscriptions`.
pub fn create(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    unsupported(
        p,
        &[
            "customer_account",
            "billing_cycle_anchor",
            "billing_cycle_anchor_config",
            "backdate_start_date",
            "billing_schedules",
            "pending_invoice_item_interval",
            "default_source",
            "schedule",
        ],
    )?;
    let customer = p.required_string(&["customer"])?.to_owned();
    customers::require_live(ctx.store, &customer, "customer")?;
    let requests = read_items(p, ctx.store)?;
    check_consistent(
        &requests
            .iter()
            .map(|(param, r)| {
                (
                    r.price.currency().to_owned(),
                    r.price.interval(),
                    param.clone(),
                )
            })
            .collect::<Vec<_>>(),
    )?;
    let currency = requests
        .first()
        .map(|(_, r)| r.price.currency().to_owned())
        .unwrap_or_default();
    if let Some(wanted) = money::currency(p, &["currency"])?
        && wanted != currency
    {
        return Err(ApiError::invalid_param(
            "currency",
            format!(
                "The currency ({wanted}) does not match the currency of the prices ({currency})."
            ),
        ));
    }
    let extras = read_add_invoice_items(p, ctx.store, &currency)?;
    let trial_end = read_trial(p, ctx.now)?.flatten();
    let default_pm = read_default_pm(p, ctx.store, &customer)?.flatten();
    let coupons_found = read_coupons(p, ctx.store, ctx.now, &currency)?;
    let (collection_method, days_until_due) = read_collection(p, None)?;
    let payment_behavior = one_of(p, &["payment_behavior"], PAYMENT_BEHAVIORS)?
        .unwrap_or("allow_incomplete")
        .to_owned();
    one_of(p, &["proration_behavior"], PRORATION_BEHAVIORS)?;
    let cancel_at_period_end = p.boolean(&["cancel_at_period_end"])?.unwrap_or(false);
    let cancel_at = read_cancel_at(p, ctx.now)?;
    if cancel_at_period_end && cancel_at.is_some() {
        return Err(ApiError::invalid_request(
            "You may only specify one of these parameters: cancel_at, cancel_at_period_end.",
        )
        .with_code("parameters_exclusive")
        .with_param("cancel_at"));
    }
    let metadata = merge_metadata(&Map::new(), p.hash(&["metadata"])?)?;
    let description = p.non_empty(&["description"])?.map(str::to_owned);

    let now = ctx.now;
    let default_pm =
        default_pm.map(|pm| payment_methods::materialize(ctx.store, now, &pm, Some(&customer)));
    let items = requests
        .into_iter()
        .map(|(_, r)| (r.price.resolve(ctx.store, now), r.quantity, r.metadata))
        .collect();
    let add_invoice_items = extras
        .into_iter()
        .map(|(price, qty)| (price.resolve(ctx.store, now), qty))
        .collect();
    let spec = NewSubscription {
        customer,
        items,
        add_invoice_items,
        trial_end,
        default_payment_method: default_pm,
        coupons: coupons_found,
        metadata,
        description,
        cancel_at_period_end,
        cancel_at: cancel_at.flatten(),
        payment_behavior,
        collection_method,
        days_until_due,
        checkout_session: None,
    };
    let id = create_stored(ctx.store, now, &spec)?;
    retrieve(ctx, &id)
}

/// `items[N][price|price_data|quantity|metadata]`: at least one, each price once; each with
/// the parameter that named its price.
fn read_items(p: &Params, store: &Store) -> ApiResult<Vec<(String, ItemRequest)>> {
    let indexes = p.indexed(&["items"])?;
    if indexes.is_empty() {
        return Err(ApiError::parameter_missing("items"));
    }
    let mut requests = Vec::new();
    let mut seen = HashSet::new();
    for index in &indexes {
        let prefix = ["items", index.as_str()];
        let price = read_price(p, store, &prefix, true)?
            .ok_or_else(|| ApiError::parameter_missing(&format!("items[{index}][price]")))?;
        if let Some(id) = price.id()
            && !seen.insert(id.to_owned())
        {
            return Err(ApiError::invalid_param(
                &format!("items[{index}][price]"),
                format!("Cannot add multiple subscription items with the same price: {id}"),
            ));
        }
        let quantity = quantity(p, &["items", index, "quantity"])?.unwrap_or(1);
        let metadata = merge_metadata(&Map::new(), p.hash(&["items", index, "metadata"])?)?;
        requests.push((
            format!("items[{index}][price]"),
            ItemRequest {
                price,
                quantity,
                metadata,
            },
        ));
    }
    Ok(requests)
}

/// `add_invoice_items[N][price|price_data|quantity]`: one-time prices in the
/// subscription's currency, for the first invoice.
fn read_add_invoice_items(
    p: &Params,
    store: &Store,
    currency: &str,
) -> ApiResult<Vec<(PriceRef, i64)>> {
    let mut extras = Vec::new();
    for index in p.indexed(&["add_invoice_items"])? {
        let prefix = ["add_invoice_items", index.as_str()];
        let param = format!("add_invoice_items[{index}][price]");
        let price = read_price(p, store, &prefix, false)?
            .ok_or_else(|| ApiError::parameter_missing(&param))?;
        if price.currency() != currency {
            return Err(ApiError::invalid_param(
                &param,
                format!(
                    "The price's currency ({}) must match the subscription's currency ({currency}).",
                    price.currency()
                ),
            ));
        }
        let quantity = quantity(p, &["add_invoice_items", &index, "quantity"])?.unwrap_or(1);
        extras.push((price, quantity));
    }
    Ok(extras)
}

/// A subscription line item as requested.
#[derive(Debug, Clone, PartialEq)]
struct ItemRequest {
    price: PriceRef,
    quantity: i64,
    metadata: Map<String, Value>,
}
