//! Invoices and invoice items: create (a draft of a customer's pending items), retrieve,
//! lines, finalize, pay, void, list; `GET /v1/invoiceitems`. How invoices are totalled,
//! finalized and paid: see [`crate::objects::invoices`].

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::json::{int_field, set, set_in, str_field};
use crate::list::{ListParams, page_values};
use crate::money;
use crate::objects::customers;
use crate::objects::invoices::draft::{NewInvoice, create_draft};
use crate::objects::invoices::lines::pending_items;
use crate::objects::invoices::payment::{finalize, pay, payment_method_for};
use crate::objects::invoices::record::{ITEM_LABEL, LABEL, stored, subscription_of, void_stored};
use crate::objects::paid_invoices::on_invoice_paid;
use crate::objects::payment_methods::{self, PmRef};
use crate::objects::subscriptions;
use crate::params::{merge_metadata, one_of};
use crate::resources::ctx::Ctx;
use crate::store::kinds;

/// `GET /v1/invoices/:id`.
pub fn retrieve(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    stored(ctx.store, id, "id")
}

/// `GET /v1/invoices/:id/lines`.
pub fn lines(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let invoice = stored(ctx.store, id, "id")?;
    let data = invoice
        .pointer("/lines/data")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    page_values(
        ctx.params,
        &format!("/v1/invoices/{id}/lines"),
        data,
        "line_item",
    )
}

/// `GET /v1/invoices` with `customer`, `subscription`, `status`, `collection_method`,
/// `created`.
pub fn list(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    let customer = p.non_empty(&["customer"])?;
    let subscription = p.non_empty(&["subscription"])?;
    let status = one_of(
        p,
        &["status"],
        &["draft", "open", "paid", "uncollectible", "void"],
    )?;
    let collection = one_of(
        p,
        &["collection_method"],
        &["charge_automatically", "send_invoice"],
    )?;
    let paging = ListParams::parse(p, ctx.store, kinds::INVOICE, LABEL)?;
    if customer.is_none() && subscription.is_none() && status.is_none() && collection.is_none() {
        return Ok(paging.page_plain("/v1/invoices", ctx.store));
    }
    // A subscription's invoices name it in `parent.subscription_details.subscription`.
    let needles = [
        ("customer", customer),
        ("status", status),
        ("subscription", subscription),
    ];
    let records = paging.walk_where(ctx.store, &needles).filter(|r| {
        let o = &r.object;
        customer.is_none_or(|c| str_field(o, "customer") == Some(c))
            && subscription
                .is_none_or(|s| r.internal.get("subscription").and_then(Value::as_str) == Some(s))
            && status.is_none_or(|s| str_field(o, "status") == Some(s))
            && collection.is_none_or(|c| str_field(o, "collection_method") == Some(c))
    });
    Ok(paging.page("/v1/invoices", records))
}

/// `POST /v1/invoices`: a draft for `customer` (optionally of `subscription`), with its
/// pending invoice items when `pending_invoice_items_behavior=include` (the default is
/// `exclude`, as in Stripe).
pub fn create(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    let customer = p.required_string(&["customer"])?.to_owned();
    customers::require_live(ctx.store, &customer, "customer")?;
    let subscription = p.non_empty(&["subscription"])?.map(str::to_owned);
    let mut currency = money::currency(p, &["currency"])?;
    if let Some(sub) = &subscription {
        let record = subscriptions::record::require(ctx.store, sub, "subscription")?;
        if str_field(&record.object, "customer") != Some(customer.as_str()) {
            return Err(ApiError::invalid_param(
                "subscription",
                format!("The subscription {sub} does not belong to the customer {customer}."),
            ));
        }
        currency = currency.or_else(|| str_field(&record.object, "currency").map(str::to_owned));
    }
    let include = one_of(
        p,
        &["pending_invoice_items_behavior"],
        &["exclude", "include"],
    )? == Some("include");
    if currency.is_none() && include {
        currency = pending_items(ctx.store, &customer, subscription.as_deref())
            .first()
            .and_then(|ii| ctx.store.get(kinds::INVOICE_ITEM, ii))
            .and_then(|r| str_field(&r.object, "currency").map(str::to_owned));
    }
    let collection_method = one_of(
        p,
        &["collection_method"],
        &["charge_automatically", "send_invoice"],
    )?
    .unwrap_or("charge_automatically");
    let days_until_due = p.integer(&["days_until_due"])?;
    if collection_method == "send_invoice" && days_until_due.is_none() && !p.has(&["due_date"]) {
        return Err(ApiError::invalid_param(
            "days_until_due",
            "Invoices with `collection_method=send_invoice` must have `days_until_due` or `due_date`.",
        ));
    }
    let default_payment_method = p.non_empty(&["default_payment_method"])?;
    if let Some(pm) = default_payment_method {
        let pm = payment_methods::resolve(ctx.store, pm, "default_payment_method")?;
        payment_methods::check_usable_for(
            ctx.store,
            &pm,
            Some(&customer),
            "default_payment_method",
        )?;
        if matches!(pm, PmRef::Token(_)) {
            return Err(ApiError::invalid_param(
                "default_payment_method",
                "Attach the payment method to the customer before using it as an invoice's default.",
            ));
        }
    }
    let metadata = merge_metadata(&Map::new(), p.hash(&["metadata"])?)?;
    let spec = NewInvoice {
        customer,
        currency: currency.unwrap_or_else(|| "usd".to_owned()),
        subscription,
        billing_reason: "manual".into(),
        collection_method: collection_method.to_owned(),
        days_until_due,
        lines: Vec::new(),
        include_pending: include,
        discounts: Vec::new(),
        period: (ctx.now, ctx.now),
        description: p.non_empty(&["description"])?.map(str::to_owned),
        metadata,
        default_payment_method: default_payment_method.map(str::to_owned),
    };
    let auto_advance = p.boolean(&["auto_advance"])?.unwrap_or(false);
    let id = create_draft(ctx.store, ctx.now, &spec);
    if let Some(record) = ctx.store.get_live_mut(kinds::INVOICE, &id) {
        set(&mut record.object, "auto_advance", json!(auto_advance));
    }
    stored(ctx.store, &id, "id")
}

/// `POST /v1/invoices/:id/finalize`.
pub fn finalize_endpoint(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let invoice = stored(ctx.store, id, "id")?;
    if str_field(&invoice, "status") != Some("draft") {
        return Err(ApiError::invalid_request(
            "This invoice is already finalized, you can't re-finalize a non-draft invoice.",
        )
        .with_code("invoice_not_editable"));
    }
    finalize(ctx.store, ctx.now, id);
    stored(ctx.store, id, "id")
}

/// `POST /v1/invoices/:id/pay` with optional `payment_method`: finalizes a draft, then
/// charges. A decline answers the 402 card error (the invoice stays open).
pub fn pay_endpoint(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let invoice = stored(ctx.store, id, "id")?;
    let status = str_field(&invoice, "status").unwrap_or_default().to_owned();
    match status.as_str() {
        "paid" => {
            return Err(ApiError::invalid_request("Invoice is already paid")
                .with_code("invoice_already_paid"));
        }
        "void" | "uncollectible" => {
            return Err(ApiError::invalid_request(format!(
                "You can only pay an invoice with a status of open or draft. This invoice has a status of {status}."
            ))
            .with_code("invoice_not_editable"));
        }
        _ => {}
    }
    let customer = str_field(&invoice, "customer")
        .unwrap_or_default()
        .to_owned();
    let pm = match ctx.params.non_empty(&["payment_method"])? {
        Some(value) => {
            let pm = payment_methods::resolve(ctx.store, value, "payment_method")?;
            payment_methods::check_usable_for(ctx.store, &pm, Some(&customer), "payment_method")?;
            Some(pm)
        }
        None => None,
    };
    let paid_out_of_band = ctx.params.boolean(&["paid_out_of_band"])?.unwrap_or(false);
    if pm.is_none() && !paid_out_of_band && payment_method_for(ctx.store, &invoice).is_none() {
        let due = if status == "draft" {
            int_field(&invoice, "total").saturating_add(int_field(&invoice, "starting_balance"))
        } else {
            int_field(&invoice, "amount_due")
        };
        if due > 0 {
            return Err(ApiError::invalid_request(
                "This customer has no attached payment source or default payment method. Please consider adding a default payment method.",
            )
            .with_param("payment_method"));
        }
    }
    if status == "draft" {
        finalize(ctx.store, ctx.now, id);
    }
    if paid_out_of_band {
        if let Some(record) = ctx.store.get_live_mut(kinds::INVOICE, id)
            && str_field(&record.object, "status") == Some("open")
        {
            let o = &mut record.object;
            set(o, "status", json!("paid"));
            set(o, "amount_remaining", json!(0));
            set(o, "auto_advance", json!(false));
            set_in(o, &["status_transitions", "paid_at"], json!(ctx.now));
        }
        if let Some(sub) = subscription_of(ctx.store, id) {
            on_invoice_paid(ctx.store, ctx.now, &sub, id);
        }
        return stored(ctx.store, id, "id");
    }
    let pm_id = pm.map(|pm| payment_methods::materialize(ctx.store, ctx.now, &pm, None));
    pay(ctx.store, ctx.now, id, pm_id.as_deref())?;
    stored(ctx.store, id, "id")
}

/// `POST /v1/invoices/:id/void`.
pub fn void(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let invoice = stored(ctx.store, id, "id")?;
    if str_field(&invoice, "status") != Some("open") {
        return Err(ApiError::invalid_request(format!(
            "You can only void an open invoice. This invoice has a status of {}.",
            str_field(&invoice, "status").unwrap_or_default()
        ))
        .with_code("invoice_not_editable"));
    }
    void_stored(ctx.store, ctx.now, id);
    stored(ctx.store, id, "id")
}

/// `GET /v1/invoiceitems/:id`.
pub fn retrieve_item(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    ctx.store
        .get_live(kinds::INVOICE_ITEM, id)
        .map(|r| r.object.clone())
        .ok_or_else(|| ApiError::resource_missing(ITEM_LABEL, id, "id"))
}

/// `GET /v1/invoiceitems` with `customer`, `invoice`, `pending`, `created`.
pub fn list_items(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    let p = ctx.params;
    let customer = p.non_empty(&["customer"])?;
    let invoice = p.non_empty(&["invoice"])?;
    let pending = p.boolean(&["pending"])?;
    let paging = ListParams::parse(p, ctx.store, kinds::INVOICE_ITEM, ITEM_LABEL)?;
    let needles = [("customer", customer), ("invoice", invoice)];
    let records = paging.walk_where(ctx.store, &needles).filter(|r| {
        let o = &r.object;
        let is_pending = o.get("invoice").is_none_or(Value::is_null);
        customer.is_none_or(|c| str_field(o, "customer") == Some(c))
            && invoice.is_none_or(|i| str_field(o, "invoice") == Some(i))
            && pending.is_none_or(|want| want == is_pending)
    });
    Ok(paging.page("/v1/invoiceitems", records))
}
