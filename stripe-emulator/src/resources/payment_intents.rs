//! Payment intents: create (optionally confirming), retrieve, update, confirm, capture,
//! cancel, list.
//!
//! Confirming charges the intent's payment method: a test card that succeeds gives
//! `succeeded` (or `requires_capture` with `capture_method=manual`) and a `ch_...` charge;
//! a declining card gives HTTP 402 with a `card_error` that carries the intent (now
//! `requires_payment_method`, with `last_payment_error`), and leaves a failed charge. The
//! same engine ([`insert`], [`confirm_stored`]) pays invoices.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult, ErrorType};
use crate::fixtures::fixture;
use crate::form::Params;
use crate::ids;
use crate::list::{ListParams, created_filter};
use crate::store::{Store, kinds};

use super::payment_methods::{self, PmRef};
use super::{
    Ctx, ZERO_DECIMAL_CURRENCIES, charges, customers, int_field, invoices, merge_metadata,
    metadata_of, one_of, opt_str, set, str_field,
};

/// How payment intents are named in "No such ..." messages.
pub const LABEL: &str = "payment_intent";

/// Largest amount Stripe charges (eight digits).
const MAX_AMOUNT: i64 = 99_999_999;

/// The smallest amount Stripe charges in `currency`, in minor units.
pub fn minimum_amount(currency: &str) -> i64 {
    match currency {
        "gbp" => 30,
        "bgn" => 100,
        "aed" | "myr" | "pln" | "ron" => 200,
        "dkk" => 250,
        "nok" | "sek" => 300,
        "hkd" => 400,
        "mxn" | "thb" => 1000,
        "czk" => 1500,
        "huf" => 17500,
        _ => 50,
    }
}

/// An amount in minor units as Stripe writes it in messages: `$0.50`, `€2.00`, `¥50`.
pub fn format_amount(amount: i64, currency: &str) -> String {
    let symbol = match currency {
        "usd" | "aud" | "cad" | "nzd" | "sgd" | "hkd" | "mxn" => "$",
        "eur" => "€",
        "gbp" => "£",
        "jpy" => "¥",
        _ => "",
    };
    if ZERO_DECIMAL_CURRENCIES.contains(&currency) {
        format!("{symbol}{amount}")
    } else {
        format!("{symbol}{}.{:02}", amount / 100, amount % 100)
    }
}

/// Checks an amount against Stripe's minimum and maximum for `currency`.
pub fn check_amount(amount: i64, currency: &str, param: &str) -> ApiResult<()> {
    let minimum = minimum_amount(currency);
    if amount < minimum {
        return Err(ApiError::invalid_request(format!(
            "Amount must be at least {} {currency}",
            format_amount(minimum, currency)
        ))
        .with_code("amount_too_small")
        .with_param(param));
    }
    if amount > MAX_AMOUNT {
        return Err(ApiError::invalid_request(format!(
            "Amount must be no more than {} {currency}",
            format_amount(MAX_AMOUNT, currency)
        ))
        .with_code("amount_too_large")
        .with_param(param));
    }
    Ok(())
}

/// What a new intent is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIntent {
    /// Amount in minor units.
    pub amount: i64,
    /// Lower-case currency.
    pub currency: String,
    /// The customer.
    pub customer: Option<String>,
    /// A stored payment method.
    pub payment_method: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Metadata.
    pub metadata: Map<String, Value>,
    /// `automatic`, `automatic_async` or `manual`.
    pub capture_method: String,
    /// `automatic` or `manual`.
    pub confirmation_method: String,
    /// `on_session` or `off_session`.
    pub setup_future_usage: Option<String>,
    /// Receipt email.
    pub receipt_email: Option<String>,
    /// Statement descriptor.
    pub statement_descriptor: Option<String>,
    /// Statement descriptor suffix.
    pub statement_descriptor_suffix: Option<String>,
    /// `None`: automatic payment methods (the API default).
    pub payment_method_types: Option<Vec<String>>,
    /// `automatic_payment_methods[allow_redirects]`.
    pub allow_redirects: Option<String>,
    /// Transfer group.
    pub transfer_group: Option<String>,
    /// The invoice this intent pays (internal link).
    pub invoice: Option<String>,
}

impl NewIntent {
    /// An intent for `amount` in `currency` paid by card (as invoices make them).
    pub fn card(amount: i64, currency: &str) -> Self {
        NewIntent {
            amount,
            currency: currency.to_owned(),
            customer: None,
            payment_method: None,
            description: None,
            metadata: Map::new(),
            capture_method: "automatic".into(),
            confirmation_method: "automatic".into(),
            setup_future_usage: None,
            receipt_email: None,
            statement_descriptor: None,
            statement_descriptor_suffix: None,
            payment_method_types: Some(vec!["card".into()]),
            allow_redirects: None,
            transfer_group: None,
            invoice: None,
        }
    }
}

fn new_object(id: &str, spec: &NewIntent, now: i64, livemode: bool) -> Value {
    let mut intent = fixture(kinds::PAYMENT_INTENT);
    let automatic = match &spec.payment_method_types {
        None => json!({
            "enabled": true,
            "allow_redirects": spec.allow_redirects.as_deref().unwrap_or("always")
        }),
        Some(_) => Value::Null,
    };
    let types = spec
        .payment_method_types
        .clone()
        .unwrap_or_else(|| vec!["card".into()]);
    for (key, value) in [
        ("id", json!(id)),
        ("object", json!("payment_intent")),
        (
            "allowed_payment_method_types",
            spec.payment_method_types
                .as_ref()
                .map_or(Value::Null, |t| json!(t)),
        ),
        ("amount", json!(spec.amount)),
        ("amount_capturable", json!(0)),
        ("amount_details", json!({"tip": {}})),
        ("amount_received", json!(0)),
        ("application", Value::Null),
        ("application_fee_amount", Value::Null),
        ("automatic_payment_methods", automatic),
        ("canceled_at", Value::Null),
        ("cancellation_reason", Value::Null),
        ("capture_method", json!(spec.capture_method)),
        (
            "client_secret",
            json!(format!("{id}_secret_{}", ids::random_alnum(25))),
        ),
        ("confirmation_method", json!(spec.confirmation_method)),
        ("created", json!(now)),
        ("currency", json!(spec.currency)),
        ("customer", opt_str(spec.customer.as_deref())),
        ("customer_account", Value::Null),
        ("description", opt_str(spec.description.as_deref())),
        ("excluded_payment_method_types", Value::Null),
        ("last_payment_error", Value::Null),
        ("latest_charge", Value::Null),
        ("livemode", json!(livemode)),
        ("managed_payments", Value::Null),
        ("metadata", Value::Object(spec.metadata.clone())),
        ("next_action", Value::Null),
        ("on_behalf_of", Value::Null),
        ("payment_method", opt_str(spec.payment_method.as_deref())),
        ("payment_method_configuration_details", Value::Null),
        ("payment_method_options", json!({})),
        ("payment_method_types", json!(types)),
        ("processing", Value::Null),
        ("receipt_email", opt_str(spec.receipt_email.as_deref())),
        ("review", Value::Null),
        (
            "setup_future_usage",
            opt_str(spec.setup_future_usage.as_deref()),
        ),
        ("shipping", Value::Null),
        ("source", Value::Null),
        (
            "statement_descriptor",
            opt_str(spec.statement_descriptor.as_deref()),
        ),
        (
            "statement_descriptor_suffix",
            opt_str(spec.statement_descriptor_suffix.as_deref()),
        ),
        (
            "status",
            json!(if spec.payment_method.is_some() {
                "requires_confirmation"
            } else {
                "requires_payment_method"
            }),
        ),
        ("transfer_data", Value::Null),
        ("transfer_group", opt_str(spec.transfer_group.as_deref())),
    ] {
        set(&mut intent, key, value);
    }
    intent
}

/// Stores a new intent (not confirmed) and returns its id.
pub fn insert(store: &mut Store, now: i64, spec: &NewIntent) -> String {
    let id = ids::long_id("pi");
    let intent = new_object(&id, spec, now, store.livemode);
    let mut internal = Map::new();
    if let Some(invoice) = &spec.invoice {
        internal.insert("invoice".into(), json!(invoice));
    }
    store.insert_with(kinds::PAYMENT_INTENT, intent, internal);
    id
}

fn stored(store: &Store, id: &str, param: &str) -> ApiResult<Value> {
    store
        .get_live(kinds::PAYMENT_INTENT, id)
        .map(|r| r.object.clone())
        .ok_or_else(|| ApiError::resource_missing(LABEL, id, param))
}

fn status_of(intent: &Value) -> &str {
    str_field(intent, "status").unwrap_or_default()
}

fn unexpected_state(action: &str, status: &str, allowed: &[&str]) -> ApiError {
    ApiError::invalid_request(format!(
        "This PaymentIntent could not be {action} because it has a status of {status}. Only a PaymentIntent with one of the following statuses may be {action}: {}.",
        allowed.join(", ")
    ))
    .with_code("payment_intent_unexpected_state")
}

fn missing_payment_method() -> ApiError {
    ApiError::invalid_request(
        "You cannot confirm this PaymentIntent because it's missing a payment method. You can either update the PaymentIntent with a payment method and then confirm it again, or confirm it again directly with a payment method.",
    )
    .with_code("payment_intent_unexpected_state")
}

/// The 402 `card_error` of a declined confirmation.
fn decline_error(
    decline: payment_methods::Decline,
    charge: &str,
    intent: &Value,
    pm: &Value,
) -> ApiError {
    ApiError::new(402, ErrorType::Card, decline.message)
        .with_code(decline.code)
        .with_decline_code(decline.decline_code)
        .with_extra("charge", json!(charge))
        .with_extra("payment_intent", intent.clone())
        .with_extra("payment_method", pm.clone())
}

/// Confirms a stored intent with its payment method: charges it. On success the intent
/// is `succeeded` (or `requires_capture`) and, if it pays an invoice, the invoice is paid.
/// On a decline the intent is stored as `requires_payment_method` with
/// `last_payment_error`, and the 402 card error is returned.
pub fn confirm_stored(store: &mut Store, now: i64, id: &str) -> ApiResult<Value> {
    let intent = stored(store, id, "id")?;
    let Some(pm_id) = str_field(&intent, "payment_method").map(str::to_owned) else {
        return Err(missing_payment_method());
    };
    let pm = store
        .get(kinds::PAYMENT_METHOD, &pm_id)
        .map(|r| r.object.clone())
        .ok_or_else(|| {
            ApiError::resource_missing(payment_methods::LABEL, &pm_id, "payment_method")
        })?;
    let decline = payment_methods::decline_of(store, &pm_id);
    let manual = str_field(&intent, "capture_method") == Some("manual");
    let charge_id = ids::long_id("ch");
    let charge = charges::new_object(&charge_id, &intent, &pm, decline, !manual, now);
    store.insert(kinds::CHARGE, charge);
    let customer = str_field(&intent, "customer").map(str::to_owned);
    let amount = int_field(&intent, "amount");

    match decline {
        None => {
            let save = intent
                .get("setup_future_usage")
                .is_some_and(|v| !v.is_null());
            match (&customer, save) {
                (Some(customer), true) if payment_methods::owner_of(store, &pm_id).is_none() => {
                    payment_methods::materialize(
                        store,
                        now,
                        &PmRef::Stored(pm_id.clone()),
                        Some(customer),
                    );
                }
                _ => payment_methods::consume_if_unattached(store, &pm_id),
            }
            let invoice = {
                let Some(record) = store.get_live_mut(kinds::PAYMENT_INTENT, id) else {
                    return Err(ApiError::resource_missing(LABEL, id, "id"));
                };
                let o = &mut record.object;
                if manual {
                    set(o, "status", json!("requires_capture"));
                    set(o, "amount_capturable", json!(amount));
                } else {
                    set(o, "status", json!("succeeded"));
                    set(o, "amount_received", json!(amount));
                }
                set(o, "latest_charge", json!(charge_id));
                set(o, "last_payment_error", Value::Null);
                record
                    .internal
                    .get("invoice")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            if let Some(invoice) = invoice
                && !manual
            {
                invoices::mark_paid(store, now, &invoice, id);
            }
            stored(store, id, "id")
        }
        Some(decline) => {
            payment_methods::consume_if_unattached(store, &pm_id);
            let pm = store
                .get(kinds::PAYMENT_METHOD, &pm_id)
                .map_or(pm, |r| r.object.clone());
            let mut error = ApiError::new(402, ErrorType::Card, decline.message)
                .with_code(decline.code)
                .with_decline_code(decline.decline_code)
                .with_extra("charge", json!(charge_id))
                .with_extra("payment_method", pm.clone())
                .to_json()["error"]
                .clone();
            set(&mut error, "payment_method", pm.clone());
            let Some(record) = store.get_live_mut(kinds::PAYMENT_INTENT, id) else {
                return Err(ApiError::resource_missing(LABEL, id, "id"));
            };
            let o = &mut record.object;
            set(o, "status", json!("requires_payment_method"));
            set(o, "payment_method", Value::Null);
            set(o, "latest_charge", json!(charge_id));
            set(o, "last_payment_error", error);
            let intent = record.object.clone();
            Err(decline_error(decline, &charge_id, &intent, &pm))
        }
    }
}

/// Reads `off_session` (`true`, `false`, `one_off`, `recurring`).
fn off_session(p: &Params) -> ApiResult<bool> {
    match p.non_empty(&["off_session"])? {
        None | Some("false") => Ok(false),
        Some("true" | "one_off" | "recurring") => Ok(true),
        Some(other) => Err(ApiError::invalid_param(
            "off_session",
            format!("Invalid off_session: {other}"),
        )),
    }
}

/// Stripe requires a `return_url` to confirm an intent that allows redirect-based payment
/// methods (automatic payment methods with `allow_redirects` other than `never`).
fn check_return_url(
    intent_types: Option<&[String]>,
    allow_redirects: Option<&str>,
    p: &Params,
) -> ApiResult<()> {
    let redirects = intent_types.is_none() && allow_redirects != Some("never");
    if redirects && p.non_empty(&["return_url"])?.is_none() {
        return Err(ApiError::invalid_param(
            "return_url",
            "This PaymentIntent is configured to accept payment methods enabled in your Dashboard. Because some of these payment methods might redirect your customer off of your page, you must provide a `return_url`. If you don't want to accept redirect-based payment methods, set `automatic_payment_methods[enabled]` to `true` and `automatic_payment_methods[allow_redirects]` to `never` when creating Setup Intents and Payment Intents.",
        ));
    }
    if let Some(url) = p.non_empty(&["return_url"])?
        && !super::billing_portal::is_url(url)
    {
        return Err(ApiError::invalid_request("Not a valid URL")
            .with_code("url_invalid")
            .with_param("return_url"));
    }
    Ok(())
}

/// `allowed_payment_method_types[]` (this API version's name) or the older
/// `payment_method_types[]`; `None` when neither is sent.
fn read_types(p: &Params) -> ApiResult<Option<Vec<String>>> {
    for name in ["allowed_payment_method_types", "payment_method_types"] {
        if p.has(&[name]) {
            let types = p.string_list(&[name])?;
            if types.is_empty() {
                return Err(ApiError::invalid_param(
                    name,
                    format!("Invalid array: {name} must not be empty"),
                ));
            }
            return Ok(Some(types));
        }
    }
    Ok(None)
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
    payment_methods::check_usable_for(store, &pm, customer, "payment_method")?;
    Ok(Some(pm))
}

fn read_strings<'p>(
    p: &'p Params,
    fields: &[&'static str],
) -> ApiResult<Vec<(&'static str, Option<&'p str>)>> {
    let mut out = Vec::new();
    for field in fields {
        if let Some(value) = p.nullable_string(&[field])? {
            if matches!(
                *field,
                "statement_descriptor" | "statement_descriptor_suffix"
            ) && value.is_some_and(|v| v.chars().count() > 22)
            {
                return Err(ApiError::invalid_param(
                    field,
                    format!("The {field} must be at most 22 characters."),
                ));
            }
            out.push((*field, value));
        }
    }
    Ok(out)
}

/// `POST /v1/payment_intents`.
pub fn create(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    super::unsupported(
        p,
        &["confirmation_token", "payment_method_data", "mandate_data"],
    )?;
    let amount = p
        .integer(&["amount"])?
        .ok_or_else(|| ApiError::parameter_missing("amount"))?;
    let currency = super::required_currency(p, &["currency"])?;
    check_amount(amount, &currency, "amount")?;
    let customer = p.non_empty(&["customer"])?;
    if let Some(customer) = customer {
        customers::require_live(ctx.store, customer, "customer")?;
    }
    let pm = read_payment_method(ctx.store, p, customer)?;
    let confirm = p.boolean(&["confirm"])?.unwrap_or(false);
    let off_session = off_session(p)?;
    if off_session && !confirm {
        return Err(ApiError::invalid_param(
            "off_session",
            "You can only pass `off_session` when `confirm` is true.",
        ));
    }
    let capture_method = one_of(
        p,
        &["capture_method"],
        &["automatic", "automatic_async", "manual"],
    )?
    .unwrap_or("automatic_async");
    let confirmation_method =
        one_of(p, &["confirmation_method"], &["automatic", "manual"])?.unwrap_or("automatic");
    let setup_future_usage = one_of(p, &["setup_future_usage"], &["on_session", "off_session"])?;
    let types = read_types(p)?;
    let automatic = p.boolean(&["automatic_payment_methods", "enabled"])?;
    if types.is_some() && automatic == Some(true) {
        return Err(ApiError::invalid_request(
            "You may only specify one of these parameters: automatic_payment_methods, payment_method_types.",
        )
        .with_code("parameters_exclusive")
        .with_param("automatic_payment_methods"));
    }
    let allow_redirects = one_of(
        p,
        &["automatic_payment_methods", "allow_redirects"],
        &["always", "never"],
    )?;
    if confirm {
        if pm.is_none() {
            return Err(missing_payment_method());
        }
        check_return_url(types.as_deref(), allow_redirects, p)?;
    }
    let strings = read_strings(
        p,
        &[
            "description",
            "receipt_email",
            "statement_descriptor",
            "statement_descriptor_suffix",
            "transfer_group",
        ],
    )?;
    let string = |name: &str| {
        strings
            .iter()
            .find(|(field, _)| *field == name)
            .and_then(|(_, v)| v.map(str::to_owned))
    };
    let metadata = merge_metadata(&Map::new(), p.hash(&["metadata"])?)?;

    let pm_id = pm.map(|pm| payment_methods::materialize(ctx.store, ctx.now, &pm, None));
    let spec = NewIntent {
        amount,
        currency,
        customer: customer.map(str::to_owned),
        payment_method: pm_id,
        description: string("description"),
        metadata,
        capture_method: capture_method.to_owned(),
        confirmation_method: confirmation_method.to_owned(),
        setup_future_usage: setup_future_usage.map(str::to_owned),
        receipt_email: string("receipt_email"),
        statement_descriptor: string("statement_descriptor"),
        statement_descriptor_suffix: string("statement_descriptor_suffix"),
        payment_method_types: types,
        allow_redirects: allow_redirects.map(str::to_owned),
        transfer_group: string("transfer_group"),
        invoice: None,
    };
    let id = insert(ctx.store, ctx.now, &spec);
    if confirm {
        confirm_stored(ctx.store, ctx.now, &id)
    } else {
        stored(ctx.store, &id, "id")
    }
}

/// `GET /v1/payment_intents/:id`.
pub fn retrieve(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    stored(ctx.store, id, "id")
}

const UPDATABLE: &[&str] = &[
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
];

/// `POST /v1/payment_intents/:id`: `amount`, `currency`, `customer`, `payment_method`,
/// `description`, `metadata`, `receipt_email`, `setup_future_usage`, statement descriptors,
/// `capture_method`. Once succeeded or canceled only `description`, `metadata` and
/// `receipt_email` can change.
pub fn update(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let p = ctx.params;
    let current = stored(ctx.store, id, "id")?;
    let status = status_of(&current).to_owned();
    let metadata = merge_metadata(&metadata_of(&current), p.hash(&["metadata"])?)?;
    let strings = read_strings(
        p,
        &[
            "description",
            "receipt_email",
            "statement_descriptor",
            "statement_descriptor_suffix",
            "transfer_group",
        ],
    )?;
    let amount = p.integer(&["amount"])?;
    let currency = super::currency(p, &["currency"])?;
    let customer = p.nullable_string(&["customer"])?;
    let capture_method = one_of(
        p,
        &["capture_method"],
        &["automatic", "automatic_async", "manual"],
    )?;
    let setup_future_usage = p.nullable_string(&["setup_future_usage"])?;
    let changes_payment = amount.is_some()
        || currency.is_some()
        || customer.is_some()
        || p.has(&["payment_method"])
        || capture_method.is_some()
        || setup_future_usage.is_some()
        || strings
            .iter()
            .any(|(f, _)| matches!(*f, "statement_descriptor" | "statement_descriptor_suffix"));
    if changes_payment && !UPDATABLE.contains(&status.as_str()) {
        return Err(unexpected_state("updated", &status, UPDATABLE));
    }
    let new_currency = currency
        .clone()
        .unwrap_or_else(|| str_field(&current, "currency").unwrap_or("usd").to_owned());
    if let Some(amount) = amount {
        check_amount(amount, &new_currency, "amount")?;
    }
    let new_customer = match customer {
        Some(Some(c)) => {
            customers::require_live(ctx.store, c, "customer")?;
            Some(c.to_owned())
        }
        Some(None) => None,
        None => str_field(&current, "customer").map(str::to_owned),
    };
    if let Some(sfu) = setup_future_usage.flatten()
        && !matches!(sfu, "on_session" | "off_session")
    {
        return Err(ApiError::invalid_param(
            "setup_future_usage",
            "Invalid setup_future_usage: must be one of on_session, off_session",
        ));
    }
    let pm = read_payment_method(ctx.store, p, new_customer.as_deref())?;

    let pm_id = pm.map(|pm| payment_methods::materialize(ctx.store, ctx.now, &pm, None));
    let Some(record) = ctx.store.get_live_mut(kinds::PAYMENT_INTENT, id) else {
        return Err(ApiError::resource_missing(LABEL, id, "id"));
    };
    let o = &mut record.object;
    set(o, "metadata", Value::Object(metadata));
    for (field, value) in strings {
        set(o, field, opt_str(value));
    }
    if let Some(amount) = amount {
        set(o, "amount", json!(amount));
    }
    if currency.is_some() {
        set(o, "currency", json!(new_currency));
    }
    if customer.is_some() {
        set(o, "customer", opt_str(new_customer.as_deref()));
    }
    if let Some(method) = capture_method {
        set(o, "capture_method", json!(method));
    }
    if let Some(sfu) = setup_future_usage {
        set(o, "setup_future_usage", opt_str(sfu));
    }
    if let Some(pm_id) = pm_id {
        set(o, "payment_method", json!(pm_id));
        set(o, "status", json!("requires_confirmation"));
    }
    if changes_payment {
        set(o, "last_payment_error", Value::Null);
    }
    Ok(record.object.clone())
}

/// `POST /v1/payment_intents/:id/confirm` with optional `payment_method`, `return_url`,
/// `off_session`, `receipt_email`, `setup_future_usage`.
pub fn confirm(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let p = ctx.params;
    let current = stored(ctx.store, id, "id")?;
    let status = status_of(&current).to_owned();
    let confirmable = [
        "requires_payment_method",
        "requires_confirmation",
        "requires_action",
    ];
    if !confirmable.contains(&status.as_str()) {
        return Err(ApiError::invalid_request(format!(
            "You cannot confirm this PaymentIntent because it has a status of {status}."
        ))
        .with_code("payment_intent_unexpected_state"));
    }
    off_session(p)?;
    let customer = str_field(&current, "customer").map(str::to_owned);
    let pm = read_payment_method(ctx.store, p, customer.as_deref())?;
    if pm.is_none() && current.get("payment_method").is_none_or(Value::is_null) {
        return Err(missing_payment_method());
    }
    let types: Option<Vec<String>> = if current
        .get("automatic_payment_methods")
        .and_then(|a| a.get("enabled"))
        .and_then(Value::as_bool)
        == Some(true)
    {
        None
    } else {
        Some(Vec::new())
    };
    let allow_redirects = current
        .pointer("/automatic_payment_methods/allow_redirects")
        .and_then(Value::as_str)
        .map(str::to_owned);
    check_return_url(types.as_deref(), allow_redirects.as_deref(), p)?;
    let receipt_email = p.nullable_string(&["receipt_email"])?;
    let setup_future_usage = one_of(p, &["setup_future_usage"], &["on_session", "off_session"])?;

    let pm_id = pm.map(|pm| payment_methods::materialize(ctx.store, ctx.now, &pm, None));
    if let Some(record) = ctx.store.get_live_mut(kinds::PAYMENT_INTENT, id) {
        let o = &mut record.object;
        if let Some(pm_id) = pm_id {
            set(o, "payment_method", json!(pm_id));
        }
        if let Some(email) = receipt_email {
            set(o, "receipt_email", opt_str(email));
        }
        if let Some(sfu) = setup_future_usage {
            set(o, "setup_future_usage", json!(sfu));
        }
    }
    confirm_stored(ctx.store, ctx.now, id)
}

/// `POST /v1/payment_intents/:id/capture` with optional `amount_to_capture`.
pub fn capture(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let p = ctx.params;
    let current = stored(ctx.store, id, "id")?;
    let status = status_of(&current).to_owned();
    if status != "requires_capture" {
        return Err(unexpected_state("captured", &status, &["requires_capture"]));
    }
    let capturable = int_field(&current, "amount_capturable");
    let amount = p.integer(&["amount_to_capture"])?.unwrap_or(capturable);
    if amount < 1 || amount > capturable {
        return Err(ApiError::invalid_param(
            "amount_to_capture",
            format!(
                "The amount to capture must be a positive integer no greater than the amount capturable ({capturable})."
            ),
        ));
    }
    let metadata = merge_metadata(&metadata_of(&current), p.hash(&["metadata"])?)?;
    let charge_id = str_field(&current, "latest_charge").map(str::to_owned);
    if let Some(charge_id) = &charge_id
        && let Some(record) = ctx.store.get_live_mut(kinds::CHARGE, charge_id)
    {
        let o = &mut record.object;
        set(o, "captured", json!(true));
        set(o, "amount_captured", json!(amount));
        set(o, "amount_refunded", json!(int_field(o, "amount") - amount));
        set(o, "balance_transaction", json!(ids::long_id("txn")));
    }
    let invoice = {
        let Some(record) = ctx.store.get_live_mut(kinds::PAYMENT_INTENT, id) else {
            return Err(ApiError::resource_missing(LABEL, id, "id"));
        };
        let o = &mut record.object;
        set(o, "status", json!("succeeded"));
        set(o, "amount_capturable", json!(0));
        set(o, "amount_received", json!(amount));
        set(o, "metadata", Value::Object(metadata));
        record
            .internal
            .get("invoice")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if let Some(invoice) = invoice {
        invoices::mark_paid(ctx.store, ctx.now, &invoice, id);
    }
    stored(ctx.store, id, "id")
}

/// `POST /v1/payment_intents/:id/cancel` with optional `cancellation_reason`.
pub fn cancel(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let p = ctx.params;
    let current = stored(ctx.store, id, "id")?;
    let status = status_of(&current).to_owned();
    let cancelable = [
        "requires_payment_method",
        "requires_capture",
        "requires_confirmation",
        "requires_action",
        "processing",
    ];
    if !cancelable.contains(&status.as_str()) {
        return Err(ApiError::invalid_request(format!(
            "You cannot cancel this PaymentIntent because it has a status of {status}. Only a PaymentIntent with one of the following statuses may be canceled: {}.",
            cancelable.join(", ")
        ))
        .with_code("payment_intent_unexpected_state"));
    }
    let reason = one_of(
        p,
        &["cancellation_reason"],
        &[
            "duplicate",
            "fraudulent",
            "requested_by_customer",
            "abandoned",
        ],
    )?;
    if status == "requires_capture"
        && let Some(charge_id) = str_field(&current, "latest_charge")
        && let Some(record) = ctx.store.get_live_mut(kinds::CHARGE, charge_id)
    {
        let o = &mut record.object;
        set(o, "refunded", json!(true));
        set(o, "amount_refunded", json!(int_field(o, "amount")));
    }
    let now = ctx.now;
    let Some(record) = ctx.store.get_live_mut(kinds::PAYMENT_INTENT, id) else {
        return Err(ApiError::resource_missing(LABEL, id, "id"));
    };
    let o = &mut record.object;
    set(o, "status", json!("canceled"));
    set(o, "canceled_at", json!(now));
    set(o, "cancellation_reason", opt_str(reason));
    set(o, "amount_capturable", json!(0));
    Ok(record.object.clone())
}

/// `GET /v1/payment_intents` with `customer`, `created`.
pub fn list(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    let customer = p.non_empty(&["customer"])?;
    let created = created_filter(p)?;
    let paging = ListParams::parse(p, ctx.store, kinds::PAYMENT_INTENT, LABEL)?;
    let records = ctx
        .store
        .live_newest_first(kinds::PAYMENT_INTENT)
        .filter(|r| {
            customer.is_none_or(|c| str_field(&r.object, "customer") == Some(c)) && created(r)
        });
    Ok(paging.page("/v1/payment_intents", records))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        assert_eq!(format_amount(50, "usd"), "$0.50");
        assert_eq!(format_amount(50, "jpy"), "¥50");
        assert_eq!(format_amount(200, "aed"), "2.00");
        assert!(check_amount(50, "usd", "amount").is_ok());
        let err = check_amount(49, "usd", "amount").unwrap_err();
        assert_eq!(err.code.as_deref(), Some("amount_too_small"));
        assert_eq!(err.param.as_deref(), Some("amount"));
        assert_eq!(err.message, "Amount must be at least $0.50 usd");
        assert!(check_amount(29, "gbp", "amount").is_err());
        assert!(check_amount(30, "gbp", "amount").is_ok());
        assert_eq!(
            check_amount(100_000_000, "usd", "amount")
                .unwrap_err()
                .code
                .as_deref(),
            Some("amount_too_large")
        );
    }

    #[test]
    fn intents_and_declines() {
        let mut store = Store::new(false);
        let card = payment_methods::test_card("pm_card_chargeDeclinedInsufficientFunds").unwrap();
        let pm = payment_methods::materialize(&mut store, 1, &PmRef::Token(card), None);
        let mut spec = NewIntent::card(1000, "usd");
        spec.payment_method = Some(pm.clone());
        let id = insert(&mut store, 1, &spec);
        assert_eq!(
            store.get(kinds::PAYMENT_INTENT, &id).unwrap().object["status"],
            "requires_confirmation"
        );
        let err = confirm_stored(&mut store, 2, &id).unwrap_err();
        assert_eq!(err.status, 402);
        assert_eq!(err.decline_code.as_deref(), Some("insufficient_funds"));
        let body = err.to_json();
        assert_eq!(
            body["error"]["payment_intent"]["status"],
            "requires_payment_method"
        );
        assert_eq!(
            body["error"]["payment_intent"]["last_payment_error"]["decline_code"],
            "insufficient_funds"
        );
        assert!(body["error"].get("param").is_none());
        let charge = body["error"]["charge"].as_str().unwrap();
        assert_eq!(
            store.get(kinds::CHARGE, charge).unwrap().object["status"],
            "failed"
        );
        assert!(payment_methods::is_consumed(&store, &pm));
    }
}
