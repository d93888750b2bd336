//! Payment links: create, retrieve, update, list, line items; and the hosted page at
//! `{base}/b/:id` (the link's `url`, no key needed).
//!
//! A link sells fixed line items (stored prices and quantities; one currency; recurring
//! prices make it a subscription link). Its page shows the items and the total, and its
//! "Pay" button (`POST` to the same URL) opens a checkout session for them (with
//! `payment_link` set, `mode` payment or subscription) and redirects `303` to that session's
//! hosted page; after payment the customer lands on `after_completion[redirect][url]` or
//! back on the link's page, which then shows the confirmation. An inactive link's page
//! shows `inactive_message` and opens no session.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::fixtures::fixture;
use crate::form::{Params, param_name};
use crate::ids;
use crate::json::{id_of, metadata_of, opt_str, set, str_field};
use crate::list::ListParams;
use crate::money;
use crate::objects::line_items::{item_object, line_items_list_of, stored_line_items};
use crate::objects::prices;
use crate::params::{merge_metadata, one_of, unsupported};
use crate::resources::ctx::Ctx;
use crate::state::CheckoutPage;
use crate::store::{Store, kinds};
use crate::text::is_url;

/// How payment links are named in "No such ..." messages.
pub const LABEL: &str = "payment_link";

/// Path prefix of the hosted payment link pages.
pub const PAGE_PREFIX: &str = "/b/";

/// Most line items a link takes.
const MAX_LINE_ITEMS: usize = 20;

/// Longest `inactive_message` and `custom_message` Stripe accepts.
const MAX_MESSAGE_LEN: usize = 500;

const SUBMIT_TYPES: &[&str] = &["auto", "book", "donate", "pay", "subscribe"];

pub fn stored(store: &Store, id: &str) -> ApiResult<Value> {
    store
        .get_live(kinds::PAYMENT_LINK, id)
        .map(|r| r.object.clone())
        .ok_or_else(|| ApiError::resource_missing(LABEL, id, "id"))
}

fn message_param(p: &Params, path: &[&str]) -> ApiResult<Option<Option<String>>> {
    let value = p.nullable_string(path)?;
    if let Some(Some(message)) = value
        && message.chars().count() > MAX_MESSAGE_LEN
    {
        let name = param_name(path);
        return Err(ApiError::invalid_param(
            &name,
            format!("{name} must be at most {MAX_MESSAGE_LEN} characters."),
        ));
    }
    Ok(value.map(|v| v.map(str::to_owned)))
}

/// `after_completion[type]` with `[hosted_confirmation][custom_message]` or
/// `[redirect][url]`, as the object shows it; `None` when not sent.
fn read_after_completion(p: &Params) -> ApiResult<Option<Value>> {
    if !p.has(&["after_completion"]) {
        return Ok(None);
    }
    let kind = p
        .non_empty(&["after_completion", "type"])?
        .ok_or_else(|| ApiError::parameter_missing("after_completion[type]"))?;
    match kind {
        "hosted_confirmation" => {
            let message = message_param(
                p,
                &["after_completion", "hosted_confirmation", "custom_message"],
            )?
            .flatten();
            Ok(Some(json!({
                "hosted_confirmation": {"custom_message": message},
                "type": "hosted_confirmation"
            })))
        }
        "redirect" => {
            let param = "after_completion[redirect][url]";
            let url = p
                .non_empty(&["after_completion", "redirect", "url"])?
                .ok_or_else(|| ApiError::parameter_missing(param))?;
            if !is_url(url) {
                return Err(ApiError::invalid_request("Not a valid URL")
                    .with_code("url_invalid")
                    .with_param(param));
            }
            Ok(Some(json!({"redirect": {"url": url}, "type": "redirect"})))
        }
        other => Err(ApiError::invalid_param(
            "after_completion[type]",
            format!(
                "Invalid after_completion[type]: {other}. Must be one of hosted_confirmation, redirect"
            ),
        )),
    }
}

/// A line item of a create request: a stored price, or inline `price_data` (stored as a
/// price of its own when the link is created).
enum Line {
    Stored(Value),
    Inline(prices::PriceData, prices::ProductRef),
}

impl Line {
    fn currency(&self) -> &str {
        match self {
            Line::Stored(price) => str_field(price, "currency").unwrap_or_default(),
            Line::Inline(data, _) => &data.currency,
        }
    }

    fn interval(&self) -> Option<(String, i64)> {
        match self {
            Line::Stored(price) => {
                prices::interval_of(price).filter(|_| prices::is_recurring(price))
            }
            Line::Inline(data, _) => data
                .recurring
                .as_ref()
                .map(|r| (r.interval.clone(), r.interval_count)),
        }
    }
}

/// The line items of a create request: each a stored price (active, used once) or
/// `price_data`, with its quantity; all in one currency, recurring ones on one interval.
fn read_line_items(store: &Store, p: &Params) -> ApiResult<Vec<(Line, i64)>> {
    let indexes = p.indexed(&["line_items"])?;
    if indexes.is_empty() {
        return Err(ApiError::parameter_missing("line_items"));
    }
    if indexes.len() > MAX_LINE_ITEMS {
        return Err(ApiError::invalid_param(
            "line_items",
            format!("You may only specify up to {MAX_LINE_ITEMS} line items."),
        ));
    }
    let mut lines: Vec<(Line, i64)> = Vec::new();
    let mut seen = HashSet::new();
    for index in &indexes {
        let price_param = format!("line_items[{index}][price]");
        let line = match p.non_empty(&["line_items", index, "price"])? {
            Some(id) => {
                let price = prices::require(store, id, &price_param)?.object.clone();
                if price.get("active").and_then(Value::as_bool) == Some(false) {
                    return Err(ApiError::invalid_param(
                        &price_param,
                        format!("The price `{id}` is not active."),
                    ));
                }
                if !seen.insert(id.to_owned()) {
                    return Err(ApiError::invalid_param(
                        &price_param,
                        format!("The price `{id}` is used by more than one line item."),
                    ));
                }
                Line::Stored(price)
            }
            None if p.has(&["line_items", index, "price_data"]) => {
                let prefix = ["line_items", index.as_str(), "price_data"];
                let (data, product) =
                    prices::read_inline(p, &prefix, store, prices::Recurrence::Allowed)?;
                Line::Inline(data, product)
            }
            None => return Err(ApiError::parameter_missing(&price_param)),
        };
        let qty_param = format!("line_items[{index}][quantity]");
        let quantity = p
            .integer(&["line_items", index, "quantity"])?
            .ok_or_else(|| ApiError::parameter_missing(&qty_param))?;
        if quantity < 1 {
            return Err(ApiError::invalid_request(
                "This value must be greater than or equal to 1.",
            )
            .with_code("parameter_invalid_integer")
            .with_param(qty_param));
        }
        if let Some((first, _)) = lines.first() {
            if first.currency() != line.currency() {
                return Err(ApiError::invalid_param(
                    &price_param,
                    "All line items must have the same currency.",
                ));
            }
            let first_interval = lines.iter().find_map(|(l, _)| l.interval());
            if let (Some(first), Some(this)) = (first_interval, line.interval())
                && first != this
            {
                return Err(ApiError::invalid_param(
                    &price_param,
                    "All recurring prices of a payment link must have the same billing interval.",
                ));
            }
        }
        lines.push((line, quantity));
    }
    Ok(lines)
}

/// `payment_intent_data[description|metadata]` or `subscription_data[description|metadata|
/// trial_period_days]` as the object shows them; `None` when not sent.
fn read_mode_data(p: &Params, subscription: bool) -> ApiResult<(Option<Value>, Option<Value>)> {
    let (wanted, other) = if subscription {
        ("subscription_data", "payment_intent_data")
    } else {
        ("payment_intent_data", "subscription_data")
    };
    if p.has(&[other]) {
        return Err(ApiError::invalid_param(
            other,
            if subscription {
                "`payment_intent_data` can only be used with one-time prices; use `subscription_data` for recurring prices."
            } else {
                "`subscription_data` can only be used with recurring prices."
            },
        ));
    }
    if !p.has(&[wanted]) {
        return Ok((None, None));
    }
    let description = p.non_empty(&[wanted, "description"])?;
    let metadata = merge_metadata(&Map::new(), p.hash(&[wanted, "metadata"])?)?;
    if subscription {
        let trial = p.integer(&[wanted, "trial_period_days"])?;
        if let Some(days) = trial
            && !(1..=730).contains(&days)
        {
            return Err(ApiError::invalid_param(
                "subscription_data[trial_period_days]",
                "Invalid trial_period_days: must be between 1 and 730.",
            ));
        }
        Ok((
            None,
            Some(json!({
                "description": description,
                "invoice_settings": {"issuer": {"type": "self"}},
                "metadata": metadata,
                "trial_period_days": trial,
                "trial_settings": null
            })),
        ))
    } else {
        Ok((
            Some(json!({
                "capture_method": null,
                "description": description,
                "metadata": metadata,
                "setup_future_usage": null,
                "statement_descriptor": null,
                "statement_descriptor_suffix": null,
                "transfer_group": null
            })),
            None,
        ))
    }
}

/// `POST /v1/payment_links`: `line_items[N][price]` (or `[price_data]`) and `[quantity]`
/// (required),
/// `metadata`, `after_completion`, `allow_promotion_codes`, `billing_address_collection`,
/// `customer_creation`, `submit_type`, `currency`, `inactive_message`,
/// `payment_intent_data[description|metadata]`,
/// `subscription_data[description|metadata|trial_period_days]`.
pub fn create(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    unsupported(
        p,
        &[
            "optional_items",
            "shipping_address_collection",
            "shipping_options",
            "automatic_tax",
            "invoice_creation",
            "restrictions",
            "transfer_data",
            "on_behalf_of",
            "application_fee_amount",
            "application_fee_percent",
            "payment_method_types",
        ],
    )?;
    let lines = read_line_items(ctx.store, p)?;
    let currency = lines
        .first()
        .map_or("usd", |(line, _)| line.currency())
        .to_owned();
    if let Some(wanted) = money::currency(p, &["currency"])?
        && wanted != currency
    {
        return Err(ApiError::invalid_param(
            "currency",
            format!(
                "The currency ({wanted}) does not match the line items' currency ({currency})."
            ),
        ));
    }
    let subscription = lines.iter().any(|(line, _)| line.interval().is_some());
    let after_completion = read_after_completion(p)?.unwrap_or_else(
        || json!({"hosted_confirmation": {"custom_message": null}, "type": "hosted_confirmation"}),
    );
    let allow_promotion_codes = p.boolean(&["allow_promotion_codes"])?.unwrap_or(false);
    let billing_address_collection =
        one_of(p, &["billing_address_collection"], &["auto", "required"])?.unwrap_or("auto");
    let customer_creation = one_of(p, &["customer_creation"], &["always", "if_required"])?;
    if customer_creation.is_some() && subscription {
        return Err(ApiError::invalid_param(
            "customer_creation",
            "`customer_creation` can only be used with one-time prices.",
        ));
    }
    let submit_type = one_of(p, &["submit_type"], SUBMIT_TYPES)?.unwrap_or("auto");
    let inactive_message = message_param(p, &["inactive_message"])?.flatten();
    let (payment_intent_data, subscription_data) = read_mode_data(p, subscription)?;
    let metadata = merge_metadata(&Map::new(), p.hash(&["metadata"])?)?;

    let id = ids::long_id("plink");
    let mut items: Vec<Value> = Vec::with_capacity(lines.len());
    for (line, quantity) in lines {
        let price = match line {
            Line::Stored(price) => price,
            Line::Inline(data, product) => {
                let price_id = prices::insert_inline(ctx.store, ctx.now, &data, product);
                prices::require(ctx.store, &price_id, "price")?
                    .object
                    .clone()
            }
        };
        let product = price.get("product").and_then(id_of).unwrap_or_default();
        let description = ctx
            .store
            .get(kinds::PRODUCT, product)
            .and_then(|r| str_field(&r.object, "name").map(str::to_owned))
            .unwrap_or_default();
        items.push(item_object(&price, quantity, &description, 0));
    }
    let mut invoice_creation = fixture(kinds::PAYMENT_LINK)
        .get("invoice_creation")
        .cloned()
        .unwrap_or_else(|| json!({"invoice_data": null}));
    set(&mut invoice_creation, "enabled", json!(false));
    let mut link = fixture(kinds::PAYMENT_LINK);
    for (key, value) in [
        ("id", json!(id)),
        ("object", json!("payment_link")),
        ("active", json!(true)),
        ("after_completion", after_completion),
        ("allow_promotion_codes", json!(allow_promotion_codes)),
        ("application", Value::Null),
        ("application_fee_amount", Value::Null),
        ("application_fee_percent", Value::Null),
        (
            "automatic_tax",
            json!({"enabled": false, "liability": null}),
        ),
        (
            "billing_address_collection",
            json!(billing_address_collection),
        ),
        ("consent_collection", Value::Null),
        ("currency", json!(currency)),
        ("custom_fields", json!([])),
        (
            "custom_text",
            json!({"after_submit": null, "shipping_address": null, "submit": null, "terms_of_service_acceptance": null}),
        ),
        (
            "customer_creation",
            json!(customer_creation.unwrap_or("if_required")),
        ),
        ("inactive_message", opt_str(inactive_message.as_deref())),
        ("invoice_creation", invoice_creation),
        ("livemode", json!(ctx.livemode())),
        ("managed_payments", Value::Null),
        ("metadata", Value::Object(metadata)),
        ("on_behalf_of", Value::Null),
        (
            "payment_intent_data",
            payment_intent_data.unwrap_or(Value::Null),
        ),
        ("payment_method_collection", json!("always")),
        ("payment_method_options", Value::Null),
        ("payment_method_types", Value::Null),
        ("phone_number_collection", json!({"enabled": false})),
        ("restrictions", Value::Null),
        ("shipping_address_collection", Value::Null),
        ("shipping_options", json!([])),
        ("submit_type", json!(submit_type)),
        (
            "subscription_data",
            subscription_data.unwrap_or(Value::Null),
        ),
        (
            "tax_id_collection",
            json!({"enabled": false, "required": "never"}),
        ),
        ("transfer_data", Value::Null),
        ("url", json!(format!("{}{PAGE_PREFIX}{id}", ctx.base_url))),
    ] {
        set(&mut link, key, value);
    }
    let mut internal = Map::new();
    internal.insert("line_items".into(), Value::Array(items));
    ctx.store.insert_with(kinds::PAYMENT_LINK, link, internal);
    ctx.emulator.add_payment_link_page(
        id.clone(),
        CheckoutPage {
            key: ctx.key.to_owned(),
            account: ctx.account.to_owned(),
        },
    );
    respond(ctx, &id)
}

pub fn line_items(store: &Store, id: &str) -> Vec<Value> {
    stored_line_items(store, kinds::PAYMENT_LINK, id)
}

fn line_items_list(store: &Store, id: &str) -> Value {
    let url = format!("/v1/payment_links/{id}/line_items");
    line_items_list_of(store, kinds::PAYMENT_LINK, id, &url)
}

/// The link as answered: with `line_items` when `expand[]=line_items` asks for it.
fn respond(ctx: &Ctx<'_>, id: &str) -> ApiResult<Value> {
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
    let records = ctx
        .store
        .live_newest_first(kinds::PAYMENT_LINK)
        .filter(|r| {
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
