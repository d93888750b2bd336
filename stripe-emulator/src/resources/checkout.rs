//! Checkout sessions: create, retrieve, list, line items, expire; completion (the test
//! helper `POST /_emulator/checkout/sessions/:id/complete` and the hosted page at
//! `{base}/c/pay/:id`).
//!
//! Amounts: `amount_subtotal` is what is due at completion before discounts (in
//! `subscription` mode with a trial, only the one-time items), `amount_total` after the
//! session's coupon. Completing a session makes what Stripe's hosted page would: in
//! `payment` mode a succeeded payment intent (a customer only with
//! `customer_creation=always`, as in Stripe), in `subscription` mode a customer (if none)
//! and a subscription charged to the card, in `setup` mode a customer (if none) and a
//! succeeded setup intent. A declining card answers the 402 and leaves the session open.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::fixtures::fixture;
use crate::form::Params;
use crate::ids;
use crate::json::{id_of, int_field, opt_str, set, str_field};
use crate::list::{ListParams, created_filter};
use crate::money::{self, format_amount, line_amount, share_of};
use crate::objects::coupons;
use crate::objects::customers;
use crate::objects::line_items::{item_object, line_items_list_of, stored_line_items};
use crate::objects::payment_intents::{self, NewIntent};
use crate::objects::payment_methods::{self, PmRef};
use crate::objects::prices::{self, Recurrence};
use crate::objects::setup_intents;
use crate::objects::subscriptions::create::{NewSubscription, create_stored};
use crate::params::{merge_metadata, one_of, unsupported};
use crate::resources::ctx::Ctx;
use crate::state::CheckoutPage;
use crate::store::{Store, kinds};
use crate::text::{escape_html, is_url};

/// How checkout sessions are named in "No such ..." messages.
pub const LABEL: &str = "checkout.session";

/// Path prefix of hosted checkout pages.
pub const PAGE_PREFIX: &str = "/c/pay/";

/// Most line items a session takes.
const MAX_LINE_ITEMS: usize = 100;

/// Shortest and longest session lifetimes (30 minutes, 24 hours).
const MIN_LIFETIME: i64 = 30 * 60;
const MAX_LIFETIME: i64 = 24 * 60 * 60;

fn url_param(p: &Params, name: &str) -> ApiResult<Option<String>> {
    match p.non_empty(&[name])? {
        Some(url) if !is_url(url) => Err(ApiError::invalid_request("Not a valid URL")
            .with_code("url_invalid")
            .with_param(name)),
        other => Ok(other.map(str::to_owned)),
    }
}

/// `POST /v1/checkout/sessions`.
pub fn create(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    let now = ctx.now;
    unsupported(
        p,
        &[
            "customer_account",
            "optional_items",
            "shipping_options",
            "automatic_tax",
            "payment_method_data",
        ],
    )?;
    let mode = match p.non_empty(&["mode"])? {
        None => return Err(ApiError::parameter_missing("mode")),
        Some(_) => one_of(p, &["mode"], &["payment", "setup", "subscription"])?
            .unwrap_or("payment")
            .to_owned(),
    };
    let ui_mode = match p.non_empty(&["ui_mode"])? {
        None | Some("hosted" | "hosted_page") => "hosted_page",
        Some("embedded" | "embedded_page") => "embedded_page",
        Some("custom" | "elements") => "elements",
        Some("form") => "form",
        Some(other) => {
            return Err(ApiError::invalid_param(
                "ui_mode",
                format!("Invalid ui_mode: {other}"),
            ));
        }
    };
    let hosted = ui_mode == "hosted_page";
    let success_url = url_param(p, "success_url")?;
    let cancel_url = url_param(p, "cancel_url")?;
    let return_url = url_param(p, "return_url")?;
    if hosted {
        if success_url.is_none() {
            return Err(ApiError::parameter_missing("success_url"));
        }
        if return_url.is_some() {
            return Err(ApiError::invalid_param(
                "return_url",
                "`return_url` can only be used with `ui_mode` embedded_page, elements or form; use `success_url` with a hosted page.",
            ));
        }
    } else {
        if success_url.is_some() || cancel_url.is_some() {
            return Err(ApiError::invalid_param(
                "success_url",
                format!(
                    "`success_url` and `cancel_url` cannot be used with `ui_mode={ui_mode}`; use `return_url`."
                ),
            ));
        }
        let never = p.non_empty(&["redirect_on_completion"])? == Some("never");
        if return_url.is_none() && !never {
            return Err(ApiError::parameter_missing("return_url"));
        }
    }

    // Customer.
    let customer = p.non_empty(&["customer"])?.map(str::to_owned);
    let customer_email = p.non_empty(&["customer_email"])?.map(str::to_owned);
    if customer.is_some() && customer_email.is_some() {
        return Err(ApiError::invalid_request(
            "You may only specify one of these parameters: customer, customer_email.",
        )
        .with_code("parameters_exclusive")
        .with_param("customer_email"));
    }
    if let Some(customer) = &customer {
        customers::require_live(ctx.store, customer, "customer")?;
    }
    if let Some(email) = &customer_email
        && !email.contains('@')
    {
        return Err(
            ApiError::invalid_request(format!("Invalid email address: {email}"))
                .with_code("email_invalid")
                .with_param("customer_email"),
        );
    }
    let customer_creation = one_of(p, &["customer_creation"], &["always", "if_required"])?;
    if customer_creation.is_some() && mode != "payment" {
        return Err(ApiError::invalid_param(
            "customer_creation",
            "`customer_creation` can only be used in `payment` mode.",
        ));
    }

    // Line items.
    let indexes = p.indexed(&["line_items"])?;
    if mode == "setup" && !indexes.is_empty() {
        return Err(ApiError::invalid_param(
            "line_items",
            "You cannot pass `line_items` in `setup` mode.",
        ));
    }
    if mode != "setup" && indexes.is_empty() {
        return Err(ApiError::parameter_missing("line_items"));
    }
    if indexes.len() > MAX_LINE_ITEMS {
        return Err(ApiError::invalid_param(
            "line_items",
            format!("You may only specify up to {MAX_LINE_ITEMS} line items."),
        ));
    }
    enum Line {
        Stored(Value),
        Inline(prices::PriceData, prices::ProductRef),
    }
    let mut lines = Vec::new();
    let mut seen = HashSet::new();
    for index in &indexes {
        let price_param = format!("line_items[{index}][price]");
        let line = match p.non_empty(&["line_items", index, "price"])? {
            Some(id) => {
                let price = prices::require(ctx.store, id, &price_param)?.object.clone();
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
                let data_prefix = ["line_items", index.as_str(), "price_data"];
                let (data, product) =
                    prices::read_inline(p, &data_prefix, ctx.store, Recurrence::Allowed)?;
                Line::Inline(data, product)
            }
            None => return Err(ApiError::parameter_missing(&price_param)),
        };
        let qty_param = format!("line_items[{index}][quantity]");
        let quantity = p
            .integer(&["line_items", index, "quantity"])?
            .ok_or_else(|| ApiError::parameter_missing(&qty_param))?;
        if quantity < 1 {
            return Err(ApiError::invalid_param(
                &qty_param,
                "Quantity must be greater than 0.",
            ));
        }
        let (currency, recurring) = match &line {
            Line::Stored(price) => (
                str_field(price, "currency").unwrap_or_default().to_owned(),
                prices::interval_of(price),
            ),
            Line::Inline(data, _) => (
                data.currency.clone(),
                data.recurring
                    .as_ref()
                    .map(|r| (r.interval.clone(), r.interval_count)),
            ),
        };
        if mode == "payment" && recurring.is_some() {
            return Err(ApiError::invalid_param(
                &price_param,
                "You specified `payment` mode but passed a recurring price. Either switch to `subscription` mode or use only one-time prices.",
            ));
        }
        lines.push((line, quantity, currency, recurring, price_param));
    }
    let currency = match lines.first() {
        Some((_, _, currency, _, _)) => Some(currency.clone()),
        None => money::currency(p, &["currency"])?,
    };
    for (_, _, c, _, param) in &lines {
        if Some(c) != currency.as_ref() {
            return Err(ApiError::invalid_param(
                param,
                "All line items must have the same currency.",
            ));
        }
    }
    if let (Some(wanted), Some(currency)) = (money::currency(p, &["currency"])?, &currency)
        && &wanted != currency
    {
        return Err(ApiError::invalid_param(
            "currency",
            format!(
                "The currency ({wanted}) does not match the line items' currency ({currency})."
            ),
        ));
    }
    if mode == "subscription" {
        let intervals: Vec<_> = lines.iter().filter_map(|l| l.3.clone()).collect();
        if intervals.is_empty() {
            return Err(ApiError::invalid_param(
                "line_items",
                "You must provide at least one recurring price in `subscription` mode when using prices.",
            ));
        }
        if intervals.iter().any(|i| i != &intervals[0]) {
            return Err(ApiError::invalid_param(
                "line_items",
                "All recurring prices of a subscription must have the same billing interval.",
            ));
        }
    }

    // Discounts.
    let allow_promotion_codes = p.boolean(&["allow_promotion_codes"])?;
    let discount_indexes = p.indexed(&["discounts"])?;
    if allow_promotion_codes == Some(true) && !discount_indexes.is_empty() {
        return Err(ApiError::invalid_request(
            "You may only specify one of these parameters: allow_promotion_codes, discounts.",
        )
        .with_code("parameters_exclusive")
        .with_param("discounts"));
    }
    if discount_indexes.len() > 1 {
        return Err(ApiError::invalid_param(
            "discounts",
            "You may only specify one discount for a Checkout Session.",
        ));
    }
    let coupon = match (discount_indexes.first(), &currency) {
        (Some(index), Some(currency)) => {
            if p.non_empty(&["discounts", index, "promotion_code"])?
                .is_some()
            {
                return Err(ApiError::invalid_param(
                    &format!("discounts[{index}][promotion_code]"),
                    "The Stripe emulator does not support promotion codes.",
                ));
            }
            let param = format!("discounts[{index}][coupon]");
            let id = p
                .non_empty(&["discounts", index, "coupon"])?
                .ok_or_else(|| ApiError::parameter_missing(&param))?;
            Some(coupons::require_usable(
                ctx.store,
                id,
                &param,
                now,
                Some(currency),
            )?)
        }
        (Some(_), None) => {
            return Err(ApiError::invalid_param(
                "discounts",
                "Discounts can only be used with line items.",
            ));
        }
        _ => None,
    };

    // Mode-specific data.
    let has_sub_data = p.has(&["subscription_data"]);
    if has_sub_data && mode != "subscription" {
        return Err(ApiError::invalid_param(
            "subscription_data",
            "`subscription_data` can only be used in `subscription` mode.",
        ));
    }
    let trial_days = p.integer(&["subscription_data", "trial_period_days"])?;
    if let Some(days) = trial_days
        && !(1..=730).contains(&days)
    {
        return Err(ApiError::invalid_param(
            "subscription_data[trial_period_days]",
            "Invalid trial_period_days: must be between 1 and 730.",
        ));
    }
    let trial_end = p.integer(&["subscription_data", "trial_end"])?;
    if trial_days.is_some() && trial_end.is_some() {
        return Err(ApiError::invalid_request(
            "You may only specify one of these parameters: subscription_data[trial_end], subscription_data[trial_period_days].",
        )
        .with_code("parameters_exclusive")
        .with_param("subscription_data[trial_end]"));
    }
    if let Some(end) = trial_end
        && end < now + 2 * 86_400
    {
        return Err(ApiError::invalid_param(
            "subscription_data[trial_end]",
            "subscription_data[trial_end] must be at least 48 hours in the future.",
        ));
    }
    let sub_description = p
        .non_empty(&["subscription_data", "description"])?
        .map(str::to_owned);
    let sub_metadata = merge_metadata(&Map::new(), p.hash(&["subscription_data", "metadata"])?)?;
    if p.has(&["payment_intent_data"]) && mode != "payment" {
        return Err(ApiError::invalid_param(
            "payment_intent_data",
            "`payment_intent_data` can only be used in `payment` mode.",
        ));
    }
    let pi_description = p
        .non_empty(&["payment_intent_data", "description"])?
        .map(str::to_owned);
    let pi_metadata = merge_metadata(&Map::new(), p.hash(&["payment_intent_data", "metadata"])?)?;
    let pi_sfu = one_of(
        p,
        &["payment_intent_data", "setup_future_usage"],
        &["on_session", "off_session"],
    )?
    .map(str::to_owned);
    let metadata = merge_metadata(&Map::new(), p.hash(&["metadata"])?)?;
    let client_reference_id = p.non_empty(&["client_reference_id"])?;
    if client_reference_id.is_some_and(|c| c.chars().count() > 200) {
        return Err(ApiError::invalid_param(
            "client_reference_id",
            "client_reference_id must be at most 200 characters.",
        ));
    }
    let expires_at = match p.integer(&["expires_at"])? {
        None => now + MAX_LIFETIME,
        Some(at) if at < now + MIN_LIFETIME => {
            return Err(ApiError::invalid_param(
                "expires_at",
                "The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.",
            ));
        }
        Some(at) if at > now + MAX_LIFETIME => {
            return Err(ApiError::invalid_param(
                "expires_at",
                "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
            ));
        }
        Some(at) => at,
    };
    let locale = p.non_empty(&["locale"])?;
    let submit_type = one_of(
        p,
        &["submit_type"],
        &["auto", "book", "donate", "pay", "subscribe"],
    )?;

    // Store.
    let id = format!(
        "cs_{}_{}",
        if ctx.livemode() { "live" } else { "test" },
        ids::random_alnum(58)
    );
    let trialing = trial_days.is_some() || trial_end.is_some();
    let mut items = Vec::new();
    let mut due_now: i64 = 0;
    for (line, quantity, _, recurring, _) in lines {
        let price = match line {
            Line::Stored(price) => price,
            Line::Inline(data, product) => {
                let price_id = prices::insert_inline(ctx.store, now, &data, product);
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
        if !(trialing && recurring.is_some()) {
            due_now = due_now.saturating_add(line_amount(prices::unit_amount(&price), quantity));
        }
        items.push((price, quantity, description));
    }
    let discount = coupon
        .as_ref()
        .map_or(0, |c| coupons::discount_amount(c, due_now));
    // Spread the discount over the items in proportion, the rest on the last one.
    let mut given: i64 = 0;
    let count = items.len();
    let item_objects: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(index, (price, quantity, description))| {
            let subtotal = line_amount(prices::unit_amount(price), *quantity);
            let share = if discount == 0 || due_now == 0 {
                0
            } else if index + 1 == count {
                discount - given
            } else {
                share_of(discount, subtotal, due_now)
            };
            given = given.saturating_add(share);
            item_object(price, *quantity, description, share)
        })
        .collect();
    let payment_required = mode != "setup" && due_now.saturating_sub(discount) > 0;
    let url = hosted.then(|| format!("{}{PAGE_PREFIX}{id}", ctx.base_url));
    let client_secret = (!hosted).then(|| format!("{id}_secret_{}", ids::random_alnum(24)));
    let amounts = mode != "setup";
    let mut session = fixture(kinds::CHECKOUT_SESSION);
    for (key, value) in [
        ("id", json!(id)),
        ("object", json!("checkout.session")),
        ("adaptive_pricing", Value::Null),
        ("after_expiration", Value::Null),
        (
            "allow_promotion_codes",
            allow_promotion_codes.map_or(Value::Null, |a| json!(a)),
        ),
        ("allowed_payment_method_types", Value::Null),
        (
            "amount_subtotal",
            if amounts { json!(due_now) } else { Value::Null },
        ),
        (
            "amount_total",
            if amounts {
                json!(due_now.saturating_sub(discount))
            } else {
                Value::Null
            },
        ),
        (
            "automatic_tax",
            json!({"enabled": false, "liability": null, "provider": null, "status": null}),
        ),
        ("billing_address_collection", Value::Null),
        ("branding_settings", Value::Null),
        ("cancel_url", opt_str(cancel_url.as_deref())),
        ("client_reference_id", opt_str(client_reference_id)),
        ("client_secret", opt_str(client_secret.as_deref())),
        ("collected_information", Value::Null),
        ("consent", Value::Null),
        ("consent_collection", Value::Null),
        ("created", json!(now)),
        ("currency", opt_str(currency.as_deref())),
        ("currency_conversion", Value::Null),
        ("custom_fields", json!([])),
        (
            "custom_text",
            json!({"after_submit": null, "shipping_address": null, "submit": null, "terms_of_service_acceptance": null}),
        ),
        ("customer", opt_str(customer.as_deref())),
        ("customer_account", Value::Null),
        ("customer_creation", opt_str(customer_creation)),
        ("customer_details", Value::Null),
        ("customer_email", opt_str(customer_email.as_deref())),
        (
            "discounts",
            json!(
                coupon
                    .as_ref()
                    .map(|c| vec![json!({"coupon": str_field(c, "id"), "promotion_code": null})])
                    .unwrap_or_default()
            ),
        ),
        ("excluded_payment_method_types", Value::Null),
        ("expires_at", json!(expires_at)),
        ("integration_identifier", Value::Null),
        ("invoice", Value::Null),
        ("invoice_creation", Value::Null),
        ("livemode", json!(ctx.livemode())),
        ("locale", opt_str(locale)),
        ("managed_payments", Value::Null),
        ("metadata", Value::Object(metadata)),
        ("mode", json!(mode)),
        ("name_collection", Value::Null),
        ("optional_items", Value::Null),
        ("origin_context", Value::Null),
        ("payment_intent", Value::Null),
        ("payment_link", Value::Null),
        (
            "payment_method_collection",
            if mode == "payment" {
                Value::Null
            } else {
                json!("always")
            },
        ),
        ("payment_method_configuration_details", Value::Null),
        ("payment_method_options", json!({})),
        ("payment_method_types", json!(["card"])),
        (
            "payment_status",
            json!(if payment_required {
                "unpaid"
            } else {
                "no_payment_required"
            }),
        ),
        ("permissions", Value::Null),
        ("phone_number_collection", json!({"enabled": false})),
        ("presentment_details", Value::Null),
        ("recovered_from", Value::Null),
        (
            "redirect_on_completion",
            if hosted { Value::Null } else { json!("always") },
        ),
        ("return_url", opt_str(return_url.as_deref())),
        ("saved_payment_method_options", Value::Null),
        ("setup_intent", Value::Null),
        ("shipping_address_collection", Value::Null),
        ("shipping_cost", Value::Null),
        ("shipping_options", json!([])),
        ("status", json!("open")),
        ("submit_type", opt_str(submit_type)),
        ("subscription", Value::Null),
        ("success_url", opt_str(success_url.as_deref())),
        ("tax_id_collection", Value::Null),
        (
            "total_details",
            if amounts {
                json!({"amount_discount": discount, "amount_shipping": 0, "amount_tax": 0})
            } else {
                Value::Null
            },
        ),
        ("ui_mode", json!(ui_mode)),
        ("url", opt_str(url.as_deref())),
        ("wallet_options", Value::Null),
    ] {
        set(&mut session, key, value);
    }
    if let Some(map) = session.as_object_mut() {
        map.remove("line_items");
    }
    let mut internal = Map::new();
    internal.insert("line_items".into(), Value::Array(item_objects));
    if let Some(coupon) = &coupon {
        internal.insert(
            "coupon".into(),
            coupon.get("id").cloned().unwrap_or_default(),
        );
    }
    if let Some(days) = trial_days {
        internal.insert("trial_end".into(), json!(now + days * 86_400));
    }
    if let Some(end) = trial_end {
        internal.insert("trial_end".into(), json!(end));
    }
    internal.insert(
        "subscription_description".into(),
        opt_str(sub_description.as_deref()),
    );
    internal.insert("subscription_metadata".into(), Value::Object(sub_metadata));
    internal.insert("pi_description".into(), opt_str(pi_description.as_deref()));
    internal.insert("pi_metadata".into(), Value::Object(pi_metadata));
    internal.insert("pi_setup_future_usage".into(), opt_str(pi_sfu.as_deref()));
    ctx.store
        .insert_with(kinds::CHECKOUT_SESSION, session, internal);
    if hosted {
        ctx.emulator.add_checkout_page(
            id.clone(),
            CheckoutPage {
                key: ctx.key.to_owned(),
                account: ctx.account.to_owned(),
            },
        );
    }
    respond(ctx, &id)
}

fn stored(store: &Store, id: &str) -> ApiResult<Value> {
    store
        .get_live(kinds::CHECKOUT_SESSION, id)
        .map(|r| r.object.clone())
        .ok_or_else(|| ApiError::resource_missing(LABEL, id, "id"))
}

fn line_items(store: &Store, id: &str) -> Vec<Value> {
    stored_line_items(store, kinds::CHECKOUT_SESSION, id)
}

fn line_items_list(store: &Store, id: &str) -> Value {
    let url = format!("/v1/checkout/sessions/{id}/line_items");
    line_items_list_of(store, kinds::CHECKOUT_SESSION, id, &url)
}

/// The session as answered: with `line_items` when `expand[]=line_items` asks for it.
fn respond(ctx: &Ctx<'_>, id: &str) -> ApiResult<Value> {
    let mut session = stored(ctx.store, id)?;
    expire_if_due(&mut session, ctx.now);
    if ctx.params.expand()?.iter().any(|p| p == "line_items") {
        set(&mut session, "line_items", line_items_list(ctx.store, id));
    }
    Ok(session)
}

/// An open session past `expires_at` reads as expired.
fn expire_if_due(session: &mut Value, now: i64) {
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
    let created = created_filter(p)?;
    let paging = ListParams::parse(p, ctx.store, kinds::CHECKOUT_SESSION, LABEL)?;
    let now = ctx.now;
    let with_items = p.expand()?.iter().any(|e| e == "data.line_items");
    let records: Vec<_> = ctx
        .store
        .live_newest_first(kinds::CHECKOUT_SESSION)
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
                && created(r)
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

fn internal_str(store: &Store, id: &str, key: &str) -> Option<String> {
    store
        .get(kinds::CHECKOUT_SESSION, id)?
        .internal
        .get(key)?
        .as_str()
        .map(str::to_owned)
}

fn internal_map(store: &Store, id: &str, key: &str) -> Map<String, Value> {
    store
        .get(kinds::CHECKOUT_SESSION, id)
        .and_then(|r| r.internal.get(key).and_then(Value::as_object).cloned())
        .unwrap_or_default()
}

/// Completes an open session as its hosted page would, paying with `payment_method` (a
/// test token or a payment method of the session's customer). Returns the session.
pub fn complete(store: &mut Store, now: i64, id: &str, payment_method: &str) -> ApiResult<Value> {
    let mut session = stored(store, id)?;
    expire_if_due(&mut session, now);
    let status = str_field(&session, "status").unwrap_or_default().to_owned();
    if status != "open" {
        return Err(ApiError::invalid_request(format!(
            "This Checkout Session can no longer be completed: its status is {status}."
        )));
    }
    let mode = str_field(&session, "mode").unwrap_or("payment").to_owned();
    let currency = str_field(&session, "currency").unwrap_or("usd").to_owned();
    let customer = str_field(&session, "customer").map(str::to_owned);
    let pm = payment_methods::resolve(store, payment_method, "payment_method")?;
    payment_methods::check_usable_for(store, &pm, customer.as_deref(), "payment_method")?;
    let amount_total = int_field(&session, "amount_total");
    let payment_required = mode != "setup" && amount_total > 0;
    if payment_required || mode == "subscription" {
        let decline = match &pm {
            PmRef::Token(card) => card.decline,
            PmRef::Stored(id) => payment_methods::decline_of(store, id),
        };
        if let Some(decline) = decline {
            return Err(
                ApiError::new(402, crate::error::ErrorType::Card, decline.message)
                    .with_code(decline.code)
                    .with_decline_code(decline.decline_code),
            );
        }
    }
    let email = str_field(&session, "customer_email").map(str::to_owned);
    let create_customer = customer.is_none()
        && (mode != "payment" || str_field(&session, "customer_creation") == Some("always"));
    let customer = match customer {
        Some(c) => Some(c),
        None if create_customer => Some(customers::insert_minimal(store, now, email.as_deref())),
        None => None,
    };
    let coupon = internal_str(store, id, "coupon");
    let mut updates: Vec<(&str, Value)> = Vec::new();

    match mode.as_str() {
        "payment" => {
            let save = internal_str(store, id, "pi_setup_future_usage");
            let attach_to = customer.as_deref().filter(|_| save.is_some());
            let pm_id = payment_methods::materialize(store, now, &pm, attach_to);
            if let Some(coupon) = &coupon {
                coupons::apply(
                    store,
                    coupon,
                    coupons::Target {
                        customer: customer.as_deref(),
                        checkout_session: Some(id),
                        ..Default::default()
                    },
                    now,
                );
            }
            if payment_required {
                let mut spec = NewIntent::card(amount_total, &currency);
                spec.customer = customer.clone();
                spec.payment_method = Some(pm_id);
                spec.description = internal_str(store, id, "pi_description");
                spec.metadata = internal_map(store, id, "pi_metadata");
                spec.setup_future_usage = save;
                let pi = payment_intents::insert(store, now, &spec);
                payment_intents::confirm_stored(store, now, &pi)?;
                updates.push(("payment_intent", json!(pi)));
            }
        }
        "subscription" => {
            let Some(customer) = &customer else {
                return Err(ApiError::invalid_request("A customer is required."));
            };
            let pm_id = payment_methods::materialize(store, now, &pm, Some(customer));
            let mut recurring = Vec::new();
            let mut one_time = Vec::new();
            for item in line_items(store, id) {
                let price = item.get("price").cloned().unwrap_or_default();
                let quantity = int_field(&item, "quantity");
                if prices::is_recurring(&price) {
                    recurring.push((price, quantity, Map::new()));
                } else {
                    one_time.push((price, quantity));
                }
            }
            let trial_end = store
                .get(kinds::CHECKOUT_SESSION, id)
                .and_then(|r| r.internal.get("trial_end").and_then(Value::as_i64));
            let spec = NewSubscription {
                customer: customer.clone(),
                items: recurring,
                add_invoice_items: one_time,
                trial_end,
                default_payment_method: Some(pm_id),
                coupons: coupon.iter().cloned().collect(),
                metadata: internal_map(store, id, "subscription_metadata"),
                description: internal_str(store, id, "subscription_description"),
                cancel_at_period_end: false,
                cancel_at: None,
                payment_behavior: "allow_incomplete".into(),
                collection_method: "charge_automatically".into(),
                days_until_due: None,
                checkout_session: Some(id.to_owned()),
            };
            let sub = create_stored(store, now, &spec)?;
            let invoice = store
                .get(kinds::SUBSCRIPTION, &sub)
                .and_then(|r| str_field(&r.object, "latest_invoice").map(str::to_owned));
            updates.push(("subscription", json!(sub)));
            updates.push(("invoice", opt_str(invoice.as_deref())));
        }
        _ => {
            let Some(customer) = &customer else {
                return Err(ApiError::invalid_request("A customer is required."));
            };
            let pm_id = payment_methods::materialize(store, now, &pm, Some(customer));
            let seti =
                setup_intents::insert_succeeded(store, now, Some(customer), &pm_id, Map::new());
            updates.push(("setup_intent", json!(seti)));
        }
    }

    let details = customer
        .as_deref()
        .and_then(|c| store.get(kinds::CUSTOMER, c))
        .map(|r| r.object.clone());
    let customer_details = json!({
        "address": details.as_ref().and_then(|d| d.get("address").cloned()).unwrap_or(Value::Null),
        "business_name": null,
        "email": details
            .as_ref()
            .and_then(|d| str_field(d, "email").map(str::to_owned))
            .or(email),
        "individual_name": null,
        "name": details.as_ref().and_then(|d| d.get("name").cloned()).unwrap_or(Value::Null),
        "phone": details.as_ref().and_then(|d| d.get("phone").cloned()).unwrap_or(Value::Null),
        "tax_exempt": "none",
        "tax_ids": [],
    });
    let paid = payment_required;
    if let Some(record) = store.get_live_mut(kinds::CHECKOUT_SESSION, id) {
        let o = &mut record.object;
        set(o, "status", json!("complete"));
        set(
            o,
            "payment_status",
            json!(if paid { "paid" } else { "no_payment_required" }),
        );
        set(o, "customer", opt_str(customer.as_deref()));
        set(o, "customer_details", customer_details);
        set(o, "url", Value::Null);
        for (key, value) in updates {
            set(o, key, value);
        }
    }
    stored(store, id)
}

/// The session and its line items, for the hosted page.
pub fn page_data(store: &Store, id: &str, now: i64) -> Option<(Value, Vec<Value>)> {
    let mut session = stored(store, id).ok()?;
    expire_if_due(&mut session, now);
    Some((session, line_items(store, id)))
}

/// Where the hosted page sends the customer after completion: `success_url` with
/// `{CHECKOUT_SESSION_ID}` filled in.
pub fn success_redirect(session: &Value) -> Option<String> {
    let id = str_field(session, "id")?;
    str_field(session, "success_url").map(|url| url.replace("{CHECKOUT_SESSION_ID}", id))
}

/// The HTML of a hosted checkout page: the items, the total, a form to pay with a test
/// card, and a link back to `cancel_url`.
pub fn render_page(session: &Value, items: &[Value], error: Option<&str>) -> String {
    let esc = escape_html;
    let id = str_field(session, "id").unwrap_or_default();
    let currency = str_field(session, "currency").unwrap_or("usd");
    let money = |amount: i64| format_amount(amount, currency);
    let rows: String = items
        .iter()
        .map(|item| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(str_field(item, "description").unwrap_or_default()),
                int_field(item, "quantity"),
                esc(&money(int_field(item, "amount_subtotal")))
            )
        })
        .collect();
    let status = str_field(session, "status").unwrap_or_default();
    let body = if status == "open" {
        let cards: String = payment_methods::TEST_CARDS
            .iter()
            .map(|card| {
                format!(
                    "<option value=\"{0}\">{0} ({1} •••• {2})</option>",
                    card.token, card.brand, card.last4
                )
            })
            .collect();
        let total = session
            .get("amount_total")
            .and_then(Value::as_i64)
            .map(|t| {
                format!(
                    "<p>Total due today: <strong id=\"total\">{}</strong></p>",
                    esc(&money(t))
                )
            })
            .unwrap_or_default();
        let cancel = str_field(session, "cancel_url")
            .map(|url| {
                format!(
                    "<p><a id=\"cancel\" href=\"{0}\">Cancel and return to {0}</a></p>",
                    esc(url)
                )
            })
            .unwrap_or_default();
        format!(
            "{total}<form method=\"post\" action=\"{PAGE_PREFIX}{}\"><label>Test card <select name=\"payment_method\">{cards}</select></label> \
             <button type=\"submit\">Pay</button></form>{cancel}",
            esc(id)
        )
    } else {
        format!(
            "<p id=\"status\">This Checkout Session is {}.</p>",
            esc(status)
        )
    };
    let error = error
        .map(|e| format!("<p id=\"error\" style=\"color:#b00\">{}</p>", esc(e)))
        .unwrap_or_default();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Checkout (Stripe emulator)</title></head>\
         <body><h1>Checkout</h1><p>Stripe emulator stand-in for session <code>{}</code> ({} mode).</p>\
         <table><tr><th>Item</th><th>Qty</th><th>Amount</th></tr>{rows}</table>{error}{body}</body></html>",
        esc(id),
        esc(str_field(session, "mode").unwrap_or_default())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages() {
        let session = json!({"id": "cs_test_1", "status": "open", "currency": "usd", "amount_total": 2700,
            "mode": "payment", "cancel_url": "https://e.com/?a=<b>", "success_url": "https://e.com/ok?s={CHECKOUT_SESSION_ID}"});
        let items = vec![item_object(
            &json!({"currency": "usd", "unit_amount": 1500}),
            2,
            "Shirt",
            300,
        )];
        let html = render_page(&session, &items, Some("Your card was declined."));
        assert!(html.contains("$27.00"));
        assert!(html.contains("action=\"/c/pay/cs_test_1\""));
        assert!(html.contains("pm_card_visa"));
        assert!(html.contains("a=&lt;b&gt;"));
        assert!(html.contains("Your card was declined."));
        assert_eq!(
            success_redirect(&session).as_deref(),
            Some("https://e.com/ok?s=cs_test_1")
        );
    }
}
