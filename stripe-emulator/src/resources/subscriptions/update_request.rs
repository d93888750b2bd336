//! Reading a `POST /v1/subscriptions/:id` and checking all of it before anything changes.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::form::Params;
use crate::json::{int_field, metadata_of, str_field};
use crate::objects::payment_methods::PmRef;
use crate::objects::prices;
use crate::objects::subscriptions::record::{ITEM_LABEL, items_of, require};
use crate::params::{merge_metadata, one_of, unsupported};
use crate::resources::subscriptions::read::{
    PAYMENT_BEHAVIORS, PRORATION_BEHAVIORS, PriceRef, check_consistent, quantity, read_cancel_at,
    read_collection, read_coupons, read_default_pm, read_feedback, read_price, read_trial,
};
use crate::store::Store;

/// An item of an update: id (empty for a new one), price, quantity, metadata, and whether
/// the price was changed.
pub type UpdatedItem = (String, PriceRef, i64, Map<String, Value>, bool);

/// An update as requested, checked: the subscription as it was and every parameter read.
pub struct UpdateRequest<'p> {
    /// The subscription before the update.
    pub current: Value,
    pub status: String,
    pub customer: String,
    pub currency: String,
    pub metadata: Map<String, Value>,
    pub comment: Option<Option<&'p str>>,
    pub feedback: Option<Option<&'p str>>,
    pub proration_behavior: &'p str,
    pub payment_behavior: &'p str,
    pub proration_date: i64,
    pub anchor_now: bool,
    /// The items before the update.
    pub old_items: Vec<Value>,
    /// The items after the update (new ones without an id yet).
    pub new_items: Vec<UpdatedItem>,
    /// The items the update deletes.
    pub removed: Vec<UpdatedItem>,
    /// Whether `items` was sent.
    pub items_changed: bool,
    pub new_interval: Option<(String, i64)>,
    pub interval_changed: bool,
    pub trial: Option<Option<i64>>,
    pub default_pm: Option<Option<PmRef>>,
    pub new_coupons: Option<Vec<String>>,
    pub collection_method: String,
    pub days_until_due: Option<i64>,
    pub cancel_at_period_end: Option<bool>,
    pub cancel_at: Option<Option<i64>>,
    pub description: Option<Option<&'p str>>,
}

/// Reads and checks the update of subscription `id`.
pub fn read_update<'p>(
    p: &'p Params,
    store: &Store,
    now: i64,
    id: &str,
) -> ApiResult<UpdateRequest<'p>> {
    unsupported(
        p,
        &[
            "pause_collection",
            "billing_cycle_anchor_config",
            "billing_schedules",
            "pending_invoice_item_interval",
            "default_source",
        ],
    )?;
    let current = require(store, id, "id")?.object.clone();
    let status = str_field(&current, "status").unwrap_or_default().to_owned();
    let customer = str_field(&current, "customer")
        .unwrap_or_default()
        .to_owned();
    let currency = str_field(&current, "currency").unwrap_or("usd").to_owned();
    let metadata = merge_metadata(&metadata_of(&current), p.hash(&["metadata"])?)?;
    let comment = p.nullable_string(&["cancellation_details", "comment"])?;
    let feedback = read_feedback(p)?;

    let touches_more = p.params_other_than(&["metadata", "cancellation_details", "expand"]);
    if matches!(status.as_str(), "canceled" | "incomplete_expired") && touches_more {
        return Err(ApiError::invalid_request(
            "A canceled subscription can only update its cancellation_details and metadata.",
        ));
    }
    let proration_behavior =
        one_of(p, &["proration_behavior"], PRORATION_BEHAVIORS)?.unwrap_or("create_prorations");
    let payment_behavior =
        one_of(p, &["payment_behavior"], PAYMENT_BEHAVIORS)?.unwrap_or("allow_incomplete");
    let proration_date = p.integer(&["proration_date"])?.unwrap_or(now);
    let anchor_now = one_of(p, &["billing_cycle_anchor"], &["now", "unchanged"])? == Some("now");

    // Items.
    let old_items = items_of(&current);
    let (new_items, removed, items_changed) = read_items(p, store, &status, &old_items)?;
    check_items(&new_items, &currency)?;
    let old_interval = old_items
        .first()
        .and_then(|i| i.get("price"))
        .and_then(prices::interval_of);
    let new_interval = new_items
        .first()
        .and_then(|(_, price, ..)| price.interval());
    let interval_changed = old_interval != new_interval;

    let trial = read_trial(p, now)?;
    if let Some(Some(_)) = trial
        && status != "trialing"
    {
        return Err(ApiError::invalid_param(
            "trial_end",
            "The Stripe emulator can change `trial_end` only while the subscription is trialing (use `trial_end=now` to end a trial).",
        ));
    }
    let default_pm = read_default_pm(p, store, &customer)?;
    let new_coupons = if p.has(&["discounts"]) {
        Some(read_coupons(p, store, now, &currency)?)
    } else {
        None
    };
    let (collection_method, days_until_due) =
        read_collection(p, str_field(&current, "collection_method"))?;
    let cancel_at_period_end = p.boolean(&["cancel_at_period_end"])?;
    let cancel_at = read_cancel_at(p, now)?;
    if cancel_at_period_end == Some(true) && matches!(cancel_at, Some(Some(_))) {
        return Err(ApiError::invalid_request(
            "You may only specify one of these parameters: cancel_at, cancel_at_period_end.",
        )
        .with_code("parameters_exclusive")
        .with_param("cancel_at"));
    }
    let description = p.nullable_string(&["description"])?;
    Ok(UpdateRequest {
        current,
        status,
        customer,
        currency,
        metadata,
        comment,
        feedback,
        proration_behavior,
        payment_behavior,
        proration_date,
        anchor_now,
        old_items,
        new_items,
        removed,
        items_changed,
        new_interval,
        interval_changed,
        trial,
        default_pm,
        new_coupons,
        collection_method,
        days_until_due,
        cancel_at_period_end,
        cancel_at,
        description,
    })
}

/// Applies `items[N][...]` to the subscription's items: the items after the update, the
/// items deleted, and whether `items` was sent at all.
fn read_items(
    p: &Params,
    store: &Store,
    status: &str,
    old_items: &[Value],
) -> ApiResult<(Vec<UpdatedItem>, Vec<UpdatedItem>, bool)> {
    let mut new_items: Vec<UpdatedItem> = old_items
        .iter()
        .map(|item| {
            (
                str_field(item, "id").unwrap_or_default().to_owned(),
                PriceRef::Stored(item.get("price").cloned().unwrap_or_default()),
                int_field(item, "quantity"),
                metadata_of(item),
                false,
            )
        })
        .collect();
    let mut removed = Vec::new();
    let item_indexes = p.indexed(&["items"])?;
    if !item_indexes.is_empty() && status == "incomplete" {
        return Err(ApiError::invalid_param(
            "items",
            "This subscription is incomplete: its items can change only after its first invoice is paid. Pay the invoice, or cancel the subscription and create a new one.",
        ));
    }
    for index in &item_indexes {
        let prefix = ["items", index.as_str()];
        let price = read_price(p, store, &prefix, true)?;
        let qty = quantity(p, &["items", index, "quantity"])?;
        let item_meta = p.hash(&["items", index, "metadata"])?;
        let deleted = p.boolean(&["items", index, "deleted"])?.unwrap_or(false);
        match p.non_empty(&["items", index, "id"])? {
            Some(si) => {
                let Some(pos) = new_items.iter().position(|(id, ..)| id == si) else {
                    return Err(ApiError::resource_missing(
                        ITEM_LABEL,
                        si,
                        &format!("items[{index}][id]"),
                    ));
                };
                if deleted {
                    removed.push(new_items.remove(pos));
                    continue;
                }
                let entry = &mut new_items[pos];
                if let Some(price) = price {
                    entry.1 = price;
                    entry.4 = true;
                }
                if let Some(qty) = qty {
                    entry.2 = qty;
                }
                entry.3 = merge_metadata(&entry.3, item_meta)?;
            }
            None => {
                if deleted {
                    return Err(ApiError::parameter_missing(&format!("items[{index}][id]")));
                }
                let price = price.ok_or_else(|| {
                    ApiError::parameter_missing(&format!("items[{index}][price]"))
                })?;
                new_items.push((
                    String::new(),
                    price,
                    qty.unwrap_or(1),
                    merge_metadata(&Map::new(), item_meta)?,
                    true,
                ));
            }
        }
    }
    Ok((new_items, removed, !item_indexes.is_empty()))
}

/// Checks the items after an update: at least one, each price once, one currency (the
/// subscription's) and one billing interval.
fn check_items(new_items: &[UpdatedItem], currency: &str) -> ApiResult<()> {
    if new_items.is_empty() {
        return Err(ApiError::invalid_param(
            "items",
            "A subscription must have at least one item. To end it, cancel the subscription instead.",
        ));
    }
    let mut seen = HashSet::new();
    for (_, price, ..) in new_items {
        if let Some(pid) = price.id()
            && !seen.insert(pid.to_owned())
        {
            return Err(ApiError::invalid_param(
                "items",
                format!("Cannot add multiple subscription items with the same price: {pid}"),
            ));
        }
    }
    check_consistent(
        &new_items
            .iter()
            .map(|(_, price, ..)| {
                (
                    price.currency().to_owned(),
                    price.interval(),
                    "items".to_owned(),
                )
            })
            .collect::<Vec<_>>(),
    )?;
    if new_items.first().map(|(_, price, ..)| price.currency()) != Some(currency) {
        return Err(ApiError::invalid_param(
            "items",
            format!("The prices' currency must match the subscription's currency ({currency})."),
        ));
    }
    Ok(())
}
