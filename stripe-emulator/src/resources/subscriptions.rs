//! Subscriptions and their items: create, retrieve, update (plan changes with prorations,
//! cancel at period end, trial changes), cancel, list; `GET /v1/subscription_items`.
//!
//! Items are kept inside the subscription object (`items.data`, each with its full
//! `price` and its own `current_period_start`/`end`, as at this API version).
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

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult, ErrorType};
use crate::form::{Params, param_name};
use crate::ids;
use crate::json::{int_field, metadata_of, opt_str, set, set_in, str_field};
use crate::list::list_object;
use crate::list::{ListParams, created_filter};
use crate::money::{self, line_amount};
use crate::objects::coupons;
use crate::objects::customers;
use crate::objects::invoices::draft::{NewInvoice, create_draft};
use crate::objects::invoices::lines::{LineSpec, pending_items};
use crate::objects::invoices::payment::{finalize, pay, payment_method_for};
use crate::objects::invoices::record::{format_date, void_open_of_subscription};
use crate::objects::payment_methods::{self, PmRef};
use crate::objects::prices::{self, PriceData, ProductRef, Recurrence};
use crate::objects::subscriptions::create::{
    NewSubscription, create_stored, drop_used_once_discounts, predicted_decline,
};
use crate::objects::subscriptions::items::{
    item_object, price_label, product_name, quantity_label,
};
use crate::objects::subscriptions::prorations::{add_proration, prorate};
use crate::objects::subscriptions::record::{
    ITEM_LABEL, LABEL, current_period, items_of, period_end, require,
};
use crate::params::{merge_metadata, non_negative, one_of, unsupported};
use crate::resources::ctx::Ctx;
use crate::store::{Store, kinds};

/// Longest trial Stripe accepts (730 days).
const MAX_TRIAL_DAYS: i64 = 730;

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

/// A price named or described by a request, before anything is stored.
#[derive(Debug, Clone, PartialEq)]
enum PriceRef {
    Stored(Value),
    Inline(PriceData, ProductRef),
}

impl PriceRef {
    fn currency(&self) -> &str {
        match self {
            PriceRef::Stored(price) => str_field(price, "currency").unwrap_or_default(),
            PriceRef::Inline(data, _) => &data.currency,
        }
    }

    fn interval(&self) -> Option<(String, i64)> {
        match self {
            PriceRef::Stored(price) => prices::interval_of(price),
            PriceRef::Inline(data, _) => data
                .recurring
                .as_ref()
                .map(|r| (r.interval.clone(), r.interval_count)),
        }
    }

    fn id(&self) -> Option<&str> {
        match self {
            PriceRef::Stored(price) => str_field(price, "id"),
            PriceRef::Inline(..) => None,
        }
    }

    /// The stored price (storing inline price data now).
    fn resolve(self, store: &mut Store, now: i64) -> Value {
        match self {
            PriceRef::Stored(price) => price,
            PriceRef::Inline(data, product) => {
                let id = prices::insert_inline(store, now, &data, product);
                store
                    .get(kinds::PRICE, &id)
                    .map(|r| r.object.clone())
                    .unwrap_or_default()
            }
        }
    }
}

/// Reads `<prefix>[price]` (or `[plan]`) or `<prefix>[price_data]` as a price that must
/// (or must not) be recurring.
fn read_price(
    p: &Params,
    store: &Store,
    prefix: &[&str],
    recurring: bool,
) -> ApiResult<Option<PriceRef>> {
    let price_path = prices::at(prefix, &["price"]);
    let name = param_name(&price_path);
    let id = match p.non_empty(&price_path)? {
        Some(id) => Some(id),
        None => p.non_empty(&prices::at(prefix, &["plan"]))?,
    };
    if let Some(id) = id {
        let price = prices::require(store, id, &name)?.object.clone();
        if price.get("active").and_then(Value::as_bool) == Some(false) {
            return Err(ApiError::invalid_param(
                &name,
                format!(
                    "The price specified ({id}) is inactive. This field only accepts active prices."
                ),
            ));
        }
        let (want, got) = if recurring {
            ("recurring", "one_time")
        } else {
            ("one_time", "recurring")
        };
        if prices::is_recurring(&price) != recurring {
            return Err(ApiError::invalid_param(
                &name,
                format!(
                    "The price specified is set to `type={got}` but this field only accepts prices with `type={want}`."
                ),
            ));
        }
        return Ok(Some(PriceRef::Stored(price)));
    }
    let data_path = prices::at(prefix, &["price_data"]);
    if p.has(&data_path) {
        let recurrence = if recurring {
            Recurrence::Required
        } else {
            Recurrence::Forbidden
        };
        let (data, product) = prices::read_inline(p, &data_path, store, recurrence)?;
        return Ok(Some(PriceRef::Inline(data, product)));
    }
    Ok(None)
}

fn quantity(p: &Params, path: &[&str]) -> ApiResult<Option<i64>> {
    non_negative(p, path)
}

/// A subscription line item as requested.
#[derive(Debug, Clone, PartialEq)]
struct ItemRequest {
    price: PriceRef,
    quantity: i64,
    metadata: Map<String, Value>,
}

/// A price's currency, its interval (and count), and the parameter that named it.
type PriceShape = (String, Option<(String, i64)>, String);

/// An item of an update: id (empty for a new one), price, quantity, metadata, and whether
/// the price was changed.
type UpdatedItem = (String, PriceRef, i64, Map<String, Value>, bool);

/// Checks that every price shares one currency and one billing interval.
fn check_consistent(items: &[PriceShape]) -> ApiResult<()> {
    let Some((currency, interval, _)) = items.first() else {
        return Err(ApiError::parameter_missing("items"));
    };
    for (c, i, param) in items {
        if c != currency {
            return Err(ApiError::invalid_param(
                param,
                "Currency and interval fields must match across all plans on this subscription. Found mismatch in currency field.",
            ));
        }
        if i != interval {
            return Err(ApiError::invalid_param(
                param,
                "Currency and interval fields must match across all plans on this subscription. Found mismatch in interval field.",
            ));
        }
    }
    Ok(())
}

/// Reads the trial of a create or update: `trial_end` (`now` or a timestamp) or
/// `trial_period_days`. `Some(None)` is `trial_end=now`.
fn read_trial(p: &Params, now: i64) -> ApiResult<Option<Option<i64>>> {
    let days = p.integer(&["trial_period_days"])?;
    let end = p.non_empty(&["trial_end"])?;
    if days.is_some() && end.is_some() {
        return Err(ApiError::invalid_request(
            "You may only specify one of these parameters: trial_end, trial_period_days.",
        )
        .with_code("parameters_exclusive")
        .with_param("trial_end"));
    }
    if let Some(days) = days {
        if !(0..=MAX_TRIAL_DAYS).contains(&days) {
            return Err(ApiError::invalid_param(
                "trial_period_days",
                format!("Invalid trial_period_days: must be between 0 and {MAX_TRIAL_DAYS}."),
            ));
        }
        return Ok(Some((days > 0).then_some(now + days * 86_400)));
    }
    match end {
        None => Ok(None),
        Some("now") => Ok(Some(None)),
        Some(ts) => {
            let ts: i64 = ts
                .parse()
                .map_err(|_| ApiError::invalid_integer("trial_end", ts))?;
            if ts <= now {
                return Err(ApiError::invalid_param(
                    "trial_end",
                    "Invalid timestamp: must be in the future, or `now`.",
                ));
            }
            if ts > now + MAX_TRIAL_DAYS * 86_400 {
                return Err(ApiError::invalid_param(
                    "trial_end",
                    "Invalid timestamp: can be no more than two years in the future",
                ));
            }
            Ok(Some(Some(ts)))
        }
    }
}

/// Reads coupons from `discounts[i][coupon]` or the legacy `coupon`, checked against
/// `currency`.
pub fn read_coupons(p: &Params, store: &Store, now: i64, currency: &str) -> ApiResult<Vec<String>> {
    let mut coupons_found = Vec::new();
    let legacy = p.non_empty(&["coupon"])?;
    let indexes = p.indexed(&["discounts"])?;
    if legacy.is_some() && !indexes.is_empty() {
        return Err(ApiError::invalid_request(
            "You may only specify one of these parameters: coupon, discounts.",
        )
        .with_code("parameters_exclusive")
        .with_param("coupon"));
    }
    if let Some(coupon) = legacy {
        coupons::require_usable(store, coupon, "coupon", now, Some(currency))?;
        coupons_found.push(coupon.to_owned());
    }
    for index in indexes {
        if let Some(code) = p.non_empty(&["discounts", &index, "promotion_code"])? {
            return Err(ApiError::invalid_param(
                &format!("discounts[{index}][promotion_code]"),
                format!("No such promotion code: '{code}' (the Stripe emulator does not support promotion codes)."),
            )
            .with_code("resource_missing"));
        }
        if p.non_empty(&["discounts", &index, "discount"])?.is_some() {
            return Err(ApiError::invalid_param(
                &format!("discounts[{index}][discount]"),
                "The Stripe emulator supports only `discounts[][coupon]`.",
            ));
        }
        let param = format!("discounts[{index}][coupon]");
        let coupon = p
            .non_empty(&["discounts", &index, "coupon"])?
            .ok_or_else(|| ApiError::parameter_missing(&param))?;
        coupons::require_usable(store, coupon, &param, now, Some(currency))?;
        coupons_found.push(coupon.to_owned());
    }
    Ok(coupons_found)
}

/// Resolves `default_payment_method` for `customer`: a test token (attached on use) or a
/// payment method attached to the customer.
fn read_default_pm(p: &Params, store: &Store, customer: &str) -> ApiResult<Option<Option<PmRef>>> {
    let Some(value) = p.nullable_string(&["default_payment_method"])? else {
        return Ok(None);
    };
    let Some(value) = value else {
        return Ok(Some(None));
    };
    let pm = payment_methods::resolve(store, value, "default_payment_method")?;
    if let PmRef::Stored(id) = &pm
        && payment_methods::owner_of(store, id).as_deref() != Some(customer)
    {
        return Err(ApiError::invalid_param(
            "default_payment_method",
            format!(
                "The customer does not have a payment method with the ID {id}. The payment method must be attached to the customer."
            ),
        )
        .with_code("resource_missing"));
    }
    Ok(Some(Some(pm)))
}

fn read_collection(p: &Params, current: Option<&str>) -> ApiResult<(String, Option<i64>)> {
    let method = one_of(
        p,
        &["collection_method"],
        &["charge_automatically", "send_invoice"],
    )?
    .or(current)
    .unwrap_or("charge_automatically")
    .to_owned();
    let days = p.integer(&["days_until_due"])?;
    if days.is_some_and(|d| d < 0) {
        return Err(ApiError::invalid_param(
            "days_until_due",
            "Invalid days_until_due: must be a non-negative integer.",
        ));
    }
    if method == "send_invoice" && days.is_none() && current != Some("send_invoice") {
        return Err(ApiError::invalid_param(
            "days_until_due",
            "`days_until_due` is required when `collection_method` is `send_invoice`.",
        ));
    }
    Ok((method, days))
}

const PAYMENT_BEHAVIORS: &[&str] = &[
    "allow_incomplete",
    "default_incomplete",
    "error_if_incomplete",
    "pending_if_incomplete",
];

const PRORATION_BEHAVIORS: &[&str] = &["always_invoice", "create_prorations", "none"];

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
    let indexes = p.indexed(&["items"])?;
    if indexes.is_empty() {
        return Err(ApiError::parameter_missing("items"));
    }
    let mut requests = Vec::new();
    let mut seen = HashSet::new();
    for index in &indexes {
        let prefix = ["items", index.as_str()];
        let price = read_price(p, ctx.store, &prefix, true)?
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
    let mut extras = Vec::new();
    for index in p.indexed(&["add_invoice_items"])? {
        let prefix = ["add_invoice_items", index.as_str()];
        let param = format!("add_invoice_items[{index}][price]");
        let price = read_price(p, ctx.store, &prefix, false)?
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

/// `cancel_at`: a future timestamp, `max_period_end`/`min_period_end` (read as the period
/// end), or empty to unset (`Some(None)`).
fn read_cancel_at(p: &Params, now: i64) -> ApiResult<Option<Option<i64>>> {
    match p.string(&["cancel_at"])? {
        None => Ok(None),
        Some("") => Ok(Some(None)),
        Some("max_period_end" | "min_period_end" | "max_billed_until") => Ok(Some(Some(-1))),
        Some(ts) => {
            let ts: i64 = ts
                .parse()
                .map_err(|_| ApiError::invalid_integer("cancel_at", ts))?;
            if ts <= now {
                return Err(ApiError::invalid_param(
                    "cancel_at",
                    "Invalid timestamp: must be in the future.",
                ));
            }
            Ok(Some(Some(ts)))
        }
    }
}

/// `GET /v1/subscriptions/:id`.
pub fn retrieve(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    require(ctx.store, id, "id").map(|r| r.object.clone())
}

/// One item change of an update: the item before and after (price, quantity).
struct Change {
    si: String,
    before: Option<(Value, i64)>,
    after: Option<(Value, i64)>,
}

/// `POST /v1/subscriptions/:id`.
pub fn update(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let p = ctx.params;
    let now = ctx.now;
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
    let current = require(ctx.store, id, "id")?.object.clone();
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
        let price = read_price(p, ctx.store, &prefix, true)?;
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
    if new_items.is_empty() {
        return Err(ApiError::invalid_param(
            "items",
            "A subscription must have at least one item. To end it, cancel the subscription instead.",
        ));
    }
    let mut seen = HashSet::new();
    for (_, price, ..) in &new_items {
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
    if new_items.first().map(|(_, price, ..)| price.currency()) != Some(currency.as_str()) {
        return Err(ApiError::invalid_param(
            "items",
            format!("The prices' currency must match the subscription's currency ({currency})."),
        ));
    }
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
    let default_pm = read_default_pm(p, ctx.store, &customer)?;
    let new_coupons = if p.has(&["discounts"]) || p.has(&["coupon"]) {
        Some(read_coupons(p, ctx.store, now, &currency)?)
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

    // Changes to bill for.
    let ends_trial = matches!(trial, Some(None)) && status == "trialing";
    let trialing_after = status == "trialing" && !ends_trial;
    let items_changed = !item_indexes.is_empty();
    let (period_start, old_period_end) = current_period(&current);
    let resets_period = !trialing_after && (interval_changed || anchor_now || ends_trial);
    let will_invoice = !trialing_after
        && (resets_period || (items_changed && proration_behavior == "always_invoice"));
    if payment_behavior == "error_if_incomplete" && will_invoice {
        let pm = match &default_pm {
            Some(Some(PmRef::Stored(pm))) => Some(pm.clone()),
            Some(Some(PmRef::Token(card))) => {
                if let Some(decline) = card.decline {
                    return Err(ApiError::new(402, ErrorType::Card, decline.message)
                        .with_code(decline.code)
                        .with_decline_code(decline.decline_code));
                }
                None
            }
            _ => payment_method_for(
                ctx.store,
                &json!({"customer": customer, "parent": {"subscription_details": {"subscription": id}}}),
            ),
        };
        if let Some(pm) = pm
            && let Some(error) = predicted_decline(ctx.store, &pm)
        {
            return Err(error);
        }
    }

    // Apply.
    if let Some(pm) = &default_pm {
        let pm_id = pm
            .as_ref()
            .map(|pm| payment_methods::materialize(ctx.store, now, pm, Some(&customer)));
        if let Some(record) = ctx.store.get_live_mut(kinds::SUBSCRIPTION, id) {
            set(
                &mut record.object,
                "default_payment_method",
                opt_str(pm_id.as_deref()),
            );
        }
    }
    let mut changes = Vec::new();
    let mut resolved_items = Vec::new();
    for (si, price, qty, meta, price_changed) in new_items {
        let before = old_items
            .iter()
            .find(|i| str_field(i, "id") == Some(si.as_str()))
            .map(|i| {
                (
                    i.get("price").cloned().unwrap_or_default(),
                    int_field(i, "quantity"),
                )
            });
        let price = price.resolve(ctx.store, now);
        let si = if si.is_empty() {
            ids::short_id("si")
        } else {
            si
        };
        let changed = before.as_ref().is_none_or(|(old_price, old_qty)| {
            (price_changed && str_field(old_price, "id") != str_field(&price, "id"))
                || *old_qty != qty
        });
        if changed {
            changes.push(Change {
                si: si.clone(),
                before: before.clone(),
                after: Some((price.clone(), qty)),
            });
        }
        resolved_items.push((si, price, qty, meta));
    }
    for (si, ..) in removed {
        let before = old_items
            .iter()
            .find(|i| str_field(i, "id") == Some(si.as_str()))
            .map(|i| {
                (
                    i.get("price").cloned().unwrap_or_default(),
                    int_field(i, "quantity"),
                )
            });
        changes.push(Change {
            si,
            before,
            after: None,
        });
    }

    // Prorations for the time left in the current period.
    if !trialing_after && !matches!(status.as_str(), "incomplete") && proration_behavior != "none" {
        let whole = old_period_end - period_start;
        let left = (old_period_end - proration_date).clamp(0, whole.max(0));
        let date = format_date(proration_date);
        for change in &changes {
            if let Some((price, qty)) = &change.before {
                let amount = -prorate(line_amount(prices::unit_amount(price), *qty), left, whole);
                if amount != 0 {
                    add_proration(
                        ctx.store,
                        now,
                        &customer,
                        &currency,
                        id,
                        &change.si,
                        price,
                        *qty,
                        amount,
                        format!(
                            "Unused time on {} after {date}",
                            quantity_label(ctx.store, price, *qty)
                        ),
                        (proration_date, old_period_end),
                    );
                }
            }
            if !resets_period && let Some((price, qty)) = &change.after {
                let amount = prorate(line_amount(prices::unit_amount(price), *qty), left, whole);
                if amount != 0 {
                    add_proration(
                        ctx.store,
                        now,
                        &customer,
                        &currency,
                        id,
                        &change.si,
                        price,
                        *qty,
                        amount,
                        format!(
                            "Remaining time on {} after {date}",
                            quantity_label(ctx.store, price, *qty)
                        ),
                        (proration_date, old_period_end),
                    );
                }
            }
        }
    }

    // The new items, with their periods.
    let (interval, count) = new_interval.unwrap_or_else(|| ("month".into(), 1));
    let (item_start, item_end) = if resets_period {
        (now, period_end(now, &interval, count))
    } else {
        let trial_end = match trial {
            Some(Some(ts)) => Some(ts),
            _ => None,
        };
        (period_start, trial_end.unwrap_or(old_period_end))
    };
    let item_objects: Vec<Value> = resolved_items
        .iter()
        .map(|(si, price, qty, meta)| {
            let created = old_items
                .iter()
                .find(|i| str_field(i, "id") == Some(si.as_str()))
                .map_or(now, |i| int_field(i, "created"));
            item_object(si, id, price, *qty, meta, (item_start, item_end), created)
        })
        .collect();
    let new_discounts = new_coupons.map(|found| {
        found
            .iter()
            .map(|coupon| {
                coupons::apply(
                    ctx.store,
                    coupon,
                    coupons::Target {
                        customer: Some(&customer),
                        subscription: Some(id),
                        checkout_session: None,
                        invoice: None,
                    },
                    now,
                )
            })
            .collect::<Vec<_>>()
    });
    {
        let Some(record) = ctx.store.get_live_mut(kinds::SUBSCRIPTION, id) else {
            return Err(ApiError::resource_missing(LABEL, id, "id"));
        };
        let o = &mut record.object;
        set(o, "metadata", Value::Object(metadata));
        if let Some(comment) = comment {
            set_in(o, &["cancellation_details", "comment"], opt_str(comment));
        }
        if let Some(feedback) = feedback {
            set_in(o, &["cancellation_details", "feedback"], opt_str(feedback));
        }
        if let Some(description) = description {
            set(o, "description", opt_str(description));
        }
        set(o, "collection_method", json!(collection_method));
        if let Some(days) = days_until_due {
            set(o, "days_until_due", json!(days));
        }
        if collection_method == "charge_automatically" {
            set(o, "days_until_due", Value::Null);
        }
        if let Some(discounts) = &new_discounts {
            set(o, "discounts", json!(discounts));
        }
        let count = item_objects.len();
        set_in(o, &["items", "data"], Value::Array(item_objects));
        set_in(o, &["items", "total_count"], json!(count));
        match trial {
            Some(Some(ts)) => set(o, "trial_end", json!(ts)),
            Some(None) if status == "trialing" => {
                set(o, "trial_end", json!(now));
                set(o, "status", json!("active"));
            }
            _ => {}
        }
        if resets_period {
            set(o, "billing_cycle_anchor", json!(now));
        }
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

    // Invoice now: a new period (interval change, anchor reset, trial end), or
    // `always_invoice`.
    if will_invoice {
        let lines = if resets_period {
            resolved_items
                .iter()
                .map(|(si, price, qty, _)| {
                    let name = product_name(ctx.store, price);
                    LineSpec {
                        amount: line_amount(prices::unit_amount(price), *qty),
                        quantity: *qty,
                        description: format!("{qty} × {name} (at {})", price_label(price)),
                        price: Some(price.clone()),
                        period: (item_start, item_end),
                        proration: false,
                        subscription: Some(id.to_owned()),
                        subscription_item: Some(si.clone()),
                        invoice_item: None,
                        discountable: true,
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        let discounts: Vec<String> = ctx
            .store
            .get(kinds::SUBSCRIPTION, id)
            .and_then(|r| r.object.get("discounts").and_then(Value::as_array).cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|d| d.as_str().map(str::to_owned))
            .collect();
        let (method, days) = ctx
            .store
            .get(kinds::SUBSCRIPTION, id)
            .map(|r| {
                (
                    str_field(&r.object, "collection_method")
                        .unwrap_or("charge_automatically")
                        .to_owned(),
                    r.object.get("days_until_due").and_then(Value::as_i64),
                )
            })
            .unwrap_or_else(|| ("charge_automatically".into(), None));
        let invoice = create_draft(
            ctx.store,
            now,
            &NewInvoice {
                customer: customer.clone(),
                currency: currency.clone(),
                subscription: Some(id.to_owned()),
                billing_reason: "subscription_update".into(),
                collection_method: method.clone(),
                days_until_due: days,
                lines,
                include_pending: true,
                discounts: discounts.clone(),
                period: (period_start, now),
                description: None,
                metadata: Map::new(),
                default_payment_method: None,
            },
        );
        finalize(ctx.store, now, &invoice);
        drop_used_once_discounts(ctx.store, id, &discounts);
        if let Some(record) = ctx.store.get_live_mut(kinds::SUBSCRIPTION, id) {
            set(&mut record.object, "latest_invoice", json!(invoice));
        }
        let open = |store: &Store| {
            store
                .get(kinds::INVOICE, &invoice)
                .is_some_and(|r| str_field(&r.object, "status") == Some("open"))
        };
        if open(ctx.store)
            && method == "charge_automatically"
            && payment_behavior != "default_incomplete"
        {
            // A decline leaves the invoice open; the subscription is then past due.
            let _ = pay(ctx.store, now, &invoice, None);
            if open(ctx.store)
                && let Some(record) = ctx.store.get_live_mut(kinds::SUBSCRIPTION, id)
            {
                set(&mut record.object, "status", json!("past_due"));
            }
        }
    }
    retrieve(ctx, id)
}

fn read_feedback(p: &Params) -> ApiResult<Option<Option<&str>>> {
    let feedback = p.nullable_string(&["cancellation_details", "feedback"])?;
    if let Some(Some(value)) = feedback
        && !matches!(
            value,
            "customer_service"
                | "low_quality"
                | "missing_features"
                | "other"
                | "switched_service"
                | "too_complex"
                | "too_expensive"
                | "unused"
        )
    {
        return Err(ApiError::invalid_param(
            "cancellation_details[feedback]",
            format!("Invalid cancellation_details[feedback]: {value}"),
        ));
    }
    Ok(feedback)
}

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
    let created = created_filter(p)?;
    let paging = ListParams::parse(p, ctx.store, kinds::SUBSCRIPTION, LABEL)?;
    let records = ctx
        .store
        .live_newest_first(kinds::SUBSCRIPTION)
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
                && created(r)
        });
    Ok(paging.page("/v1/subscriptions", records))
}

/// `GET /v1/subscription_items?subscription=`.
pub fn list_items(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let subscription = ctx.params.required_string(&["subscription"])?.to_owned();
    let sub = require(ctx.store, &subscription, "subscription")?
        .object
        .clone();
    let items = items_of(&sub);
    let limit =
        usize::try_from(ctx.params.integer(&["limit"])?.unwrap_or(10).clamp(1, 100)).unwrap_or(10);
    let after = ctx.params.non_empty(&["starting_after"])?;
    let start = match after {
        Some(after) => items
            .iter()
            .position(|i| str_field(i, "id") == Some(after))
            .map_or(items.len(), |p| p + 1),
        None => 0,
    };
    let rest: Vec<Value> = items.into_iter().skip(start).collect();
    let has_more = rest.len() > limit;
    Ok(list_object(
        "/v1/subscription_items",
        rest.into_iter().take(limit).collect(),
        has_more,
    ))
}

/// `GET /v1/subscription_items/:id`.
pub fn retrieve_item(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    ctx.store
        .live_newest_first(kinds::SUBSCRIPTION)
        .flat_map(|r| items_of(&r.object))
        .find(|i| str_field(i, "id") == Some(id))
        .ok_or_else(|| ApiError::resource_missing(ITEM_LABEL, id, "id"))
}
