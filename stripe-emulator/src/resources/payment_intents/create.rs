//! `POST /v1/payment_intents` (optionally confirming at once).

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::money::{self};
use crate::objects::customers;
use crate::objects::payment_intents::{
    NewIntent, confirm_stored, insert, missing_payment_method, stored,
};
use crate::objects::payment_methods::{self};
use crate::params::{merge_metadata, one_of, unsupported};
use crate::resources::ctx::Ctx;
use crate::resources::payment_intents::read::{
    check_amount, check_return_url, off_session, read_payment_method, read_strings, read_types,
};

/// `POST /v1/payment_intents`.
pub fn create(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    unsupported(
        p,
        &["confirmation_token", "payment_method_data", "mandate_data"],
    )?;
    let amount = p
        .integer(&["amount"])?
        .ok_or_else(|| ApiError::parameter_missing("amount"))?;
    let currency = money::required_currency(p, &["currency"])?;
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
            "You may only specify one of these parameters: allowed_payment_method_types, automatic_payment_methods.",
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
