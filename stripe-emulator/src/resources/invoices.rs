//! Invoices and invoice items.
//!
//! Subscriptions create invoices through [`create_draft`], [`finalize`] and [`pay`];
//! `POST /v1/invoices` makes a draft of a customer's pending invoice items (the proration
//! items `create_prorations` leaves). Totals: `subtotal` is the sum of the lines; each of
//! the invoice's discounts takes its coupon's share of the discountable lines;
//! `total = subtotal - discounts`; the customer's balance is applied on finalization
//! (`amount_due = max(total + starting_balance, 0)`, a credit left over becomes the new
//! balance, an amount below the currency's minimum charge is carried over). A finalized
//! invoice with an amount due has a payment intent (see `payments`, and
//! `confirmation_secret`, both returned only when expanded, as in Stripe); when that
//! intent succeeds, however it is confirmed, the invoice is `paid` and its subscription
//! is told (see [`mark_paid`]).

use chrono::{TimeZone, Utc};
use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::fixtures::fixture;
use crate::ids;
use crate::list::{ListParams, created_filter, list_object};
use crate::store::{Store, kinds};

use super::payment_intents::{self, NewIntent};
use super::payment_methods::{self, PmRef};
use super::{
    Ctx, coupons, customers, int_field, merge_metadata, metadata_of, one_of, opt_str, set, set_in,
    str_field, subscriptions,
};

/// How invoices are named in "No such ..." messages.
pub const LABEL: &str = "invoice";

/// How invoice items are named in "No such ..." messages.
pub const ITEM_LABEL: &str = "invoiceitem";

/// A date as Stripe writes it in line descriptions: `19 Nov 2025`.
pub fn format_date(ts: i64) -> String {
    Utc.timestamp_opt(ts, 0)
        .single()
        .map(|t| t.format("%-d %b %Y").to_string())
        .unwrap_or_default()
}

/// One line to put on an invoice.
#[derive(Debug, Clone, PartialEq)]
pub struct LineSpec {
    /// Amount in minor units (negative for credits).
    pub amount: i64,
    /// Quantity.
    pub quantity: i64,
    /// Description.
    pub description: String,
    /// The price object, if the line is priced.
    pub price: Option<Value>,
    /// Service period (start, end).
    pub period: (i64, i64),
    /// Whether the line is a proration.
    pub proration: bool,
    /// The subscription.
    pub subscription: Option<String>,
    /// The subscription item (lines billed for a subscription item directly).
    pub subscription_item: Option<String>,
    /// The invoice item (lines that come from invoice items).
    pub invoice_item: Option<String>,
    /// Whether discounts apply to it.
    pub discountable: bool,
}

/// What a new invoice is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct NewInvoice {
    /// The customer.
    pub customer: String,
    /// Lower-case currency.
    pub currency: String,
    /// The subscription.
    pub subscription: Option<String>,
    /// `subscription_create`, `subscription_update`, `subscription_cycle`, `manual`...
    pub billing_reason: String,
    /// `charge_automatically` or `send_invoice`.
    pub collection_method: String,
    /// For `send_invoice`.
    pub days_until_due: Option<i64>,
    /// Lines besides pending invoice items.
    pub lines: Vec<LineSpec>,
    /// Whether the customer's pending invoice items (of this subscription, or of none) are
    /// pulled in.
    pub include_pending: bool,
    /// Discount ids.
    pub discounts: Vec<String>,
    /// Period (start, end).
    pub period: (i64, i64),
    /// Description.
    pub description: Option<String>,
    /// Metadata.
    pub metadata: Map<String, Value>,
    /// A payment method for this invoice only.
    pub default_payment_method: Option<String>,
}

/// The `pricing` of a line or invoice item priced by `price`.
fn pricing(price: Option<&Value>, unit_amount_decimal: &str) -> Value {
    match price {
        Some(price) => json!({
            "price_details": {
                "price": str_field(price, "id"),
                "product": super::id_of(price.get("product").unwrap_or(&Value::Null)),
            },
            "type": "price_details",
            "unit_amount_decimal": unit_amount_decimal,
        }),
        None => Value::Null,
    }
}

fn unit_decimal(amount: i64, quantity: i64) -> String {
    if quantity > 0 && amount % quantity == 0 {
        (amount / quantity).to_string()
    } else if quantity > 0 {
        // Prorated amounts: Stripe gives the unit amount with decimals.
        let unit = amount as f64 / quantity as f64;
        format!("{unit:.12}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    } else {
        amount.to_string()
    }
}

fn line_object(spec: &LineSpec, invoice: &str, currency: &str, livemode: bool) -> Value {
    let parent = match &spec.invoice_item {
        Some(item) => json!({
            "invoice_item_details": {
                "invoice_item": item,
                "proration": spec.proration,
                "proration_details": {"credited_items": null},
                "subscription": spec.subscription,
            },
            "subscription_item_details": null,
            "type": "invoice_item_details",
        }),
        None => json!({
            "invoice_item_details": null,
            "subscription_item_details": {
                "invoice_item": null,
                "proration": spec.proration,
                "proration_details": {"credited_items": null},
                "subscription": spec.subscription,
                "subscription_item": spec.subscription_item.as_deref().unwrap_or_default(),
            },
            "type": "subscription_item_details",
        }),
    };
    let mut line = fixture("line_item");
    for (key, value) in [
        ("id", json!(ids::long_id("il"))),
        ("object", json!("line_item")),
        ("amount", json!(spec.amount)),
        ("currency", json!(currency)),
        ("description", json!(spec.description)),
        ("discount_amounts", json!([])),
        ("discountable", json!(spec.discountable)),
        ("discounts", json!([])),
        ("invoice", json!(invoice)),
        ("livemode", json!(livemode)),
        ("metadata", json!({})),
        ("parent", parent),
        (
            "period",
            json!({"start": spec.period.0, "end": spec.period.1}),
        ),
        ("pretax_credit_amounts", json!([])),
        (
            "pricing",
            pricing(
                spec.price.as_ref(),
                &unit_decimal(spec.amount, spec.quantity),
            ),
        ),
        ("quantity", json!(spec.quantity)),
        ("quantity_decimal", json!(spec.quantity.to_string())),
        ("subscription", opt_str(spec.subscription.as_deref())),
        ("subtotal", json!(spec.amount)),
        ("taxes", json!([])),
    ] {
        set(&mut line, key, value);
    }
    line
}

/// Stores an invoice item (pending when `invoice` is `None`) and returns its id.
pub fn insert_item(
    store: &mut Store,
    now: i64,
    customer: &str,
    currency: &str,
    spec: &LineSpec,
    invoice: Option<&str>,
) -> String {
    let id = ids::long_id("ii");
    let parent = spec.subscription.as_ref().map_or(Value::Null, |sub| {
        json!({
            "subscription_details": {
                "subscription": sub,
                "subscription_item": spec.subscription_item,
            },
            "type": "subscription_details",
        })
    });
    let mut item = fixture(kinds::INVOICE_ITEM);
    for (key, value) in [
        ("id", json!(id)),
        ("object", json!("invoiceitem")),
        ("amount", json!(spec.amount)),
        ("currency", json!(currency)),
        ("customer", json!(customer)),
        ("customer_account", Value::Null),
        ("date", json!(now)),
        ("description", json!(spec.description)),
        ("discountable", json!(spec.discountable)),
        ("discounts", json!([])),
        ("invoice", opt_str(invoice)),
        ("livemode", json!(store.livemode)),
        ("metadata", json!({})),
        ("net_amount", json!(spec.amount)),
        ("parent", parent),
        (
            "period",
            json!({"start": spec.period.0, "end": spec.period.1}),
        ),
        (
            "pricing",
            pricing(
                spec.price.as_ref(),
                &unit_decimal(spec.amount, spec.quantity),
            ),
        ),
        ("proration", json!(spec.proration)),
        ("quantity", json!(spec.quantity)),
        ("quantity_decimal", json!(spec.quantity.to_string())),
        ("tax_rates", json!([])),
        ("test_clock", Value::Null),
    ] {
        set(&mut item, key, value);
    }
    let mut internal = Map::new();
    if let Some(price) = &spec.price {
        internal.insert("price".into(), price.clone());
    }
    store.insert_with(kinds::INVOICE_ITEM, item, internal);
    id
}

/// The line an invoice item becomes.
fn line_from_item(store: &Store, item_id: &str) -> Option<LineSpec> {
    let record = store.get_live(kinds::INVOICE_ITEM, item_id)?;
    let o = &record.object;
    Some(LineSpec {
        amount: int_field(o, "amount"),
        quantity: int_field(o, "quantity"),
        description: str_field(o, "description").unwrap_or_default().to_owned(),
        price: record.internal.get("price").cloned(),
        period: (
            o.pointer("/period/start")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            o.pointer("/period/end")
                .and_then(Value::as_i64)
                .unwrap_or(0),
        ),
        proration: o.get("proration").and_then(Value::as_bool).unwrap_or(false),
        subscription: o
            .pointer("/parent/subscription_details/subscription")
            .and_then(Value::as_str)
            .map(str::to_owned),
        subscription_item: None,
        invoice_item: Some(item_id.to_owned()),
        discountable: o
            .get("discountable")
            .and_then(Value::as_bool)
            .unwrap_or(true),
    })
}

/// Ids of a customer's pending invoice items (of `subscription`, or of no subscription),
/// oldest first.
pub fn pending_items(store: &Store, customer: &str, subscription: Option<&str>) -> Vec<String> {
    let mut ids = store.ids_where(kinds::INVOICE_ITEM, |r| {
        let o = &r.object;
        let item_sub = o
            .pointer("/parent/subscription_details/subscription")
            .and_then(Value::as_str);
        str_field(o, "customer") == Some(customer)
            && o.get("invoice").is_none_or(Value::is_null)
            && (item_sub.is_none() || item_sub == subscription)
    });
    ids.reverse();
    ids
}

/// Recomputes `subtotal`, discounts and `total` of an invoice from its lines.
fn compute_totals(store: &Store, invoice: &mut Value) {
    let Some(lines) = invoice
        .pointer_mut("/lines/data")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    let subtotal = super::sum_amounts(lines.iter().map(|l| int_field(l, "amount")));
    for line in lines.iter_mut() {
        set(line, "discount_amounts", json!([]));
    }
    let discount_ids: Vec<String> = invoice
        .get("discounts")
        .and_then(Value::as_array)
        .map(|d| {
            d.iter()
                .filter_map(|v| super::id_of(v).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut total_discounts = Vec::new();
    let mut total_discount: i64 = 0;
    for discount in &discount_ids {
        let Some(coupon) = coupons::coupon_of_discount(store, discount) else {
            continue;
        };
        let Some(lines) = invoice
            .pointer_mut("/lines/data")
            .and_then(Value::as_array_mut)
        else {
            break;
        };
        // What each discountable line still owes after earlier discounts.
        let remaining: Vec<i64> = lines
            .iter()
            .map(|l| {
                if l.get("discountable").and_then(Value::as_bool) != Some(true) {
                    return 0;
                }
                let taken: i64 = l
                    .get("discount_amounts")
                    .and_then(Value::as_array)
                    .map(|a| super::sum_amounts(a.iter().map(|d| int_field(d, "amount"))))
                    .unwrap_or(0);
                int_field(l, "amount").saturating_sub(taken).max(0)
            })
            .collect();
        let base = super::sum_amounts(remaining.iter().copied());
        let amount = coupons::discount_amount(&coupon, base);
        if amount == 0 {
            continue;
        }
        // Spread the discount over the lines in proportion, the rest on the last one.
        let last = remaining.iter().rposition(|r| *r > 0);
        let mut given: i64 = 0;
        for (index, line) in lines.iter_mut().enumerate() {
            if remaining[index] == 0 {
                continue;
            }
            let share = if Some(index) == last {
                amount - given
            } else {
                super::share_of(amount, remaining[index], base)
            };
            given = given.saturating_add(share);
            if let Some(amounts) = line
                .get_mut("discount_amounts")
                .and_then(Value::as_array_mut)
            {
                amounts.push(json!({"amount": share, "discount": discount}));
            }
        }
        total_discount = total_discount.saturating_add(amount);
        total_discounts.push(json!({"amount": amount, "discount": discount}));
    }
    let total = subtotal.saturating_sub(total_discount);
    for (key, value) in [
        ("subtotal", json!(subtotal)),
        ("subtotal_excluding_tax", json!(subtotal)),
        ("total", json!(total)),
        ("total_excluding_tax", json!(total)),
        ("total_discount_amounts", json!(total_discounts)),
    ] {
        set(invoice, key, value);
    }
    if str_field(invoice, "status") == Some("draft") {
        let starting = int_field(invoice, "starting_balance");
        let due = total.saturating_add(starting).max(0);
        set(invoice, "amount_due", json!(due));
        set(invoice, "amount_remaining", json!(due));
    }
}

/// Stores a draft invoice and returns its id.
pub fn create_draft(store: &mut Store, now: i64, spec: &NewInvoice) -> String {
    let id = ids::long_id("in");
    let mut lines = spec.lines.clone();
    if spec.include_pending {
        for item in pending_items(store, &spec.customer, spec.subscription.as_deref()) {
            if let Some(line) = line_from_item(store, &item) {
                lines.push(line);
            }
            if let Some(record) = store.get_live_mut(kinds::INVOICE_ITEM, &item) {
                set(&mut record.object, "invoice", json!(id));
            }
        }
    }
    let livemode = store.livemode;
    let line_objects: Vec<Value> = lines
        .iter()
        .map(|l| line_object(l, &id, &spec.currency, livemode))
        .collect();
    let customer = store
        .get(kinds::CUSTOMER, &spec.customer)
        .map(|r| r.object.clone())
        .unwrap_or_else(|| json!({}));
    let parent = match &spec.subscription {
        Some(sub) => {
            let metadata = store
                .get(kinds::SUBSCRIPTION, sub)
                .map_or_else(|| json!({}), |r| json!(metadata_of(&r.object)));
            json!({
                "quote_details": null,
                "subscription_details": {"metadata": metadata, "subscription": sub},
                "type": "subscription_details",
            })
        }
        None => Value::Null,
    };
    let mut invoice = fixture(kinds::INVOICE);
    for (key, value) in [
        ("id", json!(id)),
        ("object", json!("invoice")),
        ("account_country", json!("US")),
        ("account_name", json!("Stripe Emulator")),
        ("account_tax_ids", Value::Null),
        ("amount_due", json!(0)),
        ("amount_overpaid", json!(0)),
        ("amount_paid", json!(0)),
        ("amount_remaining", json!(0)),
        ("amount_shipping", json!(0)),
        ("application", Value::Null),
        ("attempt_count", json!(0)),
        ("attempted", json!(false)),
        ("auto_advance", json!(true)),
        (
            "automatic_tax",
            json!({"disabled_reason": null, "enabled": false, "liability": null, "provider": null, "status": null}),
        ),
        ("automatically_finalizes_at", Value::Null),
        ("billing_reason", json!(spec.billing_reason)),
        ("collection_method", json!(spec.collection_method)),
        ("confirmation_secret", Value::Null),
        ("created", json!(now)),
        ("currency", json!(spec.currency)),
        ("custom_fields", Value::Null),
        ("customer", json!(spec.customer)),
        ("customer_account", Value::Null),
        (
            "customer_address",
            customer.get("address").cloned().unwrap_or(Value::Null),
        ),
        (
            "customer_email",
            customer.get("email").cloned().unwrap_or(Value::Null),
        ),
        (
            "customer_name",
            customer.get("name").cloned().unwrap_or(Value::Null),
        ),
        (
            "customer_phone",
            customer.get("phone").cloned().unwrap_or(Value::Null),
        ),
        ("customer_shipping", Value::Null),
        (
            "customer_tax_exempt",
            customer.get("tax_exempt").cloned().unwrap_or(json!("none")),
        ),
        ("customer_tax_ids", json!([])),
        (
            "default_payment_method",
            opt_str(spec.default_payment_method.as_deref()),
        ),
        ("default_source", Value::Null),
        ("default_tax_rates", json!([])),
        ("description", opt_str(spec.description.as_deref())),
        ("discounts", json!(spec.discounts)),
        ("due_date", Value::Null),
        ("effective_at", Value::Null),
        ("ending_balance", Value::Null),
        ("footer", Value::Null),
        ("from_invoice", Value::Null),
        ("hosted_invoice_url", Value::Null),
        ("invoice_pdf", Value::Null),
        ("issuer", json!({"type": "self"})),
        ("last_finalization_error", Value::Null),
        ("latest_revision", Value::Null),
        (
            "lines",
            json!({
                "object": "list",
                "data": line_objects,
                "has_more": false,
                "url": format!("/v1/invoices/{id}/lines"),
            }),
        ),
        ("livemode", json!(livemode)),
        ("metadata", Value::Object(spec.metadata.clone())),
        ("next_payment_attempt", Value::Null),
        ("number", Value::Null),
        ("on_behalf_of", Value::Null),
        ("parent", parent),
        (
            "payment_settings",
            json!({"default_mandate": null, "payment_method_options": null, "payment_method_types": null}),
        ),
        (
            "payments",
            list_object(
                &format!("/v1/invoice_payments?invoice={id}"),
                Vec::new(),
                false,
            ),
        ),
        ("period_end", json!(spec.period.1)),
        ("period_start", json!(spec.period.0)),
        ("post_payment_credit_notes_amount", json!(0)),
        ("pre_payment_credit_notes_amount", json!(0)),
        ("receipt_number", Value::Null),
        ("rendering", Value::Null),
        ("shipping_cost", Value::Null),
        ("shipping_details", Value::Null),
        ("starting_balance", json!(0)),
        ("statement_descriptor", Value::Null),
        ("status", json!("draft")),
        (
            "status_transitions",
            json!({"finalized_at": null, "marked_uncollectible_at": null, "paid_at": null, "voided_at": null}),
        ),
        ("subscription", Value::Null),
        ("test_clock", Value::Null),
        ("total_pretax_credit_amounts", json!([])),
        ("total_taxes", json!([])),
        ("webhooks_delivered_at", Value::Null),
    ] {
        set(&mut invoice, key, value);
    }
    if spec.collection_method == "send_invoice" {
        let days = spec.days_until_due.unwrap_or(30);
        set(&mut invoice, "due_date", json!(now + days * 86_400));
    }
    compute_totals(store, &mut invoice);
    let mut internal = Map::new();
    if let Some(sub) = &spec.subscription {
        internal.insert("subscription".into(), json!(sub));
    }
    store.insert_with(kinds::INVOICE, invoice, internal);
    id
}

fn stored(store: &Store, id: &str, param: &str) -> ApiResult<Value> {
    store
        .get_live(kinds::INVOICE, id)
        .map(|r| r.object.clone())
        .ok_or_else(|| ApiError::resource_missing(LABEL, id, param))
}

/// The subscription an invoice belongs to.
pub fn subscription_of(store: &Store, invoice: &str) -> Option<String> {
    store
        .get(kinds::INVOICE, invoice)?
        .internal
        .get("subscription")?
        .as_str()
        .map(str::to_owned)
}

/// The payment intent of a finalized invoice.
pub fn intent_of(store: &Store, invoice: &str) -> Option<String> {
    store
        .get(kinds::INVOICE, invoice)?
        .internal
        .get("payment_intent")?
        .as_str()
        .map(str::to_owned)
}

/// Finalizes a draft: numbers it, applies the customer's balance, and either marks it paid
/// (nothing due) or opens it with a payment intent for the amount due.
pub fn finalize(store: &mut Store, now: i64, id: &str) {
    let Ok(mut invoice) = stored(store, id, "id") else {
        return;
    };
    if str_field(&invoice, "status") != Some("draft") {
        return;
    }
    // Announce a draft made in this same request as the draft it was (`invoice.created`),
    // after its new items, before announcing its finalization.
    for item in store.ids_where(kinds::INVOICE_ITEM, |r| {
        str_field(&r.object, "invoice") == Some(id)
    }) {
        store.flush_change(kinds::INVOICE_ITEM, &item);
    }
    store.flush_change(kinds::INVOICE, id);
    let customer = str_field(&invoice, "customer")
        .unwrap_or_default()
        .to_owned();
    let currency = str_field(&invoice, "currency").unwrap_or("usd").to_owned();
    let (starting, number) = match store.get_live_mut(kinds::CUSTOMER, &customer) {
        Some(record) => {
            let o = &mut record.object;
            let sequence = o
                .get("next_invoice_sequence")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            set(o, "next_invoice_sequence", json!(sequence + 1));
            let prefix = str_field(o, "invoice_prefix")
                .unwrap_or("EMULATOR")
                .to_owned();
            (int_field(o, "balance"), format!("{prefix}-{sequence:04}"))
        }
        None => (0, format!("EMULATOR-{}", ids::random_alnum(4))),
    };
    set(&mut invoice, "status", json!("open"));
    set(&mut invoice, "starting_balance", json!(starting));
    compute_totals(store, &mut invoice);
    let total = int_field(&invoice, "total");
    let owed = total.saturating_add(starting);
    let minimum = payment_intents::minimum_amount(&currency);
    let (due, ending) = if owed <= 0 {
        (0, owed)
    } else if owed < minimum {
        // Too small to charge: carried over to the customer's balance.
        (0, owed)
    } else {
        (owed, 0)
    };
    for (key, value) in [
        ("number", json!(number)),
        ("amount_due", json!(due)),
        ("amount_remaining", json!(due)),
        ("ending_balance", json!(ending)),
        ("effective_at", json!(now)),
        ("webhooks_delivered_at", json!(now)),
    ] {
        set(&mut invoice, key, value);
    }
    set_in(
        &mut invoice,
        &["status_transitions", "finalized_at"],
        json!(now),
    );
    if let Some(record) = store.get_live_mut(kinds::CUSTOMER, &customer) {
        set(&mut record.object, "balance", json!(ending));
    }
    let mut intent = None;
    if due == 0 {
        set(&mut invoice, "status", json!("paid"));
        set(&mut invoice, "auto_advance", json!(false));
        set_in(&mut invoice, &["status_transitions", "paid_at"], json!(now));
    } else {
        let description = match str_field(&invoice, "billing_reason") {
            Some("subscription_create") => "Subscription creation",
            Some("subscription_update") => "Subscription update",
            Some("subscription_cycle") => "Subscription cycle",
            _ => "Invoice payment",
        };
        let mut spec = NewIntent::card(due, &currency);
        spec.customer = Some(customer.clone());
        spec.description = Some(description.to_owned());
        spec.invoice = Some(id.to_owned());
        let pi = payment_intents::insert(store, now, &spec);
        let secret = store
            .get(kinds::PAYMENT_INTENT, &pi)
            .and_then(|r| str_field(&r.object, "client_secret").map(str::to_owned));
        set(
            &mut invoice,
            "confirmation_secret",
            json!({"client_secret": secret, "type": "payment_intent"}),
        );
        let payment = json!({
            "id": ids::long_id("inpay"),
            "object": "invoice_payment",
            "amount_paid": null,
            "amount_requested": due,
            "created": now,
            "currency": currency,
            "invoice": id,
            "is_default": true,
            "livemode": store.livemode,
            "payment": {"type": "payment_intent", "payment_intent": pi},
            "status": "open",
            "status_transitions": {"canceled_at": null, "paid_at": null},
        });
        set_in(&mut invoice, &["payments", "data"], json!([payment]));
        intent = Some(pi);
    }
    if let Some(record) = store.get_live_mut(kinds::INVOICE, id) {
        record.object = invoice;
        if let Some(pi) = &intent {
            record.internal.insert("payment_intent".into(), json!(pi));
        }
    }
    // `payment_intent.created` and `invoice.finalized` show the open invoice, before any
    // payment in this same request.
    if let Some(pi) = &intent {
        store.flush_change(kinds::PAYMENT_INTENT, pi);
    }
    store.flush_change(kinds::INVOICE, id);
}

/// The payment method an invoice is charged with: its own, its subscription's default, or
/// its customer's default.
pub fn payment_method_for(store: &Store, invoice: &Value) -> Option<String> {
    if let Some(pm) = str_field(invoice, "default_payment_method") {
        return Some(pm.to_owned());
    }
    let subscription = invoice
        .pointer("/parent/subscription_details/subscription")
        .and_then(Value::as_str);
    if let Some(sub) = subscription
        && let Some(record) = store.get(kinds::SUBSCRIPTION, sub)
        && let Some(pm) = str_field(&record.object, "default_payment_method")
    {
        return Some(pm.to_owned());
    }
    let customer = str_field(invoice, "customer")?;
    store
        .get_live(kinds::CUSTOMER, customer)?
        .object
        .pointer("/invoice_settings/default_payment_method")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Attempts to pay an open invoice with `pm` (or the payment method it would be charged
/// with). `Ok(true)`: paid; `Ok(false)`: no payment method to charge; `Err`: a 402 decline
/// (the invoice stays open).
pub fn pay(store: &mut Store, now: i64, id: &str, pm: Option<&str>) -> ApiResult<bool> {
    let invoice = stored(store, id, "id")?;
    if str_field(&invoice, "status") == Some("paid") {
        return Ok(true);
    }
    let Some(pm) = pm
        .map(str::to_owned)
        .or_else(|| payment_method_for(store, &invoice))
    else {
        return Ok(false);
    };
    let Some(pi) = intent_of(store, id) else {
        return Ok(false);
    };
    if let Some(record) = store.get_live_mut(kinds::INVOICE, id) {
        let o = &mut record.object;
        set(o, "attempted", json!(true));
        set(o, "attempt_count", json!(int_field(o, "attempt_count") + 1));
    }
    if let Some(record) = store.get_live_mut(kinds::PAYMENT_INTENT, &pi) {
        set(&mut record.object, "payment_method", json!(pm));
        set(&mut record.object, "status", json!("requires_confirmation"));
    }
    let result = payment_intents::confirm_stored(store, now, &pi).map(|_| true);
    if result.is_err() {
        // `invoice.payment_failed` follows the payment's `charge.failed` and
        // `payment_intent.payment_failed`, as in Stripe.
        store.touch(kinds::INVOICE, id);
    }
    result
}

/// Marks an invoice paid by its payment intent `intent`, and tells its subscription.
pub fn mark_paid(store: &mut Store, now: i64, id: &str, intent: &str) {
    let amount = store
        .get(kinds::PAYMENT_INTENT, intent)
        .map_or(0, |r| int_field(&r.object, "amount_received"));
    let charge = store
        .get(kinds::PAYMENT_INTENT, intent)
        .and_then(|r| str_field(&r.object, "latest_charge").map(str::to_owned));
    let Some(record) = store.get_live_mut(kinds::INVOICE, id) else {
        return;
    };
    let o = &mut record.object;
    if str_field(o, "status") != Some("open") {
        return;
    }
    set(o, "status", json!("paid"));
    set(o, "amount_paid", json!(amount));
    set(o, "amount_remaining", json!(0));
    set(o, "attempted", json!(true));
    set(
        o,
        "attempt_count",
        json!(int_field(o, "attempt_count").max(1)),
    );
    set(o, "auto_advance", json!(false));
    set_in(o, &["status_transitions", "paid_at"], json!(now));
    if let Some(payments) = o
        .pointer_mut("/payments/data")
        .and_then(Value::as_array_mut)
    {
        for payment in payments {
            set(payment, "status", json!("paid"));
            set(payment, "amount_paid", json!(amount));
            set_in(payment, &["status_transitions", "paid_at"], json!(now));
            set_in(payment, &["payment", "charge"], opt_str(charge.as_deref()));
        }
    }
    let subscription = record
        .internal
        .get("subscription")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(sub) = subscription {
        subscriptions::on_invoice_paid(store, now, &sub, id);
    }
}

/// Voids an open invoice and cancels its payment intent.
fn void_stored(store: &mut Store, now: i64, id: &str) {
    if let Some(pi) = intent_of(store, id)
        && let Some(record) = store.get_live_mut(kinds::PAYMENT_INTENT, &pi)
        && str_field(&record.object, "status") != Some("succeeded")
    {
        set(&mut record.object, "status", json!("canceled"));
        set(&mut record.object, "canceled_at", json!(now));
        set(
            &mut record.object,
            "cancellation_reason",
            json!("void_invoice"),
        );
    }
    if let Some(record) = store.get_live_mut(kinds::INVOICE, id) {
        let o = &mut record.object;
        set(o, "status", json!("void"));
        set(o, "amount_remaining", json!(0));
        set(o, "auto_advance", json!(false));
        set_in(o, &["status_transitions", "voided_at"], json!(now));
        if let Some(payments) = o
            .pointer_mut("/payments/data")
            .and_then(Value::as_array_mut)
        {
            for payment in payments {
                set(payment, "status", json!("canceled"));
                set_in(payment, &["status_transitions", "canceled_at"], json!(now));
            }
        }
    }
}

/// Voids the open invoices of a subscription (when an incomplete subscription is canceled).
pub fn void_open_of_subscription(store: &mut Store, now: i64, subscription: &str) {
    let open = store.ids_where(kinds::INVOICE, |r| {
        r.internal.get("subscription").and_then(Value::as_str) == Some(subscription)
            && str_field(&r.object, "status") == Some("open")
    });
    for id in open {
        void_stored(store, now, &id);
    }
}

/// `GET /v1/invoices/:id`.
pub fn retrieve(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    stored(ctx.store, id, "id")
}

/// `GET /v1/invoices/:id/lines`.
pub fn lines(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    let invoice = stored(ctx.store, id, "id")?;
    let limit = ctx.params.integer(&["limit"])?.unwrap_or(10).clamp(1, 100);
    let data = invoice
        .pointer("/lines/data")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let limit = usize::try_from(limit).unwrap_or(10);
    let has_more = data.len() > limit;
    Ok(list_object(
        &format!("/v1/invoices/{id}/lines"),
        data.into_iter().take(limit).collect(),
        has_more,
    ))
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
    let created = created_filter(p)?;
    let paging = ListParams::parse(p, ctx.store, kinds::INVOICE, LABEL)?;
    let records = ctx.store.live_newest_first(kinds::INVOICE).filter(|r| {
        let o = &r.object;
        customer.is_none_or(|c| str_field(o, "customer") == Some(c))
            && subscription
                .is_none_or(|s| r.internal.get("subscription").and_then(Value::as_str) == Some(s))
            && status.is_none_or(|s| str_field(o, "status") == Some(s))
            && collection.is_none_or(|c| str_field(o, "collection_method") == Some(c))
            && created(r)
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
    let mut currency = super::currency(p, &["currency"])?;
    if let Some(sub) = &subscription {
        let record = subscriptions::require(ctx.store, sub, "subscription")?;
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
            subscriptions::on_invoice_paid(ctx.store, ctx.now, &sub, id);
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
    let created = created_filter(p)?;
    let paging = ListParams::parse(p, ctx.store, kinds::INVOICE_ITEM, ITEM_LABEL)?;
    let records = ctx
        .store
        .live_newest_first(kinds::INVOICE_ITEM)
        .filter(|r| {
            let o = &r.object;
            let is_pending = o.get("invoice").is_none_or(Value::is_null);
            customer.is_none_or(|c| str_field(o, "customer") == Some(c))
                && invoice.is_none_or(|i| str_field(o, "invoice") == Some(i))
                && pending.is_none_or(|want| want == is_pending)
                && created(r)
        });
    Ok(paging.page("/v1/invoiceitems", records))
}

/// Fields Stripe includes in invoices only when asked for with `expand[]`.
pub const INCLUDABLE: &[&str] = &["payments", "confirmation_secret"];

/// Removes the includable fields of every invoice in `value` (the response, possibly a
/// list or an object with an expanded invoice) unless an `expand[]` path names them.
pub fn strip_includable(value: &mut Value, expand: &[String]) {
    let keep: Vec<&str> = INCLUDABLE
        .iter()
        .copied()
        .filter(|field| {
            expand.iter().any(|path| {
                path.rsplit('.').next() == Some(*field) || path.contains(&format!("{field}."))
            })
        })
        .collect();
    strip(value, &keep, 0);
}

fn strip(value: &mut Value, keep: &[&str], depth: usize) {
    if depth > 6 {
        return;
    }
    match value {
        Value::Object(map) => {
            if map.get("object").and_then(Value::as_str) == Some("invoice") {
                for field in INCLUDABLE {
                    if !keep.contains(field) {
                        map.remove(*field);
                    }
                }
            }
            for child in map.values_mut() {
                if child.is_object() || child.is_array() {
                    strip(child, keep, depth + 1);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                strip(item, keep, depth + 1);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_decimals() {
        assert_eq!(format_date(1_763_510_400), "19 Nov 2025");
        assert_eq!(unit_decimal(2000, 1), "2000");
        assert_eq!(unit_decimal(1000, 3), "333.333333333333");
        assert_eq!(unit_decimal(-500, 1), "-500");
    }

    #[test]
    fn includable_fields_are_stripped_unless_expanded() {
        let mut sub = json!({"object": "subscription", "latest_invoice": {"object": "invoice", "payments": {}, "confirmation_secret": {}}});
        strip_includable(&mut sub, &["latest_invoice.payments".to_owned()]);
        assert!(sub["latest_invoice"].get("payments").is_some());
        assert!(sub["latest_invoice"].get("confirmation_secret").is_none());
        let mut list = json!({"object": "list", "data": [{"object": "invoice", "payments": {}}]});
        strip_includable(&mut list, &[]);
        assert!(list["data"][0].get("payments").is_none());
    }
}
