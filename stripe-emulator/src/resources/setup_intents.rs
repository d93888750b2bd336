//! Setup intents: create (optionally confirming), retrieve, list, confirm, cancel.
//!
//! Confirming saves the payment method for later: a test card that succeeds gives
//! `succeeded` and is attached to the intent's customer (`payment_method.attached`); a
//! declining card answers 402 `card_error` and leaves the intent `requires_payment_method`
//! with `last_setup_error` (`setup_intent.setup_failed`). Simplified: cards never ask for
//! 3-D Secure, so no intent is ever `requires_action`, and `latest_attempt` stays null.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::form::Params;
use crate::json::{set, str_field};
use crate::list::ListParams;
use crate::objects::customers;
use crate::objects::payment_methods::{self, PmRef};
use crate::objects::setup_intents::{
    self, LABEL, NewSetupIntent, automatic_payment_methods, check_payment_method, confirm_stored,
    stored, unexpected_state,
};
use crate::params::{merge_metadata, one_of, unsupported};
use crate::resources::ctx::Ctx;
use crate::resources::payment_intents::read::read_types;
use crate::store::{Store, kinds};
use crate::text::is_url;

/// Parameters that change what Stripe does and that the emulator does not implement.
const UNSUPPORTED: &[&str] = &[
    "attach_to_self",
    "confirmation_token",
    "customer_account",
    "flow_directions",
    "mandate_data",
    "on_behalf_of",
    "payment_method_data",
    "single_use",
];

/// Stripe requires a `return_url` to confirm an intent that allows redirect-based payment
/// methods (automatic payment methods with `allow_redirects` other than `never`).
/// `automatic` is the intent's `automatic_payment_methods`.
fn check_return_url(automatic: &Value, p: &Params) -> ApiResult<()> {
    let redirects = automatic.get("enabled").and_then(Value::as_bool) == Some(true)
        && automatic.get("allow_redirects").and_then(Value::as_str) != Some("never");
    let return_url = p.non_empty(&["return_url"])?;
    if redirects && return_url.is_none() {
        return Err(ApiError::invalid_param(
            "return_url",
            "This SetupIntent is configured to accept payment methods enabled in your Dashboard. Because some of these payment methods might redirect your customer off of your page, you must provide a `return_url`. If you don't want to accept redirect-based payment methods, set `automatic_payment_methods[enabled]` to `true` and `automatic_payment_methods[allow_redirects]` to `never` when creating Setup Intents and Payment Intents.",
        ));
    }
    if let Some(url) = return_url
        && !is_url(url)
    {
        return Err(ApiError::invalid_request("Not a valid URL")
            .with_code("url_invalid")
            .with_param("return_url"));
    }
    Ok(())
}

/// Resolves a `payment_method` argument for an intent of `customer`.
fn read_payment_method(
    store: &Store,
    p: &Params,
    customer: Option<&str>,
) -> ApiResult<Option<PmRef>> {
    let Some(value) = p.non_empty(&["payment_method"])? else {
        return Ok(None);
    };
    let pm = payment_methods::resolve(store, value, "payment_method")?;
    check_payment_method(store, &pm, customer, "payment_method")?;
    Ok(Some(pm))
}

/// `automatic_payment_methods[enabled|allow_redirects]` and the payment method types,
/// which exclude each other.
fn read_methods(p: &Params) -> ApiResult<(Option<Vec<String>>, Option<&str>)> {
    let types = read_types(p)?;
    let enabled = p.boolean(&["automatic_payment_methods", "enabled"])?;
    let allow_redirects = one_of(
        p,
        &["automatic_payment_methods", "allow_redirects"],
        &["always", "never"],
    )?;
    if types.is_some() && enabled == Some(true) {
        return Err(ApiError::invalid_param(
            "automatic_payment_methods",
            "You may only specify one of these parameters: allowed_payment_method_types, automatic_payment_methods.",
        ));
    }
    if enabled == Some(false) && types.is_none() {
        return Ok((Some(vec!["card".into()]), None));
    }
    Ok((types, allow_redirects))
}

/// `POST /v1/setup_intents`: `customer`, `payment_method`, `allowed_payment_method_types[]`,
/// `automatic_payment_methods`, `usage`, `description`, `metadata`, `confirm` (with
/// `return_url`).
pub fn create(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    unsupported(p, UNSUPPORTED)?;
    let customer = p.non_empty(&["customer"])?.map(str::to_owned);
    if let Some(customer) = &customer {
        customers::require_live(ctx.store, customer, "customer")?;
    }
    let pm = read_payment_method(ctx.store, p, customer.as_deref())?;
    let (types, allow_redirects) = read_methods(p)?;
    let usage = one_of(p, &["usage"], &["on_session", "off_session"])?;
    let description = p.non_empty(&["description"])?.map(str::to_owned);
    let metadata = merge_metadata(&Map::new(), p.hash(&["metadata"])?)?;
    let confirm = p.boolean(&["confirm"])?.unwrap_or(false);
    if !confirm && p.has(&["return_url"]) {
        return Err(ApiError::invalid_param(
            "return_url",
            "You may only specify a `return_url` when `confirm` is true.",
        ));
    }
    if confirm && pm.is_none() {
        return Err(setup_intents::missing_payment_method().with_param("payment_method"));
    }
    let mut spec = NewSetupIntent {
        customer,
        payment_method: None,
        description,
        metadata,
        usage: usage.map(str::to_owned),
        payment_method_types: types,
        allow_redirects: allow_redirects.map(str::to_owned),
    };
    if confirm {
        check_return_url(&automatic_payment_methods(&spec), p)?;
    }

    spec.payment_method = pm.map(|pm| payment_methods::materialize(ctx.store, ctx.now, &pm, None));
    let id = setup_intents::insert(ctx.store, ctx.now, &spec);
    if confirm {
        return confirm_stored(ctx.store, ctx.now, &id);
    }
    stored(ctx.store, &id, "id")
}

/// `GET /v1/setup_intents/:id`.
pub fn retrieve(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    stored(ctx.store, id, "id")
}

/// `POST /v1/setup_intents/:id/confirm` with optional `payment_method` and `return_url`.
pub fn confirm(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let p = ctx.params;
    unsupported(p, UNSUPPORTED)?;
    let current = stored(ctx.store, id, "id")?;
    let status = str_field(&current, "status").unwrap_or_default().to_owned();
    if !matches!(
        status.as_str(),
        "requires_payment_method" | "requires_confirmation" | "requires_action"
    ) {
        return Err(unexpected_state("confirm", &status));
    }
    let customer = str_field(&current, "customer").map(str::to_owned);
    let pm = read_payment_method(ctx.store, p, customer.as_deref())?;
    if pm.is_none() && current.get("payment_method").is_none_or(Value::is_null) {
        return Err(setup_intents::missing_payment_method());
    }
    let automatic = current
        .get("automatic_payment_methods")
        .cloned()
        .unwrap_or_default();
    check_return_url(&automatic, p)?;

    if let Some(pm) = pm {
        let pm_id = payment_methods::materialize(ctx.store, ctx.now, &pm, None);
        if let Some(record) = ctx.store.get_live_mut(kinds::SETUP_INTENT, id) {
            set(&mut record.object, "payment_method", json!(pm_id));
        }
    }
    confirm_stored(ctx.store, ctx.now, id)
}

/// `POST /v1/setup_intents/:id/cancel` with optional `cancellation_reason`.
pub fn cancel(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let p = ctx.params;
    let current = stored(ctx.store, id, "id")?;
    let status = str_field(&current, "status").unwrap_or_default().to_owned();
    let cancelable = [
        "requires_payment_method",
        "requires_confirmation",
        "requires_action",
    ];
    if !cancelable.contains(&status.as_str()) {
        return Err(ApiError::invalid_request(format!(
            "You cannot cancel this SetupIntent because it has a status of {status}. Only a SetupIntent with one of the following statuses may be canceled: {}.",
            cancelable.join(", ")
        ))
        .with_code("setup_intent_unexpected_state"));
    }
    let reason = one_of(
        p,
        &["cancellation_reason"],
        &["abandoned", "duplicate", "requested_by_customer"],
    )?;
    setup_intents::cancel_stored(ctx.store, id, reason)
}

/// `GET /v1/setup_intents` with `customer`, `payment_method`, `created` and paging.
pub fn list(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    unsupported(p, &["attach_to_self", "customer_account"])?;
    let customer = p.non_empty(&["customer"])?;
    let pm = p.non_empty(&["payment_method"])?;
    let paging = ListParams::parse(p, ctx.store, kinds::SETUP_INTENT, LABEL)?;
    let needles = [("customer", customer), ("payment_method", pm)];
    let records = paging.walk_where(ctx.store, &needles).filter(|r| {
        customer.is_none_or(|c| str_field(&r.object, "customer") == Some(c))
            && pm.is_none_or(|m| str_field(&r.object, "payment_method") == Some(m))
    });
    Ok(paging.page("/v1/setup_intents", records))
}
